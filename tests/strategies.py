"""Hypothesis strategies: dtypes, values safe for each op, shapes that broadcast, and
the same values laid out with other strides (transposed, negative, sliced)."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

DTYPES = [np.dtype(d) for d in ("bool", "int32", "int64", "float32", "float64")]
LAYOUTS = ["contiguous", "transposed", "negative", "sliced"]


def elements(dtype: np.dtype, low: float = -20, high: float = 20) -> st.SearchStrategy:
    if dtype.kind == "b":
        return st.booleans()
    if dtype.kind == "i":
        return st.integers(int(low), int(high))
    width = 32 if dtype == np.float32 else 64
    return st.floats(low, high, allow_nan=False, width=width)


def shapes(min_dims: int = 0, max_dims: int = 3, max_side: int = 5) -> st.SearchStrategy:
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=0, max_side=max_side)


@st.composite
def laid_out(draw, array: np.ndarray) -> np.ndarray:
    """``array``'s values in a layout drawn from LAYOUTS (never sharing memory)."""
    layout = draw(st.sampled_from(LAYOUTS)) if array.ndim else "contiguous"
    if layout == "transposed":
        return np.ascontiguousarray(array.T).T
    if layout == "negative":
        return np.flip(np.flip(array, 0).copy(), 0)
    if layout == "sliced":
        big = np.zeros((array.shape[0] * 2, *array.shape[1:]), array.dtype)
        big[::2] = array
        return big[::2]
    return array.copy()


@st.composite
def arrays(draw, dtype: np.dtype, shape=None, low: float = -20, high: float = 20) -> np.ndarray:
    shape = draw(shapes()) if shape is None else shape
    values = draw(hnp.arrays(dtype, shape, elements=elements(dtype, low, high)))
    return draw(laid_out(values))


@st.composite
def broadcast_shapes(draw, count: int = 2, max_dims: int = 3) -> list[tuple[int, ...]]:
    """Shapes that broadcast together (NumPy's rules), some with fewer dimensions."""
    shape = hnp.mutually_broadcastable_shapes(num_shapes=count, min_dims=0, max_dims=max_dims, max_side=4)
    return list(draw(shape).input_shapes)
