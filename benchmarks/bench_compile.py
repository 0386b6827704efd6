"""Compile time: a chain of math functions in one kernel, parallel and serial, with
Numba's own copy propagation and with lazyfuse's (runtime/numba_speedups.py).

    python benchmarks/bench_compile.py [--ops 4,8,12]

Each measurement is a new process with an empty cache directory, which builds
``f_k(... f_2(f_1(x + 1.0) + 2.0) ...)`` over exp, tanh, sin, cos, sigmoid, relu, ...,
computes it once and prints the kernel's compile seconds (``lf.cache_info()``). The
lazyfuse column installs the faster copy propagation (the default); the Numba column
puts Numba's back first. Both give the same kernel (tests/test_compile_time.py).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

CHILD = """
import json, sys
import numpy as np
from numba.core import ir_utils
from numba.parfors import parfor
import lazyfuse as lf
from lazyfuse import config
from lazyfuse.runtime import numba_speedups
ops, parallel, numba_own = int(sys.argv[1]), sys.argv[2] == "1", sys.argv[3] == "1"
if numba_own:
    ir_utils.copy_propagate = parfor.copy_propagate = numba_speedups.NUMBA_COPY_PROPAGATE
steps = [lf.exp, lf.tanh, lf.sin, lf.cos, lf.sigmoid, lf.relu, lambda t: t * 2.0, lambda t: lf.sqrt(abs(t))]
y = lf.asarray(np.random.default_rng(0).random((8, 5)))
for k in range(ops):
    y = steps[k % len(steps)](y + float(k + 1))
with config.override(parallel=parallel, serial_below=0):
    y.compute()
print(json.dumps(lf.cache_info()["compile_seconds"]))
"""


def compile_seconds(ops: int, parallel: bool, numba_own: bool) -> float:
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "LAZYFUSE_CACHE_DIR": cache}
        args = [sys.executable, "-c", CHILD, str(ops), str(int(parallel)), str(int(numba_own))]
        done = subprocess.run(args, env=env, capture_output=True, text=True, check=True)
        return float(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ops", default="4,8,12", help="chain lengths, comma-separated")
    ops = [int(n) for n in parser.parse_args().ops.split(",")]
    print(f"{'ops':>4} {'kernel':>9} {'Numba s':>9} {'lazyfuse s':>11} {'ratio':>6}")
    for n in ops:
        for parallel in (True, False):
            own, ours = compile_seconds(n, parallel, True), compile_seconds(n, parallel, False)
            kind = "parallel" if parallel else "serial"
            print(f"{n:>4} {kind:>9} {own:>9.2f} {ours:>11.2f} {own / ours:>5.1f}x")


if __name__ == "__main__":
    main()
