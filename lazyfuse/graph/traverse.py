"""Walking graphs: a deterministic topological order, and the networkx view."""

from __future__ import annotations

from collections.abc import Iterable

import networkx as nx

from lazyfuse.graph.node import Node


def toposort(roots: Iterable[Node]) -> list[Node]:
    """Every node reachable from ``roots``, arguments before users, in a stable order
    (depth-first, arguments left to right), so generated names are deterministic."""
    order: list[Node] = []
    seen: set[int] = set()
    for root in roots:
        stack: list[tuple[Node, bool]] = [(root, False)]
        while stack:
            node, expanded = stack.pop()
            if expanded:
                order.append(node)
                continue
            if id(node) in seen:
                continue
            seen.add(id(node))
            stack.append((node, True))
            stack.extend((a, False) for a in reversed(node.args) if id(a) not in seen)
    return order


def to_networkx(roots: Iterable[Node]) -> nx.DiGraph:
    """The analysis view: one vertex per node, an edge from each argument to its user."""
    graph = nx.DiGraph()
    for node in toposort(roots):
        graph.add_node(node)
        for arg in node.args:
            graph.add_edge(arg, node)
    return graph


def users(nodes: Iterable[Node]) -> dict[Node, list[Node]]:
    """For each node, the nodes (among ``nodes``) that use it."""
    result: dict[Node, list[Node]] = {}
    for node in nodes:
        result.setdefault(node, [])
        for arg in node.args:
            result.setdefault(arg, []).append(node)
    return result
