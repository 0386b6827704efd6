"""softmax, log_softmax, logsumexp and the activations of jax.nn, built from lazyfuse's ops (so they fuse).

The meaning is jax.nn's (and scipy.special's, which agrees). Dtypes: float32 stays float32 and
float64 stays float64; bool and integer inputs compute in float64, as scipy.special's functions
do for integer arrays (NumPy's ``exp`` would give float16 for bool, which lazyfuse lacks).
"""

from __future__ import annotations

import math
import operator
from typing import Any

import numpy as np

from lazyfuse import functions
from lazyfuse.autodiff import stop_gradient
from lazyfuse.errors import ShapeError
from lazyfuse.graph import build, shapes
from lazyfuse.tensor import Tensor, asarray

__all__ = ["gelu", "log_sigmoid", "log_softmax", "logsumexp", "one_hot", "silu", "softmax", "softplus"]

_SQRT_2_OVER_PI = math.sqrt(2 / math.pi)


def _floating(x: Any) -> Tensor:
    """``x`` as a tensor of a float dtype: bool and integers as float64."""
    tensor = asarray(x)
    return tensor if tensor.dtype.kind == "f" else tensor.astype(np.float64)


def softmax(x: Any, axis: int | tuple[int, ...] = -1) -> Tensor:
    """``exp(x) / sum(exp(x))`` over ``axis`` (an int or a tuple), computed as
    ``exp(x - max)`` so that no exp overflows. As jax.nn's: a slice of only -inf (or with
    a +inf or NaN) gives NaN. One kernel per row: the max, the sum and the quotient are
    three passes over the row."""
    x = _floating(x)
    if x.size == 0:
        return x  # Note: the result is empty too; x.max would refuse the empty axis
    unnormalized = functions.exp(x - _shift(x.max(axis, keepdims=True)))
    return unnormalized / unnormalized.sum(axis, keepdims=True)


def log_softmax(x: Any, axis: int | tuple[int, ...] = -1) -> Tensor:
    """``x - logsumexp(x)`` over ``axis``, as jax.nn's (the same shift by the max, so a
    slice of only -inf gives NaN). One kernel per row."""
    x = _floating(x)
    if x.size == 0:
        return x
    shifted = x - _shift(x.max(axis, keepdims=True))
    return shifted - functions.log(functions.exp(shifted).sum(axis, keepdims=True))


def logsumexp(x: Any, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
    """``log(sum(exp(x)))`` over ``axis``, shifted by the max where it is finite (as
    jax.nn's and scipy.special's): a slice of only -inf, or an empty one, gives -inf;
    one with +inf gives inf; one with NaN gives NaN. scipy's ``b`` and ``return_sign``
    are not supported (scale with ``logsumexp(x + log(b))`` where ``b > 0``)."""
    x = _floating(x)
    axes = shapes.normalize_axes("logsumexp", axis, x.ndim)
    if any(x.shape[a] == 0 for a in axes):
        shift: Tensor | int = 0  # Note: exp's sum over an empty axis is 0, so the log is -inf
    else:
        largest = _shift(x.max(axes, keepdims=True))
        shift = functions.where(functions.isfinite(largest), largest, 0)
    total = functions.exp(x - shift).sum(axes, keepdims=True)
    return (functions.log(total) + shift).squeeze(() if keepdims else axes)


def _shift(largest: Tensor) -> Tensor:
    """The max a softmax subtracts, through which no gradient flows: the result does not
    depend on it (as jax.nn's), so the backward pass needs no max's rule (ties, a mask)."""
    return stop_gradient(largest)


def gelu(x: Any, approximate: bool = True) -> Tensor:
    """Gaussian error linear unit, as jax.nn's: ``x * Phi(x)``; with ``approximate`` (the
    default) Phi is the tanh form ``0.5 * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3)))``,
    else the exact ``(1 + erf(x / sqrt(2))) / 2``."""
    x = _floating(x)
    if approximate:
        cdf = 0.5 * (1.0 + functions.tanh(_SQRT_2_OVER_PI * (x + 0.044715 * (x * x * x))))
        return x * cdf
    return x * (functions.erf(x / math.sqrt(2)) + 1) / 2


def silu(x: Any) -> Tensor:
    """``x * sigmoid(x)`` (also called swish), as jax.nn's."""
    x = _floating(x)
    return x * functions.sigmoid(x)


def softplus(x: Any) -> Tensor:
    """``log(1 + exp(x))``, as jax.nn's ``logaddexp(x, 0)``: the larger of the two plus
    ``log1p(exp(-|x|))``, so exp never overflows and small results keep their digits
    (inf gives inf, -inf 0, NaN NaN)."""
    return functions.logaddexp(_floating(x), 0)


def log_sigmoid(x: Any) -> Tensor:
    """``log(sigmoid(x))``, as jax.nn's ``-softplus(-x)`` (no overflow, no log of 0)."""
    return -softplus(-_floating(x))


def one_hot(x: Any, num_classes: int, dtype: Any = np.float64, axis: int = -1) -> Tensor:
    """``x``'s labels as one-hot vectors along a new axis ``axis`` of ``num_classes``, as
    jax.nn's: element ``[..., k, ...]`` is ``x[...] == k`` in ``dtype``; a label outside
    ``0 .. num_classes - 1`` (negative included) gives a slice of zeros. The classes are
    an index the kernel computes (no array of them is stored)."""
    labels = asarray(x)
    classes = operator.index(num_classes)
    if classes < 0:
        raise ShapeError(f"one_hot: num_classes must be >= 0, got {classes}")
    where = shapes.normalize_axis("one_hot", axis, labels.ndim + 1)
    shape = (*labels.shape[:where], classes, *labels.shape[where:])
    index = Tensor(build.iota(shape, where))
    return (labels.expand_dims(where) == index).astype(dtype)
