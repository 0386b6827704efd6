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


def _runs_as(call: KernelCall) -> str:
    """How a CPU kernel call runs, where that is not its generated source: float
    products go to BLAS (see execute.uses_blas and runtime/blas.py)."""
    if not execute.uses_blas(call.spec):
        return ""
    a, b = (viewed_node(base, chain) for base, chain, _ in call.loads)
    dtypes = (a.dtype, b.dtype, call.outputs[0].dtype)
    return f" (runs as BLAS, by the rule for float products: {blas.choice(a.shape, b.shape, dtypes)})"


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
        return dask_target.lower(roots).kernels()

    def describe(self, written: Sequence[Node]) -> list[str]:
        lowering = dask_target.lower(written)
        lines = lowering.describe()
        for kernel in lowering.kernels():
            lines += _kernel_lines(kernel, "")
        return lines


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
