"""The functions of :mod:`lazyfuse.runtime.fastmath` as Numba inlines them at each call
site (``fastmath.inlined_by_numba``): what reduction kernels import (see there)."""

from lazyfuse.runtime.fastmath import INTRINSICS, inlined_by_numba

globals().update(inlined_by_numba())
globals().update(INTRINSICS)
