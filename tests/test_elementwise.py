"""Elementwise ops against NumPy: every binary op on every dtype pair (and the TypeError
where NumPy refuses one), broadcasting, strided layouts, Python scalars on either side
(weak, NEP 50), NumPy arrays on the left, unary functions, where and astype.

The dtype sweeps put all the cases of one op into one ``lf.compute`` (``check_all``):
one plan, a handful of kernels, instead of one compile per (op, dtype pair)."""

from __future__ import annotations

import operator

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import lazyfuse as lf
from tests.conftest import Case, check, check_all
from tests.strategies import (
    DTYPES,
    arrays,
    arrays_and_layout,
    broadcast_shapes,
    python_scalars,
    safe_operand,
)

pytestmark = pytest.mark.usefixtures("serial_kernels")

# name: (Python operator or None, NumPy ufunc)
BINARY = {
    "add": (operator.add, np.add),
    "subtract": (operator.sub, np.subtract),
    "multiply": (operator.mul, np.multiply),
    "divide": (operator.truediv, np.divide),
    "floor_divide": (operator.floordiv, np.floor_divide),
    "remainder": (operator.mod, np.remainder),
    "power": (operator.pow, np.power),
    "maximum": (None, np.maximum),
    "minimum": (None, np.minimum),
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
PAIRS = [(a, b) for a in DTYPES for b in DTYPES]
F32, F64, I32, I64, BOOL = (np.dtype(d) for d in ("float32", "float64", "int32", "int64", "bool"))


def _lf_binary(name):
    """The op as lazyfuse spells it: the operator when there is one, else lf.<name>."""
    op = BINARY[name][0]
    return op if op is not None else getattr(lf, name)


def _values(name, dtype, data, shape, exponent=False):
    """Contiguous: the sweeps check scalar semantics; a strided variant of their many-output
    kernels would compile again (layouts are tested by the broadcasting test)."""
    low, high = (-4, 4) if name == "power" else (-20, 20)
    x = data.draw(arrays(dtype, shape, low=low, high=high, layout="contiguous"))
    return safe_operand(name, dtype, x) if exponent else x


@pytest.mark.parametrize("name", list(BINARY))
@given(data=st.data())
def test_every_dtype_pair_matches_numpy(name, data):
    """All 25 dtype pairs, as operator, as lf.<name>, and with the NumPy array on the left."""
    fn, reference = _lf_binary(name), BINARY[name][1]
    numpy_fn = BINARY[name][0] or reference  # NumPy's operator: bool_array ** 2 is int8, np.power's int64
    n = data.draw(st.integers(0, 6))
    cases = []
    for a_dtype, b_dtype in PAIRS:
        a = _values(name, a_dtype, data, (n,))
        b = _values(name, b_dtype, data, (n,), exponent=True)
        label = f"{name}({a_dtype}, {b_dtype})"
        cases += [
            Case(label, lambda x, y, fn=fn: fn(lf.asarray(x), lf.asarray(y)), numpy_fn, (a, b)),
            Case(label + " lf." + name, getattr(lf, name), reference, (a, b)),
        ]
        if BINARY[name][0] is not None:  # ndarray on the left: Tensor's reflected operator
            cases.append(
                Case(label + " ndarray left", lambda x, y, fn=fn: fn(x, lf.asarray(y)), reference, (a, b))
            )
    check_all(cases)


BROADCAST_CASES = [
    ("add", F32),
    ("subtract", I32),
    ("multiply", BOOL),
    ("divide", I64),
    ("floor_divide", F64),
    ("floor_divide", I32),
    ("remainder", I64),
    ("remainder", F32),
    ("power", F64),
    ("maximum", F32),
    ("less_equal", I64),
    ("bitwise_xor", BOOL),
]


@pytest.mark.parametrize(("name", "dtype"), BROADCAST_CASES, ids=str)
@given(data=st.data())
def test_broadcasting_and_strided_layouts(name, dtype, data):
    """Shapes that broadcast (ranks 0..3, sides 0 and 1), each operand in its own layout:
    transposed, permuted, negative strides, sliced, stride-0."""
    shape_a, shape_b = data.draw(broadcast_shapes())
    a, layout_a = data.draw(arrays_and_layout(dtype, shape_a, low=-4 if name == "power" else -20, high=20))
    b, layout_b = data.draw(arrays_and_layout(dtype, shape_b, low=-4 if name == "power" else -20, high=20))
    b = safe_operand(name, dtype, b)
    fn = _lf_binary(name)
    label = f"{name} {a.shape}[{layout_a}] {b.shape}[{layout_b}]"
    check_all(
        [
            Case(
                label,
                lambda x, y: fn(lf.asarray(x), lf.asarray(y)),
                BINARY[name][0] or BINARY[name][1],
                (a, b),
            )
        ]
    )


SCALAR_KINDS = ["b", "i", "f"]


@pytest.mark.parametrize("name", list(BINARY))
@given(data=st.data())
def test_python_scalars_are_weak_on_either_side(name, data):
    """``x_f32 * 2.0`` stays float32, ``x_i32 + 3`` int32, ``x_bool + 1`` int64 (NEP 50);
    scalars on the left use the reflected operators (or lf.<name>(scalar, x))."""
    fn, reference = _lf_binary(name), BINARY[name][0] or BINARY[name][1]
    shape = (data.draw(st.integers(0, 6)),)  # 1-D: ranks and layouts are tested above
    cases = []
    for dtype in DTYPES:
        for kind in SCALAR_KINDS:
            # no negative integer exponents: NumPy raises, and which cases raise would change
            # the plan (and compile it again) from one example to the next; see test_errors
            scalar = data.draw(python_scalars(kind, low=0 if name == "power" else -9))
            x = _values(name, dtype, data, shape)
            label = f"{name}({dtype}, {scalar!r})"
            cases.append(
                Case(
                    label, lambda v, s=scalar: fn(lf.asarray(v), s), lambda v, s=scalar: reference(v, s), (x,)
                )
            )
            # the array as exponent of a scalar base: keep integer exponents non-negative
            y = safe_operand(name, dtype, x)
            cases.append(
                Case(
                    label + " reflected",
                    lambda v, s=scalar: fn(s, lf.asarray(v)),
                    lambda v, s=scalar: reference(s, v),
                    (y,),
                )
            )
    check_all(cases)


@pytest.mark.parametrize("name", list(BINARY))
def test_module_functions_take_scalars_and_ndarrays_in_either_place(name):
    """lf.<name>(scalar, ndarray) and lf.<name>(ndarray, scalar): Python scalars stay weak
    whichever argument they are, also when the other one is a NumPy array (Tensors on
    either side are covered by the operator tests above)."""
    reference = BINARY[name][1]
    fn = getattr(lf, name)
    cases = []
    for dtype in DTYPES:
        x = safe_operand(name, dtype, np.array([-3, -1, 0, 1, 2, 5]).astype(dtype))
        for scalar in (3, 2, -2.5, True):
            label = f"lf.{name}({{}}) {dtype}, {scalar!r}"
            cases += [
                Case(
                    label.format("scalar, ndarray"),
                    lambda v, s=scalar: fn(s, v),
                    lambda v, s=scalar: reference(s, v),
                    (x,),
                ),
                Case(
                    label.format("ndarray, scalar"),
                    lambda v, s=scalar: fn(v, s),
                    lambda v, s=scalar: reference(v, s),
                    (x,),
                ),
            ]
    check_all(cases)


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
METHODS = ["exp", "log", "sqrt", "sin", "cos", "tanh", "sigmoid", "relu", "abs"]


def _unary_cases(name, xs, label=""):
    """``name`` on each input: as function, method and lf.<name> (where they exist)."""
    fn, reference = UNARY[name]
    cases = []
    for x in xs:
        tag = f"{name}({x.dtype}{list(x.shape)}){label}"
        cases.append(Case(f"{tag} {x.strides}", lambda v: fn(lf.asarray(v)), reference, (x,)))
        if name in METHODS:
            cases.append(Case(f"{tag} method", lambda v: getattr(lf.asarray(v), name)(), reference, (x,)))
        if name in ("negative", "abs"):
            cases.append(Case(f"lf.{tag}", getattr(lf, name), reference, (x,)))
    return cases


# The dtype of the input that test_unary_functions_match_numpy lays out in a drawn layout:
# every dtype for some function (and a conversion to float for some integers).
STRIDED_DTYPE = {
    "negative": I32, "abs": BOOL, "invert": I64, "exp": F32, "log": I32, "sqrt": I64,
    "sin": F64, "cos": F32, "tanh": F64, "sigmoid": I64, "relu": F32,
}  # fmt: skip


@pytest.mark.parametrize("name", list(UNARY))
@given(data=st.data())
def test_unary_functions_match_numpy(name, data):
    """Every dtype, as function, method and operator; log and sqrt of negatives give NaN,
    exp(bool) would be float16 and -bool is refused by NumPy: TypeError. 1-D contiguous
    inputs of every dtype (one flat kernel per function: each rank or layout compiles its
    math again), 0-d and size-0 inputs of every dtype (the same cases: the flat kernel is
    the 1-D one), and one input of one dtype in a drawn layout (negative strides, sliced,
    stride-0), computed apart: only its one case compiles the strided variant (the loads
    of every dtype in every layout are tested by test_broadcasting_and_strided_layouts)."""
    shape = (data.draw(st.integers(0, 6)),)
    xs = [data.draw(arrays(dtype, shape, low=-30, high=30, layout="contiguous")) for dtype in DTYPES]
    check_all(_unary_cases(name, xs))
    for x in (np.array(1.5), np.zeros((0, 3))):
        check_all(_unary_cases(name, [x.astype(dtype) for dtype in DTYPES]))
    dtype = STRIDED_DTYPE[name]
    x, layout = data.draw(arrays_and_layout(dtype, shape, low=-30, high=30))
    check_all(_unary_cases(name, [x], f" [{layout}]"))


@given(data=st.data())
def test_where_on_every_dtype_pair(data):
    """Every (x, y) dtype pair and Python scalar branches (1-D, contiguous)."""
    n = data.draw(st.integers(0, 6))
    shape_c = shape_x = shape_y = (n,)
    c = data.draw(arrays(BOOL, shape_c, layout="contiguous"))
    cases = []
    for x_dtype, y_dtype in PAIRS:
        x = data.draw(arrays(x_dtype, shape_x, layout="contiguous"))
        y = data.draw(arrays(y_dtype, shape_y, layout="contiguous"))
        cases.append(Case(f"where({x_dtype}, {y_dtype})", lf.where, np.where, (c, x, y)))
    for dtype in DTYPES:
        x = data.draw(arrays(dtype, shape_x, layout="contiguous"))
        cases += [
            Case(
                f"where({dtype}, 0.5)",
                lambda cc, v: lf.where(lf.asarray(cc), v, 0.5),
                lambda cc, v: np.where(cc, v, 0.5),
                (c, x),
            ),
            Case(
                f"where(2, {dtype})",
                lambda cc, v: lf.where(cc, 2, lf.asarray(v)),
                lambda cc, v: np.where(cc, 2, v),
                (c, x),
            ),
            Case(
                f"where({dtype} > 0, x, 0)",
                lambda v: lf.where(lf.asarray(v) > 0, v, 0),
                lambda v: np.where(v > 0, v, 0),
                (x,),
            ),
        ]
    check_all(cases)


@pytest.mark.parametrize("dtype", [F64, I32], ids=str)
@given(data=st.data())
def test_where_broadcasts_three_operands(dtype, data):
    shape_c, shape_x, shape_y = data.draw(broadcast_shapes(count=3))
    c, x, y = (
        data.draw(arrays(BOOL, shape_c)),
        data.draw(arrays(dtype, shape_x)),
        data.draw(arrays(dtype, shape_y)),
    )
    check_all([Case(f"where {shape_c} {shape_x} {shape_y}", lf.where, np.where, (c, x, y))])


@pytest.mark.parametrize("source", DTYPES, ids=str)
@given(data=st.data())
def test_astype_between_all_dtypes(source, data):
    """Values stay in [-1000, 1000]: float -> int of NaN, inf or out-of-range values is
    undefined in C (and in NumPy, which warns)."""
    x = data.draw(arrays(source, (data.draw(st.integers(0, 6)),), low=-1000, high=1000))
    cases = []
    for target in DTYPES:
        label = f"{source}.astype({target})"
        cases += [
            Case(label, lambda v, t=target: lf.asarray(v).astype(t), lambda v, t=target: v.astype(t), (x,)),
            Case(
                label + " lf.astype",
                lambda v, t=target: lf.astype(v, t.name),
                lambda v, t=target: v.astype(t),
                (x,),
            ),
            Case(
                label + " then +1",
                lambda v, t=target: lf.asarray(v).astype(t.type) * 1,
                lambda v, t=target: v.astype(t) * 1,
                (x,),
            ),
        ]
    check_all(cases)


def test_float_to_int_truncates_toward_zero():
    x = np.array([-2.75, -0.5, -0.0, 0.5, 1.99, 999.5], np.float32)
    for target in (np.int32, np.int64, np.bool_):
        check(lambda v, t=target: lf.asarray(v).astype(t), lambda v, t=target: v.astype(t), x)


@given(data=st.data())
def test_parallel_chains_read_strided_inputs_in_place(data):
    """A fused chain in a parallel kernel over transposed, negative-stride and sliced
    (and broadcast) inputs."""
    dtype = data.draw(st.sampled_from([F32, F64]))
    shape_a, shape_b = data.draw(broadcast_shapes())
    a, b = data.draw(arrays(dtype, shape_a)), data.draw(arrays(dtype, shape_b))

    def expr(x, y, exp=np.exp, maximum=np.maximum):
        return maximum((x * y + 1.5) * exp(-abs(x)), y / 3)

    with lf.config.override(parallel=True):
        check(lambda x, y: expr(lf.asarray(x), lf.asarray(y), lf.exp, lf.maximum), expr, a, b)
