"""Dispatch cost: a cached 4-op expression at 1k, 100k and 10M float64 elements.

    python benchmarks/bench_dispatch.py

Times ``((a * b + 1.0) * exp(-a)).compute()``, building the expression included, after
a warm-up call (compiles and plans are cached), next to NumPy and a hand-written
Numba loop. At 1k elements this is nearly all Python overhead: the cost of a call.
"""

from __future__ import annotations

import sys

import numpy as np
from numba import njit, prange

import lazyfuse as lf
from lazyfuse.timing import median_seconds


@njit(parallel=True)
def hand_written(a, b):
    out = np.empty_like(a)
    for i in prange(a.shape[0]):
        out[i] = (a[i] * b[i] + 1.0) * np.exp(-a[i])
    return out


def main() -> int:
    columns = ["elements", "lazyfuse us", "numpy us", "numba us", "vs numpy", "vs numba"]
    print(" ".join(f"{c:>12s}" for c in columns))
    for n, repeats in [(1_000, 2000), (100_000, 300), (10_000_000, 10)]:
        rng = np.random.default_rng(0)
        a, b = rng.random(n), rng.random(n)
        ta, tb = lf.asarray(a), lf.asarray(b)
        ours = 1e6 * median_seconds(lambda: ((ta * tb + 1.0) * lf.exp(-ta)).compute(), repeats)  # noqa: B023
        theirs = 1e6 * median_seconds(lambda: (a * b + 1.0) * np.exp(-a), repeats)  # noqa: B023
        hand = 1e6 * median_seconds(lambda: hand_written(a, b), repeats)  # noqa: B023
        cells = [
            f"{n:,d}",
            f"{ours:.1f}",
            f"{theirs:.1f}",
            f"{hand:.1f}",
            f"{theirs / ours:.2f}x",
            f"{hand / ours:.2f}x",
        ]
        print(" ".join(f"{c:>12s}" for c in cells))
    info = lf.cache_info()
    print(
        f"plan cache: {info['hits']} hits, {info['misses']} misses; {info['compiles']} compiles, "
        f"{info['disk_loads']} loaded from disk"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
