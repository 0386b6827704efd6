"""Compile time: Numba's copy propagation, replaced by a faster one with the same result
(runtime/numba_speedups.py), on the parallel kernels that inline lazyfuse's math."""

from __future__ import annotations

import numba
import numpy as np
from numba.parfors import parfor

import lazyfuse as lf
from lazyfuse import config
from lazyfuse.runtime import numba_speedups


def test_the_parfor_passes_use_the_faster_copy_propagation():
    if numba.__version__.rsplit(".", 1)[0] in numba_speedups.CHECKED_VERSIONS:
        assert parfor.copy_propagate is numba_speedups.copy_propagate


def test_the_faster_copy_propagation_gives_numbas_result(monkeypatch, tmp_path):
    """Both run on every block set a real parallel compile hands the parfor passes: a
    chain of math functions (inlined: many blocks) with a reduction."""
    compared = []

    def both(blocks, typemap):
        ours = numba_speedups.copy_propagate(blocks, typemap)
        assert ours == numba_speedups.NUMBA_COPY_PROPAGATE(blocks, typemap)
        compared.append(len(blocks))
        return ours

    monkeypatch.setattr(parfor, "copy_propagate", both)
    data = np.linspace(-2.0, 2.0, 24).reshape(4, 6)
    x = lf.asarray(data)
    expr = (lf.tanh(lf.sin(x) * 0.75) + lf.exp(-abs(x))).sum(axis=1)
    with config.override(cache_dir=tmp_path, parallel=True, serial_below=0):
        got = expr.compute()
    np.testing.assert_allclose(got, (np.tanh(np.sin(data) * 0.75) + np.exp(-abs(data))).sum(axis=1))
    assert compared and max(compared) > 20, compared
