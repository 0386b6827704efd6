"""Integer-array and boolean indexing, take and take_along_axis, with NumPy's rules.

An integer-array index is a gather (build.gather): a load at computed indices inside
the kernel that consumes it, not a copy. So ``emb[tokens].mean(axis=1)`` is one kernel
and ``lf.log_softmax(z)[lf.arange(n), labels]`` reads ``z``'s row and the label's
element in one. Index values are checked before a kernel runs (IndexError, NumPy's
message); an index that is an ``arange`` is checked when built, for free.

A boolean mask selects a number of elements that depends on its values: ``x[mask]``
computes the mask (if lazy), counts and finds its true elements with NumPy, then
gathers them lazily.
"""

from __future__ import annotations

import operator
from typing import Any

import numpy as np

from lazyfuse.errors import AxisError, ShapeError
from lazyfuse.graph import build, shapes
from lazyfuse.graph.node import Node
from lazyfuse.tensor import Tensor, add_method, asarray

__all__ = ["take", "take_along_axis"]


_FALSE = slice(0, 0)  # a 0-d False mask: a new axis of length 0


def _is_advanced(k: Any) -> bool:
    return isinstance(k, (Tensor, np.ndarray, list)) or (isinstance(k, np.generic) and k.dtype == np.bool_)


def getitem(x: Tensor, key: Any) -> Tensor:
    """``x[key]``: basic indexing as a view; integer arrays, lists and boolean masks as
    NumPy's advanced indexing."""
    parts = key if isinstance(key, tuple) else (key,)
    if not any(_is_advanced(k) or isinstance(k, bool) for k in parts):
        return Tensor(build.index(x.node, key))
    return _advanced(x, parts)


def _advanced(x: Tensor, parts: tuple[Any, ...]) -> Tensor:
    parts = _expand_masks(_as_indices(parts))
    if not any(isinstance(k, Node) for k in parts):  # x[True], x[False]: a new axis, no gather
        empty = parts[0] == _FALSE
        if empty or _FALSE in parts[1:]:
            if _FALSE in parts[1:]:
                raise IndexError("indexing: a 0-d False mask after other indices is not supported")
            parts = (None, *parts[1:])
        new = Tensor(build.index(x.node, parts))
        return new[:0] if empty else new
    used = sum(1 for k in parts if k is not None and k is not Ellipsis)
    if used > x.ndim:
        raise IndexError(
            f"too many indices for tensor: tensor is {x.ndim}-dimensional, but {used} were indexed"
        )
    if parts.count(Ellipsis) > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    at = parts.index(Ellipsis) if Ellipsis in parts else len(parts)
    parts = (*parts[:at], *(slice(None),) * (x.ndim - used), *parts[at + 1 :])
    # the basic part first, as a view: advanced positions keep their axis whole
    basic = tuple(slice(None) if isinstance(k, Node) else k for k in parts)
    whole = all(k == slice(None) for k in basic)
    table = x.node if whole else build.index(x.node, basic)
    axes_of_table, indices = [], []
    axis = 0
    for k in parts:
        if k is None:
            axis += 1
            continue
        if isinstance(k, Node):
            axes_of_table.append(axis)
            indices.append(k)
        axis += 1
    return _gather(table, axes_of_table, indices)


def _is_scalar_int(k: Any) -> bool:
    return isinstance(k, (int, np.integer)) and not isinstance(k, (bool, np.bool_))


def _as_indices(parts: tuple[Any, ...]) -> tuple[Any, ...]:
    """Ints (advanced, beside arrays: NumPy broadcasts them with the arrays), lists,
    arrays and tensors as index nodes; slices, None and Ellipsis as they are."""
    out: list[Any] = []
    for k in parts:
        if k is None or k is Ellipsis or isinstance(k, slice):
            out.append(k)
        elif _is_scalar_int(k):
            out.append(asarray(np.int64(k)).node)
        elif isinstance(k, (bool, np.bool_)):
            out.append(asarray(np.asarray(k)).node)
        else:
            if isinstance(k, list):  # NumPy: an empty list is an empty integer index
                k = np.asarray(k) if len(k) else np.zeros(0, np.int64)
            node = asarray(k).node
            if node.dtype.kind not in "ib":
                raise IndexError(
                    f"arrays used as indices must be of integer (or boolean) type, got {node.dtype}"
                )
            out.append(node)
    return tuple(out)


def _expand_masks(parts: tuple[Any, ...]) -> tuple[Any, ...]:
    """Each boolean mask as the integer indices of its true elements (one per axis it
    covers): computed now, since their number sets the result's shape."""
    out: list[Any] = []
    for k in parts:
        if isinstance(k, Node) and k.dtype == np.bool_:
            mask = np.asarray(Tensor(k).compute())
            if mask.ndim == 0:  # x[True] adds an axis of 1, x[False] an empty one
                out.append(None if mask else _FALSE)
                continue
            out.extend(asarray(found.astype(np.int64)).node for found in np.nonzero(mask))
        else:
            out.append(k)
    return tuple(out)


def _gather(table: Node, advanced: list[int], indices: list[Node]) -> Tensor:
    """``table`` indexed by ``indices`` on its axes ``advanced`` (the others whole), with
    NumPy's placement: the broadcast index shape replaces the advanced axes where they
    are adjacent, else comes first."""
    for a, index in zip(advanced, indices, strict=True):
        if index.ndim == 0 and index.op.name == "INPUT":
            value = int(index.attrs[0])
            if not -table.shape[a] <= value < table.shape[a]:
                raise IndexError(f"index {value} is out of bounds for axis {a} with size {table.shape[a]}")
    joint = shapes.broadcast("index", *[i.shape for i in indices])
    rest = [a for a in range(table.ndim) if a not in advanced]
    adjacent = advanced == list(range(advanced[0], advanced[-1] + 1))
    at = advanced[0] if adjacent else 0
    before = [a for a in rest if a < at] if adjacent else []
    after = [a for a in rest if a not in before]
    shape = (
        *[table.shape[a] for a in before],
        *joint,
        *[table.shape[a] for a in after],
    )
    lead = len(before)
    placed = [_placed(i, joint, lead, len(shape)) for i in indices]
    out_axis = {a: k for k, a in enumerate(before)} | {a: lead + len(joint) + k for k, a in enumerate(after)}
    axes = tuple(("i", advanced.index(t)) if t in advanced else ("d", out_axis[t]) for t in range(table.ndim))
    return Tensor(build.gather(table, [build.broadcast_to(p, shape) for p in placed], axes, shape))


def _placed(index: Node, joint: tuple[int, ...], lead: int, ndim: int) -> Node:
    """``index`` broadcast to ``joint`` and given unit axes so its axes sit at ``lead``."""
    index = build.astype(index, np.int64) if index.dtype != np.int64 else index
    full = build.broadcast_to(index, joint)
    return build.reshape(full, (1,) * lead + joint + (1,) * (ndim - lead - len(joint)))


def take(a: Any, indices: Any, axis: int | None = None) -> Tensor:
    """NumPy's take (mode='raise'): ``a[..., indices, ...]`` along ``axis``; with
    ``axis=None`` from ``a`` flattened."""
    x = asarray(a)
    if axis is None:
        x, axis = x.reshape(-1), 0
    axis = _axis(axis, x.ndim, "take")
    return getitem(x, (slice(None),) * axis + (_index_tensor(indices),))


def take_along_axis(arr: Any, indices: Any, axis: int | None) -> Tensor:
    """NumPy's take_along_axis: ``out[..., i, ...] = arr[..., indices[..., i, ...], ...]``
    along ``axis``, the other axes broadcast between ``arr`` and ``indices``."""
    x, index = asarray(arr), _index_tensor(indices)
    if axis is None:
        if index.ndim != 1:
            raise ShapeError(f"take_along_axis: with axis=None, indices must be 1-d, got {index.ndim}-d")
        x, axis = x.reshape(-1), 0
    if index.ndim != x.ndim:
        raise ShapeError(
            f"take_along_axis: `indices` and `arr` must have the same number of dimensions, "
            f"got {index.ndim} and {x.ndim}"
        )
    axis = _axis(axis, x.ndim, "take_along_axis")
    others = [(s, t) for a, (s, t) in enumerate(zip(x.shape, index.shape, strict=True)) if a != axis]
    joint = shapes.broadcast("take_along_axis", tuple(s for s, _ in others), tuple(t for _, t in others))
    shape = (*joint[:axis], index.shape[axis], *joint[axis:])
    table = build.broadcast_to(x.node, (*shape[:axis], x.shape[axis], *shape[axis + 1 :]))
    node = index.node if index.dtype == np.int64 else build.astype(index.node, np.int64)
    axes = tuple(("i", 0) if t == axis else ("d", t) for t in range(x.ndim))
    return Tensor(build.gather(table, [build.broadcast_to(node, shape)], axes, shape))


def _index_tensor(indices: Any) -> Tensor:
    index = asarray(np.asarray(indices) if isinstance(indices, list) else indices)
    if index.dtype.kind != "i":
        raise IndexError(f"arrays used as indices must be of integer type, got {index.dtype}")
    return index


def _axis(axis: Any, ndim: int, name: str) -> int:
    axis = operator.index(axis)
    if not -ndim <= axis < ndim:
        raise AxisError(f"{name}: axis {axis} is out of bounds for array of dimension {ndim}")
    return axis % ndim


add_method("__getitem__", getitem)
