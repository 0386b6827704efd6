"""lazyfuse against the compilers and frameworks people would otherwise pick: JAX's jit
and PyTorch (eager, and ``torch.softmax`` where it has one), on the CPU, in one run.

    python3 -m pip install jax torch               # CPU builds
    python benchmarks/bench_peers.py [--quick] [--budget SECONDS]

Either peer may be missing: its column is then left out. Each contender gets its
inputs in its own form before timing (JAX arrays already on its device, torch tensors
sharing NumPy's memory) and returns its own kind of array (JAX's: waited for with
``block_until_ready``); lazyfuse builds its expression in every call and returns NumPy
arrays. JAX runs with 64-bit types enabled, so float64 workloads stay float64. All
contenders run in turns (``interleaved_medians``); each result is checked against NumPy
first. Ratios are the contender's time over lazyfuse's (above 1: lazyfuse is faster).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

import lazyfuse as lf
from lazyfuse.timing import benchmark_arguments, interleaved_medians

try:
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
except ImportError:  # pragma: no cover - optional contender
    jax = jnp = None
try:
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
except ImportError:  # pragma: no cover - optional contender
    torch = None


@dataclass
class Workload:
    """``fn(xp, *arrays)`` written once against a namespace ``xp`` with exp, tanh, log,
    sin and sqrt; ``torch_fn`` replaces it for PyTorch where PyTorch has its own kernel
    for the whole workload (and where ``fn`` uses NumPy's reduction keywords, which
    PyTorch's tensors do not take)."""

    name: str
    inputs: list[np.ndarray]
    fn: Callable[..., Any]
    rtol: float
    torch_fn: Callable[..., Any] | None = None


def softmax(xp: Any, x: Any) -> Any:
    e = xp.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def layernorm(xp: Any, x: Any) -> Any:
    centered = x - x.mean(axis=1, keepdims=True)
    return centered / xp.sqrt((centered * centered).mean(axis=1, keepdims=True) + 1e-5)


def chain(xp: Any, a: Any, b: Any, c: Any, d: Any) -> Any:
    return (a * b + c) * xp.exp(-d)


def transcendental(xp: Any, a: Any) -> Any:
    return xp.tanh(a) + xp.log(abs(a) + 1) * xp.sin(a)


def mlp_layer(xp: Any, x: Any, w: Any, b: Any) -> Any:
    return xp.tanh(x @ w + b)


def workloads(quick: bool) -> list[Workload]:
    rng = np.random.default_rng(0)
    n, rows, cols = (100_000, 400, 250) if quick else (10_000_000, 4000, 2500)
    matrix = rng.standard_normal((rows, cols))
    vectors = [rng.standard_normal(n) for _ in range(4)]
    batch, width = (256, 64) if quick else (4096, 256)
    x, w, b = (
        rng.standard_normal((batch, width)),
        rng.standard_normal((width, width)),
        rng.standard_normal(width),
    )
    return [
        Workload(
            "softmax rows, f32",
            [matrix.astype(np.float32)],
            softmax,
            1e-5,
            lambda t: torch.softmax(t, dim=1),
        ),
        Workload(
            "layernorm rows, f64",
            [matrix],
            layernorm,
            1e-10,
            lambda t: torch.nn.functional.layer_norm(t, t.shape[1:], eps=1e-5),
        ),
        Workload("chain (a*b+c)*exp(-d), f64", vectors, chain, 1e-12),
        Workload("tanh(a)+log(|a|+1)*sin(a), f64", vectors[:1], transcendental, 1e-12),
        Workload(
            f"tanh(x @ w + b), {batch}x{width} f32",
            [v.astype(np.float32) for v in (x, w, b)],
            mlp_layer,
            1e-4,  # float32 products of 256 terms, summed in other orders
        ),
    ]


def _lazyfuse(w: Workload) -> Callable[[], Any]:
    tensors = [lf.asarray(a) for a in w.inputs]
    return lambda: w.fn(lf, *tensors).compute()


def _jax(w: Workload) -> Callable[[], Any]:
    compiled = jax.jit(lambda *arrays: w.fn(jnp, *arrays))
    arrays = [jnp.asarray(a) for a in w.inputs]
    return lambda: compiled(*arrays).block_until_ready()


def _torch(w: Workload) -> Callable[[], Any]:
    tensors = [torch.from_numpy(a) for a in w.inputs]
    if w.torch_fn is not None:
        return lambda: w.torch_fn(*tensors)
    return lambda: w.fn(torch, *tensors)


def contenders(w: Workload) -> dict[str, Callable[[], Any]]:
    found = {"lazyfuse": _lazyfuse(w), "numpy": lambda: w.fn(np, *w.inputs)}
    if jax is not None:
        found["jax.jit"] = _jax(w)
    if torch is not None:
        found["torch"] = _torch(w)
    return found


def _as_numpy(value: Any) -> np.ndarray:
    if torch is not None and isinstance(value, torch.Tensor):
        return value.numpy()
    return np.asarray(value)


def main(argv: list[str] | None = None) -> int:
    args = benchmark_arguments(__doc__, argv)
    versions = [f"lazyfuse {lf.__version__}", f"numpy {np.__version__}"]
    versions += [
        f"jax {jax.__version__}" if jax else "jax absent",
        f"torch {torch.__version__}" if torch else "torch absent",
    ]
    print(f"{', '.join(versions)}; {os.cpu_count()} cores")
    header = f"{'workload':34s} {'contender':10s} {'median ms':>10s} {'lazyfuse is':>12s}"
    print(header)
    print("-" * len(header))
    for w in workloads(args.quick):
        found = contenders(w)
        expected = w.fn(np, *w.inputs)
        for name, fn in found.items():
            got = _as_numpy(fn())
            np.testing.assert_allclose(got, expected, rtol=w.rtol, atol=w.rtol, err_msg=f"{w.name}: {name}")
        times = interleaved_medians(list(found.values()), repeats=5, budget=args.budget)
        ours = times[0]
        for name, seconds in zip(found, times, strict=True):
            ratio = "" if name == "lazyfuse" else f"{seconds / ours:.2f}x"
            print(f"{w.name:34s} {name:10s} {seconds * 1e3:10.2f} {ratio:>12s}")
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
