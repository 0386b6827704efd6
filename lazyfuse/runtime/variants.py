"""Which variant of a kernel a CPU call runs, as one value.

A kernel is generated for arrays of any strides; a call whose arrays allow it runs a
variant with the same body: the arrays' :class:`Layout`, serial or parallel, in place
(reading a dying operand from its output's buffer), with C-contiguous tables, and the
math library. :func:`lazyfuse.runtime.execute._prepare` chooses it, once per call, in one
place; the compiled kernel is looked up by it, and explain() shows it (see
:func:`lazyfuse.runtime.execute.variants`).
"""

from __future__ import annotations

from dataclasses import dataclass

from lazyfuse.graph import kernels
from lazyfuse.graph.kernels import KernelSpec, Layout


@dataclass(frozen=True)
class Variant:
    """The variant a call runs. ``rows``: for ROWS, how each load is read ("full", "row",
    "col"); ``donated``: the loads read from the output's buffer."""

    layout: Layout
    parallel: bool = False
    math: str = "fast"
    rows: tuple[str, ...] = ()
    donated: tuple[int, ...] = ()
    contiguous_tables: bool = False

    def spec(self, spec: KernelSpec) -> KernelSpec:
        """The spec of this variant of ``spec``'s kernel."""
        if self.layout is Layout.PADDED:
            spec = kernels.padded(spec)
        elif self.layout is Layout.ROWS:
            spec = kernels.broadcast_rows(spec, self.rows)
        elif self.layout in (Layout.C, Layout.F):
            spec = kernels.contiguous(spec, self.layout)
        if self.donated:
            spec = kernels.in_place(spec, self.donated)
        return kernels.contiguous_tables(spec) if self.contiguous_tables else spec

    def __str__(self) -> str:
        if self.layout is Layout.BLAS:
            return "BLAS"
        parts = [self.layout.value, "parallel" if self.parallel else "serial"]
        if self.rows:
            parts.append("loads read as " + ", ".join(self.rows))
        if self.donated:
            parts.append(f"in place (loads {list(self.donated)} read from the output's buffer)")
        if self.contiguous_tables:
            parts.append("C-contiguous tables")
        return ", ".join(parts)
