"""Regression tests for wrong answers and bad errors found by a user's trial and a
reliability probe (issue 15): each failed before its fix."""

from __future__ import annotations

import numpy as np
import pytest

import lazyfuse as lf
from lazyfuse import config
from tests.conftest import assert_matches

# Serial kernels (three times faster to compile): these test semantics and caching, not loops.
pytestmark = pytest.mark.usefixtures("serial_kernels")

X_NP = np.arange(12.0).reshape(3, 4)


@pytest.mark.parametrize("fuse", [True, False])
@pytest.mark.parametrize(
    ("build", "reference"),
    [
        (lambda x: x.sum().sum(), lambda x: x.sum().sum()),
        (lambda x: x.mean().prod(), lambda x: np.prod(x.mean())),
        (lambda x: x.sum(axis=1).sum(axis=()), lambda x: x.sum(axis=1).sum(axis=())),
        (lambda x: x.max(axis=0).min(axis=()) * 2.0, lambda x: x.max(axis=0).min(axis=()) * 2.0),
        (lambda x: (x * 2.0).sum().max() + x.sum(), lambda x: (x * 2.0).sum().max() + x.sum()),
    ],
)
def test_a_reduction_over_no_axes_after_another_reduction(build, reference, fuse):
    """A reduction over no axes has a domain with no reduced axes: the reduction before
    it must not take its kernel over (it summed the whole input once per element)."""
    with config.override(fuse=fuse):
        assert_matches(build(lf.asarray(X_NP)).compute(), reference(X_NP))


def test_a_reduction_over_no_axes_after_another_reduction_under_jit():
    traced = lf.jit(lambda x: (x.sum().sum(), x.sum(axis=1).sum(axis=())))
    for _ in range(2):  # the trace, then the traced plan
        total, rows = traced(X_NP)
        assert_matches(total, np.float64(66.0))
        assert_matches(rows, X_NP.sum(axis=1))


def _count_positive(acc, v):
    return acc + (1 if v > 0 else 0)


@pytest.mark.parametrize("target", ["cpu", "cuda"])
def test_reduce_with_an_integer_start_sees_each_element_in_its_own_dtype(target):
    """The kernel cast each element to the accumulator's dtype (int64) before the user's
    function saw it: 0.5 became 0 and counted as not positive."""
    x = np.array([[0.5, 0.5, -0.5], [0.25, -1.0, 3.0]])
    with config.override(target=target, cuda_block=8):
        got = lf.reduce(_count_positive, lf.asarray(x), axis=1, start=0).compute()
        full = lf.reduce(_count_positive, lf.asarray(x), start=0).compute()
    assert_matches(got, np.array([2, 2]))
    assert_matches(full, np.int64(4))


def test_relu_of_negative_zero_is_positive_zero_and_nan_stays_nan():
    x = np.array([-0.0, 0.0, np.nan, -1.5, 2.0, -np.inf, np.inf])
    for dtype in (np.float64, np.float32):
        got = lf.relu(lf.asarray(x.astype(dtype))).compute()
        expected = np.maximum(x.astype(dtype), 0)
        assert_matches(got, expected)
        assert np.array_equal(np.signbit(got), np.signbit(expected))


@pytest.mark.parametrize(
    ("array_dtype", "scalar"),
    [
        (np.int32, np.int8(1)),
        (np.int32, np.uint8(7)),
        (np.int32, np.uint16(3)),
        (np.int32, np.uint32(5)),
        (np.int64, np.uint64(2)),
        (np.float32, np.float16(1.5)),
        (np.float32, np.int8(3)),
        (np.float32, np.int16(3)),
        (np.float64, np.int16(-4)),
    ],
)
def test_numpy_scalars_of_dtypes_lazyfuse_lacks_promote_as_in_numpy(array_dtype, scalar):
    a = np.arange(1, 5, dtype=array_dtype)
    for build in (lambda u, s: u + s, lambda u, s: s * u, lambda u, s: lf.maximum(u, s)):
        expected = build(a, scalar)
        got = build(lf.asarray(a), scalar)
        assert got.dtype == expected.dtype
        assert_matches(got.compute(), expected)
    assert_matches(lf.where(lf.asarray(a) > 2, lf.asarray(a), scalar).compute(), np.where(a > 2, a, scalar))


def test_a_numpy_scalar_whose_result_lazyfuse_lacks_is_refused_clearly():
    with pytest.raises(lf.DTypeError, match="int8"):
        lf.asarray(np.array([True, False])) + np.int8(1)  # NumPy: int8


def test_reductions_of_a_0d_array_take_axis_0_or_minus_1_as_numpy_does():
    zero_d = np.array(3.5)
    for name in ("sum", "prod", "max", "min"):
        for axis in (0, -1, np.int64(0)):
            expected = getattr(zero_d, name)(axis=axis)
            assert_matches(getattr(lf.asarray(zero_d), name)(axis=axis).compute(), expected)
    for bad in ((0,), 1, -2):
        with pytest.raises(lf.AxisError):
            lf.asarray(zero_d).sum(axis=bad)
    with pytest.raises(lf.AxisError):  # NumPy's mean refuses it
        lf.asarray(zero_d).mean(axis=0)


@pytest.mark.parametrize("axis", [0.5, "a", {0}, 1.0])
def test_an_axis_of_the_wrong_type_says_what_axis_must_be(axis):
    with pytest.raises(lf.AxisTypeError, match="axis must be None, an int or a tuple of ints"):
        lf.asarray(np.ones(3)).sum(axis=axis)
    with pytest.raises(TypeError):  # also what NumPy raises
        np.ones(3).sum(axis=axis)


@pytest.mark.parametrize(
    ("build", "op"),
    [
        (lambda x: x.broadcast_to((2**61, 2)), "broadcast_to"),
        (lambda x: x[:1].broadcast_to((2**32, 2**32)).reshape(-1), "broadcast_to"),
        (lambda x: x.reshape(2, 1).broadcast_to((2, 2**61)) + x.reshape(2, 1), "broadcast_to"),
        (
            lambda x: (
                x[:1].reshape(1, 1).broadcast_to((2**31, 1)) @ x[:1].reshape(1, 1).broadcast_to((1, 2**33))
            ),
            "matmul",
        ),
    ],
)
def test_shapes_whose_bytes_do_not_fit_intp_are_refused_when_built(build, op):
    with pytest.raises(lf.ShapeError, match=f"{op}: shape .* is too big"):
        build(lf.asarray(np.ones(2)))


def test_the_largest_shapes_that_fit_are_accepted():
    view = lf.asarray(np.ones(2)).broadcast_to((2**58, 2))  # 2**62 bytes
    assert view.shape == (2**58, 2)
    assert view[:3].sum().compute() == 6.0


@pytest.mark.parametrize("fuse", [True, False])
def test_a_reduction_over_no_axes_of_a_broadcast_value(fuse):
    """Found by the random-program run: a value broadcast into a reduction over no axes
    was hoisted as if the kernel reduced its axes, and read out of bounds."""
    x, y, half = np.array([1.0, 2.0, 3.0]), np.array(10.0), np.array([0.5])
    with config.override(fuse=fuse):
        got = (lf.asarray(x) + lf.exp(lf.asarray(y))).sum(axis=())
        assert_matches(got.compute(), (x + np.exp(y)).sum(axis=()))
        got = lf.broadcast_to(lf.asarray(half) + 1, (3,)).max(axis=(), keepdims=True)
        assert_matches(got.compute(), np.broadcast_to(half + 1, (3,)).max(axis=(), keepdims=True))


def test_an_element_taken_by_integer_indices_is_read_as_a_0d_view():
    """Found by the random-program run: NumPy gives a scalar for x[-1] of a 1-D array,
    which a kernel reading a 0-d array refused (a raw Numba TypeError)."""
    x, m = np.array([1.5, 2.7]), np.ones((2, 2))
    last = lf.asarray(x)[-1].astype(np.float32)
    alone, broadcast = lf.compute(last + 0, lf.asarray(m) + last)
    assert_matches(alone, x[-1].astype(np.float32) + np.float32(0))
    assert_matches(broadcast, m + x[-1].astype(np.float32))


def test_a_stored_reduction_is_not_computed_by_the_kernel_that_gathers_from_it():
    """Found by the random-program run: a reduction read as a gather's table was put in
    the gathering kernel (as one of its outputs), so the index check found no value."""
    x = np.arange(3.0)
    assert_matches(lf.take(lf.asarray(x).sum(), np.array([0])).compute(), np.take(x.sum(), [0]))


def test_a_reduction_of_a_reduction_beside_it_plans_without_a_cycle():
    """Found by the random-program run: computing a stored reduction in a consumer's
    kernel made two kernels wait for each other (networkx found the cycle)."""
    x = np.arange(6.0)
    t = lf.asarray(x).max()
    assert_matches((lf.asarray(x) + t + t.min()).compute(), x + x.max() + x.max().min())


def test_a_value_stored_for_another_kernel_is_not_homed_in_a_scan():
    """Found by the random-program run (seed 1000240): a value several kernels read was
    computed in a scan's kernel as one more output, which a scan kernel cannot store."""
    x = np.array([-1.5, -1.5], dtype=np.float32)
    v1 = lf.asarray(x) >= np.float32(0.5)
    v4 = lf.expand_dims(v1, -1)
    v6 = lf.minimum(v1.cumsum(axis=-1)[3:1:2] == v4, v4)
    v8 = lf.cumprod(lf.clip(lf.minimum(v4, v4), -1.5, 1.5), axis=-2)
    got8, got6 = lf.compute(v8, v6)
    n1 = x >= np.float32(0.5)
    n4 = n1[:, None]
    assert_matches(got8, np.cumprod(np.clip(np.minimum(n4, n4), -1.5, 1.5), axis=-2))
    assert_matches(got6, np.minimum(n1.cumsum(axis=-1)[3:1:2] == n4, n4))


def test_a_value_read_reversed_is_not_computed_in_the_kernel_that_reverses_it():
    """Found by the random gradient programs (seeds 1000021, 1000138): ``t + t[::-1]`` with
    t stored and homed in the add's kernel, which then read t[::-1] from its registers."""
    x = np.array([1.8, 0.9, 0.07, 0.77])
    t = lf.tanh(lf.asarray(x))
    assert_matches((t + t[::-1]).compute(), np.tanh(x) + np.tanh(x)[::-1])


def test_a_gathered_row_value_reads_its_size_1_axis_at_0():
    """Found by the random gradient programs: ``table[:, idx] + w.sum(axis=0)``, table
    (1, 4): the row kernel read the gather's size-1 axis at the reduction's loop index."""
    rows = np.array([[0.9, 0.4, -0.5, 0.6], [10.0, 20.0, 30.0, 40.0], [100.0, 200.0, 300.0, 400.0]])
    table, columns, weights = rows[:1], np.array([3, 2, 0, 1]), np.arange(12.0).reshape(3, 4) + 1
    for parallel in (False, True):
        with config.override(parallel=parallel, serial_below=0):
            got = (lf.asarray(table)[:, columns] + lf.asarray(weights).sum(axis=0)).compute()
        assert_matches(got, table[:, columns] + weights.sum(axis=0))


def test_a_reduction_over_no_axes_of_a_0d_value():
    """Found by the long random-program run (seed 1000249): ``log_softmax(x, axis=())`` of
    a 0-d gather is reductions over no axes, which the lanes pass (written for one reduced
    axis or more) was given."""
    pair = np.array([0.5, 1.5])
    for parallel in (False, True):
        with config.override(parallel=parallel, serial_below=0):
            x = lf.take(lf.concatenate([lf.asarray(pair), lf.asarray(pair)]), np.array(-1), axis=-1)
            got = lf.compute(lf.log_softmax(x, axis=()), x.max(axis=()))
        assert_matches(got[0], np.array(0.0))
        assert_matches(got[1], np.array(1.5))
