"""Arrays for kernel outputs: large ones reuse memory that the program has dropped.

Why: blocks of 32 MiB and more bypass the C library's heap. glibc maps them from the
OS and unmaps them when freed, so each new one arrives as fresh pages. The OS zeroes
each page on its first write: 10 ms of page faults for an 80 MB result here, as long as
the kernel that fills it takes. NumPy, numexpr and a hand-written Numba loop pay this
on every call. Smaller blocks come back from glibc's heap without faults, and so do
not need a pool.

How: a large output is an array over a pooled block, whose ``base`` is a :class:`_Lease`.
Views of the array keep it alive, because NumPy does not collapse a base chain through
an object that is not an array. When the last array over the block dies, the lease
returns the block to the pool. A block is therefore reused only when no array can
reach it. The pool keeps at most ``LAZYFUSE_POOL_BYTES`` (default 1 GiB; 0 turns it
off), dropping the blocks returned longest ago first.
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
_lock = threading.Lock()
STATS = {"reused": 0, "allocated": 0}


def empty(shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """An uninitialized C-contiguous array, like ``np.empty``; large ones are pooled."""
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes < POOLED_FROM or nbytes > config.get().pool_bytes:
        return np.empty(shape, dtype)
    size = -(-nbytes // _ROUND) * _ROUND
    block = _take(size)
    if block is None:
        block = np.empty(size + _ALIGN, np.uint8)
        STATS["allocated"] += 1
    else:
        STATS["reused"] += 1
    return np.asarray(_Lease(block, shape, dtype))


def pooled_bytes() -> int:
    """The bytes of the blocks waiting in the pool."""
    with _lock:
        return sum(block.size for block in _free)


def clear() -> None:
    """Drop every block in the pool (arrays in use keep theirs until they die)."""
    with _lock:
        _free.clear()


def _take(size: int) -> np.ndarray | None:
    with _lock:
        for k in range(len(_free) - 1, -1, -1):  # the most recent first: its pages are warmest
            if _free[k].size == size + _ALIGN:
                return _free.pop(k)
    return None


def _give_back(block: np.ndarray) -> None:
    cap = config.get().pool_bytes
    with _lock:
        _free.append(block)
        held = sum(b.size for b in _free)
        while _free and held > cap:
            held -= _free.pop(0).size


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
