"""Dispatch cost: a cached 4-op expression at 1k, 100k and 10M float64 elements.

    python benchmarks/bench_dispatch.py

Times ``((a * b + 1.0) * exp(-a)).compute()``, building the expression included, after
a warm-up call (compiles and plans are cached); ``.compute()`` alone of that expression
built once (column "compute us": the runtime's part); the same function under
``lf.jit`` (traced once, then run on the arrays directly), NumPy and a hand-written
Numba loop, run in turns. At 1k elements this is nearly all Python overhead: the cost of
a call.

Then a new process computes an expression that is in the disk cache, twice (the first
fills the cache if it is empty): its first ``compute()``, split into Numba's own start-up
(its typing and target contexts, which the first compile or cache load of any Numba
program builds; with SciPy installed, it also imports scipy.linalg) and what is left
(the plan, the kernels loaded from disk, the threads).
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
from numba import njit, prange

import lazyfuse as lf
from lazyfuse.timing import interleaved_medians


@njit(parallel=True)
def hand_written(a, b):
    out = np.empty_like(a)
    for i in prange(a.shape[0]):
        out[i] = (a[i] * b[i] + 1.0) * np.exp(-a[i])
    return out


def expression(a, b, exp):
    return (a * b + 1.0) * exp(-a)


traced = lf.jit(lambda a, b: expression(a, b, lf.exp))


def main() -> int:
    columns = ["elements", "lazyfuse us", "compute us", "lf.jit us", "numpy us", "numba us", "vs numpy"]
    columns.append("jit vs numpy")
    print(" ".join(f"{c:>12s}" for c in columns))
    for n, repeats in [(1_000, 2000), (100_000, 300), (10_000_000, 10)]:
        rng = np.random.default_rng(0)
        a, b = rng.random(n), rng.random(n)
        ta, tb = lf.asarray(a), lf.asarray(b)
        built = expression(ta, tb, lf.exp)
        contenders = [
            lambda: expression(ta, tb, lf.exp).compute(),  # noqa: B023
            built.compute,
            lambda: traced(a, b),  # noqa: B023
            lambda: expression(a, b, np.exp),  # noqa: B023
            lambda: hand_written(a, b),  # noqa: B023
        ]
        ours, computed, jitted, theirs, hand = (1e6 * t for t in interleaved_medians(contenders, repeats))
        cells = [f"{n:,d}", f"{ours:.1f}", f"{computed:.1f}", f"{jitted:.1f}", f"{theirs:.1f}", f"{hand:.1f}"]
        cells += [f"{theirs / ours:.2f}x", f"{theirs / jitted:.2f}x"]
        print(" ".join(f"{c:>12s}" for c in cells))
    info = lf.cache_info()
    print(
        f"plan cache: {info['hits']} hits, {info['misses']} misses; {info['compiles']} compiles, "
        f"{info['disk_loads']} loaded from disk"
    )
    _new_process()
    return 0


NEW_PROCESS = """
import json, sys, time
started = time.perf_counter()
import numpy as np
import lazyfuse as lf
from numba.core.registry import cpu_target
imported = time.perf_counter()
cpu_target.target_context.refresh()
cpu_target.typing_context.refresh()
numba_ready = time.perf_counter()
x = lf.asarray(np.random.default_rng(0).random((1000, 1000)))
result = (lf.tanh(x * 0.25) - x.mean(axis=1, keepdims=True)).compute()
done = time.perf_counter()
info = lf.cache_info()
print(json.dumps({"import": imported - started, "numba": numba_ready - imported,
                  "rest": done - numba_ready, "compiles": info["compiles"],
                  "disk_loads": info["disk_loads"], "scipy": "scipy" in sys.modules}))
"""


def _new_process() -> None:
    """A new process's first compute() of an expression in the disk cache (see above)."""
    for _ in range(2):
        done = subprocess.run([sys.executable, "-c", NEW_PROCESS], capture_output=True, text=True, check=True)
        got = json.loads(done.stdout.strip().splitlines()[-1])
    print(
        f"new process, an expression in the disk cache: first compute {got['numba'] + got['rest']:.3f} s "
        f"= Numba's start-up {got['numba']:.3f} s + lazyfuse {got['rest']:.3f} s "
        f"({got['compiles']} compiles, {got['disk_loads']} kernels from disk; "
        f"import took {got['import']:.3f} s)"
    )
    if got["scipy"]:
        print("  (SciPy is installed: Numba's start-up imports scipy.linalg, to look for BLAS)")


if __name__ == "__main__":
    sys.exit(main())
