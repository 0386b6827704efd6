"""The functions of :mod:`lazyfuse.runtime.fastmath` as Numba inlines them at each call
site (``fastmath.NUMBA_INLINED``): what reduction kernels import (see there)."""

from lazyfuse.runtime.fastmath import NUMBA_INLINED

globals().update(NUMBA_INLINED)
