"""Compiled replays (lazyfuse/runtime/driver.py): after ``compile_replays_after`` replays a
record's calls run as one Numba function. Each test compares the driver's results with
the general path (``replay=False``) on new values, and checks that the driver, not the
Python lines, ran."""

from __future__ import annotations

import numpy as np
import pytest

import lazyfuse as lf
from lazyfuse import config

RNG = np.random.default_rng(5)


def _replays(jitted):
    (trace,) = jitted.traces.values()
    return [r for r in trace.plan.replays.values() if r]


def _driven(jitted) -> bool:
    return any(r.function.__name__ == "run" and "def driver" in r.function.source for r in _replays(jitted))


def _general(fn, *args):
    with config.override(replay=False):
        return lf.jit(fn)(*args)


def _mlp_step(w1, b1, w2, b2, x, y, lr):
    def loss(w1, b1, w2, b2):
        h = lf.relu(x @ w1 + b1)
        z = (h @ w2 + b2).reshape(-1)
        return -(y * lf.log_sigmoid(z) + (1.0 - y) * lf.log_sigmoid(-z)).mean()

    value, grads = lf.value_and_grad(loss, argnums=(0, 1, 2, 3))(w1, b1, w2, b2)
    return (value, *(p - lr * g for p, g in zip((w1, b1, w2, b2), grads, strict=True)))


def _weights(hidden: int):
    return [
        RNG.uniform(-0.5, 0.5, (2, hidden)),
        np.full(hidden, 0.1),
        RNG.uniform(-0.5, 0.5, (hidden, 1)),
        np.full(1, 0.1),
    ]


def test_a_training_step_runs_as_one_driver_and_agrees_with_the_general_path():
    x, y = RNG.uniform(size=(10, 2)), (RNG.uniform(size=10) > 0.5).astype(np.float64)

    def train(step, weights):
        found = []
        for k in range(6):
            value, *weights = step(*weights, x, y, 0.1 * (k + 1))
            found += [value, *weights]
        return found

    initial = _weights(16)
    with config.override(replay=False):
        expected = train(lf.jit(_mlp_step), initial)
    with config.override(compile_replays_after=3):
        step = lf.jit(_mlp_step)
        step(*initial, x, y, 0.1)
        (record,) = _replays(step)
        kernels = [f for name, f in record.names.items() if name.startswith("kernel")]
        compiled = [len(f.signatures) for f in kernels]
        got = train(step, initial)
    assert _driven(step)
    assert record.driver_error is None
    assert [len(f.signatures) for f in kernels] == compiled  # the driver calls the kernels' own overloads
    for mine, theirs in zip(got, expected, strict=True):
        np.testing.assert_allclose(mine, theirs, rtol=1e-13, atol=1e-15)


def test_the_driver_source_calls_the_recorded_kernels_and_blas():
    x = RNG.standard_normal((6, 4))
    w = RNG.standard_normal((4, 3))
    with config.override(compile_replays_after=2):
        fn = lf.jit(lambda x, w: lf.exp(x @ w).sum(axis=1) * 2.0 + lf.tanh(x).sum())
        for _ in range(3):
            fn(x, w)
    (record,) = _replays(fn)
    source = record.function.source
    assert source.startswith("def driver(")
    assert "gemm" in source and "kernel" in source
    np.testing.assert_allclose(
        fn(x, w), _general(lambda x, w: lf.exp(x @ w).sum(axis=1) * 2.0 + lf.tanh(x).sum(), x, w)
    )


def _products(dtype) -> list[tuple[np.ndarray, np.ndarray]]:
    """Operands of every layout a recorded product can have: C or transposed, vectors
    (m = 1, n = 1), k = 1, stacks, a stack broadcast against one matrix, a transposed stack."""

    def matrix(rows, columns, transposed):
        made = RNG.standard_normal((columns, rows) if transposed else (rows, columns)).astype(dtype)
        return made.T if transposed else made

    found = [
        (matrix(m, k, a_t), matrix(k, n, b_t))
        for m, k, n in [(3, 4, 5), (1, 4, 5), (3, 4, 1), (3, 1, 5), (1, 1, 1)]
        for a_t in (False, True)
        for b_t in (False, True)
    ]
    stack = RNG.standard_normal((3, 4, 2)).astype(dtype)
    return [
        *found,
        (stack, RNG.standard_normal((3, 2, 5)).astype(dtype)),
        (stack[:1], stack.swapaxes(1, 2)),  # one matrix against a stack
        (stack.swapaxes(1, 2), RNG.standard_normal((3, 4, 3)).astype(dtype)),
    ]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_products_of_every_layout_in_the_driver_agree_with_numpy(dtype):
    pairs = _products(dtype)

    def fn(*operands):
        return [lf.tanh(a @ b + 1.0) for a, b in zip(operands[::2], operands[1::2], strict=True)]

    flat = [x for pair in pairs for x in pair]
    with config.override(compile_replays_after=2):
        jitted = lf.jit(fn)
        for _ in range(3):
            got = jitted(*flat)
    assert _driven(jitted), [r.driver_error for r in _replays(jitted)]
    assert _replays(jitted)[0].function.source.count("gemm") >= len(pairs)
    tolerance = 1e-5 if dtype == np.float32 else 1e-12
    for mine, (a, b) in zip(got, pairs, strict=True):
        np.testing.assert_allclose(mine, np.tanh(a @ b + 1.0), rtol=tolerance, atol=tolerance)


def test_values_numba_types_otherwise_run_the_python_lines():
    """An unaligned array has the layout of an aligned one (same shape, strides, dtype) but
    another Numba type: the driver, compiled for the recorded types, hands it back."""
    x = RNG.standard_normal((8, 5))
    w = RNG.standard_normal((5, 5))

    def fn(x, w):
        return lf.tanh(x @ w).sum(axis=0) + lf.exp(x).sum()

    with config.override(compile_replays_after=2):
        jitted = lf.jit(fn)
        for _ in range(3):
            jitted(x, w)
        assert _driven(jitted)
        raw = np.zeros(x.nbytes + 1, np.uint8)
        unaligned = np.frombuffer(raw.data, np.float64, x.size, offset=1).reshape(x.shape)
        assert not unaligned.flags.aligned
        unaligned[...] = x + 1.0
        np.testing.assert_allclose(jitted(unaligned, w), _general(fn, x + 1.0, w), rtol=1e-13)


def test_a_record_with_a_check_of_values_keeps_its_python_lines():
    table = RNG.standard_normal((20, 4))
    tokens = RNG.integers(0, 20, 12)

    def fn(table, tokens):
        return lf.tanh(table[tokens]).sum(axis=1) * 2.0, lf.exp(table).sum()

    with config.override(compile_replays_after=2):
        jitted = lf.jit(fn)
        for _ in range(4):
            jitted(table, tokens)
        (record,) = _replays(jitted)
        assert record.driver is None and not _driven(jitted)
        with pytest.raises(IndexError):
            jitted(table, np.full(12, 20))


def test_compile_replays_after_zero_never_compiles():
    x = RNG.standard_normal((6, 4))
    with config.override(compile_replays_after=0):
        jitted = lf.jit(lambda x: (lf.exp(x @ x.T) * 2.0, lf.tanh(x).sum()))
        for _ in range(5):
            jitted(x)
    assert not _driven(jitted)


def test_a_copy_to_the_order_a_column_kernel_reads_is_made_in_the_driver_too():
    """A leading-axis reduction reads its C arrays transposed (F order); a small load in
    another order is copied into F order, by the Python lines and by the driver alike."""
    a, b, z = RNG.standard_normal((7, 5)), RNG.standard_normal(5), RNG.standard_normal((5, 7))

    def fn(a, b, z):
        d = lf.where(a + b > 0, z.T, 0.0)
        return d.sum(axis=0), lf.tanh(a).sum(axis=1) * d[:, 0]

    with config.override(compile_replays_after=2, serial_below=1 << 40):
        jitted = lf.jit(fn)
        for _ in range(3):
            got = jitted(a, b, z)
        (record,) = _replays(jitted)
        assert "asfortranarray" in record.source and "np.asfortranarray" in record.function.source
        expected = _general(fn, a, b, z)
    for mine, theirs in zip(got, expected, strict=True):
        np.testing.assert_allclose(mine, theirs, rtol=1e-13)
