"""softmax, log_softmax, logsumexp, gelu, silu, softplus, log_sigmoid and one_hot against
NumPy references of jax.nn's meaning (jax is not a dependency), their special values,
errors and kernel counts (each of softmax, log_softmax, logsumexp is one kernel per row)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lazyfuse as lf
from lazyfuse import config, functions
from tests.conftest import Case, check_all
from tests.strategies import DTYPES, arrays_and_layout, shapes
from tests.test_reductions import count
from tests.test_statistics import planned_kernels

# jax.nn's meaning, written with NumPy. Bool and integers compute in float64 (lazyfuse's rule).


def _float(x: np.ndarray) -> np.ndarray:
    return x if x.dtype.kind == "f" else x.astype(np.float64)


def np_softmax(x, axis=-1):
    x = _float(x)
    e = np.exp(x - x.max(axis, keepdims=True, initial=-np.inf))
    return e / e.sum(axis, keepdims=True)


def np_log_softmax(x, axis=-1):
    x = _float(x)
    shifted = x - x.max(axis, keepdims=True, initial=-np.inf)
    return shifted - np.log(np.exp(shifted).sum(axis, keepdims=True))


def np_logsumexp(x, axis=None, keepdims=False):
    """scipy.special.logsumexp's (and jax's): shifted by the max where it is finite."""
    x = _float(x)
    largest = x.max(axis, keepdims=True, initial=-np.inf)
    shift = np.where(np.isfinite(largest), largest, 0).astype(x.dtype)
    out = np.log(np.exp(x - shift).sum(axis, keepdims=True)) + shift
    return out if keepdims else np.squeeze(out, axis=axis)


def np_gelu(x, approximate=True):
    x = _float(x)
    if approximate:
        return x * (0.5 * (1.0 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3))))
    erf = np.vectorize(math.erf, otypes=[np.float64])
    return (x * (erf(x / math.sqrt(2)) + 1) / 2).astype(x.dtype)


def np_one_hot(x, num_classes, dtype=np.float64, axis=-1):
    hot = (np.asarray(x)[..., None] == np.arange(num_classes)).astype(dtype)
    return np.moveaxis(hot, -1, axis)


ELEMENTWISE = {
    "gelu": np_gelu,
    "silu": lambda x: _float(x) / (1 + np.exp(-_float(x))),
    "softplus": lambda x: np.logaddexp(_float(x), 0),
    "log_sigmoid": lambda x: -np.logaddexp(-_float(x), 0),
}


@st.composite
def reduced_axes(draw, ndim: int):
    """An int, a negative int or a tuple of axes (softmax's axis is never None)."""
    kind = draw(st.sampled_from(["int", "negative", "tuple"]))
    if kind == "int":
        return draw(st.integers(0, ndim - 1))
    if kind == "negative":
        return draw(st.integers(-ndim, -1))
    return tuple(draw(st.permutations(range(ndim)))[: draw(st.integers(1, ndim))])


@pytest.fixture
def libm_kernels():
    """Serial kernels calling the C library's exp, log, tanh, ...: they compile four times
    faster than the vectorized fast math (LAZYFUSE_MATH=fast, the default), whose functions
    test_fastmath.py tests against NumPy, special values included; these tests check what
    the activations make of them."""
    with config.override(parallel=False, math="libm"):
        yield


@pytest.mark.usefixtures("libm_kernels")
@settings(max_examples=4)
@given(data=st.data())
def test_softmax_family(data):
    """softmax, log_softmax, logsumexp over an int, negative or tuple axis (logsumexp also
    over all axes), any dtype and layout; results within a few ulps per element reduced."""
    shape = data.draw(shapes(min_dims=1, max_side=4))
    axis = data.draw(reduced_axes(len(shape)))
    keepdims = data.draw(st.booleans())
    dtype = data.draw(st.sampled_from(DTYPES))
    x, layout = data.draw(arrays_and_layout(dtype, shape))
    eps = float(np.finfo(_float(x).dtype).eps)
    tol = {"tol": 8 * max(count(shape, axis), 1) * eps, "atol": 8 * max(count(shape, axis), 1) * eps}
    everything = {"tol": 8 * max(x.size, 1) * eps, "atol": 8 * max(x.size, 1) * eps}
    label = f"{dtype}[{layout}] {shape} axis={axis}"
    check_all(
        [
            Case(f"softmax {label}", lambda v: lf.softmax(v, axis), lambda v: np_softmax(v, axis), (x,), tol),
            Case(
                f"log_softmax {label}",
                lambda v: lf.log_softmax(v, axis=axis),
                lambda v: np_log_softmax(v, axis),
                (x,),
                tol,
            ),
            Case(
                f"logsumexp {label} keepdims={keepdims}",
                lambda v: lf.logsumexp(v, axis=axis, keepdims=keepdims),
                lambda v: np_logsumexp(v, axis, keepdims),
                (x,),
                tol,
            ),
            Case(f"logsumexp {label} axis=None", lf.logsumexp, np_logsumexp, (x,), everything),
        ]
    )


@pytest.mark.usefixtures("libm_kernels")
def test_softmax_family_special_values():
    """Rows of -inf, with +inf, with NaN (jax.nn's answers: softmax and log_softmax NaN;
    logsumexp -inf, inf, NaN), a row whose exp overflows without the shift, empty axes
    (softmax: an empty result; logsumexp -inf)."""
    inf, nan = np.inf, np.nan
    rows = np.array([[-inf, -inf, -inf], [inf, 1.0, 2.0], [nan, 1.0, 2.0], [1000.0, 999.0, -inf]])
    check_all(
        [
            Case("softmax", lf.softmax, np_softmax, (rows,)),
            Case("log_softmax", lf.log_softmax, np_log_softmax, (rows,)),
            Case("logsumexp", lambda v: lf.logsumexp(v, axis=1), lambda v: np_logsumexp(v, 1), (rows,)),
            Case(
                "logsumexp empty",
                lambda v: lf.logsumexp(v, 1),
                lambda v: np_logsumexp(v, 1),
                (np.zeros((2, 0)),),
            ),
        ]
    )
    assert lf.softmax(np.zeros((3, 0), np.float32)).compute().shape == (3, 0)
    assert lf.log_softmax(np.zeros((0, 3))).compute().shape == (0, 3)


def test_result_dtypes():
    """Every dtype, without computing: float32 stays float32, the others give float64."""
    for dtype in DTYPES:
        x = np.zeros((2, 3), dtype)
        expected = np.float32 if dtype == np.float32 else np.float64
        for name in ("softmax", "log_softmax", "logsumexp", "gelu", "silu", "softplus", "log_sigmoid"):
            assert getattr(lf, name)(x).dtype == expected, (name, dtype)


@pytest.mark.usefixtures("libm_kernels")
def test_activations():
    """Against NumPy: float64 from -30 to 30 and at the limits (no overflow: inf and -inf
    give the limits, NaN stays NaN), float32 in a transposed layout (stays float32), int32
    (computes in float64). Each array's results are one kernel; few, since these kernels
    take 1-2 s each to compile (test_result_dtypes has every dtype)."""
    wide = np.concatenate([np.linspace(-30, 30, 41), [-np.inf, np.inf, np.nan]])
    transposed = np.linspace(-20, 20, 12, dtype=np.float32).reshape(3, 4).T
    cases = [
        Case(f"{name} float64", getattr(lf, name), reference, (wide,))
        for name, reference in ELEMENTWISE.items()
    ]
    cases += [
        Case("softplus float32", lf.softplus, ELEMENTWISE["softplus"], (transposed,)),
        Case("gelu float32", lf.gelu, ELEMENTWISE["gelu"], (transposed,)),
        Case("silu int32", lf.silu, ELEMENTWISE["silu"], (np.arange(-6, 6, dtype=np.int32),)),
    ]
    check_all(cases)


@pytest.mark.usefixtures("libm_kernels")
@settings(max_examples=2)
@given(data=st.data())
def test_activations_on_every_dtype(data):
    """gelu, silu, softplus, log_sigmoid of every dtype in a drawn layout and shape."""
    shape = data.draw(shapes(max_side=4))
    cases = []
    for dtype in DTYPES:
        x, layout = data.draw(arrays_and_layout(dtype, shape))
        cases += [
            Case(f"{name}({dtype}[{layout}] {shape})", getattr(lf, name), reference, (x,))
            for name, reference in ELEMENTWISE.items()
        ]
    check_all(cases)


@pytest.mark.skipif(
    not hasattr(functions, "erf"), reason="lf.erf is not there yet (gelu's exact form needs it)"
)
@pytest.mark.usefixtures("libm_kernels")
def test_gelu_exact_form():
    x = np.linspace(-6, 6, 25)
    cases = [
        Case(
            f"gelu(approximate=False) {v.dtype}",
            lambda u: lf.gelu(u, approximate=False),
            lambda u: np_gelu(u, False),
            (v,),
        )
        for v in (x, x.astype(np.float32), np.arange(-3, 4))
    ]
    check_all(cases)


@pytest.mark.usefixtures("libm_kernels")
def test_one_hot():
    """Out-of-range labels (negative too) give a slice of zeros; float labels match only
    whole numbers; any axis of the result, any dtype."""
    labels = np.array([[0, 2, -1], [3, 1, 1]], np.int32)
    cases = [
        Case(
            f"one_hot axis={axis} {dtype}",
            lambda v, a=axis, d=dtype: lf.one_hot(v, 3, d, a),
            lambda v, a=axis, d=dtype: np_one_hot(v, 3, d, a),
            (labels,),
        )
        for axis, dtype in [(-1, np.float64), (0, np.bool_), (1, np.int32), (-2, np.float32)]
    ]
    cases += [
        Case(
            "float labels",
            lambda v: lf.one_hot(v, 4),
            lambda v: np_one_hot(v, 4),
            (np.array([0.0, 1.5, 3.0, np.nan]),),
        ),
        Case("no labels", lambda v: lf.one_hot(v, 4), lambda v: np_one_hot(v, 4), (np.zeros(0, np.int64),)),
        Case("no classes", lambda v: lf.one_hot(v, 0), lambda v: np_one_hot(v, 0), (labels,)),
    ]
    check_all(cases)


@pytest.mark.usefixtures("libm_kernels")
def test_one_hot_of_a_scalar_label():
    """A 0-d label gives one one-hot vector (its label broadcast along the classes)."""
    check_all([Case("0-d label", lambda v: lf.one_hot(v, 4), lambda v: np_one_hot(v, 4), (np.array(2),))])


def test_errors():
    x = lf.asarray(np.ones((2, 3)))
    with pytest.raises(lf.AxisError, match="axis 2 is out of bounds"):
        lf.softmax(x, axis=2)
    with pytest.raises(lf.AxisError, match="logsumexp: repeated axis"):
        lf.logsumexp(x, axis=(1, -1))
    with pytest.raises(lf.AxisError, match="one_hot: axis 3"):
        lf.one_hot(np.arange(3), 4, axis=3)
    with pytest.raises(lf.ShapeError, match="num_classes must be >= 0"):
        lf.one_hot(np.arange(3), -1)
    with pytest.raises(TypeError):
        lf.one_hot(np.arange(3), 2.5)
    with pytest.raises(lf.DTypeError):
        lf.one_hot(np.arange(3), 3, dtype=np.complex128)


def test_kernel_counts():
    """softmax, log_softmax and logsumexp over the rows of a matrix: one kernel each; a
    one_hot reads only its labels (the classes are the loop index)."""
    a = lf.asarray(np.linspace(-3, 3, 20).reshape(4, 5))
    for tensor in (lf.softmax(a), lf.log_softmax(a, axis=-1), lf.logsumexp(a, axis=-1)):
        assert len(planned_kernels(tensor)) == 1, tensor.explain()
    (call,) = planned_kernels(lf.one_hot(np.arange(4), 5))
    assert len(call.loads) == 1
