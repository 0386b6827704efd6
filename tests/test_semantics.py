"""NumPy 2 semantics that are easy to get wrong, one by one (NEP 50 promotion, integer
division and overflow, float division by zero, reduction dtypes, 0-d and size 0), and
the API around computing: results, several outputs, np.asarray, out=, kernels(),
explain() and "a new size does not recompile"."""

from __future__ import annotations

import numpy as np
import pytest

import lazyfuse as lf
from tests.conftest import Case, assert_matches, check_all

pytestmark = pytest.mark.usefixtures("serial_kernels")
F32, I32 = np.float32, np.int32


def test_nep50_python_scalars_are_weak_numpy_scalars_and_arrays_are_strong():
    f32, i32, b = np.ones(3, F32), np.arange(3, dtype=I32), np.array([True, False, True])
    cases = [
        Case("f32 * 2.0", lambda v: lf.asarray(v) * 2.0, lambda v: v * 2.0, (f32,)),
        Case("2.0 * f32", lambda v: 2.0 * lf.asarray(v), lambda v: 2.0 * v, (f32,)),
        Case("i32 + 1", lambda v: lf.asarray(v) + 1, lambda v: v + 1, (i32,)),
        Case("i32 + 1.5", lambda v: lf.asarray(v) + 1.5, lambda v: v + 1.5, (i32,)),
        Case("i32 * True", lambda v: lf.asarray(v) * True, lambda v: v * True, (i32,)),
        Case("bool + 1", lambda v: lf.asarray(v) + 1, lambda v: v + 1, (b,)),
        Case("bool * 1.5", lambda v: lf.asarray(v) * 1.5, lambda v: v * 1.5, (b,)),
        Case(
            "f32 + np.float64(1)",
            lambda v: lf.asarray(v) + np.float64(1),
            lambda v: v + np.float64(1),
            (f32,),
        ),
        Case(
            "np.float32(2) * i32",
            lambda v: np.float32(2) * lf.asarray(v),
            lambda v: np.float32(2) * v,
            (i32,),
        ),
        Case("i32 + np.int64(3)", lambda v: lf.asarray(v) + np.int64(3), lambda v: v + np.int64(3), (i32,)),
        Case(
            "f32 + 0-d float64", lambda v: lf.asarray(v) + np.array(1.0), lambda v: v + np.array(1.0), (f32,)
        ),
        Case(
            "f32 + lf.asarray(1.0)",
            lambda v: lf.asarray(v) + lf.asarray(1.0),
            lambda v: v + np.asarray(1.0),
            (f32,),
        ),
        Case(
            "i32 + lf.asarray(3)",
            lambda v: lf.asarray(v) + lf.asarray(3),
            lambda v: v + np.asarray(3),
            (i32,),
        ),
        Case("i32 / i32", lambda v: lf.asarray(v) / lf.asarray(v + 1), lambda v: v / (v + 1), (i32,)),
        Case("f32 / 3", lambda v: lf.asarray(v) / 3, lambda v: v / 3, (f32,)),
        Case("relu(i32) stays int32", lf.relu, lambda v: np.maximum(v, 0), (i32,)),
        Case("relu(f32)", lf.relu, lambda v: np.maximum(v, 0), (f32,)),
        Case("relu(bool)", lf.relu, lambda v: np.maximum(v, 0), (b,)),
        Case("sigmoid(i32) is float64", lf.sigmoid, lambda v: 1 / (1 + np.exp(-v)), (i32,)),
        Case("sigmoid(f32)", lf.sigmoid, lambda v: 1 / (1 + np.exp(-v)), (f32,)),
    ]
    check_all(cases)
    assert (lf.asarray(f32) * 2.0).dtype == np.float32  # known when built
    assert (
        lf.asarray(3).dtype == np.int64
        and lf.asarray(2.5).dtype == np.float64
        and lf.asarray(True).dtype == bool
    )


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_integer_division_and_remainder_signs_and_zero_divisors(dtype):
    """NumPy: // floors, % takes the divisor's sign, and x // 0 == x % 0 == 0 (with a
    warning NumPy gives and lazyfuse need not)."""
    info = np.iinfo(dtype)
    a = np.array([7, -7, 7, -7, 0, 5, -5, 0, info.min, info.min, info.max, 1], dtype)
    b = np.array([2, 2, -2, -2, 3, 0, 0, 0, -1, 1, -1, info.min], dtype)
    cases = []
    for name in ("floor_divide", "remainder", "divide"):
        cases.append(Case(name, getattr(lf, name), getattr(np, name), (a, b)))
        for scalar in (3, -3, 0):
            cases.append(
                Case(
                    f"{name} by {scalar}",
                    lambda v, n=name, s=scalar: getattr(lf, n)(v, s),
                    lambda v, n=name, s=scalar: getattr(np, n)(v, s),
                    (a,),
                )
            )
            cases.append(
                Case(
                    f"{scalar} {name} x",
                    lambda v, n=name, s=scalar: getattr(lf, n)(s, v),
                    lambda v, n=name, s=scalar: getattr(np, n)(s, v),
                    (b,),
                )
            )
    cases.append(
        Case(
            "operators",
            lambda x, y: (lf.asarray(x) // y) * y + lf.asarray(x) % y,
            lambda x, y: (x // y) * y + x % y,
            (a, b),
        )
    )
    check_all(cases)


def test_float_division_by_zero_gives_inf_and_nan_with_numpys_signs():
    a = np.array([1.0, -1.0, 0.0, -0.0, np.inf, 5.5, -5.5, 7.0, -7.0])
    b = np.array([0.0, 0.0, 0.0, -2.0, 2.0, -0.0, 2.0, -2.0, np.inf])
    for dtype in (np.float32, np.float64):
        for name in ("divide", "floor_divide", "remainder"):
            x, y = a.astype(dtype), b.astype(dtype)
            with np.errstate(all="ignore"):
                expected = getattr(np, name)(x, y)
            got = getattr(lf, name)(x, y).compute()
            assert_matches(got, expected, msg=name)
            np.testing.assert_array_equal(
                np.signbit(got), np.signbit(expected), err_msg=f"{name} {dtype} signs"
            )


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_integer_overflow_wraps(dtype):
    info = np.iinfo(dtype)
    big = np.array([info.max, info.min, info.max // 2 + 1], dtype)
    cases = [
        Case("max + 1", lambda v: lf.asarray(v) + 1, lambda v: v + 1, (big,)),
        Case("min - 1", lambda v: lf.asarray(v) - 1, lambda v: v - 1, (big,)),
        Case("* 3", lambda v: lf.asarray(v) * 3, lambda v: v * 3, (big,)),
        Case("abs(min)", lambda v: abs(lf.asarray(v)), np.abs, (big,)),
        Case("-min", lambda v: -lf.asarray(v), lambda v: -v, (big,)),
        Case("** 3", lambda v: lf.asarray(v) ** 3, lambda v: v**3, (big,)),
        Case("x + x", lambda v: lf.asarray(v) + v, lambda v: v + v, (big,)),
        Case("sum wraps or widens", lf.sum, np.sum, (big,)),
    ]
    check_all(cases)
    with np.errstate(all="ignore"):
        assert (lf.asarray(np.array([2**31 - 1], np.int32)) + 1).compute()[0] == -(2**31)


def test_reduction_dtypes_and_identities():
    i32 = np.arange(5, dtype=I32)
    cases = [
        Case("sum int32 -> int64", lf.sum, np.sum, (i32,)),
        Case("prod int32 -> int64", lf.prod, np.prod, (i32,)),
        Case("sum bool -> int64", lambda v: lf.sum(lf.asarray(v) > 2), lambda v: np.sum(v > 2), (i32,)),
        Case("mean int32 -> float64", lf.mean, np.mean, (i32,)),
        Case("max int32", lf.max, np.max, (i32,)),
        Case("mean float32", lf.mean, np.mean, (i32.astype(F32),)),
        Case("sum of empty", lf.sum, np.sum, (np.zeros(0, F32),)),
        Case("prod of empty int32", lf.prod, np.prod, (np.zeros(0, I32),)),
        Case("mean of empty is nan", lf.mean, np.mean, (np.zeros((2, 0)),)),
    ]
    check_all(cases)


def test_nan_propagates_through_max_min_maximum_minimum():
    x = np.array([1.0, np.nan, 3.0])
    cases = [
        Case("max", lf.max, np.max, (x,)),
        Case("min", lf.min, np.min, (x,)),
        Case("maximum", lambda v: lf.maximum(v, 2.0), lambda v: np.maximum(v, 2.0), (x,)),
        Case("minimum", lambda v: lf.minimum(2.0, v), lambda v: np.minimum(2.0, v), (x,)),
        Case(
            "nan compares false",
            lambda v: (lf.asarray(v) < 2) | (lf.asarray(v) >= 2),
            lambda v: (v < 2) | (v >= 2),
            (x,),
        ),
        Case("nan != nan", lambda v: lf.asarray(v) != v, lambda v: v != v, (x,)),
    ]
    check_all(cases)


def test_zero_d_and_size_zero():
    s = np.array(2.5)
    empty = np.zeros((0, 4), F32)
    cases = [
        Case("0-d * 2", lambda v: lf.asarray(v) * 2, lambda v: v * 2, (s,)),
        Case("0-d exp", lf.exp, np.exp, (s,)),
        Case("0-d sum", lf.sum, np.sum, (s,)),
        Case("0-d with (3,)", lambda v: lf.asarray(v) + np.arange(3.0), lambda v: v + np.arange(3.0), (s,)),
        Case("empty + 1", lambda v: lf.asarray(v) + 1, lambda v: v + 1, (empty,)),
        Case("empty sum axis 1", lambda v: lf.sum(v, axis=1), lambda v: np.sum(v, axis=1), (empty,)),
        Case("empty sum", lf.sum, np.sum, (empty,)),
        Case(
            "empty.T * (4, 1)",
            lambda v: lf.asarray(v).T * np.ones((4, 1), F32),
            lambda v: v.T * np.ones((4, 1), F32),
            (empty,),
        ),
        Case("empty max axis 0", lambda v: lf.max(v, axis=0), lambda v: np.max(v, axis=0), (empty,)),
    ]
    check_all(cases)
    zero_d = (lf.asarray(s) * 2).compute()
    assert isinstance(zero_d, np.ndarray) and zero_d.shape == () and zero_d == 5.0


def test_tensor_attributes():
    x = np.ones((2, 3, 4), F32)
    t = lf.asarray(x)
    assert t.shape == (2, 3, 4) and t.ndim == 3 and t.size == 24 and t.dtype == np.dtype(np.float32)
    assert isinstance(t.dtype, np.dtype)
    assert t.T.shape == (4, 3, 2) and (t.sum(axis=1)).shape == (2, 4)
    assert lf.asarray(np.ones(())).shape == () and lf.asarray(np.ones(())).size == 1


def test_results_are_numpy_arrays_and_several_outputs_compute_together():
    x = np.arange(6.0).reshape(2, 3)
    t = lf.asarray(x)
    assert isinstance(t.sum().compute(), np.ndarray)
    assert_matches(np.asarray(t * 2), x * 2)
    assert_matches(np.asarray(t * 2, dtype=np.float32), (x * 2).astype(np.float32))
    a, b, c, d = lf.compute(t + 1, t.max(), t.sum(axis=0), (t > 2).astype(np.int32))
    assert_matches(a, x + 1)
    assert_matches(b, np.max(x))
    assert_matches(c, x.sum(axis=0))
    assert_matches(d, (x > 2).astype(np.int32))
    same = lf.compute(t * 3, t * 3)  # the same node twice
    assert_matches(same[0], x * 3)
    assert_matches(same[1], x * 3)
    assert_matches(lf.compute(t)[0], x)
    assert_matches((np.arange(3.0) + t).compute(), np.arange(3.0) + x)  # ndarray on the left


def test_compute_into_a_users_array():
    x = np.arange(12.0).reshape(3, 4)
    t = lf.asarray(x)
    out = np.empty((3, 4))
    assert (lf.exp(t) * 2.0).compute(out=out) is out
    assert_matches(out, np.exp(x) * 2.0)
    strided = np.empty((4, 3)).T
    (t - t.mean(axis=1, keepdims=True)).compute(out=strided)
    assert_matches(strided, x - x.mean(axis=1, keepdims=True))
    with pytest.raises(ValueError, match="shape"):
        (t * 2).compute(out=np.empty(5))
    with pytest.raises(ValueError, match="dtype"):
        (t * 2).compute(out=np.empty((3, 4), np.float32))
    with pytest.raises(ValueError, match="overlaps an input"):
        (t[::-1] * 2).compute(out=x)
    with pytest.raises(TypeError, match="writable"):
        (t * 2).compute(out=[0.0] * 12)
    assert_matches(x, np.arange(12.0).reshape(3, 4))  # the input is untouched


def test_kernels_and_explain():
    x = lf.asarray(np.random.default_rng(0).standard_normal((50, 40)))
    expr = lf.exp(x - x.max(axis=1, keepdims=True)).sum(axis=1) * 2.0
    kernels = expr.kernels()
    assert kernels, "at least one kernel"
    for k in kernels:
        assert isinstance(k.name, str) and k.name
        assert k.target == "cpu"
        assert "prange" in k.source and "njit" in k.source
        compile(k.source, k.name, "exec")  # readable Python source
    text = expr.explain()
    assert isinstance(text, str) and all(k.name in text for k in kernels)
    e = np.exp(x.compute() - x.compute().max(axis=1, keepdims=True)).sum(axis=1) * 2.0
    assert_matches(expr.compute(), e, tol=1e-12)


def test_a_new_size_or_scalar_does_not_recompile():
    def expr(v, scale):
        t = lf.asarray(v)
        return (lf.tanh(t * scale) + t.T.sum(axis=0)).max(axis=0)

    rng = np.random.default_rng(0)
    first = rng.standard_normal((5, 5))
    expr(first, 0.5).compute()
    before = lf.cache_info()["compiles"]
    for n, scale in [(7, 0.5), (3, 1.5), (11, -2.0)]:
        v = rng.standard_normal((n, n))
        expected = (np.tanh(v * scale) + v.T.sum(axis=0)).max(axis=0)
        assert_matches(expr(v, scale).compute(), expected, tol=1e-12)
    assert lf.cache_info()["compiles"] == before
