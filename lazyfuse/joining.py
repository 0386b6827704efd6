"""Joining and reshaping: concatenate, stack, split, swapaxes, moveaxis, flip, pad, repeat, tile.

Everything that only moves elements around is a view of its input (a permutation, a
slice with step -1, a broadcast then a reshape), so it fuses with what reads it. The
joins whose output interleaves several inputs (concatenate, stack, pad, and repeat with
an array of counts) are host steps: NumPy computes them from the stored inputs (see
graph/host.py), after the kernels that compute their inputs.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

from lazyfuse.errors import AxisError, DTypeError, LazyfuseError, ShapeError
from lazyfuse.graph import build, dtypes, host, shapes
from lazyfuse.tensor import Tensor, add_method, asarray

__all__ = [
    "array_split",
    "concat",
    "concatenate",
    "flip",
    "matrix_transpose",
    "moveaxis",
    "pad",
    "repeat",
    "split",
    "stack",
    "swapaxes",
    "tile",
]


# views ---------------------------------------------------------------------------


def swapaxes(a: Any, axis1: int, axis2: int) -> Tensor:
    """NumPy's ``swapaxes``: a view with ``axis1`` and ``axis2`` exchanged."""
    x = asarray(a)
    first = shapes.normalize_axis("swapaxes (axis1)", axis1, x.ndim)
    second = shapes.normalize_axis("swapaxes (axis2)", axis2, x.ndim)
    order = list(range(x.ndim))
    order[first], order[second] = second, first
    return x.transpose(tuple(order))


def _axis_list(name: str, axes: int | Sequence[int], ndim: int, what: str) -> list[int]:
    """``axes`` (an int or a sequence), normalized in the order given; none repeated."""
    given = [axes] if isinstance(axes, (int, np.integer)) else list(axes)
    normalized = [shapes.normalize_axis(f"{name} ({what})", a, ndim) for a in given]
    if len(set(normalized)) != len(normalized):
        raise AxisError(f"{name}: repeated axis in `{what}` argument {tuple(given)}")
    return normalized


def moveaxis(a: Any, source: int | Sequence[int], destination: int | Sequence[int]) -> Tensor:
    """NumPy's ``moveaxis``: a view with the ``source`` axes at the ``destination``
    positions, the other axes in their order."""
    x = asarray(a)
    sources = _axis_list("moveaxis", source, x.ndim, "source")
    destinations = _axis_list("moveaxis", destination, x.ndim, "destination")
    if len(sources) != len(destinations):
        raise ShapeError(
            f"moveaxis: `source` {source!r} and `destination` {destination!r} must have the same number of "
            f"elements"
        )
    order = [n for n in range(x.ndim) if n not in sources]
    for dest, src in sorted(zip(destinations, sources, strict=True)):
        order.insert(dest, src)
    return x.transpose(tuple(order))


def matrix_transpose(x: Any, /) -> Tensor:
    """NumPy's (and the Array API's) ``matrix_transpose``: the last two axes swapped, a
    view; also the property ``Tensor.mT``."""
    t = asarray(x)
    if t.ndim < 2:
        raise ShapeError(
            f"matrix_transpose: input must be at least 2-dimensional, but it has shape {t.shape}"
        )
    return swapaxes(t, -1, -2)


def flip(m: Any, axis: int | Sequence[int] | None = None) -> Tensor:
    """NumPy's ``flip``: the order of elements along ``axis`` (all when None) reversed,
    a view (a slice with step -1)."""
    x = asarray(m)
    axes = range(x.ndim) if axis is None else _axis_list("flip", axis, x.ndim, "axis")
    if not axes:
        return x
    key = tuple(slice(None, None, -1) if i in axes else slice(None) for i in range(x.ndim))
    return x[key]


def _along(axis: int, key: slice) -> tuple[slice, ...]:
    return (*(slice(None),) * axis, key)


def array_split(ary: Any, indices_or_sections: Any, axis: int = 0) -> list[Tensor]:
    """NumPy's ``array_split``: views of ``ary`` split along ``axis`` into N sections (the
    first ``size % N`` one longer) or at the given indices (Python slice rules)."""
    x = asarray(ary)
    if x.ndim == 0:
        raise AxisError(f"array_split: a 0-d array (shape {x.shape}) has no axis {axis} to split")
    axis = shapes.normalize_axis("array_split", axis, x.ndim)
    total = x.shape[axis]
    if isinstance(indices_or_sections, (int, np.integer)):
        sections = int(indices_or_sections)
        if sections <= 0:
            raise ShapeError(f"array_split: number of sections must be larger than 0, got {sections}")
        each, extras = divmod(total, sections)
        sizes = [each + 1] * extras + [each] * (sections - extras)
        points = [0, *np.cumsum(sizes).tolist()]
    else:
        points = [0, *(int(i) for i in indices_or_sections), total]
    return [x[_along(axis, slice(start, end))] for start, end in itertools.pairwise(points)]


def split(ary: Any, indices_or_sections: Any, axis: int = 0) -> list[Tensor]:
    """NumPy's ``split``: as :func:`array_split`, but N sections must divide the axis."""
    if isinstance(indices_or_sections, (int, np.integer)):
        x = asarray(ary)
        if x.ndim == 0:
            raise AxisError(f"split: a 0-d array (shape {x.shape}) has no axis {axis} to split")
        size = x.shape[shapes.normalize_axis("split", axis, x.ndim)]
        if indices_or_sections <= 0 or size % indices_or_sections:
            raise ShapeError(
                f"split: array split does not result in an equal division: axis {axis} of shape {x.shape} "
                f"into {indices_or_sections} sections (use array_split for unequal ones)"
            )
    return array_split(ary, indices_or_sections, axis)


def tile(A: Any, reps: int | Sequence[int]) -> Tensor:  # noqa: N803 (NumPy's name)
    """NumPy's ``tile``: ``A`` repeated ``reps`` times along each axis (``A`` and ``reps``
    padded with leading 1s to the same length), as a broadcast view reshaped."""
    x = asarray(A)
    counts = (int(reps),) if isinstance(reps, (int, np.integer)) else tuple(int(r) for r in reps)
    if any(r < 0 for r in counts):
        raise ShapeError(f"tile: negative repetitions {counts} are not allowed")
    ndim = max(x.ndim, len(counts))
    sides = (1,) * (ndim - x.ndim) + x.shape
    counts = (1,) * (ndim - len(counts)) + counts
    interleaved = tuple(v for side in sides for v in (1, side))
    repeated = tuple(v for pair in zip(counts, sides, strict=True) for v in pair)
    whole = tuple(r * s for r, s in zip(counts, sides, strict=True))
    return x.reshape(interleaved).broadcast_to(repeated).reshape(whole)


# host steps: outputs that interleave several inputs ----------------------------------


def _join(name: str, tensors: list[Tensor], axis: int) -> Tensor:
    """The host op ``concatenate`` of 1-d or more tensors along ``axis`` (checked)."""
    dtype = dtypes.result_type(name, *[t.dtype for t in tensors])
    first = tensors[0]
    for k, t in enumerate(tensors[1:], start=1):
        if t.ndim != first.ndim:
            raise ShapeError(
                f"{name}: all the input arrays must have the same number of dimensions, but the array at "
                f"index 0 has shape {first.shape} and the array at index {k} has shape {t.shape}"
            )
        for d in range(first.ndim):
            if d != axis and t.shape[d] != first.shape[d]:
                raise ShapeError(
                    f"{name}: all the input array dimensions except for the concatenation axis must match "
                    f"exactly, but along dimension {d}, the array at index 0 has shape {first.shape} and "
                    f"the array at index {k} has shape {t.shape}"
                )
    if len(tensors) == 1:
        return first.astype(dtype)
    shape = list(first.shape)
    shape[axis] = sum(t.shape[axis] for t in tensors)
    shapes.check_size(name, tuple(shape), dtype.itemsize)
    return Tensor(build.host("concatenate", [t.node for t in tensors], (axis,), shape, dtype))


def concatenate(arrays: Sequence[Any], axis: int | None = 0) -> Tensor:
    """NumPy's ``concatenate``: the arrays joined along an existing ``axis`` (flattened
    first when None), in ``np.result_type`` of the inputs. A host step: each input is
    computed (or read) and NumPy copies them into the result."""
    tensors = [asarray(a) for a in arrays]
    if not tensors:
        raise ShapeError("concatenate: need at least one array to concatenate")
    if axis is None:
        return _join("concatenate", [t.reshape(-1) for t in tensors], 0)
    zero_d = [k for k, t in enumerate(tensors) if t.ndim == 0]
    if zero_d:
        raise ShapeError(
            f"concatenate: zero-dimensional arrays cannot be concatenated (the array at index {zero_d[0]}); "
            f"use stack, or axis=None"
        )
    return _join("concatenate", tensors, shapes.normalize_axis("concatenate", axis, tensors[0].ndim))


concat = concatenate


def stack(arrays: Sequence[Any], axis: int = 0) -> Tensor:
    """NumPy's ``stack``: arrays of one shape joined along a new ``axis`` (a host step,
    as :func:`concatenate`)."""
    tensors = [asarray(a) for a in arrays]
    if not tensors:
        raise ShapeError("stack: need at least one array to stack")
    if any(t.shape != tensors[0].shape for t in tensors):
        shown = ", ".join(str(t.shape) for t in tensors)
        raise ShapeError(f"stack: all input arrays must have the same shape, got {shown}")
    axis = shapes.normalize_axis("stack", axis, tensors[0].ndim + 1)
    return _join("stack", [t.expand_dims(axis) for t in tensors], axis)


def _pairs(name: str, what: str, value: Any, ndim: int) -> np.ndarray:
    """NumPy's ``_as_pairs``: ``value`` (a scalar, a (before, after) pair or one pair per
    axis) broadcast to shape (ndim, 2)."""
    try:
        return np.broadcast_to(np.asarray(value), (ndim, 2))
    except ValueError as exc:
        raise ShapeError(
            f"{name}: {what} {value!r} must be a scalar, a (before, after) pair, or one pair per axis "
            f"of the {ndim}-d array"
        ) from exc


def pad(array: Any, pad_width: Any, mode: str = "constant", constant_values: Any = 0) -> Tensor:
    """NumPy's ``pad`` in mode "constant": ``pad_width[i] = (before, after)`` elements of
    ``constant_values`` (cast to the array's dtype) added around axis i. A host step."""
    x = asarray(array)
    if mode != "constant":
        raise LazyfuseError(
            f"pad: mode {mode!r} is not supported by lazyfuse (only 'constant'); compute the array and "
            f"call np.pad, or build the border from slices and concatenate"
        )
    widths = _pairs("pad", "pad_width", pad_width, x.ndim)
    if widths.dtype.kind not in "iu":
        raise DTypeError(f"pad: `pad_width` must be of integral type, got {widths.dtype}")
    if (widths < 0).any():
        raise ShapeError(f"pad: pad_width {pad_width!r} contains negative values")
    values = _pairs("pad", "constant_values", constant_values, x.ndim).astype(x.dtype)
    if x.ndim == 0:
        return x  # Note: NumPy pads a 0-d array to itself
    shape = tuple(s + int(w.sum()) for s, w in zip(x.shape, widths, strict=True))
    shapes.check_size("pad", shape, x.dtype.itemsize)
    # Note: the constants as bytes in the node's key: values that compare equal (0.0 and
    # -0.0, 1 and True) must not make one node.
    params = (tuple(map(tuple, widths.tolist())), values.tobytes())
    return Tensor(build.host("pad", [x.node], params, shape, x.dtype))


def _padded(x: np.ndarray, widths: tuple[tuple[int, int], ...], values: bytes) -> np.ndarray:
    constants = np.frombuffer(values, x.dtype).reshape(x.ndim, 2)
    return np.pad(x, widths, mode="constant", constant_values=constants)


def repeat(a: Any, repeats: Any, axis: int | None = None) -> Tensor:
    """NumPy's ``repeat``: each element repeated ``repeats`` times along ``axis`` (the
    flattened array when None). An int count is a broadcast view reshaped (fused with
    its readers); an array of counts (one per element along the axis) is a host step."""
    x = asarray(a)
    if axis is None:
        x, axis = x.reshape(-1), 0
    elif x.ndim == 0:
        x = x.reshape(1)  # Note: NumPy repeats a 0-d array as a 1-d one
    axis = shapes.normalize_axis("repeat", axis, x.ndim)
    counts = np.asarray(repeats)
    if counts.ndim > 1:
        raise ShapeError(f"repeat: repeats must be an int or a 1-d sequence, got shape {counts.shape}")
    counts = counts.astype(np.intp)
    if (counts < 0).any():
        raise ShapeError(f"repeat: negative repeats {repeats!r} are not allowed")
    if counts.size == 1:
        return _repeat_each(x, int(counts.reshape(())), axis)
    if counts.size != x.shape[axis]:
        raise ShapeError(
            f"repeat: {counts.size} repeats for axis {axis} of shape {x.shape} (size {x.shape[axis]}); "
            f"give one count per element, or one for all"
        )
    shape = (*x.shape[:axis], int(counts.sum()), *x.shape[axis + 1 :])
    return Tensor(build.host("repeat", [x.node], (tuple(counts.tolist()), axis), shape, x.dtype))


def _repeat_each(x: Tensor, count: int, axis: int) -> Tensor:
    """Each element repeated ``count`` times along ``axis``: a size-``count`` axis after
    it, broadcast, then merged into it."""
    head, side, tail = x.shape[:axis], x.shape[axis], x.shape[axis + 1 :]
    spread = x.reshape((*head, side, 1, *tail)).broadcast_to((*head, side, count, *tail))
    return spread.reshape((*head, side * count, *tail))


def _repeated(x: np.ndarray, counts: tuple[int, ...], axis: int) -> np.ndarray:
    return np.repeat(x, counts, axis=axis)


def _concatenated(*arrays_then_axis: Any) -> np.ndarray:
    *arrays, axis = arrays_then_axis
    return np.concatenate(arrays, axis=axis)


host.register("concatenate", _concatenated)
host.register("pad", _padded)
host.register("repeat", _repeated)

add_method("swapaxes", swapaxes)
add_method("repeat", repeat)
add_method("mT", property(matrix_transpose))
