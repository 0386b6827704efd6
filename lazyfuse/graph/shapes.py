"""Shape rules, checked when an expression is built. Every error names the op."""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from lazyfuse.errors import AxisError, AxisTypeError, ShapeError

Shape = tuple[int, ...]


@functools.lru_cache(maxsize=4096)
def broadcast(op: str, *shapes: Shape) -> Shape:
    """NumPy's broadcast of ``shapes``, or a ShapeError naming ``op`` and the shapes
    (cached: it runs for every op a user writes on arrays of different shapes)."""
    if all(s == shapes[0] for s in shapes):
        return shapes[0] if shapes else ()
    ndim = max((len(s) for s in shapes), default=0)
    out = []
    for axis in range(-ndim, 0):
        sizes = {s[axis] for s in shapes if len(s) >= -axis} - {1}
        if len(sizes) > 1:
            shown = " and ".join(str(s) for s in shapes)
            raise ShapeError(
                f"{op}: shapes {shown} do not broadcast (axis {axis} has sizes "
                f"{sorted(sizes)}; each size must be equal or 1)"
            )
        out.append(sizes.pop() if sizes else 1)
    return tuple(out)


LARGEST_BYTES = int(np.iinfo(np.intp).max)


def check_size(op: str, shape: Shape, itemsize: int) -> None:
    """Refuse a shape whose bytes do not fit ``intp`` (index arithmetic would overflow),
    as NumPy refuses to make such an array or view."""
    if math.prod(shape) * itemsize > LARGEST_BYTES:
        raise ShapeError(
            f"{op}: shape {shape} is too big: {math.prod(shape)} elements of {itemsize} bytes are more "
            f"than the largest array ({LARGEST_BYTES} bytes, the index type's range)"
        )


def normalize_axis(op: str, axis: int, ndim: int) -> int:
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool):
        raise AxisTypeError(f"{op}: axis must be an int, got {axis!r}")
    if not -ndim <= axis < ndim:
        raise AxisError(f"{op}: axis {axis} is out of bounds for an array of dimension {ndim}")
    return int(axis) % ndim if ndim else 0


def normalize_axes(op: str, axis: int | Sequence[int] | None, ndim: int) -> tuple[int, ...]:
    """``axis`` (None, an int or a tuple) as sorted, distinct, non-negative axes."""
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, (int, np.integer)):
        axes: tuple[Any, ...] = (axis,)
    elif isinstance(axis, (tuple, list)):
        axes = tuple(axis)
    else:
        raise AxisTypeError(f"{op}: axis must be None, an int or a tuple of ints, got {axis!r}")
    normalized = [normalize_axis(op, a, ndim) for a in axes]
    if len(set(normalized)) != len(normalized):
        raise AxisError(f"{op}: repeated axis in {tuple(axes)}")
    return tuple(sorted(normalized))


def reshape(shape: Shape, new_shape: Sequence[int]) -> Shape:
    """``new_shape`` with a ``-1`` resolved, or a ShapeError."""
    new = [int(s) for s in new_shape]
    size = math.prod(shape)
    unknown = [i for i, s in enumerate(new) if s == -1]
    if len(unknown) > 1 or any(s < -1 for s in new):
        raise ShapeError(f"reshape: invalid target shape {tuple(new)} (at most one -1, no other negatives)")
    known = math.prod([s for s in new if s != -1])
    if unknown:
        if known == 0 or size % known:
            raise ShapeError(
                f"reshape: cannot reshape array of size {size} (shape {shape}) into shape {tuple(new)}"
            )
        new[unknown[0]] = size // known
    elif known != size:
        raise ShapeError(
            f"reshape: cannot reshape array of size {size} (shape {shape}) into shape {tuple(new)}"
        )
    return tuple(new)


def permutation(op: str, axes: Sequence[int] | None, ndim: int) -> tuple[int, ...]:
    if axes is None:
        return tuple(reversed(range(ndim)))
    if len(axes) != ndim:
        raise ShapeError(f"{op}: axes {tuple(axes)} do not match an array of dimension {ndim}")
    normalized = tuple(normalize_axis(op, a, ndim) for a in axes)
    if sorted(normalized) != list(range(ndim)):
        raise ShapeError(f"{op}: axes {tuple(axes)} are not a permutation of {tuple(range(ndim))}")
    return normalized


def index(shape: Shape, key: Any) -> Shape:
    """The shape of ``x[key]`` for basic indexing, checked by NumPy on a zero-byte array."""
    key = key if isinstance(key, tuple) else (key,)
    for k in key:
        ok = (
            k is None
            or k is Ellipsis
            or isinstance(k, slice)
            or (isinstance(k, (int, np.integer)) and not isinstance(k, bool))
        )
        if not ok:
            raise IndexError(
                f"indexing: only basic indexing is supported (ints, slices, None, ...), got {k!r}"
            )
    probe = np.broadcast_to(np.empty((), dtype=np.bool_), shape)
    try:
        return probe[key].shape  # type: ignore[no-any-return]
    except IndexError as exc:
        raise IndexError(f"indexing: {exc} (shape {shape}, index {key})") from exc


def matmul(a: Shape, b: Shape) -> tuple[Shape, Shape, Shape]:
    """Operand shapes after NumPy's 1-D promotion, and the result shape.

    Returns ``(a_shape, b_shape, out)``: a and b are at least 2-D and broadcast
    against each other on the batch axes; ``out`` has the promoted axes removed.
    """
    if not a or not b:
        raise ShapeError(f"matmul: operands must be at least 1-D, got shapes {a} and {b}")
    a2 = (1, *a) if len(a) == 1 else a
    b2 = (*b, 1) if len(b) == 1 else b
    if a2[-1] != b2[-2]:
        raise ShapeError(
            f"matmul: shapes {a} and {b} do not align: {a2[-1]} (last axis of the first) "
            f"!= {b2[-2]} (second-to-last axis of the second)"
        )
    batch = broadcast("matmul", a2[:-2], b2[:-2])
    out = (*batch, a2[-2], b2[-1])
    if len(a) == 1:
        out = out[:-2] + out[-1:]
    if len(b) == 1:
        out = out[:-1]
    return a2, b2, out
