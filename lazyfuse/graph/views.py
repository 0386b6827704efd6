"""Views applied to NumPy arrays: shared by the reference interpreter and the runtime.

Every view here returns a NumPy view of its input (no copy), except a reshape of a
non-contiguous array, where NumPy itself must copy.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from lazyfuse.graph.node import Node
from lazyfuse.graph.ops import Op


def apply_view(
    node: Node, array: np.ndarray, shape: tuple[int, ...] | None = None, values: Sequence[Any] = ()
) -> np.ndarray:
    """``array`` (the value of ``node.args[0]``) seen through the view ``node``, whose
    shape is ``shape`` when given (a plan made for other sizes), else its own.

    An index's key is ``attrs[0]``: a tuple in a user's graph; in a cached plan a slot
    (an object with ``index``), whose key is ``values[slot.index]`` (runtime/plans.py)."""
    op, attrs = node.op, node.attrs
    if op is Op.RESHAPE:
        return array.reshape(node.shape if shape is None else shape)
    if op is Op.PERMUTE:
        return array.transpose(attrs[0])
    if op is Op.EXPAND:
        return np.broadcast_to(array, node.shape if shape is None else shape)
    if op is Op.INDEX:
        key = attrs[0] if type(attrs[0]) is tuple else values[attrs[0].index]
        # Note: with an Ellipsis NumPy gives a view even for an int on every axis (a 0-d
        # view, which kernels read), never a scalar
        return array[key if Ellipsis in key else (*key, Ellipsis)]  # type: ignore[no-any-return]
    raise ValueError(f"{op} is not a view")
