"""The Array API standard's (2023.12) names where NumPy 2 has them: aliases (``acos``,
``concat``, ``permute_dims``, ``pow``, ...), ``cumulative_sum``, the data type functions,
dtypes and constants, so that ``t.__array_namespace__()`` (the ``lazyfuse`` module) serves
code written against the standard.

An alias of a function that lives in this package's other modules calls it by name when
called (``lazyfuse.arccos``), so each op is written once, wherever it is defined.
"""

from __future__ import annotations

import math
from builtins import bool as _bool
from collections.abc import Callable
from typing import Any

import numpy as np

# Note: the dtypes under NumPy's names; `bool` shadows the builtin here (_bool below).
from numpy import bool, float32, float64, int32, int64

import lazyfuse
from lazyfuse.errors import AxisError, DTypeError
from lazyfuse.functions import invert, power, transpose
from lazyfuse.tensor import Tensor, asarray

__all__ = [
    "acos",
    "acosh",
    "asin",
    "asinh",
    "atan",
    "atan2",
    "atanh",
    "bitwise_invert",
    "bitwise_left_shift",
    "bitwise_right_shift",
    "bool",
    "can_cast",
    "concat",
    "cumulative_prod",
    "cumulative_sum",
    "e",
    "finfo",
    "float32",
    "float64",
    "iinfo",
    "inf",
    "int32",
    "int64",
    "isdtype",
    "nan",
    "newaxis",
    "permute_dims",
    "pi",
    "positive",
    "pow",
    "result_type",
]

e, inf, nan, pi = math.e, math.inf, math.nan, math.pi
newaxis = None

# NumPy 2's aliases of functions defined in functions.py: the same objects, as in NumPy.
bitwise_invert = invert
permute_dims = transpose
pow = power

# Array API name: the lazyfuse function it calls when called (another module defines it).
CALLS: dict[str, str] = {
    "acos": "arccos",
    "acosh": "arccosh",
    "asin": "arcsin",
    "asinh": "arcsinh",
    "atan": "arctan",
    "atan2": "arctan2",
    "atanh": "arctanh",
    "bitwise_left_shift": "left_shift",
    "bitwise_right_shift": "right_shift",
    "concat": "concatenate",
    "cumulative_sum": "cumsum",
    "cumulative_prod": "cumprod",
}


def _alias(name: str) -> Callable[..., Any]:
    target = CALLS[name]

    def function(*args: Any, **kwargs: Any) -> Any:
        return getattr(lazyfuse, target)(*args, **kwargs)

    function.__name__ = function.__qualname__ = name
    function.__doc__ = f"The Array API's (and NumPy 2's) name for :func:`lazyfuse.{target}`."
    return function


acos = _alias("acos")
acosh = _alias("acosh")
asin = _alias("asin")
asinh = _alias("asinh")
atan = _alias("atan")
atan2 = _alias("atan2")
atanh = _alias("atanh")
bitwise_left_shift = _alias("bitwise_left_shift")
bitwise_right_shift = _alias("bitwise_right_shift")
concat = _alias("concat")


def positive(x: Any) -> Tensor:
    """``+x``, as NumPy's ``positive`` (which has no loop for bool)."""
    x = asarray(x)
    if x.dtype == np.bool_:
        raise DTypeError("positive: NumPy's positive has no loop for bool; cast first (x.astype('int64'))")
    return x


def cumulative_sum(x: Any, /, *, axis: int | None = None, dtype: Any = None, include_initial: _bool = False):
    """NumPy 2's ``cumulative_sum``: ``cumsum`` whose ``axis`` is required above 1-d, with
    ``include_initial`` (a leading 0 along ``axis``)."""
    return _cumulative("cumulative_sum", x, axis, dtype, include_initial, identity=0)


def cumulative_prod(x: Any, /, *, axis: int | None = None, dtype: Any = None, include_initial: _bool = False):
    """NumPy 2's ``cumulative_prod``: ``cumprod`` whose ``axis`` is required above 1-d, with
    ``include_initial`` (a leading 1 along ``axis``)."""
    return _cumulative("cumulative_prod", x, axis, dtype, include_initial, identity=1)


def _cumulative(name: str, x: Any, axis: int | None, dtype: Any, include_initial: _bool, identity: int):
    x = asarray(x)
    if x.ndim == 0:
        x = x.reshape((1,))  # Note: as NumPy's, a 0-d array scans as a 1-d one
    if axis is None:
        if x.ndim > 1:
            raise AxisError(
                f"{name}: an array of shape {x.shape} needs axis= (NumPy requires it above one dimension)"
            )
        axis = 0
    if dtype is not None:
        x = x.astype(dtype)
    scanned = getattr(lazyfuse, CALLS[name])(x, axis=axis)
    if not include_initial:
        return scanned
    axis = axis % x.ndim  # in range: the scan checked it
    first = lazyfuse.full((*x.shape[:axis], 1, *x.shape[axis + 1 :]), identity, dtype=scanned.dtype)
    return lazyfuse.concatenate([first, scanned], axis=axis)


# data type functions -------------------------------------------------------------------


def _dtype_of(value: Any) -> Any:
    """A tensor's dtype; anything else (a dtype, an array, a Python scalar) as it is."""
    return value.dtype if isinstance(value, Tensor) else value


def result_type(*arrays_and_dtypes: Any) -> np.dtype:
    """NumPy's ``result_type`` (Python scalars weak, NEP 50); tensors by their dtype (no compute)."""
    return np.result_type(*[_dtype_of(a) for a in arrays_and_dtypes])


def can_cast(from_: Any, to: Any, casting: str = "safe") -> _bool:
    """NumPy's ``can_cast``; a tensor by its dtype."""
    return np.can_cast(_dtype_of(from_), to, casting)  # type: ignore[arg-type]


def isdtype(dtype: Any, kind: Any) -> _bool:
    """NumPy's (and the Array API's) ``isdtype``."""
    return np.isdtype(dtype, kind)


def finfo(type: Any) -> np.finfo:
    """NumPy's ``finfo``; a tensor by its dtype."""
    return np.finfo(_dtype_of(type))


def iinfo(type: Any) -> np.iinfo:
    """NumPy's ``iinfo``; a tensor by its dtype."""
    return np.iinfo(_dtype_of(type))
