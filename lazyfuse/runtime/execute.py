"""Running a graph: views become NumPy views, every other node one kernel call.

Note: in this version each computing node is its own kernel (fusion is a later
pass); views never copy, they are strided NumPy views handed to the kernels.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from lazyfuse import config
from lazyfuse.codegen import cpu
from lazyfuse.graph import kernels
from lazyfuse.graph.node import Node
from lazyfuse.graph.ops import ELEMENTWISE, VIEWS, Op
from lazyfuse.graph.traverse import toposort
from lazyfuse.graph.views import apply_view
from lazyfuse.runtime.compile import CompiledKernel, kernel_for, write_source


def options() -> cpu.Options:
    return cpu.Options(parallel=config.get().parallel)


def plan(roots: Sequence[Node]) -> list[tuple[Node, CompiledKernel]]:
    """The kernels that compute ``roots``, in execution order (loaded, not yet run)."""
    opts = options()
    return [(n, kernel_for(kernels.spec_for(n), opts)) for n in toposort(roots) if kernels.is_kernel(n)]


def kernel_source_path(node: Node) -> str:
    """Write the source of the kernel that computes ``node`` (without compiling it)."""
    spec = kernels.spec_for(node)
    return str(write_source(spec.name, cpu.generate(spec, options())))


def run(roots: Sequence[Node]) -> list[np.ndarray]:
    """Compute ``roots``; intermediates are dropped after their last use."""
    order = toposort(roots)
    last_use = {arg: i for i, node in enumerate(order) for arg in node.args}
    keep = set(roots)
    values: dict[Node, Any] = {}
    opts = options()
    for i, node in enumerate(order):
        values[node] = _compute(node, values, opts)
        for arg in node.args:
            if last_use.get(arg) == i and arg not in keep:
                del values[arg]
    return [np.asarray(values[r]) for r in roots]


def _compute(node: Node, values: dict[Node, Any], opts: cpu.Options) -> Any:
    op = node.op
    if op is Op.INPUT:
        return node.attrs[0]
    if op is Op.SCALAR:
        return node.dtype.type(node.attrs[0])
    if op in VIEWS:
        return apply_view(node, values[node.args[0]])
    kernel = kernel_for(kernels.spec_for(node), opts)
    arrays = [values[a] for a in node.args if a.op is not Op.SCALAR]
    params = [values[a] for a in node.args if a.op is Op.SCALAR]
    row = ELEMENTWISE.get(op)
    if row is not None and row.precondition:
        row.precondition(node.attrs[0], *[values[a] for a in node.args])
    if op in (Op.SUM, Op.PROD, Op.MAX, Op.MIN, Op.REDUCE):
        arrays[0] = arrays[0].transpose(kernels.reduce_permutation(node))
    out = np.empty(node.shape, node.dtype)
    started = time.perf_counter()
    kernel(*arrays, *params, out)
    if config.get().debug:
        _report(kernel, node, time.perf_counter() - started)
    return out


def _report(kernel: CompiledKernel, node: Node, seconds: float) -> None:
    print(f"[lazyfuse] {kernel.name} {node.shape} {seconds * 1e3:.3f} ms", file=sys.stderr)
    if config.get().debug >= 3:
        print(kernel.source, file=sys.stderr)
