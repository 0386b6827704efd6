"""The elementwise functions of issue 16 against NumPy: the fast-math versions at their
edges (zeros, infinities, NaN, huge and tiny values, overflow thresholds) and over
sweeps in ulps, layouts and broadcasting, round and clip, NumPy's errors, small powers
without pow, and the CUDA target (simulator). Every row on every dtype is checked in
test_op_table.py."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lazyfuse as lf
from lazyfuse import config
from lazyfuse.graph.ops import Op
from lazyfuse.graph.traverse import toposort
from tests.conftest import Case, assert_matches, check_all
from tests.strategies import arrays_and_layout, broadcast_shapes

pytestmark = pytest.mark.usefixtures("serial_kernels")

F32, F64 = np.dtype(np.float32), np.dtype(np.float64)
MAX_ULP = 2.0
# The new functions with a fastmath version, and NumPy's (applied in long double for the
# exact float64 result, in float64 for float32's).
FAST = {
    "exp2": np.exp2,
    "expm1": np.expm1,
    "log2": np.log2,
    "log10": np.log10,
    "log1p": np.log1p,
    "sinh": np.sinh,
    "cosh": np.cosh,
}


def _quiet(fn, *args):
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args)


def _edges(dtype: np.dtype) -> np.ndarray:
    """Zeros, infinities, NaN, the extremes, and each function's thresholds, with their
    neighbours."""
    info = np.finfo(dtype)
    values = [0.0, np.inf, np.nan, 1.0, 0.5, 2.0, 3.0, 10.0, 1e3, 1e22, 1e-3, 1e-10]
    values += [float(info.max), float(info.smallest_normal), float(info.smallest_subnormal)]
    values += [1023.5, 1024.0, 1074.0, 1075.0, 1076.0, 709.78, 710.47, 710.48, 20.0, 89.41, 89.42]
    values += [126.0, 127.0, 128.0, 149.0, 150.0, 0.6931471805599453, 37.0, 17.3]
    x = _quiet(np.array, values + [-v for v in values], dtype)
    return np.concatenate([x, _quiet(np.nextafter, x, np.inf), _quiet(np.nextafter, x, -np.inf)])


def _sweep(dtype: np.dtype) -> np.ndarray:
    """Every magnitude (log-spaced, both signs) and the interesting intervals (linear)."""
    rng = np.random.default_rng(16)
    info = np.finfo(dtype)
    magnitudes = _quiet(np.geomspace, float(info.smallest_subnormal), float(info.max), 8000)
    linear = [np.linspace(-30, 30, 8000), rng.uniform(-1, 1, 4000), rng.uniform(0, 4, 4000)]
    return _quiet(lambda: np.concatenate([magnitudes, -magnitudes, *linear]).astype(dtype))


def _ulp_errors(got: np.ndarray, exact: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """|got - exact| in ulps of the exact result rounded to dtype: inf where the NaNs,
    zeros or infinities (with their signs) of the rounded exact result are not matched."""
    rounded = _quiet(exact.astype, dtype)
    spacing = _quiet(lambda: np.spacing(np.abs(rounded)).astype(exact.dtype))
    errors = _quiet(lambda: np.abs((got.astype(exact.dtype) - exact) / spacing).astype(np.float64))
    same = (got == rounded) & (np.signbit(got) == np.signbit(rounded)) | np.isnan(got) & np.isnan(rounded)
    errors[same] = 0.0
    special = np.isnan(rounded) | np.isnan(got) | (rounded == 0) | np.isinf(rounded) | np.isinf(got)
    errors[special & ~same] = np.inf
    return errors


@pytest.mark.parametrize("dtype", [F32, F64], ids=str)
def test_fast_functions_at_their_edges_and_over_sweeps(dtype):
    """Within 2 ulp of the exact result (long double for float64, float64 for float32);
    NaN, zeros and infinities (with sign) exactly where the exact result has them; exact
    logarithms of powers of two and ten, exact powers of two. One kernel (fastmath's
    versions, all functions)."""
    info = np.finfo(dtype)
    k = np.arange(info.minexp - info.nmant, info.maxexp).astype(dtype)  # 2^k is a finite float
    tens = np.arange(0, 11 if dtype == F32 else 23).astype(dtype)  # 10^n is exact
    x = np.concatenate(
        [_edges(dtype), _sweep(dtype), k, np.ldexp(1.0, k.astype(int)).astype(dtype), 10.0**tens]
    )
    t = lf.asarray(x)
    # Note: float64's expm1 and log1p are fastmath's FUNCTIONS, which test_fastmath.py sweeps
    names = [name for name in FAST if dtype == F32 or name not in ("expm1", "log1p")]
    tensors = [getattr(lf, name)(t) for name in names]
    results = dict(zip(names, lf.compute(*tensors), strict=True))
    wide = np.longdouble if dtype == F64 else np.float64
    for name, got in results.items():
        assert got.dtype == dtype
        errors = _ulp_errors(got, _quiet(FAST[name], x.astype(wide)), dtype)
        worst = int(np.argmax(errors))
        assert errors[worst] <= MAX_ULP, f"{name}({x[worst]!r}) = {got[worst]!r}: {errors[worst]:.3g} ulp"
        assert_matches(got, _quiet(FAST[name], x), msg=name)  # and NumPy's NaNs
    n, m = k.size, tens.size
    powers = np.ldexp(1.0, k.astype(int)).astype(dtype)  # Note: NumPy's float32 exp2(127) is not
    np.testing.assert_array_equal(results["exp2"][-2 * n - m : -n - m], powers)
    np.testing.assert_array_equal(results["log2"][-n - m : -m], k)
    np.testing.assert_array_equal(results["log10"][-m:], tens)
    explained = lf.explain(*tensors)  # the kernel computed above (the plan is cached)
    assert f"sinh_{dtype.name.replace('float', 'f')}(" in explained and "np.sinh(" not in explained


_BINARY = [np.logaddexp, np.arctan2, np.hypot, np.copysign, np.logical_and, np.logical_or, np.logical_xor]
LOGADDEXP_VALUES = [-np.inf, -800.0, -1.5, -0.0, 0.0, 1e-30, 0.5, 0.6931, 3.0, 40.0, 750.0, np.inf, np.nan]


def test_logaddexp_and_friends_at_edges():
    """Binary functions on every pair of edge values (infinities of both signs, NaN,
    overflowing sums), float32 and float64: logaddexp (fastmath), arctan2, hypot,
    copysign (the C library's), logical_and/or/xor (NaN is true)."""
    cases = []
    for dtype in (F32, F64):
        values = _quiet(np.array, LOGADDEXP_VALUES, dtype)
        x, y = (v.ravel() for v in np.meshgrid(values, values))
        x, y = np.concatenate([x, values * 3]), np.concatenate([y, values[::-1]])
        cases += [Case(f"{fn.__name__}({dtype})", getattr(lf, fn.__name__), fn, (x, y)) for fn in _BINARY]
    check_all(cases)


_UNARY_EDGES = [np.arcsin, np.arccos, np.arctan, np.floor, np.ceil, np.trunc, np.rint, np.sign]
_UNARY_EDGES += [np.square, np.reciprocal, np.isnan, np.isinf, np.isfinite]
_UNARY_EDGES += [np.tan, np.arcsinh, np.arccosh, np.arctanh, np.signbit, np.logical_not]


def test_unary_functions_at_edges():
    """±0, ±inf, NaN, huge, tiny and halves (rint rounds them to even) for the functions
    without a fastmath version, float32 and float64, and erf (math.erf per element): the
    values, NaNs and signs of zeros NumPy gives."""
    tensors, expected = [], []
    for dtype in (F32, F64):
        more = _quiet(np.array, [0.5, 1.5, 2.5, -0.5, -2.5, 1e300, -1e-300], dtype)
        x = np.concatenate([_edges(dtype), more])
        for fn in _UNARY_EDGES:
            tensors.append(getattr(lf, fn.__name__)(lf.asarray(x)))
            expected.append((fn.__name__, _quiet(fn, x)))
        tensors.append(lf.erf(lf.asarray(x)))
        expected.append(
            ("erf", np.array([math.erf(v) if v == v else v for v in x.astype(np.float64)], dtype))
        )
    with np.errstate(all="ignore"):
        results = lf.compute(*tensors)
    for got, (name, want) in zip(results, expected, strict=True):
        assert_matches(got, want, msg=f"{name}({want.dtype})")
        zeros = want == 0
        assert (np.signbit(got[zeros]) == np.signbit(want[zeros])).all(), f"{name}: sign of zero"


@settings(max_examples=3)
@given(data=st.data())
def test_layouts_and_broadcasting(data):
    """Strided, permuted, negative-stride and stride-0 operands of broadcast shapes, size
    0 and 0-d: a binary float function, the shifts and clip with array bounds."""
    shape_a, shape_b, shape_c = data.draw(broadcast_shapes(count=3))
    a, layout_a = data.draw(arrays_and_layout(F64, shape_a))
    b, layout_b = data.draw(arrays_and_layout(F64, shape_b))
    # Note: clip's bounds without zeros: NumPy ties -0.0 with a bound of 0.0 one way for
    # bounds it reads with stride 0 and the other way else (see test_clip_as_numpy_2)
    low, _ = data.draw(arrays_and_layout(F64, shape_b, low=-20, high=-0.25))
    high, _ = data.draw(arrays_and_layout(F64, shape_c, low=0.25, high=20))
    i, _ = data.draw(arrays_and_layout(np.dtype(np.int32), shape_a, low=-50, high=50))
    n, _ = data.draw(arrays_and_layout(np.dtype(np.int64), shape_b, low=-3, high=70))
    label = f"{a.shape}[{layout_a}] {b.shape}[{layout_b}]"
    with config.override(math="libm"):
        check_all(
            [
                Case(f"hypot {label}", lf.hypot, np.hypot, (a, b)),
                Case(f"left_shift {label}", lf.left_shift, np.left_shift, (i, n)),
                Case(f"right_shift {label}", lf.right_shift, np.right_shift, (i, n)),
                Case(f"clip {label}", lf.clip, np.clip, (a, low, high)),
            ]
        )


def test_round_is_numpys_half_to_even_with_decimals():
    """decimals 0 (rint), positive and negative, floats in their own precision, integers
    unchanged or rounded in float64; the method and Python's round()."""
    halves = np.array([0.5, 1.5, 2.5, -0.5, -2.5, 3.14159, -2.675, 1234.5678, np.nan, np.inf, -0.0])
    ints = np.array([15, 25, -15, 1234, -7, 0])
    cases = []
    for dtype in (F32, F64, np.dtype(np.int32), np.dtype(np.int64)):
        values = (ints if dtype.kind == "i" else halves).astype(dtype)
        for decimals in (0, 2, -1, -2, 10):
            cases.append(Case(f"round({dtype}, {decimals})", lf.round, np.round, (values, decimals)))
        cases.append(Case(f"{dtype}.round()", lambda v: lf.asarray(v).round(), np.round, (values,)))
        cases.append(Case(f"round({dtype} tensor)", lambda v: round(lf.asarray(v)), np.round, (values,)))
    check_all(cases)
    with pytest.raises(lf.DTypeError, match="round"):
        lf.round(np.array([True]))


def test_clip_as_numpy_2():
    """Scalar and array bounds, None for either, min=/max=, NaN in any operand, bounds
    that cross, Python ints beyond an integer dtype's range, and -0.0 against 0.0, which
    NumPy's loop for scalar bounds and the one for array bounds tie differently."""
    f = np.array([-0.0, 0.0, -1.5, 0.5, 7.0, np.nan, -np.inf, np.inf])
    i32 = np.array([-5, 0, 3, 9], np.int32)
    zeros = np.array([0.0, -0.0] * 4)
    cases = [
        Case("scalars", lf.clip, np.clip, (f, 0.0, 1.0)),
        Case("scalars -0.0", lf.clip, np.clip, (f, -0.0, 0.0)),
        Case("arrays", lf.clip, np.clip, (f, zeros, -zeros + 1)),
        Case("arrays -0.0", lf.clip, np.clip, (f, zeros, zeros[::-1])),
        Case("NaN bound", lf.clip, np.clip, (f, np.nan, 1.0)),
        Case("crossed", lf.clip, np.clip, (f, 2.0, 1.0)),
        Case("no low", lf.clip, np.clip, (f, None, 0.5)),
        Case("no high", lf.clip, np.clip, (f, -1.0, None)),
        Case("keywords", lambda v: lf.clip(v, max=2), lambda v: np.clip(v, max=2), (f,)),
        Case("none", lf.clip, np.clip, (f, None, None)),
        Case("int32 big bounds", lf.clip, np.clip, (i32, -(2**40), 2**40)),
        Case("int32 float bound", lf.clip, np.clip, (i32, 0.5, 4)),
        Case("int32 int64 bound", lf.clip, np.clip, (i32, np.int64(0), 4)),
        Case("bool", lf.clip, np.clip, (i32 > 0, False, True)),
        Case("float32 weak", lf.clip, np.clip, (f.astype(np.float32), 0, 2.5)),
        Case("method", lambda v: lf.asarray(v).clip(0), lambda v: v.clip(0), (f,)),
    ]
    check_all(cases)
    with pytest.raises(TypeError, match="a_max"):
        lf.clip(f, 1.0)
    with pytest.raises(ValueError, match="forbidden"):
        lf.clip(f, 0, 1, min=2)
    with pytest.raises(lf.DTypeError, match="clip"):
        lf.clip(np.array([True]), None, None)


def test_numpys_errors_are_raised_when_built():
    """Where NumPy has no loop (sign of bool, shifts of floats), or computes in a dtype
    lazyfuse lacks (float16 for bool, int8 for bool squares): a DTypeError naming the op."""
    b, f = lf.asarray(np.array([True])), lf.asarray(np.array([1.5]))
    for build, name in [
        (lambda: lf.sign(b), "sign"),
        (lambda: lf.square(b), "square"),
        (lambda: lf.reciprocal(b), "reciprocal"),
        (lambda: lf.exp2(b), "exp2"),
        (lambda: lf.erf(b), "erf"),
        (lambda: lf.rint(b), "rint"),
        (lambda: lf.left_shift(f, 1), "left_shift"),
        (lambda: f >> 1, "right_shift"),
        (lambda: lf.arctan2(b, b), "arctan2"),
    ]:
        with pytest.raises(lf.DTypeError, match=name):
            build()


POWERS = [1, 2, 3, 4, -1, -2, -3, -4, 0.5, 3.0, -1.0]


def _ops(tensor: lf.Tensor) -> set[Op]:
    return {n.op for n in toposort([tensor.node])}


def test_small_powers_are_multiplies_sqrt_and_reciprocals():
    """No pow for x ** n (n in -4..4, 0.5): the values and dtypes NumPy's power gives, on
    floats, integers and bool (NumPy refuses negative integer powers of integers), with
    NumPy's sqrt(-0.0) = -0.0 and 1 / 0 = inf; other exponents keep pow."""
    x = np.array([-0.0, 0.0, -np.inf, np.inf, np.nan, 1e-200, 1e155, -3.0, 0.7, 1.5, 2.0, 1e300])
    ints = np.array([-3, -1, 0, 1, 2, 1000, 2**20])
    cases = []
    for values in (x, _quiet(x.astype, np.float32), ints.astype(np.int32), ints, ints > 0):
        for n in POWERS:
            if values.dtype.kind in "ib" and isinstance(n, int) and n < 0:
                continue
            cases.append(
                Case(f"{values.dtype} ** {n}", lambda v, n=n: lf.asarray(v) ** n, np.power, (values, n))
            )
            cases.append(Case(f"power({values.dtype}, {n})", lf.power, np.power, (values, n)))
    built = check_all(
        [c for c in cases if not (c.args[0].dtype == np.bool_ and c.label.startswith("bool **"))]
    )
    assert not any(Op.POW in _ops(t) for t in built)
    assert Op.POW in _ops(lf.asarray(x) ** 5) and Op.POW in _ops(lf.asarray(x) ** -0.5)
    assert Op.SQRT in _ops(lf.asarray(x) ** 0.5) and Op.RECIPROCAL in _ops(lf.asarray(x) ** -2)
    with pytest.raises(lf.DomainError):
        lf.asarray(ints) ** -1


def test_shifts_past_the_width_and_negative_counts():
    """NumPy's shifts: counts of the width and beyond give 0 (or -1 for negative values
    shifted right), negative counts the same; int32 shifts stay int32."""
    x = np.array([1, -1, 12345, -12345, 2**30, -(2**31)], np.int32)
    counts = np.arange(-2, 70)
    cases = []
    for dtype in (np.int32, np.int64):
        a = np.repeat(x.astype(dtype), counts.size)
        n = np.tile(counts, x.size).astype(dtype)
        cases += [Case(f"<< {dtype}", lf.left_shift, np.left_shift, (a, n))]
        cases += [Case(f">> {dtype}", lambda u, v: lf.asarray(u) >> v, np.right_shift, (a, n))]
        cases += [Case(f"ndarray << {dtype}", lambda u, v: u << lf.asarray(v), np.left_shift, (a, n))]
    check_all(cases)


def test_on_the_cuda_target():
    """A few of the new functions on the CUDA target (Numba's simulator in these tests):
    the CPU target's scalar templates and helpers, as device code."""
    x = np.array([-2.5, -1.0, -0.0, 0.3, 0.5, 2.5, 7.0])
    i = np.array([-5, 0, 1, 3, 40], np.int64)
    t, k = lf.asarray(x), lf.asarray(i)
    tensors = [
        lf.log1p(t),
        lf.exp2(t),
        lf.sinh(t),
        lf.erf(t),
        lf.rint(t),
        lf.sign(t),
        lf.clip(t, -1.0, 1.0),
        lf.logaddexp(t, 0.5),
        t**3,
        t**-1,
        lf.reciprocal(k),
        k << 3,
        lf.right_shift(k, k),
        lf.tan(t),
        lf.arcsinh(t),
        lf.copysign(t, -1.0),
        lf.signbit(t),
        lf.logical_xor(t, k[:1]),
    ]
    expected = [
        _quiet(np.log1p, x),
        np.exp2(x),
        np.sinh(x),
        np.array([math.erf(v) for v in x]),
        np.rint(x),
        np.sign(x),
        np.clip(x, -1.0, 1.0),
        np.logaddexp(x, 0.5),
        x**3,
        _quiet(np.power, x, -1),
        _quiet(np.reciprocal, i),
        i << 3,
        np.right_shift(i, i),
        np.tan(x),
        np.arcsinh(x),
        np.copysign(x, -1.0),
        np.signbit(x),
        np.logical_xor(x, i[:1]),
    ]
    with warnings.catch_warnings(), config.override(cuda_block=8):
        warnings.simplefilter("ignore", RuntimeWarning)  # the simulator's NumPy scalars warn
        got = lf.compute(*tensors, target="cuda")
    assert "cuda.jit" in lf.erf(t).kernels(target="cuda")[0].source
    for actual, want in zip(got, expected, strict=True):
        assert_matches(actual, want)
