"""The plan cache: one plan per graph structure, looked up before any pass runs.

A plan is made for a *skeleton* of the user's graph, where every input array and
scalar is a numbered slot, so the cache holds no user data and one plan serves every
call with the same structure: the user's arrays and scalars fill the slots when it runs.
The key is the graph's structure (ops, how nodes connect, attributes, shapes, dtypes)
and the settings that change plans. Sizes are in the key for now: a new size plans
again (no compile: kernels do not depend on sizes).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lazyfuse import config
from lazyfuse.graph import fuse, kernels, passes
from lazyfuse.graph.node import Node, make
from lazyfuse.graph.ops import LEAVES
from lazyfuse.graph.traverse import toposort


class Slot:
    """A placeholder leaf: position ``index`` among the graph's inputs and scalars."""

    __slots__ = ("__weakref__", "index")

    def __init__(self, index: int) -> None:
        self.index = index

    def __repr__(self) -> str:
        return f"slot {self.index}"


@dataclass
class Plan:
    """Optimized skeleton roots, the fusion plan, and the bound kernel calls."""

    roots: list[Node]
    grouped: fuse.Plan
    calls: list[kernels.KernelCall]


_PLANS: dict[Any, Plan] = {}
_LOCK = threading.Lock()
STATS = {"hits": 0, "misses": 0}


def structure(roots: Sequence[Node]) -> tuple[Any, list[Node]]:
    """The cache key of ``roots`` and their leaves (inputs and scalars) in slot order.

    One walk in ``toposort``'s order (arguments before users, left to right); each node's
    entry names its arguments by position in that order. Note: written as one loop, not
    toposort then a second pass, since it runs on every compute.
    """
    index: dict[int, int] = {}
    leaves: list[Node] = []
    entries: list[tuple[Any, ...]] = []
    for root in roots:
        stack: list[tuple[Node, bool]] = [(root, False)]
        while stack:
            node, expanded = stack.pop()
            if expanded:
                index[id(node)] = len(entries)
                if node.op in LEAVES:
                    leaves.append(node)
                    entries.append((node.op, node.shape, node.dtype.str))
                else:
                    args = tuple([index[id(a)] for a in node.args])
                    entries.append((node.op, args, node.key[2], node.shape, node.dtype.str))
            elif id(node) not in index:
                index[id(node)] = -1  # seen; its entry comes after its arguments'
                stack.append((node, True))
                stack.extend([(a, False) for a in reversed(node.args) if id(a) not in index])
    settings = config.get()
    root_entries = tuple([index[id(r)] for r in roots])
    return (tuple(entries), root_entries, settings.fuse, settings.checks), leaves


def plan_for(roots: Sequence[Node]) -> tuple[Plan, list[Any]]:
    """The plan for ``roots`` (made on a miss) and the values that fill its slots."""
    key, leaves = structure(roots)
    values = [leaf.attrs[0] for leaf in leaves]
    found = _PLANS.get(key)
    if found is not None:
        STATS["hits"] += 1
        return found, values
    made = _make(roots, leaves)
    with _LOCK:
        STATS["misses"] += 1
        return _PLANS.setdefault(key, made), values


def _make(roots: Sequence[Node], leaves: list[Node]) -> Plan:
    slots = {leaf: make(leaf.op, (), (Slot(k),), leaf.shape, leaf.dtype) for k, leaf in enumerate(leaves)}
    skeleton: dict[Node, Node] = {}
    for node in toposort(roots):
        if node in slots:
            skeleton[node] = slots[node]
        else:
            args = tuple(skeleton[a] for a in node.args)
            skeleton[node] = make(node.op, args, node.attrs, node.shape, node.dtype)
    optimized = passes.optimize([skeleton[r] for r in roots])
    order = toposort(optimized)
    grouped = fuse.plan(optimized)
    return Plan(optimized, grouped, [kernels.bind(g, order) for g in grouped.groups])


def clear() -> None:
    with _LOCK:
        _PLANS.clear()
