"""Arrays for kernel outputs: large ones reuse memory that the program has dropped.

Why: blocks of 32 MiB and more bypass the C library's heap. glibc maps them from the
OS and unmaps them when freed, so each new one arrives as fresh pages. The OS zeroes
each page on its first write: for an 80 MB result the page faults take about as long as
the kernel that fills it (``python benchmarks/bench_math.py --only exp``, run as it is
and with ``LAZYFUSE_POOL_BYTES=0``; see benchmarks/README.md). NumPy, numexpr and a
hand-written Numba loop pay this on every call. Smaller blocks come back from glibc's
heap without faults once its mmap threshold has risen (it rises to the size of the
blocks a program frees, up to 32 MiB), and so do not need a pool.

How: a large output is an array over a pooled block, whose ``base`` is a :class:`_Lease`.
Views of the array keep it alive, because NumPy does not collapse a base chain through
an object that is not an array. When the last array over the block dies, the lease
returns the block to the pool. A block is therefore reused only when no array can
reach it. A block is reused for a result of the same size (rounded up to 2 MiB). The
pool keeps at most ``LAZYFUSE_POOL_BYTES`` (default 1 GiB; 0 turns it off), dropping
the blocks returned longest ago first.
"""

from __future__ import annotations

import math
import threading
from typing import Any

import numpy as np

from lazyfuse import config

POOLED_FROM = 32 << 20  # glibc's largest mmap threshold: from here on, every block is mapped
_ROUND = 2 << 20  # sizes rounded up to huge pages, so that near sizes share blocks
_ALIGN = 64  # arrays start on a cache line

_free: list[np.ndarray] = []  # returned blocks, oldest first
_held = 0  # their bytes
# Note: reentrant, and nothing the garbage collector tracks is made while it is held. A
# lease can die inside a collection (an array in a dead reference cycle), and a
# collection can start at any such allocation, on the thread that holds the lock: with a
# plain lock and a generator inside, the lease's __del__ waited for that lock forever.
_lock = threading.RLock()
STATS = {"reused": 0, "allocated": 0}


def empty(shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """An uninitialized C-contiguous array, like ``np.empty``; large ones are pooled."""
    nbytes = math.prod(shape) * dtype.itemsize
    size = -(-nbytes // _ROUND) * _ROUND + _ALIGN  # the block's bytes
    if nbytes < POOLED_FROM or size > config.get().pool_bytes:
        return np.empty(shape, dtype)
    block = _take(size)
    if block is None:
        block = np.empty(size, np.uint8)
        STATS["allocated"] += 1
    else:
        STATS["reused"] += 1
    return np.asarray(_Lease(block, shape, dtype))


def pooled_bytes() -> int:
    """The bytes of the blocks waiting in the pool."""
    return _held


def clear() -> None:
    """Drop every block in the pool (arrays in use keep theirs until they die)."""
    global _held
    with _lock:
        _free.clear()
        _held = 0


def _take(size: int) -> np.ndarray | None:
    global _held
    with _lock:
        for k in range(len(_free) - 1, -1, -1):  # the most recent first: its pages are warmest
            if _free[k].size == size:
                _held -= size
                return _free.pop(k)
    return None


def _give_back(block: np.ndarray) -> None:
    global _held
    cap = config.get().pool_bytes
    with _lock:
        _free.append(block)
        _held += block.size
        while _free and _held > cap:
            _held -= _free.pop(0).size


class _Lease:
    """The owner of a pooled block while any array over it lives (NumPy reads the
    array's memory from ``__array_interface__`` and keeps the lease as its base)."""

    __slots__ = ("__array_interface__", "_block")

    def __init__(self, block: np.ndarray, shape: tuple[int, ...], dtype: np.dtype) -> None:
        self._block = block
        start = block.ctypes.data
        self.__array_interface__: dict[str, Any] = {
            "data": (start + -start % _ALIGN, False),
            "shape": shape,
            "typestr": dtype.str,
            "version": 3,
        }

    def __del__(self, give_back: Any = _give_back) -> None:  # bound now: safe at exit
        give_back(self._block)
