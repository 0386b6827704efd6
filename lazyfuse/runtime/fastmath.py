"""Branch-free scalar math that LLVM vectorizes inside Numba loops.

Every public function (``exp_f64``, ``exp_f32``, ..., ``pow_f64(x, y)``, ``pow_f32(x, y)``
and ``FUNCTIONS``, keyed by ``(name, "f64" | "f32")``; ``DERIVED`` the same for the
functions built from those: exp2, log2, log10, sinh, cosh) is ``@njit(error_model="numpy")``,
marked for LLVM to inline (see :func:`_jit`), with no C library call on its hot path and
no data-dependent branch: special cases are conditional expressions (LLVM
``select``), 2^k is built from integer bits and exponents are read from them (one
``bitcast`` intrinsic per direction and dtype); conversions between int64 and floats go
through the bits of v + 1.5 * 2^52 (2^23) as well: AVX2 has no vector instruction for
them. LLVM inlines them into the calling njit function (reduction kernels import the same
functions inlined by Numba, :func:`inlined_by_numba`, through ``lazyfuse.runtime.fastmath_rows``),
so a loop
``out[i] = exp_f64(x[i])`` over ``range`` or ``prange`` becomes a SIMD loop: 8 doubles or
16 floats per AVX-512 vector. The float32 versions compute in float32 throughout (every
constant is an ``np.float32``) with shorter polynomials, except pow_f32 (float64 inside).
Call them from kernels compiled without ``fastmath`` flags: ``nnan``/``ninf`` would remove
the NaN and infinity handling.

Methods
-------
exp
    k = round(x / ln2) (the 1.5 * 2^52 shift trick), r = x - k ln2 with ln2 in two parts
    (Cody-Waite: k * LN2_HI is exact), keeping the rounding error r_lo; exp(r) = 1 + r +
    (r_lo + r^2 P(r)), P the Taylor series 1/2! + r/3! + ... (to r^13 for f64, r^8 for
    f32), 1 + r split exactly (Fast2Sum); times 2^(k // 2) * 2^(k - k // 2), two normal
    factors, so subnormal results are rounded once and overflow gives inf naturally.
    x is clamped first (+inf -> inf, -inf -> 0); NaN is passed through.
expm1
    The same reduction and P (to r^16 / r^8), then (a + b + c) m with a = 2^k - 1,
    b = 2^k r, c = 2^k q, m = 1 for k <= 0 and a = 1 - 2^-k, b = r, c = q, m = 2^k for
    k > 0 (q = r_lo + r^2 P(r)): |a| >= |b|, so a + b is split exactly and nothing is
    lost where 2^k (1 + e) - 1 cancels; where a is not exact (2^k - 1 for k below -53 /
    -24, 1 - 2^-k above 53 / 24), c also takes a's rounding error (without it expm1 gave
    -1 instead of -1 + 2^-53 over [-37.43, -37.08], float32 over [-17.33, -16.98]). For
    k = 0, r = x exactly; -0.0 is preserved.
log, log1p
    x = 2^e (1 + f), 1 + f in [sqrt(1/2), sqrt(2)), from the bits (subnormals scaled by
    2^52 / 2^23 first); s = f / (2 + f), log(1 + f) = f - f^2/2 + s (f^2/2 + R(s^2)), R
    approximates 2 atanh(s) / s - 2 (|s| <= 0.1716): for f64 by the degree-6 polynomial
    interpolating it at Chebyshev nodes (7 terms where Taylor's series needs 10), for f32
    by the Taylor series (terms 2 s^2n / (2n + 1), n <= 5); plus e ln2 in two parts.
    log1p works on u = fl(1 + x) and adds the rounding error c of u back as c / u.
    log(0) = -inf, log(x < 0) = NaN, log1p(-1) = -inf, log1p(-0.0) = -0.0.
tanh
    t = expm1(2 |x|) as a double-double (|x| clamped at 20 / 10, where tanh rounds to 1:
    it does above 19.0613 / 9.0109; a clamp below that, as float32's 9 was, never gives 1),
    t / (t + 2) by one division and one exact-residual correction (Dekker's product by
    Veltkamp splitting: no FMA needed); the sign bit of x is copied in (-0.0 stays).
sigmoid
    e = exp(-|x|) in (0, 1] as a double-double; 1 / (1 + e) for x >= 0, e / (1 + e) for
    x < 0, with the same corrected division: no overflow, and correct subnormal results for
    x < -708 (where NumPy's ``1 / (1 + np.exp(-x))`` underflows to 0: the tests compare with
    the exact value; the two differ only there).
sin, cos
    k = round(x 2/pi), r = x - k pi/2 with pi/2 in four parts (Cody-Waite): the first
    three have 26 (f64) / 12 (f32) significant bits, so k * part is exact for |k| < 2^27
    / 2^12; the fourth is the rest (pi/2 to about 134 / 60 bits); the rounding errors of
    the last subtractions are kept (TwoSum) as r_lo. sin and cos of r + r_lo by Taylor
    series on |r| <= pi/4 (to r^17 / r^16 for f64, r^9 / r^10 for f32), picked and
    signed by k mod 4. Exact over |x| <= SIN_LIMIT_F64 = 2^26 (f32: SIN_LIMIT_F32 = 4096,
    |k| <= 2608), checked at the doubles / floats nearest to multiples of pi/2.
    Beyond the limit (and for inf and NaN) the element goes to the C library's sin/cos,
    behind a branch. The call site names masked vector variants (LLVM's
    "vector-function-abi-variant" attribute), so LLVM still vectorizes the loop: each
    vector calls the variant with the mask of lanes beyond the limit; it returns at once
    when the mask is empty (the cost for ordinary arguments: one call per vector) and
    else calls the C library for those lanes only. Huge arguments cost a scalar libm call
    each; a vectorized Payne-Hanek reduction would remove that (not written).
pow
    pow_f64(x, y) = exp(y log|x|) with log|x| as a double-double (to about 2^-64
    relative): the reduction of log, s = f / (2 + f) as sh + sl (the division's residual by
    Dekker's product), log(1 + f) = 2 s + s^3 (2/3 + z Q(z)) with s^3 and 2/3 + ... carried
    as double-doubles, Q the Taylor series to z^10; plus e ln2. y log|x| = hi + lo by
    Dekker's product; exp(hi + lo) takes k from hi and folds lo into the reduced argument
    (TwoSum), then as exp. |y| is clamped to 1e300 (no result changes). pow_f32 computes in
    float64 (as glibc's powf): 2^(y e + y log2(1 + f)) with y e exact, plain float64 log and
    exp polynomials, one rounding to float32 at the end; powers of two with integral y e
    are exact (halfway cases round to even, as NumPy's). The C99 special cases are selects
    (``_pow_select_f64``): pow(x, +-0) = 1 and pow(1, y) = 1 even for NaN; negative finite
    x with a non-integer finite y gives NaN, with an odd integer y a negative result;
    zeros, infinities and y = +-inf as C99 (pow(-1, +-inf) = 1).
exp2, log2, log10, sinh, cosh (``DERIVED``)
    f64 from pow's pieces: exp2(x) = exp(x ln2) with x ln2 a double-double (Dekker's
    product, ln2 in two parts), exp of it as pow's, so 2^k is exact; log2 and log10 =
    log(x) (1/ln2 or 1/ln10) with pow's double-double log and the constant in two parts
    (log2(2^k) = k exactly); sinh(x) = (t + t / (t + 1)) / 2 with t = expm1(|x|) as a
    double-double (no cancellation: both terms are positive; ``_div_dd``), e^|x| / 2 =
    exp(|x| - ln2) above 20; cosh(x) = e + 1 / (4 e) with that e, whose rounding error
    is multiplied by tanh(x) (small where the two terms are alike); the sign of x is
    copied into sinh (-0.0 stays). f32 in float64 with one rounding at the end: exp2 as
    pow_f32's 2^t, log2 / log10 as log_f64 times the constant, sinh and cosh from
    expm1_f64 / exp_f64.

Dekker's product (tanh, sigmoid, pow) takes its error term from one FMA when the target
CPU has FMA (``HAS_FMA``: the host's features, or NUMBA_CPU_NAME / NUMBA_CPU_FEATURES),
from Veltkamp's splitting otherwise: both are exact, so results are the same.

Measured accuracy: max error in ulp, float64 against NumPy's long double (x87 80-bit)
function rounded to float64, float32 against NumPy's float64 function rounded to float32,
over the sweeps of ``tests/test_fastmath.py`` (f64: 1e6 points per function, uniform and
linear over the interesting interval, log-spaced magnitudes 5e-324..1.8e308 of both signs,
the thresholds; f32: every 4099th bit pattern plus 1e6 points over the interval):

    function   float64   float32
    exp        0.75      0.75
    expm1      0.94      0.89
    log        0.81      0.80
    log1p      0.82      0.81
    tanh       0.76      0.75
    sigmoid    0.76      0.76
    sin        0.79      0.77
    cos        0.77      0.79
    pow        0.79      0.50
    exp2       0.75      0.50
    log2       0.50      0.50
    log10      0.50      0.50
    sinh       1.17      0.50
    cosh       1.03      0.50

(pow: f64 over 2e6-point sweeps of x log-spaced over 5e-324..1.8e308, x near sqrt(1/2),
sqrt(2) and 1 with y = t / log x for t uniform over [-760, 760], the worst being subnormal
results; normal results stay below about 0.76 ulp. f32 the same with t over [-110, 110]:
correctly rounded in every point measured. exp2 ... cosh: measured the same way, over
sweeps of 1.6e6 float64 points (uniform and linear over the interval where the function
is neither trivial nor saturated, log-spaced magnitudes of both signs) and the float32
bit-pattern sweep, where each float32 one was correctly rounded in every point;
``tests/test_elementwise_more.py`` checks them through kernels.)
"""

from __future__ import annotations

import contextlib
import math
from types import FunctionType
from typing import Any

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

__all__ = ["DERIVED", "FUNCTIONS"]


# --- bit casts -------------------------------------------------------------------------


def _to_bits(float_type, int_type):
    """An intrinsic: the integer of ``int_type`` holding the bits of a ``float_type``."""

    def typer(typingctx, x):
        if x != float_type:
            return None

        def codegen(context, builder, signature, args):
            return builder.bitcast(args[0], ir.IntType(int_type.bitwidth))

        return int_type(float_type), codegen

    return intrinsic(typer)


def _from_bits(float_type, int_type):
    """An intrinsic: the ``float_type`` whose bits are an integer (cast to ``int_type``
    first, so wider integers are truncated)."""

    def typer(typingctx, bits):
        if not isinstance(bits, types.Integer):
            return None

        def codegen(context, builder, signature, args):
            value = context.cast(builder, args[0], signature.args[0], int_type)
            return builder.bitcast(value, context.get_value_type(float_type))

        return float_type(bits), codegen

    return intrinsic(typer)


_f64_bits = _to_bits(types.float64, types.int64)
_bits_f64 = _from_bits(types.float64, types.int64)
_f32_bits = _to_bits(types.float32, types.int32)
_bits_f32 = _from_bits(types.float32, types.int32)


@intrinsic
def _muladd(typingctx, a, b, c):
    """a * b + c as llvm.fmuladd: fused when the target has FMA."""
    if not (isinstance(a, types.Float) and a == b == c):
        return None

    def codegen(context, builder, signature, args):
        lltype = args[0].type
        name = "llvm.fmuladd.f64" if a == types.float64 else "llvm.fmuladd.f32"
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(lltype, [lltype] * 3), name)
        return builder.call(fn, args)

    return a(a, a, a), codegen


@intrinsic
def _fma(typingctx, a, b, c):
    """a * b + c rounded once (llvm.fma): only where HAS_FMA (else it is a libm call)."""
    if not (isinstance(a, types.Float) and a == b == c):
        return None

    def codegen(context, builder, signature, args):
        lltype = args[0].type
        name = "llvm.fma.f64" if a == types.float64 else "llvm.fma.f32"
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(lltype, [lltype] * 3), name)
        return builder.call(fn, args)

    return a(a, a, a), codegen


def _llvm_extreme(name: str) -> Any:
    """LLVM's ``llvm.<name>`` (maximum or minimum) of two floats as a Numba intrinsic:
    NaN if either is NaN, -0.0 below 0.0. The loop vectorizer folds a reduction of it in
    vectors, where a reduction written with Python's comparisons stays scalar."""

    @intrinsic
    def extreme(typingctx, a, b):
        if not (isinstance(a, types.Float) and a == b):
            return None

        def codegen(context, builder, signature, args):
            lltype = args[0].type
            suffix = "f64" if a == types.float64 else "f32"
            fnty = ir.FunctionType(lltype, [lltype, lltype])
            fn = cgutils.get_or_insert_function(builder.module, fnty, f"llvm.{name}.{suffix}")
            return builder.call(fn, args)

        return a(a, a), codegen

    return extreme


# What codegen/cpu.py's max, min, argmax and argmin fold floats with (EXTREME_FOLDS there).
INTRINSICS = {
    f"llvm_{name}_{dtype}": _llvm_extreme(name) for name in ("maximum", "minimum") for dtype in ("f32", "f64")
}
globals().update(INTRINSICS)


def _target_has_fma() -> bool:
    """Whether Numba compiles for a CPU with FMA: the host's, or NUMBA_CPU_NAME /
    NUMBA_CPU_FEATURES where set (then only when the features name +fma)."""
    try:
        import llvmlite.binding as llvm
        from numba.core import config

        if getattr(config, "CPU_NAME", None):
            return "+fma" in (getattr(config, "CPU_FEATURES", None) or "").split(",")
        return "+fma" in llvm.get_host_cpu_features().flatten().split(",")
    except Exception:  # any doubt: the portable splitting
        return False


# Dekker's product takes its exact error from one FMA where the target has it (the same
# exact value as Veltkamp's splitting, so the same results, in 2 operations instead of 17).
HAS_FMA = _target_has_fma()


# --- constants ---------------------------------------------------------------------------
# Derived with exact rational arithmetic (ln2 = 2 atanh(1/3), pi by Machin's formula, both
# to 300 bits): each "HI" part is rounded to few significant bits so that k * HI is exact,
# each "LO" part is the rest rounded to the working precision.


# Note: no disk cache for the helpers themselves: inlined into each kernel (whose
# compiled code is cached), they are never called on their own, and a cached dispatcher
# costs twice as much to create, in every process's first kernel (the 50 helpers; the
# lazyfuse part of bench_dispatch.py's new-process line; see benchmarks/README.md).
_PYTHON_FUNCTIONS: dict[str, Any] = {}  # every function's Python source, by name


def _jit(fn: Any) -> Any:
    """``fn`` compiled once per signature as a function of its own, which LLVM inlines
    into each caller (``alwaysinline``), where the vectorizer then sees its body.

    Note: Numba's own inlining (``inline="always"``) copied and retyped the function's IR
    at every call site: about 0.9 s of compile time per call (a kernel with 8 tanh calls
    took 7.8 s to compile, 0.22 s this way; the loop runs as fast, vectorized alike). LLVM
    leaves a large function's calls in place unless it is marked so. Reduction kernels call
    :func:`inlined_by_numba`'s instead (see there)."""
    _PYTHON_FUNCTIONS[fn.__name__] = fn
    dispatcher = numba.njit(error_model="numpy", inline="never")(fn)
    add_overload = dispatcher.add_overload

    def marked(compiled: Any) -> None:
        name = compiled.fndesc.llvm_func_name
        # Note: Numba's internals (numba 0.68); without them the call stays a call: right, slower
        with contextlib.suppress(AttributeError):
            compiled.library._final_module.get_function(name).add_function_attribute("alwaysinline")
        add_overload(compiled)

    dispatcher.add_overload = marked
    return dispatcher


F32 = np.float32
I32 = np.int32

LOG2E = 1.4426950408889634  # 1 / ln2
LN2_HI = 0.6931471805598903  # ln2 to 42 bits: k * LN2_HI exact for |k| < 2^11
LN2_LO = 5.497923018708371e-14  # ln2 - LN2_HI
SHIFT_F64 = 6755399441055744.0  # 1.5 * 2^52: (v + SHIFT) - SHIFT rounds v to an integer
SHIFT_BITS_F64 = 0x4338000000000000  # bits of SHIFT_F64: bits(SHIFT + k) = SHIFT_BITS + k
EXP_MAX_F64 = 710.0  # exp overflows above 709.78; clamping here keeps k <= 1024
EXP_MIN_F64 = -746.0  # exp underflows to 0 below -745.13; clamping keeps k >= -1077
EXPM1_MIN_F64 = -40.0  # expm1(x) rounds to -1 below about -38
TANH_MAX_F64 = 20.0  # tanh(x) rounds to 1 above 19.0613: tanh(20) = 1 - 8e-18 rounds to 1
MIN_NORMAL_F64 = 2.2250738585072014e-308
TWO52 = 4503599627370496.0
SQRT_HALF_BITS_F64 = 0x3FE6A09E667F3BCD  # bits of sqrt(1/2)
SIGN_BIT_F64 = -0x8000000000000000
SPLIT_F64 = 134217729.0  # 2^27 + 1: Veltkamp's split into two 26-bit halves

LOG2E_F32 = F32(1.4426950408889634)
LN2_HI_F32 = F32(0.693145751953125)  # ln2 to 16 bits: k * LN2_HI_F32 exact for |k| < 2^8
LN2_LO_F32 = F32(1.428606765330187e-06)
SHIFT_F32 = F32(12582912.0)  # 1.5 * 2^23
SHIFT_BITS_F32 = 0x4B400000  # bits of SHIFT_F32
EXP_MAX_F32 = F32(89.0)  # exp overflows above 88.72
EXP_MIN_F32 = F32(-104.0)  # exp underflows to 0 below -103.97
EXPM1_MIN_F32 = F32(-20.0)  # expm1(x) rounds to -1 below about -17.3
TANH_MAX_F32 = F32(10.0)  # tanh(x) rounds to 1 above 9.0109: tanh(10) = 1 - 4e-9 rounds to 1
MIN_NORMAL_F32 = F32(1.1754943508222875e-38)
TWO23_F32 = F32(8388608.0)
SQRT_HALF_BITS_F32 = I32(0x3F3504F3)
SIGN_BIT_F32 = I32(-0x80000000)
SPLIT_F32 = F32(4097.0)  # 2^12 + 1
ZERO_F32, HALF_F32, ONE_F32, TWO_F32 = F32(0.0), F32(0.5), F32(1.0), F32(2.0)
INF_F32, NAN_F32 = F32(np.inf), F32(np.nan)

# pi/2 = PIO2_1 + PIO2_2 + PIO2_3 + PIO2_4 (+ 2e-41 / 1e-28): the first three rounded to
# 26 (f64) / 12 (f32) significant bits, so k PIO2_i is exact for |k| < 2^27 / 2^12.
TWO_OVER_PI = 0.6366197723675814
PIO2_1 = 1.5707963407039642  # 0x1.921fb58p+0
PIO2_2 = -1.3909067675399456e-08  # -0x1.dde974p-27
PIO2_3 = 6.123233932053594e-17  # 0x1.1a62630p-54
PIO2_4 = 6.36831716351095e-25  # 0x1.8a2e03707344ap-81
SIN_LIMIT_F64 = 67108864.0  # 2^26: |k| < 2^26 and the reduction is checked to 0.5 ulp
TWO_OVER_PI_F32 = F32(0.6366197723675814)
PIO2_1_F32 = F32(1.57080078125)  # 0x1.922p+0
PIO2_2_F32 = F32(-4.453584551811218e-06)  # -0x1.2aep-18
PIO2_3_F32 = F32(-8.706138032721356e-10)  # -0x1.deap-31
PIO2_4_F32 = F32(6.223372171896613e-14)
SIN_LIMIT_F32 = F32(4096.0)  # |k| <= 2608 < 2^12

# Taylor coefficients, highest degree first (for Horner), rounded to the working type.
# expm1(r) = r + r^2 P(r), P(r) = 1/2! + r/3! + ...: |r| <= ln2/2, so the first omitted
# term, r^17/17! (f64, P to degree 14) or r^9/9! (f32, P to degree 6), is below 1e-22 /
# 2e-10: small against the result even where expm1 = 2^k (1 + e) - 1 cancels (k = 1).
EXPM1_POLY_F64 = tuple(1.0 / math.factorial(n) for n in range(16, 1, -1))
# exp alone needs no more than r^13 / 13! (its first omitted term is 4e-18 of the result).
EXP_POLY_F64 = EXPM1_POLY_F64[3:]
EXPM1_POLY_F32 = tuple(F32(1.0 / math.factorial(n)) for n in range(8, 1, -1))
# 2 atanh(s) / s - 2 = z R(z), z = s^2 <= 0.0295, R(z) = 2/3 + 2/5 z + 2/7 z^2 + ... .
# f64: the degree-6 polynomial that interpolates R at the 7 Chebyshev nodes of
# [0, 0.0295], from exact rational arithmetic, rounded to float64
# (tests/test_fastmath.py derives it again): |z (P - R)| < 1e-17 over the interval, about
# 0.02 ulp of log. The Taylor series needs 10 terms for as much. f32: the Taylor series;
# its first omitted term, z^5 * 2/11, is below 2e-9.
LOG_POLY_F64 = (
    0.14619343453512615,
    0.15331487235865734,
    0.18182896183483085,
    0.2222221103781659,
    0.28571428626570206,
    0.3999999999989819,
    0.666666666666667,
)
LOG_POLY_F32 = tuple(F32(2.0 / (2 * n + 1)) for n in range(5, 0, -1))


# pow: log(1 + f) = 2 s + s^3 (2/3 + z Q(z)), z = s^2 <= 0.0295, Q the Taylor series
# 2/5 + 2/7 z + ... + 2/25 z^10 (the first omitted term, 2/27 s^27, is below 2^-70 of
# 2 s); 2/3 = C3_HI + C3_LO. powf (in float64) needs much less: log_f64's polynomial
# (fdlibm's form), exp to r^9 (first omitted term below 2^-37 of the result).
POW_LOG_POLY_F64 = tuple(2.0 / (2 * n + 1) for n in range(12, 1, -1))
C3_HI = 0.6666666666666666
C3_LO = 3.700743415417188e-17  # 2/3 - C3_HI
TWO53 = 9007199254740992.0
POW_Y_MAX_F64 = 1e300
POWF_LOG_POLY = LOG_POLY_F64
POWF_EXP_POLY = EXP_POLY_F64[4:]
POWF_T_MAX = 300.0  # |y log2 x| beyond which float32 pow is 0 or inf (2^300 is a normal double)
LN2 = 0.6931471805599453


# sin(r) = r + r z S(z), cos(r) = 1 - z/2 + z^2 C(z), z = r^2, |r| <= pi/4: Taylor series,
# first omitted terms r^19/19! (f64) / r^11/11! (f32) for sin, r^18/18! / r^12/12! for cos:
# below 1e-19 / 2e-9 of the result.
SIN_POLY_F64 = tuple((-1.0) ** n / math.factorial(2 * n + 1) for n in range(8, 0, -1))
COS_POLY_F64 = tuple((-1.0) ** n / math.factorial(2 * n) for n in range(8, 1, -1))
SIN_POLY_F32 = tuple(F32((-1.0) ** n / math.factorial(2 * n + 1)) for n in range(4, 0, -1))
COS_POLY_F32 = tuple(F32((-1.0) ** n / math.factorial(2 * n)) for n in range(5, 1, -1))


def _split4(coeffs: tuple) -> tuple:
    """A polynomial's coefficients (highest degree first) for :func:`_poly_f64`: the
    two lowest, and the rest as four interleaved parts (part j: the degrees j mod 4 of
    the rest, highest first)."""
    rest, n = coeffs[:-2], len(coeffs) - 2
    return tuple(rest[(n - 1 - j) % 4 :: 4] for j in range(4)), coeffs[-2], coeffs[-1]


# The polynomials of 11 terms and more, split for _poly_f64. (Shorter ones stay Horner's:
# the split's extra multiplies cost more than their chains' waits, and in sin and cos
# LLVM then spilled registers around the masked C-library call.)
EXP_PARTS_F64, EXPM1_PARTS_F64, POW_LOG_PARTS_F64 = map(
    _split4, (EXP_POLY_F64, EXPM1_POLY_F64, POW_LOG_POLY_F64)
)


# Polynomials step with llvm.fmuladd: one FMA where the CPU has it (the same or better
# rounding, half the instructions), a multiply and an add where it does not. Everything
# else is strict IEEE arithmetic, which the error-free transformations (Fast2Sum, Dekker's
# product) rely on.
@_jit
def _horner_f64(coeffs, r):
    p = coeffs[0]
    for i in range(1, len(coeffs)):
        p = _muladd(p, r, coeffs[i])
    return p


@_jit
def _horner_f32(coeffs, r):
    p = coeffs[0]
    for i in range(1, len(coeffs)):
        p = _muladd(p, r, coeffs[i])
    return p


# Note: P(r) = c0 + r (c1 + r R(r)), R(r) = Q0(r^4) + r Q1(r^4) + r^2 (Q2(r^4) + r Q3(r^4)):
# Estrin's scheme one level deep for the small terms, four short Horner chains that run
# side by side where one long chain would have each step wait for the last (the CPU
# cannot overlap enough loop iterations to hide that: sigmoid_f64 on data in L1, one
# thread, got faster, as bench_math.py's `fastmath loop` row shows with a small --n and
# NUMBA_NUM_THREADS=1; over its default 1e7 elements, where memory traffic overlaps the
# waits, exp gained a little and sigmoid nothing measurable; see benchmarks/README.md);
# the last two steps are Horner's, whose rounding the large terms need (expm1 cancels:
# with all of P by Estrin its maximum error grew from 0.94 to 1.18 ulp).
@_jit
def _poly_f64(poly, r):
    """The polynomial that :func:`_split4` made ``poly`` of, at r."""
    parts, c1, c0 = poly
    r2 = r * r
    r4 = r2 * r2
    low = _muladd(_horner_f64(parts[1], r4), r, _horner_f64(parts[0], r4))
    high = _muladd(_horner_f64(parts[3], r4), r, _horner_f64(parts[2], r4))
    return _muladd(_muladd(_muladd(high, r2, low), r, c1), r, c0)


# --- error-free transformations (no FMA needed) ------------------------------------------


@_jit
def _two_sum(a, b):
    """(s, e) with s = fl(a + b) and a + b = s + e exactly (Knuth)."""
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


@_jit
def _two_prod_f64(a, b):
    """(p, e) with p = fl(a b) and a b = p + e exactly (Dekker, Veltkamp splitting; one
    FMA where HAS_FMA). Splitting needs |a|, |b| < 2^996."""
    p = a * b
    if HAS_FMA:
        return p, _fma(a, b, -p)
    ca = SPLIT_F64 * a
    a_hi = ca - (ca - a)
    a_lo = a - a_hi
    cb = SPLIT_F64 * b
    b_hi = cb - (cb - b)
    b_lo = b - b_hi
    return p, ((a_hi * b_hi - p) + a_hi * b_lo + a_lo * b_hi) + a_lo * b_lo


@_jit
def _two_prod_f32(a, b):
    p = a * b
    if HAS_FMA:
        return p, _fma(a, b, -p)
    ca = SPLIT_F32 * a
    a_hi = ca - (ca - a)
    a_lo = a - a_hi
    cb = SPLIT_F32 * b
    b_hi = cb - (cb - b)
    b_lo = b - b_hi
    return p, ((a_hi * b_hi - p) + a_hi * b_lo + a_lo * b_hi) + a_lo * b_lo


@_jit
def _div_dd_f64(n_hi, n_lo, d_hi, d_lo):
    """(n_hi + n_lo) / (d_hi + d_lo) to about 0.5 ulp: one division and one correction
    step, q0 + (n - q0 d) / d with the residual computed exactly."""
    inv = 1.0 / d_hi
    q0 = n_hi * inv
    p, p_err = _two_prod_f64(q0, d_hi)
    residual = ((n_hi - p) - p_err) + (n_lo - q0 * d_lo)
    return q0 + residual * inv


@_jit
def _div_dd_f32(n_hi, n_lo, d_hi, d_lo):
    inv = ONE_F32 / d_hi
    q0 = n_hi * inv
    p, p_err = _two_prod_f32(q0, d_hi)
    residual = ((n_hi - p) - p_err) + (n_lo - q0 * d_lo)
    return q0 + residual * inv


@_jit
def _int_of_f64(kd):
    """np.int64(kd) for an integral kd with |kd| < 2^51, from the bits of kd + 1.5 * 2^52:
    AVX2 has no vector float64 -> int64 conversion, so np.int64() splits a SIMD loop into
    four scalar conversions per vector."""
    return _f64_bits(kd + SHIFT_F64) - SHIFT_BITS_F64


@_jit
def _f64_of_int(k):
    """np.float64(k) for |k| < 2^51 by the same shift, the other way."""
    return _bits_f64(k + SHIFT_BITS_F64) - SHIFT_F64


@_jit
def _f32_of_int(k):
    """np.float32(k) for |k| < 2^22 (Numba's integer arithmetic is int64, and int64 ->
    float32 has no AVX2 vector instruction either)."""
    return _bits_f32(k + SHIFT_BITS_F32) - SHIFT_F32


# --- exp, expm1 ----------------------------------------------------------------------------


@_jit
def _pow2_f64(k):
    """2^k for integer k in [-1022, 1023], from the exponent bits."""
    return _bits_f64((k + 1023) << 52)


@_jit
def _pow2_f32(k):
    """2^k for integer k in [-126, 127], from the exponent bits."""
    return _bits_f32((k + I32(127)) << I32(23))


@_jit
def _exp_reduce_f64(x):
    """(k, r, r_lo) with x = k ln2 + r + r_lo, |r| <= ln2/2 (x already clamped):
    x - k LN2_HI is exact, r_lo keeps the rounding error of subtracting k LN2_LO."""
    kd = (x * LOG2E + SHIFT_F64) - SHIFT_F64
    t = x - kd * LN2_HI
    r = t - kd * LN2_LO
    return _int_of_f64(kd), r, (t - r) - kd * LN2_LO


@_jit
def _exp_reduce_f32(x):
    kd = (x * LOG2E_F32 + SHIFT_F32) - SHIFT_F32
    t = x - kd * LN2_HI_F32
    r = t - kd * LN2_LO_F32
    return np.int32(kd), r, (t - r) - kd * LN2_LO_F32


@_jit
def _exp_dd_f64(x):
    """(k, hi, lo) with exp(x) = 2^k (hi + lo), x in [EXP_MIN_F64, EXP_MAX_F64]:
    1 + r + (r_lo + r^2 P(r)) with 1 + r split exactly (Fast2Sum)."""
    k, r, r_lo = _exp_reduce_f64(x)
    s = 1.0 + r
    tail = ((1.0 - s) + r) + (r_lo + r * r * _poly_f64(EXP_PARTS_F64, r))
    hi = s + tail
    return k, hi, (s - hi) + tail


@_jit
def _exp_dd_f32(x):
    k, r, r_lo = _exp_reduce_f32(x)
    s = ONE_F32 + r
    tail = ((ONE_F32 - s) + r) + (r_lo + r * r * _horner_f32(EXPM1_POLY_F32, r))
    hi = s + tail
    return k, hi, (s - hi) + tail


@_jit
def _scale_f64(v, k):
    """v 2^k for k in [-2044, 2046], as two normal factors: a subnormal result is rounded
    once, an overflow gives inf."""
    half = k >> 1
    return v * _pow2_f64(half) * _pow2_f64(k - half)


@_jit
def _scale_f32(v, k):
    half = k >> I32(1)
    return v * _pow2_f32(half) * _pow2_f32(k - half)


@_jit
def _exp_core_f64(x):
    k, hi, _ = _exp_dd_f64(x)
    return _scale_f64(hi, k)


@_jit
def _exp_core_f32(x):
    k, hi, _ = _exp_dd_f32(x)
    return _scale_f32(hi, k)


@_jit
def exp_f64(x):
    clamped = x if x < EXP_MAX_F64 else EXP_MAX_F64  # NaN -> EXP_MAX, restored below
    clamped = clamped if clamped > EXP_MIN_F64 else EXP_MIN_F64
    result = _exp_core_f64(clamped)
    return result if x == x else x


@_jit
def exp_f32(x):
    clamped = x if x < EXP_MAX_F32 else EXP_MAX_F32
    clamped = clamped if clamped > EXP_MIN_F32 else EXP_MIN_F32
    result = _exp_core_f32(clamped)
    return result if x == x else x


@_jit
def _expm1_dd_f64(x, negative):
    """(hi, lo), hi + lo = expm1(x) for x in [EXPM1_MIN_F64, EXP_MAX_F64] (-0.0 gives
    +0.0), as (a + b + c) m: for k <= 0, a + b + c = 2^k - 1 + 2^k r + 2^k q and m = 1;
    for k > 0, 1 - 2^-k + r + q and m = 2^k; q = r_lo + r^2 P(r). |a| >= |b|, so a + b is
    split exactly (Fast2Sum): no cancellation loses bits. a itself is inexact for |k| > 53
    (2^k - 1 rounds to -1 for k < -53): c takes its rounding error in where ``negative``
    (a constant: False where x >= 0, as tanh's 2|x|, leaves those two operations out)."""
    k, r, r_lo = _exp_reduce_f64(x)
    q = r_lo + r * r * _poly_f64(EXPM1_PARTS_F64, r)
    k_neg = k if k < 0 else 0
    k_pos = k if k > 1 else 1
    scale = _pow2_f64(k_neg)
    k_inv = k_pos if k_pos < 100 else 100  # 1 - 2^-k == 1 for all k >= 54
    positive = k > 0
    inv = _pow2_f64(-k_inv)
    a = (1.0 - inv) if positive else scale - 1.0
    b = r if positive else scale * r
    # c keeps the bits a lost: 1 - 2^-k for k > 53, 2^k - 1 for k < -53 (Fast2Sum's error)
    c_neg = (scale * q + (scale - (a + 1.0))) if negative else scale * q  # (not "+ 0.0": kept)
    c = (q + ((1.0 - a) - inv)) if positive else c_neg
    s = a + b
    tail = ((a - s) + b) + c
    hi = s + tail
    lo = (s - hi) + tail
    half_m = _pow2_f64(k_pos - 1)  # m = 2 half_m: 2^1024 overflows
    if_positive = ((hi * half_m) * 2.0, (lo * half_m) * 2.0)
    return if_positive if positive else (hi, lo)


@_jit
def _expm1_dd_f32(x, negative):
    k, r, r_lo = _exp_reduce_f32(x)
    q = r_lo + r * r * _horner_f32(EXPM1_POLY_F32, r)
    k_neg = k if k < I32(0) else I32(0)
    k_pos = k if k > I32(1) else I32(1)
    scale = _pow2_f32(k_neg)
    k_inv = k_pos if k_pos < I32(40) else I32(40)
    positive = k > I32(0)
    inv = _pow2_f32(-k_inv)
    a = (ONE_F32 - inv) if positive else scale - ONE_F32
    b = r if positive else scale * r
    c_neg = (scale * q + (scale - (a + ONE_F32))) if negative else scale * q
    c = (q + ((ONE_F32 - a) - inv)) if positive else c_neg
    s = a + b
    tail = ((a - s) + b) + c
    hi = s + tail
    lo = (s - hi) + tail
    half_m = _pow2_f32(k_pos - I32(1))
    if_positive = ((hi * half_m) * TWO_F32, (lo * half_m) * TWO_F32)
    return if_positive if positive else (hi, lo)


@_jit
def expm1_f64(x):
    clamped = x if x < EXP_MAX_F64 else EXP_MAX_F64
    clamped = clamped if clamped > EXPM1_MIN_F64 else EXPM1_MIN_F64
    result, _ = _expm1_dd_f64(clamped, True)
    return x if (x == 0.0 or x != x) else result  # keeps -0.0 and NaN


@_jit
def expm1_f32(x):
    clamped = x if x < EXP_MAX_F32 else EXP_MAX_F32
    clamped = clamped if clamped > EXPM1_MIN_F32 else EXPM1_MIN_F32
    result, _ = _expm1_dd_f32(clamped, True)
    return x if (x == ZERO_F32 or x != x) else result


# --- log, log1p ----------------------------------------------------------------------------


@_jit
def _log_split_f64(x):
    """(e, f) with x = 2^e (1 + f), 1 + f in [sqrt(1/2), sqrt(2)); x positive normal."""
    bits = _f64_bits(x)
    e = (bits - SQRT_HALF_BITS_F64) >> 52
    return e, _bits_f64(bits - (e << 52)) - 1.0


@_jit
def _log_split_f32(x):
    bits = _f32_bits(x)
    e = (bits - SQRT_HALF_BITS_F32) >> I32(23)
    return e, _bits_f32(bits - (e << I32(23))) - ONE_F32


@_jit
def _log_core_f64(e, f, low):
    """e ln2 + log(1 + f) + low, with |low| a small correction."""
    s = f / (2.0 + f)
    z = s * s
    r = z * _horner_f64(LOG_POLY_F64, z)
    hfsq = 0.5 * f * f
    ed = _f64_of_int(e)
    return ed * LN2_HI + (f - (hfsq - (s * (hfsq + r) + (ed * LN2_LO + low))))


@_jit
def _log_core_f32(e, f, low):
    s = f / (TWO_F32 + f)
    z = s * s
    r = z * _horner_f32(LOG_POLY_F32, z)
    hfsq = HALF_F32 * f * f
    ed = _f32_of_int(e)
    return ed * LN2_HI_F32 + (f - (hfsq - (s * (hfsq + r) + (ed * LN2_LO_F32 + low))))


@_jit
def log_f64(x):
    small = x < MIN_NORMAL_F64  # subnormals: scale into the normal range first
    e, f = _log_split_f64(x * TWO52 if small else x)
    result = _log_core_f64(e - 52 if small else e, f, 0.0)
    result = -np.inf if x == 0.0 else result
    result = np.nan if x < 0.0 else result
    return result if x < np.inf else x + x  # inf and NaN


@_jit
def log_f32(x):
    small = x < MIN_NORMAL_F32
    e, f = _log_split_f32(x * TWO23_F32 if small else x)
    result = _log_core_f32(e - I32(23) if small else e, f, ZERO_F32)
    result = -INF_F32 if x == ZERO_F32 else result
    result = NAN_F32 if x < ZERO_F32 else result
    return result if x < INF_F32 else x + x


@_jit
def log1p_f64(x):
    u = 1.0 + x
    # u = 1 + x - c exactly: c is the rounding error of u (c / u corrects log(u)).
    c = (1.0 - (u - x)) if u >= 2.0 else (x - (u - 1.0))
    e, f = _log_split_f64(u)
    result = _log_core_f64(e, f, c / u)
    result = x if x == 0.0 else result  # keeps -0.0
    result = -np.inf if x == -1.0 else result
    result = np.nan if x < -1.0 else result
    return result if x < np.inf else x + x


@_jit
def log1p_f32(x):
    u = ONE_F32 + x
    c = (ONE_F32 - (u - x)) if u >= TWO_F32 else (x - (u - ONE_F32))
    e, f = _log_split_f32(u)
    result = _log_core_f32(e, f, c / u)
    result = x if x == ZERO_F32 else result
    result = -INF_F32 if x == -ONE_F32 else result
    result = NAN_F32 if x < -ONE_F32 else result
    return result if x < INF_F32 else x + x


# --- tanh, sigmoid --------------------------------------------------------------------------


@_jit
def tanh_f64(x):
    a = abs(x)
    a = a if a < TANH_MAX_F64 else TANH_MAX_F64  # NaN -> TANH_MAX, restored below
    t_hi, t_lo = _expm1_dd_f64(2.0 * a, False)
    d_hi, d_err = _two_sum(t_hi, 2.0)
    magnitude = _div_dd_f64(t_hi, t_lo, d_hi, d_err + t_lo)  # t / (t + 2)
    result = _bits_f64(_f64_bits(magnitude) | (_f64_bits(x) & SIGN_BIT_F64))
    return result if x == x else x


@_jit
def tanh_f32(x):
    a = abs(x)
    a = a if a < TANH_MAX_F32 else TANH_MAX_F32
    t_hi, t_lo = _expm1_dd_f32(TWO_F32 * a, False)
    d_hi, d_err = _two_sum(t_hi, TWO_F32)
    magnitude = _div_dd_f32(t_hi, t_lo, d_hi, d_err + t_lo)
    result = _bits_f32(_f32_bits(magnitude) | (_f32_bits(x) & SIGN_BIT_F32))
    return result if x == x else x


@_jit
def sigmoid_f64(x):
    """1 / (1 + e) for x >= 0, e / (1 + e) for x < 0, e = exp(-|x|) in (0, 1] carried
    as hi + lo: never overflows, and subnormal results for x < -708 are right."""
    a = abs(x)
    clamped = a if a < -EXP_MIN_F64 else -EXP_MIN_F64
    k, e_hi, e_lo = _exp_dd_f64(-clamped)
    e_hi = _scale_f64(e_hi, k)
    e_lo = _scale_f64(e_lo, k)
    d_hi, d_lo = _two_sum(1.0, e_hi)
    positive = x >= 0.0
    result = _div_dd_f64(1.0 if positive else e_hi, 0.0 if positive else e_lo, d_hi, d_lo + e_lo)
    return result if x == x else x


@_jit
def sigmoid_f32(x):
    a = abs(x)
    clamped = a if a < -EXP_MIN_F32 else -EXP_MIN_F32
    k, e_hi, e_lo = _exp_dd_f32(-clamped)
    e_hi = _scale_f32(e_hi, k)
    e_lo = _scale_f32(e_lo, k)
    d_hi, d_lo = _two_sum(ONE_F32, e_hi)
    positive = x >= ZERO_F32
    result = _div_dd_f32(ONE_F32 if positive else e_hi, ZERO_F32 if positive else e_lo, d_hi, d_lo + e_lo)
    return result if x == x else x


# --- pow --------------------------------------------------------------------------------------


@_jit
def _log_dd_f64(x):
    """(hi, lo), hi + lo = log(x) to about 2^-68 relative, x positive and finite (subnormals
    too). s = f / (2 + f) as sh + sl (one division, the residual computed exactly);
    log(1 + f) = 2 s + s^3 R(s^2), R = 2/3 + z Q(z), with s^3 and the 2/3 carried as
    double-doubles (that term needs about 60 bits) and z Q(z) in double."""
    small = x < MIN_NORMAL_F64
    e, f = _log_split_f64(x * TWO52 if small else x)
    ed = _f64_of_int(e - 52 if small else e)
    d = 2.0 + f
    d_lo = (2.0 - d) + f  # d + d_lo = 2 + f exactly
    inv = 1.0 / d
    sh = f * inv
    p, p_err = _two_prod_f64(sh, d)
    sl = (((f - p) - p_err) - sh * d_lo) * inv  # f - p is exact (Sterbenz)
    zh, z_err = _two_prod_f64(sh, sh)
    ch, c_err = _two_prod_f64(sh, zh)
    cl = c_err + (sh * z_err + 3.0 * sl * zh)  # s^3 = ch + cl
    z = zh + (z_err + 2.0 * sh * sl)  # sl / sh can reach 2^-52: z from sh alone is not enough
    q = z * _poly_f64(POW_LOG_PARTS_F64, z)
    rh = C3_HI + q
    rl = ((C3_HI - rh) + q) + C3_LO  # R = rh + rl
    th, t_err = _two_prod_f64(ch, rh)
    tl = t_err + (ch * rl + cl * rh)  # s^3 R = th + tl
    s1, e1 = _two_sum(ed * LN2_HI, 2.0 * sh)
    s2, e2 = _two_sum(s1, th)
    lo = (e1 + e2) + ((ed * LN2_LO + 2.0 * sl) + tl)
    hi = s2 + lo
    return hi, (s2 - hi) + lo


@_jit
def _exp_of_dd_f64(hi, lo):
    """exp(hi + lo) with |lo| <= ulp(hi) roughly: lo is folded into the reduced argument
    (k from hi alone, r + r_lo = hi - k ln2 + lo by TwoSum), then as exp. hi is clamped to
    [EXP_MIN_F64, EXP_MAX_F64] (lo dropped there: the result is 0 or inf); NaN is not
    handled (pow's selects do)."""
    inside = (hi > EXP_MIN_F64) & (hi < EXP_MAX_F64)
    clamped = hi if hi < EXP_MAX_F64 else EXP_MAX_F64
    clamped = clamped if clamped > EXP_MIN_F64 else EXP_MIN_F64
    lo = lo if inside else 0.0
    kd = (clamped * LOG2E + SHIFT_F64) - SHIFT_F64
    t = clamped - kd * LN2_HI  # exact
    r, r_lo = _two_sum(t, lo - kd * LN2_LO)
    s = 1.0 + r
    tail = ((1.0 - s) + r) + (r_lo + r * r * _poly_f64(EXP_PARTS_F64, r))
    return _scale_f64(s + tail, _int_of_f64(kd))


@_jit
def _pow_select_f64(x, y, magnitude):
    """NumPy's (C99's) pow(x, y) from magnitude = |x|^y for finite nonzero x and finite y:
    the sign for negative x and odd integer y, NaN for negative finite x and non-integer
    y, 0 / inf / 1 for zero or infinite x or infinite y, 1 for y = 0 and for x = 1."""
    ax = abs(x)
    ay = abs(y)
    # y is an integer: |y| >= 2^52, or the 1.5 * 2^52 shift leaves it as it is
    integer = (ay >= TWO52) | (((ay + TWO52) - TWO52) == ay)
    # odd: y / 2 is not an integer (exact below 2^53; above it every double is even)
    half_y = 0.5 * (ay if ay < TWO53 else 0.0)  # NaN -> 0
    odd = integer & (((half_y + TWO52) - TWO52) != half_y)
    infinite = (ay == np.inf) | (ax == 0.0) | (ax == np.inf)
    limit = np.inf if (ax > 1.0) == (y > 0.0) else 0.0  # |x| < 1, y -> inf gives 0, ...
    limit = 1.0 if ax == 1.0 else limit  # (-1)^(+-inf) = 1
    magnitude = limit if infinite else magnitude
    sign = (_f64_bits(x) & SIGN_BIT_F64) if odd else np.int64(0)
    result = _bits_f64(_f64_bits(magnitude) | sign)
    nan = (x != x) | (y != y) | ((x < 0.0) & (x > -np.inf) & (integer == False))  # noqa: E712
    result = np.nan if nan else result
    return 1.0 if (y == 0.0) | (x == 1.0) else result


@_jit
def pow_f64(x, y):
    """x^y = exp(y log|x|): log|x| as a double-double, y log|x| = hi + lo by Dekker's
    product, exp of it with lo folded in; the special cases are selects."""
    ax = abs(x)
    regular = (ax > 0.0) & (ax < np.inf)
    lh, ll = _log_dd_f64(ax if regular else 1.0)
    # |y| <= 1e300 keeps Dekker's splitting finite and changes no result: x = +-1 gives
    # log 0, any other x |y log x| > 1e284 (inf and NaN are the selects' business).
    yc = y if y < POW_Y_MAX_F64 else POW_Y_MAX_F64
    yc = yc if yc > -POW_Y_MAX_F64 else -POW_Y_MAX_F64
    p, p_err = _two_prod_f64(yc, lh)
    magnitude = _exp_of_dd_f64(p, p_err + yc * ll)
    return _pow_select_f64(x, y, magnitude)


@_jit
def pow_f32(x, y):
    """In float64 (as glibc's powf): float32 x and y are exact there, float32 subnormals are
    normal, and 2^(y log2|x|) with a plain float64 log (to z^7) and exp (to r^9) is within
    about 2^-30 ulp of float32 before the one final rounding. y log2|x| = y e + y log2(1 + f)
    with y e exact, so a power of two x with y e an integer gives 2^(y e) exactly (the
    halfway case 2^-150 then rounds to 0, as NumPy's)."""
    xd = np.float64(x)
    yd = np.float64(y)
    ax = abs(xd)
    regular = (ax > 0.0) & (ax < np.inf)
    e, f = _log_split_f64(ax if regular else 1.0)
    s = f / (2.0 + f)
    z = s * s
    hfsq = 0.5 * f * f
    log_m = f - (hfsq - s * (hfsq + z * _horner_f64(POWF_LOG_POLY, z)))
    yc = yd if abs(yd) < np.inf else 0.0  # NaN, +-inf: the selects' business
    t = yc * _f64_of_int(e) + (yc * log_m) * LOG2E
    t = t if t < POWF_T_MAX else POWF_T_MAX
    t = t if t > -POWF_T_MAX else -POWF_T_MAX
    kd = (t + SHIFT_F64) - SHIFT_F64
    r = (t - kd) * LN2  # t - kd is exact
    v = 1.0 + (r + r * r * _horner_f64(POWF_EXP_POLY, r))
    magnitude = v * _pow2_f64(_int_of_f64(kd))
    return np.float32(_pow_select_f64(xd, yd, magnitude))


# --- sin, cos ---------------------------------------------------------------------------------


@_jit
def _sincos_f64(x, shift):
    """sin(x + shift pi/2) for |x| <= SIN_LIMIT_F64 (shift 0: sin, 1: cos). The reduced
    argument is r + r_lo: the rounding errors of the last two subtractions are kept."""
    kd = (x * TWO_OVER_PI + SHIFT_F64) - SHIFT_F64
    t2 = (x - kd * PIO2_1) - kd * PIO2_2  # exact for |k| < 2^27
    t3, e3 = _two_sum(t2, -(kd * PIO2_3))
    r, e4 = _two_sum(t3, -(kd * PIO2_4))
    r_lo = e3 + e4
    z = r * r
    half_z = 0.5 * z
    sin_r = r + (r * z * _horner_f64(SIN_POLY_F64, z) + r_lo * (1.0 - half_z))
    w = 1.0 - half_z
    cos_r = w + ((((1.0 - w) - half_z) + z * z * _horner_f64(COS_POLY_F64, z)) - r * r_lo)
    quadrant = _int_of_f64(kd) + shift
    value = sin_r if (quadrant & 1) == 0 else cos_r
    return -value if (quadrant & 2) != 0 else value


@_jit
def _sincos_f32(x, shift):
    kd = (x * TWO_OVER_PI_F32 + SHIFT_F32) - SHIFT_F32
    # In float32 only the first step is exact: the others keep their errors (TwoSum).
    t2, e2 = _two_sum(x - kd * PIO2_1_F32, -(kd * PIO2_2_F32))
    t3, e3 = _two_sum(t2, -(kd * PIO2_3_F32))
    r, e4 = _two_sum(t3, -(kd * PIO2_4_F32))
    r_lo = (e2 + e3) + e4
    z = r * r
    half_z = HALF_F32 * z
    sin_r = r + (r * z * _horner_f32(SIN_POLY_F32, z) + r_lo * (ONE_F32 - half_z))
    w = ONE_F32 - half_z
    cos_r = w + ((((ONE_F32 - w) - half_z) + z * z * _horner_f32(COS_POLY_F32, z)) - r * r_lo)
    quadrant = np.int32(kd) + shift
    value = sin_r if (quadrant & I32(1)) == I32(0) else cos_r
    return -value if (quadrant & I32(2)) != I32(0) else value


# The C library for |x| beyond the reduction's range, inf and NaN. The call site names
# masked vector variants (LLVM's "vector-function-abi-variant"): the vectorizer then keeps
# the loop vectorized and passes each vector with a mask of the lanes that need the C
# library; a variant returns at once when no lane does, else calls it lane by lane. The
# scalar wrapper is not known to LLVM as libm's sin, so it is never speculated.
_VARIANT_WIDTHS = (2, 4, 8, 16, 32)


def _define_scalar_wrapper(module, fnty, symbol):
    wrapper = cgutils.get_or_insert_function(module, fnty, f"lazyfuse_fastmath_{symbol}")
    if wrapper.is_declaration:
        wrapper.linkage = "internal"
        for attribute in ("noinline", "nounwind", "readnone"):
            wrapper.attributes.add(attribute)
        inner = ir.IRBuilder(wrapper.append_basic_block("entry"))
        libm = cgutils.get_or_insert_function(module, fnty, symbol)
        inner.ret(inner.call(libm, wrapper.args))
    return wrapper


def _define_masked_variant(module, scalar, lltype, width):
    """<width x T> f(<width x T> x, <width x i1> mask): scalar(x[i]) where mask[i], else x[i]."""
    vector, mask_type = ir.VectorType(lltype, width), ir.VectorType(ir.IntType(1), width)
    name = f"{scalar.name}_masked{width}"
    fn = cgutils.get_or_insert_function(module, ir.FunctionType(vector, [vector, mask_type]), name)
    if not fn.is_declaration:
        return fn
    fn.linkage = "weak_odr"  # kept until the vectorizer has seen the call (internal is dropped)
    fn.attributes.add("nounwind")
    x, mask = fn.args
    builder = ir.IRBuilder(fn.append_basic_block("entry"))
    bits = builder.bitcast(mask, ir.IntType(width))
    lanes_block = fn.append_basic_block("lanes")
    done_block = fn.append_basic_block("none")
    builder.cbranch(
        builder.icmp_unsigned("==", bits, ir.Constant(ir.IntType(width), 0)), done_block, lanes_block
    )
    builder.position_at_end(done_block)
    builder.ret(x)
    builder.position_at_end(lanes_block)
    result = x
    for lane in range(width):
        index = ir.Constant(ir.IntType(32), lane)
        call_block = fn.append_basic_block(f"call{lane}")
        next_block = fn.append_basic_block(f"next{lane}")
        before = builder.block
        builder.cbranch(builder.extract_element(mask, index), call_block, next_block)
        builder.position_at_end(call_block)
        updated = builder.insert_element(
            result, builder.call(scalar, [builder.extract_element(x, index)]), index
        )
        builder.branch(next_block)
        builder.position_at_end(next_block)
        phi = builder.phi(vector)
        phi.add_incoming(result, before)
        phi.add_incoming(updated, call_block)
        result = phi
    builder.ret(result)
    return fn


def _libm_call(name):
    def typer(typingctx, x):
        if not isinstance(x, types.Float):
            return None

        def codegen(context, builder, signature, args):
            lltype = args[0].type
            symbol = name if x == types.float64 else name + "f"
            module = builder.module
            scalar = _define_scalar_wrapper(module, ir.FunctionType(lltype, [lltype]), symbol)
            variants = []
            for width in _VARIANT_WIDTHS:
                variant = _define_masked_variant(module, scalar, lltype, width)
                variants.append(f"_ZGV_LLVM_M{width}v_{scalar.name}({variant.name})")
            call = builder.call(scalar, args)
            # A string attribute, which llvmlite's attribute set does not validate.
            # Note: should a later llvmlite store attributes otherwise, the call stays
            # plain: the same results, only the loop around it no longer vectorizes.
            with contextlib.suppress(TypeError):
                set.add(call.attributes, '"vector-function-abi-variant"="{}"'.format(",".join(variants)))
            return call

        return x(x), codegen

    return intrinsic(typer)


_libm_sin = _libm_call("sin")
_libm_cos = _libm_call("cos")


@_jit
def sin_f64(x):
    # Note: the reduced branch first, with the -0.0 select inside it. Written as an early
    # return of the C library's value followed by the select, LLVM 15's cost model for
    # AVX2 (not AVX-512's) left the serial loop around it scalar.
    if abs(x) <= SIN_LIMIT_F64:
        result = _sincos_f64(x, 0)
        return result if x != 0.0 else x  # keeps -0.0
    return _libm_sin(x)  # huge, inf, NaN: the C library (not vectorized)


@_jit
def sin_f32(x):
    if abs(x) <= SIN_LIMIT_F32:  # as sin_f64
        result = _sincos_f32(x, I32(0))
        return result if x != ZERO_F32 else x
    return _libm_sin(x)


@_jit
def cos_f64(x):
    if not abs(x) <= SIN_LIMIT_F64:
        return _libm_cos(x)
    return _sincos_f64(x, 1)


@_jit
def cos_f32(x):
    if not abs(x) <= SIN_LIMIT_F32:
        return _libm_cos(x)
    return _sincos_f32(x, I32(1))


# --- exp2, log2, log10, sinh, cosh: from the pieces above ---------------------------------
# float64: through the double-double exp and log of pow; float32: in float64 (one rounding).

LN2_TAIL = 2.3190468138462996e-17  # ln2 - LN2
LOG2E_TAIL = 2.0355273740931033e-17  # 1/ln2 - LOG2E
LOG10E = 0.4342944819032518  # 1 / ln10
LOG10E_TAIL = 1.098319650216765e-17  # 1/ln10 - LOG10E
EXP2_MAX_F64 = 1100.0  # 2^x overflows above 1024 and is 0 below -1075
COSH_MAX_F64 = 711.0  # cosh and sinh overflow above 710.48
SINH_EXPM1_F64 = 20.0  # above it sinh(x) = e^x / 2 to 0.04 ulp (e^-2x < 2^-57)
HYPERBOLIC_MAX_F32 = 100.0  # float32 sinh and cosh overflow above 89.42; e^100 is a double


@_jit
def exp2_f64(x):
    """exp(x ln2) with x ln2 as a double-double (Dekker's product): 2^k is exact."""
    clamped = x if x < EXP2_MAX_F64 else EXP2_MAX_F64  # NaN -> EXP2_MAX, restored below
    clamped = clamped if clamped > -EXP2_MAX_F64 else -EXP2_MAX_F64
    hi, lo = _two_prod_f64(clamped, LN2)
    result = _exp_of_dd_f64(hi, lo + clamped * LN2_TAIL)
    return result if x == x else x


@_jit
def exp2_f32(x):
    """pow_f32's 2^t in float64: t - round(t) is exact, 2^k from the exponent bits."""
    t = np.float64(x)
    t = t if t < POWF_T_MAX else POWF_T_MAX
    t = t if t > -POWF_T_MAX else -POWF_T_MAX
    kd = (t + SHIFT_F64) - SHIFT_F64
    r = (t - kd) * LN2
    v = 1.0 + (r + r * r * _horner_f64(POWF_EXP_POLY, r))
    result = np.float32(v * _pow2_f64(_int_of_f64(kd)))
    return result if x == x else x


@_jit
def _log_scaled_f64(x, scale, scale_tail):
    """log(x) (scale + scale_tail), the log as pow's double-double; log2(2^k) is k exactly."""
    regular = (x > 0.0) & (x < np.inf)
    hi, lo = _log_dd_f64(x if regular else 1.0)
    p, p_err = _two_prod_f64(hi, scale)
    result = p + (p_err + (lo * scale + hi * scale_tail))
    result = -np.inf if x == 0.0 else result
    result = np.nan if x < 0.0 else result
    return result if x < np.inf else x + x  # inf and NaN


@_jit
def log2_f64(x):
    return _log_scaled_f64(x, LOG2E, LOG2E_TAIL)


@_jit
def log10_f64(x):
    return _log_scaled_f64(x, LOG10E, LOG10E_TAIL)


@_jit
def log2_f32(x):
    return np.float32(log_f64(np.float64(x)) * LOG2E)


@_jit
def log10_f32(x):
    return np.float32(log_f64(np.float64(x)) * LOG10E)


@_jit
def _half_exp_f64(a):
    """e^a / 2 = exp(a - ln2), a - ln2 as a double-double (a <= COSH_MAX_F64)."""
    hi, lo = _two_sum(a, -LN2)
    return _exp_of_dd_f64(hi, lo - LN2_TAIL)


@_jit
def sinh_f64(x):
    """(t + t / (t + 1)) / 2 with t = expm1(|x|) as a double-double (no cancellation: both
    terms are positive), e^|x| / 2 above SINH_EXPM1_F64; the sign of x copied in."""
    a = abs(x)
    a = a if a < COSH_MAX_F64 else COSH_MAX_F64  # NaN -> COSH_MAX, restored below
    small = a < SINH_EXPM1_F64
    t_hi, t_lo = _expm1_dd_f64(a if small else SINH_EXPM1_F64, False)
    d_hi, d_err = _two_sum(t_hi, 1.0)
    q = _div_dd_f64(t_hi, t_lo, d_hi, d_err + t_lo)  # t / (t + 1)
    magnitude = (t_hi + (q + t_lo)) * 0.5 if small else _half_exp_f64(a)
    result = _bits_f64(_f64_bits(magnitude) | (_f64_bits(x) & SIGN_BIT_F64))
    return result if x == x else x


@_jit
def cosh_f64(x):
    """e + 1 / (4 e) with e = e^|x| / 2: e's rounding error is multiplied by sinh / cosh."""
    a = abs(x)
    a = a if a < COSH_MAX_F64 else COSH_MAX_F64
    e = _half_exp_f64(a)
    result = e + 0.25 / e
    return result if x == x else x


@_jit
def sinh_f32(x):
    a = abs(np.float64(x))
    a = a if a < HYPERBOLIC_MAX_F32 else HYPERBOLIC_MAX_F32
    t = expm1_f64(a)
    magnitude = np.float32((t + t / (t + 1.0)) * 0.5)
    result = _bits_f32(_f32_bits(magnitude) | (_f32_bits(x) & SIGN_BIT_F32))
    return result if x == x else x


@_jit
def cosh_f32(x):
    a = abs(np.float64(x))
    a = a if a < HYPERBOLIC_MAX_F32 else HYPERBOLIC_MAX_F32
    e = exp_f64(a)
    result = np.float32(0.5 * e + 0.5 / e)
    return result if x == x else x


# pow takes two arguments (x, y); the others one.
FUNCTIONS = {
    (name, dtype): globals()[f"{name}_{dtype}"]
    for name in ("exp", "expm1", "log", "log1p", "tanh", "sigmoid", "sin", "cos", "pow")
    for dtype in ("f64", "f32")
}
# The functions built from those (exp2, log2, log10, sinh, cosh), keyed the same way.
DERIVED = {
    (name, dtype): globals()[f"{name}_{dtype}"]
    for name in ("exp2", "log2", "log10", "sinh", "cosh")
    for dtype in ("f64", "f32")
}


def inlined_by_numba() -> dict[str, Any]:
    """Every function again, inlined by Numba at each call site (their calls of each other
    too), for reduction kernels (codegen/cpu.py). In a lanes loop (``for k in range(16)``
    around the math), inlined only by LLVM, the call is opaque when the kernel's own
    passes run, so they unroll that short loop, and its copies do not vectorize after the
    call is inlined (a softmax row kernel ran 3.4 times slower); inlined first, the
    loop's body is too large to unroll and the loop vectorizer takes it. A column sum of
    exp ran 1.4 times slower too. Made by ``lazyfuse.runtime.fastmath_rows`` when a kernel
    first imports it, not by every process that imports this module."""
    namespace = dict(globals())
    for name, fn in _PYTHON_FUNCTIONS.items():
        copy = FunctionType(fn.__code__, namespace, name, fn.__defaults__, fn.__closure__)
        namespace[name] = numba.njit(error_model="numpy", inline="always")(copy)
    return {name: namespace[name] for name in _PYTHON_FUNCTIONS}
