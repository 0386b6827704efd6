"""The vectorizable scalar math of ``lazyfuse.runtime.fastmath``: within 2 ulp of the exact
result everywhere (float64 against x87 long double, float32 against float64), NumPy's
NaNs, infinities and signed zeros, and SIMD code when called from another njit loop.

Every function is called through one compiled loop per (function, dtype), shared by all
tests (``_LOOPS``): arrays in, arrays out, never a compile per example.
"""

from __future__ import annotations

import math
import re
import warnings
from fractions import Fraction

import numba
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numba import prange

from lazyfuse.runtime import fastmath, fastmath_rows

MAX_ULP = 2.0
DTYPES = {"f64": np.float64, "f32": np.float32}
NAMES = ("exp", "expm1", "log", "log1p", "tanh", "sigmoid", "sin", "cos")
CASES = [(name, dtype) for name in NAMES for dtype in DTYPES]
TINY = {"f64": 5e-324, "f32": 1e-45}


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


# NumPy's function; applied to np.longdouble (f64) or np.float64 (f32) it is the reference.
NUMPY = {
    "exp": np.exp,
    "expm1": np.expm1,
    "log": np.log,
    "log1p": np.log1p,
    "tanh": np.tanh,
    "sigmoid": _sigmoid,
    "sin": np.sin,
    "cos": np.cos,
}

_LOOPS: dict[tuple[str, str, bool], object] = {}


def _loop(name: str, dtype: str, parallel: bool = False):
    """A compiled loop ``out[i] = <name>_<dtype>(x[i])`` (``prange`` and parallel=True
    when ``parallel``), compiled once for contiguous 1-d arrays and cached."""
    key = (name, dtype, parallel)
    if key not in _LOOPS:
        scalar = fastmath.FUNCTIONS[(name, dtype)]
        if parallel:

            @numba.njit(parallel=True, error_model="numpy")
            def loop(x, out):
                for i in prange(x.shape[0]):
                    out[i] = scalar(x[i])
        else:

            @numba.njit(error_model="numpy")
            def loop(x, out):
                for i in range(x.shape[0]):
                    out[i] = scalar(x[i])

        array = numba.from_dtype(np.dtype(DTYPES[dtype]))[::1]
        loop.compile((array, array))
        _LOOPS[key] = loop
    return _LOOPS[key]


def compute(name: str, dtype: str, x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=DTYPES[dtype])
    out = np.empty_like(x)
    _loop(name, dtype)(x, out)
    return out


def _quiet(fn, x):
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(x)


def reference(name: str, dtype: str, x: np.ndarray) -> np.ndarray:
    """The exact result in a wider type: long double for f64, float64 for f32."""
    wide = np.longdouble if dtype == "f64" else np.float64
    return _quiet(lambda v: NUMPY[name](v.astype(wide)), x)


def ulp_errors(name: str, dtype: str, x: np.ndarray, got: np.ndarray) -> np.ndarray:
    """|got - exact| in ulps of the exact result rounded to the dtype (NaN where both
    are NaN, 0 where both are the same infinity, inf for a wrong infinity)."""
    exact = reference(name, dtype, x)
    rounded = _quiet(lambda e: e.astype(DTYPES[dtype]), exact)
    with np.errstate(all="ignore"):
        spacing = np.spacing(np.abs(rounded)).astype(exact.dtype)
        errors = np.abs((got.astype(exact.dtype) - exact) / spacing).astype(np.float64)
    same = (got == rounded) | (np.isnan(got) & np.isnan(rounded))
    errors[same] = 0.0
    errors[np.isnan(got) != np.isnan(rounded)] = np.inf
    return errors


def assert_accurate(name: str, dtype: str, x: np.ndarray) -> None:
    """Within MAX_ULP of the exact result; NaNs where NumPy gives NaN; infinities and
    signed zeros where the exactly rounded result has them."""
    x = np.asarray(x, dtype=DTYPES[dtype])
    got = compute(name, dtype, x)
    numpy_result = _quiet(NUMPY[name], x)
    bad_nan = np.isnan(got) != np.isnan(numpy_result)
    assert not bad_nan.any(), f"{name}_{dtype}: NaN differs from NumPy at x={x[bad_nan][:5]}"
    errors = ulp_errors(name, dtype, x, got)
    worst = int(np.argmax(errors))
    assert errors[worst] <= MAX_ULP, (
        f"{name}_{dtype}({x[worst]!r}) = {got[worst]!r}: {errors[worst]:.3g} ulp "
        f"(exact {reference(name, dtype, x[worst : worst + 1])[0]!r})"
    )
    exact = _quiet(lambda e: e.astype(DTYPES[dtype]), reference(name, dtype, x))
    special = (exact == 0) | np.isinf(exact)
    mismatch = special & ((got != exact) | (np.signbit(got) != np.signbit(exact)))
    assert not mismatch.any(), f"{name}_{dtype}: zero/infinity differs at x={x[mismatch][:5]}"


# --- inputs --------------------------------------------------------------------------------

# The interesting interval of each function (where the result is neither trivial nor
# saturated), for linear sweeps; log-spaced sweeps cover every magnitude besides.
RANGES = {
    "f64": {
        "exp": (-746.0, 710.0),
        "expm1": (-40.0, 710.0),
        "log": (0.0, 4.0),
        "log1p": (-1.0, 4.0),
        "tanh": (-20.0, 20.0),
        "sigmoid": (-746.0, 40.0),
        "sin": (-fastmath.SIN_LIMIT_F64, fastmath.SIN_LIMIT_F64),
        "cos": (-fastmath.SIN_LIMIT_F64, fastmath.SIN_LIMIT_F64),
    },
    "f32": {
        "exp": (-104.0, 89.0),
        "expm1": (-20.0, 89.0),
        "log": (0.0, 4.0),
        "log1p": (-1.0, 4.0),
        "tanh": (-10.0, 10.0),
        "sigmoid": (-104.0, 20.0),
        "sin": (-float(fastmath.SIN_LIMIT_F32), float(fastmath.SIN_LIMIT_F32)),
        "cos": (-float(fastmath.SIN_LIMIT_F32), float(fastmath.SIN_LIMIT_F32)),
    },
}


def sweep_f64(name: str, n: int = 50_000) -> np.ndarray:
    rng = np.random.default_rng(len(name))
    low, high = RANGES["f64"][name]
    magnitudes = _quiet(lambda top: np.geomspace(5e-324, top, n), 1.7976931348623157e308)
    parts = [
        rng.uniform(low, high, n),
        np.linspace(low, high, n),
        magnitudes,
        -magnitudes,
        rng.uniform(-1.0, 1.0, n),
    ]
    if name in ("sin", "cos"):  # the doubles nearest to multiples of pi/2, where sin or cos cancel
        near = rng.integers(1, int(fastmath.SIN_LIMIT_F64 / np.pi * 2), n) * (np.pi / 2)
        parts += [near, np.nextafter(near, np.inf), np.nextafter(near, 0)]
    return np.concatenate(parts)


def sweep_f32() -> np.ndarray:
    """Every 4099th float32 bit pattern (about a million: all exponents and signs)."""
    return np.arange(0, 2**32, 4099, dtype=np.uint64).astype(np.uint32).view(np.float32)


def special_values(dtype: str) -> np.ndarray:
    info = np.finfo(DTYPES[dtype])
    values = [
        0.0,
        -0.0,
        np.inf,
        -np.inf,
        np.nan,
        float(info.smallest_subnormal),
        -float(info.smallest_subnormal),
        float(info.smallest_normal),
        float(info.max),
        -float(info.max),
        1.0,
        -1.0,
        0.5,
        2.0,
        -0.5,
        1e-300,
        np.pi,
        -np.pi,
        np.pi / 2,
        -np.pi / 2,
        3 * np.pi / 2,
        1e5 * np.pi,
        1e22,
        2.0**60,
    ]
    if dtype == "f64":  # overflow/underflow thresholds of exp, expm1, sigmoid, tanh
        values += [
            709.782712893384,
            709.7827128933841,
            -708.3964185322641,
            -745.1332191019411,
            -745.1332191019412,
            -37.5,
            -38.0,
            19.06,
            22.0,
            -709.78,
            6.7e7,
            -6.7e7,
        ]
    else:
        values += [88.72283, 88.72284, -87.33654, -103.97208, -103.972084, -17.3, 9.01, 4096.0, 4097.0, 5e4]
    values = _quiet(lambda v: np.array(v, dtype=DTYPES[dtype]), values)
    return _quiet(lambda v: np.concatenate([v, np.nextafter(v, np.inf), np.nextafter(v, -np.inf)]), values)


# --- tests ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "dtype"), CASES)
def test_special_values_match_numpy_and_are_accurate(name, dtype):
    assert_accurate(name, dtype, special_values(dtype))


@pytest.mark.parametrize("name", NAMES)
def test_float64_dense_sweep_within_2_ulp(name):
    assert_accurate(name, "f64", sweep_f64(name))


@pytest.mark.parametrize("name", NAMES)
def test_float32_bit_pattern_sweep_within_2_ulp(name):
    x = sweep_f32()
    low, high = RANGES["f32"][name]
    interesting = np.linspace(low, high, 200_000, dtype=np.float32)
    assert_accurate(name, "f32", np.concatenate([x, interesting]))


@pytest.mark.parametrize("name", ("sin", "cos"))
def test_float32_sin_cos_near_multiples_of_half_pi(name):
    k = np.arange(1, int(float(fastmath.SIN_LIMIT_F32) / np.pi * 2))
    centres = (k * (np.pi / 2)).astype(np.float32).view(np.int32)
    x = np.concatenate([(centres + d).view(np.float32) for d in range(-8, 9)])
    assert_accurate(name, "f32", np.concatenate([x, -x]))


@pytest.mark.parametrize(("name", "dtype"), CASES)
def test_random_floats_within_2_ulp(name, dtype):
    width = 64 if dtype == "f64" else 32
    floats = st.floats(width=width, allow_nan=True, allow_infinity=True, allow_subnormal=True)

    @given(hnp.arrays(DTYPES[dtype], st.integers(1, 64), elements=floats))
    def check(x):
        assert_accurate(name, dtype, x)

    check()


def test_sigmoid_is_exact_where_numpys_expression_underflows():
    x = np.array([-720.0, -740.0, -745.0], dtype=np.float64)
    got = compute("sigmoid", "f64", x)
    assert (got > 0).all() and (_quiet(_sigmoid, x) == 0).all()
    assert ulp_errors("sigmoid", "f64", x, got).max() <= MAX_ULP


def test_functions_table_is_complete():
    assert set(fastmath.FUNCTIONS) == {(name, dtype) for name in (*NAMES, "pow") for dtype in DTYPES}


_VECTOR = {"f64": re.compile(r"<(4|8|16) x double>"), "f32": re.compile(r"<(8|16|32) x float>")}
# AVX2 has no vector instruction between int64 and float64 or float32: LLVM splits them
# into one scalar conversion per lane (the functions go through float bits instead).
_WIDE_CONVERSION = re.compile(r"fptosi <\d+ x (double|float)> [^\n]* to <\d+ x i64>|sitofp <\d+ x i64>[^\n]*")
_LIBM = re.compile(r"call [^\n]*@(llvm\.)?(exp|expm1|log|log1p|tanh|sin|cos|pow)f?(\.[a-z0-9]+)?\(")


def _kernel_functions(llvm_ir: str) -> list[str]:
    """The bodies of the IR's functions, but the masked C library fallbacks sin/cos have."""
    bodies = llvm_ir.split("\ndefine ")[1:]
    return [body for body in bodies if not re.match(r"[^@]*@lazyfuse_fastmath_", body)]


def _assert_simd_without_libm(loop, label: str, vector: re.Pattern) -> None:
    """The compiled loop has SIMD types, no C library call and no int64 conversion."""
    bodies = _kernel_functions(loop.inspect_llvm(loop.signatures[0]))
    assert any(vector.search(body) for body in bodies), f"{label}: no SIMD types"
    calls = [m.group(0) for body in bodies for m in _LIBM.finditer(body)]
    assert not calls, f"{label}: calls the C library in the loop: {calls[:3]}"
    wide = [m.group(0) for body in bodies for m in _WIDE_CONVERSION.finditer(body)]
    assert not wide, f"{label}: int64 conversions, scalar on AVX2: {wide[:3]}"


@pytest.mark.parametrize("parallel", [False, True], ids=["range", "prange"])
@pytest.mark.parametrize(("name", "dtype"), CASES)
def test_loop_calling_the_function_is_vectorized_without_libm(name, dtype, parallel):
    loop = _loop(name, dtype, parallel)
    _assert_simd_without_libm(loop, f"{name}_{dtype}", _VECTOR[dtype])
    x = np.linspace(0.5, 2.0, 1000, dtype=DTYPES[dtype])  # and the parallel loop computes the same
    out = np.empty_like(x)
    loop(x, out)
    np.testing.assert_array_equal(out, compute(name, dtype, x))


def test_generated_kernels_use_the_fast_functions_and_vectorize():
    """The kernel lazyfuse generates for exp(x) (not only a hand-written loop) calls no
    C library function and holds SIMD code; with LAZYFUSE_MATH=libm it calls np.exp."""
    import lazyfuse as lf
    from lazyfuse import config

    x = lf.asarray(np.linspace(-1.0, 1.0, 64))
    fast = lf.exp(x).kernels()[0]
    assert "from lazyfuse.runtime.fastmath import exp_f64" in fast.source
    assert "np.exp" not in fast.source
    # Compiled afresh from the generated source: a kernel loaded from Numba's disk cache
    # has no LLVM IR to inspect.
    namespace: dict = {}
    exec(compile(fast.source.replace("cache=True", "cache=False"), str(fast.path), "exec"), namespace)
    kernel = namespace[fast.name]
    kernel.compile(fast.signature)
    bodies = _kernel_functions(kernel.inspect_llvm(fast.signature))
    assert any(_VECTOR["f64"].search(body) for body in bodies)
    assert not [m.group(0) for body in bodies for m in _LIBM.finditer(body)]
    with config.override(math="libm"):
        libm = lf.exp(x).kernels()[0]
        assert "np.exp(" in libm.source and "fastmath" not in libm.source
        np.testing.assert_allclose(lf.exp(x).compute(), np.exp(np.linspace(-1.0, 1.0, 64)), rtol=1e-15)


def _lanes_loop(exp):
    """A row kernel's shape: each row summed into 16 lanes of exp(x)."""

    @numba.njit(error_model="numpy")
    def rows(x, out):
        lanes = np.empty(16, dtype=np.float32)
        for i in range(x.shape[0]):
            for k in range(16):
                lanes[k] = np.float32(0)
            for r in range(0, x.shape[1] - x.shape[1] % 16, 16):
                for k in range(16):
                    lanes[k] = lanes[k] + exp(x[i, r + k])
            total = lanes[0]
            for k in range(1, 16):
                total = total + lanes[k]
            out[i] = total

    return rows


def test_a_lanes_loop_vectorizes_the_functions_row_kernels_import():
    """Kernels with a lanes loop import fastmath_rows, whose functions Numba inlines: the
    loop's sum then runs on vectors. Note: inlined only by LLVM (de52105), the call is
    opaque when the kernel's own passes unroll the 16 lanes, and the copies ran scalar
    (a softmax row kernel 3.4 times slower)."""
    import lazyfuse as lf

    x = lf.asarray(np.linspace(-1.0, 1.0, 64, dtype=np.float32).reshape(4, 16))
    e = lf.exp(x - x.max(axis=1, keepdims=True))
    (kernel,) = (e / e.sum(axis=1, keepdims=True)).kernels()
    assert "from lazyfuse.runtime.fastmath_rows import exp_f32" in kernel.source
    loop = _lanes_loop(fastmath_rows.exp_f32)
    data = np.linspace(-2.0, 2.0, 4 * 48, dtype=np.float32).reshape(4, 48)
    out = np.empty(4, np.float32)
    loop(data, out)
    np.testing.assert_allclose(out, np.exp(data).sum(axis=1), rtol=1e-5)
    llvm_ir = loop.inspect_llvm(loop.signatures[0])
    assert re.search(r"fadd <(8|16) x float>", llvm_ir), "the lanes' sum runs on scalars"


# --- pow: two arguments ----------------------------------------------------------------------

_POW_LOOPS: dict[tuple[str, bool], object] = {}


def _pow_loop(dtype: str, parallel: bool = False):
    """A compiled loop ``out[i] = pow_<dtype>(x[i], y[i])``, once per dtype and loop kind."""
    key = (dtype, parallel)
    if key not in _POW_LOOPS:
        scalar = fastmath.FUNCTIONS[("pow", dtype)]
        if parallel:

            @numba.njit(parallel=True, error_model="numpy")
            def loop(x, y, out):
                for i in prange(x.shape[0]):
                    out[i] = scalar(x[i], y[i])
        else:

            @numba.njit(error_model="numpy")
            def loop(x, y, out):
                for i in range(x.shape[0]):
                    out[i] = scalar(x[i], y[i])

        array = numba.from_dtype(np.dtype(DTYPES[dtype]))[::1]
        loop.compile((array, array, array))
        _POW_LOOPS[key] = loop
    return _POW_LOOPS[key]


def _pow_arrays(dtype: str, x, y) -> tuple[np.ndarray, np.ndarray]:
    x, y = _quiet(
        lambda v: np.broadcast_arrays(np.asarray(v[0], DTYPES[dtype]), np.asarray(v[1], DTYPES[dtype])),
        (x, y),
    )
    return np.ascontiguousarray(x), np.ascontiguousarray(y)


def compute_pow(dtype: str, x, y) -> np.ndarray:
    x, y = _pow_arrays(dtype, x, y)
    out = np.empty_like(x)
    _pow_loop(dtype)(x, y, out)
    return out


def pow_reference(dtype: str, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """np.power in long double (f64) or float64 (f32): the exact result to spare bits."""
    wide = np.longdouble if dtype == "f64" else np.float64
    return _quiet(lambda v: np.power(v[0].astype(wide), v[1].astype(wide)), (x, y))


def assert_pow_accurate(dtype: str, x, y) -> None:
    """Within MAX_ULP of the exact result; NaN exactly where np.power gives NaN; zeros and
    infinities (with their signs) where np.power or the exactly rounded result has them."""
    x, y = _pow_arrays(dtype, x, y)
    got = compute_pow(dtype, x, y)
    numpy_result = _quiet(lambda v: np.power(v[0], v[1]), (x, y))
    bad_nan = np.isnan(got) != np.isnan(numpy_result)
    assert not bad_nan.any(), (
        f"pow_{dtype}: NaN differs from NumPy at {list(zip(x[bad_nan], y[bad_nan], strict=True))[:5]}"
    )
    exact = pow_reference(dtype, x, y)
    rounded = _quiet(lambda e: e.astype(DTYPES[dtype]), exact)
    with np.errstate(all="ignore"):
        spacing = np.spacing(np.abs(rounded)).astype(exact.dtype)
        errors = np.abs((got.astype(exact.dtype) - exact) / spacing).astype(np.float64)
    errors[(got == rounded) | (np.isnan(got) & np.isnan(rounded))] = 0.0
    errors[np.isnan(got) != np.isnan(rounded)] = np.inf
    worst = int(np.argmax(errors))
    assert errors[worst] <= MAX_ULP, (
        f"pow_{dtype}({x[worst]!r}, {y[worst]!r}) = {got[worst]!r}: {errors[worst]:.3g} ulp "
        f"(exact {exact[worst]!r})"
    )
    for expected in (numpy_result, rounded):
        special = (expected == 0) | np.isinf(expected)
        mismatch = special & ((got != expected) | (np.signbit(got) != np.signbit(expected)))
        assert not mismatch.any(), (
            f"pow_{dtype}: zero/infinity differs at {list(zip(x[mismatch], y[mismatch], strict=True))[:5]}"
        )


def _pow_special_values(dtype: str) -> tuple[list[float], list[float]]:
    info = np.finfo(DTYPES[dtype])
    mant = info.nmant + 1  # 53 / 24
    eps = float(info.eps)
    sub, normal, big = float(info.smallest_subnormal), float(info.smallest_normal), float(info.max)
    xs = [0.0, -0.0, np.inf, -np.inf, np.nan, -np.nan, 1.0, -1.0, 0.5, -0.5, 2.0, -2.0, 3.0, -3.0, 10.0]
    xs += [sub, -sub, normal, -normal, big, -big, 1 + eps, 1 - eps / 2, -(1 + eps), np.pi, -np.pi, 1e-30, 0.1]
    ys = [0.0, -0.0, np.inf, -np.inf, np.nan, 1.0, -1.0, 2.0, -2.0, 3.0, -3.0, 0.5, -0.5, 1.5, -1.5, 1 / 3]
    ys += [
        2.0 ** (mant - 1),
        2.0 ** (mant - 1) + 1,
        2.0**mant,
        2.0**mant + 2,
        -(2.0 ** (mant - 1) + 1),
        big,
        -big,
    ]
    ys += [sub, -sub, 1e-5, 7.0, -7.0, 10.0, 100.0, 1e5, -1e5]
    exponents = (
        (-1074.0, -1075.0, 1023.0, 1024.0, -1022.0)
        if dtype == "f64"
        else (-149.0, -150.0, 127.0, 128.0, -126.0)
    )
    ys += [*exponents, *(-e for e in exponents)]
    return xs, ys


@pytest.mark.parametrize("dtype", DTYPES)
def test_pow_special_value_grid_matches_numpy(dtype):
    xs, ys = _pow_special_values(dtype)
    x, y = np.meshgrid(np.array(xs, DTYPES[dtype]), np.array(ys, DTYPES[dtype]))
    x, y = x.ravel(), y.ravel()
    assert_pow_accurate(dtype, x, y)
    got, expected = compute_pow(dtype, x, y), _quiet(lambda v: np.power(v[0], v[1]), (x, y))
    exact_cases = np.isnan(expected) | (expected == 0) | np.isinf(expected) | (expected == 1)
    np.testing.assert_array_equal(got[exact_cases], expected[exact_cases])
    signed = exact_cases & ~np.isnan(expected)
    np.testing.assert_array_equal(np.signbit(got[signed]), np.signbit(expected[signed]))


@pytest.mark.parametrize("dtype", DTYPES)
def test_pow_exact_powers_of_two_round_halfway_to_even(dtype):
    """2^n for x a power of two and y e an integer, including the halfway cases below the
    smallest subnormal (2^-1075 / 2^-150 round to 0)."""
    tie = -1075 if dtype == "f64" else -150
    bases = np.array([1, -1, 2, 3, 5, 7, 25, 43, -3, -5, -25, -43], dtype=np.float64)
    x = 2.0**bases
    x = np.concatenate([x, x, 2.0 ** np.arange(-10, 11, dtype=np.float64)])
    y = np.concatenate([tie / bases, (tie + 1) / bases, np.arange(-10, 11, dtype=np.float64) * 7])
    keep = np.isfinite(_quiet(lambda v: v.astype(DTYPES[dtype]), y))
    assert_pow_accurate(dtype, x[keep], y[keep])
    exact = (_quiet(lambda v: (v[1] * np.log2(v[0])) % 1 == 0, (x, y))) & keep
    got = compute_pow(dtype, x[exact], y[exact])
    expected = _quiet(
        lambda v: np.power(v[0].astype(DTYPES[dtype]), v[1].astype(DTYPES[dtype])), (x[exact], y[exact])
    )
    np.testing.assert_array_equal(got, expected)


def test_pow_c99_rules():
    for dtype in DTYPES:
        nan, inf = np.nan, np.inf
        cases = [  # (x, y, expected)
            (nan, 0.0, 1.0), (nan, -0.0, 1.0), (1.0, nan, 1.0), (1.0, inf, 1.0), (-1.0, inf, 1.0),
            (-1.0, -inf, 1.0), (-0.0, -3.0, -inf), (-0.0, -2.0, inf), (0.0, -3.0, inf), (-0.0, 3.0, -0.0),
            (-0.0, 2.5, 0.0), (-inf, 3.0, -inf), (-inf, -3.0, -0.0), (-inf, 2.5, inf), (-inf, -2.5, 0.0),
            (-2.0, 3.0, -8.0), (-2.0, -1.0, -0.5), (-8.0, 1 / 3, nan), (0.5, inf, 0.0), (0.5, -inf, inf),
            (2.0, -inf, 0.0), (-2.0, inf, inf), (inf, -0.5, 0.0), (2.0, nan, nan), (nan, 1.0, nan),
        ]  # fmt: skip
        x, y, expected = (np.array(column, DTYPES[dtype]) for column in zip(*cases, strict=True))
        got = compute_pow(dtype, x, y)
        np.testing.assert_array_equal(got, expected)
        np.testing.assert_array_equal(np.signbit(got), np.signbit(expected))


def _pow_sweep(dtype: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Pairs over every magnitude of x with y log x over the whole interesting range (and
    past the overflow and underflow thresholds), x near the ends of the log reduction's
    interval with the largest y, x near 1 with huge y, and plain uniform pairs."""
    rng = np.random.default_rng(7)
    info = np.finfo(DTYPES[dtype])
    t_low, t_high = (-760.0, 720.0) if dtype == "f64" else (-110.0, 95.0)
    x1 = _quiet(lambda top: np.geomspace(float(info.smallest_subnormal), top, n), float(info.max))
    edges = rng.choice([np.sqrt(0.5), np.sqrt(2.0), 0.75, 1.5], n) * rng.uniform(0.999, 1.001, n)
    x2 = edges * 2.0 ** rng.integers(-3, 4, n)
    x3 = 1.0 + rng.uniform(-1e-6, 1e-6, n) * rng.choice([1.0, 1e-5], n)
    xs, ys = [], []
    for x in (x1, x2, x3):
        x = x.astype(DTYPES[dtype])
        with np.errstate(all="ignore"):
            y = rng.uniform(t_low, t_high, n) / np.log(x.astype(np.float64))
        xs.append(x)
        ys.append(_quiet(lambda v: v.astype(DTYPES[dtype]), y))
    xs.append(rng.uniform(0.0, 4.0, n).astype(DTYPES[dtype]))
    ys.append(rng.uniform(-50.0, 50.0, n).astype(DTYPES[dtype]))
    xs.append(np.exp(rng.uniform(-3.0, 3.0, n)).astype(DTYPES[dtype]))  # y over every magnitude
    ys.append(
        _quiet(lambda v: v.astype(DTYPES[dtype]), rng.choice([-1.0, 1.0], n) * np.geomspace(1e-300, 1e300, n))
    )
    return np.concatenate(xs), np.concatenate(ys)


@pytest.mark.parametrize("dtype", DTYPES)
def test_pow_dense_sweep_within_2_ulp(dtype):
    assert_pow_accurate(dtype, *_pow_sweep(dtype, 200_000))


@pytest.mark.parametrize("dtype", DTYPES)
def test_pow_negative_x_integer_y(dtype):
    rng = np.random.default_rng(3)
    n = 200_000
    top = 1100 if dtype == "f64" else 160
    x = -np.exp(rng.uniform(-8.0, 8.0, n))
    y = rng.integers(-top, top, n).astype(np.float64)
    near_one = -(1.0 + rng.uniform(-1e-4, 1e-4, n))  # large odd and even y
    huge_y = rng.integers(-(2**40), 2**40, n).astype(np.float64)
    x = np.concatenate([x, near_one, -x])
    y = np.concatenate([y, huge_y, y + 0.5])  # half-integers: NaN
    assert_pow_accurate(dtype, x, y)
    got = compute_pow(dtype, x[:n], y[:n])
    finite = np.isfinite(got) & (got != 0)
    assert (np.signbit(got[finite]) == (y[:n][finite] % 2 == 1)).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_pow_random_floats_within_2_ulp(dtype):
    width = 64 if dtype == "f64" else 32
    floats = st.floats(width=width, allow_nan=True, allow_infinity=True, allow_subnormal=True)
    exponents = st.one_of(floats, st.integers(-2000, 2000).map(float))
    pairs = st.integers(1, 64).flatmap(
        lambda n: st.tuples(
            hnp.arrays(DTYPES[dtype], n, elements=floats), hnp.arrays(DTYPES[dtype], n, elements=exponents)
        )
    )

    @given(pairs)
    def check(pair):
        assert_pow_accurate(dtype, *pair)

    check()


@pytest.mark.parametrize("parallel", [False, True], ids=["range", "prange"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_pow_loop_is_vectorized_without_libm(dtype, parallel):
    loop = _pow_loop(dtype, parallel)
    # Note: pow_f32 evaluates in float64, so with AVX2 (256 bits) a vector holds 4 lanes.
    vector = _VECTOR["f64"] if dtype == "f64" else re.compile(r"<(4|8|16|32) x float>")
    _assert_simd_without_libm(loop, f"pow_{dtype}", vector)
    x = np.linspace(0.5, 2.0, 1000, dtype=DTYPES[dtype])
    y = np.linspace(-30.0, 30.0, 1000, dtype=DTYPES[dtype])
    out = np.empty_like(x)
    loop(x, y, out)
    np.testing.assert_array_equal(out, compute_pow(dtype, x, y))


def _chebyshev_interpolant(fn, degree: int, low: float, high: float) -> list[float]:
    """The polynomial of ``degree`` through ``fn`` at the Chebyshev nodes of [low, high],
    solved in exact rational arithmetic, its coefficients (highest degree first) rounded
    to float64."""
    nodes = [
        Fraction((low + high) / 2 + (high - low) / 2 * math.cos(math.pi * (2 * j + 1) / (2 * degree + 2)))
        for j in range(degree + 1)
    ]
    rows = [[x**k for k in range(degree + 1)] + [fn(x)] for x in nodes]
    for c in range(degree + 1):  # Gauss-Jordan; the Vandermonde matrix needs no pivoting
        for r in range(degree + 1):
            if r != c:
                m = rows[r][c] / rows[c][c]
                rows[r] = [a - m * b for a, b in zip(rows[r], rows[c], strict=True)]
    return [float(rows[k][-1] / rows[k][k]) for k in range(degree, -1, -1)]


def _log_r(z: Fraction) -> Fraction:
    """(2 atanh(s) / s - 2) / s^2 for z = s^2: sum of 2 z^(n-1) / (2n + 1), to 2^-150."""
    return sum(Fraction(2, 2 * n + 1) * z ** (n - 1) for n in range(1, 40))


def test_log_polynomial_is_the_chebyshev_interpolant():
    assert list(fastmath.LOG_POLY_F64) == _chebyshev_interpolant(_log_r, 6, 0.0, 0.0295)


# --- edge values: saturation, signed zeros, thresholds, against NumPy --------------------
# One table: for each (function, dtype) the edge inputs besides the common ones (+-0.0,
# +-inf, NaN, the smallest subnormal, the smallest normal, the largest finite, ...), each
# with its neighbours (nextafter both ways) and negated. One array, one call each.
# Note: the points where tanh, sigmoid and expm1 switch to +-1 in float64 are left out on
# purpose (19.0 / 19.1 stand for tanh's 19.0613): within 1e-10 of them the long double
# reference itself rounds twice (sigmoid(37.42994775016) is 1 - 2^-53, the long double
# expression gives 1.0); float32's switch points are tested ulp by ulp.
EDGE_VALUES = {
    "f64": {
        "exp": [
            709.782712893384,
            709.78,
            709.79,
            -708.3964185322641,
            -708.4,
            -745.1332191019411,
            -745.14,
            -746.0,
            1e-300,
            1e-16,
        ],
        "expm1": [709.782712893384, 709.79, -36.0, -37.0, -37.42, -37.44, -40.0, 1e-300, 1e-16, 2.0**-1022],
        "log": [
            1.0 - 2.0**-53,
            1.0 + 2.0**-52,
            1e-310,
            1e-300,
            1e300,
            0.7071067811865476,
            1.4142135623730951,
        ],
        "log1p": [-1.0, -1.0 + 2.0**-53, -0.5, 1e-300, 1e-310, 2.0**-1022, 1e300],
        "tanh": [1e-300, 1e-310, 1e-8, 18.9, 19.0, 19.1, 22.0, 40.0, 710.0, 1e10],
        "sigmoid": [
            36.0,
            36.7,
            36.74,
            37.42,
            37.44,
            40.0,
            708.4,
            709.78,
            745.13,
            745.14,
            746.0,
            1e10,
            1e-300,
        ],
        "sin": [2.0**26, 6.7e7, 1e10, 1e22, 1e300, 1e-300, 1e-310],
        "cos": [2.0**26, 6.7e7, 1e10, 1e22, 1e300, 1e-300, 1e-310],
    },
    "f32": {
        "exp": [88.72283, 88.7228, 88.73, -87.33654, -87.34, -103.97207, -103.972084, -104.0, 1e-30, 1e-8],
        "expm1": [
            88.72283,
            88.73,
            -16.0,
            -16.6355,
            -17.0,
            -17.29,
            -17.3,
            -17.31,
            -17.32868,
            -17.33,
            -18.0,
            -20.0,
            1e-30,
            1e-8,
        ],
        "log": [1.0 - 2.0**-24, 1.0 + 2.0**-23, 1e-40, 1e-30, 1e30, 0.70710677, 1.4142135],
        "log1p": [-1.0, -1.0 + 2.0**-24, -0.5, 1e-30, 1e-40, 2.0**-126, 1e30],
        "tanh": [
            1e-30,
            1e-40,
            1e-4,
            8.9,
            9.0,
            9.01,
            9.0109,
            9.011,
            9.5,
            9.99,
            10.0,
            10.01,
            17.3,
            20.0,
            88.72,
            100.0,
            4096.0,
            1e10,
            1e30,
        ],
        "sigmoid": [
            16.0,
            16.6355,
            16.64,
            17.0,
            17.3,
            17.33,
            17.4,
            20.0,
            87.33,
            88.72,
            88.73,
            100.0,
            103.97,
            104.0,
            1e10,
            1e-30,
        ],
        "sin": [4096.0, 4097.0, 5e4, 71476.0, 1e5, 1e10, 1e30],
        "cos": [4096.0, 4097.0, 5e4, 71476.0, 1e5, 1e10, 1e30],
    },
}
# pow: (x, y) pairs around overflow and underflow, with signed zeros, infinities and
# subnormals (test_pow_special_value_grid_matches_numpy has the C99 grid besides).
EDGE_POW = {
    "f64": [
        (2.0, 1023.0), (2.0, 1024.0), (2.0, 1023.9999999999999), (2.0, -1022.0), (2.0, -1074.0),
        (2.0, -1075.0), (2.0, -1074.5), (10.0, 308.25), (10.0, 308.26), (10.0, -323.3), (10.0, -324.0),
        (-2.0, 1025.0), (-2.0, 1024.0), (-2.0, -1075.0), (-2.0, -1073.0), (0.5, 1075.0), (0.5, -1024.0),
        (1.7976931348623157e308, 2.0), (1.7976931348623157e308, -2.0), (1.7976931348623157e308, 0.5),
        (5e-324, 0.5), (5e-324, -1.0), (5e-324, 2.0), (-5e-324, 3.0), (-5e-324, -3.0), (-0.0, 0.5),
        (-0.0, -0.5), (-0.0, 3.0), (-0.0, -3.0), (0.0, -np.inf), (-np.inf, 0.5), (-np.inf, -0.5),
        (-np.inf, 3.0), (-np.inf, -3.0), (1.0 + 2.0**-52, 2.0**60), (1.0 - 2.0**-53, 2.0**60),
        (1.0 + 2.0**-52, -(2.0**60)), (-1.0, 2.0**53 + 2), (-1.0, 1.7976931348623157e308),
    ],
    "f32": [
        (2.0, 127.0), (2.0, 128.0), (2.0, 127.99999), (2.0, -126.0), (2.0, -149.0), (2.0, -150.0),
        (2.0, -149.5), (10.0, 38.5), (10.0, 38.6), (10.0, -44.8), (10.0, -46.0), (-2.0, 129.0),
        (-2.0, 128.0), (-2.0, -151.0), (-2.0, -149.0), (0.5, 151.0), (0.5, -128.0), (3.4028235e38, 2.0),
        (3.4028235e38, -2.0), (3.4028235e38, 0.5), (1e-45, 0.5), (1e-45, -1.0), (1e-45, 2.0), (-1e-45, 3.0),
        (-1e-45, -3.0), (-0.0, 0.5), (-0.0, -0.5), (-0.0, 3.0), (-0.0, -3.0), (0.0, -np.inf),
        (-np.inf, 0.5), (-np.inf, -0.5), (-np.inf, 3.0), (-np.inf, -3.0), (1.0 + 2.0**-23, 2.0**40),
        (1.0 - 2.0**-24, 2.0**40), (1.0 + 2.0**-23, -(2.0**40)), (-1.0, 2.0**24 + 2), (-1.0, 3.4028235e38),
    ],
}  # fmt: skip
# At most this many ulp from NumPy's result, besides MAX_ULP from the exact one (NumPy's
# float32 functions are its own SIMD code: within about 1-2 ulp of the exact result).
NUMPY_ULP = 4.0


def edge_values(name: str, dtype: str) -> np.ndarray:
    info = np.finfo(DTYPES[dtype])
    sub, normal, big = float(info.smallest_subnormal), float(info.smallest_normal), float(info.max)
    common = [
        0.0,
        np.inf,
        sub,
        2 * sub,
        normal / 2,
        normal,
        big,
        1.0,
        0.5,
        2.0,
        np.pi / 2,
        np.pi,
        3.0,
        10.0,
        100.0,
    ]
    v = _quiet(lambda a: np.array(a, DTYPES[dtype]), common + EDGE_VALUES[dtype][name])
    v = _quiet(lambda a: np.unique(np.concatenate([a, np.nextafter(a, np.inf), np.nextafter(a, -np.inf)])), v)
    return np.concatenate([v, -v, np.array([np.nan], v.dtype)])


def _special(a: np.ndarray) -> np.ndarray:
    """NaN, +-inf, +-0.0 and +-1: the results that must be NumPy's exactly."""
    return np.isnan(a) | np.isinf(a) | (a == 0) | (np.abs(a) == 1)


def _identical(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return ((a == b) & (np.signbit(a) == np.signbit(b))) | (np.isnan(a) & np.isnan(b))


def assert_edges_match_numpy(label: str, args: tuple, got: np.ndarray, numpy_result, exact) -> None:
    """NaN where NumPy has NaN; NumPy's +-inf, +-0.0 (sign included) and +-1 exactly; others
    within NUMPY_ULP of NumPy's and MAX_ULP of the exact result. ``exact`` is in a wider
    type: where NumPy's result is not the exactly rounded one (sigmoid's 1 / (1 + exp(-x))
    underflows to 0 below -709, saturates early, NumPy's float32 tanh reaches 1 at 10, not
    at 9.0109), the exactly rounded result is also accepted."""
    dtype = got.dtype
    rounded = _quiet(lambda e: e.astype(dtype), exact)

    def where(mask):
        columns = (*(a[mask] for a in args), got[mask], numpy_result[mask], rounded[mask])
        return list(zip(*(c[:5] for c in columns), strict=True))

    bad_nan = np.isnan(got) != np.isnan(numpy_result)
    assert not bad_nan.any(), f"{label}: NaN differs from NumPy at (x, got, numpy, exact) {where(bad_nan)}"
    ok = _identical(got, numpy_result) | _identical(got, rounded)
    bad_special = (_special(got) | _special(rounded)) & ~ok
    assert not bad_special.any(), (
        f"{label}: +-inf/0/1 differ from NumPy (x, got, numpy, exact) {where(bad_special)}"
    )
    with np.errstate(all="ignore"):
        spacing = np.spacing(np.abs(rounded)).astype(exact.dtype)
        errors = np.abs((got.astype(exact.dtype) - exact) / spacing).astype(np.float64)
        numpy_errors = np.abs(got.astype(np.float64) - numpy_result) / np.spacing(
            np.abs(numpy_result)
        ).astype(np.float64)
    errors[ok] = 0.0
    bad = errors > MAX_ULP
    assert not bad.any(), f"{label}: more than {MAX_ULP} ulp from the exact result at {where(bad)}"
    numpy_errors[ok | _special(numpy_result)] = 0.0
    bad = numpy_errors > NUMPY_ULP
    assert not bad.any(), f"{label}: more than {NUMPY_ULP} ulp from NumPy at {where(bad)}"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", (*NAMES, "pow"))
def test_edge_values_match_numpy(name, dtype):
    if name == "pow":
        pairs = EDGE_POW[dtype]
        pairs = pairs + [(-x, y) for x, y in pairs] + [(x, -y) for x, y in pairs]
        x, y = _pow_arrays(dtype, [p[0] for p in pairs], [p[1] for p in pairs])
        got = compute_pow(dtype, x, y)
        numpy_result = _quiet(lambda v: np.power(v[0], v[1]), (x, y))
        assert_edges_match_numpy(f"pow_{dtype}", (x, y), got, numpy_result, pow_reference(dtype, x, y))
        return
    x = edge_values(name, dtype)
    got = compute(name, dtype, x)
    numpy_result = _quiet(NUMPY[name], x).astype(x.dtype)
    assert_edges_match_numpy(f"{name}_{dtype}", (x,), got, numpy_result, reference(name, dtype, x))


def test_tanh_float32_saturates_like_numpy():
    """The regression: float32 tanh stopped at 0.99999994 (its argument was clamped at 9,
    below 9.0109 where tanh rounds to 1), for every |x| >= 9 up to inf."""
    x = np.array([10, 20, 100, np.inf, -10, -20, -100, -np.inf], np.float32)
    np.testing.assert_array_equal(compute("tanh", "f32", x), np.tanh(x))
    np.testing.assert_array_equal(compute("tanh", "f32", x), np.sign(x))
    import lazyfuse as lf

    np.testing.assert_array_equal(lf.tanh(lf.asarray(x)).compute(), np.tanh(x))
