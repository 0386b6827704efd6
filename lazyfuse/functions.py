"""Module-level functions with NumPy's signatures: ``lf.sum(x, axis=None, keepdims=False)``."""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from lazyfuse.errors import DTypeError, UserFunctionError
from lazyfuse.graph import build
from lazyfuse.graph.node import Node
from lazyfuse.graph.ops import ELEMENTWISE, Op
from lazyfuse.runtime import userfn
from lazyfuse.runtime.execute import kernel_source_path
from lazyfuse.tensor import (
    Tensor,
    _operator,
    _reflected,
    add_method,
    asarray,
    binary,
    is_python_scalar,
    operand,
    unary,
    unweak,
)

# The elementwise functions (lf.exp, lf.add, ...) are made from the op table at the end.
__all__ = [
    "astype",
    "broadcast_to",
    "clip",
    "expand_dims",
    "map",
    "matmul",
    "max",
    "mean",
    "min",
    "permute",
    "prod",
    "reduce",
    "reshape",
    "round",
    "squeeze",
    "sum",
    "transpose",
    "where",
    "zip",
]
# Elementwise rows whose functions take other arguments than tensors, written out below
# (stop_gradient in lazyfuse/autodiff.py).
_WRITTEN_OUT = (Op.WHERE, Op.CAST, Op.IDENTITY)


def _unary_function(op: Op, name: str) -> Callable[[Any], Tensor]:
    def function(x: Any) -> Tensor:
        return unary(op, x)

    function.__name__ = function.__qualname__ = name
    function.__doc__ = f"Elementwise {name}, as NumPy's (see the op table, lazyfuse/graph/ops.py)."
    return function


def _binary_function(op: Op, name: str) -> Callable[[Any, Any], Tensor]:
    def function(x: Any, y: Any) -> Tensor:
        # Note: a Python scalar stays weak also when the other operand is a NumPy array.
        if not isinstance(x, Tensor) and not isinstance(y, Tensor):
            if is_python_scalar(x) and not is_python_scalar(y):
                y = asarray(y)
            else:
                x = asarray(x)
        return binary(op, x, y)

    function.__name__ = function.__qualname__ = name
    function.__doc__ = (
        f"Elementwise {name} with broadcasting, as NumPy's (see the op table, lazyfuse/graph/ops.py)."
    )
    return function


def _export_table() -> list[str]:
    """Make each elementwise row's functions (module globals), Tensor methods and operators;
    returns the functions' names, for ``__all__``."""
    names = []
    for op, row in ELEMENTWISE.items():
        if op in _WRITTEN_OUT:
            continue
        function = (_unary_function if row.arity == 1 else _binary_function)(op, row.public[0])
        for name in row.public:
            globals()[name] = function
        names += row.public
        for name in row.methods:
            add_method(name, function)
        if row.operator:
            for name, method in (
                (f"__{row.operator}__", _operator(op)),
                (f"__r{row.operator}__", _reflected(op)),
            ):
                method.__name__, method.__qualname__ = name, f"Tensor.{name}"
                add_method(name, method)
    return names


def where(condition: Any, x: Any, y: Any) -> Tensor:
    """``x`` where ``condition`` is true, else ``y`` (broadcast; scalars stay weak)."""
    c = asarray(condition).node
    x, y = unweak("where", x, y)
    return Tensor(build.elementwise(Op.WHERE, c, operand(x, "where"), operand(y, "where")))


def astype(x: Any, dtype: Any) -> Tensor:
    return asarray(x).astype(dtype)


def round(x: Any, decimals: int = 0) -> Tensor:
    """NumPy's round: halves to even (``rint``) at ``decimals`` digits, computed as NumPy
    does, ``rint(x * 10**decimals) / 10**decimals`` (``x / 10**-decimals`` and ``*`` for
    negative decimals) in the float's own dtype; integers are unchanged for decimals >= 0
    and rounded in float64 otherwise; bool is refused (NumPy computes it in float16)."""
    x = asarray(x)
    decimals = operator.index(decimals)
    if x.dtype == np.bool_:
        raise DTypeError(
            "round: NumPy rounds a bool array in float16 (or refuses it for decimals != 0), which "
            "lazyfuse does not support; cast first, e.g. lf.round(x.astype('float32'))"
        )
    if x.dtype.kind == "i" and decimals >= 0:
        return x
    if decimals == 0:
        return unary(Op.RINT, x)
    scale = _power_of_ten(-decimals if decimals < 0 else decimals)
    values = x.astype(np.float64) if x.dtype.kind == "i" else x
    if decimals > 0:
        rounded = binary(Op.TRUEDIV, unary(Op.RINT, binary(Op.MUL, values, scale)), scale)
    else:
        rounded = binary(Op.MUL, unary(Op.RINT, binary(Op.TRUEDIV, values, scale)), scale)
    return rounded.astype(x.dtype)


def _power_of_ten(n: int) -> float:
    """10.0 ** n as NumPy's round computes it (exact to 1e22, by repeated products above 1e9)."""
    if n < 9:
        return float(10**n)
    result = 1e9
    for _ in range(n - 9):
        result *= 10.0
    return result


_NO_VALUE: Any = np._NoValue  # Note: NumPy's own sentinel: np.clip(x) and lf.clip(x) differ from None


def clip(
    x: Any, a_min: Any = _NO_VALUE, a_max: Any = _NO_VALUE, *, min: Any = _NO_VALUE, max: Any = _NO_VALUE
) -> Tensor:
    """NumPy 2's clip: ``minimum(maximum(x, a_min), a_max)`` with NumPy's dtype rule (NEP 50)
    and NaN rule (a NaN in x or a bound gives NaN); a bound of None is no bound, as is a
    Python int beyond an integer x's range; ``min=``/``max=`` instead of both positional
    bounds. Cheap: two selects, fused with their neighbours."""
    low, high = _clip_bounds(a_min, a_max, min, max)
    x = asarray(x)
    if x.dtype.kind == "i":
        info = np.iinfo(x.dtype)
        low = None if type(low) is int and low <= info.min else low
        high = None if type(high) is int and high >= info.max else high
    if low is None and high is None:
        if x.dtype == np.bool_:
            raise DTypeError(
                "clip: without bounds NumPy returns positive(x), which has no loop for bool; give a bound"
            )
        return x
    if high is None:
        return binary(Op.MAXIMUM, x, low)
    if low is None:
        return binary(Op.MINIMUM, x, high)
    if _ndim(low) == 0 and _ndim(high) == 0:
        # Note: NumPy's loop for two scalar bounds keeps x where it ties with one (-0.0 stays
        # -0.0 for a bound of 0.0); the loop for array bounds gives the bound.
        return binary(Op.MINIMUM, high, binary(Op.MAXIMUM, low, x))
    return binary(Op.MINIMUM, binary(Op.MAXIMUM, x, low), high)


def _clip_bounds(a_min: Any, a_max: Any, low: Any, high: Any) -> tuple[Any, Any]:
    """The bounds of clip's arguments, as NumPy's clip reads them."""
    if a_min is _NO_VALUE and a_max is _NO_VALUE:
        return (None if low is _NO_VALUE else low), (None if high is _NO_VALUE else high)
    if a_min is _NO_VALUE or a_max is _NO_VALUE:
        missing = "a_min" if a_min is _NO_VALUE else "a_max"
        raise TypeError(f"clip() missing 1 required positional argument: '{missing}'")
    if low is not _NO_VALUE or high is not _NO_VALUE:
        raise ValueError(
            "clip: passing `min` or `max` keyword argument when `a_min` and `a_max` are provided is forbidden"
        )
    return a_min, a_max


def _ndim(value: Any) -> int:
    return value.ndim if isinstance(value, (Tensor, np.ndarray, np.generic)) else int(np.ndim(value))


def _clip_method(x: Tensor, min: Any = None, max: Any = None) -> Tensor:
    """``x.clip(min, max)``: as ndarray.clip, either bound may be left out."""
    return clip(x, min, max)


def _round_method(x: Tensor, decimals: int = 0) -> Tensor:
    return round(x, decimals)


def _round_operator(x: Tensor, ndigits: int | None = None) -> Tensor:
    """Python's ``round(t)``, as ndarray's: ``t.round()``."""
    return round(x, 0 if ndigits is None else ndigits)


def sum(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    return asarray(x).sum(axis, keepdims)


def prod(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    return asarray(x).prod(axis, keepdims)


def max(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    return asarray(x).max(axis, keepdims)


def min(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    return asarray(x).min(axis, keepdims)


def mean(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    return asarray(x).mean(axis, keepdims)


def transpose(x: Any, axes: Sequence[int] | None = None) -> Tensor:
    return asarray(x).transpose(axes)


def permute(x: Any, axes: Sequence[int]) -> Tensor:
    return asarray(x).permute(axes)


def reshape(x: Any, shape: int | Sequence[int]) -> Tensor:
    return asarray(x).reshape(shape if not isinstance(shape, (int, np.integer)) else (shape,))


def broadcast_to(x: Any, shape: int | Sequence[int]) -> Tensor:
    return asarray(x).broadcast_to(shape)  # type: ignore[arg-type]


def expand_dims(x: Any, axis: int | Sequence[int]) -> Tensor:
    return asarray(x).expand_dims(axis)


def squeeze(x: Any, axis: int | Sequence[int] | None = None) -> Tensor:
    return asarray(x).squeeze(axis)


def matmul(a: Any, b: Any) -> Tensor:
    return Tensor(build.matmul(asarray(a).node, asarray(b).node))


def _elementwise_user(
    fn: Callable[..., Any], what: str, *nodes: Node, partials: tuple[Callable[..., Any], ...] | None = None
) -> Tensor:
    user = userfn.wrap(fn, what)
    try:
        out = userfn.return_dtype(user, tuple(n.dtype for n in nodes), what)
    except UserFunctionError as exc:
        # Note: the kernel's source does not depend on the return type; show it.
        placeholder = build.user_elementwise(user, nodes[0].dtype, *nodes)
        raise UserFunctionError(
            f"{exc} (generated kernel source: {kernel_source_path(placeholder)})"
        ) from None
    return Tensor(build.user_elementwise(user, out, *nodes, partials=partials))


def _partials(what: str, grad: Any, arity: int) -> tuple[Callable[..., Any], ...] | None:
    """``grad=`` of lf.map (one function) or lf.zip (a pair), as a tuple; None if absent."""
    if grad is None:
        return None
    given = (grad,) if arity == 1 and callable(grad) else grad
    if not isinstance(given, (tuple, list)) or len(given) != arity or not all(callable(g) for g in given):
        wanted = "a function dfn(x)" if arity == 1 else "a pair of functions (dfx(x, y), dfy(x, y))"
        raise TypeError(f"{what}: grad= must be {wanted}, got {grad!r}")
    return tuple(given)


def map(fn: Callable[..., Any], x: Any, grad: Callable[..., Any] | None = None) -> Tensor:
    """Apply a scalar Python function elementwise; Numba compiles it into the kernel.
    ``grad``: its derivative, a scalar function of the same argument, which lets
    lf.grad differentiate through it (fused into the backward loop)."""
    return _elementwise_user(fn, "map", asarray(x).node, partials=_partials("map", grad, 1))


def zip(fn: Callable[..., Any], x: Any, y: Any, grad: Any = None) -> Tensor:
    """Apply a scalar Python function of two arguments elementwise, with broadcasting.
    ``grad``: ``(dfx, dfy)``, its partial derivatives as scalar functions of ``(x, y)``."""
    partials = _partials("zip", grad, 2)
    return _elementwise_user(fn, "zip", asarray(x).node, asarray(y).node, partials=partials)


def reduce(fn: Callable[[Any, Any], Any], x: Any, axis: Any = None, start: Any = 0) -> Tensor:
    """Left fold ``acc = fn(acc, v)`` from ``start`` over ``axis``, in C order.

    The accumulator's dtype is what Numba infers for ``fn(start, v)``, widened until it
    is stable, as in a loop Numba compiles: a Python ``start=0`` is an int64 and ``0.0``
    a float64, so ``lf.reduce(add, float32_array, start=0)`` accumulates in float64
    (pass ``start=np.float32(0)`` to stay in float32).
    """
    node = asarray(x).node
    user = userfn.wrap(fn, "reduce")
    acc = userfn.scalar_dtype(start)
    try:
        for _ in range(3):
            returned = userfn.return_dtype(user, (acc, node.dtype), "reduce")
            if np.result_type(acc, returned) == acc:
                break
            acc = np.result_type(acc, returned)
    except UserFunctionError as exc:
        placeholder = build.user_reduction(user, node, axis, start, acc)
        raise UserFunctionError(
            f"{exc} (generated kernel source: {kernel_source_path(placeholder)})"
        ) from None
    return Tensor(build.user_reduction(user, node, axis, start, acc))


__all__ += _export_table()
add_method("round", _round_method)
add_method("__round__", _round_operator)
add_method("clip", _clip_method)
