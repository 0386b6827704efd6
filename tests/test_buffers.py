"""The pool of large outputs (runtime/buffers.py): a block is reused only when no array
can reach it, and the pool keeps at most ``pool_bytes``."""

from __future__ import annotations

import threading

import numpy as np

import lazyfuse as lf
from lazyfuse import config
from lazyfuse.runtime import buffers

N = buffers.POOLED_FROM // 8 + 1000  # float64 elements: just over the pooled size
X = np.arange(N, dtype=np.float64)


def _scaled(factor: float) -> np.ndarray:
    return (lf.asarray(X) * factor).compute()  # type: ignore[no-any-return]


def _start(array: np.ndarray) -> int:
    return array.__array_interface__["data"][0]  # type: ignore[no-any-return]


def test_a_large_result_reuses_the_memory_of_one_dropped_before() -> None:
    first = _scaled(2.0)
    where = _start(first)
    del first
    reused = buffers.STATS["reused"]
    second = _scaled(3.0)
    assert _start(second) == where
    assert buffers.STATS["reused"] == reused + 1
    np.testing.assert_array_equal(second, X * 3.0)
    assert lf.cache_info()["pooled_bytes"] == buffers.pooled_bytes()


def test_views_keep_their_block_out_of_the_pool() -> None:
    first = _scaled(2.0)
    tail, turned = first[N // 2 :], first[: N - N % 2].reshape(2, -1).T
    del first
    second = _scaled(3.0)
    assert not np.shares_memory(second, tail) and not np.shares_memory(second, turned)
    np.testing.assert_array_equal(tail, X[N // 2 :] * 2.0)
    np.testing.assert_array_equal(turned, (X[: N - N % 2] * 2.0).reshape(2, -1).T)
    np.testing.assert_array_equal(second, X * 3.0)


def test_small_results_and_a_pool_of_zero_bytes_use_numpy_memory() -> None:
    small = (lf.asarray(X[:1000]) * 2.0).compute()
    assert small.flags.owndata
    with config.override(pool_bytes=0):
        large = _scaled(2.0)
    assert large.flags.owndata
    np.testing.assert_array_equal(large, X * 2.0)


def test_the_pool_keeps_at_most_pool_bytes() -> None:
    buffers.clear()
    one = _scaled(2.0)
    block = buffers.pooled_bytes() + one.nbytes  # about one block
    two = _scaled(3.0)
    with config.override(pool_bytes=block + block // 2):
        del one, two  # the second block returned does not fit: the older one is dropped
        assert 0 < buffers.pooled_bytes() <= block + block // 2
    buffers.clear()
    assert buffers.pooled_bytes() == 0


def test_threads_dropping_and_computing_large_results_get_their_own_values() -> None:
    failures: list[str] = []

    def work(factor: float) -> None:
        for _ in range(6):
            result = _scaled(factor)
            if result[-1] != X[-1] * factor or result[N // 3] != X[N // 3] * factor:
                failures.append(f"factor {factor}: wrong values")

    threads = [threading.Thread(target=work, args=(float(k + 2),)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures


def test_pooled_results_of_other_dtypes_and_shapes_hold_numpy_values() -> None:
    """Broadcast kernels writing 2-D bool and float32 results into pooled blocks."""
    rows = np.linspace(-1.0, 1.0, 4096).reshape(-1, 1)
    columns = np.linspace(-1.0, 1.0, 8193).reshape(1, -1)
    below = (lf.asarray(rows) < lf.asarray(columns)).compute()
    assert below.nbytes >= buffers.POOLED_FROM and type(below.base) is buffers._Lease
    np.testing.assert_array_equal(below, rows < columns)
    single = (
        lf.asarray(rows.astype(np.float32)) * lf.asarray(columns[:, :2049].astype(np.float32))
    ).compute()
    assert single.nbytes >= buffers.POOLED_FROM and single.dtype == np.float32
    np.testing.assert_array_equal(single, rows.astype(np.float32) * columns[:, :2049].astype(np.float32))


_COLLECTED_INSIDE = """
import gc, sys
import numpy as np
from lazyfuse.runtime import buffers

f8 = np.dtype(np.float64)
shape = (buffers.POOLED_FROM // 8,)
for k in range(1, 12):
    a, b = buffers.empty(shape, f8), buffers.empty(shape, f8)
    gc.collect()
    gc.disable()
    cycle = [a]
    cycle.append(cycle)
    del a, cycle  # a: reachable only from cyclic garbage
    gc.set_threshold(gc.get_count()[0] + k)  # the next collection starts k allocations on
    gc.enable()
    del b  # returning b's block: a collection there returns a's block too
print("returned", buffers.pooled_bytes() > 0)
"""


def test_a_lease_that_dies_in_a_collection_inside_the_pool_does_not_hang() -> None:
    """A collection that starts while the pool's lock is held may free another lease,
    whose __del__ takes the lock again: each allocation point in turn (k), in a process of
    its own, with a time limit (it hung for k = 4 and 5 with a plain lock and a generator
    inside it)."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", _COLLECTED_INSIDE], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0 and "returned True" in done.stdout, done.stderr
