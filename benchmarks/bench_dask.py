"""lazyfuse on Dask against plain dask.array, over arrays larger than this machine's memory.

    python benchmarks/bench_dask.py                       # 8e8 float64 per array (the issue's size)
    python benchmarks/bench_dask.py --quick               # 2e7 elements in 1M-element chunks: a smoke run
    python benchmarks/bench_dask.py --elements 2e8 --scheduler distributed

Workloads (each input: ``--elements`` float64 from ``da.random.default_rng(seed).random``,
generated chunk by chunk inside the graph, so no input ever exists whole in memory):

- ``(exp(x) * y).sum()``, x and y 1-d (2 inputs);
- row softmax of x, shape (elements / --columns, --columns), chunks of whole rows, reduced
  by ``.sum()`` so the result fits in memory (each row sums to 1: the total is the row count);
- ``(exp(a) * b + c * d).sum()``, 4 inputs: 25.6 GB at the default size, more than this
  machine's 25.3 GB (23.5 GiB) of memory, so its peak memory says whether the expression
  streams (on a larger machine, raise ``--elements``; the last table names the workloads
  whose inputs exceed the memory psutil reports).

What is timed: one call that builds the expression over the (already built, lazy) Dask
inputs and computes it to a NumPy scalar, as a user would. That includes generating every
input chunk (random numbers cost about as much as the arithmetic) and the scheduler's work.
Contenders, run in turns (a new seeded random order each round), per workload:

- ``generation only``: plain Dask computing ``a.sum()`` for every input in one graph: the
  cost both real contenders pay before any arithmetic; the ``net`` columns subtract it;
- ``plain dask.array``: the same expression with ``da.exp``;
- ``lazyfuse on dask``: ``lf.asarray`` of each Dask input, the expression with ``lf.exp``,
  ``.compute()`` (each chunk task runs lazyfuse's fused serial kernel; Dask's workers give
  the parallelism);
- ``lazyfuse in memory``: the fused kernel (parallel, both cores) on NumPy inputs of
  ``--in-memory-elements`` already in memory, median of at least 5 calls after a warm-up:
  the per-element throughput the Dask runs are compared to. It runs after the Dask rounds,
  not in turns with them, so that its inputs (in memory) do not count in their peak memory;
  on a shared machine its ratio so carries the drift between the two times.

Each workload is first run once on small inputs of the same chunking (compiling lazyfuse's
kernels), then its results are checked: lazyfuse's against plain Dask's (and the softmax
total against the row count), the in-memory kernel's against NumPy's.

Memory: the resident set (RSS) of this process plus all its descendants (the worker
processes of ``processes`` and ``distributed``), sampled by a background thread every
``--sample-ms`` (psutil); a shorter spike between samples is missed. ``hwm`` is this
process alone, the kernel's exact high-water mark (``VmHWM``, reset through
``/proc/self/clear_refs`` before each run). ``peak`` and ``hwm`` are the largest over the
rounds; ``start``, the tree's smallest RSS as a run began (memory a run inherits, freed late,
shows as a start above it).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import random
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

import dask
import dask.array as da
import numba
import numpy as np
import psutil

import lazyfuse as lf
from lazyfuse.timing import median_seconds

GB = 1e9
BYTES_PER_ELEMENT = 8  # float64
SCHEDULERS = ("synchronous", "threads", "processes", "distributed")


# the workloads --------------------------------------------------------------------------


def exp_times_sum(exp: Callable[[Any], Any], x: Any, y: Any) -> Any:
    return (exp(x) * y).sum()


def softmax_rows_sum(exp: Callable[[Any], Any], x: Any) -> Any:
    e = exp(x - x.max(axis=1, keepdims=True))
    return (e / e.sum(axis=1, keepdims=True)).sum()


def four_input_sum(exp: Callable[[Any], Any], a: Any, b: Any, c: Any, d: Any) -> Any:
    return (exp(a) * b + c * d).sum()


@dataclass
class Workload:
    """One expression: ``expression(exp, *inputs)`` with ``exp`` from NumPy, Dask or lazyfuse."""

    key: str
    name: str
    expression: Callable[..., Any]
    inputs: int
    rows_of: int = 0  # > 0: 2-d inputs of this many columns (rows whole in every chunk)
    expected: Callable[[tuple[int, ...]], float] | None = None  # an exact answer, if any

    def shape(self, elements: int) -> tuple[int, ...]:
        if self.rows_of:
            return (max(1, elements // self.rows_of), self.rows_of)
        return (elements,)

    def chunks(self, chunk: int) -> tuple[int, ...]:
        if self.rows_of:
            return (max(1, chunk // self.rows_of), self.rows_of)
        return (chunk,)


def workloads(columns: int) -> list[Workload]:
    return [
        Workload("sum", "(exp(x)*y).sum()", exp_times_sum, 2),
        Workload(
            "softmax",
            f"softmax rows (x, {columns} columns), .sum()",
            softmax_rows_sum,
            1,
            rows_of=columns,
            expected=lambda shape: float(shape[0]),
        ),
        Workload("four", "(exp(a)*b+c*d).sum()", four_input_sum, 4),
    ]


def dask_inputs(w: Workload, elements: int, chunk: int, seed: int) -> list[da.Array]:
    """Lazy random inputs: each chunk is generated inside the task that needs it."""
    rng = da.random.default_rng(seed)
    return [rng.random(w.shape(elements), chunks=w.chunks(chunk)) for _ in range(w.inputs)]


def numpy_inputs(w: Workload, elements: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.random(w.shape(elements)) for _ in range(w.inputs)]


def as_float(result: Any) -> float:
    return float(np.asarray(result))


def dask_contenders(w: Workload, inputs: Sequence[da.Array]) -> dict[str, Callable[[], float]]:
    """Each returns the computed value; the generation-only one returns the inputs' total."""
    return {
        "generation only": lambda: sum(dask.compute(*(a.sum() for a in inputs))),
        "plain dask.array": lambda: as_float(w.expression(da.exp, *inputs).compute()),
        "lazyfuse on dask": lambda: as_float(
            w.expression(lf.exp, *(lf.asarray(a) for a in inputs)).compute()
        ),
    }


# memory of the process tree ---------------------------------------------------------------


def process_tree_rss() -> int:
    """RSS of this process and every descendant (a process that exits mid-sample is skipped)."""
    me = psutil.Process()
    total = me.memory_info().rss
    for child in me.children(recursive=True):
        with suppress(psutil.Error):  # it exited mid-sample
            total += child.memory_info().rss
    return total


def reset_high_water_mark() -> bool:
    """Resets this process's VmHWM (Linux: writing 5 to clear_refs); False where it cannot."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def high_water_mark() -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


class PeakMemory:
    """Samples the process tree's RSS on a thread while the ``with`` body runs."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.start = self.peak = 0
        self.hwm: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, process_tree_rss())

    def __enter__(self) -> PeakMemory:
        self.start = self.peak = process_tree_rss()
        self._hwm_valid = reset_high_water_mark()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join()
        self.peak = max(self.peak, process_tree_rss())
        self.hwm = high_water_mark() if self._hwm_valid else None


# schedulers -------------------------------------------------------------------------------


@contextmanager
def dask_scheduler(name: str, workers: int) -> Iterator[str]:
    """Makes ``name`` Dask's scheduler for every compute inside; yields a description.
    ``processes`` keeps one pool for the whole run (Dask's own would start new processes on
    every compute); ``distributed`` starts a LocalCluster of one-thread worker processes."""
    if name == "distributed":
        from distributed import Client, LocalCluster

        with (
            LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,
            ) as cluster,
            Client(cluster),
        ):
            yield f"distributed LocalCluster, {workers} worker processes x 1 thread"
    elif name == "processes":
        from dask.multiprocessing import get_context, initialize_worker_process

        os.environ.setdefault("PYTHONHASHSEED", "6640")  # as dask.multiprocessing does
        with (
            ProcessPoolExecutor(
                workers, mp_context=get_context(), initializer=initialize_worker_process
            ) as pool,
            dask.config.set(scheduler="processes", pool=pool),
        ):
            yield f"processes, a pool of {workers} ({multiprocessing.get_start_method()})"
    else:
        with dask.config.set(scheduler=name, num_workers=workers):
            yield name if name == "synchronous" else f"threads, {workers} workers"


# running ----------------------------------------------------------------------------------


@dataclass
class Runs:
    seconds: list[float] = field(default_factory=list)
    peak: list[int] = field(default_factory=list)
    start: list[int] = field(default_factory=list)
    hwm: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    error: str | None = None

    @property
    def median(self) -> float:
        return statistics.median(self.seconds) if self.seconds else float("nan")


def timed_run(fn: Callable[[], float], runs: Runs, interval: float) -> None:
    with PeakMemory(interval) as memory:
        before = time.perf_counter()
        value = fn()
        spent = time.perf_counter() - before
    runs.seconds.append(spent)
    runs.values.append(value)
    runs.peak.append(memory.peak)
    runs.start.append(memory.start)
    if memory.hwm is not None:
        runs.hwm.append(memory.hwm)


def check_runs_on_dask(w: Workload, inputs: Sequence[da.Array]) -> None:
    """Raises unless lazyfuse's expression over Dask inputs stays a Dask graph: without the
    Dask target, ``lf.asarray`` would read each input whole into memory (``__array__``)."""
    expr = w.expression(lf.exp, *(lf.asarray(a) for a in inputs))
    graph = getattr(expr, "to_dask", None)
    if graph is None or not isinstance(graph(), da.Array):
        raise TypeError(f"not on Dask: {type(expr).__name__} has no to_dask() giving a dask array")


def warm_up(w: Workload, chunk: int, workers: int, seed: int) -> dict[str, str]:
    """One call of each contender on inputs of the same chunking, a few chunks long
    (compiles lazyfuse's kernels); returns the error of any contender that fails."""
    elements = max(2 * workers, 4) * int(np.prod(w.chunks(chunk)))
    inputs = dask_inputs(w, elements, chunk, seed)
    errors = {}
    for name, fn in dask_contenders(w, inputs).items():
        try:
            if name == "lazyfuse on dask":
                check_runs_on_dask(w, inputs)
            fn()
        except Exception as exc:  # reported; the other contenders go on
            errors[name] = f"{type(exc).__name__}: {exc}"
    return errors


def run_in_turns(
    w: Workload, elements: int, chunk: int, rounds: int, interval: float, errors: dict[str, str], seed: int
) -> dict[str, Runs]:
    contenders = dask_contenders(w, dask_inputs(w, elements, chunk, seed))
    runs = {name: Runs(error=errors.get(name)) for name in contenders}
    order = [name for name in contenders if name not in errors]
    shuffle = random.Random(0).shuffle
    for _ in range(rounds):
        shuffle(order)
        for name in list(order):
            try:
                timed_run(contenders[name], runs[name], interval)
            except Exception as exc:
                runs[name].error = f"{type(exc).__name__}: {exc}"
                order.remove(name)
    return runs


def in_memory(w: Workload, elements: int, budget: float, interval: float, seed: int) -> tuple[Runs, float]:
    """The fused kernel on NumPy inputs in memory; returns its runs and the relative
    difference of its value from NumPy's."""
    arrays = numpy_inputs(w, elements, seed)
    expected = as_float(w.expression(np.exp, *arrays))
    fn = lambda: as_float(w.expression(lf.exp, *(lf.asarray(a) for a in arrays)).compute())  # noqa: E731
    runs = Runs()
    try:
        got = fn()
        with PeakMemory(interval) as memory:
            seconds = median_seconds(fn, repeats=5, budget=budget)
        runs.seconds.append(seconds)
        runs.peak.append(memory.peak)
        runs.values.append(got)
    except Exception as exc:
        runs.error = f"{type(exc).__name__}: {exc}"
        return runs, float("nan")
    return runs, abs(got - expected) / abs(expected)


# reporting --------------------------------------------------------------------------------


def gb(n: float) -> str:
    return f"{n / GB:.2f}"


def machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    try:
        import distributed

        dist = distributed.__version__
    except ImportError:
        dist = "absent"
    flags = ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu_flags = next(line for line in f if line.startswith("flags")).split()
        flags = ", AVX-512" if "avx512f" in cpu_flags else (", AVX2" if "avx2" in cpu_flags else "")
    except (OSError, StopIteration):
        pass
    return (
        f"{model}{flags}; {os.cpu_count()} cores, {gb(psutil.virtual_memory().total)} GB memory, "
        f"Python {platform.python_version()}\nlazyfuse {lf.__version__}, numpy {np.__version__}, "
        f"numba {numba.__version__} ({numba.get_num_threads()} threads), dask {dask.__version__}, "
        f"distributed {dist}, psutil {psutil.__version__}"
    )


def net(seconds: float, generation: float) -> float:
    """Time net of generating the inputs (nan where the difference is not positive)."""
    spent = seconds - generation
    return spent if spent > 0 else float("nan")


def fmt(value: float, spec: str) -> str:
    return "-" if value != value else format(value, spec)


NAN = float("nan")


def ratio(value: float) -> str:
    return "-" if value != value else f"{value:.2f}x"


def table_row(name: str, r: Runs, elements: int, nbytes: int, generation: float | None) -> str:
    """One contender's line; ``generation`` None: no net columns (the baseline itself, and
    the in-memory kernel, which generates nothing)."""
    if r.error:
        return f"{name:22s} ERROR {r.error}"
    seconds = r.median
    net_s = net_gbs = ""
    if generation is not None:
        spent = net(seconds, generation)
        net_s, net_gbs = fmt(spent, "7.3f"), fmt(nbytes / spent / GB, "9.2f")
    start = gb(min(r.start)) if r.start else "-"
    hwm = gb(max(r.hwm)) if r.hwm else "-"
    return (
        f"{name:22s} {seconds:9.3f} {nbytes / seconds / GB:7.2f} {net_s:>7s} {net_gbs:>9s} "
        f"{elements / seconds / 1e6:8.1f} {gb(max(r.peak)):>8s} {start:>9s} {hwm:>7s}"
    )


def check_results(w: Workload, elements: int, plain: Runs, ours: Runs) -> None:
    """Prints whether every run's value agrees with plain Dask's (and with the exact answer,
    where the workload has one)."""
    exact = w.expected(w.shape(elements)) if w.expected else None
    reference = plain.values[0] if plain.values else exact
    for name, r in (("plain dask.array", plain), ("lazyfuse on dask", ours)):
        if r.error or reference is None:
            continue
        agree = np.allclose(r.values, reference, rtol=1e-9, atol=0)
        if exact is not None:
            agree = agree and np.allclose(r.values, exact, rtol=1e-9, atol=0)
        against = f", exact {exact!r}" if exact is not None else ""
        print(f"{name} agrees (rtol 1e-9): {agree} (value {r.values[0]!r}{against})")


def print_workload(
    w: Workload, elements: int, runs: dict[str, Runs], memory_runs: Runs, memory_elements: int
) -> dict[str, float]:
    """Prints one workload's table and returns the figures the targets are judged by."""
    elements = int(np.prod(w.shape(elements)))
    memory_elements = int(np.prod(w.shape(memory_elements)))
    nbytes = w.inputs * elements * BYTES_PER_ELEMENT
    generation = runs["generation only"].median
    header = (
        f"{'contender':22s} {'median s':>9s} {'GB/s':>7s} {'net s':>7s} {'net GB/s':>9s} "
        f"{'Melem/s':>8s} {'peak GB':>8s} {'start GB':>9s} {'hwm GB':>7s}"
    )
    print(header)
    print("-" * len(header))
    for name, r in runs.items():
        print(table_row(name, r, elements, nbytes, None if name == "generation only" else generation))
    memory_bytes = w.inputs * memory_elements * BYTES_PER_ELEMENT
    print(table_row("lazyfuse in memory", memory_runs, memory_elements, memory_bytes, None))
    plain, ours = runs["plain dask.array"], runs["lazyfuse on dask"]
    check_results(w, elements, plain, ours)
    figures = {"input GB": nbytes / GB, "peak GB": NAN if ours.error else max(ours.peak) / GB}
    both = not ours.error and not plain.error
    figures["plain/lf"] = plain.median / ours.median if both else NAN
    figures["plain/lf net"] = net(plain.median, generation) / net(ours.median, generation) if both else NAN
    memory_rate = NAN if memory_runs.error else memory_elements / memory_runs.median
    ours_seconds = NAN if ours.error else ours.median
    figures["per-element"] = elements / ours_seconds / memory_rate
    figures["per-element net"] = elements / net(ours_seconds, generation) / memory_rate
    print(
        f"plain/lazyfuse {ratio(figures['plain/lf'])} (net of generation {ratio(figures['plain/lf net'])}); "
        f"lazyfuse-dask per-element throughput / in-memory kernel's {ratio(figures['per-element'])} "
        f"(net of generation {ratio(figures['per-element net'])})"
    )
    return figures


def print_targets(results: dict[str, dict[str, float]], machine_bytes: int) -> None:
    print("targets, lazyfuse on dask ('net': less the generation-only time):")
    keys = ("plain/lf", "plain/lf net", "per-element", "per-element net")
    header = (
        f"{'workload':40s} {'input GB':>9s} {'plain/lf':>9s} {'net':>6s} {'per-elem':>9s} "
        f"{'net':>6s} {'peak GB':>8s}"
    )
    print(header)
    print("-" * len(header))
    for name, f in results.items():
        cells = [ratio(f[k]) for k in keys]
        print(
            f"{name:40s} {f['input GB']:9.2f} {cells[0]:>9s} {cells[1]:>6s} {cells[2]:>9s} "
            f"{cells[3]:>6s} {fmt(f['peak GB'], '8.2f'):>8s}"
        )
    larger = [n for n, f in results.items() if f["input GB"] * GB > machine_bytes]
    print(
        "targets: plain/lf >= 2x; per-elem >= 0.7x; peak (process tree RSS) < 4 GB where the "
        f"inputs exceed this machine's {gb(machine_bytes)} GB (at this size: {', '.join(larger) or 'none'})"
    )


# command line -----------------------------------------------------------------------------


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="2e7 elements in 2**20-element chunks: a smoke run"
    )
    parser.add_argument("--elements", type=float, default=None, help="elements per input array (default 8e8)")
    parser.add_argument(
        "--chunk", type=float, default=None, help="elements per chunk (default 2**24; --quick 2**20)"
    )
    parser.add_argument("--columns", type=int, default=1000, help="row length of the softmax input")
    parser.add_argument(
        "--in-memory-elements",
        type=float,
        default=None,
        help="elements per input in memory (default 5e7; --quick 1e7)",
    )
    parser.add_argument("--rounds", type=int, default=3, help="timed runs of each Dask contender, in turns")
    parser.add_argument(
        "--budget", type=float, default=1.0, help="seconds of timing for the in-memory kernel"
    )
    parser.add_argument("--scheduler", choices=SCHEDULERS, default="threads")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="Dask threads or processes")
    parser.add_argument("--workloads", default="sum,softmax,four", help="comma-separated: sum, softmax, four")
    parser.add_argument("--sample-ms", type=float, default=50.0, help="memory sampling interval")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    args.elements = int(args.elements or (2e7 if args.quick else 8e8))
    args.chunk = int(args.chunk or (2**20 if args.quick else 2**24))
    args.in_memory_elements = int(args.in_memory_elements or (1e7 if args.quick else 5e7))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    chosen = [w for w in workloads(args.columns) if w.key in args.workloads.split(",")]
    interval = args.sample_ms / 1e3
    machine_bytes = psutil.virtual_memory().total
    print(machine())
    with dask_scheduler(args.scheduler, args.workers) as scheduler:
        print(
            f"scheduler: {scheduler}; {args.elements:,} float64 per input, chunks of {args.chunk:,} "
            f"elements, {args.rounds} rounds in turns; in memory: {args.in_memory_elements:,} per input; "
            f"memory sampled every {args.sample_ms:g} ms"
        )
        results = {}
        for w in chosen:
            total = w.inputs * int(np.prod(w.shape(args.elements))) * BYTES_PER_ELEMENT
            print(
                f"\n{w.name}: {w.inputs} input(s) of shape {w.shape(args.elements)}, chunks "
                f"{w.chunks(args.chunk)}, {gb(total)} GB of inputs in all"
            )
            errors = warm_up(w, args.chunk, args.workers, args.seed)
            runs = run_in_turns(w, args.elements, args.chunk, args.rounds, interval, errors, args.seed)
            memory_runs, difference = in_memory(w, args.in_memory_elements, args.budget, interval, args.seed)
            if not memory_runs.error:
                print(f"in-memory kernel vs NumPy: relative difference {difference:.1e}")
            results[w.name] = print_workload(w, args.elements, runs, memory_runs, args.in_memory_elements)
            sys.stdout.flush()
    print()
    print_targets(results, machine_bytes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
