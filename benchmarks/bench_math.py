"""Vectorizable scalar math (``lazyfuse.runtime.fastmath``) against NumPy, numexpr and a
Numba ``prange`` loop calling the C library, one function at a time over 1e7 elements
(pow: two input arrays, x ** y).

    python benchmarks/bench_math.py [--n 10000000] [--repeats 7] [--only exp,log,pow]

Two rows of lazyfuse's numbers per function:
- ``lazyfuse``: what a user runs, ``lf.exp(x).compute()``. Its output comes from
  lazyfuse's pool (runtime/buffers.py): the memory of the result the previous round
  dropped, already mapped, so no page faults (``LAZYFUSE_POOL_BYTES=0`` turns it off).
  expm1 and log1p are not ops of the graph: "-". ``lf.power`` calls the C library's
  pow (see the README's Math functions), so its row is the C library's speed.
- ``fastmath loop``: the same fastmath function in the same hand-written ``prange`` loop
  as the C library's, both allocating their output with ``np.empty_like(x)``. This
  compares the math alone.
The others allocate their output, with NumPy's allocator for all (the Numba loops get
``np.empty_like(x)`` from their Python wrapper: NumPy asks the kernel for huge pages on
large arrays, Numba's own allocator does not, and the 4 KiB page faults of a fresh 80 MB
array alone cost more than an exp over it). The contenders run in turns (one call each per
round, ``interleaved_medians``), so the ratios hold on a machine whose speed drifts.
GB/s counts the bytes read and written. The ratios are a contender's time over lazyfuse's.
"""

from __future__ import annotations

import argparse

import numba
import numexpr
import numpy as np
from numba import prange

import lazyfuse as lf
from lazyfuse.runtime import fastmath
from lazyfuse.timing import interleaved_medians

NUMEXPR_THREADS = 2


def _sigmoid_numpy(x):
    return 1 / (1 + np.exp(-x))


# name: (NumPy function, numexpr expression or None, input range)
CASES = {
    "exp": (np.exp, "exp(x)", (-10.0, 10.0)),
    "expm1": (np.expm1, "expm1(x)", (-10.0, 10.0)),
    "log": (np.log, "log(x)", (1e-3, 1e3)),
    "log1p": (np.log1p, "log1p(x)", (-0.9, 1e3)),
    "tanh": (np.tanh, "tanh(x)", (-10.0, 10.0)),
    "sigmoid": (_sigmoid_numpy, "1 / (1 + exp(-x))", (-10.0, 10.0)),
    "sin": (np.sin, "sin(x)", (-100.0, 100.0)),
    "cos": (np.cos, "cos(x)", (-100.0, 100.0)),
    # pow(x, y): x from this range, y uniform in POW_Y_RANGE (a second input array)
    "pow": (np.power, "x**y", (0.1, 10.0)),
}
BINARY = {"pow"}
# the graph's op for each function, where there is one
OPS = {
    "exp": lf.exp,
    "log": lf.log,
    "tanh": lf.tanh,
    "sigmoid": lf.sigmoid,
    "sin": lf.sin,
    "cos": lf.cos,
    "pow": lf.power,
}
POW_Y_RANGE = (-10.0, 10.0)


def _prange_loop(scalar, binary: bool = False):
    """A hand-written parallel loop calling ``scalar`` (fastmath's, or a NumPy ufunc,
    which Numba lowers to the C library) on x, or on x and y when ``binary``."""
    if binary:

        @numba.njit(parallel=True, error_model="numpy")
        def kernel2(x, y, out):
            for i in prange(x.shape[0]):
                out[i] = scalar(x[i], y[i])

        def run2(x, y):
            out = np.empty_like(x)
            kernel2(x, y, out)
            return out

        return run2

    @numba.njit(parallel=True, error_model="numpy")
    def kernel(x, out):
        for i in prange(x.shape[0]):
            out[i] = scalar(x[i])

    def run(x):
        out = np.empty_like(x)
        kernel(x, out)
        return out

    return run


@numba.njit(inline="always", error_model="numpy")
def _libm_pow(x, y):
    return x**y


def _libm_scalar(name: str, dtype):
    if name == "sigmoid":
        one = dtype.type(1)

        @numba.njit(inline="always", error_model="numpy")
        def sigmoid(x):
            return one / (one + np.exp(-x))

        return sigmoid
    if name == "pow":
        return _libm_pow
    return getattr(np, name)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000_000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--only", default="", help="comma-separated function names")
    args = parser.parse_args(argv)
    numexpr.set_num_threads(NUMEXPR_THREADS)
    names = [n for n in CASES if not args.only or n in args.only.split(",")]
    rng = np.random.default_rng(0)
    print(
        f"n = {args.n:.0e}, {numba.config.NUMBA_NUM_THREADS} Numba threads, numexpr {NUMEXPR_THREADS} threads"
    )
    columns = ("lazyfuse ms", "GB/s", "x NumPy", "x numexpr", "x Numba+libm", "loop ms", "loop x libm")
    widths = (11, 6, 8, 9, 12, 8, 11)
    header = f"{'function':9} {'dtype':7} " + " ".join(
        f"{c:>{w}}" for c, w in zip(columns, widths, strict=True)
    )
    print(header)
    print("-" * len(header))
    for name in names:
        numpy_fn, expression, (low, high) = CASES[name]
        for dtype in (np.dtype(np.float32), np.dtype(np.float64)):
            binary = name in BINARY
            inputs = [rng.uniform(low, high, args.n).astype(dtype)]
            if binary:
                inputs.append(rng.uniform(*POW_Y_RANGE, args.n).astype(dtype))
            ours = _prange_loop(fastmath.FUNCTIONS[(name, "f32" if dtype == np.float32 else "f64")], binary)
            libm = _prange_loop(_libm_scalar(name, dtype), binary)
            contenders = [lambda a=inputs, f=ours: f(*a), lambda a=inputs, f=numpy_fn: f(*a)]
            contenders.append(lambda a=inputs, f=libm: f(*a))
            if expression is not None:
                local = dict(zip("xy", inputs, strict=False))
                contenders.append(lambda e=expression, d=local: numexpr.evaluate(e, local_dict=d))
            if name in OPS:
                tensors = [lf.asarray(a) for a in inputs]
                contenders.append(lambda t=tensors, op=OPS[name]: op(*t).compute())
                check = contenders[-1]()
                np.testing.assert_allclose(
                    check, numpy_fn(*inputs), rtol=1e-5 if dtype == np.float32 else 1e-13
                )
            times = interleaved_medians(contenders, repeats=args.repeats)
            t_loop, t_numpy, t_libm = times[:3]
            t_ne = times[3] if expression is not None else None
            t_ours = times[-1] if name in OPS else None
            print(_row(name, dtype, inputs, t_ours, t_numpy, t_ne, t_libm, t_loop))


def _row(name, dtype, inputs, t_ours, t_numpy, t_ne, t_libm, t_loop) -> str:
    """One line of the table: "-" where lazyfuse or numexpr has no contender."""
    if t_ours is None:
        cells = f"{'-':>11} {'-':>6} {'-':>8} {'-':>9} {'-':>12}"
    else:
        gbs = (len(inputs) + 1) * inputs[0].nbytes / t_ours / 1e9
        ne_ratio = f"{t_ne / t_ours:9.2f}" if t_ne is not None else f"{'-':>9}"
        cells = f"{t_ours * 1e3:11.2f} {gbs:6.1f} {t_numpy / t_ours:8.2f} {ne_ratio} {t_libm / t_ours:12.2f}"
    return f"{name:9} {dtype.name:7} {cells} {t_loop * 1e3:8.2f} {t_libm / t_loop:11.2f}"


if __name__ == "__main__":
    main()
