"""matmul against NumPy: 1-D promotion, batch broadcasting, tile edges, empty axes,
transposed and sliced operands, every dtype (integers and bool exact)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import lazyfuse as lf
from tests.oracle import check
from tests.strategies import DTYPES, arrays

pytestmark = pytest.mark.usefixtures("serial_kernels")

SHAPES = [
    ((3,), (3,)),
    ((4,), (4, 5)),
    ((2, 4), (4,)),
    ((33, 33), (33, 33)),
    ((1, 7), (7, 1)),
    ((0, 3), (3, 4)),
    ((3, 0), (0, 2)),
    ((2, 4, 3), (1, 3, 5)),
    ((2, 1, 4, 3), (5, 3, 2)),
    ((2, 45, 33), (2, 33, 40)),
]


@pytest.mark.parametrize(("shape_a", "shape_b"), SHAPES, ids=str)
@given(data=st.data())
def test_matmul_shapes_match_numpy(shape_a, shape_b, data):
    a = data.draw(arrays(np.dtype(np.float64), shape_a))
    b = data.draw(arrays(np.dtype(np.float64), shape_b))
    check(lambda x, y: lf.asarray(x) @ lf.asarray(y), np.matmul, a, b)
    check(lambda x, y: lf.matmul(x, y), np.matmul, a, b)


@pytest.mark.parametrize(
    "pair", [(d, d) for d in DTYPES] + [(np.dtype("int32"), np.dtype("float32"))], ids=str
)
@given(data=st.data())
def test_matmul_dtypes_match_numpy(pair, data):
    a = data.draw(arrays(pair[0], (4, 5)))
    b = data.draw(arrays(pair[1], (5, 3)))
    tolerance = {}
    if a.dtype.kind == "f" or b.dtype.kind == "f":  # products cancel: bound by |a| @ |b|
        eps = np.finfo(np.result_type(a, b)).eps
        tolerance = {"atol": float(8 * eps * (np.abs(a) @ np.abs(b)).max(initial=0)) + 1e-6}
    check(lambda x, y: lf.asarray(x) @ y, np.matmul, a, b, **tolerance)


def test_matmul_with_an_epilogue_and_transposed_operands():
    rng = np.random.default_rng(0)
    a, b, bias = rng.standard_normal((6, 5)), rng.standard_normal((6, 4)), rng.standard_normal(4)
    expr = lf.relu(lf.asarray(a).T @ lf.asarray(b)[::-1] + bias).sum(axis=1)
    np.testing.assert_allclose(expr.compute(), np.maximum(a.T @ b[::-1] + bias, 0).sum(axis=1), rtol=1e-12)
    assert len(expr.kernels()) == 2  # the product, then one fused epilogue


def test_integer_matmul_wraps_like_numpy():
    a = np.full((2, 3), 2**20, np.int32)
    np.testing.assert_array_equal((lf.asarray(a) @ a.T).compute(), a @ a.T)
