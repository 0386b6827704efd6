"""The ``lazyfuse`` command: ``lazyfuse demo`` is the first thing a new user runs."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

import numpy as np

import lazyfuse as lf
from lazyfuse import config
from lazyfuse import train as training
from lazyfuse.datasets import spirals
from lazyfuse.graph.explain import format_graph
from lazyfuse.profile import add_peak_arguments, add_profile_arguments, peak_main, profile_main
from lazyfuse.runtime.compile import clear_disk_cache, disk_summary
from lazyfuse.timing import median_seconds


def _smoothstep(v: float) -> float:
    """A user scalar function, compiled by Numba into the kernel that calls it."""
    c = min(max(v, 0.0), 1.0)
    return c * c * (3.0 - 2.0 * c)


def _examples(
    data: dict[str, np.ndarray],
) -> list[tuple[str, Callable[[], lf.Tensor], Callable[[], np.ndarray]]]:
    x_np, w_np, b_np = data["x"], data["w"], data["b"]
    x, w, b = lf.asarray(x_np), lf.asarray(w_np), lf.asarray(b_np)

    def standardize() -> lf.Tensor:
        centered = x - x.mean(axis=0)
        return centered / lf.sqrt((centered * centered).mean(axis=0))

    def softmax_layer() -> lf.Tensor:
        z = lf.relu(x @ w + b)
        e = lf.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def np_softmax_layer() -> np.ndarray:
        z = np.maximum(x_np @ w_np + b_np, 0)
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def np_smooth() -> np.ndarray:
        c = np.clip(x_np, 0.0, 1.0)
        return c * c * (3.0 - 2.0 * c)

    return [
        (
            "standardize the columns: (x - mean) / std",
            standardize,
            lambda: (x_np - x_np.mean(0)) / np.sqrt(((x_np - x_np.mean(0)) ** 2).mean(0)),
        ),
        ("a dense layer and a row softmax: softmax(relu(x @ w + b))", softmax_layer, np_softmax_layer),
        (
            "a user function, compiled into the kernel: lf.map(smoothstep, x)",
            lambda: lf.map(_smoothstep, x),
            np_smooth,
        ),
        (
            "a user fold per row: lf.reduce(lambda acc, v: max(acc, abs(v)), x, axis=1, start=0.0)",
            lambda: lf.reduce(lambda acc, v: max(acc, abs(v)), x, axis=1, start=0.0),
            lambda: np.abs(x_np).max(axis=1),
        ),
    ]


def demo(args: argparse.Namespace) -> int:
    data = spirals(args.n)
    x = data["x"]
    size = f"{x.dtype}{list(x.shape)} ({x.nbytes / 1e6:.1f} MB)"
    print(f"lazyfuse {lf.__version__} demo: two spirals, x is {size}")
    print("Every expression below is lazy until .compute(); each kernel is generated Python")
    print("source compiled by Numba (njit(parallel=True), prange). First calls compile (and")
    print("cache on disk); the times are of warm calls, median of", args.repeats, "runs.\n")
    failures = 0
    for number, (title, build, reference) in enumerate(_examples(data), start=1):
        expr = build()
        print(f"[{number}] {title}")
        print("    graph:")
        for line in format_graph([expr.node]):
            print("      " + line)
        kernels = expr.kernels()
        print(f"    {len(kernels)} kernel(s): {', '.join(k.name for k in kernels)}")
        shown = kernels if args.all_sources else kernels[-1:]
        for kernel in shown:
            print(f"    source of {kernel.name} ({kernel.path}):")
            for line in kernel.source.rstrip().split("\n"):
                print("      | " + line)
        result, expected = expr.compute(), reference()
        error = float(np.max(np.abs(result - expected))) if result.size else 0.0
        ok = result.shape == expected.shape and np.allclose(result, expected, rtol=1e-10, atol=1e-12)
        failures += not ok
        ms_lf = median_seconds(lambda b=build: b().compute(), args.repeats) * 1e3  # type: ignore[misc]
        ms_np = median_seconds(reference, args.repeats) * 1e3
        print(f"    checked against NumPy: {'OK' if ok else 'MISMATCH'} (max abs error {error:.2e})")
        print(f"    time: lazyfuse {ms_lf:.2f} ms, NumPy {ms_np:.2f} ms ({ms_np / ms_lf:.2f}x NumPy)\n")
    print("Read any expression's plan with expr.explain(); list kernels with expr.kernels().")
    print("Each kernel fuses the operations it names; explain() says why any were kept apart.")
    return 1 if failures else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lazyfuse", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo_parser = commands.add_parser("demo", help="build, explain, check and time a few expressions")
    demo_parser.add_argument("--n", type=int, default=200_000, help="number of points (default 200000)")
    demo_parser.add_argument("--repeats", type=int, default=7, help="timed runs per expression")
    demo_parser.add_argument("--all-sources", action="store_true", help="print every kernel's source")
    train_parser = commands.add_parser("train", help="train a network (MiniTorch's task 3.5 and more)")
    training.add_arguments(train_parser)
    cache_parser = commands.add_parser("cache", help="the disk cache of generated kernels")
    cache_parser.add_argument("action", choices=["info", "clear"])
    add_peak_arguments(
        commands.add_parser(
            "peak", help="measure this machine's peak bandwidth and FLOP/s (kept in the cache directory)"
        )
    )
    add_profile_arguments(
        commands.add_parser("profile", help="run a Python script under lf.profile() and print its kernels")
    )
    args = parser.parse_args(argv)
    run = {"demo": demo, "train": training.main, "cache": cache, "peak": peak_main, "profile": profile_main}
    return run[args.command](args)


def cache(args: argparse.Namespace) -> int:
    if args.action == "clear":
        removed = clear_disk_cache()
        print(f"removed {removed} files from {config.get().cache_dir}")
        return 0
    disk = disk_summary()
    print(f"disk cache: {disk['directory']}")
    print(f"  entries: {disk['entries']} kernels, {disk['files']} files, {disk['bytes'] / 2**20:.1f} MiB")
    print(f"  oldest entry: {disk['oldest'] or '-'}, newest entry: {disk['newest'] or '-'}")
    print("counters of this process only (each process counts its own compiles and disk loads):")
    for key, value in lf.cache_info().items():
        print(f"  {key}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
