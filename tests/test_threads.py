"""Computing from several Python threads at once: right answers, one compile per kernel."""

from __future__ import annotations

import numpy as np

import lazyfuse as lf
from lazyfuse.runtime import compile as runtime_compile
from tests.conftest import run_in_threads


def test_eight_threads_share_plans_and_kernels():
    rng = np.random.default_rng(0)
    data = [rng.standard_normal((64, 33)) for _ in range(8)]
    before_kernels = set(runtime_compile._CACHE)
    before = runtime_compile.STATS["compiles"] + runtime_compile.STATS["disk_loads"]

    def shared(x):  # every thread computes this structure
        t = lf.asarray(x)
        return lf.tanh(t - t.mean(axis=1, keepdims=True)) * 0.75

    def distinct(x, k):  # a structure of each thread's own
        t = lf.asarray(x)
        return (t * float(k) + lf.sin(t) * k).sum(axis=k % 2) if k % 4 else lf.relu(t - k).max(axis=0)

    def work(k: int) -> None:
        x = data[k]
        for _ in range(100):
            np.testing.assert_allclose(
                shared(x).compute(),
                np.tanh(x - x.mean(axis=1, keepdims=True)) * 0.75,
                rtol=1e-12,
                atol=1e-13,
            )
            expected = (
                (x * float(k) + np.sin(x) * k).sum(axis=k % 2) if k % 4 else np.maximum(x - k, 0).max(axis=0)
            )
            np.testing.assert_allclose(distinct(x, k).compute(), expected, rtol=1e-12, atol=1e-12)

    run_in_threads(work, 8)
    new_kernels = set(runtime_compile._CACHE) - before_kernels
    compiled = runtime_compile.STATS["compiles"] + runtime_compile.STATS["disk_loads"] - before
    assert compiled == len(new_kernels)  # each kernel compiled (or loaded) exactly once
