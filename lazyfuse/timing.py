"""Wall-clock medians for the demo and the benchmarks (never used by tests)."""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

from lazyfuse import config

# The benchmarks time steady states, each contender after its warm-up (JAX's after its
# compile): a hot step's driver (runtime/driver.py) is compiled after this many replays,
# not after lazyfuse's default 10,000, so that it is compiled before their timing ends.
STEADY_STATE_REPLAYS = 100


def median_seconds(fn: Callable[[], Any], repeats: int = 5, budget: float = 0.0, most: int = 200) -> float:
    """Median time of ``fn()`` after one warm-up call (which compiles): ``repeats`` runs,
    and more while they take under ``budget`` seconds, up to ``most``."""
    fn()
    times: list[float] = []
    started = time.perf_counter()
    while len(times) < repeats or (time.perf_counter() - started < budget and len(times) < most):
        before = time.perf_counter()
        fn()
        times.append(time.perf_counter() - before)
    return statistics.median(times)


def interleaved_medians(
    fns: Sequence[Callable[[], Any]], repeats: int = 5, budget: float = 0.0, most: int = 200
) -> list[float]:
    """Median times of each of ``fns``, run in turns (one call of each per round) after a
    warm-up call each: on a machine whose speed drifts (a shared VM), every contender
    sees the same drift, so their ratios hold where separate medians would not.
    ``budget``: seconds per contender, as in :func:`median_seconds`.

    Note: each round runs them in a new random order (seeded), so each follows every
    other about as often. A contender pays for what the one before it left: after a
    single-threaded one, the idle core's thread must wake (a parallel kernel over 100k
    float64 took longer the more single-threaded work ran just before it): in a fixed
    order, bench_dispatch.py's hand-written Numba loop, after NumPy's, took markedly
    longer at 100k than in random order; see benchmarks/README.md."""
    for fn in fns:
        fn()
    times: list[list[float]] = [[] for _ in fns]
    order = list(range(len(fns)))
    shuffle = random.Random(0).shuffle
    started = time.perf_counter()
    rounds = 0
    while rounds < repeats or (time.perf_counter() - started < budget * len(fns) and rounds < most):
        shuffle(order)
        for turn in order:
            before = time.perf_counter()
            fns[turn]()
            times[turn].append(time.perf_counter() - before)
        rounds += 1
    return [statistics.median(spent) for spent in times]


def benchmark_arguments(description: str | None, argv: list[str] | None) -> argparse.Namespace:
    """The benchmarks' shared command line: ``--quick`` (small sizes) and ``--budget``."""
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--budget", type=float, default=1.0, help="seconds of timing per contender")
    parser.add_argument(
        "--drivers-after",
        type=int,
        default=STEADY_STATE_REPLAYS,
        help="replays before a hot step's calls are compiled into one function (runtime/driver.py; "
        f"lazyfuse's default is {config.Config.compile_replays_after}); default {STEADY_STATE_REPLAYS}",
    )
    args = parser.parse_args(argv)
    config.set_for_process(compile_replays_after=args.drivers_after)
    return args
