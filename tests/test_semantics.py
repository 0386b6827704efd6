"""NumPy 2 semantics that are easy to get wrong, checked one by one."""

from __future__ import annotations

import numpy as np
import pytest

import lazyfuse as lf

pytestmark = pytest.mark.usefixtures("serial_kernels")


def test_nep50_python_scalars_are_weak():
    f32 = lf.asarray(np.ones(3, np.float32))
    i32 = lf.asarray(np.ones(3, np.int32))
    assert (f32 * 2.0).dtype == np.float32
    assert (2.0 * f32).compute().dtype == np.float32
    assert (i32 + 1).dtype == np.int32
    assert (i32 + 1.5).dtype == np.float64
    assert (i32 * True).dtype == np.int32
    assert (f32 + np.float64(1)).dtype == np.float64  # a NumPy scalar is strong
    assert (lf.asarray(np.ones(2, bool)) + 1).dtype == np.int64


def test_integer_division_and_remainder_follow_numpy():
    a = np.array([7, -7, 7, -7, 0, 5, np.iinfo(np.int64).min], np.int64)
    b = np.array([2, 2, -2, -2, 3, 0, -1], np.int64)
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal((lf.asarray(a) // b).compute(), a // b)
        np.testing.assert_array_equal((lf.asarray(a) % b).compute(), a % b)
        np.testing.assert_array_equal((lf.asarray(a) / b).compute(), a / b)
    assert (lf.asarray(a) / b).dtype == np.float64
    assert (lf.asarray(np.array([1], np.int32)) / np.int32(2)).dtype == np.float64


def test_float_division_by_zero_and_signed_zeros():
    a = np.array([1.0, -1.0, 0.0, -0.0, np.inf, 5.5])
    b = np.array([0.0, 0.0, 0.0, -2.0, 2.0, -0.0])
    with np.errstate(all="ignore"):
        for name in ("divide", "floor_divide", "remainder"):
            got = getattr(lf, name)(a, b).compute()
            expected = getattr(np, name)(a, b)
            np.testing.assert_array_equal(got, expected)
            np.testing.assert_array_equal(np.signbit(got), np.signbit(expected))


def test_integer_overflow_wraps():
    big = np.array([np.iinfo(np.int32).max, np.iinfo(np.int32).min], np.int32)
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal((lf.asarray(big) + 1).compute(), big + 1)
        np.testing.assert_array_equal((lf.asarray(big) * 3).compute(), big * 3)
        np.testing.assert_array_equal(abs(lf.asarray(big)).compute(), np.abs(big))
        np.testing.assert_array_equal((-lf.asarray(big)).compute(), -big)
        np.testing.assert_array_equal((lf.asarray(big) ** 3).compute(), big**3)


def test_reduction_dtypes():
    i32 = np.arange(5, dtype=np.int32)
    assert lf.sum(i32).compute().dtype == np.sum(i32).dtype == np.int64
    assert lf.prod(i32).compute().dtype == np.int64
    assert lf.sum(i32 > 2).compute() == 2
    assert lf.mean(i32).compute().dtype == np.float64
    assert lf.max(i32).compute().dtype == np.int32
    assert lf.mean(np.ones(3, np.float32)).compute().dtype == np.float32


def test_nan_propagates_through_max_min_maximum_minimum():
    x = np.array([1.0, np.nan, 3.0])
    assert np.isnan(lf.max(x).compute()) and np.isnan(lf.min(x).compute())
    np.testing.assert_array_equal(lf.maximum(x, 2.0).compute(), np.maximum(x, 2.0))
    np.testing.assert_array_equal(lf.minimum(2.0, x).compute(), np.minimum(2.0, x))


def test_zero_d_and_size_zero():
    s = lf.asarray(np.array(2.5))
    assert (s * 2).compute().shape == ()
    assert (s * 2).compute() == 5.0
    assert lf.asarray(3).dtype == np.int64
    empty = lf.asarray(np.zeros((0, 4), np.float32))
    assert (empty + 1).compute().shape == (0, 4)
    assert empty.sum(axis=1).compute().shape == (0,)
    assert empty.sum().compute() == 0 and empty.sum().compute().dtype == np.float32


def test_results_are_numpy_arrays():
    x = lf.asarray(np.arange(3.0))
    assert isinstance(x.sum().compute(), np.ndarray)
    np.testing.assert_array_equal(np.asarray(x * 2), np.arange(3.0) * 2)
    a, b = lf.compute(x + 1, x.max())
    np.testing.assert_array_equal(a, np.arange(3.0) + 1)
    assert b == 2.0
    assert x.shape == (3,) and x.ndim == 1 and x.size == 3 and x.dtype == np.float64 and len(x) == 3
    assert (np.arange(3.0) + x).compute().tolist() == [0.0, 2.0, 4.0]  # ndarray on the left


def test_compute_into_a_users_array():
    x = np.arange(12.0).reshape(3, 4)
    t = lf.asarray(x)
    out = np.empty((3, 4))
    result = (lf.exp(t) * 2.0).compute(out=out)
    assert result is out
    np.testing.assert_allclose(out, np.exp(x) * 2.0, rtol=1e-12)
    strided = np.empty((4, 3)).T  # any strides
    (t - t.mean(axis=1, keepdims=True)).compute(out=strided)
    np.testing.assert_allclose(strided, x - x.mean(axis=1, keepdims=True))
    view_out = np.empty((4, 3))
    t.T.compute(out=view_out)  # a view: copied
    np.testing.assert_array_equal(view_out, x.T)


def test_compute_out_is_checked():
    x = np.arange(6.0)
    t = lf.asarray(x)
    with pytest.raises(ValueError, match="shape"):
        (t * 2).compute(out=np.empty(5))
    with pytest.raises(ValueError, match="dtype"):
        (t * 2).compute(out=np.empty(6, np.float32))
    with pytest.raises(ValueError, match="overlaps an input"):
        (t[::-1] * 2).compute(out=x)
    with pytest.raises(TypeError, match="writable"):
        (t * 2).compute(out=[0.0] * 6)
    np.testing.assert_array_equal(x, np.arange(6.0))  # the input is untouched
