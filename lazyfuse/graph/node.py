"""Immutable, hash-consed graph nodes.

Invariant: for one structure (op, args, attrs, shape, dtype) there is at most one live
Node object, so equal expressions are the same object (common subexpressions merge
for free) and identity comparison is structural comparison. Nodes are built only
through :func:`make`.
"""

from __future__ import annotations

import itertools
import math
import threading
import weakref
from typing import Any

import numpy as np

from lazyfuse.graph.ops import LEAVES, Op

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

    __slots__ = ("__weakref__", "_itself", "_leaves", "args", "attrs", "dtype", "form", "key", "op", "shape")
    op: Op
    args: tuple[Node, ...]
    attrs: tuple[Any, ...]
    shape: tuple[int, ...]
    dtype: np.dtype
    key: tuple[Any, ...]
    # see :func:`form_of`; None for graphs with more than MAX_FORM_LEAVES leaves
    form: int | None
    # the leaves (see :attr:`leaves`) without the node itself, and whether it is one
    _leaves: tuple[Node, ...] | None
    _itself: bool

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
        self.form, self._leaves, self._itself = form_of(self)

    @property
    def leaves(self) -> tuple[Node, ...] | None:
        """Inputs, scalars and INDEX nodes under this node (itself too, if one): their
        attrs fill a plan's slots. Note: a leaf is not kept in a tuple it holds, which
        would make it a reference cycle that only Python's garbage collector frees, and
        a large input (a Dask task's block) would outlive its last use."""
        own = self._leaves
        if own is None or not self._itself:
            return own
        return (*own, self)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

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
    count = len(args)  # Note: a tuple of one or two ids without a map, on every op a user writes
    ids = (id(args[0]), id(args[1])) if count == 2 else (id(args[0]),) if count == 1 else tuple(map(id, args))
    key = (op, ids, attrs if dtype_attrs else attr_key(attrs), shape, dtype)
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


# Forms ------------------------------------------------------------------------------
#
# A node's *form* is an int naming its structure up to the identity of its leaves: equal
# forms have the same ops, attributes, shapes and dtypes, and the same pattern of which
# leaves are the same object. ``leaves`` are its distinct leaves, first occurrence first,
# arguments left to right (the order of a depth-first walk). Built in O(leaves) when a
# node is made, so the runtime finds a graph's plan from its roots' forms without walking
# the graph. Two graphs with equal forms are the same graph once their leaves are
# replaced by slots: every inner node is hash-consed from its arguments, so the forms
# and leaf maps of the arguments fix it.
#
# An INDEX node (basic indexing) counts as a leaf too, after its argument's leaves: its
# key (``attrs[0]``) is a run-time value that fills a slot, as an input's array does, and
# its form holds its shape but not its key. So ``x[i:i + 256].sum()`` has one form for
# every ``i`` that gives the same shape (runtime/plans.py keys the plan the same way).
#
# Note: a form holds the attribute keys of its nodes, where a user function is keyed by
# its id. A graph that is planned keeps its functions alive (the plan holds them), so a
# form with a reused id never finds a stale plan.

MAX_FORM_LEAVES = 64  # beyond: no form; the runtime walks the graph instead
_INDEX = Op.INDEX  # Note: a global, not an attribute lookup, on every node made
_FORMS: dict[tuple[Any, ...], int] = {}
_FORM_IDS = itertools.count()
_MAX_FORMS = 1 << 17


def form_of(node: Node) -> tuple[int | None, tuple[Node, ...] | None, bool]:
    """The form of ``node``, its distinct leaves but itself (from its arguments') and
    whether it is a leaf itself (see :attr:`Node.leaves`)."""
    op, args = node.op, node.args
    if op in LEAVES:
        return _intern((op, node.shape, node.dtype)), (), True
    if not args:  # an index-space node (IOTA): its attrs and shape are all of it
        return _intern((op, node.key[2], node.shape, node.dtype)), (), False
    first = args[0]
    leaves = first.leaves
    if leaves is None:
        return None, None, False
    if op is _INDEX:  # a leaf whose key is data (see above)
        if len(leaves) >= MAX_FORM_LEAVES:
            return None, None, False
        return _intern((op, node.shape, node.dtype, first.form)), leaves, True
    parts: list[Any] = [op, node.key[2], node.shape, node.dtype, first.form]
    for arg in args[1:]:
        theirs = arg.leaves
        if theirs is None:
            return None, None, False
        if theirs is leaves:
            where: Any = None  # the same leaves as the arguments before
        elif len(theirs) == 1:  # a scalar or an input: the common case, without a dict
            leaf = theirs[0]
            if leaf in leaves:
                where = leaves.index(leaf)
            else:
                where, leaves = len(leaves), (*leaves, leaf)
        else:
            known = {leaf: k for k, leaf in enumerate(leaves)}
            for leaf in theirs:
                known.setdefault(leaf, len(known))
            leaves, where = tuple(known), tuple([known[leaf] for leaf in theirs])
        if len(leaves) > MAX_FORM_LEAVES:
            return None, None, False
        parts.append(arg.form)
        parts.append(where)
    return _intern(tuple(parts)), leaves, False


def _intern(structure: tuple[Any, ...]) -> int:
    found = _FORMS.get(structure)
    if found is None:
        if len(_FORMS) >= _MAX_FORMS:
            _FORMS.clear()  # new ids for new nodes; old nodes keep theirs (ids never repeat)
        found = _FORMS.setdefault(structure, next(_FORM_IDS))
    return found
