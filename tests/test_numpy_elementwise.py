"""Elementwise ops against NumPy: every operator and function, dtype pairs, Python
scalars (weak, NEP 50), broadcasting and strided layouts."""

from __future__ import annotations

import operator

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import lazyfuse as lf
from lazyfuse import config
from tests.oracle import check
from tests.strategies import DTYPES, arrays, broadcast_shapes

pytestmark = pytest.mark.usefixtures("serial_kernels")

BINARY = {
    "add": (operator.add, np.add),
    "subtract": (operator.sub, np.subtract),
    "multiply": (operator.mul, np.multiply),
    "divide": (operator.truediv, np.true_divide),
    "floor_divide": (operator.floordiv, np.floor_divide),
    "remainder": (operator.mod, np.remainder),
    "power": (operator.pow, np.power),
    "maximum": (lf.maximum, np.maximum),
    "minimum": (lf.minimum, np.minimum),
    "less": (operator.lt, np.less),
    "less_equal": (operator.le, np.less_equal),
    "greater": (operator.gt, np.greater),
    "greater_equal": (operator.ge, np.greater_equal),
    "equal": (operator.eq, np.equal),
    "not_equal": (operator.ne, np.not_equal),
    "bitwise_and": (operator.and_, np.bitwise_and),
    "bitwise_or": (operator.or_, np.bitwise_or),
    "bitwise_xor": (operator.xor, np.bitwise_xor),
}
SAME = [(d, d) for d in DTYPES]
# Mixed pairs check the casts to NumPy's loop dtype; the cast code is shared by every
# op, so a few ops of each kind (arithmetic, division, comparison) cover it.
MIXED = [
    (np.dtype(a), np.dtype(b))
    for a, b in [("int32", "int64"), ("int32", "float32"), ("int64", "float64"), ("float32", "float64"),
                 ("bool", "int32"), ("bool", "float64")]
]  # fmt: skip
MIXED_OPS = ["add", "divide", "floor_divide", "less", "maximum"]
UNARY = {
    "negative": (operator.neg, np.negative),
    "abs": (abs, np.abs),
    "invert": (operator.invert, np.invert),
    "exp": (lf.exp, np.exp),
    "log": (lf.log, np.log),
    "sqrt": (lf.sqrt, np.sqrt),
    "sin": (lf.sin, np.sin),
    "cos": (lf.cos, np.cos),
    "tanh": (lf.tanh, np.tanh),
    "sigmoid": (lf.sigmoid, lambda x: 1 / (1 + np.exp(-x))),
    "relu": (lf.relu, lambda x: np.maximum(x, 0)),
}


def _exponent_safe(name: str, dtype: np.dtype, b: np.ndarray) -> np.ndarray:
    """Integer powers with negative exponents raise (tested apart); keep results small."""
    if name == "power" and dtype.kind in "iub":
        return np.abs(b) % 4
    return b


@pytest.mark.parametrize(
    ("name", "pair"),
    [(n, p) for n in sorted(BINARY) for p in SAME] + [(n, p) for n in MIXED_OPS for p in MIXED],
    ids=lambda v: v if isinstance(v, str) else f"{v[0]}-{v[1]}",
)
@given(data=st.data())
def test_binary_operators_match_numpy(name, pair, data):
    op, reference = BINARY[name]
    shape_a, shape_b = data.draw(broadcast_shapes())
    a = data.draw(arrays(pair[0], shape_a))
    b = _exponent_safe(name, pair[1], data.draw(arrays(pair[1], shape_b)))
    check(lambda x, y: op(lf.asarray(x), lf.asarray(y)), reference, a, b)


@pytest.mark.parametrize("name", ["add", "divide", "floor_divide", "power", "less"])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("scalar", [3, -2.5, True], ids=["int", "float", "bool"])
@given(data=st.data())
def test_python_scalars_are_weak(name, dtype, scalar, data):
    """NEP 50: ``x_f32 * 2.0`` stays float32, ``x_i32 + 3`` stays int32; on either side."""
    op, reference = BINARY[name]
    x = data.draw(arrays(dtype, low=1 if name == "power" else -20, high=9 if name == "power" else 20))
    check(lambda v: op(lf.asarray(v), scalar), lambda v: reference(v, scalar), x)
    if name != "power" or not isinstance(scalar, float):
        check(lambda v: op(scalar, lf.asarray(v)), lambda v: reference(scalar, v), x)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", sorted(UNARY))
@given(data=st.data())
def test_unary_functions_match_numpy(name, dtype, data):
    fn, reference = UNARY[name]
    low, high = (0.0, 30.0) if name in ("log", "sqrt") and dtype.kind == "f" else (-30.0, 30.0)
    x = data.draw(arrays(dtype, low=low, high=high))
    check(lambda v: fn(lf.asarray(v)), reference, x)


@pytest.mark.parametrize("target", DTYPES, ids=str)
@pytest.mark.parametrize("source", DTYPES, ids=str)
@given(data=st.data())
def test_astype_matches_numpy(source, target, data):
    x = data.draw(arrays(source, low=-1000, high=1000))
    check(lambda v: lf.asarray(v).astype(target), lambda v: v.astype(target), x)
    check(lambda v: lf.astype(v, target), lambda v: v.astype(target), x)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@given(data=st.data())
def test_where_matches_numpy(dtype, data):
    shapes = data.draw(broadcast_shapes(count=3))
    c = data.draw(arrays(np.dtype(bool), shapes[0]))
    x, y = data.draw(arrays(dtype, shapes[1])), data.draw(arrays(dtype, shapes[2]))
    check(lambda *a: lf.where(*a), np.where, c, x, y)
    check(lambda cc, xx: lf.where(lf.asarray(cc), xx, 0.5), lambda cc, xx: np.where(cc, xx, 0.5), c, x)


@pytest.mark.parametrize("parallel", [True], ids=["parallel"])
@given(data=st.data())
def test_chains_of_ops_on_strided_inputs(parallel, data):
    """A fused chain reads transposed, negative-stride and sliced inputs in place."""
    dtype = data.draw(st.sampled_from([np.dtype(np.float32), np.dtype(np.float64)]))
    shape_a, shape_b = data.draw(broadcast_shapes())
    a, b = data.draw(arrays(dtype, shape_a)), data.draw(arrays(dtype, shape_b))

    def expr(x, y, exp=np.exp, maximum=np.maximum):
        return maximum((x * y + 1.5) * exp(-abs(x)), y / 3)

    with config.override(parallel=parallel):
        check(lambda x, y: expr(lf.asarray(x), lf.asarray(y), lf.exp, lf.maximum), expr, a, b)
