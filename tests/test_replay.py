"""Replays (lazyfuse/runtime/replay.py): a plan's second run with the same layout of values
repeats the first one's recorded calls. Each test compares replayed runs with the general
path (``replay=False``) on new values, so a stale view, a wrong slot or a skipped check
shows as a wrong number or a missing error."""

from __future__ import annotations

import numpy as np
import pytest

import lazyfuse as lf
from lazyfuse import config
from lazyfuse.runtime import plans, replay

RNG = np.random.default_rng(11)


def _plan_of(*tensors: lf.Tensor) -> plans.Plan:
    found, _, _ = plans.plan_for([t.node for t in tensors])
    return found


def _both(fn, *args):
    """fn(*args) computed twice (recorded, then replayed) and on the general path."""
    fn(*args)
    replayed = fn(*args)
    with config.override(replay=False):
        general = fn(*args)
    return replayed, general


def test_a_training_step_replays_what_the_general_path_computes():
    def loss(w, b, x, y):
        return ((lf.tanh(x @ w + b) - y) ** 2).mean()

    def sgd(w, b, x, y, lr):
        grads = lf.grad(loss, (0, 1))(w, b, x, y)
        return [p - lr * g for p, g in zip((w, b), grads, strict=True)]

    step = lf.jit(sgd)
    w, b = RNG.standard_normal((3, 5)), RNG.standard_normal(5)
    for lr in (0.1, 0.3):
        x, y = RNG.standard_normal((7, 3)), RNG.standard_normal((7, 5))
        replayed, general = _both(step, w, b, x, y, lr)
        for got, want in zip(replayed, general, strict=True):
            np.testing.assert_array_equal(got, want)


def test_a_replay_runs_the_checks_of_a_gather():
    table = RNG.standard_normal((6, 3))

    def gathered(ids):
        return (lf.asarray(table)[lf.asarray(ids)] * 2.0).compute()

    ids = np.array([0, 5, 2])
    np.testing.assert_array_equal(gathered(ids), table[ids] * 2.0)
    np.testing.assert_array_equal(gathered(ids[::-1].copy()), table[ids[::-1]] * 2.0)  # replayed
    with pytest.raises(IndexError, match="index 6 is out of bounds"):
        gathered(np.array([0, 6, 2]))


def test_a_new_layout_is_recorded_apart():
    x = RNG.standard_normal((8, 6))
    for a in (x, x.T.copy().T, x[::-1], x[:, ::2].copy()):
        t = lf.exp(lf.asarray(a)) + lf.asarray(a).sum(axis=0)
        for _ in range(2):
            np.testing.assert_allclose(t.compute(), np.exp(a) + a.sum(axis=0), rtol=1e-12)


def test_a_sliding_window_records_a_bounded_number_of_layouts():
    x = RNG.standard_normal(400)
    t = lf.asarray(x)
    for i in range(40):
        window = (t[i : i + 64] * 3.0).sum()
        np.testing.assert_allclose(window.compute(), (x[i : i + 64] * 3.0).sum(), rtol=1e-12)
    assert len(_plan_of(window).replays) <= replay.MAX_LAYOUTS


def test_host_steps_and_scatter_adds_replay_with_new_values():
    tokens = RNG.integers(0, 5, (4, 3))
    grad = lf.jit(lambda e, ids: lf.grad(lambda e: (e[ids] ** 2).sum())(e))
    for _ in range(3):
        table = RNG.standard_normal((5, 2))
        expected = np.zeros_like(table)
        np.add.at(expected, tokens, 2 * table[tokens])
        np.testing.assert_allclose(grad(table, tokens), expected, rtol=1e-12)


def test_sizes_no_input_holds_key_the_replay():
    """``arange(n)`` has no input whose shape says n: the plan serves every n (resized),
    and each n needs its own record (a bug: every n replayed the first one's)."""
    for n in (5, 7, 6, 9, 7):
        np.testing.assert_array_equal((lf.arange(n) * 2.0).sum().compute(), np.arange(n).sum() * 2.0)
        np.testing.assert_array_equal((lf.arange(n) * 2.0).compute(), np.arange(n) * 2.0)


def test_read_only_and_non_contiguous_inputs():
    x = RNG.standard_normal((5, 4))
    frozen = x.copy()
    frozen.flags.writeable = False
    for a in (frozen, np.asfortranarray(x), x[:, ::-1]):
        replayed, general = _both(lambda a: (lf.sqrt(lf.abs(lf.asarray(a))) @ lf.asarray(a).T).compute(), a)
        np.testing.assert_array_equal(replayed, general)


def test_a_row_kernel_with_a_copied_broadcast_load_is_replayed():
    """A small broadcast load made contiguous by a copy (execute._compact_broadcasts) is a
    step of the record too, so the plan replays (and gives the general path's numbers)."""
    labels = RNG.integers(0, 7, 16)
    step = lf.jit(lf.value_and_grad(lambda z: -lf.log_softmax(z)[lf.arange(16), labels].mean()))
    for _ in range(3):
        z = RNG.standard_normal((16, 7))
        replayed, general = _both(step, z)
        for got, want in zip(replayed, general, strict=True):
            np.testing.assert_array_equal(got, want)
    (trace,) = step.traces.values()
    assert any(isinstance(r, replay.Replay) for r in trace.plan.replays.values())


def test_a_trace_replays_each_layout_of_its_arguments_as_its_own():
    """lf.jit keeps its trace's last replay and reuses it while the arguments' strides and
    writeability stay (its key fixes their shapes): a transposed or read-only argument of
    the same shape must not reuse it."""
    x = RNG.standard_normal((5, 5))
    w = RNG.standard_normal((5, 3))

    def fn(x, w):
        return lf.tanh(x @ w).sum(axis=0) + lf.exp(x).sum(axis=1)[:3]

    def expected(x, w):
        return np.tanh(x @ w).sum(axis=0) + np.exp(x).sum(axis=1)[:3]

    frozen = x.copy()
    frozen.flags.writeable = False
    step = lf.jit(fn)
    for argument in [x, x, x.T, x.T, x, frozen, frozen, x[::-1], x]:
        np.testing.assert_allclose(step(argument, w), expected(argument, w), rtol=1e-12)
    assert len(step.traces) == 1
