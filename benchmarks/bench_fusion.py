"""lazyfuse against NumPy, numexpr and hand-written Numba loops, in one run.

    python benchmarks/bench_fusion.py            # the sizes of the issue (about 2 minutes)
    python benchmarks/bench_fusion.py --quick    # small sizes, a smoke run

Every contender allocates its output, as user code would; lazyfuse's time includes
building the expression (what a user pays on each call). Compiles happen in a warm-up
call before timing. Each result is checked against NumPy first. The table gives the
median time, the effective bandwidth (bytes of inputs read once plus output written,
divided by the time) and each contender's speed as a ratio: >1 means lazyfuse is faster.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numba
import numpy as np
from numba import njit, prange

import lazyfuse as lf
from lazyfuse.timing import benchmark_arguments, median_seconds

try:
    import numexpr
except ImportError:  # pragma: no cover - optional contender
    numexpr = None


@dataclass
class Workload:
    name: str
    inputs: dict[str, np.ndarray]
    lazy: Callable[..., Any]
    numpy: Callable[..., Any]
    numba: Callable[..., Any]
    numexpr: str | None = None
    rtol: float = 1e-10
    extra: dict[str, Callable[..., Any]] = field(default_factory=dict)


# hand-written Numba loops: what a user would write by hand --------------------------


@njit(parallel=True, fastmath=False)
def numba_chain(a, b, c, d):
    out = np.empty_like(a)
    for i in prange(a.shape[0]):
        out[i] = (a[i] * b[i] + c[i]) * np.exp(-d[i])
    return out


@njit(parallel=True)
def numba_transcendental(a):
    out = np.empty_like(a)
    for i in prange(a.shape[0]):
        out[i] = np.tanh(a[i]) + np.log(np.abs(a[i]) + 1) * np.sin(a[i])
    return out


@njit(parallel=True)
def numba_compare(a, b):
    out = np.empty(a.shape, np.bool_)
    for i in prange(a.shape[0]):
        out[i] = np.sqrt(a[i] * a[i] + b[i] * b[i]) > 1.0
    return out


@njit(parallel=True)
def numba_row_distance(a, b):
    out = np.empty(a.shape[0], a.dtype)
    for i in prange(a.shape[0]):
        acc = 0.0
        for j in range(a.shape[1]):
            d = a[i, j] - b[i, j]
            acc += d * d
        out[i] = acc
    return out


@njit(parallel=True)
def numba_softmax(x):
    out = np.empty_like(x)
    for i in prange(x.shape[0]):
        m = x[i, 0]
        for j in range(x.shape[1]):
            m = max(m, x[i, j])
        s = x.dtype.type(0)
        for j in range(x.shape[1]):
            e = np.exp(x[i, j] - m)
            out[i, j] = e
            s += e
        for j in range(x.shape[1]):
            out[i, j] /= s
    return out


@njit(parallel=True)
def numba_layernorm(x):
    out = np.empty_like(x)
    n = x.shape[1]
    for i in prange(x.shape[0]):
        s = 0.0
        for j in range(n):
            s += x[i, j]
        mean = s / n
        v = 0.0
        for j in range(n):
            d = x[i, j] - mean
            v += d * d
        scale = 1.0 / np.sqrt(v / n + 1e-5)
        for j in range(n):
            out[i, j] = (x[i, j] - mean) * scale
    return out


@njit(parallel=True)
def numba_broadcast(x, b):
    out = np.empty_like(x)
    eb = np.exp(b)
    lb = np.log(np.abs(b) + 1)
    for i in prange(x.shape[0]):
        for j in range(x.shape[1]):
            out[i, j] = x[i, j] * eb[j] + lb[j]
    return out


@njit(parallel=True)
def numba_column_sum(x):
    chunks = 16
    partial = np.zeros((chunks, x.shape[1]), x.dtype)
    for c in prange(chunks):
        for i in range(c * x.shape[0] // chunks, (c + 1) * x.shape[0] // chunks):
            for j in range(x.shape[1]):
                partial[c, j] += x[i, j]
    return partial.sum(axis=0)


# the workloads --------------------------------------------------------------------------


def _softmax(x: Any, exp: Callable[[Any], Any]) -> Any:
    e = exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _layernorm(x: Any, sqrt: Callable[[Any], Any]) -> Any:
    centered = x - x.mean(axis=1, keepdims=True)
    return centered / sqrt((centered * centered).mean(axis=1, keepdims=True) + 1e-5)


def workloads(n: int, rows: int, cols: int) -> list[Workload]:
    rng = np.random.default_rng(0)
    vec = {k: rng.standard_normal(n) for k in "abcd"}
    vec32 = {k: v.astype(np.float32) for k, v in vec.items()}
    mat = {"a": rng.standard_normal((rows, cols)), "b": rng.standard_normal((rows, cols))}
    row_b = {"x": mat["a"], "b": rng.standard_normal(cols)}

    def chain(a, b, c, d, exp=np.exp):
        return (a * b + c) * exp(-d)

    def transcendental(a, tanh=np.tanh, log=np.log, sin=np.sin):
        return tanh(a) + log(abs(a) + 1) * sin(a)

    return [
        Workload(
            "chain (a*b+c)*exp(-d), f64",
            vec,
            lambda a, b, c, d: chain(a, b, c, d, lf.exp),
            chain,
            numba_chain,
            "(a*b+c)*exp(-d)",
        ),
        Workload(
            "chain (a*b+c)*exp(-d), f32",
            vec32,
            lambda a, b, c, d: chain(a, b, c, d, lf.exp),
            chain,
            numba_chain,
            "(a*b+c)*exp(-d)",
            rtol=1e-5,
        ),
        Workload(
            "tanh(a)+log(|a|+1)*sin(a), f64",
            {"a": vec["a"]},
            lambda a: transcendental(a, lf.tanh, lf.log, lf.sin),
            transcendental,
            numba_transcendental,
            "tanh(a)+log(abs(a)+1)*sin(a)",
        ),
        Workload(
            "sqrt(a*a+b*b) > 1 (bool), f64",
            {"a": vec["a"], "b": vec["b"]},
            lambda a, b: lf.sqrt(a * a + b * b) > 1.0,
            lambda a, b: np.sqrt(a * a + b * b) > 1.0,
            numba_compare,
            "sqrt(a*a+b*b) > 1.0",
        ),
        Workload(
            "((a-b)**2).sum(axis=1), f64",
            mat,
            lambda a, b: ((a - b) ** 2).sum(axis=1),
            lambda a, b: ((a - b) ** 2).sum(axis=1),
            numba_row_distance,
            None,
        ),
        Workload(
            "softmax rows, f32",
            {"x": mat["a"].astype(np.float32)},
            lambda x: _softmax(x, lf.exp),
            lambda x: _softmax(x, np.exp),
            numba_softmax,
            None,
            rtol=1e-5,
        ),
        Workload(
            "layernorm rows, f64",
            {"x": mat["a"]},
            lambda x: _layernorm(x, lf.sqrt),
            lambda x: _layernorm(x, np.sqrt),
            numba_layernorm,
            None,
        ),
        Workload(
            "x*exp(b)+log(|b|+1), b broadcast",
            row_b,
            lambda x, b: x * lf.exp(b) + lf.log(abs(b) + 1),
            lambda x, b: x * np.exp(b) + np.log(np.abs(b) + 1),
            numba_broadcast,
            "x*exp(b)+log(abs(b)+1)",
        ),
        Workload(
            "x.sum(axis=0), f64",
            {"x": mat["a"]},
            lambda x: x.sum(axis=0),
            lambda x: x.sum(axis=0),
            numba_column_sum,
            None,
        ),
    ]


# timing ---------------------------------------------------------------------------------


def contenders(w: Workload) -> dict[str, Callable[[], Any]]:
    wrapped = {k: lf.asarray(v) for k, v in w.inputs.items()}
    result = {
        "lazyfuse": lambda: w.lazy(**wrapped).compute(),
        "numpy": lambda: w.numpy(**w.inputs),
        "numba (hand-written)": lambda: w.numba(*w.inputs.values()),
    }
    if w.numexpr and numexpr is not None:
        result["numexpr"] = lambda: numexpr.evaluate(w.numexpr, local_dict=w.inputs)
    return result


def run(w: Workload, budget: float) -> list[tuple[str, float, float]]:
    expected = np.asarray(w.numpy(**w.inputs))
    nbytes = sum(v.nbytes for v in w.inputs.values()) + expected.nbytes
    rows = []
    for name, fn in contenders(w).items():
        got = np.asarray(fn())
        np.testing.assert_allclose(got, expected, rtol=w.rtol, atol=w.rtol, err_msg=f"{w.name}: {name}")
        seconds = median_seconds(fn, repeats=5, budget=budget)
        rows.append((name, seconds, nbytes / seconds / 1e9))
    return rows


def main(argv: list[str] | None = None) -> int:
    args = benchmark_arguments(__doc__, argv)
    n, rows, cols = (100_000, 400, 250) if args.quick else (10_000_000, 4000, 2500)
    print(
        f"lazyfuse {lf.__version__}, numpy {np.__version__}, numba {numba.__version__}, "
        f"numexpr {getattr(numexpr, '__version__', 'absent')}; {os.cpu_count()} cores, "
        f"{numba.get_num_threads()} Numba threads; n={n:,}, rows x cols={rows}x{cols}"
    )
    header = f"{'workload':36s} {'contender':22s} {'median ms':>10s} {'GB/s':>7s} {'lazyfuse is':>12s}"
    print(header)
    print("-" * len(header))
    for w in workloads(n, rows, cols):
        results = run(w, args.budget)
        ours = dict((name, s) for name, s, _ in results)["lazyfuse"]
        for name, seconds, gbs in results:
            ratio = "" if name == "lazyfuse" else f"{seconds / ours:.2f}x"
            print(f"{w.name:36s} {name:22s} {seconds * 1e3:10.2f} {gbs:7.2f} {ratio:>12s}")
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
