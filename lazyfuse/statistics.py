"""var, std, any, all, count_nonzero, argmax, argmin: NumPy's, built from lazyfuse's
reductions so that each fuses with its producer into one kernel per row.

Note: where NumPy's next positional parameter is ``out`` (which lazyfuse does not take),
the parameters after it are keyword-only here, so every call accepted means what it means
to NumPy (``np.var(x, 0, None, None, 1)`` passes ``out``; ``lf.var(x, 0, None, ddof=1)``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from lazyfuse import functions
from lazyfuse.errors import AxisTypeError, DomainError, DTypeError, ShapeError
from lazyfuse.graph import build, dtypes, shapes
from lazyfuse.graph.ops import Op
from lazyfuse.tensor import Tensor, add_method, asarray

__all__ = ["all", "any", "argmax", "argmin", "count_nonzero", "std", "var"]

Axis = int | tuple[int, ...] | None


def var(
    x: Any,
    axis: Axis = None,
    dtype: Any = None,
    *,
    ddof: float = 0,
    keepdims: bool = False,
    correction: float | None = None,
) -> Tensor:
    """NumPy's variance ``sum((x - mean)**2) / (n - ddof)``: two passes over each row in
    one kernel (never ``E[x^2] - E[x]^2``, which cancels). Bool and integers compute in
    float64; ``dtype`` (a float dtype) is the one to compute and return in. ``n - ddof <= 0``
    gives inf or NaN, as NumPy's (NumPy also warns; a kernel cannot). ``correction`` is the
    Array API's name for ``ddof``."""
    x = asarray(x)
    axes = shapes.normalize_axes("var", axis, x.ndim)
    ddof = _degrees_of_freedom("var", ddof, correction)
    values = x.astype(_computed_in("var", x.dtype, dtype))
    deviation = values - values.mean(axes, keepdims=True)
    count = math.prod([x.shape[a] for a in axes])
    return (deviation * deviation).sum(axes, keepdims) / (count - ddof if count > ddof else 0)


def std(
    x: Any,
    axis: Axis = None,
    dtype: Any = None,
    *,
    ddof: float = 0,
    keepdims: bool = False,
    correction: float | None = None,
) -> Tensor:
    """NumPy's standard deviation: ``sqrt`` of :func:`var` (same arguments and rules)."""
    return functions.sqrt(var(x, axis, dtype, ddof=ddof, keepdims=keepdims, correction=correction))


def _computed_in(name: str, given: np.dtype, dtype: Any) -> np.dtype:
    if dtype is None:
        return given if given.kind == "f" else np.dtype(np.float64)
    chosen = dtypes.check_supported(dtype, name)
    if chosen.kind != "f":
        raise DTypeError(
            f"{name}: dtype={chosen} is not supported (NumPy computes the mean in it and truncates "
            f"it); pass dtype=float64 (or float32) and cast the result"
        )
    return chosen


def _degrees_of_freedom(name: str, ddof: float, correction: float | None) -> float:
    if correction is None:
        return ddof
    if ddof != 0:
        raise DomainError(f"{name}: ddof and correction can't be provided simultaneously (ddof={ddof})")
    return correction


def count_nonzero(x: Any, axis: Axis = None, *, keepdims: bool = False) -> Tensor:
    """How many elements are not 0 (NaN counts), as int64. Note: for ``axis=None`` NumPy
    returns a Python int; this is a 0-d int64 tensor (``int(t)`` gives the int)."""
    return _nonzero(asarray(x)).sum(axis, keepdims)


def any(x: Any, axis: Axis = None, *, keepdims: bool = False) -> Tensor:
    """Whether any element is not 0 (bool); False over an empty axis, as NumPy's."""
    return count_nonzero(x, axis, keepdims=keepdims) > 0


def all(x: Any, axis: Axis = None, *, keepdims: bool = False) -> Tensor:
    """Whether every element is not 0 (bool); True over an empty axis, as NumPy's."""
    zeros = ~_nonzero(asarray(x))
    return zeros.sum(axis, keepdims) == 0


def _nonzero(x: Tensor) -> Tensor:
    return x if x.dtype == np.bool_ else x != 0


def argmax(x: Any, axis: int | None = None, *, keepdims: bool = False) -> Tensor:
    """The index of the largest element along ``axis`` (int64; for ``axis=None`` the index
    into the flattened array, in C order), as NumPy's: the first of equal ones, and the
    first NaN where there is one. One pass per row, fused with the producer of ``x``: each
    element is compared with the best so far, whose index is kept beside it."""
    return _first_index_of(Op.ARGMAX, x, axis, keepdims)


def argmin(x: Any, axis: int | None = None, *, keepdims: bool = False) -> Tensor:
    """The index of the smallest element along ``axis``; see :func:`argmax`."""
    return _first_index_of(Op.ARGMIN, x, axis, keepdims)


def _first_index_of(op: Op, x: Any, axis: int | None, keepdims: bool) -> Tensor:
    x = asarray(x)
    name = op.name.lower()
    if axis is not None and (not isinstance(axis, (int, np.integer)) or isinstance(axis, bool)):
        raise AxisTypeError(f"{name}: axis must be None or an int, got {axis!r}")
    shape = x.shape
    if x.ndim == 0:
        x = x.reshape(1)  # Note: as NumPy, which takes axis 0 or -1 of a 0-d array
    axes = shapes.normalize_axes(name, axis, x.ndim)
    if empty := [a for a in axes if x.shape[a] == 0]:
        raise ShapeError(
            f"{name}: attempt to get {name} of an empty sequence (shape {shape}, axis {empty[0]} "
            f"has size 0); NumPy refuses it too"
        )
    first = Tensor(build.reduction(op, x.node, axes, keepdims))
    return first.reshape(()) if not shape else first


for _name in ("var", "std", "any", "all", "argmax", "argmin"):
    add_method(_name, globals()[_name])
