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
    """Both run on every block set a real parallel compile hands the parfor passes: an arg
    reduction of a select of a math function (inlined, and conditional expressions: many
    blocks)."""
    compared = []

    def both(blocks, typemap):
        ours = numba_speedups.copy_propagate(blocks, typemap)
        assert ours == numba_speedups.NUMBA_COPY_PROPAGATE(blocks, typemap)
        compared.append(len(blocks))
        return ours

    monkeypatch.setattr(parfor, "copy_propagate", both)
    data = np.linspace(-2.0, 2.0, 24).reshape(4, 6)
    x = lf.asarray(data)
    expr = lf.where(x > 0, lf.tanh(x * 0.75), -x).argmax(axis=1)
    with config.override(cache_dir=tmp_path, parallel=True, serial_below=0):
        got = expr.compute()
    np.testing.assert_array_equal(got, np.where(data > 0, np.tanh(data * 0.75), -data).argmax(axis=1))
    assert compared and max(compared) > 20, compared


def test_siblings_merge_into_kernels_of_at_most_merge_limit_ops(serial_kernels):
    """lf.compute of many outputs over one domain: one kernel for a few, several for
    many (a sweep of every unary function over 0-d and empty inputs in one compute, whose
    kernels had 60 outputs each, compiled in 35 s; in kernels of at most 16 ops, 25 s)."""
    from lazyfuse.graph import fuse
    from lazyfuse.runtime import plans

    x = lf.asarray(np.linspace(0.0, 1.0, 12).reshape(3, 4))
    few = [x * float(k) - 1.0 for k in range(3)]
    assert len(plans.fresh_plan([t.node for t in few]).grouped.groups) == 1
    many = [x * float(k) - 1.0 for k in range(20)]
    groups = plans.fresh_plan([t.node for t in many]).grouped.groups
    assert len(groups) > 1
    assert all(len(g.members) <= fuse.MERGE_LIMIT for g in groups)
    for got, k in zip(lf.compute(*many), range(20), strict=True):
        np.testing.assert_allclose(got, np.linspace(0.0, 1.0, 12).reshape(3, 4) * k - 1.0)
