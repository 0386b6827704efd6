"""lf.jit and values: traced values refuse Python control flow, scalar arguments are
run-time values (one trace per type), keyword arguments, the bounded trace table, and
the NumPy array subclasses that lf.asarray and lf.jit accept or refuse."""

from __future__ import annotations

import importlib
import inspect
import operator

import numpy as np
import pytest

import lazyfuse as lf
from lazyfuse.errors import ConcretizationError
from tests.conftest import assert_matches

# Serial kernels (three times faster to compile): these test semantics and caching, not loops.
pytestmark = pytest.mark.usefixtures("serial_kernels")

jit_module = importlib.import_module("lazyfuse.jit")  # Note: lf.jit is the function


def _line_of(marker: str) -> int:
    """The line of this file that holds ``marker`` (a comment), for the error's file:line."""
    lines = inspect.getsource(inspect.getmodule(_line_of)).splitlines()
    return next(k for k, line in enumerate(lines, 1) if line.endswith(marker))


# concretization --------------------------------------------------------------------


def test_python_control_flow_on_a_traced_value_raises_naming_the_function_and_line():
    @lf.jit
    def flip(a):
        return a if a.sum() > 0 else -a  # flip-line

    a = np.arange(1.0, 4.0)
    with pytest.raises(ConcretizationError) as caught:
        flip(a)
    message = str(caught.value)
    assert "flip" in message and "lf.where" in message
    assert f"test_jit_values.py:{_line_of('# flip-line')}" in message
    assert isinstance(caught.value, TypeError) and isinstance(caught.value, lf.LazyfuseError)
    assert flip.traces == {} or len(flip.traces) == 0


@pytest.mark.parametrize(
    "use",
    [bool, float, int, np.asarray, operator.index, lambda t: range(t)],
    ids=["bool", "float", "int", "np.asarray", "index", "range"],
)
def test_every_conversion_of_a_traced_value_to_a_python_value_raises(use):
    @lf.jit
    def convert(a):
        use(a.sum().astype("int64"))
        return a

    with pytest.raises(ConcretizationError, match="convert"):
        convert(np.ones(3))


def test_values_that_do_not_depend_on_the_arguments_can_be_read_in_a_trace():
    table = np.arange(4.0)

    @lf.jit
    def shifted(x):
        return x + float(lf.asarray(table).sum())  # a constant: read when traced, like JAX

    np.testing.assert_array_equal(shifted(np.zeros(2)), np.full(2, 6.0))


def test_outside_a_trace_tensors_convert_as_numpy_arrays():
    one = lf.asarray(np.array([2.5]))
    assert float(one) == 2.5 and int(one) == 2 and bool(one)
    assert operator.index(lf.asarray(np.array(3))) == 3
    np.testing.assert_array_equal(np.asarray(lf.asarray(np.arange(3.0)) * 2), np.arange(3.0) * 2)
    with pytest.raises(TypeError):
        float(lf.asarray(np.arange(3.0)))
    with pytest.raises(TypeError):
        operator.index(lf.asarray(np.array(3.0)))
    with pytest.raises(ValueError, match="ambiguous"):
        bool(lf.asarray(np.arange(3.0)))


def test_a_scalar_argument_in_python_control_flow_raises():
    @lf.jit
    def clipped(x, s):
        if s > 0:  # scalar-if
            return x * s
        return x

    with pytest.raises(ConcretizationError) as caught:
        clipped(np.ones(3), 2.0)
    assert f"test_jit_values.py:{_line_of('# scalar-if')}" in str(caught.value)


# scalar arguments are run-time values ------------------------------------------------


def test_a_changing_learning_rate_runs_one_trace_with_numpys_answers():
    @lf.jit
    def step(w, g, lr):
        return w - lr * g

    rng = np.random.default_rng(0)
    w, g = rng.standard_normal(50), rng.standard_normal(50)
    for lr in (0.1, 0.05, 0.025, 1e-3, -2.0, 0.0):
        np.testing.assert_array_equal(step(w, g, lr), w - lr * g)
    assert len(step.traces) == 1
    w32, g32 = w.astype(np.float32), g.astype(np.float32)
    for lr in (0.1, 0.3):
        result = step(w32, g32, lr)  # a Python float is weak: float32 stays float32
        assert result.dtype == np.float32
        np.testing.assert_array_equal(result, w32 - lr * g32)
    assert len(step.traces) == 2


@pytest.mark.parametrize(
    "fn",
    [
        lambda x, s: x * (s * 2.0),
        lambda x, s: x + s - s,
        lambda x, s: x * (1.0 - s) + s / 3.0,
        lambda x, s: (s + s) * x,
        lambda x, s: x**s,
        lambda x, s: -s * x + abs(s),
        lambda x, s: x < s,
        lambda x, s: lf.exp(x) * s,
    ],
    ids=["s*2", "x+s-s", "mixed", "s+s", "pow", "neg-abs", "lt", "exp"],
)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_scalar_arguments_are_never_folded_into_constants(fn, dtype):
    traced = lf.jit(fn)
    x = np.linspace(0.5, 2.0, 7).astype(dtype)
    for s in (2.0, 3.0, 0.5, 2.0, -1.5):
        expected = fn(x, s)
        result = traced(x, s)
        assert result.dtype == expected.dtype
        np.testing.assert_allclose(result, expected, rtol=1e-6 if dtype == np.float32 else 1e-13)
    assert len(traced.traces) == 1


def test_integer_and_numpy_scalar_arguments_are_run_time_values_keyed_by_type():
    @lf.jit
    def scaled(x, k):
        return x * k + k // 2

    x = np.arange(6, dtype=np.int32)
    for k in (2, 3, -7, 2):
        result = scaled(x, k)
        assert result.dtype == np.int32
        np.testing.assert_array_equal(result, x * k + k // 2)
    assert len(scaled.traces) == 1
    for k in (np.int64(5), np.int64(9)):  # strong: int32 * int64 is int64
        result = scaled(x, k)
        assert result.dtype == np.int64
        np.testing.assert_array_equal(result, x * k + k // 2)
    assert len(scaled.traces) == 2
    for k in (np.float32(0.5), np.float32(1.5)):
        np.testing.assert_array_equal(scaled(x.astype(np.float32), k), x.astype(np.float32) * k + k // 2)
    assert len(scaled.traces) == 3


def test_a_python_int_that_does_not_fit_the_arrays_dtype_raises_as_numpy_does():
    traced = lf.jit(lambda x, k: x + k)
    x = np.arange(3, dtype=np.int32)
    np.testing.assert_array_equal(traced(x, 1), x + 1)
    with pytest.raises(OverflowError):
        x + 2**40
    with pytest.raises(lf.LazyfuseError):
        traced(x, 2**40)


def test_bool_arguments_stay_python_values_one_trace_each():
    @lf.jit
    def maybe_negated(x, negate):
        return -x if negate else x

    x = np.arange(3.0)
    np.testing.assert_array_equal(maybe_negated(x, True), -x)
    np.testing.assert_array_equal(maybe_negated(x, False), x)
    np.testing.assert_array_equal(maybe_negated(x, True), -x)
    assert len(maybe_negated.traces) == 2


# keyword arguments -----------------------------------------------------------------


def test_keyword_arguments_bind_to_the_functions_parameters():
    @lf.jit
    def scaled(x, factor, shift=0.5):
        return x * factor + shift

    x = np.arange(4.0)
    np.testing.assert_array_equal(scaled(x, factor=2.0), x * 2.0 + 0.5)
    np.testing.assert_array_equal(scaled(x, 3.0, shift=1.0), x * 3.0 + 1.0)
    np.testing.assert_array_equal(scaled(factor=4.0, x=x), x * 4.0 + 0.5)
    assert len(scaled.traces) == 2  # (x, factor) and (x, factor, shift)
    with pytest.raises(TypeError, match=r"scaled.*unexpected keyword argument 'scale'"):
        scaled(x, 2.0, scale=2.0)
    with pytest.raises(TypeError, match="scaled"):
        scaled(x)


# the trace table -------------------------------------------------------------------


def test_the_trace_table_keeps_the_most_recently_used_traces(monkeypatch):
    monkeypatch.setattr(jit_module, "MAX_TRACES", 3)
    traced = lf.jit(lambda x: x * 2.0)
    arrays = [np.ones(n) for n in range(1, 7)]
    for a in arrays:
        np.testing.assert_array_equal(traced(a), a * 2.0)
        traced(arrays[0])  # the first signature stays in use
    assert len(traced.traces) == 3
    assert ((np.dtype(np.float64), (1,), 0),) in [key[:1] for key in traced.traces]


def test_the_default_trace_bound_is_documented():
    assert jit_module.MAX_TRACES == 256
    assert "256" in (lf.jit.__doc__ or "")


# NumPy array subclasses ------------------------------------------------------------


def test_asarray_refuses_a_masked_array_and_says_what_to_pass():
    masked = np.ma.masked_array([1.0, 2.0, 3.0], mask=[False, True, False])
    with pytest.raises(lf.LazyfuseError, match=r"masked.*filled") as caught:
        lf.asarray(masked)
    assert isinstance(caught.value, TypeError)
    np.testing.assert_array_equal(lf.asarray(masked.filled(0.0)).sum().compute(), 4.0)
    with pytest.raises(TypeError, match="masked"):
        lf.jit(lambda x: x * 2.0)(masked)


def test_asarray_refuses_a_matrix_and_other_subclasses():
    m = np.matrix([[1.0, 2.0], [3.0, 4.0]])
    with pytest.raises(lf.LazyfuseError, match=r"matrix.*np\.asarray"):
        lf.asarray(m)

    class Tagged(np.ndarray):
        pass

    with pytest.raises(lf.LazyfuseError, match="Tagged"):
        lf.asarray(np.zeros(3).view(Tagged))
    with pytest.raises(TypeError, match="matrix"):
        lf.jit(lambda x: x * x)(m)


def test_a_memmap_is_read_as_its_data(tmp_path):
    data = np.memmap(tmp_path / "data.bin", dtype=np.float64, mode="w+", shape=(5,))
    data[:] = np.arange(5.0)
    np.testing.assert_array_equal((lf.asarray(data) * 2.0).compute(), np.arange(5.0) * 2.0)
    traced = lf.jit(lambda x, y: x * y + 1.0)
    np.testing.assert_array_equal(traced(data, data), np.arange(5.0) ** 2 + 1.0)
    np.testing.assert_array_equal(traced(data, np.ones(5)), np.arange(5.0) + 1.0)
    assert len(traced.traces) == 2


def test_a_scalar_argument_is_weak_in_binary_functions_and_where():
    """lf.maximum, lf.minimum, lf.power, methods and lf.where saw a traced Python float as
    a float64 tensor: float32 arrays came back float64 (NumPy keeps float32)."""
    x = np.arange(4, dtype=np.float32)
    traced = lf.jit(
        lambda x, s: (
            lf.maximum(x, s),
            lf.minimum(s, x),
            lf.power(x, s),
            x.maximum(s),
            lf.where(x > 1, x, s),
            lf.where(x > 1, s, 2.0),
        )
    )
    for s in (1.5, 2.5, -0.5):
        expected = (
            np.maximum(x, s),
            np.minimum(s, x),
            np.power(x, s),
            np.maximum(x, s),
            np.where(x > 1, x, s),
            np.where(x > 1, s, 2.0),
        )
        for got, want in zip(traced(x, s), expected, strict=True):
            assert_matches(got, want)
    assert len(traced.traces) == 1
