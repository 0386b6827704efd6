"""Creation functions against NumPy; index-space values cost no memory in kernels."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import assert_matches
from hypothesis import given, settings
from hypothesis import strategies as st

import lazyfuse as lf

DTYPES = ["bool", "int32", "int64", "float32", "float64"]


def test_constants_match_numpy_for_every_dtype(serial_kernels):
    made, expected = [], []
    for dtype in DTYPES:
        made += [lf.zeros((2, 3), dtype), lf.ones(4, dtype=dtype), lf.full((2, 1), 7, dtype=dtype)]
        expected += [np.zeros((2, 3), dtype), np.ones(4, dtype=dtype), np.full((2, 1), 7, dtype=dtype)]
        made.append(lf.empty((0, 2), dtype))
        expected.append(np.zeros((0, 2), dtype))
    like = np.arange(6, dtype=np.int32).reshape(2, 3)
    made += [lf.zeros_like(like), lf.ones_like(lf.asarray(like), dtype=np.float32), lf.full_like(like, 2.5)]
    expected += [np.zeros_like(like), np.ones_like(like, dtype=np.float32), np.full_like(like, 2.5)]
    made += [lf.full((), True), lf.full(3, 1.5), lf.empty_like(like)]
    expected += [np.full((), True), np.full(3, 1.5), np.zeros_like(like)]
    for got, want in zip(lf.compute(*made), expected, strict=True):
        assert_matches(got, want)
        assert got.flags.writeable


ARANGES = [(5,), (2, 11, 3), (10, 2, -3), (0.5, 3.0, 0.5), (3, 1), (-2.5, 2.0, 0.7), (0,), (1, 2, 0.25)]


@pytest.mark.parametrize("args", ARANGES, ids=repr)
def test_arange_matches_numpy(serial_kernels, args):
    assert_matches(lf.arange(*args).compute(), np.arange(*args))


def test_arange_dtype_and_errors():
    assert_matches(lf.arange(5, dtype=np.float32).compute(), np.arange(5, dtype=np.float32))
    assert_matches(lf.arange(np.int32(4)).compute(), np.arange(np.int32(4)).astype(np.int64))
    with pytest.raises(ZeroDivisionError):
        lf.arange(0, 5, 0)


@settings(max_examples=15)
@given(
    start=st.floats(-100, 100),
    stop=st.floats(-100, 100),
    num=st.integers(0, 40),
    endpoint=st.booleans(),
)
def test_linspace_matches_numpy(serial_kernels, start, stop, num, endpoint):
    got, step = lf.linspace(start, stop, num, endpoint=endpoint, retstep=True)
    want, want_step = np.linspace(start, stop, num, endpoint=endpoint, retstep=True)
    assert_matches(got.compute(), want, atol=1e-12)
    assert step == want_step or (np.isnan(step) and np.isnan(want_step))


def test_linspace_integer_dtype_rounds_down_as_numpy_2():
    assert_matches(lf.linspace(-3, 10, 7, dtype=np.int64).compute(), np.linspace(-3, 10, 7, dtype=np.int64))


@pytest.mark.parametrize("k", [-2, 0, 1, 5])
def test_eye_tril_triu_match_numpy(serial_kernels, k):
    m = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    b = np.ones((3, 3), bool)
    made = [lf.eye(3, 4, k=k), lf.eye(2, dtype=np.int32, k=k), lf.tril(m, k), lf.triu(m, k), lf.tril(b, k)]
    got = lf.compute(*made)
    want = [np.eye(3, 4, k=k), np.eye(2, dtype=np.int32, k=k), np.tril(m, k), np.triu(m, k), np.tril(b, k)]
    for a, w in zip(got, want, strict=True):
        assert_matches(a, w)
    assert_matches(lf.triu(np.arange(3), k).compute(), np.triu(np.arange(3), k))


def test_index_space_costs_no_memory_in_a_kernel():
    doubled = lf.arange(1000) * 2.0
    (kernel,) = doubled.kernels()
    assert "a0" not in kernel.source  # no array read: the index is the loop's
    assert_matches(doubled.compute(), np.arange(1000) * 2.0)
    x = np.random.default_rng(0).random((6, 6))
    masked = lf.asarray(x) * lf.eye(6) + lf.arange(6)[None, :]
    (kernel,) = masked.kernels()
    assert "a0" in kernel.source and "a1" not in kernel.source  # only x is read
    assert_matches(masked.compute(), x * np.eye(6) + np.arange(6)[None, :])


def test_creation_on_the_cuda_target():
    got = (lf.eye(4) * 3.0 + lf.arange(4)[:, None] + lf.ones((4, 4))).compute(target="cuda")
    assert_matches(got, np.eye(4) * 3.0 + np.arange(4)[:, None] + 1.0)


def test_bad_shapes_are_refused():
    with pytest.raises(lf.ShapeError, match="negative"):
        lf.zeros((2, -1))
    with pytest.raises(TypeError, match="shape"):
        lf.ones((2.5,))
    with pytest.raises(lf.ShapeError):
        lf.tril(lf.asarray(np.float64(1.0)))
