"""Matrix products with an epilogue: lazyfuse against NumPy, in one run.

    python benchmarks/bench_matmul.py            # the issue's sizes (about a minute)
    python benchmarks/bench_matmul.py --quick    # small sizes, a smoke run

Each contender allocates its output; lazyfuse's time includes building the expression.
A warm-up call compiles first. Each result is checked against NumPy before it is timed;
the two contenders run in turns, so a drift in the machine's speed hits both alike.
`GFLOP/s` counts 2*m*n*k for the product alone; `lazyfuse is` is NumPy's time over
lazyfuse's (above 1: lazyfuse is faster). `path` is the rule's choice for the product,
as `explain()` shows it: BLAS (float: NumPy's matmul, or "BLAS batch", OpenBLAS's
batched GEMM for a stack) or the generated kernel (integers).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

import numba
import numpy as np

import lazyfuse as lf
from lazyfuse.timing import benchmark_arguments, interleaved_medians


def relu_bias(a: Any, b: Any, bias: Any, maximum: Callable[..., Any]) -> Any:
    return maximum(a @ b + bias, 0)


def cases(quick: bool) -> list[tuple[str, tuple[int, ...], tuple[int, ...], np.dtype]]:
    """(name, shape of A, shape of B, dtype); bias has B's last axis."""
    if quick:
        return [
            ("maximum(A@B+bias,0) 128 f32", (128, 128), (128, 128), np.dtype(np.float32)),
            ("batched 8 x 32x32 f64", (8, 32, 32), (8, 32, 32), np.dtype(np.float64)),
            ("int64 64x64", (64, 64), (64, 64), np.dtype(np.int64)),
        ]
    return [
        ("maximum(A@B+bias,0) 1024 f32", (1024, 1024), (1024, 1024), np.dtype(np.float32)),
        ("maximum(A@B+bias,0) 1024 f64", (1024, 1024), (1024, 1024), np.dtype(np.float64)),
        ("batched 64 x 128x128 f64 +epilogue", (64, 128, 128), (64, 128, 128), np.dtype(np.float64)),
        ("int64 384x384 +epilogue", (384, 384), (384, 384), np.dtype(np.int64)),
        ("tall-skinny 100000x64 @ 64x64 f64", (100_000, 64), (64, 64), np.dtype(np.float64)),
    ]


def inputs(shape_a, shape_b, dtype, rng):
    if dtype.kind == "i":
        a, b = rng.integers(-9, 9, shape_a), rng.integers(-9, 9, shape_b)
        bias = rng.integers(-9, 9, shape_b[-1])
    else:
        a, b, bias = (
            rng.standard_normal(shape_a),
            rng.standard_normal(shape_b),
            rng.standard_normal(shape_b[-1]),
        )
    return a.astype(dtype), b.astype(dtype), bias.astype(dtype)


def row(name: str, a: np.ndarray, b: np.ndarray, bias: np.ndarray, budget: float) -> str:
    """One workload, checked against NumPy, then timed: a line of the table."""
    ta, tb, tbias = lf.asarray(a), lf.asarray(b), lf.asarray(bias)

    def ours() -> np.ndarray:
        return relu_bias(ta, tb, tbias, lf.maximum).compute()  # type: ignore[no-any-return]

    def theirs() -> np.ndarray:
        return relu_bias(a, b, bias, np.maximum)  # type: ignore[no-any-return]

    tolerance = 0 if a.dtype.kind == "i" else 1e-4 if a.dtype == np.float32 else 1e-10
    np.testing.assert_allclose(ours(), theirs(), rtol=tolerance, atol=tolerance * a.shape[-1], err_msg=name)
    shown = relu_bias(ta, tb, tbias, lf.maximum).explain()
    path = "BLAS batch" if "batched GEMM" in shown else "BLAS" if "BLAS" in shown else "kernel"
    t_ours, t_theirs = interleaved_medians([ours, theirs], repeats=5, budget=budget)
    batch = np.prod(np.broadcast_shapes(a.shape[:-2], b.shape[:-2]), dtype=np.int64)
    flops = 2 * batch * a.shape[-2] * a.shape[-1] * b.shape[-1]
    return (
        f"{name:38s} {path:10s} {t_ours * 1e3:12.2f} {t_theirs * 1e3:10.2f} "
        f"{flops / t_ours / 1e9:8.1f} {t_theirs / t_ours:11.2f}x"
    )


def main(argv: list[str] | None = None) -> int:
    args = benchmark_arguments(__doc__, argv)
    print(
        f"lazyfuse {lf.__version__}, numpy {np.__version__}, numba {numba.__version__}; "
        f"{os.cpu_count()} cores, {numba.get_num_threads()} Numba threads"
    )
    columns = f"{'path':10s} {'lazyfuse ms':>12s} {'numpy ms':>10s} {'GFLOP/s':>8s} {'lazyfuse is':>12s}"
    header = f"{'workload':38s} {columns}"
    print(header)
    print("-" * len(header))
    rng = np.random.default_rng(0)
    for name, shape_a, shape_b, dtype in cases(args.quick):
        print(row(name, *inputs(shape_a, shape_b, dtype, rng), args.budget))
    return 0


if __name__ == "__main__":
    sys.exit(main())
