"""The reference interpreter: evaluates any graph with NumPy.

It defines what every op means and is the oracle the tests compare kernels with.
It is written for clarity, not speed (user functions run as Python loops).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from lazyfuse.graph import host
from lazyfuse.graph.host import gather_array, iota_array, scatter_add_array
from lazyfuse.graph.node import Node
from lazyfuse.graph.ops import ELEMENTWISE, REDUCTION, VIEWS, Op
from lazyfuse.graph.traverse import toposort
from lazyfuse.graph.views import apply_view


def evaluate(roots: Iterable[Node]) -> list[np.ndarray]:
    """The value of each root, as a NumPy array of the root's shape and dtype."""
    roots = list(roots)
    values: dict[Node, np.ndarray] = {}
    with np.errstate(all="ignore"):
        for node in toposort(roots):
            values[node] = _evaluate_one(node, [values[a] for a in node.args])
    return [np.asarray(values[r]) for r in roots]


def _evaluate_one(node: Node, args: list[np.ndarray]) -> np.ndarray:
    op = node.op
    if op is Op.INPUT:
        return node.attrs[0]  # type: ignore[no-any-return]
    if op is Op.SCALAR:
        return np.asarray(node.attrs[0], dtype=node.dtype)
    if op in VIEWS:
        return apply_view(node, args[0])
    if op in ELEMENTWISE:
        cast = [a.astype(dt, copy=False) for a, dt in zip(args, node.attrs[0], strict=True)]
        return np.asarray(ELEMENTWISE[op].reference(*cast)).astype(node.dtype)
    if op in (Op.MAP, Op.ZIP):
        fn = np.vectorize(node.attrs[0].fn, otypes=[node.dtype])
        return fn(*args) if node.size else np.empty(node.shape, node.dtype)
    if op is Op.REDUCE:
        return _fold(node, args[0], args[1])
    if op in REDUCTION:
        return np.asarray(REDUCTION[op].reference(args[0], axis=node.attrs[0])).astype(node.dtype)
    if op is Op.IOTA:
        return iota_array(node.shape, node.attrs[0])
    if op is Op.SCAN:
        running = np.cumsum if node.attrs[0] is Op.SUM else np.cumprod
        return running(args[0], axis=node.attrs[1], dtype=node.dtype)  # type: ignore[no-any-return]
    if op is Op.HOST:
        return host.compute(node, args)
    if op is Op.GATHER:
        return gather_array(node.attrs[0], node.shape, args[0], args[1:])
    if op is Op.SCATTER_ADD:
        return scatter_add_array(node.attrs[0], node.shape, args[0], list(args[1:]))
    if op is Op.MATMUL:
        return np.matmul(args[0].astype(node.dtype), args[1].astype(node.dtype))
    raise NotImplementedError(f"interpreter: no rule for {op}")


def _fold(node: Node, x: np.ndarray, start: np.ndarray) -> np.ndarray:
    """A left fold of the user's function over the reduced axes, in C order."""
    axes = node.attrs[0]
    fn = node.attrs[1].fn
    kept = [a for a in range(x.ndim) if a not in axes]
    rows = np.transpose(x, (*kept, *axes)).reshape((*node.shape, -1))
    out = np.empty(node.shape, node.dtype)
    for idx in np.ndindex(*node.shape):
        acc = start[()]
        for v in rows[idx]:
            acc = fn(acc, v)
        out[idx] = acc
    return out
