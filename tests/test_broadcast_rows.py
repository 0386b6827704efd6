"""Rows kernels: elementwise work over contiguous arrays and broadcasts of them (a bias
add, a per-row scale, an outer sum) reads each broadcast input as one row or one column
instead of a stride-0 view (kernels.broadcast_rows, execute._as_rows)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import lazyfuse as lf
from lazyfuse.runtime import plans


def _kernel_names(tensor):
    found, _, _ = plans.plan_for([tensor.node])
    return [kernel.name for call in found.calls for kernel in call.kernels.values()]


CASES = {
    # name: (shape of x, shape of y, expected views, expected source line)
    "bias": ((6, 5), (5,), "fr", "x1 = a1[i1]"),
    "per_row": ((6, 5), (6, 1), "fc", "x1 = a1[i0]"),
    "outer": ((6, 1), (1, 5), "cr", "x0 = a0[i0]"),
    "batched_bias": ((3, 4, 5), (5,), "fr", "x1 = a1[i1]"),
    "batched_rows": ((3, 4, 5), (4, 5), "fr", "x1 = a1[i1]"),
    "leading_batch": ((3, 4, 5), (3, 1, 1), "fc", "x1 = a1[i0]"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_broadcasts_of_contiguous_arrays_run_a_rows_kernel(name):
    x_shape, y_shape, views, line = CASES[name]
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal(x_shape), rng.standard_normal(y_shape)
    expr = lf.maximum(lf.asarray(x) + lf.asarray(y), 0)
    np.testing.assert_array_equal(expr.compute(), np.maximum(x + y, 0))
    (name_used,) = _kernel_names(expr)
    assert name_used.endswith(f"_rows_{views}"), name_used
    (kernel,) = [k for call in plans.plan_for([expr.node])[0].calls for k in call.kernels.values()]
    assert line in kernel.source and "prange(n0)" in kernel.source and "q // n1" not in kernel.source


def test_strided_inputs_keep_the_strided_kernel():
    plans.clear()  # Note: a plan of the same form made by another test holds its rows kernel
    x = np.arange(30.0).reshape(6, 5)
    expr = lf.asarray(x.T) + lf.asarray(np.arange(6.0))  # a transpose is not contiguous
    np.testing.assert_array_equal(expr.compute(), x.T + np.arange(6.0))
    assert not any("_rows_" in name for name in _kernel_names(expr))


def test_a_new_size_reuses_the_rows_kernel():
    def expr(rows, cols):
        return lf.asarray(np.ones((rows, cols))) + lf.asarray(np.arange(float(cols)))

    expr(4, 3).compute()
    before = lf.cache_info()["compiles"]
    for rows, cols in [(7, 9), (100, 2), (2, 100)]:
        expected = np.broadcast_to(1.0 + np.arange(float(cols)), (rows, cols))
        np.testing.assert_array_equal(expr(rows, cols).compute(), expected)
    assert lf.cache_info()["compiles"] == before


dims = st.integers(1, 4)


@given(
    st.lists(dims, min_size=2, max_size=4),
    st.lists(st.booleans(), min_size=4, max_size=4),
    st.sampled_from([np.float32, np.float64, np.int32, np.int64, np.bool_]),
)
def test_any_broadcast_pattern_matches_numpy(shape, keep, dtype):
    """y keeps a random subset of x's axes (size 1 elsewhere): rows kernels, or the
    strided one where no split fits, give NumPy's answer."""
    rng = np.random.default_rng(len(shape))
    y_shape = tuple(n if k else 1 for n, k in zip(shape, keep, strict=False))
    x = (rng.standard_normal(shape) * 4).astype(dtype)
    y = (rng.standard_normal(y_shape) * 4).astype(dtype)
    got = (
        (lf.asarray(x) - lf.asarray(y)).compute()
        if dtype != np.bool_
        else (lf.asarray(x) ^ lf.asarray(y)).compute()
    )
    expected = x - y if dtype != np.bool_ else x ^ y
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)
