"""Graph passes before fusion: small pure functions from roots to equivalent roots.

Common subexpressions need no pass: nodes are hash-consed, so an expression written
twice is one node. Constants need no folding pass: every op has a tensor operand (Python
folds ``2.0 * 3.0`` itself), and scalars stay run-time parameters so new values never
recompile. ``PIPELINE`` runs in order; with ``LAZYFUSE_CHECKS=1`` (always in the tests)
the verifier checks the graph after every pass.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from lazyfuse import config
from lazyfuse.graph import build, fuse
from lazyfuse.graph.names import carry_backward_mark
from lazyfuse.graph.node import Node, make
from lazyfuse.graph.ops import ARG_REDUCTIONS, ELEMENTWISE, REDUCTION, Op
from lazyfuse.graph.traverse import toposort, users
from lazyfuse.graph.verify import verify

Pass = Callable[[Sequence[Node]], list[Node]]


def _rebuild(roots: Sequence[Node], rule: Callable[[Node, tuple[Node, ...]], Node]) -> list[Node]:
    """Apply ``rule(node, new_args)`` bottom-up; ``rule`` returns the node to use. A
    backward node's mark (names.BACKWARD_OF) moves to the node that replaces it."""
    new: dict[Node, Node] = {}
    for node in toposort(roots):
        args = tuple(new[a] for a in node.args)
        new[node] = rule(node, args)
        carry_backward_mark(node, new[node], new)
    return [new[r] for r in roots]


def _same(node: Node, args: tuple[Node, ...]) -> Node:
    if all(a is b for a, b in zip(args, node.args, strict=True)):
        return node
    return make(node.op, args, node.attrs, node.shape, node.dtype)


def drop_identities(roots: Sequence[Node]) -> list[Node]:
    """An IDENTITY node (stop_gradient, an argument lf.grad differentiates) is its
    argument: autodiff is done by the time a graph is planned."""
    return _rebuild(roots, lambda node, args: args[0] if node.op is Op.IDENTITY else _same(node, args))


def merge_views(roots: Sequence[Node]) -> list[Node]:
    """A reshape of a reshape is one reshape; a transpose of a transpose is one."""

    def rule(node: Node, args: tuple[Node, ...]) -> Node:
        node = _same(node, args)
        inner = node.args[0] if node.args else None
        if node.op is Op.RESHAPE and inner is not None and inner.op is Op.RESHAPE:
            return build.reshape(inner.args[0], node.shape)
        if node.op is Op.PERMUTE and inner is not None and inner.op is Op.PERMUTE:
            composed = tuple(inner.attrs[0][a] for a in node.attrs[0])
            return build.permute(inner.args[0], composed)
        return node

    return _rebuild(roots, rule)


def push_views(roots: Sequence[Node]) -> list[Node]:
    """:func:`push_view_once` until nothing moves (each round moves views one op down)."""
    current = list(roots)
    for _ in range(64):
        moved = push_view_once(current)
        if all(a is b for a, b in zip(moved, current, strict=True)):
            break
        current = moved
    return current


def push_view_once(roots: Sequence[Node]) -> list[Node]:
    """Move transposes, slices and unit-axis reshapes below elementwise ops that have no
    other user: ``exp(x).T * 2`` becomes ``exp(x.T) * 2``, one loop with a strided read
    of ``x``, instead of a stored ``exp(x)``. Broadcasts stay put: pushing them would
    repeat work m times (that work is computed once at its own shape instead)."""
    uses = users(toposort(roots))
    outputs = set(roots)

    def pushed(node: Node, view: Callable[[Node], Node]) -> Node:
        elementwise = node.op in ELEMENTWISE or node.op in (Op.MAP, Op.ZIP)
        # Note: an op of scalar parameters only (1 / s in a gradient) is 0-d: viewed as it is
        on_arrays = any(a.op is not Op.SCALAR for a in node.args)
        if elementwise and on_arrays and len(uses.get(node, ())) == 1 and node not in outputs:
            args = tuple(a if a.op is Op.SCALAR else pushed(a, view) for a in node.args)
            shape = next(a.shape for a in args if a.op is not Op.SCALAR)
            return make(node.op, args, node.attrs, shape, node.dtype)
        return view(node)

    def rule(node: Node, args: tuple[Node, ...]) -> Node:
        node = _same(node, args)
        if not node.args:
            return node
        source = node.args[0]
        if node.op is Op.PERMUTE:
            return pushed(source, lambda a: build.permute(a, node.attrs[0]))
        if node.op is Op.INDEX:  # Note: make, not build.index: a plan's key is a slot
            return pushed(source, lambda a: make(Op.INDEX, (a,), node.attrs, node.shape, a.dtype))
        if node.op is Op.RESHAPE and _unit_axes_only(source.shape, node.shape):
            return pushed(source, lambda a: build.reshape(a, node.shape))
        return node

    return _rebuild(roots, rule)


def push_gathers(roots: Sequence[Node]) -> list[Node]:
    """Gather the operands of an elementwise value that only a gather reads, instead of
    the value: ``log_softmax(z)[rows, labels]`` computes ``z - max - log(sum)`` at the
    gathered elements only, and the (rows, classes) table is never stored. An expensive
    value other nodes read too is stored anyway, and gathered as it is; a cheap one is
    recomputed at the gathered elements."""
    uses = users(toposort(roots))
    outputs = set(roots)

    def gathered(table: Node, gather: Node, indices: tuple[Node, ...]) -> Node:
        cheap = fuse.cost(table) <= fuse.RECOMPUTE_LIMIT
        if table.op in ELEMENTWISE and (cheap or len(uses.get(table, ())) == 1) and table not in outputs:
            args = tuple(a if a.op is Op.SCALAR else gathered(a, gather, indices) for a in table.args)
            return make(table.op, args, table.attrs, gather.shape, table.dtype)
        return make(Op.GATHER, (table, *indices), gather.attrs, gather.shape, table.dtype)

    def rule(node: Node, args: tuple[Node, ...]) -> Node:
        node = _same(node, args)
        if node.op is not Op.GATHER:
            return node
        return gathered(node.args[0], node, node.args[1:])

    return _rebuild(roots, rule)


def iota_as_input(roots: Sequence[Node]) -> list[Node]:
    """Each index-space node (IOTA) as an input: one arange along its axis, seen
    broadcast at its shape (memory for one axis). For a target whose kernels run over
    flattened arrays and so have no loop index per axis (CUDA)."""

    def rule(node: Node, args: tuple[Node, ...]) -> Node:
        if node.op is not Op.IOTA:
            return _same(node, args)
        axis = node.attrs[0]
        line = build.input_node(np.arange(node.shape[axis], dtype=np.int64))
        column = build.reshape(line, tuple(s if a == axis else 1 for a, s in enumerate(node.shape)))
        return build.broadcast_to(column, node.shape)

    return _rebuild(roots, rule)


# The host function (graph/host.py) of each op read or written at computed indices.
_INDEXED_ON_HOST = {Op.GATHER: "gather", Op.SCATTER_ADD: "scatter_add"}


def indexed_on_host(roots: Sequence[Node]) -> list[Node]:
    """Each gather and scatter-add as a host step (graph/host.py's: NumPy's indexing,
    ``np.add.at``): for a target without their kernels (CUDA)."""

    def rule(node: Node, args: tuple[Node, ...]) -> Node:
        name = _INDEXED_ON_HOST.get(node.op)
        if name is None:
            return _same(node, args)
        return build.host(name, args, (node.attrs[0], node.shape), node.shape, node.dtype)

    return _rebuild(roots, rule)


def scans_on_host(roots: Sequence[Node]) -> list[Node]:
    """Each scan as a host step (NumPy's cumsum/cumprod, lazyfuse/scans.py registers them):
    for a target without scan kernels (CUDA)."""

    def rule(node: Node, args: tuple[Node, ...]) -> Node:
        if node.op is not Op.SCAN:
            return _same(node, args)
        name = "cumsum" if node.attrs[0] is Op.SUM else "cumprod"
        return build.host(name, args, (node.attrs[1], node.dtype.name), node.shape, node.dtype)

    return _rebuild(roots, rule)


def arg_reductions_in_two_passes(roots: Sequence[Node]) -> list[Node]:
    """Each argmax / argmin as two reductions, the extreme and then the first position
    that holds it (a NaN where there is one): for a target whose reductions keep one
    value, not a value and its index (CUDA)."""

    def rule(node: Node, args: tuple[Node, ...]) -> Node:
        if node.op not in ARG_REDUCTIONS:
            return _same(node, args)
        return first_position_of_extreme(node.op, args[0], node.attrs[0])

    return _rebuild(roots, rule)


def first_position_of_extreme(op: Op, x: Node, axes: tuple[int, ...]) -> Node:
    """argmax / argmin (``op``) of ``x`` over ``axes`` as two reductions (also the Dask
    target's, over several chunked axes)."""
    best = build.reduction(REDUCTION[op].extreme, x, axes, keepdims=True)  # type: ignore[arg-type]
    hit = build.elementwise(Op.EQ, x, best)
    if x.dtype.kind == "f":  # Note: a NaN is the extreme, and the first one wins
        both_nan = build.elementwise(Op.AND, build.unary(Op.ISNAN, best), build.unary(Op.ISNAN, x))
        hit = build.binary(Op.OR, hit, both_nan)
    count = math.prod([x.shape[a] for a in axes])
    first = build.elementwise(Op.WHERE, hit, _flat_position(x.shape, axes), count)
    return build.reduction(Op.MIN, first, axes, False)


def _flat_position(shape: tuple[int, ...], axes: tuple[int, ...]) -> Node:
    """Each element's index, in C order, into the part of ``shape`` that ``axes`` span:
    a sum of iotas (loop indices, no stored array) times their strides."""
    position: Node | None = None
    stride = 1
    for axis in reversed(axes):
        index = build.iota(shape, axis)
        term = index if stride == 1 else build.binary(Op.MUL, index, stride)
        position = term if position is None else build.binary(Op.ADD, position, term)
        stride *= shape[axis]
    assert position is not None  # Note: an arg reduction has at least one axis
    return position


def _unit_axes_only(before: tuple[int, ...], after: tuple[int, ...]) -> bool:
    """A reshape that only adds or removes size-1 axes (a view of any strides)."""
    return [s for s in before if s != 1] == [s for s in after if s != 1]


PIPELINE: list[Pass] = [drop_identities, merge_views, push_views, push_gathers]


def optimize(roots: Sequence[Node]) -> list[Node]:
    """Run every pass in ``PIPELINE``; verify after each when checks are on."""
    checks = config.get().checks
    current = list(roots)
    for graph_pass in PIPELINE:
        current = graph_pass(current)
        if checks:
            verify(current)
    return current
