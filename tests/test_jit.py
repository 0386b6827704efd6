"""lf.jit: one trace per signature, new arrays run the traced plan, results as NumPy's."""

from __future__ import annotations

import numpy as np
import pytest

import lazyfuse as lf
from tests.conftest import run_in_threads


def _arrays(*shapes, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape) for shape in shapes]


def test_new_arrays_reuse_the_trace_and_match_numpy():
    calls = []

    @lf.jit
    def step(a, b):
        calls.append(1)
        return (a * b + 1.0) * lf.exp(-a)

    for seed in range(4):
        a, b = _arrays(1000, 1000, seed=seed)
        np.testing.assert_allclose(step(a, b), (a * b + 1.0) * np.exp(-a), rtol=1e-12)
    assert len(calls) == 1 and len(step.traces) == 1


def test_a_trace_of_one_elementwise_kernel_keeps_its_ready_call(monkeypatch):
    """After the first calls, a trace whose plan is one elementwise kernel calls that
    kernel without the general path (execute._call); a strided array or a change of
    settings takes the general path, with NumPy's answers."""
    from lazyfuse.runtime import execute

    @lf.jit
    def step(a, b):
        return lf.sigmoid(a * 2.0 - b)

    def expected(a, b):
        return 1 / (1 + np.exp(-(a * 2.0 - b)))

    a, b = _arrays((6, 7), (6, 7), seed=5)
    step(a, b)  # traces and compiles
    step(a, b)  # makes the ready call
    (trace,) = step.traces.values()
    assert trace.ready
    general = []
    original = execute._call
    monkeypatch.setattr(execute, "_call", lambda *args: general.append(1) or original(*args))
    for seed in range(3):
        x, y = _arrays((6, 7), (6, 7), seed=seed)
        np.testing.assert_allclose(step(x, y), expected(x, y), rtol=1e-12)
    assert not general
    np.testing.assert_allclose(step(a[:, ::-1], b), expected(a[:, ::-1], b), rtol=1e-12)
    assert general  # a strided array: same signature, general path
    general.clear()
    with lf.config.override(math="libm"):  # the ready call's kernel is the fast-math one
        np.testing.assert_allclose(step(a, b), expected(a, b), rtol=1e-12)
    assert general
    general.clear()
    np.testing.assert_allclose(step(b, a), expected(b, a), rtol=1e-12)
    assert not general and len(step.traces) == 1


def test_a_new_shape_or_dtype_traces_again_without_compiling():
    @lf.jit
    def centred(x):
        return x - x.mean(axis=0)

    (x,) = _arrays((8, 3))
    centred(x)
    compiles = lf.cache_info()["compiles"]
    for shape in [(5, 3), (20, 7), (5, 3)]:
        (y,) = _arrays(shape)
        np.testing.assert_allclose(centred(y), y - y.mean(axis=0), rtol=1e-12, atol=1e-15)
    assert len(centred.traces) == 3 and lf.cache_info()["compiles"] == compiles
    z = x.astype(np.float32)
    np.testing.assert_allclose(centred(z), z - z.mean(axis=0), rtol=1e-5)
    assert len(centred.traces) == 4


def test_the_same_array_twice_is_its_own_signature():
    @lf.jit
    def product(a, b):
        return a * b

    x, y = _arrays(6, 6)
    np.testing.assert_array_equal(product(x, x), x * x)
    np.testing.assert_array_equal(product(x, y), x * y)  # two slots, not the one x filled
    np.testing.assert_array_equal(product(y, y), y * y)
    assert len(product.traces) == 2


def test_scalar_arguments_types_are_part_of_the_signature_their_values_are_not():
    @lf.jit
    def scaled(x, factor, shift=0.5):
        return x * factor + shift

    (x,) = _arrays(5)
    for factor in (2.0, 3.0, 2.0, 2, 5):
        np.testing.assert_allclose(scaled(x, factor), x * factor + 0.5, rtol=1e-12)
    assert len(scaled.traces) == 2  # a float and an int (another type); values fill a slot


def test_constants_the_function_reads_are_fixed_at_trace_time_but_arrays_are_read_live():
    weights = np.ones(4)

    @lf.jit
    def weighted(x):
        return x * lf.asarray(weights)

    x = np.arange(4.0)
    np.testing.assert_array_equal(weighted(x), x)
    weights[:] = 2.0  # the same array, written in place: seen
    np.testing.assert_array_equal(weighted(np.arange(4.0) + 1), (np.arange(4.0) + 1) * 2.0)


def test_an_argument_that_is_also_a_constant_of_the_function_stays_apart_from_it():
    """Tracing with the very array the function reads as a constant must not make the
    constant an argument (nodes are hash-consed: both are one input node otherwise)."""
    constant = np.arange(4.0)

    @lf.jit
    def shifted(x):
        return x + lf.asarray(constant)

    np.testing.assert_array_equal(shifted(constant), constant + constant)
    other = np.full(4, 10.0)
    np.testing.assert_array_equal(shifted(other), other + constant)

    @lf.jit
    def identity(x):
        return x

    assert identity(other) is other and identity(other) is other  # as compute() of an input


def test_negative_zero_and_nan_scalars_are_run_time_values():
    """-0.0 == 0.0 and nan != nan: as run-time values they reach the kernel as they are
    (x / -0.0 is -inf), in one trace per scalar type."""
    x = np.arange(1.0, 4.0)

    @lf.jit
    def divided(x, s):
        return x / s

    with np.errstate(divide="ignore"):
        np.testing.assert_array_equal(divided(x, 0.0), x / 0.0)
        np.testing.assert_array_equal(divided(x, -0.0), x / -0.0)
        np.testing.assert_array_equal(divided(x, np.float32(-0.0)), x / np.float32(-0.0))
    for _ in range(3):
        np.testing.assert_array_equal(divided(x, float("nan")), x / float("nan"))
    assert len(divided.traces) == 2  # a Python float and a np.float32


def test_several_outputs_and_reductions():
    @lf.jit
    def stats(x):
        return x.sum(axis=1), x.max(), lf.relu(x)

    for seed in range(2):
        (x,) = _arrays((7, 9), seed=seed)
        total, biggest, positive = stats(x)
        np.testing.assert_allclose(total, x.sum(axis=1), rtol=1e-12)
        assert biggest == x.max() and biggest.shape == ()
        np.testing.assert_array_equal(positive, np.maximum(x, 0))
    assert len(stats.traces) == 1


def test_bad_arguments_and_results_say_what_is_wrong():
    @lf.jit
    def identity(x):
        return x

    with pytest.raises(
        TypeError, match="takes NumPy arrays and Python or NumPy scalars; argument 0 is a set"
    ):
        identity({1.0, 2.0})
    with pytest.raises(TypeError, match=r"argument 0 is an lf\.asarray tensor; pass the array itself"):
        identity(lf.asarray(np.ones(3)))

    @lf.jit
    def not_a_tensor(x):
        return 3

    with pytest.raises(lf.LazyfuseError, match="must return a lazyfuse tensor or a tuple of them, got int"):
        not_a_tensor(np.ones(3))
    with pytest.raises(lf.ShapeError):
        lf.jit(lambda a, b: a + b)(np.ones(3), np.ones(4))


def test_threads_share_one_trace():
    @lf.jit
    def chain(a, b):
        return lf.tanh(a - b) * 2.0

    arrays = _arrays(300, 300, 300, 300)

    def work(k: int) -> None:
        for _ in range(50):
            a, b = arrays[k % 2], arrays[2 + k // 2 % 2]
            np.testing.assert_allclose(chain(a, b), np.tanh(a - b) * 2.0, rtol=1e-12, atol=1e-15)

    run_in_threads(work, 4)
    assert len(chain.traces) == 1
