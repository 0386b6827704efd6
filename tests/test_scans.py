"""cumsum and cumprod against NumPy: scan kernels (rows in parallel, one long axis in
chunks with carries) fused with their elementwise producers; host steps on CUDA."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import assert_matches
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import DTYPES, arrays_and_layout, shapes

import lazyfuse as lf


@settings(max_examples=10)
@given(st.data())
def test_scans_match_numpy(serial_kernels, data):
    dtype = data.draw(st.sampled_from(DTYPES))
    shape = data.draw(shapes(min_dims=1, max_dims=3))
    x, layout = data.draw(arrays_and_layout(dtype, shape))
    axis = data.draw(st.one_of(st.none(), st.integers(-len(shape), len(shape) - 1)))
    t = lf.asarray(x)
    got = lf.compute(lf.cumsum(t, axis=axis), t.cumprod(axis=axis), lf.cumsum(t * 2, axis=axis) + 1)
    assert_matches(got[0], np.cumsum(x, axis=axis), msg=layout)
    assert_matches(got[1], np.cumprod(x, axis=axis), msg=layout)
    assert_matches(got[2], np.cumsum(x * 2, axis=axis) + 1, msg=layout)


def test_scan_dtype_argument_and_errors():
    x = np.arange(6, dtype=np.int32).reshape(2, 3)
    assert_matches(lf.cumsum(x, axis=1, dtype=np.float32).compute(), np.cumsum(x, axis=1, dtype=np.float32))
    assert_matches(lf.cumsum(lf.asarray(np.float64(2.0))).compute(), np.cumsum(np.float64(2.0)))
    with pytest.raises(lf.AxisError):
        lf.cumsum(x, axis=2)


def test_scans_on_the_cuda_target():
    x = np.arange(12.0).reshape(3, 4)
    assert_matches(
        (lf.cumsum(lf.asarray(x) * 2.0, axis=1) + 1.0).compute(target="cuda"), np.cumsum(x * 2, 1) + 1
    )


def test_a_scan_fuses_with_its_elementwise_producer_and_runs_in_chunks():
    x = np.random.default_rng(3).random(100_000)
    running = lf.cumsum(lf.exp(lf.asarray(x)) * 0.5)
    (kernel,) = running.kernels()
    assert "exp" in kernel.name and "cumsum" in kernel.name and "carry" in kernel.source
    assert_matches(running.compute(), np.cumsum(np.exp(x) * 0.5), tol=1e-10)
    rows = lf.cumprod(lf.asarray(x.reshape(100, 1000)) + 0.5, axis=1)
    assert len(rows.kernels()) == 1
    assert_matches(rows.compute(), np.cumprod(x.reshape(100, 1000) + 0.5, axis=1), tol=1e-9)


def test_a_0d_scan_along_axis_0_is_one_element_as_numpys():
    """Found by the random programs: NumPy scans a 0-d array as a 1-d one."""
    assert_matches(lf.cumsum(lf.asarray(np.float32(2)), axis=0).compute(), np.cumsum(np.float32(2), axis=0))
    assert_matches(lf.cumprod(np.int32(3), axis=-1).compute(), np.cumprod(np.int32(3), axis=-1))
