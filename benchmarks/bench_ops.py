"""Issue 16's ops: lazyfuse against NumPy and a hand-written Numba loop (PyTorch and
JAX when installed), in one run, in turns.

    python benchmarks/bench_ops.py            # the issue's sizes (a few minutes)
    python benchmarks/bench_ops.py --quick    # small sizes, a smoke run

Each contender's result is checked against NumPy's first; compiles happen in a warm-up
call. The table gives median times (run in turns: lazyfuse.timing.interleaved_medians)
and NumPy's time over each contender's (>1: faster than NumPy).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import numpy as np
from numba import njit, prange

import lazyfuse as lf
from lazyfuse.timing import benchmark_arguments, interleaved_medians

try:
    import torch
except ImportError:  # pragma: no cover - optional contender
    torch = None


# hand-written Numba loops -------------------------------------------------------------


@njit(parallel=True, fastmath=True)
def numba_cross_entropy(z, labels):
    n, k = z.shape
    losses = np.empty(n, np.float64)
    for i in prange(n):
        m = z[i, 0]
        for j in range(1, k):
            m = max(m, z[i, j])
        s = 0.0
        for j in range(k):
            s += np.exp(z[i, j] - m)
        losses[i] = np.log(s) + m - z[i, labels[i]]
    return losses.mean()


@njit(parallel=True)
def numba_embedding_bag(table, tokens):
    n, length = tokens.shape
    out = np.zeros((n, table.shape[1]), table.dtype)
    for i in prange(n):
        for t in range(length):
            row = tokens[i, t]
            for j in range(table.shape[1]):
                out[i, j] += table[row, j]
        for j in range(table.shape[1]):
            out[i, j] /= length
    return out


@njit(parallel=True)
def numba_argmax_rows(x):
    out = np.empty(x.shape[0], np.int64)
    for i in prange(x.shape[0]):
        best = 0
        for j in range(1, x.shape[1]):
            if x[i, j] > x[i, best]:
                best = j
        out[i] = best
    return out


@njit(parallel=True)
def numba_cumsum_rows(x):
    out = np.empty_like(x)
    for i in prange(x.shape[0]):
        acc = x.dtype.type(0)
        for j in range(x.shape[1]):
            acc += x[i, j]
            out[i, j] = acc
    return out


@njit
def numba_cumsum_flat(x):
    out = np.empty_like(x)
    acc = x.dtype.type(0)
    for i in range(x.size):
        acc += x[i]
        out[i] = acc
    return out


@njit(parallel=True)
def numba_var_rows(x):
    out = np.empty(x.shape[0], np.float64)
    for i in prange(x.shape[0]):
        mean = 0.0
        for j in range(x.shape[1]):
            mean += x[i, j]
        mean /= x.shape[1]
        acc = 0.0
        for j in range(x.shape[1]):
            acc += (x[i, j] - mean) ** 2
        out[i] = acc / x.shape[1]
    return out


@njit(parallel=True)
def numba_rowdot(a, b):
    out = np.empty(a.shape[0], a.dtype)
    for i in prange(a.shape[0]):
        acc = a.dtype.type(0)
        for j in range(a.shape[1]):
            acc += a[i, j] * b[i, j]
        out[i] = acc
    return out


# workloads -------------------------------------------------------------------------------


def _log_softmax(z: Any) -> Any:
    if hasattr(lf, "log_softmax"):
        return lf.log_softmax(z, axis=1)
    shifted = z - z.max(axis=1, keepdims=True)
    return shifted - lf.log(lf.exp(shifted).sum(axis=1, keepdims=True))


def _numpy_cross_entropy(z: np.ndarray, labels: np.ndarray) -> Any:
    shifted = z - z.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return -log_p[np.arange(z.shape[0]), labels].mean()


def workloads(quick: bool) -> list[tuple[str, dict[str, Callable[[], Any]], float]]:
    rng = np.random.default_rng(0)
    found: list[tuple[str, dict[str, Callable[[], Any]], float]] = []
    for rows, classes in [(512, 100)] if quick else [(8192, 100), (4000, 2500)]:
        z = rng.standard_normal((rows, classes)).astype(np.float32)
        labels = rng.integers(0, classes, rows)
        zt = lf.asarray(z)
        found.append(
            (
                f"cross-entropy {rows}x{classes} f32",
                {
                    "numpy": lambda z=z, y=labels: _numpy_cross_entropy(z, y),
                    "lazyfuse": lambda zt=zt, y=labels, n=rows: (
                        -_log_softmax(zt)[lf.arange(n), y].mean()
                    ).compute(),
                    "numba loop": lambda z=z, y=labels: numba_cross_entropy(z, y),
                },
                1e-4,
            )
        )
    vocab, width, sentences, length = (5000, 64, 256, 32) if quick else (50000, 128, 4096, 32)
    table = rng.standard_normal((vocab, width)).astype(np.float32)
    tokens = rng.integers(0, vocab, (sentences, length))
    found.append(
        (
            f"embedding-bag {vocab}x{width}, {sentences}x{length}",
            {
                "numpy": lambda: table[tokens].mean(axis=1),
                "lazyfuse": lambda: lf.asarray(table)[tokens].mean(axis=1).compute(),
                "numba loop": lambda: numba_embedding_bag(table, tokens),
            },
            1e-4,
        )
    )
    x = rng.standard_normal((500, 400) if quick else (4000, 2500)).astype(np.float32)
    if hasattr(lf.Tensor, "argmax"):
        found.append(
            (
                f"argmax rows {x.shape} f32",
                {
                    "numpy": lambda: x.argmax(axis=1),
                    "lazyfuse": lambda: lf.asarray(x).argmax(axis=1).compute(),
                    "numba loop": lambda: numba_argmax_rows(x),
                },
                0.0,
            )
        )
    flat = rng.standard_normal(10**5 if quick else 10**7)
    found.append(
        (
            f"cumsum rows {x.shape} f32",
            {
                "numpy": lambda: np.cumsum(x, axis=1),
                "lazyfuse": lambda: lf.cumsum(x, axis=1).compute(),
                "numba loop": lambda: numba_cumsum_rows(x),
            },
            1e-3,
        )
    )
    found.append(
        (
            f"cumsum {flat.size:.0e} f64",
            {
                "numpy": lambda: np.cumsum(flat),
                "lazyfuse": lambda: lf.cumsum(flat).compute(),
                "numba loop": lambda: numba_cumsum_flat(flat),
            },
            1e-9,
        )
    )
    if hasattr(lf, "var"):
        found.append(
            (
                f"var rows {x.shape} f32",
                {
                    "numpy": lambda: x.var(axis=1),
                    "lazyfuse": lambda: lf.var(x, axis=1).compute(),
                    "numba loop": lambda: numba_var_rows(x),
                },
                1e-4,
            )
        )
    if hasattr(lf, "einsum"):
        a = rng.standard_normal((16, 64, 64) if quick else (64, 256, 256)).astype(np.float32)
        found.append(
            (
                f"einsum bij,bjk->bik {a.shape}",
                {
                    "numpy": lambda: np.einsum("bij,bjk->bik", a, a),
                    "lazyfuse": lambda: lf.einsum("bij,bjk->bik", a, a).compute(),
                    "numpy matmul": lambda: a @ a,
                },
                1e-3,
            )
        )
        found.append(
            (
                f"einsum ij,ij->i {x.shape}",
                {
                    "numpy": lambda: np.einsum("ij,ij->i", x, x),
                    "lazyfuse": lambda: lf.einsum("ij,ij->i", x, x).compute(),
                    "numba loop": lambda: numba_rowdot(x, x),
                },
                1e-3,
            )
        )
    return found


def main(argv: list[str] | None = None) -> int:
    args = benchmark_arguments(__doc__, argv)
    print(f"{'workload':40s} {'contender':14s} {'ms':>10s} {'numpy/this':>11s}")
    for name, contenders, rtol in workloads(args.quick):
        expected = contenders["numpy"]()
        for who, fn in contenders.items():
            np.testing.assert_allclose(
                np.asarray(fn(), dtype=np.float64), expected, rtol=rtol, atol=rtol, err_msg=who
            )
        times = interleaved_medians(list(contenders.values()), budget=args.budget)
        base = times[0]
        for who, seconds in zip(contenders, times, strict=True):
            print(f"{name:40s} {who:14s} {seconds * 1e3:10.2f} {base / seconds:11.2f}")
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
