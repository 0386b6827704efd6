"""Kernel specs: the contract between the graph and code generation.

A spec says what one kernel computes without any array size in it, so one compiled
kernel serves every size: its loop nest (``n_outer`` parallel axes, then
``n_inner`` reduced axes), the arrays it loads (each read per row, "outer", or per
element, "inner"), scalar parameters, the expression DAG, the reductions (each in a
numbered pass over the row) and the stores. Specs are hashable; equal specs compile
to the same kernel.

:func:`bind` turns a fusion group into a spec plus what the runtime needs to call it:
which buffer and views feed each array argument, which nodes are parameters and
outputs, and the loop extents. Views never copy: each array argument is the stored
value seen through its views (strided, broadcast with stride 0, negative strides),
permuted so that the kernel's kept axes come first and reduced axes last.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from lazyfuse.graph import dtypes
from lazyfuse.graph.build import unchecked_index
from lazyfuse.graph.fuse import Group, base_of
from lazyfuse.graph.names import op_name, user_function
from lazyfuse.graph.node import Node
from lazyfuse.graph.ops import ELEMENTWISE, REDUCTION, Op


class Layout(enum.Enum):
    """How a kernel's arrays are laid out, and so how it indexes them: a spec's (what it
    was generated for) and a call's (runtime/variants.py: the variant the run chooses)."""

    ANY = "any strides"
    C = "C-contiguous"  # an elementwise kernel of several axes: one flat loop
    F = "F-contiguous (a leading-axis reduction of C arrays, seen transposed)"
    ROWS = "rows x columns"  # C arrays and broadcasts of whole leading or trailing axes
    PADDED = "any strides, padded to ELEMENTWISE_RANK axes"
    BLAS = "BLAS"  # a float product: NumPy's matmul, no generated kernel


@dataclass(frozen=True)
class Load:
    """Array argument ``array`` read into the variable ``var`` once per row (outer) or
    once per element (inner)."""

    array: str
    var: str
    dtype: np.dtype
    inner: bool
    # a gather's table: the whole array, of this many axes, read at computed indices
    # (passed as it is: never permuted, flattened or split into rows)
    ndim: int | None = None
    # positions of its index (kept axes, then reduced) along which it is broadcast: read
    # at 0 there, so the compiler sees the load does not change along them
    fixed: tuple[int, ...] = ()


@dataclass(frozen=True)
class Param:
    name: str
    dtype: np.dtype


@dataclass(frozen=True)
class Expr:
    """``target = op(*args)``; args are cast to ``loop`` dtypes; ``fn`` names a user function."""

    target: str
    op: Op
    args: tuple[str, ...]
    arg_dtypes: tuple[np.dtype, ...]
    loop: tuple[np.dtype, ...]
    dtype: np.dtype
    inner: bool
    fn: str | None = None
    index: str | None = None  # IOTA: the loop variable it reads


@dataclass(frozen=True)
class Accumulate:
    """``target = fold(op, start, value over the reduced axes)``, computed in pass ``phase``."""

    target: str
    op: Op
    value: str
    value_dtype: np.dtype
    dtype: np.dtype
    phase: int
    start: str | None = None  # a parameter (lf.reduce's start); else the op's identity
    fn: str | None = None


@dataclass(frozen=True)
class Store:
    array: str
    value: str
    value_dtype: np.dtype
    dtype: np.dtype
    inner: bool
    # a scatter-add's: ``array[index] += value`` into an array of ``ndim`` axes (the
    # table), which the kernel zeroes first; ``index`` reads the variables ``index_args``
    index: str | None = None
    ndim: int | None = None
    index_args: tuple[str, ...] = ()


@dataclass(frozen=True)
class KernelSpec:
    name: str
    stem: str  # the name without its rank: the fused ops and output dtypes
    kind: str  # "loop" or "matmul"
    n_outer: int
    n_inner: int
    loads: tuple[Load, ...]
    params: tuple[Param, ...]
    exprs: tuple[Expr, ...]
    accumulates: tuple[Accumulate, ...]
    stores: tuple[Store, ...]
    user_functions: tuple[tuple[str, Any], ...] = ()
    description: tuple[str, ...] = ()
    # the reduced axes all come before the kept ones (``x.sum(axis=0)``): in C order
    # the kept axes are the contiguous ones
    leading_reduction: bool = False
    # the kept axes after the reduced ones, when every reduced axis comes before them
    # (``emb[tokens].mean(axis=1)`` reduces axis 1 of (S, L, E): E is trailing); those
    # are the contiguous axes in C order
    trailing_kept: int = 0

    @property
    def cacheable(self) -> bool:
        """Whether the kernel's file may be cached on disk: each user function it calls has
        a key (``build.UserFunction.key``), which codegen writes in the file's header, so
        the file's name says which machine code it calls."""
        return all(user.key for _, user in self.user_functions)

    # C when the runtime passes only C-contiguous arrays (elementwise kernels then run
    # over one flattened axis), F only Fortran-contiguous ones, ANY any strides, ROWS
    # rows x columns of C-contiguous arrays, each load read as ``load_views`` says
    layout: Layout = Layout.ANY
    load_views: tuple[str, ...] = ()
    # an expression reads the loop index of one axis (IOTA): the kernel runs only with
    # its domain's own axes (never flattened, padded or split into rows)
    natural: bool = False
    # how gather tables are typed: "A" any strides, "C" C-contiguous (vectorizable rows)
    table_layout: str = "A"
    # a scatter-add's domain axis along which no two iterations write the same element
    # (one the table runs along whole, as a row's columns): its loop is split among
    # threads; None: the kernel runs on one thread
    apart_axis: int | None = None


@dataclass
class KernelCall:
    """A spec and how to call it: each load's source (stored node and views), the
    parameter and output nodes, the loop extents and the axis permutation."""

    spec: KernelSpec
    loads: list[tuple[Node, tuple[Node, ...], bool]]
    params: list[Node]
    outputs: list[Node]
    extents: tuple[int, ...]
    permutation: tuple[int, ...]
    kept: tuple[int, ...]
    checks: list[tuple[Node, Node]] = field(default_factory=list)
    # the runtime's compiled kernels for this call, by (layout variant, parallel, math, donated loads)
    kernels: dict[tuple[Any, ...], Any] = field(default_factory=dict)


def viewed_node(base: Node, chain: tuple[Node, ...]) -> Node:
    """The node a load reads: its stored ``base`` seen through its ``chain`` of views."""
    return chain[-1] if chain else base


class _Builder:
    """Walks one group's members in order, naming every value it reads or computes."""

    def __init__(self, group: Group) -> None:
        self.group = group
        self.members = set(group.members)
        reduced = group.reduced
        self.kept_axes = tuple(a for a in range(len(group.shape)) if a not in reduced)
        self.names: dict[Node, str] = {}
        self.inner: dict[str, bool] = {}
        self.phase: dict[str, int] = {}
        self.dtype: dict[str, np.dtype] = {}
        self.loads: list[Load] = []
        self.load_sources: list[tuple[Node, tuple[Node, ...], bool]] = []
        self.params: list[Param] = []
        self.param_nodes: list[Node] = []
        self.exprs: list[Expr] = []
        self.accumulates: list[Accumulate] = []
        self.functions: list[tuple[str, Any]] = []
        self.checks: list[tuple[Node, Node]] = []
        self.natural = False  # an expression reads a loop index (see KernelSpec.natural)
        # a scatter-add's position in its table, and the index variables it reads
        self.scattered: dict[Node, tuple[str, tuple[str, ...]]] = {}
        self.tables: dict[tuple[str, Node], str] = {}

    def _define(self, node: Node, var: str, inner: bool, phase: int) -> str:
        self.names[node] = var
        self.inner[var], self.phase[var], self.dtype[var] = inner, phase, node.dtype
        return var

    def value(self, arg: Node) -> str:
        """The variable holding ``arg``: a member, a parameter, or a new load."""
        base, _ = base_of(arg)
        if base in self.members:
            return self.names[base]  # the views between are index maps of this domain
        if arg in self.names:
            return self.names[arg]
        if arg.op is Op.SCALAR:
            self.params.append(Param(f"p{len(self.params)}", arg.dtype))
            self.param_nodes.append(arg)
            return self._define(arg, self.params[-1].name, False, 0)
        return self._load(arg)

    def _load(self, arg: Node) -> str:
        g = self.group
        top = arg
        if g.reduced and top.op is Op.EXPAND and top.args[0].shape == g.kept_with_ones:
            top = top.args[0]  # a per-row value broadcast over the row: load it once per row
        if top in self.names:
            return self.names[top]
        inner = bool(g.reduced) and top.shape == g.shape
        k = len(self.loads)
        self.loads.append(
            Load(f"a{k}", f"x{k}", top.dtype, inner, fixed=self._broadcast_positions(top, inner))
        )
        base, chain = base_of(top)
        self.load_sources.append((base, chain, inner))
        var = self._define(top, f"x{k}", inner, 0)
        self.names.setdefault(arg, var)
        return var

    def _broadcast_positions(self, top: Node, inner: bool) -> tuple[int, ...]:
        """The index positions along which the load ``top`` (an expand) repeats one value."""
        if top.op is not Op.EXPAND or (self.group.reduced and not inner):
            return ()
        source = top.args[0].shape
        order = (*self.kept_axes, *self.group.reduced)
        return tuple(k for k, a in enumerate(order) if source[a] == 1 and top.shape[a] != 1)

    def function(self, node: Node) -> str:
        user = user_function(node)
        for name, known in self.functions:
            if known is user:
                return name
        self.functions.append((f"fn{len(self.functions)}", user))
        return self.functions[-1][0]

    def member(self, node: Node) -> None:
        if node.op in REDUCTION or node.op is Op.REDUCE:
            self._reduction(node)
        elif node.op is Op.IOTA:
            self._iota(node)
        elif node.op is Op.GATHER:
            self._gather(node)
        elif node.op is Op.SCATTER_ADD:
            self._scatter(node)
        elif node.op is Op.SCAN:
            self._scan(node)
        else:
            self._elementwise(node)

    def _elementwise(self, node: Node) -> None:
        args = tuple(self.value(a) for a in node.args)
        user = node.op in (Op.MAP, Op.ZIP)
        loop = tuple(a.dtype for a in node.args) if user else node.attrs[0]
        row = ELEMENTWISE.get(node.op)
        if row is not None and row.precondition is not None:
            self.checks.append((node, node.args[row.checked_arg]))
        inner = any(self.inner[a] for a in args)
        target = f"t{len(self.exprs)}"
        fn = self.function(node) if user else None
        self.exprs.append(Expr(target, node.op, args, tuple(a.dtype for a in node.args), loop,
                               node.dtype, inner, fn))  # fmt: skip
        self._define(node, target, inner, max((self.phase[a] for a in args), default=0))

    def loop_index(self, node: Node, axis: int) -> tuple[str, bool]:
        """The loop variable that runs along ``axis`` of ``node`` (a member: on the
        domain S, or per row on K or K1), and whether it is a reduced axis's."""
        g = self.group
        if g.reduced and node.shape == g.kept_with_ones and axis in g.reduced:
            return "0", False  # a row's value: its reduced axes have size 1
        domain_axis = self.kept_axes[axis] if g.reduced and node.shape == g.kept else axis
        if domain_axis in self.kept_axes:
            return f"i{self.kept_axes.index(domain_axis)}", False
        return f"r{g.reduced.index(domain_axis)}", True

    def _iota(self, node: Node) -> None:
        var, inner = self.loop_index(node, node.attrs[0])
        target = f"t{len(self.exprs)}"
        self.exprs.append(Expr(target, Op.IOTA, (), (), (), node.dtype, inner, index=var))
        self.natural = True
        self._define(node, target, inner, 0)

    def _gather(self, node: Node) -> None:
        """``table[e0, e1, ...]``: each ``e`` an index's value (a negative one counted
        from the end) or a loop index; written out here, as the kernel's source shows it."""
        table = self._table(node.args[0])
        values = [self.value(a) for a in node.args[1:]]
        parts, reduced = self._positions(node, node, table, values)
        inner = reduced or any(self.inner[v] for v in values)
        target = f"t{len(self.exprs)}"
        subscript = f"{table}[{', '.join(parts)}]"
        dtypes_in = tuple(self.dtype[v] for v in values)
        self.exprs.append(
            Expr(target, Op.GATHER, tuple(values), dtypes_in, dtypes_in, node.dtype, inner, index=subscript)
        )
        self._define(node, target, inner, max((self.phase[v] for v in values), default=0))

    def _positions(self, node: Node, domain: Node, table: str, values: list[str]) -> tuple[list[str], bool]:
        """A gather's or scatter's position in its table, one expression per table axis:
        an index's value (a negative one counted from the end) or the loop index of an
        axis of ``domain``; and whether one is a reduced axis's. Its indices are checked
        before the kernel runs."""
        parts, reduced = [], False
        for t, (kind, j) in enumerate(node.attrs[0]):
            if kind == "d":
                var, along_row = self.loop_index(domain, j)
                reduced = reduced or along_row
                parts.append(var)
            elif unchecked_index(node.args[1 + j]):
                parts.append(values[j])
            else:
                parts.append(f"({values[j]} + {table}.shape[{t}] if {values[j]} < 0 else {values[j]})")
        self.checks.extend((node, a) for a in dict.fromkeys(node.args[1:]) if not unchecked_index(a))
        self.natural = True
        return parts, reduced

    def _scatter(self, node: Node) -> None:
        """``out0[e0, e1, ...] += value``: the group's one output is the table (see bind)."""
        value = self.value(node.args[0])
        indices = [self.value(a) for a in node.args[1:]]
        parts, _ = self._positions(node, node.args[0], "out0", indices)
        self.scattered[node] = (", ".join(parts), tuple(indices))
        self.names[node] = value

    def _table(self, arg: Node) -> str:
        """The array argument of a gather's table (one per table, however many read it)."""
        key = ("table", arg)
        if key not in self.tables:
            k = len(self.loads)
            self.loads.append(Load(f"a{k}", f"x{k}", arg.dtype, False, ndim=arg.ndim))
            base, chain = base_of(arg)
            self.load_sources.append((base, chain, False))
            self.tables[key] = f"a{k}"
        return self.tables[key]

    def _scan(self, node: Node) -> None:
        """A running fold: an accumulator whose value after each element is stored."""
        value = self.value(node.args[0])
        target = f"acc{len(self.accumulates)}"
        self.accumulates.append(Accumulate(target, node.attrs[0], value, self.dtype[value], node.dtype, 1))
        self._define(node, target, True, 1)

    def _reduction(self, node: Node) -> None:
        value = self.value(node.args[0])
        start = self.value(node.args[1]) if node.op is Op.REDUCE else None
        phase = self.phase[value] + 1
        target = f"acc{len(self.accumulates)}"
        fn = self.function(node) if node.op is Op.REDUCE else None
        self.accumulates.append(
            Accumulate(target, node.op, value, self.dtype[value], node.dtype, phase, start, fn)
        )
        self._define(node, target, False, phase)


# Elementwise kernels over strided arrays of rank <= ELEMENTWISE_RANK run as this rank
# (leading axes of size 1 added, a view of any array), so one kernel serves them all.
ELEMENTWISE_RANK = 3


def padded(spec: KernelSpec) -> KernelSpec:
    """The elementwise ``spec`` at ELEMENTWISE_RANK axes."""
    assert spec.kind == "loop" and spec.n_inner == 0 and spec.n_outer <= ELEMENTWISE_RANK
    domain = f"{ELEMENTWISE_RANK}-d loop over arrays of any strides (fewer axes get leading 1s)"
    lift = ELEMENTWISE_RANK - spec.n_outer
    loads = tuple(replace(ld, fixed=tuple(k + lift for k in ld.fixed)) for ld in spec.loads)
    return replace(
        spec,
        loads=loads,
        name=f"{spec.stem}_{ELEMENTWISE_RANK}d",
        n_outer=ELEMENTWISE_RANK,
        description=(*spec.description[:1], domain),
    )


# How a load of a rows kernel (see :func:`broadcast_rows`) is read: the whole array, one
# row that every row reads (a broadcast along the leading axes), or one value per row
# (a broadcast along the trailing axes).
ROW_VIEWS = {"full": ("i0", "i1"), "row": ("i1",), "col": ("i0",)}


def broadcast_rows(spec: KernelSpec, views: tuple[str, ...]) -> KernelSpec:
    """The elementwise ``spec`` over C-contiguous (rows, columns) arrays, load ``k`` read
    as ``views[k]`` (a key of ROW_VIEWS). A bias add or any broadcast of a contiguous
    array then reads contiguous memory in the inner loop, which LLVM vectorizes, where
    the strided kernel computes a stride-0 address per element."""
    assert spec.kind == "loop" and spec.n_inner == 0 and len(views) == len(spec.loads)
    code = "".join(view[0] for view in views)
    domain = f"rows x columns of C-contiguous arrays; loads read as {', '.join(views)}"
    return replace(
        spec,
        name=f"{spec.stem}_rows_{code}",
        n_outer=2,
        layout=Layout.ROWS,
        load_views=views,
        description=(*spec.description[:1], domain),
    )


def contiguous(spec: KernelSpec, layout: Layout = Layout.C) -> KernelSpec:
    """The same kernel for C- (or Fortran-) contiguous arrays. An elementwise kernel
    over C-contiguous arrays runs over one flat axis, so one kernel serves every rank."""
    if layout is Layout.F:  # a leading-axis reduction of C arrays sees them transposed
        return replace(spec, name=f"{spec.name}_f", layout=Layout.F)
    if spec.kind == "loop" and spec.n_inner == 0:
        domain = "one flat loop over C-contiguous arrays of any rank"
        loads = tuple(replace(ld, fixed=()) for ld in spec.loads)  # contiguous: none is broadcast
        return replace(
            spec,
            name=f"{spec.stem}_flat",
            n_outer=1,
            layout=Layout.C,
            loads=loads,
            description=(*spec.description[:1], domain),
        )
    return replace(spec, name=f"{spec.name}_c", layout=Layout.C)


def in_place(spec: KernelSpec, donors: tuple[int, ...]) -> KernelSpec:
    """The elementwise ``spec`` (its flat or rows variant) with the loads ``donors`` read
    from its one output's array, which the runtime hands over as those loads' buffer:
    each element is read before it is written, in the same iteration. One array
    for both is what lets LLVM vectorize the loop; given as two arguments that overlap,
    it takes the scalar fallback of its overlap check (bench_peers.py's
    ``tanh(x @ w + b)``, a tanh over 1M float32, ran several times slower that way; see
    benchmarks/README.md)."""
    assert spec.kind == "loop" and spec.n_inner == 0 and spec.layout in (Layout.C, Layout.ROWS), (
        "in place: elementwise, flat or rows"
    )
    (store,) = spec.stores
    loads = tuple(replace(ld, array=store.array) if k in donors else ld for k, ld in enumerate(spec.loads))
    suffix = "_".join(map(str, donors))
    return replace(spec, name=f"{spec.name}_in_place{suffix}", loads=loads)


def contiguous_tables(spec: KernelSpec) -> KernelSpec:
    """The same kernel for C-contiguous gather tables: reading a table row at a gathered
    index then vectorizes (emb[tokens].mean(axis=1) ran 4x faster than over tables of any
    strides; measured on this 2-core machine with benchmarks/bench_ops.py)."""
    return replace(spec, name=f"{spec.name}_ct", table_layout="C")


def arrays_read(spec: KernelSpec) -> tuple[Load, ...]:
    """The loads that are arguments of the kernel: all but those of an output's array
    (:func:`in_place`)."""
    written = {st.array for st in spec.stores}
    return tuple(ld for ld in spec.loads if ld.array not in written)


def rows(spec: KernelSpec) -> KernelSpec:
    """A reduction ``spec`` over C-contiguous (rows, row) arrays: the kept axes flattened
    to one axis of rows, the reduced ones to one row axis (the CUDA target's form)."""
    assert spec.kind == "loop" and spec.n_inner > 0
    domain = "rows x one row axis, C-contiguous arrays"
    return replace(
        spec,
        name=f"{spec.stem}_rows",
        n_outer=1,
        n_inner=1,
        layout=Layout.C,
        leading_reduction=False,
        trailing_kept=0,
        description=(*spec.description[:1], domain),
    )


def bind(group: Group, order: Sequence[Node]) -> KernelCall:
    """The spec of ``group``'s kernel and how to call it."""
    if group.matmul:
        return _bind_matmul(group)
    if group.host:
        return _bind_host(group)
    position = {n: i for i, n in enumerate(order)}
    builder = _Builder(group)
    for node in sorted(group.members, key=position.__getitem__):
        builder.member(node)
    stores = []
    for k, root in enumerate(group.roots):
        var = builder.names[root]
        inner = bool(group.reduced) and root.shape == group.shape
        if root in builder.scattered:
            assert group.roots == [root], "a scatter-add's kernel has one output"
            index, reads = builder.scattered[root]
            stores.append(Store("out0", var, builder.dtype[var], root.dtype, False, index, root.ndim, reads))
        else:
            stores.append(Store(f"out{k}", var, builder.dtype[var], root.dtype, inner))
    stem = _kernel_stem(group)
    rank = f"_{len(group.shape)}d" + (f"_r{len(group.reduced)}" if group.reduced else "")
    spec = KernelSpec(
        name=stem + rank,
        stem=stem,
        kind="scan" if group.scan else "scatter" if group.scatter else "loop",
        n_outer=len(builder.kept_axes),
        n_inner=len(group.reduced),
        loads=tuple(builder.loads),
        params=tuple(builder.params),
        exprs=tuple(builder.exprs),
        accumulates=tuple(builder.accumulates),
        stores=tuple(stores),
        user_functions=tuple(builder.functions),
        description=_describe(group),
        leading_reduction=bool(group.reduced and builder.kept_axes)
        and max(group.reduced) < min(builder.kept_axes),
        trailing_kept=_trailing_kept(group.reduced, builder.kept_axes),
        natural=builder.natural,
        apart_axis=_apart_axis(group),
    )
    permutation = (*builder.kept_axes, *group.reduced)
    return KernelCall(
        spec, builder.load_sources, builder.param_nodes, list(group.roots),
        tuple(group.shape[a] for a in permutation), permutation, group.kept, builder.checks,
    )  # fmt: skip


def _apart_axis(group: Group) -> int | None:
    """For a scatter-add's kernel: the last axis of its domain that is a whole axis of the
    table (``("d", a)``): iterations that differ along it write different elements."""
    if not group.scatter:
        return None
    (root,) = group.roots
    whole = [j for kind, j in root.attrs[0] if kind == "d"]
    return max(whole) if whole else None


def _trailing_kept(reduced: tuple[int, ...], kept: tuple[int, ...]) -> int:
    """How many kept axes come after all the reduced ones, when none comes between
    them (see KernelSpec.trailing_kept); 0 otherwise."""
    if not reduced:
        return 0
    after = [a for a in kept if a > min(reduced)]
    return len(after) if all(a > max(reduced) for a in after) else 0


def _bind_matmul(group: Group) -> KernelCall:
    (node,) = group.members
    a, b = node.args
    loads = [Load("a0", "x0", a.dtype, False), Load("a1", "x1", b.dtype, False)]
    stem = f"matmul_{dtypes.short(a.dtype)}_{dtypes.short(b.dtype)}"
    spec = KernelSpec(
        name=f"{stem}_{node.ndim}d", stem=stem, kind="matmul",
        n_outer=node.ndim, n_inner=0, loads=tuple(loads), params=(), exprs=(), accumulates=(),
        stores=(Store("out0", "acc", node.dtype, node.dtype, False),), description=_describe(group),
    )  # fmt: skip
    sources = [(*base_of(arg), False) for arg in (a, b)]
    return KernelCall(spec, sources, [], [node], node.shape, tuple(range(node.ndim)), node.shape)


def _bind_host(group: Group) -> KernelCall:
    """A host step: its arguments' values (through their views) go to the node's NumPy
    function (graph/host.py); the spec only names it and its arrays."""
    (node,) = group.members
    loads = tuple(Load(f"a{k}", f"x{k}", a.dtype, False, ndim=a.ndim) for k, a in enumerate(node.args))
    stem = f"host_{node.attrs[0]}_{dtypes.short(node.dtype)}"
    spec = KernelSpec(
        name=stem, stem=stem, kind="host", n_outer=node.ndim, n_inner=0, loads=loads, params=(),
        exprs=(), accumulates=(), stores=(Store("out0", "", node.dtype, node.dtype, False),),
        description=_describe(group),
    )  # fmt: skip
    sources = [(*base_of(arg), False) for arg in node.args]
    return KernelCall(spec, sources, [], [node], node.shape, tuple(range(node.ndim)), node.shape)


def _kernel_stem(group: Group) -> str:
    ops: list[str] = []
    for m in group.members:
        name = op_name(m)
        if name not in ops:
            ops.append(name)
    shown = "_".join(ops[:4]) + ("_etc" if len(ops) > 4 else "")
    out = "_".join(dtypes.short(r.dtype) for r in group.roots[:2])
    return f"{shown}_{out}"


def _describe(group: Group) -> tuple[str, ...]:
    """Header lines: the fused ops and the domain, by rank (sizes never enter a spec)."""
    ops = ", ".join(op_name(m) for m in group.members)
    verb = "scanning" if group.scan else "reducing"
    domain = f"{len(group.shape)}-d domain" + (
        f", {verb} {len(group.reduced)} axis(es) per row" if group.reduced else ""
    )
    outputs = ", ".join(f"{r.dtype}[{r.ndim}d]" for r in group.roots)
    return (f"fused ops: {ops}", f"{domain}; outputs: {outputs}")
