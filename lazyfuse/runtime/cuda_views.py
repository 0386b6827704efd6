"""Views of device buffers, taken on the device: a chain of views (transpose, slice,
broadcast, reshape) over a C-contiguous device buffer becomes one gather kernel that
writes the view's elements into a new C-contiguous device array. So a computed value
is viewed where it is, and an input crosses to the device once, at its own size (a
broadcast of it is not inflated on the host first).

NumPy works out where a view's elements lie: the chain is applied to a stand-in array
with one byte per element of the buffer (``np.empty``: never written; views do not read
it), and the view's byte offset and strides are then its offset and strides in elements.
A reshape that NumPy cannot do as a view copies the stand-in instead: that chain has no
layout here, and the caller takes the host path.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Layout:
    """Where a view's elements are in its buffer, in elements: element (i0, i1, ...) is
    at ``offset + i0 * strides[0] + i1 * strides[1] + ...``."""

    offset: int
    shape: tuple[int, ...]
    strides: tuple[int, ...]

    def is_whole_buffer(self, size: int) -> bool:
        """The view is the buffer itself, in its order (nothing to gather). The stride
        of an axis of extent 1 never moves: NumPy gives it any value."""
        if self.offset != 0 or math.prod(self.shape) != size:
            return False
        moving = [
            (s, c) for n, s, c in zip(self.shape, self.strides, _c_strides(self.shape), strict=True) if n > 1
        ]
        return all(s == c for s, c in moving)


def stand_in(shape: tuple[int, ...], order: tuple[int, ...] | None = None) -> np.ndarray:
    """A one-byte-per-element stand-in for a C-contiguous buffer holding a value of
    ``shape``; with ``order``, the buffer holds the value's axes in that order."""
    if order is None:
        return np.empty(shape, np.uint8)
    return np.empty(tuple(shape[a] for a in order), np.uint8).transpose(np.argsort(order))


def layout(view: np.ndarray, stand_in_array: np.ndarray) -> Layout | None:
    """The layout of ``view`` (the stand-in seen through views) in the stand-in's
    buffer; None when NumPy had to copy (no view of the buffer describes it)."""
    if view.size == 0:
        return Layout(0, view.shape, _c_strides(view.shape))
    if not np.may_share_memory(view, stand_in_array):
        return None
    base = stand_in_array.__array_interface__["data"][0]
    offset = view.__array_interface__["data"][0] - base
    return Layout(offset, view.shape, view.strides)


def gather(cuda: Any, buffer: Any, found: Layout, dtype: np.dtype, block: int, max_blocks: int) -> Any:
    """A new C-contiguous device array of ``found.shape``: the view of ``buffer`` (a flat
    device array) that ``found`` describes, copied element by element on the device."""
    out = cuda.device_array(found.shape, dtype=dtype)
    size = math.prod(found.shape)
    if size == 0:
        return out
    shape, strides = (1, *found.shape), (0, *found.strides)  # at least one axis
    blocks = min(math.ceil(size / block), max_blocks)
    from lazyfuse.runtime.cuda_gather import gather_view

    gather_view[blocks, block](buffer, out.reshape(size), found.offset, shape, strides)
    return out


def _c_strides(shape: tuple[int, ...]) -> tuple[int, ...]:
    strides, step = [], 1
    for extent in reversed(shape):
        strides.append(step)
        step *= extent
    return tuple(reversed(strides))
