"""Exceptions raised to users. Each also subclasses the built-in NumPy would raise."""

from __future__ import annotations

import numpy as np


class LazyfuseError(Exception):
    """Base class of every error lazyfuse raises on purpose."""


class ShapeError(LazyfuseError, ValueError):
    """Shapes that do not fit the op (broadcast, reshape, matmul, transpose)."""


class AxisError(LazyfuseError, np.exceptions.AxisError):
    """An axis out of range or repeated."""

    def __init__(self, message: str) -> None:
        # Note: numpy's AxisError has a custom __init__/__str__; keep the message as is.
        Exception.__init__(self, message)
        self._msg = message

    def __str__(self) -> str:
        return self._msg


class AxisTypeError(LazyfuseError, TypeError):
    """An axis that is not an int (or None, or a tuple of ints where several are taken)."""


class DomainError(LazyfuseError, ValueError):
    """A value outside an op's domain that NumPy refuses (an integer to a negative power)."""


class DTypeError(LazyfuseError, TypeError):
    """A dtype lazyfuse does not support, or an op NumPy refuses for these dtypes."""


class UserFunctionError(LazyfuseError, TypeError):
    """A user scalar function (lf.map / lf.zip / lf.reduce) Numba cannot compile."""


class ConcretizationError(LazyfuseError, TypeError):
    """A traced value (inside ``lf.jit``) used where a concrete Python value is needed:
    ``bool``/``float``/``int``/``np.asarray`` of it, Python control flow on it."""


class GradError(LazyfuseError, TypeError):
    """A function lf.grad / lf.value_and_grad / lf.vjp cannot differentiate as called: a
    non-scalar or non-float output, an integer or bool argument, argnums out of range,
    has_aux without a pair, or an op without a derivative (lf.map without grad=, lf.reduce)."""
