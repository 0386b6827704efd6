"""Profile against the machine: ``with lf.profile() as p: ...`` times every kernel call,
float product (BLAS) and host step of the block (lazyfuse/runtime/profiling.py records
them) and ``p.table()`` prints, per kernel: calls, median and total time, the bytes each
call reads and writes, GB/s, the flops and transcendental calls counted from the kernel's
spec, GFLOP/s, what bounds it (memory or compute, by the roofline rule) and the fraction
of that bound it reaches. The bounds are this machine's measured peaks (:func:`peak`: a
STREAM-like triad and a BLAS GEMM), measured once and kept in the cache directory.

Also: LAZYFUSE_PROFILE=1 prints the table of the whole run at exit, and
``lazyfuse profile script.py`` runs a script under a profile; ``lazyfuse peak`` measures.

Note: the counts are of the operations the spec names, not of the machine code: a
transcendental call (exp, tanh, ...) is counted apart from flops, and the roofline
counts it as TRANSCENDENTAL_FLOPS flops (a vectorized polynomial and its range
reduction); a user function (lf.map, lf.reduce) counts no flops.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import json
import math
import os
import platform
import runpy
import statistics
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numba
import numpy as np

from lazyfuse import config
from lazyfuse.graph import kernels
from lazyfuse.graph.ops import REDUCTION, Op
from lazyfuse.runtime import compile as runtime_compile
from lazyfuse.runtime import profiling

# One call of a math function, in flops, for the roofline's bound (see the module's note).
TRANSCENDENTAL_FLOPS = 20

TRANSCENDENTAL = frozenset(
    {
        Op.EXP, Op.EXP2, Op.EXPM1, Op.LOG, Op.LOG2, Op.LOG10, Op.LOG1P, Op.SIN, Op.COS,
        Op.TANH, Op.ARCSIN, Op.ARCCOS, Op.ARCTAN, Op.SINH, Op.COSH, Op.ERF, Op.SIGMOID,
        Op.POW, Op.ARCTAN2, Op.HYPOT, Op.LOGADDEXP,
    }
)  # fmt: skip
# one flop each on float operands (a comparison or a rounding is one instruction)
ARITHMETIC = frozenset(
    {
        Op.NEG, Op.ABS, Op.SQRT, Op.SQUARE, Op.RECIPROCAL, Op.ADD, Op.SUB, Op.MUL, Op.TRUEDIV,
        Op.FLOORDIV, Op.MOD, Op.MAXIMUM, Op.MINIMUM, Op.RELU, Op.LT, Op.LE, Op.GT, Op.GE,
        Op.EQ, Op.NE, Op.FLOOR, Op.CEIL, Op.TRUNC, Op.RINT, Op.SIGN,
    }
)  # fmt: skip
FOLDS = frozenset(REDUCTION)  # sum, prod, max, min, argmax, argmin: one op per element

__all__ = ["Profile", "peak", "profile"]


# Counting the work a call does ---------------------------------------------------------


def _is_float(dtypes: Sequence[np.dtype]) -> bool:
    return any(np.dtype(d).kind in "fc" for d in dtypes)


def _domain(call: kernels.KernelCall, elements: int, extents: tuple[int, ...] = ()) -> tuple[int, int]:
    """(rows, domain): how many times the kernel's per-row code and its per-element code
    run, from the loop ``extents`` the call ran with; without them (an event of another
    source), ``call.extents`` (the sizes the plan was made for) scaled by the elements
    the call wrote."""
    if extents:
        return math.prod(extents[: call.spec.n_outer]), math.prod(extents)
    extents = call.extents
    rows, domain = math.prod(extents[: call.spec.n_outer]), math.prod(extents)
    planned = max((math.prod(o.shape) for o in call.outputs), default=0)
    if planned and elements != planned:
        rows, domain = rows * elements // planned, domain * elements // planned
    return rows, domain


def counted_work(
    call: kernels.KernelCall, elements: int, extents: tuple[int, ...] = (), contracted: int | None = None
) -> tuple[int, int]:
    """(flops, transcendental calls) of one call of ``call``'s kernel, counted from its
    spec: each arithmetic op on floats is one flop, each math function one
    transcendental call, each built-in fold of floats one flop per element it folds; an
    op runs once per row (per-row values) or per element of the loop domain. A float
    product of (m, k) by (k, n) is 2 m k n flops per batch (``contracted``: the k it ran
    with; else the plan's, which a plan made at other sizes may not share)."""
    spec = call.spec
    if spec.kind == "matmul":
        if not _is_float([spec.stores[0].dtype]):
            return 0, 0
        base, chain, _ = call.loads[0]
        k = contracted if contracted is not None else kernels.viewed_node(base, chain).shape[-1]
        return 2 * elements * k, 0
    if spec.kind == "host":
        return 0, 0
    rows, domain = _domain(call, elements, extents)
    flops = transcendentals = 0
    for expr in spec.exprs:
        times = domain if expr.inner else rows
        if expr.op in TRANSCENDENTAL:
            transcendentals += times
        elif expr.op in ARITHMETIC and _is_float(expr.loop or expr.arg_dtypes):
            flops += times
    for fold in spec.accumulates:
        if fold.op in FOLDS and _is_float([fold.value_dtype]):
            flops += domain
    return flops, transcendentals


# The profile ---------------------------------------------------------------------------


@dataclass
class _Kernel:
    """What a profile saw of one kernel (or BLAS product, or host step)."""

    kind: str
    seconds: list[float] = field(default_factory=list)
    bytes_read: int = 0
    bytes_written: int = 0
    flops: int = 0
    transcendentals: int = 0
    # per call, per second: bytes moved, flops, flop-equivalent work (the roofline's)
    byte_rates: list[float] = field(default_factory=list)
    flop_rates: list[float] = field(default_factory=list)
    work_rates: list[float] = field(default_factory=list)


class Profile:
    """The calls of a block, by kernel. ``rows()`` gives the numbers, ``table()`` prints them (``text()``, and
    ``print(p)``) a table, ``roofline(path)`` a plot. ``peaks``: the machine's peak
    (``{"bandwidth": bytes/s, "flops": flop/s}``), else :func:`peak`'s, measured once."""

    def __init__(self, peaks: dict[str, float] | None = None) -> None:
        self.kernels: dict[tuple[str, str], _Kernel] = {}
        self.compiles = 0
        self.compile_seconds = 0.0
        self._peaks = peaks
        self._lock = threading.Lock()

    def add(self, event: profiling.Event) -> None:
        """One timed call (a collector of lazyfuse.runtime.profiling)."""
        kind = event.call.spec.kind if event.kind == "kernel" else event.kind
        flops, transcendentals = counted_work(
            event.call,
            event.elements,
            event.extents if event.kind == "kernel" else (),
            event.extents[0] if event.kind == "blas" else None,
        )
        moved = event.bytes_read + event.bytes_written
        seconds = max(event.seconds, 1e-9)
        with self._lock:
            seen = self.kernels.setdefault((kind, event.name), _Kernel(kind))
            seen.seconds.append(event.seconds)
            seen.bytes_read += event.bytes_read
            seen.bytes_written += event.bytes_written
            seen.flops += flops
            seen.transcendentals += transcendentals
            seen.byte_rates.append(moved / seconds)
            seen.flop_rates.append(flops / seconds)
            seen.work_rates.append((flops + TRANSCENDENTAL_FLOPS * transcendentals) / seconds)

    def peaks(self) -> dict[str, float]:
        if self._peaks is None:
            self._peaks = peak()
        return self._peaks

    def rows(self) -> list[dict[str, Any]]:
        """One dict per kernel, the longest total time first, then a "compile" row when
        the block compiled (or loaded from disk) any kernel. Bytes, flops and
        transcendental calls are per call (the mean over its calls); GB/s and GFLOP/s
        the median over calls; ``bound`` is "memory" or "compute" by the roofline rule
        and ``fraction_of_bound`` the share of that bound's peak reached."""
        with self._lock:
            seen = list(self.kernels.items())
        rows = [self._row(name, k) for (_, name), k in seen]
        rows.sort(key=lambda r: -r["total_s"])
        if self.compiles or self.compile_seconds:
            rows.append(self._compile_row())
        return rows

    def _row(self, name: str, seen: _Kernel) -> dict[str, Any]:
        calls = len(seen.seconds)
        byte_rate, work_rate = statistics.median(seen.byte_rates), statistics.median(seen.work_rates)
        work = (seen.flops + TRANSCENDENTAL_FLOPS * seen.transcendentals) / calls
        moved = (seen.bytes_read + seen.bytes_written) / calls
        bound, fraction = self._bound(work, moved, byte_rate, work_rate)
        return {
            "name": name,
            "kind": seen.kind,
            "calls": calls,
            "median_s": statistics.median(seen.seconds),
            "total_s": sum(seen.seconds),
            "bytes_read": seen.bytes_read / calls,
            "bytes_written": seen.bytes_written / calls,
            "gbps": byte_rate / 1e9,
            "flops": seen.flops / calls,
            "transcendentals": seen.transcendentals / calls,
            "gflops": statistics.median(seen.flop_rates) / 1e9,
            # flop-equivalent work (a transcendental call is TRANSCENDENTAL_FLOPS flops)
            "intensity": work / moved if moved else math.inf,
            "work_gflops": work_rate / 1e9,
            "bound": bound,
            "fraction_of_bound": fraction,
        }

    def _bound(self, work: float, moved: float, byte_rate: float, work_rate: float) -> tuple[str, float]:
        """The roofline rule: a kernel whose flops per byte are below the machine's
        (peak flop/s over peak bytes/s) is bound by memory, else by compute."""
        peaks = self.peaks()
        ridge = peaks["flops"] / peaks["bandwidth"]
        if moved and work / moved < ridge:
            return "memory", byte_rate / peaks["bandwidth"]
        return "compute", work_rate / peaks["flops"]

    def _compile_row(self) -> dict[str, Any]:
        calls = self.compiles
        return {
            "name": "compile",
            "kind": "compile",
            "calls": calls,
            "median_s": self.compile_seconds / calls if calls else self.compile_seconds,
            "total_s": self.compile_seconds,
            **dict.fromkeys(("bytes_read", "bytes_written", "gbps", "flops", "transcendentals")),
            **dict.fromkeys(("gflops", "intensity", "work_gflops", "bound", "fraction_of_bound")),
        }

    def text(self) -> str:
        """The rows as a text table, with the peaks they are measured against."""
        return format_table(self.rows(), self.peaks())

    def table(self, file: TextIO | None = None) -> None:
        """Print :meth:`text` (to ``file``, default stdout)."""
        print(self.text(), file=file)

    def __str__(self) -> str:
        return self.text()

    def roofline(self, path: str | os.PathLike[str]) -> Path:
        """Draw the roofline (log-log: flops per byte against GFLOP/s, the bandwidth
        and compute ceilings) with each kernel as a point, into ``path`` (a .png)."""
        try:
            from matplotlib.backends.backend_agg import FigureCanvasAgg
            from matplotlib.figure import Figure
        except ImportError:
            raise ImportError("Profile.roofline needs matplotlib: pip install 'lazyfuse[plot]'") from None
        peaks = self.peaks()
        points = [r for r in self.rows() if r["kind"] != "compile" and r["intensity"] not in (0, math.inf)]
        figure = Figure(figsize=(8, 5.5))
        FigureCanvasAgg(figure)
        axes = figure.add_subplot()
        _draw_ceilings(axes, peaks, [r["intensity"] for r in points])
        for r in points:
            axes.plot([r["intensity"]], [r["work_gflops"]], "o")
            axes.annotate(r["name"], (r["intensity"], r["work_gflops"]), fontsize=7, xytext=(4, 4),
                          textcoords="offset points")  # fmt: skip
        left_out = len([r for r in self.rows() if r["kind"] != "compile"]) - len(points)
        note = f" ({left_out} without flops or bytes not shown)" if left_out else ""
        axes.set_title(f"roofline: lazyfuse kernels on this machine{note}", fontsize=9)
        axes.set_xlabel(f"flops per byte moved (a transcendental call = {TRANSCENDENTAL_FLOPS} flops)")
        axes.set_ylabel("GFLOP/s (flop-equivalents)")
        figure.tight_layout()
        figure.savefig(path)
        return Path(path)


def _draw_ceilings(axes: Any, peaks: dict[str, float], intensities: list[float]) -> None:
    ridge = peaks["flops"] / peaks["bandwidth"]
    low = min([ridge / 100, *[i / 2 for i in intensities]])
    high = max([ridge * 100, *[i * 2 for i in intensities]])
    xs = np.geomspace(low, high, 200)
    axes.loglog(xs, np.minimum(xs * peaks["bandwidth"], peaks["flops"]) / 1e9, "k-", lw=1.5)
    axes.axvline(ridge, color="0.7", ls=":", lw=1)
    axes.text(low, low * peaks["bandwidth"] / 1e9, f" {peaks['bandwidth'] / 1e9:.1f} GB/s (triad)",
              fontsize=8, va="bottom")  # fmt: skip
    axes.text(high, peaks["flops"] / 1e9, f"{peaks['flops'] / 1e9:.1f} GFLOP/s (GEMM) ",
              fontsize=8, ha="right", va="bottom")  # fmt: skip


_COLUMNS = (
    ("kernel", "name", "{}"),
    ("kind", "kind", "{}"),
    ("calls", "calls", "{}"),
    ("median ms", "median_s", "{:.3f}", 1e3),
    ("total ms", "total_s", "{:.2f}", 1e3),
    ("MB read", "bytes_read", "{:.2f}", 1e-6),
    ("MB written", "bytes_written", "{:.2f}", 1e-6),
    ("GB/s", "gbps", "{:.2f}"),
    ("Mflop", "flops", "{:.3f}", 1e-6),
    ("M transc.", "transcendentals", "{:.3f}", 1e-6),
    ("GFLOP/s", "gflops", "{:.2f}"),
    ("bound", "bound", "{}"),
    ("% of bound", "fraction_of_bound", "{:.0%}"),
)


def format_table(rows: list[dict[str, Any]], peaks: dict[str, float]) -> str:
    """``rows`` (Profile.rows) as aligned text; a missing value shows as '-'."""
    header = [c[0] for c in _COLUMNS]
    cells = [[_cell(row.get(c[1]), *c[2:]) for c in _COLUMNS] for row in rows]
    widths = [max(len(t) for t in column) for column in zip(header, *cells, strict=True)]
    lines = [
        f"machine peak: {peaks['bandwidth'] / 1e9:.1f} GB/s (triad), {peaks['flops'] / 1e9:.1f} GFLOP/s "
        f"(GEMM); a kernel below {peaks['flops'] / peaks['bandwidth']:.2f} flops per byte is memory "
        f"bound (a transcendental call counts {TRANSCENDENTAL_FLOPS} flops)",
        _line(header, widths),
        *[_line(row, widths) for row in cells],
    ]
    if not rows:
        lines.append("(no kernel ran)")
    return "\n".join(lines)


def _line(cells: list[str], widths: list[int]) -> str:
    """The names (kernel, kind) flush left, the numbers flush right."""
    return "  ".join(
        t.ljust(w) if k < 2 else t.rjust(w) for k, (t, w) in enumerate(zip(cells, widths, strict=True))
    )


def _cell(value: Any, template: str, scale: float = 1.0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return template.format(value * scale if scale != 1.0 else value)


@contextlib.contextmanager
def profile(peaks: dict[str, float] | None = None) -> Iterator[Profile]:
    """Time every kernel call of the block: ``with lf.profile() as p: ...; print(p)``.
    Replays and direct calls are off inside (each call is seen), so a profiled run is
    a little slower per call than an unprofiled one; kernel times are the kernels'."""
    seen = Profile(peaks)
    before = _compile_counts()
    profiling.COLLECTORS.append(seen)
    try:
        with config.override(profile=True):
            yield seen
    finally:
        profiling.COLLECTORS.remove(seen)
        after = _compile_counts()
        seen.compiles += after[0] - before[0]
        seen.compile_seconds += after[1] - before[1]


def _compile_counts() -> tuple[int, float]:
    stats = runtime_compile.STATS
    return stats["compiles"] + stats["disk_loads"], stats["compile_seconds"]


# The machine's peak --------------------------------------------------------------------

PEAK_FORMAT = 1
TRIAD_ELEMENTS = 2**25
GEMM_N = 2048


def peak_path() -> Path:
    return config.get().cache_dir / "peak.json"


def machine() -> dict[str, Any]:
    """What the peak depends on: a stored peak of another machine (a shared cache
    directory) or of another thread count is measured again."""
    return {
        "processor": platform.processor() or platform.machine(),
        "machine": platform.machine(),
        "system": platform.system(),
        "cpus": os.cpu_count(),
        "threads": numba.get_num_threads(),
        "numba": numba.__version__,
        "numpy": np.__version__,
    }


def peak(refresh: bool = False, triad_elements: int = TRIAD_ELEMENTS, gemm_n: int = GEMM_N) -> dict[str, Any]:
    """This machine's peak: ``bandwidth`` (bytes/s of a STREAM-like triad in a parallel
    Numba kernel) and ``flops`` (flop/s of a float64 GEMM through NumPy's BLAS). Read
    from the cache directory's peak.json when it holds a valid measurement of this
    machine at these sizes; else (or with ``refresh``) measured and stored there."""
    path = peak_path()
    if not refresh:
        stored = _read_peak(path, triad_elements, gemm_n)
        if stored is not None:
            return stored
    print(f"[lazyfuse] measuring this machine's peak once (kept in {path})", file=sys.stderr)
    measured = {
        "format": PEAK_FORMAT,
        "machine": machine(),
        "triad_elements": triad_elements,
        "gemm_n": gemm_n,
        "bandwidth": triad_bandwidth(triad_elements),
        "flops": gemm_flops(gemm_n),
        "measured": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    _write_peak(path, measured)
    return measured


def _read_peak(path: Path, triad_elements: int, gemm_n: int) -> dict[str, Any] | None:
    """The stored peak, or None when the file is missing, corrupt, of another format,
    machine or size, or holds numbers that are not positive and finite."""
    try:
        stored = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(stored, dict):
        return None
    expected = {
        "format": PEAK_FORMAT,
        "machine": machine(),
        "triad_elements": triad_elements,
        "gemm_n": gemm_n,
    }
    if any(stored.get(key) != value for key, value in expected.items()):
        return None
    for key in ("bandwidth", "flops"):
        value = stored.get(key)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 < value < math.inf:
            return None
    return stored


def _write_peak(path: Path, measured: dict[str, Any]) -> None:
    """Write whole or not at all: a process reading meanwhile sees the old file or the new."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    partial.write_text(json.dumps(measured, indent=1))
    os.replace(partial, path)


@numba.njit(parallel=True, cache=False)
def _triad(a: np.ndarray, b: np.ndarray, c: np.ndarray, s: float) -> None:  # pragma: no cover (compiled)
    for i in numba.prange(a.size):
        a[i] = b[i] + s * c[i]


def triad_bandwidth(elements: int = TRIAD_ELEMENTS, repeats: int = 7) -> float:
    """Bytes/s of ``a = b + s * c`` over float64 arrays in a parallel kernel, best of
    ``repeats`` runs (after one that compiles and touches the pages): 3 arrays of 8 bytes
    per element, as STREAM counts (the write's read for ownership not counted)."""
    a, b, c = np.zeros(elements), np.full(elements, 1.0), np.full(elements, 2.0)
    _triad(a, b, c, 3.0)
    best = math.inf
    for _ in range(repeats):
        started = time.perf_counter()
        _triad(a, b, c, 3.0)
        best = min(best, time.perf_counter() - started)
    return 3 * 8 * elements / best


def gemm_flops(n: int = GEMM_N, repeats: int = 3) -> float:
    """Flop/s of an (n, n) @ (n, n) float64 product through NumPy (BLAS), best of
    ``repeats`` after one warm-up: 2 n^3 flops."""
    rng = np.random.default_rng(0)
    a, b = rng.random((n, n)), rng.random((n, n))
    out = np.empty((n, n))
    np.matmul(a, b, out=out)
    best = math.inf
    for _ in range(repeats):
        started = time.perf_counter()
        np.matmul(a, b, out=out)
        best = min(best, time.perf_counter() - started)
    return 2 * n**3 / best


# The command line and LAZYFUSE_PROFILE=1 -----------------------------------------------


def add_peak_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--refresh", action="store_true", help="measure again, even if a peak is stored")


def peak_main(args: argparse.Namespace) -> int:
    """``lazyfuse peak``: measure (or read) and show this machine's peak."""
    found = peak(refresh=args.refresh)
    elements = found["triad_elements"]
    print(f"memory bandwidth: {found['bandwidth'] / 1e9:.2f} GB/s (triad over {elements} float64 per array)")
    print(f"compute: {found['flops'] / 1e9:.2f} GFLOP/s (float64 GEMM, n = {found['gemm_n']})")
    print(f"ridge: {found['flops'] / found['bandwidth']:.2f} flops per byte")
    print(f"measured {found['measured']} on {found['machine']}; kept in {peak_path()}")
    return 0


def add_profile_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("script", help="a Python script to run under lf.profile()")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="the script's arguments")


def profile_main(args: argparse.Namespace) -> int:
    """``lazyfuse profile script.py [args...]``."""
    return run_script(args.script, args.args)


def run_script(path: str, argv: Sequence[str] = ()) -> int:
    """Run the script ``path`` (as ``python path argv...``) under a profile and print the
    table, also when the script fails or exits; the script's exit status."""
    saved = sys.argv
    sys.argv = [path, *argv]
    status = 0
    try:
        with profile() as seen:
            runpy.run_path(path, run_name="__main__")
    except SystemExit as exit_:
        status = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    finally:
        sys.argv = saved
        seen.table()
    return status


_RUN: Profile | None = None


def _profile_the_run() -> None:
    """LAZYFUSE_PROFILE=1: collect from import on and print the table at exit."""
    global _RUN
    _RUN = Profile()
    profiling.COLLECTORS.append(_RUN)
    before = _compile_counts()

    def report() -> None:
        after = _compile_counts()
        assert _RUN is not None
        _RUN.compiles, _RUN.compile_seconds = after[0] - before[0], after[1] - before[1]
        print("[lazyfuse] profile of this run (LAZYFUSE_PROFILE=1):", file=sys.stderr)
        _RUN.table(file=sys.stderr)

    atexit.register(report)


if config.get().profile:
    _profile_the_run()
