"""Pytrees: nested tuples, lists and dicts whose leaves are arrays, tensors or scalars.

``lf.grad`` and ``lf.jit`` take and return them, as JAX's transformations do: a
function's parameters can be a dict of weights, its result a pair of (loss, metrics).
A ``None`` is an empty subtree (no leaf), as in JAX. Dict keys are kept in sorted order
(JAX's rule), so two dicts with the same keys flatten alike whatever order they were
written in.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

_NODE_TYPES = (tuple, list, dict)


@dataclass(frozen=True)
class TreeDef:
    """The structure of a pytree without its leaves: ``kind`` is "leaf", "none", tuple,
    list, dict (or a namedtuple class); ``keys`` the dict's sorted keys; ``children``
    the subtrees' structures.

    Note: its hash is computed once, from its children's (lf.jit looks a call's
    structure up in its traces on every call)."""

    kind: Any
    keys: tuple[Any, ...] = ()
    children: tuple[TreeDef, ...] = ()
    _hash: int = field(default=0, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_hash", hash((self.kind, self.keys, self.children)))

    def __hash__(self) -> int:
        return self._hash

    @property
    def leaves(self) -> int:
        """How many leaves a tree of this structure has."""
        if self.kind == "leaf":
            return 1
        return sum(child.leaves for child in self.children)

    def __str__(self) -> str:
        if self.kind == "leaf":
            return "*"
        if self.kind == "none":
            return "None"
        inner = ", ".join(
            f"{k!r}: {c}" if self.kind is dict else str(c)
            for k, c in zip(self.keys or [None] * len(self.children), self.children, strict=True)
        )
        if self.kind is dict:
            return "{" + inner + "}"
        if self.kind is list:
            return "[" + inner + "]"
        return "(" + inner + ("," if len(self.children) == 1 else "") + ")"


LEAF = TreeDef("leaf")


def flatten(tree: Any, is_leaf: Callable[[Any], bool] | None = None) -> tuple[list[Any], TreeDef]:
    """The leaves of ``tree``, depth first (dict values in sorted key order), and its
    structure. ``is_leaf(x)`` True stops the descent at ``x``."""
    leaves: list[Any] = []
    return leaves, _flatten(tree, leaves, is_leaf)


def _flatten(tree: Any, leaves: list[Any], is_leaf: Callable[[Any], bool] | None) -> TreeDef:
    if tree is None:
        return TreeDef("none")
    if (is_leaf is not None and is_leaf(tree)) or not isinstance(tree, _NODE_TYPES):
        leaves.append(tree)
        return LEAF
    if isinstance(tree, dict):
        try:
            keys = tuple(sorted(tree))
        except TypeError as exc:
            raise TypeError(f"pytree: dict keys must be sortable (JAX's rule), got {list(tree)}") from exc
        return TreeDef(dict, keys, tuple(_flatten(tree[k], leaves, is_leaf) for k in keys))
    # a namedtuple keeps its class; another subclass of tuple or list becomes its base
    kind = type(tree) if hasattr(type(tree), "_fields") else tuple if isinstance(tree, tuple) else list
    return TreeDef(kind, (), tuple(_flatten(child, leaves, is_leaf) for child in tree))


def unflatten(treedef: TreeDef, leaves: Sequence[Any]) -> Any:
    """The pytree of structure ``treedef`` with ``leaves`` in flatten's order."""
    if len(leaves) != treedef.leaves:
        raise ValueError(f"pytree: structure {treedef} takes {treedef.leaves} leaves, got {len(leaves)}")
    it = iter(leaves)
    return _unflatten(treedef, it)


def _unflatten(treedef: TreeDef, it: Any) -> Any:
    if treedef.kind == "leaf":
        return next(it)
    if treedef.kind == "none":
        return None
    children = [_unflatten(child, it) for child in treedef.children]
    if treedef.kind is dict:
        return dict(zip(treedef.keys, children, strict=True))
    if hasattr(treedef.kind, "_fields"):
        return treedef.kind(*children)
    return treedef.kind(children)


def tree_map(fn: Callable[..., Any], tree: Any, *rest: Any) -> Any:
    """``fn`` applied to each leaf of ``tree`` (and the leaves at the same place in
    ``rest``, trees of the same structure), in a tree of the same structure."""
    leaves, treedef = flatten(tree)
    others = [flatten(r)[0] for r in rest]
    return unflatten(treedef, [fn(*parts) for parts in zip(leaves, *others, strict=True)])
