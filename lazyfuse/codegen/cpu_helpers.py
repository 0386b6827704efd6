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

TEMPLATES = {
    "floor_divide_i": FLOOR_DIVIDE_I,
    "remainder_i": REMAINDER_I,
    "floor_divide_f": FLOOR_DIVIDE_F,
    "remainder_f": REMAINDER_F,
    "power_i": POWER_I,
    "maximum_f": MAXIMUM_F,
    "minimum_f": MINIMUM_F,
}


def sources_used(kernel: str) -> list[str]:
    """The source of each helper ``kernel`` calls, for its dtype (``floor_divide_f32``)."""
    pattern = r"\b((?:floor_divide|remainder|power|maximum|minimum)_(?:i|f|f32|f64))\("
    sources = []
    for name in sorted(set(re.findall(pattern, kernel))):
        key = name if name in TEMPLATES else name.rstrip("0123456789")
        suffix = name.rsplit("_", 1)[1]
        type_name = {"f32": "np.float32", "f64": "np.float64"}.get(suffix, "")
        sources.append(TEMPLATES[key].format(S=suffix, T=type_name))
    return sources
