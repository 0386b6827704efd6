"""Module-level functions with NumPy's signatures: ``lf.sum(x, axis=None, keepdims=False)``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from lazyfuse.errors import UserFunctionError
from lazyfuse.graph import build
from lazyfuse.graph.node import Node
from lazyfuse.graph.ops import Op
from lazyfuse.runtime import userfn
from lazyfuse.runtime.execute import kernel_source_path
from lazyfuse.tensor import Tensor, asarray, binary, is_python_scalar, operand, unary, unweak

__all__ = [
    "abs",
    "absolute",
    "add",
    "astype",
    "bitwise_and",
    "bitwise_not",
    "bitwise_or",
    "bitwise_xor",
    "broadcast_to",
    "cos",
    "divide",
    "equal",
    "exp",
    "expand_dims",
    "floor_divide",
    "greater",
    "greater_equal",
    "invert",
    "less",
    "less_equal",
    "log",
    "map",
    "matmul",
    "max",
    "maximum",
    "mean",
    "min",
    "minimum",
    "mod",
    "multiply",
    "negative",
    "not_equal",
    "permute",
    "power",
    "prod",
    "reduce",
    "relu",
    "remainder",
    "reshape",
    "sigmoid",
    "sin",
    "sqrt",
    "squeeze",
    "subtract",
    "sum",
    "tanh",
    "transpose",
    "true_divide",
    "where",
    "zip",
]


def _unary_function(op: Op, name: str) -> Callable[[Any], Tensor]:
    def function(x: Any) -> Tensor:
        return unary(op, x)

    function.__name__ = name
    function.__doc__ = f"Elementwise {name}, as NumPy's."
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

    function.__name__ = name
    function.__doc__ = f"Elementwise {name} with broadcasting, as NumPy's."
    return function


negative = _unary_function(Op.NEG, "negative")
absolute = abs = _unary_function(Op.ABS, "abs")
invert = bitwise_not = _unary_function(Op.INVERT, "invert")
exp = _unary_function(Op.EXP, "exp")
log = _unary_function(Op.LOG, "log")
sqrt = _unary_function(Op.SQRT, "sqrt")
sin = _unary_function(Op.SIN, "sin")
cos = _unary_function(Op.COS, "cos")
tanh = _unary_function(Op.TANH, "tanh")
sigmoid = _unary_function(Op.SIGMOID, "sigmoid")
relu = _unary_function(Op.RELU, "relu")

add = _binary_function(Op.ADD, "add")
subtract = _binary_function(Op.SUB, "subtract")
multiply = _binary_function(Op.MUL, "multiply")
divide = true_divide = _binary_function(Op.TRUEDIV, "divide")
floor_divide = _binary_function(Op.FLOORDIV, "floor_divide")
remainder = mod = _binary_function(Op.MOD, "remainder")
power = _binary_function(Op.POW, "power")
maximum = _binary_function(Op.MAXIMUM, "maximum")
minimum = _binary_function(Op.MINIMUM, "minimum")
less = _binary_function(Op.LT, "less")
less_equal = _binary_function(Op.LE, "less_equal")
greater = _binary_function(Op.GT, "greater")
greater_equal = _binary_function(Op.GE, "greater_equal")
equal = _binary_function(Op.EQ, "equal")
not_equal = _binary_function(Op.NE, "not_equal")
bitwise_and = _binary_function(Op.AND, "bitwise_and")
bitwise_or = _binary_function(Op.OR, "bitwise_or")
bitwise_xor = _binary_function(Op.XOR, "bitwise_xor")


def where(condition: Any, x: Any, y: Any) -> Tensor:
    """``x`` where ``condition`` is true, else ``y`` (broadcast; scalars stay weak)."""
    c = asarray(condition).node
    x, y = unweak("where", x, y)
    return Tensor(build.elementwise(Op.WHERE, c, operand(x, "where"), operand(y, "where")))


def astype(x: Any, dtype: Any) -> Tensor:
    return asarray(x).astype(dtype)


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


def _elementwise_user(fn: Callable[..., Any], what: str, *nodes: Node) -> Tensor:
    user = userfn.wrap(fn, what)
    try:
        out = userfn.return_dtype(user, tuple(n.dtype for n in nodes), what)
    except UserFunctionError as exc:
        # Note: the kernel's source does not depend on the return type; show it.
        placeholder = build.user_elementwise(user, nodes[0].dtype, *nodes)
        raise UserFunctionError(
            f"{exc} (generated kernel source: {kernel_source_path(placeholder)})"
        ) from None
    return Tensor(build.user_elementwise(user, out, *nodes))


def map(fn: Callable[..., Any], x: Any) -> Tensor:
    """Apply a scalar Python function elementwise; Numba compiles it into the kernel."""
    return _elementwise_user(fn, "map", asarray(x).node)


def zip(fn: Callable[..., Any], x: Any, y: Any) -> Tensor:
    """Apply a scalar Python function of two arguments elementwise, with broadcasting."""
    return _elementwise_user(fn, "zip", asarray(x).node, asarray(y).node)


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
