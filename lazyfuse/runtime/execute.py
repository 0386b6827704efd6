"""Running a graph: fusion groups become kernel calls; views are NumPy views.

The plan (cached per graph structure, see plans.py): ``fuse.plan`` groups the nodes,
``kernels.bind`` turns each group into a spec (compiled once, cached on disk) and the
arrays to call it with.
Stored values are freed after the last kernel that reads them.
"""

from __future__ import annotations

import contextlib
import functools
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numba
import numpy as np

from lazyfuse import config
from lazyfuse.codegen import cpu
from lazyfuse.graph import build, fuse, host, kernels
from lazyfuse.graph.explain import format_fusion, format_graph
from lazyfuse.graph.node import Node
from lazyfuse.graph.ops import ELEMENTWISE, VIEWS, Op
from lazyfuse.graph.traverse import toposort
from lazyfuse.graph.views import apply_view
from lazyfuse.runtime import (
    blas,
    buffers,
    forks,  # noqa: F401 (registers the fork handler)
    plans,
    profiling,
    replay,
)
from lazyfuse.runtime.compile import CompiledKernel, kernel_for, write_source
from lazyfuse.runtime.variants import Layout, Variant

_OPTIONS: dict[int, tuple[config.Config, cpu.Options]] = {}


def options() -> cpu.Options:
    """The codegen options of the settings in force (one object per settings object)."""
    settings = config.get()
    found = _OPTIONS.get(id(settings))
    if found is None or found[0] is not settings:
        found = _OPTIONS[id(settings)] = (settings, cpu.Options(settings.parallel, settings.math))
        if len(_OPTIONS) > 64:
            _OPTIONS.clear()
    return found[1]


def plan(roots: Sequence[Node]) -> tuple[list[Node], fuse.Plan, list[kernels.KernelCall]]:
    """The optimized (skeleton) roots, their fusion plan and one kernel call per group,
    made for these roots' own shapes (not from the plan cache)."""
    made = plans.fresh_plan(roots)
    return made.roots, made.grouped, made.calls


def compiled(roots: Sequence[Node]) -> list[CompiledKernel]:
    """The kernels that compute ``roots``, in execution order (loaded, not yet run)."""
    opts = options()
    return [kernel_for(call.spec, opts) for call in plan(roots)[2] if call.spec.kind != "host"]


def kernel_source_path(node: Node) -> str:
    """Write the source of the kernel that computes ``node`` alone (without compiling)."""
    shape, reduced = (node.args[0].shape, node.attrs[0]) if node.op is Op.REDUCE else (node.shape, ())
    call = kernels.bind(fuse.Group(shape, reduced, [node], [node]), toposort([node]))
    return str(write_source(call.spec.name, cpu.generate(call.spec, options())))


def _schedule(found: plans.Plan) -> list[plans.Step]:
    """The steps of ``found``'s calls, one call each, made once per plan."""
    steps = found.steps.get("cpu")
    if steps is None:
        calls = found.calls
        steps = []
        for i, (call, dying) in enumerate(zip(calls, plans.dying(found, [[c] for c in calls]), strict=True)):
            arranged = call.spec.kind in ("loop", "scan") and call.spec.n_inner > 0
            after_blas = i > 0 and uses_blas(calls[i - 1].spec)
            steps.append(plans.Step(call, dying, _donors(call, dying), arranged, after_blas))
        found.steps["cpu"] = steps
    return steps


_HOST_VALUES = frozenset({np.ndarray, float, int, bool, tuple})  # tuple: an index's key


def run(roots: Sequence[Node], out: np.ndarray | None = None) -> list[np.ndarray]:
    """Compute ``roots``; stored intermediates are dropped after their last use. With
    ``out`` (one root), the kernel that computes the root writes into it."""
    known = plans.known(roots[0], config.get()) if out is None and len(roots) == 1 else None
    if known is not None:
        result = run_known(roots[0], known)
        if result is not None:
            return [result]
    found, values, resize = plans.plan_for(roots)  # a known form finds ``known`` again
    if config.get().debug >= 2:
        shown = plans.fresh_plan(roots)  # Note: its indexes show their keys, not slots
        _report_plan(shown.roots, shown.grouped)
    return run_plan(found, values, resize, out, held=known)


def run_plan(
    found: plans.Plan,
    values: list[Any],
    resize: plans.Resize | None,
    out: np.ndarray | None = None,
    held: Any = None,
) -> list[np.ndarray]:
    """Run a plan with ``values`` in its slots and ``resize`` from its sizes (see
    :func:`plans.plan_for`): what :func:`run` does once it has found the plan.
    ``held``: where a direct plan's ready call is kept (see :func:`run_direct`)."""
    if out is None:
        result = run_direct(found, values, resize, held)
        if result is not None:
            return [result]
        replayed = getattr(held, "replayed", None)
        if replayed is not None and replayed[0] is config.get() and replayed[1] == held.layout(values):
            with contextlib.suppress(replay.NotRecordableError):  # Note: then the lookup below finds out
                return replayed[2].run(values)  # type: ignore[no-any-return]
    given = values
    if not all([type(v) in _HOST_VALUES for v in values]):
        values = [v.copy_to_host() if build.is_device_array(v) else v for v in values]
    settings = config.get()
    recorder = None
    if out is None and settings.replay and not (settings.debug or settings.profile):
        key = replay.layout_of(values, settings, resize(found.sizes) if resize else found.sizes)
        known = found.replays.get(key)
        if known:
            if hasattr(held, "replayed") and values is given:
                held.replayed = (settings, held.layout(values), known)  # an lf.jit trace's: see _Trace.layout
            try:
                return known.run(values)
            except replay.NotRecordableError:
                found.replays[key] = False
                if hasattr(held, "replayed"):
                    held.replayed = None
        elif known is None and len(found.replays) < replay.MAX_LAYOUTS and not _writes_in_place(found):
            recorder = replay.Recorder(values, settings.compile_replays_after)
    results = _run_general(found, values, resize, out, settings, recorder)
    if recorder is not None:
        found.replays[key] = recorder.finish(results)
    return results


def _writes_in_place(found: plans.Plan) -> bool:
    """Whether a kernel of ``found`` writes into a concatenation's output (not recorded)."""
    return any(join.parts for join in _joins(found).values())


def _run_general(
    found: plans.Plan,
    values: list[Any],
    resize: plans.Resize | None,
    out: np.ndarray | None,
    settings: config.Config,
    recorder: replay.Recorder | None,
) -> list[np.ndarray]:
    """:func:`run_plan`, deciding every call's layout as it goes (and telling ``recorder``)."""
    stored: dict[Node, np.ndarray] = {}
    if out is not None and fuse.is_computing(found.roots[0]):
        stored[found.roots[0]] = out  # the kernel that computes the root writes into it
    opts = options()
    joins = _joins(found)
    placed = {node: _prefill(join, stored, resize) for node, join in joins.items()}
    for step in _schedule(found):
        joined = step.call.outputs[0] if step.call.spec.kind == "host" else None
        if joined in placed:
            _finish_join(joins[joined], placed[joined], stored, values, resize)
        else:
            _call(step, stored, values, opts, resize, settings, recorder)
        for base in step.dying:
            stored.pop(base, None)
        if recorder is not None:
            recorder.died(step.dying)
    results = [_writable(np.asarray(_viewed(r, stored, values, resize))) for r in found.roots]
    if out is not None and results[0] is not out:  # a view or an input: nothing computed it
        np.copyto(out, results[0])
        results[0] = out
    return results


@dataclass(frozen=True)
class _Join:
    """A concatenation whose computed parts are written by their kernels straight into
    their slices of its output (no second copy): ``parts`` are (argument position, the
    stored part, the unit-axis reshapes between) for each part no other step reads."""

    node: Node
    axis: int
    parts: tuple[tuple[int, Node, tuple[Node, ...]], ...]


def _joins(found: plans.Plan) -> dict[Node, _Join]:
    """The plan's concatenations and the parts each can have written in place (once per plan)."""
    if found.joins is None:
        found.joins = {}
        by_kernel = {r for call in found.calls if call.spec.kind == "loop" for r in call.outputs}
        readers: dict[Node, int] = {}
        for call in found.calls:
            for base in {b for b, _, _ in call.loads}:
                readers[base] = readers.get(base, 0) + 1
        kept = {fuse.base_of(r)[0] for r in found.roots}
        for call in found.calls:
            node = call.outputs[0]
            if call.spec.kind != "host" or node.attrs[0] != "concatenate":
                continue
            parts = []
            for k, arg in enumerate(node.args):
                base, chain = fuse.base_of(arg)
                alone = readers.get(base) == 1 and node.args.count(arg) == 1
                reshaped = all(v.op is Op.RESHAPE for v in chain)
                if base in by_kernel and base not in kept and alone and base.dtype == node.dtype and reshaped:
                    parts.append((k, base, chain))
            found.joins[node] = _Join(node, node.attrs[1][0], tuple(parts))
    return found.joins  # type: ignore[no-any-return]


def _part_slices(join: _Join, resize: plans.Resize | None) -> list[tuple[slice, ...]]:
    axis, where = join.axis, 0
    found = []
    for arg in join.node.args:
        size = (resize(arg.shape) if resize else arg.shape)[axis]
        found.append((slice(None),) * axis + (slice(where, where + size),))
        where += size
    return found


def _prefill(join: _Join, stored: dict[Node, np.ndarray], resize: plans.Resize | None) -> set[int]:
    """Allocate the concatenation's output and make each part's stored value its slice
    of it (so the part's kernel writes there); returns the parts placed so."""
    node = join.node
    out = buffers.empty(resize(node.shape) if resize else node.shape, node.dtype)
    stored[node] = out
    slices = _part_slices(join, resize)
    placed = set()
    for k, base, _ in join.parts:
        view = out[slices[k]].reshape(resize(base.shape) if resize else base.shape)
        if np.shares_memory(view, out):  # Note: a reshape NumPy could only copy is not a slice
            stored[base] = view
            placed.add(k)
    return placed


def _finish_join(
    join: _Join,
    placed: set[int],
    stored: dict[Node, np.ndarray],
    values: list[Any],
    resize: plans.Resize | None,
) -> None:
    """Copy the parts no kernel wrote in place (inputs, views, shared values) into their slices."""
    out = stored[join.node]
    for k, (arg, where) in enumerate(zip(join.node.args, _part_slices(join, resize), strict=True)):
        if k not in placed:
            out[where] = _viewed(arg, stored, values, resize)


def check_values(
    node: Node, operand: Node, value_of: Callable[[Node], Any], resize: plans.Resize | None = None
) -> None:
    """Raise what NumPy raises on the values of ``operand`` (an argument of ``node``):
    an op's precondition (an integer power's negative exponent), or a gather's or
    scatter-add's index out of range (IndexError, with NumPy's message). ``resize``: the
    plan's sizes to this call's (a scatter-add's table is its own shape)."""
    if node.op in (Op.GATHER, Op.SCATTER_ADD):
        values = operand
        while values.op in (Op.EXPAND, Op.RESHAPE):  # the same values, without the repeats
            values = values.args[0]
        index = value_of(values)
        if not index.size:
            return
        low, high = int(index.min()), int(index.max())
        if node.op is Op.GATHER:
            table = value_of(node.args[0]).shape
        else:
            table = resize(node.shape) if resize else node.shape
        for t, (kind, j) in enumerate(node.attrs[0]):
            if kind == "i" and node.args[1 + j] is operand:
                bad = low if low < -table[t] else high if high >= table[t] else None
                if bad is not None:
                    raise IndexError(f"index {bad} is out of bounds for axis {t} with size {table[t]}")
        return
    row = ELEMENTWISE[node.op]
    assert row.precondition is not None
    row.precondition(node.attrs[0], value_of(operand))


def _writable(result: np.ndarray) -> np.ndarray:
    """A result the caller may write to: a read-only view (a broadcast constant such as
    ``lf.zeros``, a read-only input) is copied."""
    return result if result.flags.writeable else result.copy()


@dataclass(frozen=True)
class _Direct:
    """A plan that is one elementwise kernel over its inputs as they are (no views, no
    preconditions to check) and returns that kernel's output."""

    call: kernels.KernelCall
    inputs: tuple[int, ...]  # the value slot of each load
    params: tuple[tuple[int, type], ...]  # each parameter's value slot and scalar type


def _direct(found: plans.Plan) -> _Direct | None:
    """``found``'s direct call (made once per plan), or None when it has none."""
    if found.direct is None:
        found.direct = _direct_call(found) or False
    return found.direct or None


def _direct_call(found: plans.Plan) -> _Direct | None:
    if len(found.calls) != 1 or len(found.roots) != 1:
        return None
    (call,) = found.calls
    if call.spec.kind != "loop" or call.spec.n_inner or call.outputs != found.roots or call.checks:
        return None
    if not all([not chain and base.op is Op.INPUT for base, chain, _ in call.loads]):
        return None
    inputs = tuple([base.attrs[0].index for base, _, _ in call.loads])
    return _Direct(call, inputs, tuple([(p.attrs[0].index, p.dtype.type) for p in call.params]))


@dataclass(frozen=True)
class Ready:
    """A direct plan made ready for one set of sizes under one settings object: its
    compiled flat kernel, the result's shape, and the value slots of the kernel's arrays
    and scalars. Kept where a call can find it again without deciding any of it: on the
    plan cache's entry for a form (plans.Known) and on an ``lf.jit`` trace."""

    settings: config.Config
    function: Any
    inputs: tuple[int, ...]  # the value slot of each load
    params: tuple[tuple[int, type], ...]  # each parameter's value slot and scalar type
    shape: tuple[int, ...]
    dtype: np.dtype

    def run(self, values: list[Any]) -> np.ndarray | None:
        """The result for ``values`` in the plan's slots; None unless every array the
        kernel reads is a C-contiguous NumPy array."""
        arrays = [values[k] for k in self.inputs]
        if not all([type(a) is np.ndarray and a.flags.c_contiguous for a in arrays]):
            return None
        params = [kind(values[k]) for k, kind in self.params]
        return _launch(self.function, arrays, params, self.shape, self.dtype)


def run_known(root: Node, known: plans.Known) -> np.ndarray | None:
    """The value of ``root`` by the ready call of its form's entry ``known``: the fast
    path of an expression whose form was computed before, when its plan is one
    elementwise kernel (a cached 4-op expression at 1k elements: 7 us here, 3 of them the
    kernel). None when the general path must run (another kind of plan, views or strided
    inputs, a kernel not compiled yet)."""
    if known.ready is False:
        return None
    leaves = root.leaves
    assert leaves is not None  # a root with a form has its leaves
    result = run_direct(known.plan, [leaves[k].attrs[0] for k in known.slots], known.resize, known)
    if result is not None:
        plans.STATS["hits"] += 1
    return result


def run_direct(
    found: plans.Plan, values: list[Any], resize: plans.Resize | None, held: Any = None
) -> np.ndarray | None:
    """The result of a direct plan, computed by its flat kernel when every input is a
    C-contiguous NumPy array and an earlier call compiled that kernel: what :func:`_call`
    would do, without its bookkeeping. ``held``: an object whose ``ready`` attribute
    keeps the :class:`Ready` call for these sizes: None until one is made, False when the
    plan has no direct call, else the call (made again when the settings change). None
    when the general path must run."""
    settings = config.get()
    ready = held.ready if held is not None else None
    if ready is None or (ready and ready.settings is not settings):
        ready = _ready(found, resize, settings)
        if ready is None:
            return None
        if held is not None:
            held.ready = ready
    return ready.run(values) if ready else None


def _ready(
    found: plans.Plan, resize: plans.Resize | None, settings: config.Config
) -> Ready | Literal[False] | None:
    """``found``'s ready call for these sizes; False when the plan has no direct call, None
    when it cannot be made now (debug output on, an empty result, the kernel not compiled
    yet: the general path compiles it)."""
    direct = _direct(found)
    if direct is None:
        return False
    (root,) = direct.call.outputs
    shape = resize(root.shape) if resize else root.shape
    size = math.prod(shape)
    kernel = direct.call.kernels.get(Variant(Layout.C, _runs_parallel(size, settings), settings.math))
    if settings.debug or settings.profile or kernel is None or not size:
        return None
    return Ready(settings, kernel.function, direct.inputs, direct.params, shape, root.dtype)


def _runs_parallel(size: int, settings: config.Config) -> bool:
    """Whether a kernel whose loops cover ``size`` elements runs its parallel variant:
    below ``serial_below`` (measured: about 16k), starting threads costs more."""
    return settings.parallel and size >= settings.serial_below


def _launch(
    function: Any, arrays: list[np.ndarray], params: list[Any], shape: tuple[int, ...], dtype: np.dtype
) -> np.ndarray:
    """Run a flat elementwise kernel over C-contiguous ``arrays`` into a new result."""
    result = buffers.empty(shape, dtype)
    if len(shape) == 1:
        function(*arrays, *params, result, shape[0])
    else:
        function(*[a.reshape(-1) for a in arrays], *params, result.reshape(-1), result.size)
    return result


def _donors(call: kernels.KernelCall, dying: tuple[Node, ...]) -> tuple[Node, ...]:
    """The values an elementwise kernel may write its output over: read for the last
    time, at the same index (the epilogue after a product writes over the product), so
    each element is read before it is written, in the same iteration.
    Note: one output only; with several, a later output could load an element after an
    earlier one overwrote it (loads are emitted where first needed)."""
    if call.spec.kind != "loop" or call.spec.n_inner or len(call.outputs) != 1 or call.spec.natural:
        return ()  # Note: natural: a gather reads its table at other indices than it writes
    direct = {base for base, chain, _ in call.loads if not chain}
    viewed = {base for base, chain, _ in call.loads if chain}
    return tuple(b for b in dying if b in direct and b not in viewed)


def _donated(
    step: plans.Step, stored: dict[Node, np.ndarray], resize: plans.Resize | None
) -> tuple[int, ...]:
    """The loads whose buffer ``step``'s output is written over: those of a donor that
    is stored, C-contiguous and of the output's shape and dtype. No new allocation, and
    one buffer less in memory; the flat and rows variants then read those loads from the
    output's array (:func:`kernels.in_place`)."""
    (root,) = step.call.outputs
    if root in stored:  # the user's ``out``
        return ()
    shape = resize(root.shape) if resize else root.shape
    for base in step.donors:
        buffer = stored.get(base)
        if (
            buffer is not None
            and buffer.shape == shape
            and buffer.dtype == root.dtype
            and buffer.flags.c_contiguous
        ):
            return tuple(k for k, (b, chain, _) in enumerate(step.call.loads) if b is base and not chain)
    return ()


def _viewed(
    node: Node, stored: dict[Node, np.ndarray], values: list[Any], resize: plans.Resize | None
) -> Any:
    """The value of ``node``: a stored value or a slot's value, seen through its views."""
    if node.op is Op.INPUT:
        return values[node.attrs[0].index]
    if node.op is Op.SCALAR:
        return np.asarray(values[node.attrs[0].index], dtype=node.dtype)
    if node.op in VIEWS:
        shape = resize(node.shape) if resize else node.shape
        return apply_view(node, _viewed(node.args[0], stored, values, resize), shape, values)
    return stored[node]


def _seen(
    seen: dict[Node, Any], stored: dict[Node, np.ndarray], values: list[Any], resize: Any, node: Node
) -> Any:
    """The value of ``node`` (see :func:`_viewed`), kept in ``seen`` (a check's record)."""
    if node not in seen:
        seen[node] = _viewed(node, stored, values, resize)
    return seen[node]


def _call(
    step: plans.Step,
    stored: dict[Node, np.ndarray],
    values: list[Any],
    opts: cpu.Options,
    resize: plans.Resize | None,
    settings: config.Config,
    recorder: replay.Recorder | None = None,
) -> None:
    call = step.call
    for node, operand in call.checks:
        seen: dict[Node, Any] = {}
        check_values(node, operand, functools.partial(_seen, seen, stored, values, resize), resize)
        if recorder is not None:
            recorder.check(functools.partial(check_values, resize=resize), node, operand, seen)
    if call.spec.kind == "host":
        _host_step(call, stored, values, resize, settings, recorder)
        return
    prepared = _prepare(step, stored, values, opts, resize, settings, buffers.empty, recorder)
    if prepared is None:
        return  # nothing to write: no kernel to compile and launch for empty arrays
    variant, arrays, params, outputs, extents = prepared
    if variant.layout is Layout.BLAS:
        started = time.perf_counter() if settings.profile else 0.0
        blas.matmul(arrays[0], arrays[1], outputs[0])
        if settings.profile:
            shapes = "@".join("x".join(map(str, a.shape)) for a in arrays[:2])
            contracted = (arrays[0].shape[-1],)
            profiling.record("blas", f"{call.spec.name} {shapes}", call, arrays, outputs, started, contracted)
        if recorder is not None:
            recorder.blas(
                blas.product_for(arrays[0], arrays[1], outputs[0]), arrays[0], arrays[1], outputs[0]
            )
        return
    kernel = _kernel_of(call, variant)
    started = time.perf_counter() if settings.debug or settings.profile else 0.0  # compiled before
    if call.spec.kind == "matmul":
        kernel.function(*arrays, *outputs)
        if recorder is not None:
            recorder.kernel(kernel.function, [*arrays, *outputs], [])
    else:
        kernel.function(*arrays, *params, *outputs, *extents)
        if recorder is not None:
            slots = [(p.attrs[0].index, p.dtype.type) for p in call.params]
            recorder.kernel(kernel.function, [*arrays, *[None] * len(params), *outputs, *extents], slots)
    if settings.profile:
        read = arrays + [outputs[0]] * len(variant.donated)  # loads read from the output's buffer
        profiling.record("kernel", kernel.name, call, read, outputs, started, extents)
    if settings.debug:
        _report(kernel, extents, time.perf_counter() - started)


def _host_step(
    call: kernels.KernelCall,
    stored: dict[Node, np.ndarray],
    values: list[Any],
    resize: plans.Resize | None,
    settings: config.Config,
    recorder: replay.Recorder | None,
) -> None:
    arrays = [
        _viewed(kernels.viewed_node(base, chain), stored, values, resize) for base, chain, _ in call.loads
    ]
    started = time.perf_counter() if settings.profile else 0.0
    stored[call.outputs[0]] = host.compute(call.outputs[0], arrays)
    if settings.profile:
        profiling.record("host", call.spec.name, call, arrays, [stored[call.outputs[0]]], started, ())
    if recorder is not None:
        recorder.host(call.outputs[0], host.compute, arrays, stored[call.outputs[0]])


def _kernel_of(call: kernels.KernelCall, variant: Variant) -> CompiledKernel:
    """The compiled kernel of ``call``'s ``variant`` (compiled on first use)."""
    kernel = call.kernels.get(variant)
    if kernel is None:
        kernel = kernel_for(variant.spec(call.spec), cpu.Options(variant.parallel, variant.math))
        kernel.compile()
        call.kernels[variant] = kernel
    return kernel


_Prepared = tuple[Variant, list[np.ndarray], list[Any], list[np.ndarray], tuple[int, ...]]


def _prepare(
    step: plans.Step,
    stored: dict[Node, np.ndarray],
    values: list[Any],
    opts: cpu.Options,
    resize: plans.Resize | None,
    settings: config.Config,
    allocate: Callable[[tuple[int, ...], np.dtype], np.ndarray],
    recorder: replay.Recorder | None = None,
) -> _Prepared | None:
    """The one place a kernel call's variant is chosen: its arrays as the variant takes
    them, its parameters, outputs (``allocate``d, or written over a donated buffer) and
    extents; None when its outputs are empty."""
    call = step.call
    viewed = [kernels.viewed_node(base, chain) for base, chain, _ in call.loads]
    arrays = [_viewed(node, stored, values, resize) for node in viewed]
    params = [p.dtype.type(values[p.attrs[0].index]) for p in call.params]
    donated = _donated(step, stored, resize) if step.donors else ()
    if donated:
        stored[call.outputs[0]] = arrays[donated[0]]
        if recorder is not None:
            recorder.aliased(call.outputs[0], arrays[donated[0]])
    outputs = []
    for root in call.outputs:
        if root not in stored:  # else the user's ``out``, or a donated buffer
            stored[root] = allocate(resize(root.shape) if resize else root.shape, root.dtype)
            if recorder is not None:
                recorder.allocated(root, stored[root])
        outputs.append(stored[root])
    if not any(o.size for o in outputs):
        return None
    if step.arranged:
        loads = zip(arrays, call.spec.loads, call.loads, strict=True)
        arrays = [
            a if ld.ndim is not None else arrange(a, inner, call, resize) for a, ld, (_, _, inner) in loads
        ]
        outputs = [arrange(o, s.inner, call, resize) for o, s in zip(outputs, call.spec.stores, strict=True)]
    if uses_blas(call.spec):
        return Variant(Layout.BLAS), arrays, params, outputs, call.extents
    extents = resize(call.extents) if resize else call.extents
    layout, rows, arrays, outputs, extents = _layout(call, arrays, outputs, extents, recorder)
    # Note: the strided variants read a donated buffer as an input (the same elements,
    # at the same index: correct, and they rarely vectorize anyway).
    donated = donated if layout in (Layout.C, Layout.ROWS) else ()
    if donated:  # read from the output's array
        arrays = [a for k, a in enumerate(arrays) if k not in donated]
    parallel = _runs_parallel(math.prod(extents), settings)
    if step.after_blas and parallel:
        parallel = numba.get_num_threads() > _SERIAL_AFTER_BLAS_THREADS
    tables = [a for a, ld in zip(arrays, kernels.arrays_read(call.spec), strict=False) if ld.ndim is not None]
    contiguous_tables = bool(tables) and all([t.flags.c_contiguous for t in tables])
    variant = Variant(layout, parallel, opts.math, rows, donated, contiguous_tables)
    return variant, arrays, params, outputs, extents


def variants(roots: Sequence[Node]) -> list[tuple[kernels.KernelCall, Variant | None]]:
    """Each call of ``roots``' plan and the variant it will run with their inputs as they
    are now (None for a host step or an empty output): the run's own choice, made over
    stand-ins for the stored values (np.empty, never written), no kernel launched."""
    found, values, resize = plans.plan_for(roots)
    stored: dict[Node, np.ndarray] = {}
    settings, opts = config.get(), options()
    chosen: list[tuple[kernels.KernelCall, Variant | None]] = []
    for step in _schedule(found):
        call = step.call
        if call.spec.kind == "host":
            root = call.outputs[0]
            stored[root] = np.empty(resize(root.shape) if resize else root.shape, root.dtype)
            chosen.append((call, None))
            continue
        prepared = _prepare(step, stored, values, opts, resize, settings, np.empty)
        chosen.append((call, prepared[0] if prepared else None))
        for base in step.dying:
            stored.pop(base, None)
    return chosen


def variant_kernel(call: kernels.KernelCall, variant: Variant | None) -> CompiledKernel:
    """The kernel ``call`` runs as ``variant`` (the any-strides one for None or BLAS),
    loaded, not compiled."""
    if variant is None or variant.layout is Layout.BLAS:
        return kernel_for(call.spec, options())
    return kernel_for(variant.spec(call.spec), cpu.Options(variant.parallel, variant.math))


# Note: OpenBLAS's threads spin for a while after a product, each on a core, so a
# parallel kernel right after one shares every core but the caller's with a spinning
# thread: with n threads it takes about 2/n of the serial time plus the cost of the
# fork, no gain for n = 2. Measured on 2 cores (maximum(A @ B + bias, 0), serial against
# parallel epilogue): 64 x 128x128 f64 10.5 vs 11.1 ms, 1024 f64 33.1 vs 34.3 ms,
# tall-skinny 100000x64 36 vs 40 ms. With more threads the parallel epilogue wins.
_SERIAL_AFTER_BLAS_THREADS = 2


def uses_blas(spec: kernels.KernelSpec) -> bool:
    """The written rule for matmul: float products go to NumPy's matmul (BLAS: blocked,
    vectorized, multi-threaded, far ahead of a simple loop); integer and bool products,
    which BLAS lacks, run the generated kernel. Epilogues run fused after either."""
    return spec.kind == "matmul" and spec.stores[0].dtype.kind == "f"


def _layout(
    call: kernels.KernelCall,
    arrays: list[np.ndarray],
    outputs: list[np.ndarray],
    extents: tuple[int, ...],
    recorder: replay.Recorder | None = None,
) -> tuple[Layout, tuple[str, ...], list[np.ndarray], list[np.ndarray], tuple[int, ...]]:
    """Which layout of the kernel fits these arrays, how a ROWS kernel reads each load,
    and the arrays as it wants them: C (all C-contiguous; elementwise kernels flattened),
    F, ROWS (elementwise over contiguous arrays and broadcasts of them), PADDED (strided
    elementwise arrays lifted to ELEMENTWISE_RANK axes) or ANY (any strides)."""
    spec = call.spec
    elementwise = spec.kind == "loop" and spec.n_inner == 0
    if spec.kind == "loop" and not elementwise:
        arrays = _compact_broadcasts(spec, arrays, math.prod(extents), recorder)
    contiguous = all([a.flags.c_contiguous for a in arrays]) and all([o.flags.c_contiguous for o in outputs])
    if spec.kind == "scatter":  # its loops keep the domain's axes, its output the table's
        return Layout.ANY, (), arrays, outputs, extents
    if spec.kind == "scan":  # rows of any strides, or all C-contiguous
        return Layout.C if contiguous else Layout.ANY, (), arrays, outputs, extents
    flat = contiguous and len(extents) == 1 and not any(ld.ndim for ld in spec.loads)
    if spec.natural and elementwise and not flat:
        return Layout.ANY, (), arrays, outputs, extents  # its loops keep the domain's axes, its tables theirs
    if contiguous:
        if elementwise and len(extents) != 1:  # one flat loop
            flattened = [a.reshape(-1) for a in arrays], [o.reshape(-1) for o in outputs]
            return Layout.C, (), *flattened, (outputs[0].size,)
        return Layout.C, (), arrays, outputs, extents
    if not elementwise and all(_numba_layout(a) in ("F", "C1") for a in [*arrays, *outputs]):
        return Layout.F, (), arrays, outputs, extents
    rows = _as_rows(arrays, outputs) if elementwise else None
    if rows is not None:
        return rows
    if elementwise and spec.n_outer < kernels.ELEMENTWISE_RANK:
        lift = (1,) * (kernels.ELEMENTWISE_RANK - spec.n_outer)
        lifted = [a.reshape(lift + a.shape) for a in arrays], [o.reshape(lift + o.shape) for o in outputs]
        return Layout.PADDED, (), *lifted, lift + extents
    return Layout.ANY, (), arrays, outputs, extents


_SMALL_COPY = 4096  # elements: a copy of this many costs about a microsecond


def _compact_broadcasts(
    spec: kernels.KernelSpec, arrays: list[np.ndarray], domain: int, recorder: replay.Recorder | None
) -> list[np.ndarray]:
    """A row kernel's loads made C-contiguous (F-contiguous for a leading-axis reduction,
    whose C arrays it sees transposed) where that is cheap, so that a broadcast
    (a stride-0 view: a bias, a per-row cotangent) does not send the kernel to its
    any-strides variant, several times slower (bench_grad.py's cross-entropy and
    layernorm; benchmarks/README.md): a load read at index 0 along the axes it repeats
    along (``Load.fixed``) as its first slice there, and a small one (at most 1/16 of the
    domain's elements, or _SMALL_COPY) copied."""
    made = []
    # Note: a leading-axis reduction sees C arrays transposed, in F order; unless its loads are
    # all C-contiguous as it sees them (F arrays), small ones are copied into F order
    transposed = spec.leading_reduction and not all([a.flags.c_contiguous for a in arrays if a.ndim > 1])
    for a, load in zip(arrays, spec.loads, strict=True):
        if load.ndim is None and not _in_order(a, transposed):
            if load.fixed:
                a = a[tuple(slice(0, 1) if k in load.fixed else slice(None) for k in range(a.ndim))]
            if not _in_order(a, transposed) and a.size <= max(domain // 16, _SMALL_COPY):
                copy = np.asfortranarray(a) if transposed else np.ascontiguousarray(a)
                if recorder is not None:
                    recorder.copied(a, copy)
                a = copy
        made.append(a)
    return made


def _in_order(a: np.ndarray, transposed: bool) -> bool:
    return bool(a.flags.f_contiguous if transposed else a.flags.c_contiguous)


def _as_rows(
    arrays: list[np.ndarray], outputs: list[np.ndarray]
) -> tuple[Layout, tuple[str, ...], list[np.ndarray], list[np.ndarray], tuple[int, ...]] | None:
    """C-contiguous outputs and inputs that are C-contiguous or broadcast (stride 0)
    along whole leading or trailing axes, as (rows, columns) arrays for a rows kernel
    (:func:`kernels.broadcast_rows`): the split that gives the longest rows, or None."""
    shape = outputs[0].shape
    if len(shape) < 2 or 0 in shape or not all(o.flags.c_contiguous for o in outputs):
        return None
    if any(a.shape != shape for a in arrays):
        return None
    for split in range(1, len(shape)):
        found = [_row_view(a, split) for a in arrays]
        views = [view for view in found if view is not None]
        if len(views) != len(arrays):
            continue
        rows, columns = math.prod(shape[:split]), math.prod(shape[split:])
        table: dict[str, tuple[int, ...]] = {"full": (rows, columns), "row": (columns,), "col": (rows,)}
        parts = [_row_part(a, view, split) for a, view in zip(arrays, views, strict=True)]
        picked = [part.reshape(table[view]) for part, view in zip(parts, views, strict=True)]
        return Layout.ROWS, tuple(views), picked, [o.reshape(rows, columns) for o in outputs], (rows, columns)
    return None


def _row_view(a: np.ndarray, split: int) -> str | None:
    """How a rows kernel split after axis ``split`` can read ``a``: "full", "row", "col"."""
    if a.flags.c_contiguous:
        return "full"
    unit = [s == 0 or n == 1 for s, n in zip(a.strides, a.shape, strict=True)]
    if all(unit[:split]) and _row_part(a, "row", split).flags.c_contiguous:
        return "row"
    if all(unit[split:]) and _row_part(a, "col", split).flags.c_contiguous:
        return "col"
    return None


def _row_part(a: np.ndarray, view: str, split: int) -> np.ndarray:
    """The part of ``a`` a rows kernel reads: all of it, its first row, or its first column."""
    if view == "row":
        return a[(0,) * split]
    if view == "col":
        return a[(slice(None),) * split + (0,) * (a.ndim - split)]
    return a


def _numba_layout(a: np.ndarray) -> str:
    """The layout Numba types ``a`` with ('C1' for contiguous arrays of < 2 axes)."""
    if a.ndim < 2 and a.flags.c_contiguous:
        return "C1"
    return "C" if a.flags.c_contiguous else "F" if a.flags.f_contiguous else "A"


def arrange(
    value: np.ndarray, inner: bool, call: kernels.KernelCall, resize: plans.Resize | None
) -> np.ndarray:
    """Present an array in the kernel's index space: kept axes first, reduced last
    (inner), or the kept axes alone (outer). Both are views, never copies."""
    if call.spec.kind not in ("loop", "scan") or call.spec.n_inner == 0:
        return value
    if inner:
        return value.transpose(call.permutation)
    return value.reshape(resize(call.kept) if resize else call.kept)


def _report_plan(roots: Sequence[Node], grouped: fuse.Plan) -> None:
    lines = ["[lazyfuse] graph before fusion:", *format_graph(roots), "[lazyfuse] after fusion:"]
    lines += format_fusion(roots, grouped.groups, grouped.decisions)
    print("\n".join(lines), file=sys.stderr)


def _report(kernel: CompiledKernel, extents: tuple[int, ...], seconds: float) -> None:
    print(f"[lazyfuse] {kernel.name} extents={extents} {seconds * 1e3:.3f} ms", file=sys.stderr)
    if config.get().debug >= 3:
        print(kernel.source, file=sys.stderr)
