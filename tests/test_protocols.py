"""NumPy's protocols on lazy tensors (np.exp(t), np.sum(t), ndarray + t give lazy tensors
with NumPy's answers; what lazyfuse lacks computes and calls NumPy), the Array API's
names and namespace, scalars out of tensors (item, tolist, format, complex), and their
refusal inside lf.jit."""

from __future__ import annotations

import operator

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lazyfuse as lf
from lazyfuse import config
from lazyfuse.errors import ConcretizationError
from tests.conftest import Case, assert_matches, check_all, sum_atol
from tests.strategies import DTYPES, arrays, arrays_and_layout, broadcast_shapes, shapes

pytestmark = pytest.mark.usefixtures("serial_kernels")

BINARY_UFUNCS = [np.add, np.subtract, np.multiply, np.maximum, np.less, np.true_divide]
OPERATORS = [operator.add, operator.mul, operator.lt]


def _requires(*names: str) -> None:
    """Skip while another module's function is not in lazyfuse yet."""
    missing = [n for n in names if n not in lf.__all__]
    if missing:
        pytest.skip(f"lazyfuse has no {', '.join(missing)} yet")


# __array_ufunc__ ------------------------------------------------------------------------


@settings(max_examples=4)
@given(data=st.data())
def test_ufuncs_and_operators_with_ndarrays_give_lazy_tensors_with_numpys_answers(data):
    """np.<ufunc>(t, u), np.<ufunc>(ndarray, t), ndarray <op> t and a NumPy scalar <op> t:
    lazy tensors (NumPy calls the tensor's __array_ufunc__), computed in one plan."""
    dx, dy = data.draw(st.sampled_from(DTYPES)), data.draw(st.sampled_from(DTYPES))
    sx, sy = data.draw(broadcast_shapes(2))
    x, lx = data.draw(arrays_and_layout(dx, sx, low=1, high=9))
    y, ly = data.draw(arrays_and_layout(dy, sy, low=1, high=9))
    label = f"{dx}[{lx}]{sx}, {dy}[{ly}]{sy}"
    cases = [
        Case(f"np.{u.__name__}(t, u) {label}", lambda a, b, u=u: u(lf.asarray(a), lf.asarray(b)), u, (x, y))
        for u in BINARY_UFUNCS
    ]
    cases += [
        Case(f"np.{u.__name__}(ndarray, t) {label}", lambda a, b, u=u: u(a, lf.asarray(b)), u, (x, y))
        for u in BINARY_UFUNCS
    ]
    cases += [
        Case(f"ndarray {o.__name__} t {label}", lambda a, b, o=o: o(a, lf.asarray(b)), o, (x, y))
        for o in OPERATORS
    ]
    cases += [
        Case(f"np.exp(t) {label}", lambda a: np.exp(lf.asarray(a)), np.exp, (x,)),
        Case(f"np.abs(t) {label}", lambda a: np.abs(lf.asarray(a)), np.abs, (x,)),
        Case(f"np.negative(t) {label}", lambda a: np.negative(lf.asarray(a)), np.negative, (x,)),
        Case(f"np.add(t, 1) {label}", lambda a: np.add(lf.asarray(a), 1), lambda a: np.add(a, 1), (x,)),
        Case(
            f"np.float32 * t {label}",
            lambda a: np.float32(2) * lf.asarray(a),
            lambda a: np.float32(2) * a,
            (x,),
        ),
    ]
    check_all(cases)


def test_every_elementwise_ufunc_lazyfuse_has_is_reached_by_its_name():
    """Every NumPy ufunc whose name lazyfuse has (whichever module defines it) builds on
    tensors the very node lazyfuse's function builds (nodes are hash-consed), of NumPy's
    shape and dtype; the functions' values are tested against NumPy in their own files."""
    floats, ints = lf.asarray(np.array([0.15, 0.5, 0.85])), lf.asarray(np.array([1, 6, 3]))
    reached = []
    for name in sorted(lf.__all__):
        ufunc = getattr(np, name, None)
        if not isinstance(ufunc, np.ufunc) or ufunc.__name__ != name or ufunc.signature or ufunc.nout != 1:
            continue
        x = floats if any(t.startswith("d" * ufunc.nin) for t in ufunc.types) else ints
        built = ufunc(*[x] * ufunc.nin)
        assert isinstance(built, lf.Tensor), name
        assert built.node is getattr(lf, name)(*[x] * ufunc.nin).node, name
        expected = ufunc(*[np.ones(3, x.dtype)] * ufunc.nin)
        assert (built.shape, built.dtype) == (expected.shape, expected.dtype), name
        reached.append(name)
    assert {"add", "exp", "maximum", "less", "power", "invert"} <= set(reached)


def test_ufunc_keywords_dtype_and_defaults_stay_lazy():
    t = lf.asarray(np.arange(6, dtype=np.int32).reshape(2, 3))
    a = np.arange(6, dtype=np.int32).reshape(2, 3)
    built = [
        np.add(t, 1, dtype=np.float32),
        np.multiply(t, t, out=None),
        np.add(t, 2, where=True, casting="same_kind"),
        np.maximum(t, 3, dtype=np.int64),
    ]
    expected = [np.add(a, 1, dtype=np.float32), a * a, a + 2, np.maximum(a, 3, dtype=np.int64)]
    assert all(isinstance(b, lf.Tensor) for b in built)
    for got, want in zip(lf.compute(*built), expected, strict=True):
        assert_matches(got, want)


@settings(max_examples=3)
@given(data=st.data())
def test_ufunc_reduce_is_lazyfuses_reduction_with_numpys_default_axis_0(data):
    dtype = data.draw(st.sampled_from(DTYPES))
    shape = data.draw(shapes(min_dims=1, max_side=4))
    x, layout = data.draw(arrays_and_layout(dtype, shape, low=-3, high=3))
    axis = data.draw(st.sampled_from([None, -1, 0]))
    keepdims = data.draw(st.booleans())
    label = f"{dtype}[{layout}]{shape} axis={axis} keepdims={keepdims}"
    tol = {"atol": sum_atol(x, x.size)} if dtype.kind == "f" else {}
    cases = [
        Case(f"np.add.reduce(t) {label}", lambda a: np.add.reduce(lf.asarray(a)), np.add.reduce, (x,), tol),
        Case(
            f"np.multiply.reduce {label}",
            lambda a: np.multiply.reduce(lf.asarray(a), axis=axis, keepdims=keepdims),
            lambda a: np.multiply.reduce(a, axis=axis, keepdims=keepdims),
            (x,),
            {"tol": 1e-4} if dtype.kind == "f" else {},
        ),
        Case(
            f"np.maximum.reduce {label}",
            lambda a: np.maximum.reduce(lf.asarray(a), axis=axis, keepdims=keepdims),
            lambda a: np.maximum.reduce(a, axis=axis, keepdims=keepdims),
            (x,),
        ),
    ]
    built = check_all(cases)
    assert built, label


# __array_function__ -----------------------------------------------------------------------


@settings(max_examples=4)
@given(data=st.data())
def test_numpy_functions_on_tensors_are_lazyfuses_functions(data):
    """np.sum(t) (once "unexpected keyword argument 'out'"), with axis and keepdims by
    position, np.mean, np.amax, np.where, np.transpose, np.reshape, np.sum's dtype=: lazy
    tensors with NumPy's answers. (The functions themselves are tested in their files;
    this checks how NumPy's calls reach them.)"""
    dtype = data.draw(st.sampled_from(DTYPES))
    shape = data.draw(shapes(min_dims=1, max_side=4))
    x, layout = data.draw(arrays_and_layout(dtype, shape, low=-5, high=5))
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    label = f"{dtype}[{layout}]{shape} axis={axis}"
    n = x.size
    tol = {"atol": sum_atol(x, n)} if dtype.kind == "f" else {}
    mean_tol = {"atol": tol["atol"] / max(n, 1)} if tol.get("atol") is not None else {}
    t = lf.asarray
    cases = [
        Case(f"np.sum(t) {label}", lambda a: np.sum(t(a)), np.sum, (x,), tol),
        Case(
            f"np.sum(t, axis, None, None, True) {label}",
            lambda a: np.sum(t(a), axis, None, None, True),
            lambda a: np.sum(a, axis, None, None, True),
            (x,),
            tol,
        ),
        Case(
            f"np.mean(t, axis) {label}",
            lambda a: np.mean(t(a), axis=axis),
            lambda a: np.mean(a, axis=axis),
            (x,),
            mean_tol,
        ),
        Case(f"np.amax(t, axis) {label}", lambda a: np.amax(t(a), axis), lambda a: np.amax(a, axis), (x,)),
        Case(
            f"np.where {label}", lambda a: np.where(t(a) > 0, t(a), 0), lambda a: np.where(a > 0, a, 0), (x,)
        ),
        Case(f"np.transpose {label}", lambda a: np.transpose(t(a)), np.transpose, (x,)),
        Case(f"np.reshape(t, -1) {label}", lambda a: np.reshape(t(a), -1), lambda a: np.reshape(a, -1), (x,)),
        Case(
            f"np.sum(dtype=float32) {label}",
            lambda a: np.sum(t(a), dtype=np.float32),
            lambda a: np.sum(a, dtype=np.float32),
            (x,),
            {"atol": sum_atol(x.astype(np.float32), n)},
        ),
    ]
    check_all(cases)


def test_numpy_functions_of_several_tensors_and_ndarrays():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((4, 2))
    c = rng.standard_normal((3, 4)) > 0
    built = [
        np.matmul(lf.asarray(a), lf.asarray(b)),
        a @ lf.asarray(b),
        np.where(c, lf.asarray(a), a.T.copy().T * 2),
        np.maximum(lf.asarray(a), a[::-1]),
        np.transpose(lf.asarray(a), (1, 0)),
        np.reshape(lf.asarray(a), (2, 6)),
        np.permute_dims(lf.asarray(a), (1, 0)),
        np.astype(lf.asarray(a), np.float32, copy=False),
    ]
    expected = [
        a @ b,
        a @ b,
        np.where(c, a, a * 2),
        np.maximum(a, a[::-1]),
        a.T,
        a.reshape(2, 6),
        a.T,
        a.astype(np.float32),
    ]
    assert all(isinstance(t, lf.Tensor) for t in built)
    for got, want in zip(lf.compute(*built), expected, strict=True):
        assert_matches(got, want)
    assert (
        np.shape(lf.asarray(a)) == (3, 4) and np.ndim(lf.asarray(a)) == 2 and np.size(lf.asarray(a), 1) == 4
    )
    assert np.result_type(lf.asarray(a.astype(np.float32)), 1.0) == np.float32


@pytest.mark.parametrize("name", ["concatenate", "concat", "var", "std", "stack"])
def test_numpy_functions_from_other_modules_are_found_when_they_exist(name):
    _requires("concatenate" if name == "concat" else name)
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    joining = name in ("concatenate", "concat", "stack")
    built = (
        getattr(np, name)([lf.asarray(a), b], axis=1)
        if joining
        else getattr(np, name)(lf.asarray(a), axis=1, ddof=1)
    )
    want = getattr(np, name)([a, b], axis=1) if joining else getattr(np, name)(a, axis=1, ddof=1)
    assert isinstance(built, lf.Tensor)
    assert_matches(built.compute(), want)


# the fallback: NumPy's function on the computed tensors -------------------------------


def test_functions_lazyfuse_lacks_compute_the_tensors_and_return_numpys_answer(capsys):
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    x = lf.asarray(a) * 2
    with config.override(debug=0):
        got = np.sort(x, axis=1)
    assert type(got) is np.ndarray
    np.testing.assert_array_equal(got, np.sort(a * 2, axis=1))
    assert "[lazyfuse] np.sort" not in capsys.readouterr().err
    with config.override(debug=1):
        assert np.median(x) == np.median(a * 2)
        np.testing.assert_array_equal(np.lexsort((x, lf.asarray(b))), np.lexsort((a * 2, b)))  # nested
        assert np.sum(x, initial=1.0) == pytest.approx(np.sum(a * 2, initial=1.0))
    err = capsys.readouterr().err
    assert (
        "[lazyfuse] np.median: computed the tensors and called NumPy: lazyfuse has no function median" in err
    )
    assert "[lazyfuse] np.lexsort: computed the tensors and called NumPy" in err
    assert (
        "[lazyfuse] np.sum: computed the tensors and called NumPy: lazyfuse.sum takes no argument initial"
        in err
    )


def test_ufunc_calls_lazyfuse_cannot_run_give_numpys_answer(capsys):
    a = np.arange(6.0).reshape(2, 3)
    x = lf.asarray(a) + 1
    buffer = np.zeros((2, 3))
    with config.override(debug=1):
        assert np.add(x, 1, out=buffer) is buffer
        total = np.zeros((2, 3))
        total += x  # ndarray += tensor: NumPy writes its array
        np.testing.assert_array_equal(np.add.outer(lf.asarray(a[0]), a[0]), np.add.outer(a[0], a[0]))
    np.testing.assert_array_equal(buffer, a + 2)
    np.testing.assert_array_equal(total, a + 1)
    err = capsys.readouterr().err
    assert "[lazyfuse] np.add: computed the tensors and called NumPy: out= writes into a NumPy array" in err
    assert "[lazyfuse] np.add.outer: computed the tensors and called NumPy" in err
    with pytest.raises(TypeError, match="immutable"):
        np.add(a, 1, out=(x,))


def test_another_array_type_with_its_own_protocol_goes_next():
    class Other:
        def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
            return "other"

    class Refusing:
        __array_ufunc__ = None

    t = lf.asarray(np.ones(2))
    assert np.add(t, Other()) == "other"
    with pytest.raises(TypeError):
        np.add(t, Refusing())


# Array API names and namespace ----------------------------------------------------------

# The functions of the Array API standard, 2023.12 (data-apis.org/array-api/2023.12)
ARRAY_API_2023_12 = """
abs acos acosh add all any arange argmax argmin argsort asarray asin asinh astype atan atan2
atanh bitwise_and bitwise_invert bitwise_left_shift bitwise_or bitwise_right_shift bitwise_xor
broadcast_arrays broadcast_to can_cast ceil clip concat conj copysign cos cosh cumulative_sum
divide empty empty_like equal exp expand_dims expm1 eye finfo flip floor floor_divide full
full_like greater greater_equal hypot iinfo imag isdtype isfinite isinf isnan less less_equal
linspace log log10 log1p log2 logaddexp logical_and logical_not logical_or logical_xor matmul
matrix_transpose max maximum mean meshgrid min minimum moveaxis multiply negative nonzero
not_equal ones ones_like permute_dims positive pow prod real remainder repeat reshape
result_type roll round searchsorted sign signbit sin sinh sort sqrt square squeeze stack std
subtract sum take tan tanh tensordot tile tril triu trunc unique_all unique_counts
unique_inverse unique_values unstack var vecdot where zeros zeros_like ).split(
"""


def test_every_array_api_name_of_a_function_lazyfuse_has_is_there():
    """Where NumPy 2's Array API name is another name of a NumPy function lazyfuse has
    (np.acos is np.arccos), lazyfuse has the Array API name too."""
    missing = []
    for name in ARRAY_API_2023_12.split():
        numpy_function = getattr(np, name, None)
        numpy_name = getattr(numpy_function, "__name__", name)
        if numpy_name in lf.__all__ and name not in lf.__all__:
            missing.append(f"{name} (NumPy's {numpy_name})")
    assert not missing, missing


def test_array_api_aliases_are_lazyfuses_functions():
    a = np.arange(1.0, 7.0).reshape(2, 3) / 8
    i = np.arange(6).reshape(2, 3)
    t, ti = lf.asarray(a), lf.asarray(i)
    assert lf.pow is lf.power and lf.permute_dims is lf.transpose and lf.bitwise_invert is lf.invert
    built = {
        "pow": (lf.pow(t, 2), a**2),
        "permute_dims": (lf.permute_dims(t, (1, 0)), a.T),
        "bitwise_invert": (lf.bitwise_invert(ti), ~i),
        "positive": (lf.positive(t), a),
    }
    aliases = {  # Array API name: (NumPy's name, lazy arguments, NumPy's arguments)
        "acos": ("arccos", (t,), (a,)),
        "asin": ("arcsin", (t,), (a,)),
        "atan": ("arctan", (t,), (a,)),
        "atan2": ("arctan2", (t, 0.5), (a, 0.5)),
        "bitwise_left_shift": ("left_shift", (ti, 2), (i, 2)),
        "bitwise_right_shift": ("right_shift", (ti, 1), (i, 1)),
    }
    for alias, (target, lazy_args, numpy_args) in aliases.items():
        if target in lf.__all__:
            built[alias] = (getattr(lf, alias)(*lazy_args), getattr(np, alias)(*numpy_args))
    if "concatenate" in lf.__all__:
        built["concat"] = (lf.concat([t, a], axis=1), np.concat([a, a], axis=1))
    names = list(built)
    for name, got in zip(names, lf.compute(*(built[n][0] for n in names)), strict=True):
        assert_matches(got, built[name][1], msg=name)
    with pytest.raises(TypeError):
        lf.positive(lf.asarray(np.array([True])))


@pytest.mark.parametrize("name", ["cumulative_sum", "cumulative_prod"])
def test_cumulative_sum_and_prod_as_numpy_2s(name):
    _requires("cumsum" if name == "cumulative_sum" else "cumprod", "concatenate", "full")
    a = np.arange(1, 7, dtype=np.int32).reshape(2, 3)
    reference, function = getattr(np, name), getattr(lf, name)
    built = [
        function(lf.asarray(a), axis=1),
        function(lf.asarray(a), axis=0, include_initial=True),
        function(lf.asarray(a[0]), dtype=np.float32),
        function(lf.asarray(np.array(2.0))),
        np.cumulative_sum(lf.asarray(a), axis=-1)
        if name == "cumulative_sum"
        else np.cumulative_prod(lf.asarray(a), axis=-1),
    ]
    expected = [
        reference(a, axis=1),
        reference(a, axis=0, include_initial=True),
        reference(a[0], dtype=np.float32),
        reference(np.array(2.0)),
        reference(a, axis=-1),
    ]
    assert all(isinstance(b, lf.Tensor) for b in built)
    for got, want in zip(lf.compute(*built), expected, strict=True):
        assert_matches(got, want)
    with pytest.raises(ValueError, match="axis"):
        function(lf.asarray(a))


def test_namespace_dtypes_constants_and_data_type_functions():
    t = lf.asarray(np.ones((2, 2), np.float32))
    assert t.__array_namespace__() is lf and t.__array_namespace__(api_version="2023.12") is lf
    with pytest.raises(ValueError, match=r"2099\.12"):
        t.__array_namespace__(api_version="2099.12")
    assert (lf.bool, lf.int32, lf.int64, lf.float32, lf.float64) == (
        np.bool,
        np.int32,
        np.int64,
        np.float32,
        np.float64,
    )
    assert (lf.pi, lf.e, lf.inf, lf.newaxis) == (np.pi, np.e, np.inf, None) and np.isnan(lf.nan)
    assert lf.result_type(t, 1.0) == np.float32 and lf.result_type(t, lf.float64) == np.float64
    assert lf.can_cast(t, lf.float64) and not lf.can_cast(t, lf.int32)
    assert lf.isdtype(t.dtype, "real floating") and not lf.isdtype(lf.int32, "real floating")
    assert lf.finfo(t).eps == np.finfo(np.float32).eps and lf.iinfo(lf.int32).max == 2**31 - 1
    assert t.astype(lf.float64).dtype == np.float64
    version = getattr(lf, "__array_api_version__", None)
    assert version in (None, "2023.12")


def test_a_missing_name_raises_attribute_error_pointing_at_the_readme():
    with pytest.raises(AttributeError) as caught:
        lf.nonexistent_function  # noqa: B018
    message = str(caught.value)
    assert "nonexistent_function" in message and "does not support" in message and "README" in message
    assert not hasattr(lf, "nonexistent_function")


# scalars out -------------------------------------------------------------------------------


@settings(max_examples=4)
@given(data=st.data())
def test_item_and_tolist_are_numpys(data):
    dtype = data.draw(st.sampled_from(DTYPES))
    shape = data.draw(shapes(min_dims=0, max_side=3, min_side=1))
    x = data.draw(arrays(dtype, shape))
    t = lf.asarray(x) + np.zeros((), dtype)  # an expression, not a stored array
    size = x.size
    flat = data.draw(st.integers(-size, size - 1))
    got, want = t.item(flat), x.item(flat)
    assert type(got) is type(want) and got == want
    index = tuple(data.draw(st.integers(-n, n - 1)) for n in shape)
    assert t.item(*index) == x.item(*index) and t.item(index) == x.item(index)
    assert t.tolist() == x.tolist() and type(t.tolist()) is type(x.tolist())
    if size == 1:
        assert t.item() == x.item() and type(t.item()) is type(x.item())


def test_item_errors_are_numpys():
    x = np.arange(6.0).reshape(2, 3)
    t = lf.asarray(x) * 1
    for args, error in [
        ((), ValueError),
        ((6,), IndexError),
        ((2, 0), IndexError),
        ((1, 2, 3), ValueError),
        ((1.0,), TypeError),
    ]:
        with pytest.raises(error):
            x.item(*args)
        with pytest.raises(error):
            t.item(*args)
    assert lf.asarray(np.array(2.5)).item(0) == 2.5 and lf.asarray(np.array([7])).tolist() == [7]


def test_format_str_repr_and_complex():
    total = lf.asarray(np.array([1.25, 2.5], np.float32)).sum()
    plans_before = lf.cache_info()["misses"] + lf.cache_info()["hits"]
    assert str(total) == repr(total) == "lazyfuse.Tensor(shape=(), dtype=float32, op=sum)"
    assert f"{total}" == str(total) and format(total, "") == str(total)
    assert lf.cache_info()["misses"] + lf.cache_info()["hits"] == plans_before  # nothing computed
    assert f"{total:.3f}" == format(np.float32(3.75), ".3f") == "3.750"
    assert format(lf.asarray(np.array(7, np.int64)) * 2, "04d") == "0014"
    assert complex(total) == 3.75 + 0j
    with pytest.raises(TypeError, match="format"):
        format(lf.asarray(np.ones(2)), ".3f")
    with pytest.raises(TypeError):
        format(np.ones(2), ".3f")  # as NumPy's


# inside lf.jit ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "use",
    [lambda t: t.item(), lambda t: t.tolist(), lambda t: f"{t:.3f}", complex, lambda t: np.median(t)],
    ids=["item", "tolist", "format", "complex", "np.median"],
)
def test_scalars_out_and_numpy_fallbacks_refuse_inside_a_trace(use):
    @lf.jit
    def convert(a):
        use(a.sum())
        return a

    with pytest.raises(ConcretizationError, match="convert"):
        convert(np.ones(3))


def test_numpy_calls_inside_a_trace_stay_lazy():
    @lf.jit
    def step(a, b):
        assert f"{a}".startswith("lazyfuse.Tensor(")  # str and an empty format: no value needed
        return np.exp(a) * np.sum(b, axis=0) + np.add(a, 1)

    a, b = np.arange(3.0), np.ones((2, 3))
    np.testing.assert_allclose(step(a, b), np.exp(a) * 2 + a + 1, rtol=1e-12)
