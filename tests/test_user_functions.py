"""lf.map, lf.zip and lf.reduce with user scalar functions compiled by Numba."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import lazyfuse as lf
from lazyfuse.runtime import compile as runtime_compile
from tests.oracle import assert_same
from tests.strategies import arrays, broadcast_shapes, shapes

F64 = np.dtype(np.float64)


def smooth(v):
    return v * v * (3.0 - 2.0 * v)


@given(data=st.data())
def test_map_matches_a_python_loop(data):
    x = data.draw(arrays(F64, data.draw(shapes())))
    expected = np.vectorize(smooth, otypes=[np.float64])(x) if x.size else np.empty(x.shape)
    assert_same(lf.map(smooth, x).compute(), expected)


@given(data=st.data())
def test_zip_broadcasts(data):
    shape_a, shape_b = data.draw(broadcast_shapes())
    a, b = data.draw(arrays(F64, shape_a)), data.draw(arrays(np.dtype(np.int64), shape_b))
    assert_same(lf.zip(lambda p, q: p * q - 1.0, a, b).compute(), a * b - 1.0)


def _fold(values):
    acc = 1.0
    for v in values:
        acc = acc * 0.5 + v  # not associative: the order matters
    return acc


@pytest.mark.parametrize("axis", [None, 0, 1, -1, (0, 1)])
def test_reduce_is_a_left_fold_in_c_order(axis):
    x = np.arange(12.0).reshape(3, 4) - 5
    got = lf.reduce(lambda acc, v: acc * 0.5 + v, x, axis=axis, start=1.0).compute()
    if axis in (None, (0, 1)):
        expected = np.asarray(_fold(x.reshape(-1)))
    else:
        expected = np.apply_along_axis(_fold, axis, x)
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_result_dtypes_are_what_numba_infers():
    x = np.arange(5, dtype=np.int32)
    assert lf.map(lambda v: v > 2, x).dtype == np.bool_
    assert lf.map(lambda v: v * 2, x).dtype == np.int64
    assert lf.map(lambda v: math.sqrt(v), x).dtype == np.float64
    assert lf.reduce(lambda acc, v: max(acc, v), x, start=-np.inf).dtype == np.float64
    assert lf.reduce(lambda acc, v: acc + v, x, start=0).compute() == 10


def test_inline_lambdas_compile_once():
    def step(x):
        return lf.map(lambda v: v + 1.0, x)  # a new lambda object on every call

    x = lf.asarray(np.arange(6.0))
    step(x).compute()
    before = runtime_compile.STATS["compiles"]
    for _ in range(3):
        np.testing.assert_array_equal(step(x).compute(), np.arange(6.0) + 1)
    assert runtime_compile.STATS["compiles"] == before


def test_user_functions_fuse_with_other_ops():
    x = lf.asarray(np.linspace(0, 1, 12).reshape(3, 4))
    expr = lf.map(smooth, x * 2.0).sum(axis=1)
    assert len(expr.kernels()) == 1
    v = np.linspace(0, 1, 12).reshape(3, 4) * 2.0
    np.testing.assert_allclose(expr.compute(), smooth(v).sum(axis=1), rtol=1e-12)


def test_a_function_numba_cannot_compile_is_reported_where_written():
    def needs_python(v):
        return v.no_such_attribute

    with pytest.raises(lf.UserFunctionError, match="needs_python") as info:
        lf.map(needs_python, np.ones(3))
    message = str(info.value)
    assert "no_such_attribute" in message  # Numba's reason
    assert "test_user_functions.py" in message  # where the function is
    assert "generated kernel source:" in message and ".py" in message
    with pytest.raises(lf.UserFunctionError, match="returns"):
        lf.map(lambda v: (v, v), np.ones(3))
    with pytest.raises(TypeError, match="expected a Python function"):
        lf.map(3, np.ones(3))
