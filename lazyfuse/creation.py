"""Creation functions with NumPy's signatures: arange, linspace, zeros, ones, full, eye,
the ``*_like`` functions, empty, tril and triu.

None of them stores anything until it is computed: a constant is one scalar parameter
seen at the shape asked for (a broadcast, no memory), and ``arange``, ``linspace`` and
``eye`` are built on :func:`lazyfuse.graph.build.iota`, an element's index, which a
kernel computes from its loop index. So ``lf.arange(n) * 2.0`` allocates only its
output, and ``x * lf.eye(n)`` reads only ``x``.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from typing import Any

import numpy as np

from lazyfuse.errors import ShapeError
from lazyfuse.graph import build, dtypes
from lazyfuse.graph.ops import Op
from lazyfuse.tensor import Tensor, asarray, is_python_scalar

__all__ = [
    "arange",
    "empty",
    "empty_like",
    "eye",
    "full",
    "full_like",
    "linspace",
    "ones",
    "ones_like",
    "tril",
    "triu",
    "zeros",
    "zeros_like",
]


def _shape(shape: int | Sequence[int], name: str) -> tuple[int, ...]:
    dims = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    try:
        dims = tuple(operator.index(d) for d in dims)
    except TypeError:
        raise TypeError(f"{name}: shape must be an int or a sequence of ints, got {shape!r}") from None
    if any(d < 0 for d in dims):
        raise ShapeError(f"{name}: negative dimensions are not allowed (shape {dims})")
    return dims


def _index_along(shape: tuple[int, ...], axis: int) -> Tensor:
    return Tensor(build.iota(shape, axis))


def full(shape: int | Sequence[int], fill_value: Any, dtype: Any = None) -> Tensor:
    """``fill_value`` at ``shape``: one scalar parameter, seen at the shape (no memory
    until computed). ``dtype`` None: NumPy's (int64 for a Python int, float64 for a
    float, bool for a bool, the value's own for a NumPy scalar or 0-d array)."""
    dims = _shape(shape, "full")
    value = fill_value
    if isinstance(value, Tensor):
        raise TypeError("full: fill_value must be a scalar; use lf.broadcast_to for a tensor")
    kind = np.asarray(value).dtype if dtype is None else dtype
    target = dtypes.check_supported(kind, "full")
    if np.ndim(value) != 0:
        raise ShapeError(f"full: fill_value must be a scalar, got shape {np.shape(value)}")
    scalar = np.asarray(value).astype(target)[()]  # NumPy's conversion (casting="unsafe")
    return Tensor(build.broadcast_to(asarray(scalar).node, dims))


def zeros(shape: int | Sequence[int], dtype: Any = float) -> Tensor:
    return full(shape, 0, dtype=dtype)


def ones(shape: int | Sequence[int], dtype: Any = float) -> Tensor:
    return full(shape, 1, dtype=dtype)


def empty(shape: int | Sequence[int], dtype: Any = float) -> Tensor:
    """As :func:`zeros`: a lazy value has no uninitialised memory to give."""
    return full(shape, 0, dtype=dtype)


def _like(a: Any, dtype: Any, shape: Any) -> tuple[tuple[int, ...], np.dtype]:
    template = a if isinstance(a, Tensor) else np.asarray(a)
    return (template.shape if shape is None else _shape(shape, "*_like")), (
        template.dtype if dtype is None else dtype
    )


def full_like(a: Any, fill_value: Any, dtype: Any = None, shape: Any = None) -> Tensor:
    dims, kind = _like(a, dtype, shape)
    return full(dims, fill_value, dtype=kind)


def zeros_like(a: Any, dtype: Any = None, shape: Any = None) -> Tensor:
    return full_like(a, 0, dtype, shape)


def ones_like(a: Any, dtype: Any = None, shape: Any = None) -> Tensor:
    return full_like(a, 1, dtype, shape)


def empty_like(a: Any, dtype: Any = None, shape: Any = None) -> Tensor:
    return full_like(a, 0, dtype, shape)


def arange(start: Any, stop: Any = None, step: Any = None, *, dtype: Any = None) -> Tensor:
    """NumPy's ``arange([start,] stop[, step], dtype=None)``: ``start + i * step`` for
    ``i`` in ``range(ceil((stop - start) / step))``, computed from the element's index.
    Its dtype is NumPy's: int64 for ints, float64 when any bound is a float."""
    if stop is None:
        start, stop = 0, start
    step = 1 if step is None else step
    bounds = (start, stop, step)
    if not all(is_python_scalar(b) or (isinstance(b, np.generic) and b.dtype.kind in "biuf") for b in bounds):
        raise TypeError(f"arange: start, stop and step must be real numbers, got {bounds!r}")
    if step == 0:
        raise ZeroDivisionError("arange: step must not be zero (NumPy: 'Maximum allowed size exceeded')")
    computed = np.result_type(*[np.asarray(b) for b in bounds])
    computed = np.dtype(np.int64) if computed.kind in "biu" else np.dtype(np.float64)
    target = dtypes.check_supported(computed if dtype is None else dtype, "arange")
    length = max(0, math.ceil((float(stop) - float(start)) / float(step)))
    if computed.kind == "i":
        length = max(0, -(-(int(stop) - int(start)) // int(step)))
    index = _index_along((length,), 0)
    if computed.kind == "f":
        index = index.astype(np.float64)
    values = index if (start, step) == (0, 1) else index * _python(step) + _python(start)
    return values.astype(target)


def _python(value: Any) -> Any:
    """A bound as a Python scalar (weak in the dtype rule: the index's dtype decides)."""
    return value.item() if isinstance(value, np.generic) else value


def linspace(
    start: float,
    stop: float,
    num: int = 50,
    endpoint: bool = True,
    retstep: bool = False,
    dtype: Any = None,
    axis: int = 0,
) -> Tensor | tuple[Tensor, float]:
    """NumPy's linspace for scalar ``start`` and ``stop`` (``axis`` must be 0): ``start +
    i * step`` in float64, the last value exactly ``stop`` with ``endpoint``; an integer
    ``dtype`` rounds towards minus infinity, as NumPy 2's."""
    if np.ndim(start) or np.ndim(stop):
        raise ShapeError("linspace: start and stop must be scalars here (array bounds are not supported)")
    if axis != 0:
        raise ShapeError("linspace: only axis=0 (scalar bounds give a 1-D result)")
    num = operator.index(num)
    if num < 0:
        raise ShapeError(f"linspace: number of samples, {num}, must be non-negative")
    target = dtypes.check_supported(np.float64 if dtype is None else dtype, "linspace")
    start, stop = float(start), float(stop)
    div = (num - 1) if endpoint else num
    delta = stop - start
    step = delta / div if div > 0 else math.nan
    index = _index_along((num,), 0).astype(np.float64)
    if div > 0 and step == 0:
        values = index / div * delta + start
    elif div > 0:
        values = index * step + start
    else:
        values = index * delta + start
    if endpoint and num > 1:
        values = Tensor(build.elementwise(Op.WHERE, (index == num - 1).node, stop, values.node))
    if target.kind in "ib":
        values = values - values % 1.0  # NumPy 2 floors before an integer cast
    result = values.astype(target)
    return (result, step) if retstep else result


def eye(N: int, M: int | None = None, k: int = 0, dtype: Any = float) -> Tensor:  # noqa: N803 (NumPy's names)
    """Ones on the ``k``-th diagonal: ``row + k == column``, from the element's index."""
    rows, columns = operator.index(N), operator.index(N if M is None else M)
    shape = _shape((rows, columns), "eye")
    diagonal = _index_along(shape, 0) + operator.index(k) == _index_along(shape, 1)
    return diagonal.astype(dtypes.check_supported(dtype, "eye"))


def _triangle(m: Any, k: int, name: str, lower: bool) -> Tensor:
    x = asarray(m)
    if x.ndim == 0:
        raise ShapeError(f"{name}: input must be at least 1-d, got a 0-d tensor")
    if x.ndim == 1:  # NumPy: a 1-d input is the row of a square matrix
        x = x.broadcast_to((x.shape[0], x.shape[0]))
    square = x.shape[-2:]
    row, column = _index_along(square, 0), _index_along(square, 1)
    keep = (column <= row + operator.index(k)) if lower else (column >= row + operator.index(k))
    zero = x.dtype.type(0)
    return Tensor(build.elementwise(Op.WHERE, keep.node, x.node, asarray(zero).node))


def tril(m: Any, k: int = 0) -> Tensor:
    """The lower triangle of the last two axes (``column <= row + k``), zeros elsewhere."""
    return _triangle(m, k, "tril", lower=True)


def triu(m: Any, k: int = 0) -> Tensor:
    """The upper triangle of the last two axes (``column >= row + k``), zeros elsewhere."""
    return _triangle(m, k, "triu", lower=False)
