"""Scalar helpers the CPU kernels call, as source text, with NumPy's exact semantics.

``{T}`` is the NumPy type name (``np.float32``) and ``{S}`` its short name; a helper
is emitted into a kernel's file only when its template uses it.
"""

from __future__ import annotations

import re

# NumPy's integer floor division: x // 0 == 0, MIN // -1 wraps to MIN.
FLOOR_DIVIDE_I = """
@njit(cache=True)
def floor_divide_i(a, b):
    if b == 0:
        return a - a
    if b == -1:
        return -a
    return a // b
"""

# NumPy's integer remainder: the sign of the divisor; x % 0 == 0.
REMAINDER_I = """
@njit(cache=True)
def remainder_i(a, b):
    if b == 0 or b == -1:
        return a - a
    return a % b
"""

# NumPy's npy_divmod for floats (npymath), evaluated in the operands' own precision.
FLOOR_DIVIDE_F = """
@njit(cache=True, error_model="numpy")
def floor_divide_{S}(a, b):
    if b == 0:
        return a / b
    mod = np.fmod(a, b)
    div = (a - mod) / b
    if mod != 0:
        if (b < 0) != (mod < 0):
            div = div - {T}(1)
    if div != 0:
        floordiv = np.floor(div)
        if div - floordiv > {T}(0.5):
            floordiv = floordiv + {T}(1)
        return floordiv
    return np.copysign({T}(0), a / b)
"""

REMAINDER_F = """
@njit(cache=True, error_model="numpy")
def remainder_{S}(a, b):
    mod = np.fmod(a, b)
    if b == 0:
        return mod
    if mod != 0:
        if (b < 0) != (mod < 0):
            mod = mod + b
        return mod
    return np.copysign({T}(0), b)
"""

# Integer power by squaring, wrapping on overflow. NumPy refuses negative exponents:
# the runtime checks them before the kernel runs (an exception cannot leave a prange).
POWER_I = """
@njit(cache=True)
def power_i(base, exponent):
    result = base - base + 1
    while exponent > 0:
        if exponent & 1:
            result = result * base
        base = base * base
        exponent = exponent >> 1
    return result
"""

# maximum/minimum propagate NaN and, on ties (-0.0 vs 0.0), return b, as NumPy's do.
MAXIMUM_F = """
@njit(cache=True)
def maximum_f(a, b):
    return a if (a > b or a != a) else b
"""

MINIMUM_F = """
@njit(cache=True)
def minimum_f(a, b):
    return a if (a < b or a != a) else b
"""

# NumPy's integer reciprocal converts 1.0 / a back: 1 and -1 stay, 0 gives the conversion
# of inf, which is the type's lowest value on x86 (``lowest``), every other value 0.
RECIPROCAL_I = """
@njit(cache=True)
def reciprocal_i(a, lowest):
    if a == 1 or a == -1:
        return a
    return lowest if a == 0 else a - a
"""

# NumPy's shifts (npy_lshift / npy_rshift): a count outside [0, bits) gives 0, or -1 for
# a negative a shifted right. Note: Numba shifts an int32 as an int64 (its integer
# arithmetic is int64) and the kernel converts the result back, so counts of 32..63
# give what NumPy's int32 loop gives; LLVM's shift itself is undefined from 64 on.
LEFT_SHIFT_I = """
@njit(cache=True)
def left_shift_i(a, count):
    return a << count if 0 <= count < 64 else a - a
"""

RIGHT_SHIFT_I = """
@njit(cache=True)
def right_shift_i(a, count):
    if 0 <= count < 64:
        return a >> count
    return a - a - 1 if a < 0 else a - a
"""

# Python's math module's expm1 and log1p: the C library's on the CPU, libdevice's on CUDA
# (which has no np.expm1 / np.log1p). Note: the selects give NaN and infinities where
# Python's functions would raise (Numba's compiled ones do not; the CUDA simulator runs
# them as Python).
LIBM_EXPM1_F = """
@njit(cache=True, error_model="numpy")
def libm_expm1_f(x):
    return math.inf if x > 709.782712893384 else math.expm1(x)
"""

LIBM_LOG1P_F = """
@njit(cache=True, error_model="numpy")
def libm_log1p_f(x):
    if x > -1.0 or x != x:
        return math.log1p(x)
    return -math.inf if x == -1.0 else math.nan
"""

TEMPLATES = {
    "floor_divide_i": FLOOR_DIVIDE_I,
    "remainder_i": REMAINDER_I,
    "floor_divide_f": FLOOR_DIVIDE_F,
    "remainder_f": REMAINDER_F,
    "power_i": POWER_I,
    "maximum_f": MAXIMUM_F,
    "minimum_f": MINIMUM_F,
    "reciprocal_i": RECIPROCAL_I,
    "left_shift_i": LEFT_SHIFT_I,
    "right_shift_i": RIGHT_SHIFT_I,
    "libm_expm1_f": LIBM_EXPM1_F,
    "libm_log1p_f": LIBM_LOG1P_F,
}
_CALL = re.compile(rf"\b((?:{'|'.join(sorted({n.rsplit('_', 1)[0] for n in TEMPLATES}))})_(?:i|f|f32|f64))\(")


# Templates may call Python's math module (``math.erf(x)``): Numba calls the C library's
# function on the CPU and libdevice's on CUDA (where np.expm1 and np.log1p have none).
_MATH_MODULE = re.compile(r"\bmath\.\w+\(")


def sources_used(kernel: str) -> list[str]:
    """The source of each helper ``kernel`` calls, for its dtype (``floor_divide_f32``),
    and the import of the math module where it calls one of its functions."""
    sources = []
    for name in sorted(set(_CALL.findall(kernel))):
        key = name if name in TEMPLATES else name.rstrip("0123456789")
        suffix = name.rsplit("_", 1)[1]
        type_name = {"f32": "np.float32", "f64": "np.float64"}.get(suffix, "")
        sources.append(TEMPLATES[key].format(S=suffix, T=type_name))
    if any(_MATH_MODULE.search(text) for text in (kernel, *sources)):
        sources.insert(0, "import math")
    return sources
