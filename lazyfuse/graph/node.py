"""Immutable, hash-consed graph nodes.

Invariant: for one structure (op, args, attrs, shape, dtype) there is at most one live
Node object, so equal expressions are the same object (common subexpressions merge
for free) and identity comparison is structural comparison. Nodes are built only
through :func:`make`.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

import numpy as np

from lazyfuse.graph.ops import Op

# Note: a dict of weak references (not a WeakValueDictionary, whose get, set and death
# callbacks run in Python): a hit is a dict lookup and a call of the reference. Dead
# entries are swept when the table doubles, so the sweeps cost O(1) per node made.
_TABLE: dict[tuple[Any, ...], weakref.ref[Node]] = {}
_SWEEP_AT = [4096]
_LOCK = threading.Lock()


class Node:
    """One value in the graph: ``op`` applied to ``args`` with static ``attrs``.

    Immutable by contract: the fields are set once, by :func:`make`, and never again (a
    plain slotted class, not a frozen dataclass, whose ``__init__`` costs three times as
    much, on every op a user writes).
    """

    __slots__ = ("__weakref__", "args", "attrs", "dtype", "key", "op", "shape")
    op: Op
    args: tuple[Node, ...]
    attrs: tuple[Any, ...]
    shape: tuple[int, ...]
    dtype: np.dtype
    key: tuple[Any, ...]

    def __init__(
        self,
        op: Op,
        args: tuple[Node, ...],
        attrs: tuple[Any, ...],
        shape: tuple[int, ...],
        dtype: np.dtype,
        key: tuple[Any, ...],
    ) -> None:
        self.op = op
        self.args = args
        self.attrs = attrs
        self.shape = shape
        self.dtype = dtype
        self.key = key

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def __repr__(self) -> str:
        return f"Node({self.op.name}, shape={self.shape}, dtype={self.dtype})"


_SCALAR_TYPES = (bool, int, float)


def attr_key(value: Any) -> Any:
    """A hashable key for an attribute that tells ``0``, ``False`` and ``0.0`` apart."""
    kind = type(value)
    if kind is tuple:
        return tuple(map(attr_key, value)) if value else value
    if kind in _SCALAR_TYPES:
        return (kind.__name__, value)
    if isinstance(value, np.dtype) or value is None or value is Ellipsis or isinstance(value, (str, Op)):
        return value
    if isinstance(value, (bool, int, float, np.generic)):
        return (type(value).__name__, value)
    if isinstance(value, slice):
        return ("slice", value.start, value.stop, value.step)
    return ("id", id(value))  # arrays and user functions: the node keeps them alive


def make(
    op: Op,
    args: tuple[Node, ...],
    attrs: tuple[Any, ...],
    shape: tuple[int, ...],
    dtype: np.dtype,
    dtype_attrs: bool = False,
) -> Node:
    """The one Node for this structure, created if it does not exist yet.
    ``dtype_attrs``: the attrs hold only dtypes (and tuples of them), their own key."""
    key = (op, tuple(map(id, args)), attrs if dtype_attrs else attr_key(attrs), shape, dtype)
    ref = _TABLE.get(key)
    node = ref() if ref is not None else None
    if node is not None:
        return node
    with _LOCK:
        ref = _TABLE.get(key)
        node = ref() if ref is not None else None
        if node is None:
            node = Node(op, args, attrs, shape, dtype, key)
            _TABLE[key] = weakref.ref(node)
            if len(_TABLE) >= _SWEEP_AT[0]:
                _sweep()
    return node


def _sweep() -> None:
    """Drop the entries of nodes that died (called with the lock held)."""
    for key in [k for k, ref in _TABLE.items() if ref() is None]:
        del _TABLE[key]
    _SWEEP_AT[0] = max(4096, 2 * len(_TABLE))
