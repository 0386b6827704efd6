"""CPU code generation: a kernel spec becomes the source of one Numba ``njit`` function.

The source is plain Python a person can read: a header naming the fused ops, one
statement a line, ``prange`` over the outermost parallel axis. Names: ``a0`` arrays,
``p0`` scalar parameters, ``out0`` outputs, ``n0`` / ``m0`` the extents of the kept /
reduced axes, ``i0`` / ``r0`` their indices, ``x0`` loaded values, ``t0`` computed
values, ``acc0`` accumulators.

A loop kernel runs, for each row (kept index): its outer loads and expressions, then
one inner loop per pass over the reduced axes (a pass computes the reductions whose
inputs are ready), then its stores. A full reduction (no kept axes) splits its first
reduced axis into chunks that run in parallel and combines their partial results.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lazyfuse.codegen import cpu_helpers
from lazyfuse.codegen.source import SourceBuilder
from lazyfuse.graph import dtypes
from lazyfuse.graph.build import UserFunction
from lazyfuse.graph.fuse import EXPENSIVE
from lazyfuse.graph.kernels import ROW_VIEWS, Accumulate, Expr, KernelSpec, Layout, Load, arrays_read
from lazyfuse.graph.ops import ARG_REDUCTIONS, ELEMENTWISE, REDUCTION, Op, kind, pick

# Full reductions split their first reduced axis into this many chunks (one task each).
FULL_REDUCTION_CHUNKS = 64
# Row reductions (one reduced axis) fold into this many partial results per row, one
# per lane of a 512-bit vector of float32: bench_fusion.py's softmax rows ran several
# times faster than with one partial result per row (see benchmarks/README.md).
LANES = 16
# Passes with an arg reduction fold blocks of this many elements of the last reduced axis
# into their best value (a max LLVM vectorizes), keep the first block holding the best,
# then find its first position in that block (a vectorized min over the positions). With
# a best value and its index in each of 32 lanes, argmax over (4000, 2500) float32 rows
# took 2.0 ms against NumPy's 1.2-1.6; with blocks of 256, 1024 and 2048, 0.91, 0.87 and
# 2.1 ms; over (8192, 100) rows 0.99 ms with lanes, 0.41-0.44 with blocks (NumPy's 0.36).
# (Hand-written Numba loops of these shapes, 2 threads, on the 2-core AVX-512 VM.)
ARG_BLOCK = 1024
# The extreme's fold in those blocks when math is "fast": LLVM's maximum and minimum
# (NaN wins, as in NumPy's max) as Numba intrinsics (lazyfuse.runtime.fastmath), which
# the loop vectorizer folds in vectors; Python's comparisons in a select it leaves scalar.
EXTREME_FOLDS = {Op.MAX: "llvm_maximum", Op.MIN: "llvm_minimum"}
# Matmul tasks own blocks of up to this many output rows (fewer for small matrices).
MATMUL_ROW_BLOCK = 32
# Leading-axis reductions split their rows into this many chunks, each with its own
# partial results per column (chunks x kept cells of extra memory).
COLUMN_CHUNKS = 16
# Row reductions run this many chunks of rows as parallel tasks; each task allocates its
# scratch arrays (lanes, row buffers) once, not once per row inside the parallel loop:
# bench_ops.py's var over (4000, 2500) float32 went from 2.2 to 3.8 times NumPy's speed,
# einsum ij,ij->i from 0.67 to 1.30 (benchmarks/README.md).
ROW_CHUNKS = 64


@dataclass(frozen=True)
class Options:
    """Code generation options; part of the compiled kernel's identity."""

    parallel: bool = True
    math: str = "fast"  # "fast": lazyfuse.runtime.fastmath; "libm": the C library's


# The ops whose float versions call lazyfuse.runtime.fastmath when ``math == "fast"``
# (its functions are within 1.2 ulp; see its docstring): each row's ``fast`` template.
FAST_MATH = {op: row.fast for op, row in ELEMENTWISE.items() if row.fast is not None}
# the fastmath functions those templates call (``exp_f64(``), which a kernel file imports
_FAST_NAMES = sorted(
    {name for template in FAST_MATH.values() for name in re.findall(r"(\w+)_\{K\}\(", template)}
    | set(EXTREME_FOLDS.values())
)
_FAST_MATH_CALL = re.compile(rf"\b((?:{'|'.join(_FAST_NAMES)})_f(?:32|64))\(")


@functools.cache
def _fastmath_version() -> str:
    """A hash of the fastmath modules: in the kernel's source, so in its file name, so a
    kernel compiled against another version of it is never loaded from the disk cache.
    Note: read as a file, not imported (codegen does not import the runtime)."""
    runtime = Path(__file__).parents[1] / "runtime"
    made = b"".join((runtime / name).read_bytes() for name in ("fastmath.py", "fastmath_rows.py"))
    return hashlib.sha256(made).hexdigest()[:12]


def numpy_type(dtype: np.dtype) -> str:
    return "np.bool_" if dtype == np.bool_ else f"np.{dtype.name}"


def cast(value: str, source: np.dtype, target: np.dtype) -> str:
    if source == target:
        return value
    if target == np.bool_:
        return f"({value} != 0)"
    return f"{numpy_type(target)}({value})"


def header(spec: KernelSpec, target: str, binding: str) -> list[str]:
    """A kernel file's first comment lines: its name and target, what it fused, and the
    user functions the runtime binds (``binding`` says how)."""
    lines = [f"# lazyfuse kernel {spec.name} (target: {target})", *[f"# {line}" for line in spec.description]]
    if spec.user_functions:
        bound = ", ".join(f"{n} = {f.name} ({f.where}{_keyed(f)})" for n, f in spec.user_functions)
        lines.append(f"# user functions, {binding}: {bound}")
    return lines


def _keyed(user: UserFunction) -> str:
    # Note: the key is in the source, so the file's name changes with the user function's
    # machine code and Numba's disk cache never serves a kernel built against another.
    return f", key {user.key[:16]}" if user.key else ""


def generate(spec: KernelSpec, options: Options = Options()) -> str:
    """The complete source file of ``spec``'s kernel."""
    body = SourceBuilder()
    if spec.kind == "matmul":
        _matmul(spec, body, options)
    else:
        _LoopKernel(spec, body, options).emit()
    kernel = body.text()
    out = SourceBuilder()
    target = f"cpu, {'parallel' if options.parallel else 'serial'}"
    out.lines(header(spec, target, "bound by the runtime before the first call"))
    out.lines(["import numpy as np", "from numba import njit, prange", ""])
    fast = sorted(set(_FAST_MATH_CALL.findall(kernel)))
    if fast:
        # Note: the fastmath module's hash is in the source, so the file name changes with it
        # and Numba's disk cache never serves a kernel built against an older version.
        # Note: a reduction's loops (lanes, chunks, column partials) vectorize reliably only
        # around math Numba inlined (see fastmath.inlined_by_numba); elementwise loops either way
        module = "fastmath_rows" if spec.n_inner else "fastmath"
        out.line(f"# math: lazyfuse.runtime.{module}, vectorizable (version {_fastmath_version()})")
        out.lines([f"from lazyfuse.runtime.{module} import {', '.join(fast)}", ""])
    for helper in cpu_helpers.sources_used(kernel):
        out.lines([*helper.strip("\n").split("\n"), "", ""])
    return out.text() + "\n" + kernel


def _signature(spec: KernelSpec, parallel: bool) -> str:
    args = (
        [ld.array for ld in arrays_read(spec)]
        + [p.name for p in spec.params]
        + [s.array for s in spec.stores]
    )
    args += [f"n{d}" for d in range(spec.n_outer)] + [f"m{d}" for d in range(spec.n_inner)]
    if spec.kind == "matmul":
        args = [ld.array for ld in spec.loads] + ["out0"]
    # Note: nogil, so that threads computing at once (a Dask threaded scheduler's chunk
    # tasks, a user's threads) run their kernels at once, not one at a time under the GIL
    decorator = f'@njit(parallel={parallel}, nogil=True, error_model="numpy", cache={spec.cacheable})'
    return f"{decorator}\ndef {spec.name}({', '.join(args)}):"


def expression(e: Expr, math: str = "fast") -> str:
    """The scalar source of one expression, operands cast to the op's loop dtypes."""
    if e.op is Op.IOTA:
        return f"np.int64({e.index})"
    if e.op is Op.GATHER:
        return e.index  # type: ignore[return-value]
    args = [cast(a, s, t) for a, s, t in zip(e.args, e.arg_dtypes, e.loop, strict=True)]
    if e.op in (Op.MAP, Op.ZIP):
        return f"{e.fn}({', '.join(args)})"
    picked = e.dtype if e.op is Op.CAST else e.loop[-1]
    if math == "fast" and e.op in FAST_MATH and kind(e.loop[-1]) == "f":
        template = FAST_MATH[e.op]
    else:
        template = pick(ELEMENTWISE[e.op].cpu, picked)
    text = template.format(*args, T=numpy_type(e.dtype), K=_suffix(e.loop[-1]))
    if e.op is Op.CAST or e.dtype not in (np.dtype(np.int32), np.dtype(np.float32)):
        return text
    return f"{numpy_type(e.dtype)}({text})"  # Note: Numba widens int32 and may widen float32


def _suffix(dtype: np.dtype) -> str:
    return "i" if kind(dtype) == "i" else dtypes.short(dtype) if kind(dtype) == "f" else "b"


def identity(op: Op, dtype: np.dtype) -> str:
    template = pick(REDUCTION[op].identity, dtype)
    info = np.iinfo(dtype) if dtype.kind == "i" else None
    return template.format(
        T=numpy_type(dtype), LOWEST=info.min if info else "", HIGHEST=info.max if info else ""
    )


def element(acc: Accumulate) -> str:
    """The value folded into ``acc``: cast to the accumulator's dtype for a built-in
    reduction; a user fold (lf.reduce) gets the element as it is, as the reference
    interpreter does (its accumulator's dtype is what Numba infers for ``fn(start, x)``)."""
    if acc.op is Op.REDUCE:
        return acc.value
    return cast(acc.value, acc.value_dtype, acc.dtype)


def combine(acc: Accumulate, left: str, right: str) -> str:
    if acc.op is Op.REDUCE:
        return f"{acc.fn}({left}, {right})"
    return pick(REDUCTION[acc.op].combine, acc.dtype).format(acc=left, x=right)


def best_of(slot: str) -> str:
    """An arg reduction's best value, kept beside its index ``slot``: ``acc0`` ->
    ``acc0_best``, ``lanes_acc0[k]`` -> ``lanes_acc0_best[k]``."""
    name, bracket, rest = slot.partition("[")
    return f"{name}_best{bracket}{rest}"


def arg_better(acc: Accumulate, value: str, best: str) -> str:
    """Whether ``value`` beats ``best`` in an arg reduction: strictly (the first of equal
    ones stays), and a NaN beats anything but a NaN (the first NaN wins)."""
    better = f"({value} {REDUCTION[acc.op].better} {best})"
    if acc.value_dtype.kind != "f":
        return better
    return f"{better} | (({value} != {value}) & ({best} == {best}))"


def arg_takes(acc: Accumulate, part: str, slot: str) -> str:
    """Whether the partial result ``part`` (an index and its best value) replaces
    ``slot``: it found something (index >= 0) and beats it, or ties it at a smaller index."""
    tie = f"({best_of(part)} == {best_of(slot)})"
    if acc.value_dtype.kind == "f":
        tie = f"({tie} | (({best_of(part)} != {best_of(part)}) & ({best_of(slot)} != {best_of(slot)})))"
    beats = arg_better(acc, best_of(part), best_of(slot))
    return f"({part} >= 0) & (({slot} < 0) | {beats} | ({tie} & ({part} < {slot})))"


class ScalarCode:
    """What every target's kernel emitter shares: the spec's loads and expressions, the
    values emitted so far in the current scope, and the hoisting of per-row values
    (those that do not depend on the reduced axes) out of the loops over a row."""

    loads: dict[str, Load]
    exprs: dict[str, Expr]
    emitted: set[str]

    def _compute(self, var: str, inner: bool) -> None:
        raise NotImplementedError

    def is_inner(self, var: str) -> bool:
        """Whether ``var`` changes along the reduced axes (a per-element value)."""
        if var in self.loads:
            return self.loads[var].inner
        return var in self.exprs and self.exprs[var].inner

    def outer_dependencies(self, var: str) -> None:
        """Emit, at row level, every per-row value ``var`` needs (hoisted out of loops)."""
        if var in self.emitted:
            return
        if not self.is_inner(var):
            self._compute(var, inner=False)
            return
        if var in self.exprs:
            for arg in self.exprs[var].args:
                self.outer_dependencies(arg)


class _LoopKernel(ScalarCode):
    """Emits a loop kernel: outer loops, passes over the reduced axes, stores."""

    def __init__(self, spec: KernelSpec, body: SourceBuilder, options: Options) -> None:
        self.spec, self.body = spec, body
        self.outer = [f"i{d}" for d in range(spec.n_outer)]
        self.inner = [f"r{d}" for d in range(spec.n_inner)]
        self.parallel = options.parallel and (spec.n_outer > 0 or spec.n_inner > 0)
        self.math = options.math
        self.loads = {ld.var: ld for ld in spec.loads}
        self.views = dict(zip([ld.var for ld in spec.loads], spec.load_views, strict=False))
        self.exprs = {e.target: e for e in spec.exprs}
        # parameters are arguments; accumulators are defined by their pass
        self.given = {p.name for p in spec.params} | {a.target for a in spec.accumulates}
        self.emitted: set[str] = set()
        self.scratch: list[str] | None = None  # allocations of the current chunk of rows
        self.buffered: set[str] = set()  # kept in a row buffer (see _plan_row_buffers)
        self.in_buffer: set[str] = set()  # already written to their row buffer
        # loop variables that loads index with an unsigned copy (see _fold_lanes)
        self.unsigned: dict[str, str] = {}

    def emit(self) -> None:
        self.body.lines(_signature(self.spec, self.parallel).split("\n"))
        if self._by_columns():
            with self.body.indent():
                self._columns()
            return
        if self._by_trailing_columns():
            with self.body.indent():
                self._trailing_columns()
            return
        if self.spec.kind == "scan":
            with self.body.indent():
                self._scan()
            return
        if self.spec.kind == "scatter":
            with self.body.indent():
                self._scatter()
            return
        if self.spec.n_inner and self.outer:
            with self.body.indent(), self._rows_in_chunks(len(self.outer)):
                self._row()
            return
        with self.body.indent(), ExitStack() as loops:
            rest = self.outer
            # one parallel loop over the first two axes: more tasks (a rows kernel keeps its
            # inner loop over contiguous columns)
            if len(self.outer) >= 2 and self.spec.layout is not Layout.ROWS:
                loops.enter_context(self._loop("q", "n0 * n1", parallel=True))
                self.body.lines(["i0 = q // n1", "i1 = q % n1"])
                rest = self.outer[2:]
            for d, var in enumerate(rest, start=len(self.outer) - len(rest)):
                loops.enter_context(self._loop(var, f"n{d}", parallel=d == 0))
            self._row()

    @contextmanager
    def _rows_in_chunks(self, count: int) -> Iterator[None]:
        """Loops over the first ``count`` kept axes as chunks of rows run in parallel:
        inside, one row's scope; :meth:`_scratch` arrays are allocated once per chunk.
        With no kept axes there is one row: no loops."""
        if not count:
            yield
            return
        body = self.body
        first = self.outer[:2] if count >= 2 else self.outer[:1]
        rows = " * ".join(f"n{d}" for d in range(len(first)))
        body.lines([f"rows = {rows}", f"chunks = min(rows, {ROW_CHUNKS})"])
        with self._loop("c", "chunks", parallel=True), ExitStack() as loops:
            mark, self.scratch = body.mark(), []
            loops.enter_context(body.indent("for q in range(c * rows // chunks, (c + 1) * rows // chunks):"))
            body.lines(["i0 = q // n1", "i1 = q % n1"] if len(first) == 2 else ["i0 = q"])
            for d, var in enumerate(self.outer[len(first) : count], start=len(first)):
                loops.enter_context(self._loop(var, f"n{d}", parallel=False))
            yield
        body.insert(mark, self.scratch)
        self.scratch = None

    def _scratch(self, name: str, size: str, dtype: str) -> None:
        """An array ``name`` of ``size`` elements that one row uses and the next reuses:
        allocated once per chunk of rows when rows run in chunks, else here."""
        line = f"{name} = np.empty({size}, dtype={dtype})"
        if self.scratch is None:
            self.body.line(line)
        else:
            self.scratch.append(line)

    def _by_columns(self) -> bool:
        """A leading-axis reduction (one pass, built-in ops; per-element outputs that do
        not need the reductions) runs chunks of rows in parallel over contiguous columns,
        then combines the chunks: its parallel variant, and its serial variant for arrays
        laid out so (Layout.F: C arrays seen transposed)."""
        spec = self.spec
        targets = {a.target for a in spec.accumulates}
        return (
            spec.leading_reduction
            and (self.parallel or spec.layout is Layout.F)
            and len({a.phase for a in spec.accumulates}) == 1
            and all(a.op is not Op.REDUCE for a in spec.accumulates)
            and not any(self._needs(s.value, targets) for s in spec.stores if s.inner)
        )

    def _needs(self, var: str, targets: set[str]) -> bool:
        """Whether ``var`` is computed from any of ``targets``."""
        if var in targets:
            return True
        return var in self.exprs and any(self._needs(a, targets) for a in self.exprs[var].args)

    def _scan(self) -> None:
        """A scan (cumsum, cumprod): each row (kept index) folds its values along the
        scanned axis, storing the running value after each. A single row (no kept axes)
        runs in parallel chunks: each chunk's total, the running totals as carries, then
        each chunk again from its carry (its values computed twice)."""
        body, spec = self.body, self.spec
        (acc,) = spec.accumulates
        if not self.outer and self.parallel:
            self._chunked_scan(acc)
            return
        with self._rows_in_chunks(len(self.outer)):
            body.line(f"{acc.target} = {self._start(acc)}")
            with self._inner_loops(parallel=False), self._scope():
                self._scan_step(acc)

    def _chunked_scan(self, acc: Accumulate) -> None:
        body = self.body
        dtype = numpy_type(acc.dtype)
        first = ("c * m0 // chunks", "(c + 1) * m0 // chunks")
        body.line(f"chunks = min(m0, {FULL_REDUCTION_CHUNKS})")
        body.line(f"totals = np.empty(chunks, dtype={dtype})")
        with body.indent("for c in prange(chunks):"), self._scope():
            body.line(f"{acc.target} = {self._start(acc)}")
            with self._inner_loops(parallel=False, first=first), self._scope():
                self._fold([acc])
            body.line(f"totals[c] = {acc.target}")
        body.lines([f"carry = np.empty(chunks, dtype={dtype})", f"{acc.target} = {self._start(acc)}"])
        with body.indent("for c in range(chunks):"):
            body.line(f"carry[c] = {acc.target}")
            body.line(f"{acc.target} = {combine(acc, acc.target, 'totals[c]')}")
        with body.indent("for c in prange(chunks):"), self._scope():
            body.line(f"{acc.target} = carry[c]")
            with self._inner_loops(parallel=False, first=first), self._scope():
                self._scan_step(acc)

    def _scan_step(self, acc: Accumulate) -> None:
        """Fold one element into ``acc`` and store the running value."""
        (store,) = self.spec.stores
        self._fold([acc])
        index = _index(self.outer + self.inner)
        self.body.line(f"{store.array}[{index}] = {cast(acc.target, acc.dtype, store.dtype)}")

    def _scatter(self) -> None:
        """A scatter-add: the table zeroed, then each element of the domain adds its value
        at its position in the table. Indices may repeat, so the loops run on one thread,
        except along an axis the table runs along whole (``spec.apart_axis``: a row's
        columns), whose chunks run in parallel: no two threads write one element, and each
        element adds its values in the same order as on one thread."""
        body, spec = self.body, self.spec
        for store in spec.stores:
            body.line(f"{store.array}[...] = 0")
        apart = spec.apart_axis if self.parallel else None
        with ExitStack() as loops:
            if apart is not None:
                body.line(f"chunks = min(n{apart}, {COLUMN_CHUNKS})")
                loops.enter_context(body.indent("for c in prange(chunks):"))
            for d, var in enumerate(self.outer):
                if d == apart:
                    chunk = f"c * n{d} // chunks, (c + 1) * n{d} // chunks"
                    loops.enter_context(body.indent(f"for {var} in range({chunk}):"))
                else:
                    loops.enter_context(self._loop(var, f"n{d}", parallel=False))
            self._row()

    def _by_trailing_columns(self) -> bool:
        """A reduction over middle axes (kept axes before and after them; one pass,
        built-in ops, per-row outputs only) runs the leading kept axes in parallel and,
        inside, the reduced axes around a loop over the trailing kept ones, which are
        contiguous in C order: ``emb[tokens].mean(axis=1)`` adds whole table rows."""
        spec = self.spec
        return (
            0 < spec.trailing_kept < spec.n_outer
            and len({a.phase for a in spec.accumulates}) == 1
            and all(a.op is not Op.REDUCE for a in spec.accumulates)
            and not any(s.inner for s in spec.stores)
        )

    def _trailing_columns(self) -> None:
        spec = self.spec
        lead = len(self.outer) - spec.trailing_kept
        trail = self.outer[lead:]
        extents = ", ".join(f"n{d}" for d in range(lead, len(self.outer)))
        row = {a.target: f"cols_{a.target}" for a in spec.accumulates}
        cell = _index(trail)
        slots = {a.target: f"{row[a.target]}[{cell}]" for a in spec.accumulates}
        with self._rows_in_chunks(lead):
            for acc in spec.accumulates:
                self._partials(acc, row[acc.target], f"({extents},)", scratch=True)
            with self._trailing_loops(lead):
                for acc in spec.accumulates:
                    self._init(acc, slots[acc.target])
            with self._inner_loops(parallel=False), self._trailing_loops(lead), self._scope():
                self._fold(list(spec.accumulates), slots)
            with self._trailing_loops(lead), self._scope():
                for acc in spec.accumulates:
                    self._copy(acc, acc.target, slots[acc.target])
                self._finish(list(spec.accumulates))
                self.emitted.update(a.target for a in spec.accumulates)
                self._row_stores()

    @contextmanager
    def _trailing_loops(self, lead: int) -> Iterator[None]:
        with ExitStack() as loops:
            for d, var in enumerate(self.outer[lead:], start=lead):
                loops.enter_context(self._loop(var, f"n{d}", parallel=False))
            yield

    def _columns(self) -> None:
        body, spec = self.body, self.spec
        extents = ", ".join(f"n{d}" for d in range(spec.n_outer))
        partial = {a.target: f"partial_{a.target}" for a in spec.accumulates}
        body.line(f"chunks = min(m0, {COLUMN_CHUNKS if self.parallel else 1})")
        for acc in spec.accumulates:
            self._partials(acc, partial[acc.target], f"(chunks, {extents})", scratch=False)
        cell = _index(["c", *self.outer])
        slots = {a.target: f"{partial[a.target]}[{cell}]" for a in spec.accumulates}
        with self._loop("c", "chunks", parallel=True), self._scope():
            with ExitStack() as loops:
                for d, var in enumerate(self.outer):
                    loops.enter_context(self._loop(var, f"n{d}", parallel=False))
                for acc in spec.accumulates:
                    self._init(acc, slots[acc.target])
            first = ("c * m0 // chunks", "(c + 1) * m0 // chunks")
            with self._inner_loops(parallel=False, first=first), ExitStack() as loops:
                for d, var in enumerate(self.outer):
                    loops.enter_context(self._loop(var, f"n{d}", parallel=False))
                self._fold(list(spec.accumulates), slots)
                self._element_stores()  # each chunk's own rows: no two threads write one element
        with ExitStack() as loops:
            for d, var in enumerate(self.outer):
                loops.enter_context(self._loop(var, f"n{d}", parallel=d == 0))
            for acc in spec.accumulates:
                self._init(acc, acc.target)
            with body.indent("for c in range(chunks):"):
                for acc in spec.accumulates:
                    self._take(acc, acc.target, slots[acc.target])
            self._finish(list(spec.accumulates))
            self.emitted.update(a.target for a in spec.accumulates)
            self._row_stores(elements=False)

    def _loop(self, var: str, extent: str, parallel: bool) -> AbstractContextManager[None]:
        keyword = "prange" if parallel and self.parallel else "range"
        return self.body.indent(f"for {var} in {keyword}({extent}):")

    def _row(self) -> None:
        phases = sorted({a.phase for a in self.spec.accumulates})
        passes = [[a for a in self.spec.accumulates if a.phase == p] for p in phases]
        self._plan_row_buffers(passes)
        for accumulates in passes:
            self._pass(accumulates)
        self._row_stores()

    def _plan_row_buffers(self, passes: list[list[Accumulate]]) -> None:
        """Expensive per-element values that several loops over one row need are kept
        in a row buffer by the first loop and read back by the others (a round trip
        through cache instead of recomputing an exp). Rows with one reduced axis only."""
        if self.spec.n_inner != 1 or not self.outer:
            return
        loops = [[a.value for a in accs] for accs in passes] + [
            [s.value for s in self.spec.stores if s.inner]
        ]
        seen: dict[str, int] = {}
        for values in loops:
            for var in set().union(*(self._inner_closure(v) for v in values)):
                seen[var] = seen.get(var, 0) + 1
        self.buffered = {v for v, n in seen.items() if n > 1 and self.exprs[v].op in EXPENSIVE}
        for var in sorted(self.buffered):
            self._scratch(f"row_{var}", "m0", numpy_type(self.exprs[var].dtype))

    def _inner_closure(self, var: str) -> set[str]:
        """The per-element expressions ``var`` needs (itself included)."""
        if var not in self.exprs or not self.exprs[var].inner:
            return set()
        return {var}.union(*(self._inner_closure(a) for a in self.exprs[var].args))

    def _row_stores(self, elements: bool = True) -> None:
        """The per-row stores, then (``elements``) a loop over the row's elements for the
        per-element ones."""
        for store in (s for s in self.spec.stores if not s.inner):
            self._compute(store.value, inner=False)
            value = cast(store.value, store.value_dtype, store.dtype)
            if store.index is not None:  # a scatter-add's
                for var in store.index_args:
                    self._compute(var, inner=False)
                self.body.line(f"{store.array}[{store.index}] += {value}")
            else:
                self.body.line(f"{store.array}[{_index(self.outer)}] = {value}")
        if elements and any(s.inner for s in self.spec.stores):
            for s in self.spec.stores:
                if s.inner:
                    self.outer_dependencies(s.value)
            with self._inner_loops(parallel=not self.outer), self._scope():
                self._element_stores()

    def _element_stores(self) -> None:
        """The per-element stores of the current element."""
        for s in (s for s in self.spec.stores if s.inner):
            self._compute(s.value, inner=True)
            index = _index(self.outer + self.inner)
            self.body.line(f"{s.array}[{index}] = {cast(s.value, s.value_dtype, s.dtype)}")

    def _pass(self, accumulates: list[Accumulate]) -> None:
        """One loop over the reduced axes that folds ``accumulates``."""
        for acc in accumulates:
            self.outer_dependencies(acc.value)
        built_in = all(a.op is not Op.REDUCE for a in accumulates)
        chunked = not self.outer and self.parallel and built_in
        if chunked:
            self._chunked_pass(accumulates)
        elif built_in and self.spec.n_inner == 1:
            blocks = any(a.op in ARG_REDUCTIONS for a in accumulates) or self._extremes_only(accumulates)
            written = self._block_pass(accumulates) if blocks else self._lanes_pass(accumulates)
        else:
            for acc in accumulates:
                self._init(acc, acc.target)
            with self._inner_loops(parallel=False), self._scope():
                self._fold(accumulates)
                written = self.buffered & self.emitted - self.in_buffer
        self._finish(accumulates)
        self.in_buffer |= written if not chunked else set()
        self.emitted.update(a.target for a in accumulates)

    def _lanes_pass(self, accumulates: list[Accumulate]) -> set[str]:
        """One loop over the (one) reduced axis that folds into LANES partial results,
        combined after it: independent lanes let LLVM vectorize the loop (a single
        floating-point accumulator is a serial chain it may not reorder). Returns the
        values it wrote to row buffers."""
        body, count, (last,) = self.body, LANES, self.inner
        lanes = {acc.target: f"lanes_{acc.target}" for acc in accumulates}
        for acc in accumulates:
            self._partials(acc, lanes[acc.target], str(count), scratch=True)
            with body.indent(f"for k in range({count}):"):
                self._init(acc, f"{lanes[acc.target]}[k]")
        body.line(f"m_lanes = m0 - m0 % {count}")
        slots = {t: f"{name}[k]" for t, name in lanes.items()}
        with (
            body.indent(f"for r_lanes in range(0, m_lanes, {count}):"),
            body.indent(f"for k in range({count}):"),
            self._scope(),
        ):
            body.line(f"{last} = r_lanes + k")
            self._fold(accumulates, slots)
            written = self.buffered & self.emitted - self.in_buffer
        with body.indent(f"for {last} in range(m_lanes, m0):"), self._scope():
            self._fold(accumulates, {t: f"{name}[0]" for t, name in lanes.items()})
        # Note: the lanes combine one by one. As a tree of halves (each step a loop LLVM
        # vectorizes) softmax over 65536 rows of 10 float32 ran 4.0 -> 3.6 ms, but row
        # kernels took longer to compile (timed per kernel from an empty cache).
        for acc in accumulates:
            self._copy(acc, acc.target, f"{lanes[acc.target]}[0]")
        with body.indent(f"for k in range(1, {count}):"):
            for acc in accumulates:
                self._take(acc, acc.target, f"{lanes[acc.target]}[k]")
        return written

    def _block_pass(self, accumulates: list[Accumulate], first: tuple[str, str] | None = None) -> set[str]:
        """What a pass with arg reductions, or of float max and min only (then no
        blocks), runs instead of :meth:`_lanes_pass`: the last reduced axis in blocks of
        ARG_BLOCK, each folded
        into its best value (``block_acc0``); an arg reduction keeps the first block whose
        best beats the best so far (its position in ``acc0``), then :meth:`_search` finds
        the best in that block. Other reductions of the pass fold element by element.
        ``first``: the bounds of the first reduced axis (a chunk of it), else all of it."""
        body = self.body
        args = [acc for acc in accumulates if acc.op in ARG_REDUCTIONS]
        for acc in accumulates:
            self._init(acc, acc.target)
        bounds = [("0", f"m{d}") for d in range(len(self.inner))]
        if first is not None:
            bounds[0] = first
        last, (low, high) = self.inner[-1], bounds[-1]
        with ExitStack() as loops:
            for var, (outer_low, outer_high) in zip(self.inner[:-1], bounds, strict=False):
                loops.enter_context(body.indent(f"for {var} in range({outer_low}, {outer_high}):"))
                loops.enter_context(self._scope())
            if args:  # else one block: the whole axis
                loops.enter_context(body.indent(f"for b_{last} in range({low}, {high}, {ARG_BLOCK}):"))
                low, high = f"b_{last}", f"min(b_{last} + {ARG_BLOCK}, {high})"
            for acc in args:
                body.line(f"block_{acc.target} = {identity(self._extreme_of(acc), acc.value_dtype)}")
            with body.indent(f"for {last} in range({low}, {high}):"), self._scope():
                self._fold_unsigned(accumulates, unsigned=low != "0", blocks=True)
                written = self.buffered & self.emitted - self.in_buffer
            for acc in args:
                take, best = f"take_{acc.target}", best_of(acc.target)
                body.line(f"{take} = ({acc.target} < 0) | {arg_better(acc, f'block_{acc.target}', best)}")
                body.line(f"{best} = block_{acc.target} if {take} else {best}")
                body.line(f"{acc.target} = {self._position(f'b_{last}')} if {take} else {acc.target}")
        for acc in args:
            self._search(acc, bounds[-1][1])
        return written

    def _search(self, acc: Accumulate, high: str) -> None:
        """Replace the position of the block ``acc`` kept (if any) with that of the first
        element in it equal to its best value (or NaN where the best is NaN)."""
        body, best, last = self.body, best_of(acc.target), self.inner[-1]
        position = f"max({acc.target}, np.int64(0))"
        for d in range(len(self.inner) - 1, 0, -1):  # the block's indices from its position
            body.line(f"{self.inner[d]} = {position} % m{d}")
            position = f"{position} // m{d}"
        body.line(f"{self.inner[0]} = {position}")
        body.line(f"found_{acc.target} = {high}")
        with body.indent(f"for {last} in range({last}, min({last} + {ARG_BLOCK}, {high})):"), self._scope():
            body.line(f"u_{last} = np.uint64({last})")
            self.unsigned = {last: f"u_{last}"}
            self._compute(acc.value, inner=True)
            self.unsigned = {}
            hit = f"({acc.value} == {best})"
            if acc.value_dtype.kind == "f":
                hit = f"{hit} | (({acc.value} != {acc.value}) & ({best} != {best}))"
            body.line(f"found_{acc.target} = min(found_{acc.target}, {last} if {hit} else {high})")
        body.line(f"{last} = found_{acc.target}")
        body.line(f"{acc.target} = {self._position()} if {acc.target} >= 0 else {acc.target}")

    def _extreme_of(self, acc: Accumulate) -> Op:
        return REDUCTION[acc.op].extreme  # type: ignore[return-value]

    def _fold_unsigned(self, accumulates: list[Accumulate], unsigned: bool, blocks: bool = False) -> None:
        """:meth:`_fold` in a loop over blocks or chunks. ``unsigned``: the loop starts
        where LLVM cannot prove the index >= 0, so every load would check for a negative index,
        which stops vectorization: loads take an unsigned copy (1-D argmax over 1e7
        float32: 9.3 -> 1.5 ms in a hand-written Numba loop of this shape)."""
        last = self.inner[-1]
        if unsigned:
            self.body.line(f"u_{last} = np.uint64({last})")
            self.unsigned = {last: f"u_{last}"}
        self._fold(accumulates, None, blocks)
        self.unsigned = {}

    def _chunked_pass(self, accumulates: list[Accumulate]) -> None:
        """A reduction over every axis: chunks of the first reduced axis in parallel,
        then their partial results combined. An arg reduction's chunks fold in blocks;
        the others' in one accumulator (in lanes a 1-D sum of 1e7 float32 ran in 0.94 ms
        instead of 4.6, but each such kernel took 0.25 s longer to compile serial, 0.55 s
        parallel, timed per kernel from an empty cache, and CI grew by minutes)."""
        body = self.body
        partial = {acc.target: f"partial_{acc.target}" for acc in accumulates}
        body.line(f"chunks = min(m0, {FULL_REDUCTION_CHUNKS})")
        for acc in accumulates:
            self._partials(acc, partial[acc.target], "chunks", scratch=False)
        first = ("c * m0 // chunks", "(c + 1) * m0 // chunks")
        with body.indent("for c in prange(chunks):"), self._scope():
            if any(a.op in ARG_REDUCTIONS for a in accumulates):
                self._block_pass(accumulates, first)
            else:
                for acc in accumulates:
                    self._init(acc, acc.target)
                with self._inner_loops(parallel=False, first=first):
                    self._fold_unsigned(accumulates, unsigned=len(self.inner) == 1)
            for acc in accumulates:
                self._copy(acc, f"{partial[acc.target]}[c]", acc.target)
        for acc in accumulates:
            self._init(acc, acc.target)
        with body.indent("for c in range(chunks):"):
            for acc in accumulates:
                self._take(acc, acc.target, f"{partial[acc.target]}[c]")

    def _fold(
        self, accumulates: list[Accumulate], into: dict[str, str] | None = None, blocks: bool = False
    ) -> None:
        """Fold each value into its accumulator (or into the slot ``into`` names: lanes).
        In a :meth:`_block_pass` (``blocks``), an arg reduction folds into its block's
        best value. Max and min fold into an accumulator by :meth:`_extreme`, which LLVM
        vectorizes there (the max of 1e7 float32, in chunks: 6.0 -> 1.7 ms, NumPy's 1.8);
        in lanes, by their combine (LLVM's maximum in lanes ran 5 times slower)."""
        for acc in accumulates:
            self._compute(acc.value, inner=True)
            slot = into[acc.target] if into else acc.target
            if blocks and acc.op in ARG_REDUCTIONS:
                block = f"block_{acc.target}"
                self.body.line(
                    f"{block} = {self._extreme(self._extreme_of(acc), acc.value_dtype, block, acc.value)}"
                )
            elif into is None and acc.op in EXTREME_FOLDS:
                self.body.line(f"{slot} = {self._extreme(acc.op, acc.dtype, slot, element(acc))}")
            elif acc.op in ARG_REDUCTIONS:
                better = f"better_{acc.target}"
                self.body.line(f"{better} = {arg_better(acc, acc.value, best_of(slot))}")
                self.body.line(f"{best_of(slot)} = {acc.value} if {better} else {best_of(slot)}")
                self.body.line(f"{slot} = {self._position()} if {better} else {slot}")
            else:
                self.body.line(f"{slot} = {combine(acc, slot, element(acc))}")

    def _extremes_only(self, accumulates: list[Accumulate]) -> bool:
        """Whether every accumulator of a pass is a float max or min folded by LLVM's
        (fast math), which the loop vectorizer folds in vectors by itself: no lanes."""
        return self.math == "fast" and all(a.op in EXTREME_FOLDS and a.dtype.kind == "f" for a in accumulates)

    def _extreme(self, op: Op, dtype: np.dtype, left: str, right: str) -> str:
        """The max (``op``: MAX) or min of two values; of floats, with fast math, LLVM's
        (vectorizable where they fold a scalar accumulator; see EXTREME_FOLDS)."""
        if self.math == "fast" and dtype.kind == "f":
            return f"{EXTREME_FOLDS[op]}_{_suffix(dtype)}({left}, {right})"
        return pick(REDUCTION[op].combine, dtype).format(acc=left, x=right)

    def _position(self, last: str | None = None) -> str:
        """The flat index (C order) of the current element in the reduced axes (with
        ``last`` for the last axis' index where given)."""
        names = [*self.inner[:-1], last or self.inner[-1]]
        position = names[0]
        for d, var in enumerate(names[1:], start=1):
            position = f"({position}) * m{d} + {var}"
        return position

    def _partials(self, acc: Accumulate, name: str, shape: str, scratch: bool) -> None:
        """The array ``name`` of ``acc``'s partial results (and an arg reduction's best
        values beside it); ``scratch``: allocated once per chunk of rows."""
        arrays = [(name, acc.dtype)]
        if acc.op in ARG_REDUCTIONS:
            arrays.append((best_of(name), acc.value_dtype))
        for array, dtype in arrays:
            if scratch:
                self._scratch(array, shape, numpy_type(dtype))
            else:
                self.body.line(f"{array} = np.empty({shape}, dtype={numpy_type(dtype)})")

    def _init(self, acc: Accumulate, slot: str) -> None:
        """Start ``slot``: an arg reduction's index at -1 (nothing better than its
        extreme's identity seen yet) and its best value at that identity."""
        if acc.op in ARG_REDUCTIONS:
            self.body.line(f"{best_of(slot)} = {identity(REDUCTION[acc.op].extreme, acc.value_dtype)}")  # type: ignore[arg-type]
            self.body.line(f"{slot} = np.int64(-1)")
        else:
            self.body.line(f"{slot} = {self._start(acc)}")

    def _copy(self, acc: Accumulate, slot: str, source: str) -> None:
        if acc.op in ARG_REDUCTIONS:
            self.body.line(f"{best_of(slot)} = {best_of(source)}")
        self.body.line(f"{slot} = {source}")

    def _take(self, acc: Accumulate, slot: str, part: str) -> None:
        """Combine the partial result ``part`` into ``slot``."""
        if acc.op not in ARG_REDUCTIONS:
            self.body.line(f"{slot} = {combine(acc, slot, part)}")
            return
        take = f"take_{acc.target}"
        self.body.line(f"{take} = {arg_takes(acc, part, slot)}")
        self.body.line(f"{best_of(slot)} = {best_of(part)} if {take} else {best_of(slot)}")
        self.body.line(f"{slot} = {part} if {take} else {slot}")

    def _finish(self, accumulates: list[Accumulate]) -> None:
        """An arg reduction that found nothing better than its start saw only that
        value (-inf for argmax, the lowest integer, False): its first element wins."""
        for acc in accumulates:
            if acc.op in ARG_REDUCTIONS:
                self.body.line(f"{acc.target} = max({acc.target}, np.int64(0))")

    def _start(self, acc: Accumulate) -> str:
        return acc.start if acc.start is not None else identity(acc.op, acc.dtype)

    @contextmanager
    def _inner_loops(self, parallel: bool, first: tuple[str, str] | None = None) -> Iterator[None]:
        with ExitStack() as loops:
            for d, var in enumerate(self.inner):
                if d == 0 and first is not None:
                    loops.enter_context(self.body.indent(f"for {var} in range({first[0]}, {first[1]}):"))
                else:
                    loops.enter_context(self._loop(var, f"m{d}", parallel=parallel and d == 0))
            yield

    @contextmanager
    def _scope(self) -> Iterator[None]:
        """Values computed inside a loop are not visible after it."""
        saved = set(self.emitted)
        try:
            yield
        finally:
            self.emitted = saved

    def _compute(self, var: str, inner: bool) -> None:
        """Emit ``var`` and what it needs, arguments first, each once per scope."""
        if var in self.emitted or var in self.given:
            return
        if var in self.loads:
            index = self.outer + self.inner if self.loads[var].inner else self.outer
            index = ["0" if k in self.loads[var].fixed else v for k, v in enumerate(index)]
            if var in self.views:
                index = list(ROW_VIEWS[self.views[var]])
            index = [self.unsigned.get(v, v) for v in index]
            self.body.line(f"{var} = {self.loads[var].array}[{_index(index)}]")
        elif var in self.in_buffer:
            self.body.line(f"{var} = row_{var}[r0]")
        else:
            expr = self.exprs[var]
            for arg in expr.args:
                self._compute(arg, inner)
            self.body.line(f"{var} = {expression(expr, self.math)}")
            if var in self.buffered:
                self.body.line(f"row_{var}[r0] = {var}")
        self.emitted.add(var)


def _index(names: list[str]) -> str:
    return ", ".join(names) if names else "()"


def _matmul(spec: KernelSpec, body: SourceBuilder, options: Options) -> None:
    """Parallel over (batch, blocks of rows), at least 4 blocks per matrix so both cores
    work at batch 1; the inner loop runs over the output's contiguous axis, one
    multiply-add per iteration, reading b and writing out contiguously, so LLVM
    vectorizes it. Operands are read in place, whatever their strides.
    Note: tiling k and n as well (b's tiles reused from cache by a block's rows) was
    measured several times slower (workload not recorded; bench_matmul.py's int64 case
    times this kernel; see benchmarks/README.md): the tiled inner loop no longer
    vectorizes."""
    body.lines(_signature(spec, options.parallel).split("\n"))
    batch = [f"i{d}" for d in range(spec.n_outer - 2)]
    dt = spec.stores[0].dtype
    a0, a1 = spec.loads
    keyword = "prange" if options.parallel else "range"
    row = _index([*batch, "i", "j"])
    zero = "False" if dt == np.bool_ else identity(Op.SUM, dt)
    with body.indent():
        body.lines(["m = out0.shape[-2]", "n = out0.shape[-1]", "k_size = a0.shape[-1]"])
        body.line(f"row_block = min({MATMUL_ROW_BLOCK}, max(1, m // 4))")
        body.line("blocks = (m + row_block - 1) // row_block")
        body.line("tasks = out0.size // (m * n) * blocks if m * n else 0")
        with body.indent(f"for q in {keyword}(tasks):"):
            body.line("i_start = q % blocks * row_block")
            body.line("i_end = min(i_start + row_block, m)")
            if batch:
                body.line("flat = q // blocks")
            for d in reversed(range(len(batch))):  # unravel the batch index, last axis first
                body.line(f"{batch[d]} = flat % out0.shape[{d}]")
                if d:
                    body.line(f"flat = flat // out0.shape[{d}]")
            with body.indent("for i in range(i_start, i_end):"):
                with body.indent("for j in range(n):"):
                    body.line(f"out0[{row}] = {zero}")
                with body.indent("for k in range(k_size):"):
                    a_ik = "a0[" + _index([*batch, "i", "k"]) + "]"
                    b_kj = "a1[" + _index([*batch, "k", "j"]) + "]"
                    body.line(f"x0 = {cast(a_ik, a0.dtype, dt)}")
                    with body.indent("for j in range(n):"):
                        y = cast(b_kj, a1.dtype, dt)
                        update = (
                            f"out0[{row}] or (x0 and {y})" if dt == np.bool_ else f"out0[{row}] + x0 * {y}"
                        )
                        body.line(f"out0[{row}] = {update}")
