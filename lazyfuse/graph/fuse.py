"""Fusion: deciding which nodes share a kernel (the rewriting into specs is kernels.py).

A kernel ("group") has a domain: a shape ``S`` and the reduced axes ``R`` of ``S``
(empty for an elementwise kernel). Its loops run over the kept axes ``K`` (parallel)
and, inside, over ``R``. A member node lives either on ``S`` (inner: one value per
element) or on ``K`` / ``K1`` (``K1`` is ``K`` with size-1 axes at ``R``; outer: one
value per row). Reductions over ``R`` turn inner values into outer ones; the
keepdims broadcast (reshape to ``K1``, expand to ``S``) turns outer values back into
inner ones. Any other view, or a node that cannot join, is stored in a buffer and
read by its consumers through a strided NumPy view.

The rules, each returning a :class:`Decision` with its reason:
- elementwise producers join their consumers' kernel (vertical fusion);
- a reduction joins a consumer's kernel when the domains agree (softmax: max, sum
  and the division share one kernel with one parallel loop over rows);
- a value used by several kernels is recomputed in each when it is cheap
  (``cost <= RECOMPUTE_LIMIT``), else stored once (:func:`recompute_or_store`);
- kernels with the same domain and no path between them merge into one kernel
  with several outputs (``lf.compute(a, b)``, hoisted small kernels).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import networkx as nx

from lazyfuse import config
from lazyfuse.graph.build import unchecked_index
from lazyfuse.graph.names import op_name
from lazyfuse.graph.node import Node
from lazyfuse.graph.ops import ELEMENTWISE, EXPENSIVE_COST, LEAVES, REDUCTION, USER_ELEMENTWISE, VIEWS, Op
from lazyfuse.graph.traverse import toposort

# Cost of recomputing one op, in units of a cheap arithmetic op (each row's ``cost``; a
# user's function costs as much as a math function). A store and a later load of the
# value cost about RECOMPUTE_LIMIT such units in a memory-bound loop.
_COST = {op: row.cost for op, row in ELEMENTWISE.items()} | dict.fromkeys(USER_ELEMENTWISE, EXPENSIVE_COST)
EXPENSIVE = frozenset(op for op, units in _COST.items() if units > 1)
RECOMPUTE_LIMIT = 2
# Siblings merge into one kernel of at most this many ops: Numba's compile time grows
# faster than the kernel (tests/test_compile_time.py), and sharing one loop saves little
# once a kernel does this much work per element.
MERGE_LIMIT = 16


@dataclass(frozen=True)
class Decision:
    ok: bool
    reason: str


@dataclass(eq=False)
class Group:
    """One future kernel: its domain, the nodes it computes and those it stores."""

    shape: tuple[int, ...]
    reduced: tuple[int, ...]
    members: list[Node] = field(default_factory=list)
    roots: list[Node] = field(default_factory=list)
    matmul: bool = False
    host: bool = False  # a HOST node's step: computed by NumPy, never fused
    scan: bool = False  # a scan along ``reduced`` and its elementwise producers
    scatter: bool = False  # a scatter-add over its values' domain and their producers

    @property
    def apart(self) -> bool:
        """A kernel of its own kind, which no other kernel merges with or computes in."""
        return self.matmul or self.host or self.scan or self.scatter

    @property
    def kept(self) -> tuple[int, ...]:
        return tuple(s for i, s in enumerate(self.shape) if i not in self.reduced)

    @property
    def kept_with_ones(self) -> tuple[int, ...]:
        return tuple(1 if i in self.reduced else s for i, s in enumerate(self.shape))

    def is_outer_shape(self, shape: tuple[int, ...]) -> bool:
        return bool(self.reduced) and shape in (self.kept, self.kept_with_ones)

    @property
    def reduces(self) -> bool:
        """Whether the kernel's domain is a reduction's. Note: not ``bool(reduced)``: a
        reduction over no axes (``x.sum().sum()``: the second sums a 0-d value) has a
        domain with no reduced axes, and another reduction must not take it over."""
        return bool(self.reduced) or any(is_reduction(m) for m in self.members)


@dataclass
class Plan:
    """Groups in execution order, and every fusion decision with its reason."""

    groups: list[Group]
    decisions: list[tuple[Node, str]]


def is_reduction(node: Node) -> bool:
    return node.op in REDUCTION or node.op is Op.REDUCE


def is_pointwise(node: Node) -> bool:
    """One value per element of its shape, computed where it is needed: elementwise ops,
    user functions, index-space values and gathers."""
    return node.op in ELEMENTWISE or node.op in _POINTWISE


_POINTWISE = frozenset({Op.MAP, Op.ZIP, Op.IOTA, Op.GATHER})


def is_computing(node: Node) -> bool:
    return node.op not in LEAVES and node.op not in VIEWS


def cost(node: Node) -> int:
    return _COST.get(node.op, 1)


def base_of(node: Node) -> tuple[Node, tuple[Node, ...]]:
    """The node under a chain of views, and the chain (bottom view first)."""
    chain: list[Node] = []
    while node.op in VIEWS:
        chain.append(node)
        node = node.args[0]
    return node, tuple(reversed(chain))


def _reduction_domain(node: Node) -> tuple[tuple[int, ...], tuple[int, ...]]:
    return node.args[0].shape, node.attrs[0]


def can_fuse(producer: Node, chain: tuple[Node, ...], group: Group) -> Decision:
    """May ``producer``, read through the views ``chain``, be computed inside ``group``?"""
    if not config.get().fuse:
        return Decision(False, "fusion is off (LAZYFUSE_FUSE=0)")
    if group.matmul:
        return Decision(False, "matmul kernels take no fused producers yet")
    if group.host:
        return Decision(False, "a host step (computed by NumPy) takes no fused producers")
    if group.scan or group.scatter:
        kind = "scan" if group.scan else "scatter-add"
        if is_pointwise(producer) and not chain and producer.shape == group.shape:
            return Decision(True, f"elementwise on the {kind}'s domain")
        return Decision(False, f"a {kind} kernel takes only elementwise producers on its own domain")
    if producer.op is Op.MATMUL:
        return Decision(False, "matmul is its own kernel")
    if is_reduction(producer):
        return _can_fuse_reduction(producer, chain, group)
    if is_pointwise(producer):
        return _can_fuse_elementwise(producer, chain, group)
    return Decision(False, f"{producer.op.name.lower()} is not fusable")


def _path_ok(chain: tuple[Node, ...], start: tuple[int, ...], group: Group) -> Decision:
    """Views allowed inside a kernel: K <-> K1 reshapes and the K1 -> S broadcast."""
    shape = start
    for view in chain:
        if not _is_index_map(view, shape, group):
            where = f"this kernel's domain {group.shape} (reduced axes {group.reduced})"
            return Decision(
                False, f"the view {view.op.name.lower()} to {view.shape} is not an index map of {where}"
            )
        shape = view.shape
    return Decision(True, "same domain")


def _is_index_map(view: Node, shape: tuple[int, ...], group: Group) -> bool:
    if view.op is Op.RESHAPE:
        return group.is_outer_shape(shape) and group.is_outer_shape(view.shape)
    return view.op is Op.EXPAND and shape == group.kept_with_ones and view.shape == group.shape


def _can_fuse_elementwise(producer: Node, chain: tuple[Node, ...], group: Group) -> Decision:
    if not chain and producer.shape == group.shape:
        return Decision(True, "elementwise on the same domain")
    if group.is_outer_shape(producer.shape):
        return _path_ok(chain, producer.shape, group)
    rows = _row_domain(chain, group)
    if rows is not None:
        return _path_ok(chain, producer.shape, rows)
    if chain and chain[-1].op is not Op.EXPAND:
        views = ", ".join(v.op.name.lower() for v in chain)
        return Decision(False, f"read through {views}, not an index map of this kernel; stored, read strided")
    return Decision(
        False,
        f"shape {producer.shape} is not this kernel's domain {group.shape}; "
        f"it is computed once at its own shape and read broadcast",
    )


def _row_domain(chain: tuple[Node, ...], group: Group) -> Group | None:
    """For an elementwise kernel reading a value broadcast along its trailing axes
    (``b[:, None]`` in an (m, n) kernel): the domain that hoists the value out of the
    inner loop, so it is computed once per row. Leading-axis broadcasts (``b[None, :]``)
    are not hoisted this way: the inner loop would stride across rows."""
    if group.reduces or group.matmul or not chain or chain[-1].op is not Op.EXPAND:
        return None
    if chain[-1].shape != group.shape:
        return None
    source = chain[-1].args[0].shape
    axes = tuple(a for a, (s, t) in enumerate(zip(source, group.shape, strict=True)) if s == 1 and t != 1)
    ndim = len(group.shape)
    if not axes or axes != tuple(range(ndim - len(axes), ndim)):
        return None
    return Group(group.shape, axes)


def _can_fuse_reduction(producer: Node, chain: tuple[Node, ...], group: Group) -> Decision:
    shape, axes = _reduction_domain(producer)
    if group.reduces:
        if (shape, axes) != (group.shape, group.reduced):
            return Decision(
                False, f"reduces {shape} over {axes}; this kernel reduces {group.shape} over {group.reduced}"
            )
        return _path_ok(chain, producer.shape, group)
    # An elementwise kernel takes the reduction's domain when its shape is S, K or K1.
    trial = Group(shape, axes)
    if group.shape not in (shape, trial.kept, trial.kept_with_ones):
        return Decision(
            False, f"kernel domain {group.shape} is neither the reduction's input {shape} nor its result"
        )
    return _path_ok(chain, producer.shape, trial)


Use = tuple[Node, int, tuple[Node, ...]]


def _consumers(order: Sequence[Node]) -> dict[Node, list[Use]]:
    """For each computing node, every use by a computing node: (consumer, argument
    position, views between)."""
    result: dict[Node, list[Use]] = {n: [] for n in order if is_computing(n)}
    for node in order:
        if not is_computing(node):
            continue
        for position, arg in enumerate(node.args):
            base, chain = base_of(arg)
            if base in result:
                result[base].append((node, position, chain))
    return result


def _stored_operand(consumer: Node, position: int, operand: Node) -> str | None:
    """Why ``operand``, argument ``position`` of ``consumer``, must be stored whatever
    its kernel: the consumer checks its values before the kernel runs, or reads it at
    computed indices (a gather's table); None when it need not be."""
    if consumer.op is Op.GATHER:
        if position == 0:
            return "a gather reads its table at computed indices"
        return None if unchecked_index(operand) else "the gather checks this index's values first"
    if consumer.op is Op.SCATTER_ADD and position > 0 and not unchecked_index(operand):
        return "the scatter-add checks this index's values first"
    row = ELEMENTWISE.get(consumer.op)
    if row is not None and row.precondition is not None and row.checked_arg == position:
        return f"{op_name(consumer)} checks this operand's values first"
    return None


def plan(roots: Sequence[Node]) -> Plan:
    """Group the computing nodes reachable from ``roots`` into kernels."""
    for level in (HOMES_ALL, HOMES_REDUCTIONS, NO_HOMES):
        found = _plan(roots, level)
        if found is not None:  # else a home made two kernels wait for each other: fewer homes
            return found
    raise AssertionError("a plan without homes has no cycle")


# How far _plan goes in computing a stored value inside a consumer's kernel (``homes``).
NO_HOMES, HOMES_REDUCTIONS, HOMES_ALL = 0, 1, 2


def _plan(roots: Sequence[Node], homes: int) -> Plan | None:
    """:func:`plan`; ``homes`` HOMES_REDUCTIONS: a reduction that is stored (several
    kernels read it) is computed in the kernel of one consumer that can take it, as one
    of its outputs (softmax's row max, read by the row's kernel and by a gather's: one
    kernel); HOMES_ALL: any stored value is (layernorm's normalized x, read by the row
    kernel of its gradient and by the column sums of gamma's), and a value several row
    kernels of one domain read makes them one kernel (:func:`_unite`). None when that
    made two kernels wait for each other."""
    order = toposort(roots)
    consumers = _consumers(order)
    stored = {base_of(r)[0] for r in roots}
    groups_of: dict[Node, list[Group]] = {}
    decisions: list[tuple[Node, str]] = []
    for node in reversed(order):
        if not is_computing(node):
            continue
        unite = homes == HOMES_ALL
        joined = [] if node in stored else _join(node, consumers[node], groups_of, decisions, unite)
        if not joined and node not in stored and (unite or (homes and is_reduction(node))):
            joined = _home(node, consumers[node], groups_of, decisions)
        if not joined:
            group = _new_group(node)
            group.roots.append(node)
            joined = [group]
        for group in joined:
            _adopt(group, node, consumers[node])
        groups_of[node] = joined
    groups = _ordered_groups(order, groups_of)
    if homes == HOMES_ALL:
        groups = _absorb_row_values(groups, decisions)
    if homes and not nx.is_directed_acyclic_graph(_group_graph(groups)):
        return None
    return Plan(_merge_siblings(groups), decisions)


def _absorb_row_values(groups: list[Group], decisions: list[tuple[Node, str]]) -> list[Group]:
    """Compute a small kernel of per-row values (``log(sum(exp))``, stored for a gather)
    in the row kernel whose values it is made of, as one more output of it."""
    graph = _group_graph(groups)
    kept = []
    for group in groups:
        producer = _row_producer(group, graph)
        if producer is None:
            kept.append(group)
            continue
        producer.members.extend(group.members)
        producer.roots.extend(group.roots)
        graph = nx.contracted_nodes(graph, producer, group, self_loops=False)
        decisions.extend((r, "stored by the row kernel that computes its operands") for r in group.roots)
    return kept


def _row_producer(group: Group, graph: nx.DiGraph) -> Group | None:
    """The row kernel that can compute all of ``group`` (elementwise on its rows, made of
    its values and scalars), where no other kernel runs between the two; else None."""
    if group.reduces or group.apart:
        return None
    for producer in graph.predecessors(group):
        if not producer.reduces or not producer.is_outer_shape(group.shape):
            continue
        if producer.apart:
            continue
        made_of = all(_made_of(m, producer, group) for m in group.members)
        if made_of and not _path_besides(graph, producer, group):
            return producer  # type: ignore[no-any-return]
    return None


def _made_of(member: Node, producer: Group, group: Group) -> bool:
    if not is_pointwise(member) or member.op is Op.GATHER:
        return False
    for arg in member.args:
        base, chain = base_of(arg)
        if base.op is Op.SCALAR or base in group.members:
            continue
        if base not in producer.members or not _path_ok(chain, base.shape, producer).ok:
            return False
    return True


def _path_besides(graph: nx.DiGraph, source: Group, target: Group) -> bool:
    """Whether ``target`` is reachable from ``source`` other than by their direct edge."""
    others = [middle for middle in graph.successors(source) if middle is not target]
    return any(nx.has_path(graph, middle, target) for middle in others)


def _new_group(node: Node) -> Group:
    if node.op is Op.MATMUL:
        return Group(node.shape, (), matmul=True)
    if node.op is Op.HOST:
        return Group(node.shape, (), host=True)
    if node.op is Op.SCAN:
        return Group(node.shape, (node.attrs[1],), scan=True)
    if node.op is Op.SCATTER_ADD:
        return Group(node.args[0].shape, (), scatter=True)
    if is_reduction(node):
        return Group(*_reduction_domain(node))
    return Group(node.shape, ())


def _adopt(group: Group, node: Node, uses: list[Use]) -> None:
    """Add ``node``; a reduction, or a value hoisted per row, joining an elementwise
    kernel sets the kernel's reduced axes."""
    if not group.reduces and not group.apart:
        if is_reduction(node):
            group.shape, group.reduced = _reduction_domain(node)
        else:
            chains = [chain for consumer, _, chain in uses if consumer in group.members]
            rows = next((r for c in chains if (r := _row_domain(c, group)) is not None), None)
            if rows is not None:
                group.reduced = rows.reduced
    group.members.append(node)


def _join(
    node: Node,
    uses: list[Use],
    groups_of: dict[Node, list[Group]],
    decisions: list[tuple[Node, str]],
    unite: bool = False,
) -> list[Group]:
    """The groups ``node`` is computed in, or [] when it must be stored in its own."""
    targets: dict[int, Group] = {}
    for consumer, position, chain in uses:
        reason = _stored_operand(consumer, position, node)
        if reason is not None:
            decisions.append((node, f"stored: {reason}"))
            return []
        for group in groups_of[consumer]:
            decision = can_fuse(node, chain, group)
            if not decision.ok:
                decisions.append(
                    (node, f"stored: not fused into the kernel of {op_name(consumer)}: {decision.reason}")
                )
                return []
            targets[id(group)] = group
    if len(targets) > 1 and unite:
        united = _unite(list(targets.values()), groups_of)
        if united is not None:
            reason = f"computed once: the {len(targets)} kernels reading it reduce the same rows: one kernel"
            decisions.append((node, reason))
            return [united]
    if len(targets) > 1:
        keep, reason = recompute_or_store(node, len(targets))
        decisions.append((node, reason))
        if not keep:
            return []
    return list(targets.values())


# A united row kernel has at most this many ops (compile time; see MERGE_LIMIT).
UNITE_LIMIT = 4 * MERGE_LIMIT


def _unite(groups: list[Group], groups_of: dict[Node, list[Group]]) -> Group | None:
    """One kernel for ``groups``, row kernels of one domain that all read a value: the
    value, and whatever else one of them stored for another, is computed in the row's
    passes instead of going through memory (softmax's forward and backward, layernorm's:
    one kernel). None when they differ in domain or kind, would be too large, or one
    reads what another stores at computed indices or checks before it runs."""
    first = groups[0]
    if not first.reduces or any(g.apart for g in groups):
        return None
    if any((g.shape, g.reduced, g.reduces) != (first.shape, first.reduced, first.reduces) for g in groups):
        return None
    if sum(len(g.members) for g in groups) > UNITE_LIMIT or not _reads_fuse(groups):
        return None
    absorbed = {id(g) for g in groups[1:]}
    for g in groups[1:]:
        first.members.extend(g.members)
        first.roots.extend(g.roots)
    for node, gs in groups_of.items():
        if any(id(g) in absorbed for g in gs):
            kept = [g for g in gs if id(g) not in absorbed]
            groups_of[node] = kept if first in kept else [first, *kept]
    return first


def _reads_fuse(groups: list[Group]) -> bool:
    """Whether, in one kernel, each member of ``groups`` could read the values another of
    them stores from registers: through index maps of the domain, and not as an operand
    that must be stored first (a gather's table, a checked operand)."""
    stored = {r for g in groups for r in g.roots}
    domain = Group(groups[0].shape, groups[0].reduced)
    for g in groups:
        for member in g.members:
            for position, arg in enumerate(member.args):
                base, chain = base_of(arg)
                if base not in stored or base in g.members:
                    continue
                if (
                    _stored_operand(member, position, base) is not None
                    or not can_fuse(base, chain, domain).ok
                ):
                    return False
    return True


def _home(
    node: Node, uses: list[Use], groups_of: dict[Node, list[Group]], decisions: list[tuple[Node, str]]
) -> list[Group]:
    """The kernel of a consumer of ``node`` that can compute it, with ``node`` made one of
    its outputs; [] when none can. Of several, the first that can also compute most of
    ``node``'s own operands (there, they need not be stored for it)."""
    best: tuple[int, Group, Node] | None = None
    for consumer, position, _ in uses:
        if _stored_operand(consumer, position, node) is not None:
            continue  # it reads the value before its kernel runs (a check, a gather's table)
        for group in groups_of[consumer]:
            # Note: a scan stores its scan only; and every read of the value in the kernel
            # must be in its registers (not ``t[::-1]``, an element another iteration makes)
            if not group.scan and not group.scatter and _reads_in_registers(node, uses, group, groups_of):
                score = sum(1 for arg in node.args if _can_take(arg, group))
                if best is None or score > best[0]:
                    best = (score, group, consumer)
    if best is None:
        return []
    _, group, consumer = best
    group.roots.append(node)
    decisions.append((node, f"stored by the kernel of {op_name(consumer)}, which computes it"))
    return [group]


def _reads_in_registers(
    node: Node, uses: list[Use], group: Group, groups_of: dict[Node, list[Group]]
) -> bool:
    """Whether ``group`` can compute ``node`` for each of its members that read it: through
    views that are index maps of its domain, and not as an operand stored first."""
    for consumer, position, chain in uses:
        if not any(g is group for g in groups_of[consumer]):
            continue
        if _stored_operand(consumer, position, node) is not None or not can_fuse(node, chain, group).ok:
            return False
    return True


def _can_take(arg: Node, group: Group) -> bool:
    """Whether ``group`` could compute the computing node under ``arg``'s views."""
    base, chain = base_of(arg)
    return is_computing(base) and can_fuse(base, chain, group).ok


def recompute_or_store(node: Node, kernels: int) -> tuple[bool, str]:
    """The written rule for a value several kernels need: recompute it in each when its
    op is cheap (cost <= RECOMPUTE_LIMIT, a store and a load cost about that much),
    otherwise store it once. Reductions are always stored once."""
    if is_reduction(node):
        return False, f"stored once: a reduction used by {kernels} kernels"
    if cost(node) <= RECOMPUTE_LIMIT:
        return True, f"recomputed in {kernels} kernels: cost {cost(node)} <= {RECOMPUTE_LIMIT}"
    return False, f"stored once for {kernels} kernels: cost {cost(node)} > {RECOMPUTE_LIMIT}"


def _ordered_groups(order: Sequence[Node], groups_of: dict[Node, list[Group]]) -> list[Group]:
    """Groups ordered by their last member in topological order; members in order."""
    position = {n: i for i, n in enumerate(order)}
    unique = {id(g): g for gs in groups_of.values() for g in gs}
    for g in unique.values():
        g.members.sort(key=position.__getitem__)
    return sorted(unique.values(), key=lambda g: max(position[m] for m in g.members))


def _merge_siblings(groups: list[Group]) -> list[Group]:
    """Merge groups with the same domain when neither depends on the other."""
    if not config.get().fuse:
        return groups
    graph = _group_graph(groups)
    merged: list[Group] = []
    for group in groups:
        partner = next((m for m in merged if _mergeable(m, group, graph)), None)
        if partner is None:
            merged.append(group)
            continue
        partner.members.extend(m for m in group.members if m not in partner.members)
        partner.roots.extend(group.roots)
        graph = nx.contracted_nodes(graph, partner, group, self_loops=False)
    rank = {g: i for i, g in enumerate(groups)}
    return list(nx.lexicographical_topological_sort(graph, key=rank.__getitem__))


def _mergeable(a: Group, b: Group, graph: nx.DiGraph) -> bool:
    if a.apart or b.apart:
        return False
    if (a.shape, a.reduced, a.reduces) != (b.shape, b.reduced, b.reduces):
        return False
    if len(a.members) + len(b.members) > MERGE_LIMIT:
        return False
    return not nx.has_path(graph, a, b) and not nx.has_path(graph, b, a)


def _group_graph(groups: list[Group]) -> nx.DiGraph:
    """An edge a -> b when b reads a value a stores."""
    graph = nx.DiGraph()
    graph.add_nodes_from(groups)
    owner = {r: g for g in groups for r in g.roots}
    for g in groups:
        for m in g.members:
            for arg in m.args:
                source = owner.get(base_of(arg)[0])
                if source is not None and source is not g:
                    graph.add_edge(source, g)
    return graph
