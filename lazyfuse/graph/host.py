"""Host functions: ops computed by a NumPy function in a step of their own (HOST nodes).

A HOST node's attrs are ``(name, params)``; its value is
``FUNCTIONS[name](*argument_arrays, *params)``. Front-end modules register their
functions when imported. The reference interpreter and every target call the same
function, so a host op means one thing everywhere. A host step is never fused: it is
what an op costs until it has a kernel (see the README's list of what runs where).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from lazyfuse.graph.node import Node

FUNCTIONS: dict[str, Callable[..., np.ndarray]] = {}


def register(name: str, function: Callable[..., np.ndarray]) -> None:
    """Make ``function`` the meaning of host op ``name`` (called with the arguments'
    arrays, then the node's params)."""
    FUNCTIONS[name] = function


def compute(node: Node, arrays: Sequence[Any]) -> np.ndarray:
    """The value of the HOST ``node`` from its arguments' values."""
    name, params = node.attrs
    result = np.asarray(FUNCTIONS[name](*arrays, *params))
    if result.dtype != node.dtype:
        result = result.astype(node.dtype)
    return result


def iota_array(shape: tuple[int, ...], axis: int) -> np.ndarray:
    """Each element's index along ``axis`` (int64), as a broadcast view of one arange."""
    line = np.arange(shape[axis], dtype=np.int64)
    return np.broadcast_to(line.reshape([-1 if a == axis else 1 for a in range(len(shape))]), shape)


def gather_array(
    axes: tuple[tuple[str, int], ...], shape: tuple[int, ...], table: np.ndarray, indices: list[np.ndarray]
) -> np.ndarray:
    """A gather's value (see build.gather) by NumPy's integer-array indexing, whose
    bounds errors it raises."""
    parts = [indices[j] if kind == "i" else iota_array(shape, j) for kind, j in axes]
    return np.asarray(table[tuple(parts)]) if parts else np.broadcast_to(table, shape)


def _gather_on_host(table: np.ndarray, *rest: Any) -> np.ndarray:
    """The host function of a gather (params: its axes and shape after the indices)."""
    *indices, axes, shape = rest
    return gather_array(axes, shape, table, indices)


def scatter_add_array(
    axes: tuple[tuple[str, int], ...], shape: tuple[int, ...], values: np.ndarray, indices: list[np.ndarray]
) -> np.ndarray:
    """A scatter-add's value (see build.scatter_add) by ``np.add.at``, whose bounds errors
    it raises."""
    out = np.zeros(shape, values.dtype)
    parts = [indices[j] if kind == "i" else iota_array(values.shape, j) for kind, j in axes]
    np.add.at(out, tuple(parts), values)
    return out


def _scatter_add_on_host(values: np.ndarray, *rest: Any) -> np.ndarray:
    """The host function of a scatter-add (params: its axes and shape after the indices):
    for a target without scatter kernels (CUDA, Dask)."""
    *indices, axes, shape = rest
    return scatter_add_array(axes, shape, values, indices)


register("gather", _gather_on_host)
register("scatter_add", _scatter_add_on_host)
