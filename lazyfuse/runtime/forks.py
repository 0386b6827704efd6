"""A child forked after a parallel kernel ran computes with serial kernels.

Note: with GNU OpenMP (Numba's ``omp`` threading layer on Linux) a child forked from a
process that has run a parallel region cannot start one: Numba prints "fork() called
from a process already using GNU OpenMP, this is unsafe" and ends the child with
SIGTERM. Fork is the default start method of ``multiprocessing`` on Linux before Python
3.14 (Dask's and PyTorch's workers, pytest-xdist). So such a child switches to serial
kernels (``parallel=False``) for the rest of its life; its results are the same. Other
threading layers (TBB, Intel OpenMP, workqueue) and children forked before any parallel
kernel ran keep their threads.
"""

from __future__ import annotations

import os

import numba

from lazyfuse import config


def threads_survive_fork() -> bool:
    """Whether a child forked now could run parallel kernels."""
    try:
        layer = numba.threading_layer()
    except ValueError:  # no parallel kernel has run: the child starts its own threads
        return True
    if layer != "omp":
        return True
    from numba.np.ufunc import omppool  # Note: importable once the omp layer is loaded

    return getattr(omppool, "openmp_vendor", "GNU") != "GNU"


def _after_fork_in_child() -> None:
    """Serial kernels from now on where the parent's threads cannot follow the fork (the
    threading layer's state is the parent's, copied)."""
    if config.get().parallel and not threads_survive_fork():
        config.set_for_process(parallel=False)


os.register_at_fork(after_in_child=_after_fork_in_child)
