"""Hypothesis strategies: dtypes, values safe for each op, shapes that broadcast, and
the same values laid out with other strides (transposed, permuted, negative, sliced,
broadcast), with a flag saying which layout was drawn."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

DTYPES = [np.dtype(d) for d in ("bool", "int32", "int64", "float32", "float64")]
FLOATS = [np.dtype(np.float32), np.dtype(np.float64)]
INTS = [np.dtype(np.int32), np.dtype(np.int64)]
# Every layout holds the values it is given, as a view of a bigger or reordered base
# array, so what lazyfuse reads is never C-contiguous (except "contiguous"). The
# "broadcast" layout has a stride-0 axis and repeats the first slice along it.
LAYOUTS = ["contiguous", "fortran", "permuted", "negative", "sliced", "broadcast"]
# What the padding of a "sliced" base holds: a kernel that reads it gives a wrong answer.
_PADDING = {"b": True, "i": 77, "f": np.nan}


def elements(dtype: np.dtype, low: float = -20, high: float = 20) -> st.SearchStrategy:
    """Finite values in [low, high]; integers and bools for those dtypes."""
    dtype = np.dtype(dtype)
    if dtype.kind == "b":
        return st.booleans()
    if dtype.kind == "i":
        return st.integers(int(np.ceil(low)), int(np.floor(high)))
    width = 32 if dtype == np.float32 else 64
    return st.floats(low, high, allow_nan=False, allow_infinity=False, width=width)


def shapes(min_dims: int = 0, max_dims: int = 3, max_side: int = 5, min_side: int = 0) -> st.SearchStrategy:
    """Shapes of rank 0..3 with small sides (0 included); hypothesis shrinks to small ones."""
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side)


@st.composite
def strided(draw, values: np.ndarray, layout: str | None = None) -> tuple[np.ndarray, str]:
    """``values`` (or, for "broadcast", a stride-0 view of its first slice along an axis)
    laid out in a drawn layout; returns ``(array, layout)``. Never shares memory with
    ``values``."""
    if layout is None:
        layout = draw(st.sampled_from(LAYOUTS)) if values.ndim else "contiguous"
    if values.ndim == 0 or layout == "contiguous":
        return values.copy(), "contiguous"
    if layout == "fortran":
        return np.array(values, order="F", copy=True), layout
    if layout == "permuted":
        perm = draw(st.permutations(range(values.ndim)))
        base = values.transpose(perm).copy()
        return base.transpose(np.argsort(perm)), layout
    if layout == "negative":
        axes = draw(st.sets(st.integers(0, values.ndim - 1), min_size=1))
        base = np.flip(values, tuple(axes)).copy()
        return np.flip(base, tuple(axes)), layout
    if layout == "sliced":
        steps = [draw(st.sampled_from([1, 2, 3, -1, -2])) for _ in range(values.ndim)]
        offsets = [draw(st.integers(0, 1)) for _ in range(values.ndim)]
        big = tuple(n * abs(s) + o + 1 for n, s, o in zip(values.shape, steps, offsets, strict=True))
        base = np.full(big, _PADDING[values.dtype.kind], values.dtype)
        starts = [o if s > 0 else m - 1 - o for s, o, m in zip(steps, offsets, big, strict=True)]
        view = base[tuple(slice(b, None, s) for b, s in zip(starts, steps, strict=True))]
        view = view[tuple(slice(0, n) for n in values.shape)]
        view[...] = values
        return view, layout
    # broadcast: a stride-0 axis
    axis = draw(st.integers(0, values.ndim - 1))
    first = np.take(values, [0], axis=axis) if values.shape[axis] else values
    return np.broadcast_to(first.copy(), values.shape), layout


@st.composite
def laid_out(draw, array: np.ndarray) -> np.ndarray:
    """``array``'s values in a drawn layout (kept for tests that do not need the flag)."""
    return draw(strided(array))[0]


@st.composite
def arrays_and_layout(
    draw, dtype: np.dtype, shape=None, low: float = -20, high: float = 20, layout: str | None = None
) -> tuple[np.ndarray, str]:
    dtype = np.dtype(dtype)
    shape = draw(shapes()) if shape is None else shape
    values = draw(hnp.arrays(dtype, shape, elements=elements(dtype, low, high)))
    return draw(strided(values, layout))


@st.composite
def arrays(draw, dtype: np.dtype, shape=None, low: float = -20, high: float = 20, layout: str | None = None):
    """An array of ``dtype`` (shape drawn when not given) with values in [low, high],
    in a drawn layout."""
    return draw(arrays_and_layout(dtype, shape, low, high, layout))[0]


@st.composite
def broadcast_shapes(draw, count: int = 2, max_dims: int = 3, max_side: int = 4) -> list[tuple[int, ...]]:
    """Shapes that broadcast together (NumPy's rules): as in MiniTorch's strategies, some
    have fewer dimensions and some sides are 1."""
    drawn = hnp.mutually_broadcastable_shapes(
        num_shapes=count, min_dims=0, max_dims=max_dims, min_side=0, max_side=max_side
    )
    return list(draw(drawn).input_shapes)


def python_scalars(kind: str, low: int = -9) -> st.SearchStrategy:
    """Python scalars (weak under NEP 50) of kind "b", "i" or "f"; ints from ``low``."""
    if kind == "b":
        return st.booleans()
    if kind == "i":
        return st.integers(low, 9)
    return st.floats(-9, 9, allow_nan=False).map(lambda v: round(v, 3))


def safe_operand(name: str, dtype: np.dtype, values: np.ndarray) -> np.ndarray:
    """Second operands that keep a binary op inside what NumPy defines without raising:
    integer powers get small non-negative exponents (negative ones raise, tested apart)."""
    if name == "power" and np.dtype(dtype).kind in "iu":
        return np.abs(values) % 4
    return values
