"""Reductions against NumPy: sum prod max min mean on every dtype, axis None / int /
negative / tuple / (), keepdims, empty axes, strided layouts, and fused producers and
consumers (softmax, variance) of a reduction."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import lazyfuse as lf
from lazyfuse import config
from tests.conftest import Case, assert_matches, check_all, sum_atol
from tests.strategies import DTYPES, FLOATS, arrays, arrays_and_layout, shapes

REDUCTIONS = ["sum", "prod", "max", "min", "mean"]


@st.composite
def axes(draw, ndim: int):
    """None, an int, a negative int, a tuple (any order, negative entries) or ()."""
    kind = draw(st.sampled_from(["none", "int", "negative", "tuple", "empty"]))
    if ndim == 0 or kind == "none":
        return None
    if kind == "int":
        return draw(st.integers(0, ndim - 1))
    if kind == "negative":
        return draw(st.integers(-ndim, -1))
    if kind == "empty":
        return ()
    chosen = draw(st.permutations(range(ndim)))[: draw(st.integers(1, ndim))]
    return tuple(a - ndim if draw(st.booleans()) else a for a in chosen)


def count(shape: tuple[int, ...], axis) -> int:
    """How many elements each result element reduces."""
    if axis is None:
        return int(np.prod(shape))
    axis = axis if isinstance(axis, tuple) else (axis,)
    return int(np.prod([shape[a] for a in axis]))


def tolerance(name: str, x: np.ndarray, n: int) -> dict[str, float | None]:
    """sum and mean: ``sum_atol`` (NumPy sums pairwise, lazyfuse in order; see there).
    prod: each of the n - 1 products rounds once, so a relative error of about n * eps
    (the order of the products differs between the two). max and min are exact."""
    if x.dtype.kind != "f":
        return {}
    eps = float(np.finfo(x.dtype).eps)
    if name == "sum":
        return {"atol": sum_atol(x, n)}
    if name == "mean":
        atol = sum_atol(x, n)
        return {"atol": atol / max(n, 1) if atol is not None else None}
    if name == "prod":
        return {"tol": 4 * max(n, 1) * eps}
    return {}


@pytest.mark.usefixtures("serial_kernels")
@pytest.mark.parametrize("name", REDUCTIONS)
@given(data=st.data())
def test_reductions_on_every_dtype(name, data):
    """One shape, axis and keepdims per example; every dtype, each in its own layout, as
    lf.<name>, as a method and with positional arguments. Empty axes: sum gives 0, prod 1,
    mean NaN, and max/min raise ValueError when built (as NumPy does)."""
    shape = data.draw(shapes(max_side=4))
    axis = data.draw(axes(len(shape)))
    keepdims = data.draw(st.booleans())
    reference = getattr(np, name)
    cases = []
    for dtype in DTYPES:
        low, high = (-3, 3) if name == "prod" else (-20, 20)
        x, layout = data.draw(arrays_and_layout(dtype, shape, low=low, high=high))
        label = f"{name}({dtype}[{layout}] {shape}, axis={axis}, keepdims={keepdims})"
        tol = tolerance(name, x, count(shape, axis))
        cases += [
            Case(
                label,
                lambda v: getattr(lf, name)(v, axis=axis, keepdims=keepdims),
                lambda v: reference(v, axis=axis, keepdims=keepdims),
                (x,),
                tol,
            ),
            Case(
                label + " method",
                lambda v: getattr(lf.asarray(v), name)(axis, keepdims),
                lambda v: reference(v, axis=axis, keepdims=keepdims),
                (x,),
                tol,
            ),
        ]
    check_all(cases)


@pytest.mark.usefixtures("serial_kernels")
@pytest.mark.parametrize("name", REDUCTIONS)
def test_empty_axes(name):
    x = np.zeros((0, 3), np.int32)
    cases = [
        Case(
            f"{name} axis={axis} {v.dtype}",
            lambda v, a=axis: getattr(lf, name)(v, axis=a),
            lambda v, a=axis: getattr(np, name)(v, axis=a),
            (v,),
        )
        for v in (x, x.astype(np.float32), x.astype(bool), np.zeros((2, 0, 3)))
        for axis in (None, 0, 1, -1, (0, 1))
    ]
    check_all(cases)


def test_empty_max_raises_when_built():
    x = lf.asarray(np.zeros((3, 0)))
    for build in (lambda: x.max(), lambda: lf.min(x, axis=1), lambda: x.max(axis=(0, 1), keepdims=True)):
        with pytest.raises(ValueError, match="zero-size") as info:
            build()
        assert isinstance(info.value, lf.LazyfuseError)
    assert x.max(axis=0).compute().shape == (0,)  # no result element reduces an empty set


def test_reduction_result_dtypes():
    """NumPy's: sum/prod of bool and int32 are int64, mean of integers float64,
    max of bool is bool, float32 stays float32."""
    for dtype in DTYPES:
        x = np.arange(6).reshape(2, 3).astype(dtype)
        for name in REDUCTIONS:
            got = getattr(lf, name)(x, axis=1)
            assert got.dtype == getattr(np, name)(x, axis=1).dtype, (name, dtype)


@pytest.mark.usefixtures("serial_kernels")
def test_nan_propagates_and_large_int_sums_are_exact():
    x = np.array([[1.0, np.nan, 3.0], [4.0, 5.0, -np.inf]])
    cases = [
        Case(
            f"{name} axis={axis}",
            lambda v, n=name, a=axis: getattr(lf, n)(v, axis=a),
            lambda v, n=name, a=axis: getattr(np, n)(v, axis=a),
            (x,),
        )
        for name in REDUCTIONS
        for axis in (None, 0, 1)
    ]
    big = np.full(5, np.iinfo(np.int32).max, np.int32)  # int32 sums go to int64: no wrap
    wrap = np.full(5, np.iinfo(np.int64).max, np.int64)  # int64 sums wrap
    cases += [Case("sum int32 max", lf.sum, np.sum, (big,)), Case("sum int64 wraps", lf.sum, np.sum, (wrap,))]
    cases += [Case("prod int64 wraps", lf.prod, np.prod, (wrap,))]
    check_all(cases)


def test_max_and_min_in_parallel_chunks_propagate_a_late_nan():
    """A full max or min runs in parallel chunks, each folding one accumulator with
    LLVM's maximum (vectorized): a NaN in a late chunk, read backwards too, is the result,
    and without it the extreme is NumPy's."""
    rng = np.random.default_rng(0)
    for dtype in (np.float32, np.float64):
        x = rng.standard_normal(200_003).astype(dtype)
        views = (x, x[::-3])
        for view in views:
            got = lf.compute(lf.max(view), lf.min(view))
            assert [g.item() for g in got] == [np.max(view).item(), np.min(view).item()], dtype
        x[190_000] = np.nan  # in both views
        for view in views:
            assert np.isnan(lf.compute(lf.max(view), lf.min(view))).all(), dtype


@pytest.mark.parametrize("axis", [None, 0, 1, -1, (0, 1)])
@given(data=st.data())
def test_fused_producers_and_consumers(axis, data):
    """sum((a - b) ** 2), softmax and variance over strided float inputs, in parallel
    kernels: producers fused into the reduction and consumers after it."""
    dtype = data.draw(st.sampled_from(FLOATS))
    shape = data.draw(shapes(min_dims=2, max_dims=2, max_side=6, min_side=1))
    a = data.draw(arrays(dtype, shape, low=-5, high=5))
    b = data.draw(arrays(dtype, shape, low=-5, high=5))
    n = count(shape, axis)

    def sq_dist(x, y):
        return ((x - y) ** 2).sum(axis=axis)

    def softmax(x, exp):
        e = exp(x - x.max(axis=axis, keepdims=True))
        return e / e.sum(axis=axis, keepdims=True)

    def variance(x):
        return ((x - x.mean(axis=axis, keepdims=True)) ** 2).mean(axis=axis)

    d = (a.astype(np.float64) - b) ** 2
    rel = {"tol": 4 * n * float(np.finfo(dtype).eps)}
    check_all(
        [
            Case(
                "sum((a-b)**2)",
                lambda x, y: sq_dist(lf.asarray(x), lf.asarray(y)),
                sq_dist,
                (a, b),
                {"atol": sum_atol(d.astype(dtype), n)},
            ),
            Case(
                "softmax", lambda x: softmax(lf.asarray(x), lf.exp), lambda x: softmax(x, np.exp), (a,), rel
            ),
            Case(
                "variance",
                lambda x: variance(lf.asarray(x)),
                variance,
                (a,),
                {"atol": 4 * sum_atol(a * a, n) / n},
            ),
        ]
    )


def test_sum_of_many_floats_is_close_to_numpy_and_exact_for_ints():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((7, 5000))
    for axis in (None, 0, 1):
        got = lf.sum(x, axis=axis).compute()
        assert_matches(got, np.sum(x, axis=axis), atol=sum_atol(x, count(x.shape, axis)))
    ints = rng.integers(-1000, 1000, (7, 5000), dtype=np.int32)
    for axis in (None, 0, 1):
        assert_matches(lf.sum(ints.T, axis=axis).compute(), np.sum(ints.T, axis=axis))


@pytest.mark.parametrize("serial", [False, True])
@given(data=st.data())
def test_a_leading_axis_reduction_and_its_per_element_output_share_one_kernel(serial, data):
    """A bias gradient's shape: the column sums of ``d = where(a + b > 0, g, 0)`` and ``d``
    itself (for a product), one kernel that reads the rows in order (a column loop, not a loop down each
    column), with ``g`` C-contiguous, transposed or broadcast, serial and parallel."""
    rows, columns = data.draw(st.integers(0, 9)), data.draw(st.integers(0, 9))
    a = data.draw(arrays(np.dtype(np.float64), (rows, columns), low=-3, high=3))
    b = data.draw(arrays(np.dtype(np.float64), (columns,), low=-3, high=3))
    g = data.draw(
        st.sampled_from(
            [
                data.draw(arrays(np.dtype(np.float64), (rows, columns), low=-3, high=3)),
                np.ascontiguousarray(
                    data.draw(arrays(np.dtype(np.float64), (rows, columns), low=-3, high=3)).T
                ).T,
                np.broadcast_to(
                    data.draw(arrays(np.dtype(np.float64), (columns,), low=-3, high=3)), (rows, columns)
                ),
            ]
        )
    )

    w = np.linspace(-1.0, 1.0, 2 * columns).reshape(columns, 2)

    def gradients(xp, a, b, g):
        d = xp.where(a + b > 0, g, 0.0)
        return d.sum(axis=0) * 0.5, d @ w  # Note: the product reads d: the sum's kernel stores it

    with config.override(serial_below=1 << 40 if serial else 0):
        found = gradients(lf, lf.asarray(a), lf.asarray(b), lf.asarray(g))
        got = lf.compute(*found)
        if rows > 1 and columns > 1:  # Note: an axis of 1 is reshaped away, a reduction of it is a copy
            assert "kernels (2):" in lf.explain(*found)  # the sum's (storing d too) and the product
    for mine, expected in zip(got, gradients(np, a, b, g), strict=True):
        np.testing.assert_allclose(mine, expected, rtol=1e-12, atol=1e-12)
