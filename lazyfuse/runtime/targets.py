"""The targets lazyfuse runs on, each one object behind one small protocol, registered in
one table (:data:`TARGETS`): ``cpu`` (Numba prange kernels and BLAS), ``cuda`` (Numba CUDA
kernels) and ``dask`` (lazyfuse's CPU kernels per chunk, in a Dask graph).

The front end (``tensor.py``, ``jit.py``) picks a target with :func:`chosen` and calls only
this protocol; nothing outside a target's own module asks which target it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from lazyfuse.errors import LazyfuseError
from lazyfuse.graph.explain import format_fusion, format_graph
from lazyfuse.graph.kernels import KernelCall, viewed_node
from lazyfuse.graph.node import Node
from lazyfuse.graph.passes import PIPELINE
from lazyfuse.runtime import blas, cuda_execute, dask_target, execute, plans


class Target(Protocol):
    """What every target does. ``planned`` is the graph its plans are made from (lf.jit
    keeps that plan and calls ``run_plan`` with new values in its slots)."""

    name: str

    def run(self, roots: Sequence[Node], out: np.ndarray | None) -> list[Any]: ...

    def planned(self, roots: Sequence[Node]) -> list[Node]: ...

    def run_plan(
        self, found: plans.Plan, values: list[Any], resize: plans.Resize | None, held: Any
    ) -> list[Any]: ...

    def kernels(self, roots: Sequence[Node]) -> list[Any]: ...

    def describe(self, written: Sequence[Node]) -> list[str]: ...

    def how_calls_run(self, roots: Sequence[Node]) -> tuple[plans.Plan, list[str], list[str]]: ...


def _fusion(written: Sequence[Node]) -> tuple[list[str], list[Node], list[KernelCall]]:
    """explain()'s lines for the graph after passes and after fusion, the planned roots
    and the kernel calls of the plan."""
    roots, grouped, calls = execute.plan(written)
    lines = []
    if roots != list(written):
        lines.append(f"after passes ({', '.join(p.__name__ for p in PIPELINE)}):")
        lines.extend("  " + ln for ln in format_graph(roots))
    lines.append("after fusion:")
    lines.extend("  " + ln for ln in format_fusion(roots, grouped.groups, grouped.decisions))
    return lines, roots, calls


def _kernel_lines(kernel: Any, ran: str, variant: str = "") -> list[str]:
    lines = [f"  {kernel.name}: file {kernel.path}{ran}"] + ([f"    {variant}"] if variant else [])
    return lines + ["    | " + ln for ln in kernel.source.rstrip("\n").split("\n")]


def _host_steps(calls: Sequence[KernelCall]) -> list[str]:
    hosted = [call.spec.name for call in calls if call.spec.kind == "host"]
    return [f"host steps (NumPy, not kernels): {', '.join(hosted)}"] if hosted else []


class CpuTarget:
    """Parallel (prange) and serial kernels on this machine; float products through BLAS."""

    name = "cpu"

    def run(self, roots: Sequence[Node], out: np.ndarray | None) -> list[Any]:
        return execute.run(roots, out=out)

    def planned(self, roots: Sequence[Node]) -> list[Node]:
        return list(roots)

    def run_plan(
        self, found: plans.Plan, values: list[Any], resize: plans.Resize | None, held: Any
    ) -> list[Any]:
        return execute.run_plan(found, values, resize, held=held)

    def kernels(self, roots: Sequence[Node]) -> list[Any]:
        return execute.compiled(roots)

    def describe(self, written: Sequence[Node]) -> list[str]:
        """The kernels as they will run on these inputs: each call's variant (chosen as
        the run chooses it) and that variant's source."""
        lines, _, _ = _fusion(written)
        every = execute.variants(written)
        chosen = [(call, variant) for call, variant in every if call.spec.kind != "host"]
        lines.append(f"kernels ({len(chosen)}):")
        for call, variant in chosen:
            kernel = execute.variant_kernel(call, variant)
            lines += _kernel_lines(kernel, _runs_as(call), f"variant: {variant or 'none (empty output)'}")
        return lines + _host_steps([call for call, _ in every])

    def how_calls_run(self, roots: Sequence[Node]) -> tuple[plans.Plan, list[str], list[str]]:
        """A fresh plan of ``roots`` and per call: a short note ("BLAS", "host step") and
        how it runs: a float product as BLAS, any other call as the variant the run
        chooses for these inputs (:func:`execute.variants`, on the cached plan, whose
        calls are these in the same order)."""
        made = plans.fresh_plan(roots)
        chosen = execute.variants(roots)
        same = [call.spec.name for call, _ in chosen] == [call.spec.name for call in made.calls]
        notes, runs = [], []
        for k, call in enumerate(made.calls):
            variant = chosen[k][1] if same else None
            if call.spec.kind == "host":
                notes.append("host step")
                runs.append("host step: computed by NumPy, not a kernel")
            elif execute.uses_blas(call.spec):
                notes.append("BLAS")
                runs.append(f"BLAS (the rule for float products): {_blas_choice(call)}")
            else:
                notes.append("")
                shown = variant or ("none (empty output: nothing runs)" if same else "chosen when it runs")
                runs.append(f"variant: {shown}")
        return made, notes, runs


def _blas_choice(call: KernelCall) -> str:
    """Which BLAS product a float product's call runs (runtime/blas.py's rule)."""
    a, b = (viewed_node(base, chain) for base, chain, _ in call.loads)
    return blas.choice(a.shape, b.shape, (a.dtype, b.dtype, call.outputs[0].dtype))


def _runs_as(call: KernelCall) -> str:
    """How a CPU kernel call runs, where that is not its generated source: float
    products go to BLAS (see execute.uses_blas and runtime/blas.py)."""
    if not execute.uses_blas(call.spec):
        return ""
    return f" (runs as BLAS, by the rule for float products: {_blas_choice(call)})"


class CudaTarget:
    """Numba CUDA kernels (or Numba's simulator); results come back as NumPy arrays."""

    name = "cuda"

    def run(self, roots: Sequence[Node], out: np.ndarray | None) -> list[Any]:
        return cuda_execute.run(roots, out=out)

    def planned(self, roots: Sequence[Node]) -> list[Node]:
        return cuda_execute.lowered(roots)

    def run_plan(
        self, found: plans.Plan, values: list[Any], resize: plans.Resize | None, held: Any
    ) -> list[Any]:
        return cuda_execute.run_plan(found, values, resize)

    def kernels(self, roots: Sequence[Node]) -> list[Any]:
        return cuda_execute.compiled(roots)  # type: ignore[no-any-return]

    def describe(self, written: Sequence[Node]) -> list[str]:
        # Note: a full reduction is two kernels here (no BLAS): no call to pair each with.
        lines, roots, calls = _fusion(written)
        found = self.kernels(roots)
        lines.append(f"kernels ({len(found)}):")
        for kernel in found:
            lines += _kernel_lines(kernel, "")
        return lines + _host_steps(calls)

    def how_calls_run(self, roots: Sequence[Node]) -> tuple[plans.Plan, list[str], list[str]]:
        """A fresh plan of ``roots`` and how each call runs: a matmul and the elementwise
        call after it can be one launch (the call runs in the product's store), and a
        full reduction is two launches."""
        made = plans.fresh_plan(self.planned(roots))
        index = {id(call): k for k, call in enumerate(made.calls)}
        notes = [""] * len(made.calls)
        runs = ["CUDA kernel"] * len(made.calls)
        for k, call in enumerate(made.calls):
            if call.spec.kind == "host":
                notes[k], runs[k] = "host step", "host step: computed by NumPy, not a kernel"
            elif call.spec.kind == "loop" and call.spec.n_outer == 0:
                notes[k], runs[k] = "two launches", "CUDA kernel: a full reduction, in two launches"
            elif call.spec.kind == "matmul":
                notes[k], runs[k] = "matmul kernel", "CUDA matmul kernel"
        for step in cuda_execute.steps(made):
            if step.epilogue is not None:
                k, matmul = index[id(step.epilogue[0])], index[id(step.call)]
                notes[k] = f"in kernel {matmul}'s store"
                runs[k] = f"CUDA: runs in the store of kernel {matmul}'s matmul (one launch)"
        return made, notes, runs


class DaskTarget:
    """A Dask graph whose chunk tasks run lazyfuse's CPU kernels (runtime/dask_target.py);
    chosen whenever an input is a Dask array."""

    name = "dask"

    def run(self, roots: Sequence[Node], out: np.ndarray | None) -> list[Any]:
        results = dask_target.compute(roots)
        if out is not None:
            np.copyto(out, results[0])
            results[0] = out
        return results

    def planned(self, roots: Sequence[Node]) -> list[Node]:
        raise LazyfuseError(
            "lf.jit: an argument or constant is a Dask array; call the function without "
            "lf.jit (Dask builds and caches its own graph, and each chunk's kernels are compiled once)"
        )

    def run_plan(
        self, found: plans.Plan, values: list[Any], resize: plans.Resize | None, held: Any
    ) -> list[Any]:
        raise AssertionError("a Dask expression has no lf.jit plan (see planned)")

    def kernels(self, roots: Sequence[Node]) -> list[Any]:
        return dask_target.lower(roots)[0].kernels()

    def describe(self, written: Sequence[Node]) -> list[str]:
        lowering = dask_target.lower(written)[0]
        lines = lowering.describe()
        for kernel in lowering.kernels():
            lines += _kernel_lines(kernel, "")
        return lines

    def how_calls_run(self, roots: Sequence[Node]) -> tuple[plans.Plan, list[str], list[str]]:
        raise LazyfuseError(
            "visualize: a Dask array input makes this a Dask expression, whose chunks run "
            "lazyfuse's kernels inside Dask's graph: t.explain() prints them, and "
            "t.to_dask().visualize() draws Dask's task graph"
        )


TARGETS: dict[str, Target] = {t.name: t for t in (CpuTarget(), CudaTarget(), DaskTarget())}
CHOSEN_BY_NAME = ("cpu", "cuda")  # the dask target is chosen by its inputs, not by name


def chosen(name: str, roots: Sequence[Node]) -> Target:
    """The target that computes ``roots``: the Dask target when an input is a Dask array
    (whatever ``name`` says, unless it names CUDA: an error), else the one named."""
    if name not in CHOSEN_BY_NAME:
        raise LazyfuseError(f"compute: unknown target {name!r}; available: {', '.join(CHOSEN_BY_NAME)}")
    if dask_target.has_dask_inputs(roots):
        if name == "cuda":
            raise LazyfuseError(
                "compute: target 'cuda' with a Dask array input; Dask expressions run lazyfuse's "
                "CPU kernels per chunk (compute the Dask array first to run it on the GPU)"
            )
        return TARGETS["dask"]
    return TARGETS[name]
