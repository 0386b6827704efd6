"""CUDA source from the same kernel specs as the CPU target (``numba.cuda.jit``).

The runtime hands CUDA kernels C-contiguous device arrays in one of three forms, so
three kernel shapes cover every spec:

- elementwise (``kernels.contiguous``: one flat axis): one thread per element, in a
  grid-stride loop, so any grid size is correct;
- rows (``kernels.rows``: kept axes flattened to rows, reduced axes to one row axis):
  one block per row (grid-stride over rows). Each pass over the row folds per thread,
  then a shared-memory tree combines the block's partials (padded with the
  reduction's identity); per-row results go out from thread 0, per-element results
  in a last strided loop. A user's fold (``lf.reduce``) must stay a left fold in C
  order, so thread 0 runs it alone. A full reduction of one pass runs in two stages
  (:func:`two_stage`): many blocks write partial results, one block folds them;
- matmul: ``tile`` x ``tile`` shared-memory tiles, grid axes over column tiles, row
  tiles and the batch (each a grid-stride loop), edge tiles padded with zeros; every
  ``syncthreads`` is reached by all threads of the block. An elementwise epilogue
  (:class:`Epilogue`: bias, activation, scaling) runs in the store, on each element of
  the product while it is in a register.

Scalar code (expressions, casts, identities, helpers) is the CPU target's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

import numpy as np

from lazyfuse.codegen import cpu_helpers
from lazyfuse.codegen.cpu import ScalarCode, cast, combine, element, expression, header, identity, numpy_type
from lazyfuse.codegen.source import SourceBuilder
from lazyfuse.graph.kernels import Accumulate, KernelSpec, Layout, Load
from lazyfuse.graph.ops import Op

# Numba's types for shared-memory arrays, by NumPy dtype name.
SHARED_TYPES = {
    "bool": "boolean",
    "int32": "int32",
    "int64": "int64",
    "float32": "float32",
    "float64": "float64",
}


@dataclass(frozen=True)
class Options:
    """CUDA code generation options; part of the kernel's identity. ``block``: threads
    per block of row kernels (a power of two); ``tile``: the matmul tile's side."""

    block: int = 256
    tile: int = 32


@dataclass(frozen=True)
class Epilogue:
    """Elementwise work done in a matmul kernel's store: ``spec`` (the CUDA form, one
    flat axis over the product's elements) reads the product as ``product_var``;
    ``keep_product``: the product itself is stored too (something else reads it)."""

    spec: KernelSpec
    product_var: str
    keep_product: bool


def generate(spec: KernelSpec, options: Options = Options(), epilogue: Epilogue | None = None) -> str:
    """The complete source file of ``spec``'s CUDA kernel (a matmul ``spec`` from
    :func:`with_epilogue` with its ``epilogue``)."""
    body = SourceBuilder()
    if spec.kind == "matmul":
        _matmul(spec, body, options, epilogue)
    elif spec.kind == "partials":
        _Partials(spec, body, options).emit()
    elif spec.n_inner == 0:
        _Elementwise(spec, body).emit()
    else:
        _Rows(spec, body, options).emit()
    kernel = body.text()
    out = SourceBuilder()
    out.lines(header(spec, "cuda", "bound by the runtime as device functions"))
    imports = ["import numpy as np", "from numba import cuda", f"from numba import {_shared_imports(kernel)}"]
    out.lines([*imports, ""])
    for helper in _device_helpers(kernel):
        out.lines([*helper.strip("\n").split("\n"), "", ""])
    return out.text() + "\n" + kernel


def _shared_imports(kernel: str) -> str:
    used = sorted(set(re.findall(r"dtype=(boolean|int32|int64|float32|float64)\)", kernel)))
    return ", ".join(used) if used else "int64"


def _device_helpers(kernel: str) -> list[str]:
    """The CPU helpers the kernel calls, as device functions."""
    return [
        re.sub(r"@njit\([^)]*\)", "@cuda.jit(device=True)", source)
        for source in cpu_helpers.sources_used(kernel)
    ]


class _Scalar(ScalarCode):
    """Emits the scalar code of one element or row: loads, expressions, each once per scope."""

    def __init__(self, spec: KernelSpec, body: SourceBuilder, index: dict[bool, str]) -> None:
        self.spec, self.body, self.index = spec, body, index
        self.loads = {ld.var: ld for ld in spec.loads}
        self.exprs = {e.target: e for e in spec.exprs}
        self.given = {p.name for p in spec.params} | {a.target for a in spec.accumulates}
        self.emitted = set()

    def compute(self, var: str) -> None:
        self._compute(var, inner=True)

    def _compute(self, var: str, inner: bool) -> None:
        if var in self.emitted or var in self.given:
            return
        if var in self.loads:
            load = self.loads[var]
            self.body.line(f"{var} = {load.array}[{self.index[load.inner]}]")
        else:
            expr = self.exprs[var]
            for arg in expr.args:
                self._compute(arg, inner)
            self.body.line(f"{var} = {expression(expr, 'libm')}")
        self.emitted.add(var)


def _signature(spec: KernelSpec) -> str:
    args = [ld.array for ld in spec.loads] + [p.name for p in spec.params] + [s.array for s in spec.stores]
    args += ["n0"] + (["m0"] if spec.n_inner else [])
    return f"{_decorator(spec)}\ndef {spec.name}({', '.join(args)}):"


def _decorator(spec: KernelSpec) -> str:
    """Note: as on the CPU, a kernel is cached on disk only when each user function it
    calls is named by its key in the header (else one file would serve several)."""
    return f"@cuda.jit(cache={spec.cacheable})"


class _Elementwise:
    def __init__(self, spec: KernelSpec, body: SourceBuilder) -> None:
        assert spec.n_outer == 1 and spec.layout is Layout.C, "CUDA elementwise kernels: one flat axis"
        self.spec, self.body = spec, body

    def emit(self) -> None:
        body = self.body
        body.lines(_signature(self.spec).split("\n"))
        with body.indent():
            body.line("start = cuda.grid(1)")
            body.line("stride = cuda.gridsize(1)")
            with body.indent("for i0 in range(start, n0, stride):"):
                scalar = _Scalar(self.spec, body, {False: "i0", True: "i0"})
                for acc in sorted(self.spec.accumulates, key=lambda a: a.phase):  # over no axes: one step
                    scalar.compute(acc.value)
                    body.line(f"{acc.target} = {combine(acc, _start(acc), element(acc))}")
                for store in self.spec.stores:
                    scalar.compute(store.value)
                    body.line(f"{store.array}[i0] = {cast(store.value, store.value_dtype, store.dtype)}")


class _Rows:
    """One block per row; see the module docstring."""

    def __init__(self, spec: KernelSpec, body: SourceBuilder, options: Options) -> None:
        assert spec.n_outer == 1 and spec.n_inner == 1, "CUDA row kernels take (rows, row) arrays"
        self.spec, self.body, self.block = spec, body, options.block
        self.scalar = _Scalar(spec, body, {False: "i0", True: "i0, r0"})

    def emit(self) -> None:
        body, spec = self.body, self.spec
        body.lines(_signature(spec).split("\n"))
        with body.indent():
            body.line(f"# one block of {self.block} threads per row")
            body.line("tid = cuda.threadIdx.x")
            for acc in spec.accumulates:
                shared = SHARED_TYPES[acc.dtype.name]
                body.line(f"shared_{acc.target} = cuda.shared.array({self.block}, dtype={shared})")
            with body.indent("for i0 in range(cuda.blockIdx.x, n0, cuda.gridDim.x):"):
                for phase in sorted({a.phase for a in spec.accumulates}):
                    self._pass([a for a in spec.accumulates if a.phase == phase])
                self._stores()

    def _pass(self, accumulates: list[Accumulate]) -> None:
        """Per-thread partial folds over the row, then the block's tree of partials."""
        body = self.body
        for acc in accumulates:
            self.scalar.outer_dependencies(acc.value)
        tree = [a for a in accumulates if a.op is not Op.REDUCE]
        folds = [a for a in accumulates if a.op is Op.REDUCE]
        if tree:
            for acc in tree:
                body.line(f"{acc.target} = {_start(acc)}")
            with body.indent(f"for r0 in range(tid, m0, {self.block}):"):
                self._fold(tree)
            self._tree(tree)
        if folds:  # a left fold in C order: thread 0 alone
            with body.indent("if tid == 0:"):
                for acc in folds:
                    body.line(f"{acc.target} = {_start(acc)}")
                with body.indent("for r0 in range(m0):"):
                    self._fold(folds)
                for acc in folds:
                    body.line(f"shared_{acc.target}[0] = {acc.target}")
            body.line("cuda.syncthreads()")
        for acc in accumulates:
            body.line(f"{acc.target} = shared_{acc.target}[0]")
        body.line("cuda.syncthreads()  # every thread has read the results before the next row")

    def _tree(self, accumulates: list[Accumulate]) -> None:
        """Each thread's partial into shared memory, then halves combined until [0]."""
        body = self.body
        for acc in accumulates:
            body.line(f"shared_{acc.target}[tid] = {acc.target}")
        body.line("cuda.syncthreads()")
        body.line(f"half = {self.block // 2}")
        with body.indent("while half > 0:"):
            with body.indent("if tid < half:"):
                for acc in accumulates:
                    slot, other = f"shared_{acc.target}[tid]", f"shared_{acc.target}[tid + half]"
                    body.line(f"{slot} = {combine(acc, slot, other)}")
            body.line("cuda.syncthreads()")
            body.line("half //= 2")

    def _fold(self, accumulates: list[Accumulate]) -> None:
        saved = set(self.scalar.emitted)
        for acc in accumulates:
            self.scalar.compute(acc.value)
            self.body.line(f"{acc.target} = {combine(acc, acc.target, element(acc))}")
        self.scalar.emitted = saved  # values of one element are not visible after its loop

    def _stores(self) -> None:
        body, spec = self.body, self.spec
        row = [s for s in spec.stores if not s.inner]
        if row:
            for store in row:
                self.scalar.outer_dependencies(store.value)
            with body.indent("if tid == 0:"):
                saved = set(self.scalar.emitted)
                for store in row:
                    self.scalar.compute(store.value)
                    body.line(f"{store.array}[i0] = {cast(store.value, store.value_dtype, store.dtype)}")
                self.scalar.emitted = saved
        per_element = [s for s in spec.stores if s.inner]
        if per_element:
            for store in per_element:
                self.scalar.outer_dependencies(store.value)
            with body.indent(f"for r0 in range(tid, m0, {self.block}):"):
                saved = set(self.scalar.emitted)
                for store in per_element:
                    self.scalar.compute(store.value)
                    body.line(f"{store.array}[i0, r0] = {cast(store.value, store.value_dtype, store.dtype)}")
                self.scalar.emitted = saved
        self.scalar.emitted = {v for v in self.scalar.emitted if v in self.scalar.given}


def two_stage(spec: KernelSpec) -> tuple[KernelSpec, KernelSpec] | None:
    """A full reduction (the rows form of a spec with no kept axis) in two kernels: many
    blocks fold strided parts of the one row into per-block partial results, then one
    block folds the partials and computes the outputs. Only for one pass of built-in
    reductions with per-row outputs; else None (one block does it all)."""
    simple = (
        spec.kind == "loop"
        and spec.n_inner == 1
        and spec.accumulates
        and len({a.phase for a in spec.accumulates}) == 1
        and all(a.op is not Op.REDUCE for a in spec.accumulates)
        and not any(s.inner for s in spec.stores)
        and all(ld.inner for ld in spec.loads)
    )
    if not simple:
        return None
    stem = spec.stem
    partials = replace(spec, name=f"{stem}_partials", kind="partials", stores=())
    parts = [Load(f"part{k}", f"x_part{k}", a.dtype, True) for k, a in enumerate(spec.accumulates)]
    final = replace(
        spec,
        name=f"{stem}_final",
        loads=tuple(parts),
        exprs=tuple(e for e in spec.exprs if not e.inner),
        accumulates=tuple(
            replace(a, value=p.var, value_dtype=a.dtype) for a, p in zip(spec.accumulates, parts, strict=True)
        ),
        user_functions=(),
        description=(*spec.description[:1], "second stage: folds the first stage's partial results"),
    )
    return partials, final


class _Partials(_Rows):
    """The first stage of a full reduction: block b folds elements b*block + tid, then
    every gridDim*block-th; thread 0 writes the block's result to ``partial_*[b]``."""

    def emit(self) -> None:
        body, spec = self.body, self.spec
        partials = [f"partial_{a.target}" for a in spec.accumulates]
        args = [ld.array for ld in spec.loads] + [p.name for p in spec.params] + partials + ["n0", "m0"]
        body.line(f"{_decorator(spec)}\ndef {spec.name}({', '.join(args)}):")
        with body.indent():
            body.line(f"# first stage: blocks of {self.block} threads fold strided parts of one row")
            body.lines(["tid = cuda.threadIdx.x", "i0 = 0"])
            for acc in spec.accumulates:
                shared = SHARED_TYPES[acc.dtype.name]
                body.line(f"shared_{acc.target} = cuda.shared.array({self.block}, dtype={shared})")
            for acc in spec.accumulates:
                self.scalar.outer_dependencies(acc.value)
                body.line(f"{acc.target} = {_start(acc)}")
            first, step = f"cuda.blockIdx.x * {self.block} + tid", f"cuda.gridDim.x * {self.block}"
            with body.indent(f"for r0 in range({first}, m0, {step}):"):
                self._fold(list(spec.accumulates))
            self._tree(list(spec.accumulates))
            with body.indent("if tid == 0:"):
                for acc, name in zip(spec.accumulates, partials, strict=True):
                    body.line(f"{name}[cuda.blockIdx.x] = shared_{acc.target}[0]")


def _start(acc: Accumulate) -> str:
    return acc.start if acc.start is not None else identity(acc.op, acc.dtype)


def with_epilogue(spec: KernelSpec, epilogue: Epilogue) -> KernelSpec:
    """The matmul ``spec`` renamed and described as the kernel that also runs
    ``epilogue`` (whose user functions it binds); generate it with :func:`generate`."""
    ep = epilogue.spec
    return replace(
        spec,
        name=f"{spec.stem}_then_{ep.stem}",
        user_functions=ep.user_functions,
        description=(*spec.description, f"then, in the store of each element: {ep.description[0]}"),
    )


def epilogue_arguments(epilogue: Epilogue) -> list[str]:
    """The fused kernel's arguments after the two operands: the epilogue's other
    arrays, its parameters, its outputs, then the product when it is kept."""
    spec = epilogue.spec
    loads = [ld.array for ld in spec.loads if ld.var != epilogue.product_var]
    args = loads + [p.name for p in spec.params] + [s.array for s in spec.stores]
    return args + (["product"] if epilogue.keep_product else [])


def _matmul(
    spec: KernelSpec, body: SourceBuilder, options: Options, epilogue: Epilogue | None = None
) -> None:
    """``out[b] = a[b] @ c[b]`` for (batch, m, k) @ (batch, k, n) C-contiguous arrays.
    The grid's axes (column tiles, row tiles, batch) stride over the output's tiles, so
    any grid size is correct; the loop bounds depend on the block only, so every thread
    of a block reaches each ``syncthreads``. With an ``epilogue``, the operands are
    ``left`` and ``right`` and each element of the product goes through the epilogue's
    expressions before it is stored (the epilogue's arrays are flat: element
    (b * m + i) * n + j)."""
    a0, a1 = spec.loads
    dt = spec.stores[0].dtype
    shared, t = SHARED_TYPES[dt.name], options.tile
    zero = "False" if dt == np.bool_ else f"{numpy_type(dt)}(0)"
    left, right, out = ("a0", "a1", "out0") if epilogue is None else ("left", "right", "product")
    args = [left, right, out] if epilogue is None else [left, right, *epilogue_arguments(epilogue)]
    body.line(f"{_decorator(spec)}\ndef {spec.name}({', '.join(args)}):")
    with body.indent():
        body.line(f"# {t}x{t} tiles of both operands in shared memory")
        body.line(f"tile_a = cuda.shared.array(({t}, {t}), dtype={shared})")
        body.line(f"tile_b = cuda.shared.array(({t}, {t}), dtype={shared})")
        body.lines(["tx = cuda.threadIdx.x", "ty = cuda.threadIdx.y"])
        body.lines(
            [
                f"batch = {left}.shape[0]",
                f"m = {left}.shape[1]",
                f"n = {right}.shape[2]",
                f"k_size = {left}.shape[2]",
            ]
        )
        with (
            body.indent("for b in range(cuda.blockIdx.z, batch, cuda.gridDim.z):"),
            body.indent(f"for row_tile in range(cuda.blockIdx.y, ({t - 1} + m) // {t}, cuda.gridDim.y):"),
            body.indent(f"for column_tile in range(cuda.blockIdx.x, ({t - 1} + n) // {t}, cuda.gridDim.x):"),
        ):
            body.line(f"i = row_tile * {t} + ty")
            body.line(f"j = column_tile * {t} + tx")
            body.line(f"acc = {zero}")
            with body.indent(f"for k0 in range(0, k_size, {t}):"):
                body.line("# edge tiles are padded with zeros")
                x = cast(f"{left}[b, i, k0 + tx]", a0.dtype, dt)
                y = cast(f"{right}[b, k0 + ty, j]", a1.dtype, dt)
                body.line(f"tile_a[ty, tx] = {x} if i < m and k0 + tx < k_size else {zero}")
                body.line(f"tile_b[ty, tx] = {y} if k0 + ty < k_size and j < n else {zero}")
                body.line("cuda.syncthreads()")
                with body.indent(f"for k in range({t}):"):
                    if dt == np.bool_:
                        body.line("acc = acc or (tile_a[ty, k] and tile_b[k, tx])")
                    else:
                        body.line("acc = acc + tile_a[ty, k] * tile_b[k, tx]")
                body.line("cuda.syncthreads()")
            with body.indent("if i < m and j < n:"):
                if epilogue is None:
                    body.line("out0[b, i, j] = acc")
                else:
                    _epilogue_store(epilogue, body)


def _epilogue_store(epilogue: Epilogue, body: SourceBuilder) -> None:
    """The store of one product element ``acc`` at (b, i, j): the epilogue's values of
    that element, at flat index e0 of its arrays."""
    if epilogue.keep_product:
        body.line("product[b, i, j] = acc")
    body.line("e0 = (b * m + i) * n + j")
    dt = next(ld.dtype for ld in epilogue.spec.loads if ld.var == epilogue.product_var)
    # Note: Numba widens acc's integer arithmetic to int64; the product wraps to its dtype
    # when stored, as NumPy's does, so the epilogue reads it converted back.
    body.line(f"{epilogue.product_var} = {'acc' if dt == np.bool_ else f'{numpy_type(dt)}(acc)'}")
    scalar = _Scalar(epilogue.spec, body, {False: "e0", True: "e0"})
    scalar.emitted.add(epilogue.product_var)
    for store in epilogue.spec.stores:
        scalar.compute(store.value)
        body.line(f"{store.array}[e0] = {cast(store.value, store.value_dtype, store.dtype)}")
