"""The IR verifier: run after every pass when ``LAZYFUSE_CHECKS=1`` (always in tests).

It re-derives what the builders promised: the graph is acyclic, every node has the
arity, shape and dtype its op's rules give, and views keep the element count.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import networkx as nx
import numpy as np

from lazyfuse.graph import dtypes, shapes
from lazyfuse.graph.node import Node
from lazyfuse.graph.ops import ELEMENTWISE, REDUCTION, Op
from lazyfuse.graph.traverse import to_networkx


class VerificationError(AssertionError):
    """The graph broke an invariant: a bug in lazyfuse, not in the user's code."""


def verify(roots: Sequence[Node]) -> None:
    graph = to_networkx(roots)
    if not nx.is_directed_acyclic_graph(graph):
        raise VerificationError(f"graph has a cycle: {nx.find_cycle(graph)}")
    for node in nx.topological_sort(graph):
        problem = _check(node)
        if problem:
            raise VerificationError(f"{node!r}: {problem}")


def _check(node: Node) -> str | None:
    if node.dtype not in dtypes.SUPPORTED:
        return f"unsupported dtype {node.dtype}"
    op = node.op
    if op in ELEMENTWISE:
        row = ELEMENTWISE[op]
        if len(node.args) != row.arity:
            return f"{len(node.args)} args for arity {row.arity}"
        arrays = [a.shape for a in node.args if a.op is not Op.SCALAR]
        if any(s != node.shape for s in arrays):
            return f"operand shapes {arrays} differ from {node.shape}"
    if op in REDUCTION or op is Op.REDUCE:
        axes = node.attrs[0]
        kept = tuple(s for i, s in enumerate(node.args[0].shape) if i not in axes)
        if kept != node.shape:
            return f"reduced shape {kept} != {node.shape}"
    if op is Op.IOTA and not (node.dtype == np.int64 and 0 <= node.attrs[0] < node.ndim):
        return f"iota along axis {node.attrs[0]} of {node.ndim} axes, dtype {node.dtype}"
    if op is Op.RESHAPE and math.prod(node.shape) != node.args[0].size:
        return "reshape changes the element count"
    if op is Op.EXPAND and shapes.broadcast("verify", node.args[0].shape, node.shape) != node.shape:
        return f"cannot expand {node.args[0].shape} to {node.shape}"
    return None
