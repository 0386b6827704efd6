"""Scatter-adds: the gradient of a gather adds each cotangent into the table element it
was read from (``np.add.at`` semantics: repeated indices accumulate).

A table read by rows (an embedding ``table[ids]``: one index for the first axis, the
other axes whole) is added row by row by a compiled loop; NumPy's ``np.add.at`` takes
about 25 times as long there (``benchmarks/bench_train.py``, the embedding model). Any
other gather goes through ``np.add.at``. Both are serial: the rows may repeat.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(nogil=True, cache=False)
def _add_rows(out: np.ndarray, rows: np.ndarray, values: np.ndarray) -> None:  # pragma: no cover (compiled)
    extent = out.shape[0]
    for p in range(rows.shape[0]):
        row = rows[p]
        if row < 0:
            row += extent
        for j in range(out.shape[1]):
            out[row, j] += values[p, j]


def add_rows(out: np.ndarray, rows: np.ndarray, values: np.ndarray) -> None:
    """``out[rows[p]] += values[p]`` for each p (``out`` C-contiguous; rows checked in
    range, negative ones counting from the end)."""
    table = out.reshape(out.shape[0], -1)
    _add_rows(
        table,
        np.ascontiguousarray(rows.reshape(-1)),
        np.ascontiguousarray(values).reshape(len(rows.reshape(-1)), -1),
    )
