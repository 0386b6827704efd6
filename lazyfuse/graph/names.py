"""Display names of ops, as NumPy users know them (``add``, ``sum``, ``map_square``)."""

from __future__ import annotations

import weakref
from typing import Any

from lazyfuse.graph.node import Node
from lazyfuse.graph.ops import ELEMENTWISE, REDUCTION, Op


def op_name(node: Node) -> str:
    if node.op in ELEMENTWISE:
        return ELEMENTWISE[node.op].name
    if node.op in REDUCTION:
        return REDUCTION[node.op].name
    if node.op is Op.SCAN:
        return "cumsum" if node.attrs[0] is Op.SUM else "cumprod"
    if node.op in (Op.MAP, Op.ZIP, Op.REDUCE):
        return f"{node.op.name.lower()}_{_identifier(user_function(node).name)}"
    return node.op.name.lower()


def user_function(node: Node) -> Any:
    return node.attrs[1] if node.op is Op.REDUCE else node.attrs[0]


def _identifier(text: str) -> str:
    cleaned = "".join(c if c.isalnum() else "_" for c in text).strip("_")
    return cleaned or "fn"


# The forward node each node of a backward pass differentiates (written by
# lazyfuse.autodiff, kept by graph passes that rebuild nodes, shown by explain()).
BACKWARD_OF: weakref.WeakKeyDictionary[Node, Node] = weakref.WeakKeyDictionary()


def carry_backward_mark(old: Node, new: Node, replaced: dict[Node, Node]) -> None:
    """``new`` replaces ``old`` (a pass, a plan's skeleton): it differentiates what ``old``
    did, as the node that replaced that (``replaced``)."""
    forward = BACKWARD_OF.get(old)
    if forward is not None and new is not old and new not in BACKWARD_OF:
        BACKWARD_OF[new] = replaced.get(forward, forward)
