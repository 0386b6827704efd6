"""Running plans on the CUDA target (``numba.cuda``; Numba's simulator when
``NUMBA_ENABLE_CUDASIM=1``).

The plan and its kernel specs are the CPU target's; only the arrays' form differs.
Each kernel gets C-contiguous device arrays: elementwise kernels one flat axis, row
kernels (rows, row), matmul (batch, m, k) and (batch, k, n). A NumPy input is copied
to the device once per compute, as it is; a C-contiguous device array the user passed is
read where it is. Computed values stay on the device. A value a kernel reads in another
form (a transpose, slice or broadcast of it, or its axes in a row kernel's order) is
gathered into that form on the device (:mod:`cuda_views`); only a reshape NumPy itself
could not do as a view is made on the host. Only the requested results come back.
A matmul and the elementwise call after it run as one kernel when that call only reads
the product at its own index (:func:`steps`): the epilogue is computed in the store.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lazyfuse import config
from lazyfuse.codegen import cuda as cuda_codegen
from lazyfuse.errors import LazyfuseError
from lazyfuse.graph import build, fuse, host, kernels, passes
from lazyfuse.graph.node import Node
from lazyfuse.graph.ops import ARG_REDUCTIONS, VIEWS, Op
from lazyfuse.graph.traverse import toposort
from lazyfuse.graph.views import apply_view
from lazyfuse.runtime import cuda_views, plans
from lazyfuse.runtime.compile import CompiledKernel, cached, import_kernel, write_source
from lazyfuse.runtime.execute import arrange, check_values

# CUDA's launch limits for every device of compute capability 3.0 and later (the
# simulator does not report them).
MAX_GRID_X, MAX_GRID_YZ = 2**31 - 1, 65535
# The simulator runs blocks one after another, each thread a Python thread: a few
# blocks, striding over the rest of the data (grid-stride loops), test the same code.
SIMULATOR_MAX_BLOCKS = 2
# The first stage of a full reduction: at most this many blocks (partial results).
PARTIAL_BLOCKS = 1024


def max_blocks() -> int:
    from numba.core import config as numba_config

    return SIMULATOR_MAX_BLOCKS if getattr(numba_config, "ENABLE_CUDASIM", 0) else MAX_GRID_X


@dataclass
class OnDevice:
    """A computed value on the device: C-contiguous, axes in ``order`` (the value
    transposed by ``order``; None: its own order)."""

    array: Any
    shape: tuple[int, ...]
    order: tuple[int, ...] | None = None


_DEVICE_FUNCTIONS: dict[int, Any] = {}


def numba_cuda() -> Any:
    """``numba.cuda``, or a LazyfuseError that says how to get a device or the simulator."""
    from numba import cuda

    if not cuda.is_available():
        raise LazyfuseError(
            "compute(target='cuda'): no CUDA GPU is available to Numba (numba.cuda.is_available() "
            "is False). On a machine with a GPU: pip install 'lazyfuse[cuda]'. Without one, "
            "Numba's CUDA simulator runs the same kernels slowly: set NUMBA_ENABLE_CUDASIM=1 "
            "in the environment before Python starts."
        )
    return cuda


def options() -> cuda_codegen.Options:
    settings = config.get()
    return cuda_codegen.Options(block=settings.cuda_block, tile=settings.cuda_tile)


def kernel_spec(call: kernels.KernelCall) -> kernels.KernelSpec:
    """The spec in the CUDA target's array form."""
    spec = call.spec
    if spec.kind == "matmul":
        return spec
    return kernels.contiguous(spec) if spec.n_inner == 0 else kernels.rows(spec)


def kernel_for(
    spec: kernels.KernelSpec, opts: cuda_codegen.Options, epilogue: cuda_codegen.Epilogue | None = None
) -> CompiledKernel:
    """The CUDA kernel for ``spec`` (a matmul's, with ``epilogue`` in its store: see
    :func:`cuda_codegen.with_epilogue`), generated and imported once per process (in the
    kernel cache the CPU's kernels share, keyed by the CUDA options and the epilogue)."""

    def make() -> CompiledKernel:
        cuda = numba_cuda()
        made = cuda_codegen.with_epilogue(spec, epilogue) if epilogue is not None else spec
        source = cuda_codegen.generate(made, opts, epilogue)
        path = write_source(made.name + "_cuda", source)
        bound = {name: _device_function(cuda, user) for name, user in made.user_functions}
        module = import_kernel(path, made, bound)
        return CompiledKernel(made.name, "cuda", source, path, getattr(module, made.name), compiled=True)

    return cached(spec, (opts, epilogue), make)


def _device_function(cuda: Any, user: Any) -> Any:
    """A user's scalar function (lf.map / zip / reduce) as a CUDA device function."""
    if id(user) not in _DEVICE_FUNCTIONS:
        _DEVICE_FUNCTIONS[id(user)] = (user, cuda.jit(device=True)(user.fn))
    return _DEVICE_FUNCTIONS[id(user)][1]


def compiled(roots: Sequence[Node]) -> list[CompiledKernel]:
    """The CUDA kernels that compute ``roots``, in order (generated, not yet launched)."""
    made = plans.fresh_plan(lowered(roots))
    found: list[CompiledKernel] = []
    for step in steps(made):
        call = step.call
        if call.spec.kind == "host":
            continue  # computed by NumPy: no kernel
        spec = kernel_spec(call)
        if step.epilogue is not None:
            found.append(kernel_for(spec, options(), step.epilogue[1]))
            continue
        stages = cuda_codegen.two_stage(spec) if call.spec.kind == "loop" and call.spec.n_outer == 0 else None
        found.extend(kernel_for(one, options()) for one in (stages if stages else [spec]))
    return found


def steps(found: plans.Plan) -> list[plans.Step]:
    """The plan's calls as launches: a matmul and the elementwise call right after it
    are one launch (``step.epilogue``: that call and its Epilogue) when that call can run
    in the matmul's store (:func:`_epilogue`); every other call is a launch of its own.
    Each step names the device values it reads for the last time. Kept on the plan."""
    if "cuda" not in found.steps:
        calls, launches, epilogues = found.calls, [], []
        k = 0
        while k < len(calls):
            epilogue = _epilogue(calls, k, found.roots)
            launches.append(calls[k : k + 2] if epilogue else calls[k : k + 1])
            epilogues.append((calls[k + 1], epilogue) if epilogue else None)
            k += 2 if epilogue else 1
        dying = plans.dying(found, launches)
        found.steps["cuda"] = [
            plans.Step(calls[0], gone, epilogue=after)
            for calls, gone, after in zip(launches, dying, epilogues, strict=True)
        ]
    return found.steps["cuda"]


def _epilogue(
    calls: Sequence[kernels.KernelCall], k: int, roots: Sequence[Node]
) -> cuda_codegen.Epilogue | None:
    """The call after ``calls[k]`` as the epilogue of matmul ``calls[k]``: elementwise,
    over the product's elements, reading the product once and at its own index, without
    checks of run-time values (they read values on the host). The product is still
    stored when a later call or a result reads it."""
    if calls[k].spec.kind != "matmul" or k + 1 == len(calls):
        return None
    call, after = calls[k], calls[k + 1]
    (product,) = call.outputs
    spec = after.spec
    reads = [n for n, (base, _, _) in enumerate(after.loads) if base is product]
    fits = (
        spec.kind == "loop"
        and spec.n_inner == 0
        and not spec.accumulates
        and not after.checks
        and after.extents == product.shape
        and len(reads) == 1
        and not after.loads[reads[0]][1]  # no views between the product and the epilogue
    )
    if not fits:
        return None
    later = {base for c in calls[k + 2 :] for base, _, _ in c.loads}
    keep = product in later or product in {fuse.base_of(r)[0] for r in roots}
    cuda_spec = kernel_spec(after)
    return cuda_codegen.Epilogue(cuda_spec, cuda_spec.loads[reads[0]].var, keep)


def lowered(roots: Sequence[Node]) -> list[Node]:
    """``roots`` as this target computes them: its kernels run over flattened arrays,
    with no loop index per axis, so index-space nodes become inputs, gathers, scatters and
    scans host steps, and argmax / argmin two reductions (see passes.iota_as_input,
    indexed_on_host, scans_on_host, arg_reductions_in_two_passes)."""
    ops = {n.op for n in toposort(roots)}
    if ops & ARG_REDUCTIONS:
        roots = passes.arg_reductions_in_two_passes(roots)
    if ops & {Op.GATHER, Op.SCATTER_ADD}:
        roots = passes.indexed_on_host(roots)
    if Op.SCAN in ops:
        roots = passes.scans_on_host(roots)
    return passes.iota_as_input(roots) if Op.IOTA in ops else list(roots)


def run(roots: Sequence[Node], out: np.ndarray | None = None) -> list[np.ndarray]:
    """Compute ``roots`` on the device; results come back as NumPy arrays."""
    found, values, resize = plans.plan_for(lowered(roots))
    return run_plan(found, values, resize, out)


def run_plan(
    found: plans.Plan, values: list[Any], resize: plans.Resize | None, out: np.ndarray | None = None
) -> list[np.ndarray]:
    """Run a plan with ``values`` in its slots (see :func:`run`)."""
    cuda = numba_cuda()
    run = _Run(cuda, values, resize)
    for step in steps(found):
        if step.epilogue is None:
            run.call(step.call)
        else:
            run.matmul_with_epilogue(step.call, *step.epilogue)
        for base in step.dying:  # Note: device memory goes back when the last reference does
            run.stored.pop(base, None)
    results = [np.asarray(run.host(r)) for r in found.roots]
    if out is not None:
        np.copyto(out, results[0])
        results[0] = out
    return results


class _Run:
    """The state of one compute: values on the device, inputs already copied there."""

    def __init__(self, cuda: Any, values: list[Any], resize: plans.Resize | None) -> None:
        self.cuda, self.values, self.resize = cuda, values, resize
        self.stored: dict[Node, OnDevice] = {}
        self.copied: dict[tuple[Any, ...], Any] = {}

    def shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        return self.resize(shape) if self.resize else shape

    def host(self, node: Node) -> Any:
        """``node``'s value as a NumPy array (a computed value is copied back)."""
        if node.op is Op.INPUT:
            value = self.values[node.attrs[0].index]
            return value.copy_to_host() if build.is_device_array(value) else value
        if node.op is Op.SCALAR:
            return np.asarray(self.values[node.attrs[0].index], dtype=node.dtype)
        if node.op in VIEWS:
            return apply_view(node, self.host(node.args[0]), self.shape(node.shape), self.values)
        held = self.stored[node]
        value = held.array.copy_to_host()
        if held.order is None:
            return value.reshape(held.shape)
        arranged = value.reshape(tuple(held.shape[a] for a in held.order))
        return arranged.transpose(np.argsort(held.order))

    def call(self, call: kernels.KernelCall) -> None:
        for node, operand in call.checks:
            check_values(node, operand, self.host)
        if call.spec.kind == "host":  # computed by NumPy on the host, then copied over
            (root,) = call.outputs
            result = host.compute(root, [self.host(kernels.viewed_node(b, c)) for b, c, _ in call.loads])
            self.stored[root] = OnDevice(self.cuda.to_device(np.ascontiguousarray(result)), result.shape)
            return
        spec = kernel_spec(call)
        arrays = [self._load(call, base, chain, inner) for base, chain, inner in call.loads]
        outputs = [
            self._output(call, root, store.inner)
            for root, store in zip(call.outputs, spec.stores, strict=True)
        ]
        if spec.kind == "matmul":
            self._launch_matmul(kernel_for(spec, options()), arrays, outputs)
            return
        params = [p.dtype.type(self.values[p.attrs[0].index]) for p in call.params]
        extents = self.shape(call.extents)
        if spec.n_inner == 0:
            size = math.prod(extents)
            if size:
                threads = options().block
                blocks = min(math.ceil(size / threads), max_blocks())
                kernel_for(spec, options()).function[blocks, threads](*arrays, *params, *outputs, size)
            return
        kept = call.spec.n_outer  # the plan's axes; the CUDA spec has flattened them
        rows, cols = math.prod(extents[:kept]), math.prod(extents[kept:])
        block = options().block
        stages = cuda_codegen.two_stage(spec) if kept == 0 else None  # a full reduction
        kernel = kernel_for(spec if stages is None else stages[1], options())
        if stages is not None:
            arrays = self._partials(stages[0], arrays, params, cols)
            cols = arrays[0].shape[1]
        if rows:
            kernel.function[min(rows, max_blocks()), block](*arrays, *params, *outputs, rows, cols)

    def _partials(
        self, first: kernels.KernelSpec, arrays: list[Any], params: list[Any], cols: int
    ) -> list[Any]:
        """Run a full reduction's first stage; returns the second stage's inputs: each
        accumulator's per-block partial results, as one row."""
        block = options().block
        blocks = max(1, min(math.ceil(cols / block), PARTIAL_BLOCKS, max_blocks()))
        partials = [self.cuda.device_array(blocks, dtype=acc.dtype) for acc in first.accumulates]
        kernel_for(first, options()).function[blocks, block](*arrays, *params, *partials, 1, cols)
        return [p.reshape(1, blocks) for p in partials]

    def _form(self, call: kernels.KernelCall, shape: tuple[int, ...], inner: bool) -> tuple[int, ...]:
        """The shape a kernel takes an array in: flat, (rows, row) or (rows,), (batch, m, k)."""
        spec = call.spec
        if spec.kind == "matmul":
            return (math.prod(shape[:-2]), *shape[-2:])
        if spec.n_inner == 0:
            return (math.prod(shape),)
        extents = self.shape(call.extents)
        rows = math.prod(extents[: spec.n_outer])
        return (rows, math.prod(extents[spec.n_outer :])) if inner else (rows,)

    def _load(self, call: kernels.KernelCall, base: Node, chain: tuple[Node, ...], inner: bool) -> Any:
        held = self.stored.get(base)
        natural = (
            call.spec.kind == "matmul" or call.spec.n_inner == 0 or not inner or _identity(call.permutation)
        )
        if held is not None and not chain and held.order is None and natural:
            return held.array.reshape(*self._form(call, held.shape, inner))
        given: Any = self.values[base.attrs[0].index] if base.op is Op.INPUT else None
        if build.is_device_array(given) and not chain and natural and given.is_c_contiguous():
            return given.reshape(*self._form(call, tuple(given.shape), inner))  # the user's, in place
        # Note: the kind and axes name the form: a matmul operand and an elementwise load of
        # the same array can share permutation and kept axes, not their form.
        spec = call.spec
        key = (base, chain, inner, call.permutation, call.kept, spec.kind, spec.n_outer, spec.n_inner)
        if key not in self.copied:
            self.copied[key] = self._arranged(call, base, kernels.viewed_node(base, chain), inner)
        return self.copied[key]

    def _arranged(self, call: kernels.KernelCall, base: Node, node: Node, inner: bool) -> Any:
        """``node`` (``base`` through views) as a new C-contiguous device array in the
        kernel's form: gathered on the device from ``base``'s device buffer, or made on
        the host and copied to the device for a view NumPy could only copy, and for a
        part of a NumPy input (a slice: only the part crosses)."""
        stand_in = self._stand_in(base)
        if stand_in is not None:
            view = arrange(self._view_of(node, base, stand_in), inner, call, self.resize)
            found = cuda_views.layout(view, stand_in)
            on_device = base in self.stored or not self._host_input(base)
            if found is not None and (on_device or view.size >= stand_in.size):
                buffer = self._buffer(base)
                form = self._form(call, found.shape, inner)
                if found.is_whole_buffer(stand_in.size):
                    return buffer.reshape(*form)
                gathered = cuda_views.gather(
                    self.cuda, buffer, found, node.dtype, options().block, max_blocks()
                )
                return gathered.reshape(*form)
        value = arrange(self.host(node), inner, call, self.resize)
        host = np.ascontiguousarray(value).reshape(self._form(call, value.shape, inner))
        return self.cuda.to_device(host)

    def _host_input(self, base: Node) -> bool:
        return not build.is_device_array(self.values[base.attrs[0].index])

    def _stand_in(self, base: Node) -> np.ndarray | None:
        """The stand-in of ``base``'s device buffer (see :mod:`cuda_views`); None for a
        device array the user passed with other strides (no flat buffer to gather from)."""
        held = self.stored.get(base)
        if held is not None:
            return cuda_views.stand_in(held.shape, held.order)
        given = self.values[base.attrs[0].index]
        if build.is_device_array(given) and not given.is_c_contiguous():
            return None
        return cuda_views.stand_in(tuple(given.shape))

    def _buffer(self, base: Node) -> Any:
        """``base``'s value on the device as a flat C-contiguous array (in the order of
        its stand-in); a NumPy input is copied to the device, once per compute."""
        held = self.stored.get(base)
        if held is not None:
            return held.array.reshape(held.array.size)
        given = self.values[base.attrs[0].index]
        if not build.is_device_array(given):
            key = (base,)
            if key not in self.copied:
                self.copied[key] = self.cuda.to_device(np.ascontiguousarray(given))
            given = self.copied[key]
        return given.reshape(given.size)

    def _view_of(self, node: Node, base: Node, stand_in: np.ndarray) -> np.ndarray:
        """The stand-in of ``base`` seen through the views from ``base`` to ``node``."""
        if node is base:
            return stand_in
        inner = self._view_of(node.args[0], base, stand_in)
        return apply_view(node, inner, self.shape(node.shape), self.values)

    def _output(self, call: kernels.KernelCall, root: Node, inner: bool) -> Any:
        shape = self.shape(root.shape)
        spec = call.spec
        order = None
        if spec.kind == "loop" and spec.n_inner and inner and not _identity(call.permutation):
            order = call.permutation
        arranged = shape if order is None else tuple(shape[a] for a in order)
        array = self.cuda.device_array(self._form(call, arranged, inner), dtype=root.dtype)
        self.stored[root] = OnDevice(array, shape, order)
        return array

    def matmul_with_epilogue(
        self, call: kernels.KernelCall, after: kernels.KernelCall, epilogue: cuda_codegen.Epilogue
    ) -> None:
        """The matmul ``call`` with the elementwise call ``after`` in its store."""
        (product,) = call.outputs
        operands = [self._load(call, base, chain, inner) for base, chain, inner in call.loads]
        others = [self._load(after, *load) for load in after.loads if load[0] is not product]
        params = [p.dtype.type(self.values[p.attrs[0].index]) for p in after.params]
        stores = zip(after.outputs, epilogue.spec.stores, strict=True)
        outputs = [self._output(after, root, store.inner) for root, store in stores]
        if epilogue.keep_product:
            outputs.append(self._output(call, product, False))
        kernel = kernel_for(kernel_spec(call), options(), epilogue)
        self._launch_matmul(kernel, operands, [*others, *params, *outputs])

    def _launch_matmul(self, kernel: CompiledKernel, operands: list[Any], rest: list[Any]) -> None:
        """Launch a matmul kernel on (batch, m, k) @ (batch, k, n) ``operands``, then
        ``rest`` (the product, or the epilogue's arguments)."""
        a, b = operands
        batch, m, n = a.shape[0], a.shape[1], b.shape[2]
        if not (batch and m and n):
            return
        tile, most = options().tile, max_blocks()
        grid = (min(math.ceil(n / tile), most), min(math.ceil(m / tile), most, MAX_GRID_YZ))
        kernel.function[(*grid, min(batch, most, MAX_GRID_YZ)), (tile, tile)](a, b, *rest)


def _identity(permutation: tuple[int, ...]) -> bool:
    return permutation == tuple(range(len(permutation)))
