"""Bad input gets a clear error when the expression is built, naming the op and shapes."""

from __future__ import annotations

import numpy as np
import pytest

import lazyfuse as lf

X = lf.asarray(np.ones((2, 3)))


def test_shapes_that_do_not_broadcast():
    with pytest.raises(lf.ShapeError, match=r"add: shapes \(2, 3\) and \(4,\) do not broadcast") as info:
        X + np.ones(4)
    assert isinstance(info.value, ValueError)
    with pytest.raises(ValueError, match=r"where: shapes"):
        lf.where(X > 0, X, np.ones(2))
    with pytest.raises(ValueError, match=r"zip: shapes"):
        lf.zip(lambda a, b: a + b, X, np.ones(5))
    with pytest.raises(ValueError, match="broadcast_to: cannot broadcast shape"):
        X.broadcast_to((3, 3))


def test_bad_axes():
    for build in (lambda: X.sum(axis=2), lambda: X.max(axis=-3), lambda: lf.mean(X, axis=(0, 5))):
        with pytest.raises(np.exceptions.AxisError, match="out of bounds"):
            build()
    with pytest.raises(lf.AxisError, match="repeated axis"):
        X.sum(axis=(0, 0))
    with pytest.raises(lf.AxisError):
        X.expand_dims(4)
    with pytest.raises(ValueError, match="squeeze: cannot select axis 1"):
        X.squeeze(1)


def test_bad_reshape_and_transpose():
    with pytest.raises(
        ValueError, match=r"reshape: cannot reshape array of size 6 \(shape \(2, 3\)\) into shape \(4, -1\)"
    ):
        X.reshape(4, -1)
    with pytest.raises(ValueError, match="at most one -1"):
        X.reshape(-1, -1)
    with pytest.raises(ValueError, match=r"transpose: axes \(0,\) do not match"):
        X.transpose(0)
    with pytest.raises(ValueError, match="not a permutation"):
        X.transpose(0, 0)


def test_matmul_mismatch():
    with pytest.raises(ValueError, match=r"matmul: shapes \(2, 3\) and \(2, 3\) do not align: 3 .* != 2"):
        X @ X
    with pytest.raises(ValueError, match="at least 1-D"):
        lf.matmul(np.ones(()), X)
    with pytest.raises(ValueError, match="matmul: shapes"):
        lf.asarray(np.ones((2, 3, 4))) @ np.ones((3, 4, 5))


def test_unsupported_dtypes():
    for bad in (
        np.array(["a"]),
        np.array([1 + 2j]),
        np.array([object()]),
        np.ones(2, np.float16),
        np.ones(2, np.int8),
    ):
        with pytest.raises(lf.DTypeError, match="not supported"):
            lf.asarray(bad)
    with pytest.raises(TypeError, match="astype"):
        X.astype(np.complex128)
    with pytest.raises(TypeError, match="NumPy has no subtract"):
        lf.asarray(np.ones(2, bool)) - np.ones(2, bool)
    with pytest.raises(TypeError, match="float16"):
        lf.exp(np.ones(2, bool))
    with pytest.raises(TypeError):
        -lf.asarray(np.ones(2, bool))
    with pytest.raises(TypeError, match="bitwise_and"):
        X & X
    with pytest.raises(lf.DTypeError, match="does not fit int32"):
        lf.asarray(np.ones(2, np.int32)) + 2**40


def test_value_errors_numpy_raises_on_values():
    ints = lf.asarray(np.array([2, 3]))
    with pytest.raises(ValueError, match="negative integer powers"):
        ints**-1  # a scalar exponent: when built
    with pytest.raises(ValueError, match="negative integer powers"):
        (ints ** lf.asarray(np.array([1, -1]))).compute()  # an array: before the kernel runs
    with pytest.raises(ValueError, match=r"zero-size array \(shape \(0, 2\)\) to reduction operation max"):
        lf.asarray(np.ones((0, 2))).max()


def test_unknown_target_and_basic_indexing_only():
    with pytest.raises(lf.LazyfuseError, match="unknown target 'gpu'"):
        X.compute(target="gpu")
    with pytest.raises(IndexError, match="only basic indexing"):
        X[np.array([0, 1])]
    with pytest.raises(IndexError, match="out of bounds"):
        X[5]
    with pytest.raises(ValueError, match="ambiguous"):
        bool(X > 0)


def test_every_error_is_a_lazyfuse_error():
    for build in (lambda: X + np.ones(4), lambda: X.sum(axis=9), lambda: lf.asarray(np.ones(1, np.int8))):
        with pytest.raises(lf.LazyfuseError):
            build()
