"""Immutable, hash-consed graph nodes.

Invariant: for one structure (op, args, attrs, shape, dtype) there is at most one live
Node object, so equal expressions are the same object (common subexpressions merge
for free) and identity comparison is structural comparison. Nodes are built only
through :func:`make`.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lazyfuse.graph.ops import Op

_TABLE: weakref.WeakValueDictionary[tuple[Any, ...], Node] = weakref.WeakValueDictionary()
_LOCK = threading.Lock()


@dataclass(frozen=True, slots=True, eq=False, weakref_slot=True)
class Node:
    """One value in the graph: ``op`` applied to ``args`` with static ``attrs``."""

    op: Op
    args: tuple[Node, ...]
    attrs: tuple[Any, ...]
    shape: tuple[int, ...]
    dtype: np.dtype
    key: tuple[Any, ...] = field(repr=False)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def __repr__(self) -> str:
        return f"Node({self.op.name}, shape={self.shape}, dtype={self.dtype})"


def attr_key(value: Any) -> Any:
    """A hashable key for an attribute that tells ``0``, ``False`` and ``0.0`` apart."""
    if type(value) is tuple:
        return tuple(map(attr_key, value)) if value else value
    if isinstance(value, np.dtype) or value is None or value is Ellipsis or isinstance(value, (str, Op)):
        return value
    if isinstance(value, (bool, int, float, np.generic)):
        return (type(value).__name__, value)
    if isinstance(value, slice):
        return ("slice", value.start, value.stop, value.step)
    return ("id", id(value))  # arrays and user functions: the node keeps them alive


def make(
    op: Op, args: tuple[Node, ...], attrs: tuple[Any, ...], shape: tuple[int, ...], dtype: np.dtype
) -> Node:
    """The one Node for this structure, created if it does not exist yet."""
    key = (op, tuple(map(id, args)), attr_key(attrs), shape, dtype)
    with _LOCK:
        node = _TABLE.get(key)
        if node is None:
            node = Node(op, args, attrs, shape, dtype, key)
            _TABLE[key] = node
    return node
