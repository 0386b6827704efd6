"""Bad input gets a clear error when the expression is BUILT (never at compute, never a
Numba traceback), of the kind NumPy raises, naming the op and the shapes; every error
is also an ``lf.LazyfuseError``. Each ``pytest.raises`` below wraps only the building."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest

import lazyfuse as lf

X = lf.asarray(np.ones((2, 3)))
B = lf.asarray(np.ones(3, bool))
I = lf.asarray(np.arange(3, dtype=np.int32))  # noqa: E741


@contextlib.contextmanager
def raises(kind, *words):
    """``pytest.raises(kind)`` that also wants each word in the message and the error to
    be a LazyfuseError that does not leak Numba."""
    with pytest.raises(kind) as info:
        yield info
    message = str(info.value)
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"
    assert isinstance(info.value, lf.LazyfuseError), repr(info.value)
    assert "numba" not in message.lower() or kind is lf.UserFunctionError, message


SHAPE_A, SHAPE_B = (2, 3), (4,)
BINARY_BUILDERS = {
    "add": lambda a, b: a + b,
    "subtract": lambda a, b: a - b,
    "multiply": lambda a, b: lf.multiply(a, b),
    "divide": lambda a, b: a / b,
    "floor_divide": lambda a, b: a // b,
    "remainder": lambda a, b: a % b,
    "power": lambda a, b: a**b,
    "maximum": lambda a, b: lf.maximum(a, b),
    "minimum": lambda a, b: lf.minimum(a, b),
    "less": lambda a, b: a < b,
    "equal": lambda a, b: a == b,
    "bitwise_and": lambda a, b: a.astype(bool) & b.astype(bool),
}


@pytest.mark.parametrize("name", list(BINARY_BUILDERS))
def test_shapes_that_do_not_broadcast_name_the_op_and_shapes(name):
    a, b = lf.asarray(np.ones(SHAPE_A)), lf.asarray(np.ones(SHAPE_B))
    with raises(ValueError, name, str(SHAPE_A), str(SHAPE_B)) as info:
        BINARY_BUILDERS[name](a, b)
    assert isinstance(info.value, lf.ShapeError)


def test_other_broadcasts_that_fail():
    with raises(ValueError, "where", "(2, 3)", "(2,)"):
        lf.where(X > 0, X, np.ones(2))
    with raises(ValueError, "zip", "(2, 3)", "(5,)"):
        lf.zip(lambda a, b: a + b, X, np.ones(5))
    with raises(ValueError, "broadcast_to", "(2, 3)", "(3, 3)"):
        X.broadcast_to((3, 3))
    with raises(ValueError, "broadcast_to"):
        lf.broadcast_to(X, (3,))  # fewer dimensions
    with raises(ValueError, "add", "(0,)", "(2,)"):
        lf.asarray(np.ones(0)) + np.ones(2)  # 0 does not broadcast with 2


@pytest.mark.parametrize("name", ["sum", "prod", "max", "min", "mean"])
@pytest.mark.parametrize("axis", [2, -3, (0, 5), (0, -3)], ids=str)
def test_bad_reduction_axes(name, axis):
    with raises(np.exceptions.AxisError, "out of bounds"):
        getattr(lf, name)(X, axis=axis)
    with raises(np.exceptions.AxisError):
        getattr(X, name)(axis=axis, keepdims=True)


def test_bad_axes_of_views():
    with raises(np.exceptions.AxisError, "repeated axis"):
        X.sum(axis=(0, -2))
    with raises(np.exceptions.AxisError):
        X.expand_dims(4)
    with raises(np.exceptions.AxisError):
        lf.expand_dims(X, (0, 0))
    with raises(np.exceptions.AxisError):
        X.squeeze(2)
    with raises(ValueError, "squeeze"):
        X.squeeze(1)  # not of length 1
    with raises(np.exceptions.AxisError):
        lf.asarray(np.float64(1.0)).sum(axis=1)  # a 0-d tensor has no axis 1 (0 and -1: NumPy's legacy)
    assert issubclass(lf.AxisError, np.exceptions.AxisError)


@pytest.mark.parametrize(
    "shape",
    [(4, -1), (-1, -1), (7,), (2, -2), (5, 0)],
    ids=str,
)
def test_bad_reshapes(shape):
    with raises(ValueError, "reshape"):
        X.reshape(shape)
    with raises(ValueError, "reshape"):
        lf.reshape(X, shape)


def test_reshape_messages_name_size_and_shapes():
    with raises(ValueError, "reshape", "6", "(4, -1)"):
        X.reshape(4, -1)


@pytest.mark.parametrize("axes", [(0,), (0, 0), (0, 1, 2), (0, 2)], ids=str)
def test_bad_transposes(axes):
    with raises(ValueError, "transpose"):
        X.transpose(*axes)
    with raises(ValueError, "transpose"):
        lf.transpose(X, axes)
    with raises(ValueError):
        X.permute(*axes)


@pytest.mark.parametrize(
    ("shape_a", "shape_b"),
    [((2, 3), (2, 3)), ((3,), (4,)), ((2, 3, 4), (3, 4, 5)), ((2, 2, 3), (3, 3, 2)), ((5,), (4, 2))],
    ids=str,
)
def test_matmul_mismatch(shape_a, shape_b):
    with raises(ValueError, "matmul") as info:
        lf.asarray(np.ones(shape_a)) @ np.ones(shape_b)
    # the operands' shapes, or (batch dimensions that do not broadcast) the batch shapes
    message = str(info.value)
    assert (str(shape_a) in message and str(shape_b) in message) or "broadcast" in message, message
    with raises(ValueError, "matmul"):
        lf.matmul(np.ones(shape_a), lf.asarray(np.ones(shape_b)))


def test_matmul_of_a_scalar():
    """NumPy: ValueError (an operand does not have enough dimensions), 0-d or scalar."""
    with raises(ValueError, "matmul"):
        lf.matmul(np.ones(()), X)
    with raises(ValueError, "matmul"):
        X @ np.float64(2.0)


def test_matmul_of_a_python_scalar():
    with raises(ValueError, "matmul"):  # NumPy: ValueError, as for a 0-d array
        X @ 2.0


@pytest.mark.parametrize(
    "bad",
    [
        np.array(["a"]),
        np.array([1 + 2j]),
        np.array([object()]),
        np.ones(2, np.float16),
        np.ones(2, np.int8),
        np.ones(2, np.uint8),
        np.ones(2, np.uint64),
        np.ones(2, np.int16),
        np.array(["2020-01-01"], "datetime64[D]"),
        1 + 2j,
        "text",
    ],
    ids=lambda v: str(getattr(v, "dtype", type(v).__name__)),
)
def test_unsupported_dtypes(bad):
    with raises(TypeError, "not supported"):
        lf.asarray(bad)


def test_unsupported_astype_targets():
    for target in (np.complex128, np.float16, np.int8, "U3", object):
        with raises(TypeError, "astype"):
            X.astype(target)


@pytest.mark.parametrize(
    ("label", "build"),
    [
        ("bool - bool", lambda: B - B),
        ("bool - True", lambda: B - True),
        ("-bool", lambda: -B),
        ("negative(bool)", lambda: lf.negative(B)),
        ("exp(bool) is float16", lambda: lf.exp(B)),
        ("sqrt(bool) is float16", lambda: B.sqrt()),
        ("bool // bool is int8", lambda: B // B),
        ("bool % bool is int8", lambda: B % B),
        ("float & float", lambda: X & X),
        ("float | int", lambda: X[0] | I),
        ("~float", lambda: ~X),
        ("float ^ True", lambda: X ^ True),
        ("bool ** 2 is int8 (NumPy squares)", lambda: B**2),
    ],
)
def test_ops_numpy_refuses_for_a_dtype(label, build):
    """What NumPy refuses (or computes only in int8/float16) is a TypeError when built."""
    with raises(TypeError):
        build()


def test_values_numpy_refuses():
    with raises(ValueError, "negative integer powers"):
        I**-1  # a scalar exponent: known when built
    with raises(ValueError, "zero-size", "max"):
        lf.asarray(np.ones((0, 2))).max()
    with raises(ValueError, "zero-size"):
        lf.min(np.ones((2, 0)), axis=1)
    with pytest.raises((OverflowError, TypeError, ValueError), match="int32"):
        I + 2**40  # NumPy: OverflowError, a Python int that does not fit


def test_indexing_errors():
    with pytest.raises(IndexError):
        X[5]
    with pytest.raises(IndexError):
        X[0, 0, 0]
    with pytest.raises(IndexError):
        X[-3]
    with pytest.raises((IndexError, TypeError)):
        X[..., ...]


def test_a_user_function_numba_cannot_compile_is_named():
    def reads_a_missing_attribute(v):
        return v.missing

    with raises(lf.UserFunctionError, "reads_a_missing_attribute") as info:
        lf.map(reads_a_missing_attribute, X)
    assert isinstance(info.value, TypeError)
    with raises(lf.UserFunctionError, "lambda"):
        lf.zip(lambda a, b: a.missing + b, X, X)


def test_errors_come_when_building_not_when_computing():
    """A valid expression computes; what was wrong was already refused: nothing is left
    for compute() to raise, even after other errors were raised on the same inputs."""
    for build in (lambda: X + np.ones(4), lambda: X.sum(axis=5), lambda: X @ X, lambda: X.reshape(5)):
        with pytest.raises(lf.LazyfuseError):
            build()
    np.testing.assert_array_equal((X + np.ones(3)).compute(), np.full((2, 3), 2.0))


def test_every_error_class_is_a_lazyfuse_error():
    assert issubclass(lf.ShapeError, ValueError) and issubclass(lf.ShapeError, lf.LazyfuseError)
    assert issubclass(lf.DTypeError, TypeError) and issubclass(lf.DTypeError, lf.LazyfuseError)
    assert issubclass(lf.UserFunctionError, TypeError) and issubclass(lf.UserFunctionError, lf.LazyfuseError)
    assert issubclass(lf.AxisError, lf.LazyfuseError)


def test_unknown_target_fancy_indexing_and_truth_values():
    x = lf.asarray(np.arange(4.0))
    with pytest.raises(lf.LazyfuseError, match="unknown target 'gpu'"):
        x.compute(target="gpu")
    with pytest.raises(IndexError, match="out of bounds"):
        x[np.array([0, 4])].compute()
    with pytest.raises(IndexError, match="out of bounds"):
        x[5]
    with pytest.raises(ValueError, match="ambiguous"):
        bool(x > 0)


def test_bad_settings_name_the_setting_and_what_is_valid():
    from lazyfuse import config

    with pytest.raises(ValueError, match=r"LAZYFUSE_MATH.*'fast', 'libm'"), config.override(math="vector"):
        pass
    with (
        pytest.raises(ValueError, match="LAZYFUSE_CUDA_BLOCK: a power of two"),
        config.override(cuda_block=96),
    ):
        pass
    with pytest.raises(ValueError, match="LAZYFUSE_CUDA_TILE"), config.override(cuda_tile=64):
        pass
    with config.override(target="tpu"), pytest.raises(lf.LazyfuseError, match="unknown target 'tpu'"):
        (lf.asarray(np.ones(3)) + 1.0).compute()
