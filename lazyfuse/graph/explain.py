"""Printing graphs one line per node, jaxpr-like: ``t3: float64[4,5] = add t1 t2``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lazyfuse.graph.fuse import base_of
from lazyfuse.graph.names import BACKWARD_OF, op_name
from lazyfuse.graph.node import Node
from lazyfuse.graph.ops import ELEMENTWISE, REDUCTION, Op
from lazyfuse.graph.traverse import toposort


def type_of(node: Node) -> str:
    return f"{node.dtype}[{','.join(str(s) for s in node.shape)}]"


def graph_names(roots: Sequence[Node]) -> dict[Node, str]:
    """Printed names: ``a0`` inputs, ``s0`` scalar parameters, ``t0`` everything else."""
    names: dict[Node, str] = {}
    counts = {"a": 0, "s": 0, "t": 0}
    for node in toposort(roots):
        prefix = {Op.INPUT: "a", Op.SCALAR: "s"}.get(node.op, "t")
        names[node] = f"{prefix}{counts[prefix]}"
        counts[prefix] += 1
    return names


def format_graph(roots: Sequence[Node]) -> list[str]:
    """One line per node, arguments before users."""
    names = graph_names(roots)
    lines = []
    for node in toposort(roots):
        if node.op is Op.INPUT:
            lines.append(f"{names[node]}: {type_of(node)} = input")
            continue
        if node.op is Op.SCALAR:
            value = node.attrs[0]
            now = f" (now {value!r})" if isinstance(value, (bool, int, float)) else ""
            lines.append(f"{names[node]}: {node.dtype} = scalar parameter{now}")
            continue
        args = " ".join(names[a] for a in node.args)
        line = f"{names[node]}: {type_of(node)} = {_describe_op(node)} {args}".rstrip()
        lines.append(line + _differentiates(node, names))
    outputs = ", ".join(names[r] for r in roots)
    lines.append(f"outputs: {outputs}")
    return lines


def format_fusion(
    roots: Sequence[Node], groups: Sequence[Any], decisions: Sequence[tuple[Node, str]]
) -> list[str]:
    """The graph after fusion: one line per kernel with the nodes it computes and
    stores, then every decision that kept nodes apart, with its reason."""
    names = graph_names(roots)
    lines = []
    for k, group in enumerate(groups):
        computes = " ".join(names[m] for m in group.members)
        stores = " ".join(names[r] for r in group.roots)
        domain = f"domain {group.shape}" + (f" reducing axes {group.reduced}" if group.reduced else "")
        lines.append(f"kernel {k}: {domain}: computes {computes}; stores {stores}{_pass_of(group)}")
    lines.extend(f"{names[node]}: {reason}" for node, reason in decisions)
    return lines + _forward_reads(groups, decisions, names)


def _differentiates(node: Node, names: dict[Node, str]) -> str:
    """`` ; grad of t3`` for a node of a backward pass (the forward node it differentiates)."""
    forward = BACKWARD_OF.get(node)
    if forward is None:
        return ""
    return f"   ; grad of {names.get(forward, op_name(forward))}"


def _pass_of(group: Any) -> str:
    backward = sum(1 for m in group.members if m in BACKWARD_OF)
    if not backward:
        return ""
    return " (backward)" if backward == len(group.members) else " (forward and backward)"


def _forward_reads(
    groups: Sequence[Any], decisions: Sequence[tuple[Node, str]], names: dict[Node, str]
) -> list[str]:
    """For each forward value a backward node reads: stored (by which kernel) or
    recomputed in the backward's kernel, and the fusion rule's reason."""
    kernel_of = {m: k for k, g in enumerate(groups) for m in g.members}
    stored = {r for g in groups for r in g.roots}
    reasons: dict[Node, list[str]] = {}
    for node, reason in decisions:
        reasons.setdefault(node, []).append(reason)
    members = list(dict.fromkeys(m for g in groups for m in g.members))  # a recomputed one: once
    read = {base_of(a)[0] for m in members if m in BACKWARD_OF for a in m.args}
    lines = []
    for node in members:
        if node in BACKWARD_OF or node not in read:
            continue
        how = f"stored by kernel {kernel_of[node]}" if node in stored else "recomputed where it is read"
        why = "; ".join(reasons.get(node, [])) or "fused: computed in the same kernel"
        lines.append(f"  {names[node]} ({op_name(node)}): {how} ({why})")
    if lines:
        lines.insert(0, "forward values the backward pass reads:")
    return lines


def _describe_op(node: Node) -> str:
    op = node.op
    if op in ELEMENTWISE or op in (Op.MAP, Op.ZIP):
        return op_name(node)
    if op in REDUCTION or op is Op.REDUCE:
        return f"{op_name(node)}[axes={node.attrs[0]}]"
    if op is Op.PERMUTE:
        return f"transpose[axes={node.attrs[0]}]"
    if op is Op.INDEX:
        return f"index[{_format_index(node.attrs[0])}]"
    if op in (Op.RESHAPE, Op.EXPAND):
        return f"{'reshape' if op is Op.RESHAPE else 'broadcast'}[shape={node.shape}]"
    return op.name.lower()


def _format_index(key: tuple[object, ...]) -> str:
    def one(k: object) -> str:
        if isinstance(k, slice):
            parts = ["" if v is None else str(v) for v in (k.start, k.stop, k.step)]
            return ":".join(parts[:2]) + (f":{parts[2]}" if parts[2] else "")
        return "..." if k is Ellipsis else "None" if k is None else str(k)

    return ", ".join(one(k) for k in key)
