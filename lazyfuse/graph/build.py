"""Building checked nodes: every shape and dtype rule runs here, when the user writes
the expression, so errors point at the user's line and name the op."""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lazyfuse.errors import DTypeError, ShapeError
from lazyfuse.graph import dtypes, shapes
from lazyfuse.graph.node import Node, make
from lazyfuse.graph.ops import ELEMENTWISE, REDUCTION, Op

# Note: a NumPy scalar of a dtype lazyfuse lacks (np.int8(1)) is an operand as it is:
# it is strong in the dtype rule, as in NumPy, and becomes a parameter of the loop dtype
# (int32_tensor + np.int8(1) is int32); one of a supported dtype is a 0-d input.
Operand = Node | dtypes.Scalar | np.generic


@dataclass(frozen=True, eq=False)
class UserFunction:
    """A user's scalar function and what Numba inferred for it (compiled by the runtime).

    ``compiled`` is the Numba dispatcher; the graph only keeps it to hand to codegen.
    """

    fn: Any
    compiled: Any
    name: str
    # what Numba's machine code for it is keyed by on disk (runtime/userfn.cache_key); None
    # when it has none, and then a kernel that calls it is compiled in every process
    key: str | None = None

    @property
    def where(self) -> str:
        code = getattr(self.fn, "__code__", None)
        return f"{code.co_filename}:{code.co_firstlineno}" if code else "?"


def input_node(array: Any) -> Node:
    """An input: a NumPy array, or a CUDA device array (see :func:`is_device_array`)."""
    dtype = dtypes.check_supported(np.dtype(array.dtype), "asarray")
    return make(Op.INPUT, (), (array,), tuple(array.shape), dtype)


def is_device_array(value: Any) -> bool:
    """A Numba CUDA device array (or the simulator's): the CPU target copies it to the
    host when it computes; the CUDA target reads it where it is."""
    return not isinstance(value, np.ndarray) and hasattr(value, "copy_to_host") and hasattr(value, "shape")


class _Occurrence:
    """Identity of one scalar written in an expression."""

    __slots__ = ("__weakref__",)


_FLOAT64, _INT64, _BOOL = np.dtype(np.float64), np.dtype(np.int64), np.dtype(np.bool_)
_INT64_RANGE = range(-(2**63), 2**63)
# Note: read once; reading an Enum member goes through its metaclass's __getattr__ on Python 3.11,
# a cost in every node built (bench_dispatch.py's `lazyfuse us` column, which builds the expression
# in each call; see benchmarks/README.md)
_SCALAR = Op.SCALAR


def scalar_node(value: dtypes.Scalar | np.generic, dtype: np.dtype, name: str) -> Node:
    """A run-time scalar parameter (never a literal in kernel source).

    Note: each scalar written is its own node, even when its value equals another's:
    were equal values one node, ``x * c + 1.0`` would have one parameter when c is 1.0
    and two otherwise, and a new value of c could change the kernel. So the node table
    (which would never find one) is skipped: a new occurrence is a new structure.
    """
    kind = type(value)
    exact = (
        (kind is float and dtype is _FLOAT64)
        or (kind is bool and dtype is _BOOL)
        or (kind is int and dtype is _INT64 and value in _INT64_RANGE)
    )
    converted = value if exact else dtypes.scalar_as(value, dtype, name)  # type: ignore[arg-type]
    occurrence = _Occurrence()
    key = (_SCALAR, (), ("occurrence", id(occurrence)), (), dtype)
    return Node(_SCALAR, (), (converted, occurrence), (), dtype, key)


def _dtype_of(o: Operand) -> dtypes.DTypeLike:
    return o.dtype if isinstance(o, (Node, np.generic)) else dtypes.weak_type(o)


def _operands(name: str, operands: Sequence[Operand], loop: Sequence[np.dtype]) -> tuple[Node, ...]:
    """Array operands broadcast to a common shape; Python scalars as SCALAR params."""
    shape = shapes.broadcast(name, *[o.shape for o in operands if isinstance(o, Node)])
    return tuple(
        broadcast_to(o, shape) if isinstance(o, Node) else scalar_node(o, dt, name)
        for o, dt in zip(operands, loop, strict=True)
    )


def elementwise(op: Op, *operands: Operand) -> Node:
    """A NumPy ufunc-like op: NEP 50 dtype rule, broadcasting, scalars as parameters."""
    row = ELEMENTWISE[op]
    if len(operands) != row.arity:
        raise TypeError(f"{row.name} takes {row.arity} operands, got {len(operands)}")
    nodes = [o for o in operands if type(o) is Node]
    if not nodes:
        raise TypeError(f"{row.name}: at least one operand must be a lazyfuse tensor")
    loop = _loop(op, tuple([_dtype_of(o) for o in operands]))
    shape = nodes[0].shape
    if all(n.shape == shape for n in nodes):  # Note: the common case, without broadcasting
        args = tuple([_as_arg(o, dt, row.name) for o, dt in zip(operands, loop[:-1], strict=True)])
    else:
        args = _operands(row.name, operands, loop[:-1])
    if op is Op.POW and (power := _small_power(args[0], operands[1], loop[-1])) is not None:
        return power
    if row.precondition and args[row.checked_arg].op is Op.SCALAR:  # arrays: when computed
        row.precondition(loop, args[row.checked_arg].attrs[0])
    return make(op, args, (loop[:-1],), _shape_of(args), loop[-1], dtype_attrs=True)


_WEAK_KINDS: dict[type, dtypes.DTypeLike] = {bool: _BOOL, int: int, float: float}
# Note: (op, operand dtypes or Python scalar types) -> (attrs, output dtype), or None where
# the general path must run (an op with preconditions or of another arity, an operand of
# another type): one dict lookup for the dtype rule of every op a user writes.
_FAST_RULES: dict[tuple[Any, ...], tuple[tuple[Any, ...], np.dtype] | None] = {}
_UNKNOWN: Any = object()


def binary(op: Op, a: Operand, b: Operand) -> Node:
    """:func:`elementwise` of two operands, written for speed (it runs for every
    operator a user writes): arrays of one shape, or an array and a Python scalar, of
    an op without preconditions; anything else takes the general path."""
    a_node, b_node = type(a) is Node, type(b) is Node
    a_kind = a.dtype if a_node else _WEAK_KINDS.get(type(a))  # type: ignore[union-attr]
    b_kind = b.dtype if b_node else _WEAK_KINDS.get(type(b))  # type: ignore[union-attr]
    kinds = (op, a_kind, b_kind)
    rule = _FAST_RULES.get(kinds, _UNKNOWN)
    if rule is _UNKNOWN:
        rule = _fast_rule(kinds, 2)
    if rule is None or not (a_node or b_node) or (a_node and b_node and a.shape != b.shape):  # type: ignore[union-attr]
        return elementwise(op, a, b)
    attrs, out = rule
    if a_node and b_node:
        return make(op, (a, b), attrs, a.shape, out, dtype_attrs=True)  # type: ignore[arg-type, union-attr]
    ins = attrs[0]
    x = a if a_node else scalar_node(a, ins[0], ELEMENTWISE[op].name)  # type: ignore[arg-type]
    y = b if b_node else scalar_node(b, ins[1], ELEMENTWISE[op].name)  # type: ignore[arg-type]
    shape = x.shape if a_node else y.shape  # type: ignore[union-attr]
    return make(op, (x, y), attrs, shape, out, dtype_attrs=True)  # type: ignore[arg-type]


def unary(op: Op, x: Node) -> Node:
    """:func:`elementwise` of one array, written for speed (see :func:`binary`)."""
    kinds = (op, x.dtype)
    rule = _FAST_RULES.get(kinds, _UNKNOWN)
    if rule is _UNKNOWN:
        rule = _fast_rule(kinds, 1)
    if rule is None:
        return elementwise(op, x)
    return make(op, (x,), rule[0], x.shape, rule[1], dtype_attrs=True)


def _fast_rule(kinds: tuple[Any, ...], arity: int) -> tuple[tuple[Any, ...], np.dtype] | None:
    """The entry of :data:`_FAST_RULES` for ``kinds``: None for an op of another arity,
    with preconditions, or an operand type that is not a dtype or a Python scalar type.
    A dtype error is raised, by the rule the general path uses, and not cached."""
    op, operands = kinds[0], kinds[1:]
    row = ELEMENTWISE[op]
    # Note: not `None in operands`, which is true for float64 (np.dtype(None) is float64)
    if row.arity != arity or row.precondition is not None or any(o is None for o in operands):
        rule = None
    else:
        loop = _loop(op, operands)
        rule = ((loop[:-1],), loop[-1])
    if len(_FAST_RULES) > 4096:
        _FAST_RULES.clear()
    _FAST_RULES[kinds] = rule
    return rule


def _as_arg(operand: Operand, dtype: np.dtype, name: str) -> Node:
    return operand if isinstance(operand, Node) else scalar_node(operand, dtype, name)


@functools.lru_cache(maxsize=4096)
def _loop(op: Op, kinds: tuple[dtypes.DTypeLike, ...]) -> tuple[np.dtype, ...]:
    """The dtypes ``op`` computes in, for operands of these dtypes (or Python scalar
    types): ``(*inputs, output)``. Cached: it runs for every op a user writes."""
    row = ELEMENTWISE[op]
    if op is Op.WHERE:
        value = dtypes.result_type("where", *kinds[1:])
        return (np.dtype(bool), value, value, value)
    extra = [row.weak_operand] if row.weak_operand else []
    assert row.ufunc is not None
    loop = dtypes.resolve_ufunc(row.ufunc, row.name, (*kinds, *extra))
    return (*loop[: row.arity], loop[-1])


_SMALL_POWERS = frozenset({1, 2, 3, 4, -1, -2, -3, -4})


def _small_power(x: Node, exponent: Operand, dtype: np.dtype) -> Node | None:
    """``x ** exponent`` computed in ``dtype`` without pow, for a Python scalar exponent of
    0.5 (sqrt) or n in -4..4 but 0 (multiplies of x, or of 1 / x for negative n; integer
    dtypes: positive n only, NumPy refuses the others); else None.

    Note: NumPy's own power loop computes a scalar exponent of 0.5, -1, 1 and 2 the same way
    (sqrt, 1 / x, x, x * x): those are NumPy's results exactly, sqrt(-0.0) = -0.0 included.
    For 3, 4 and -2..-4 NumPy calls pow (within 1 ulp); multiplies round once each: x ** 3
    within about 1 ulp, x ** 4 1.5 ulp, x ** -n as (1 / x) ** n adds n / 2 ulp (no overflow
    of x ** n on the way to a representable result). Integers wrap as NumPy's do.
    """
    if not isinstance(exponent, (int, float)) or isinstance(exponent, bool):
        return None
    if exponent == 0.5 and dtype.kind == "f":
        return make(Op.SQRT, (x,), ((dtype,),), x.shape, dtype)
    if exponent not in _SMALL_POWERS or (exponent < 0 and dtype.kind != "f"):
        return None
    n = int(exponent)
    base = x if n > 0 else make(Op.RECIPROCAL, (x,), ((dtype,),), x.shape, dtype)
    if abs(n) == 1:
        return base if base.dtype == dtype else astype(base, dtype)
    square = make(Op.MUL, (base, base), ((dtype, dtype),), x.shape, dtype)
    if abs(n) == 2:
        return square
    other = base if abs(n) == 3 else square
    return make(Op.MUL, (square, other), ((dtype, dtype),), x.shape, dtype)


def astype(x: Node, dtype: Any) -> Node:
    target = dtypes.check_supported(dtype, "astype")
    if target == x.dtype:
        return x
    return make(Op.CAST, (x,), ((x.dtype,),), x.shape, target)


def user_elementwise(
    fn: UserFunction, out_dtype: np.dtype, *operands: Node, partials: tuple[Any, ...] | None = None
) -> Node:
    """lf.map / lf.zip: attrs ``(fn,)``, or ``(fn, partials)`` with the user's partial
    derivatives (Python functions of the same arguments; lazyfuse.autodiff compiles them)."""
    op = Op.MAP if len(operands) == 1 else Op.ZIP
    name = "map" if op is Op.MAP else "zip"
    args = _operands(name, operands, [o.dtype for o in operands])
    attrs = (fn,) if partials is None else (fn, partials)
    return make(op, args, attrs, _shape_of(args), dtypes.check_supported(out_dtype, name))


def _shape_of(args: Sequence[Node]) -> tuple[int, ...]:
    return next((a.shape for a in args if a.op is not Op.SCALAR), ())


def reduction(op: Op, x: Node, axis: Any, keepdims: bool) -> Node:
    """A built-in reduction over ``axis`` with NumPy's dtype rule and empty-axis rule."""
    row = REDUCTION[op]
    if x.ndim == 0 and isinstance(axis, (int, np.integer)) and not isinstance(axis, bool) and axis in (0, -1):
        axis = ()  # Note: NumPy's ufunc reductions take axis 0 or -1 of a 0-d array as none
    axes = shapes.normalize_axes(row.name, axis, x.ndim)
    if row.refuses_empty and any(x.shape[a] == 0 for a in axes):
        raise ShapeError(
            f"{row.name}: zero-size array (shape {x.shape}) to reduction operation "
            f"{row.name} over axes {axes}, which has no identity"
        )
    out = dtypes.dtype_rule_from_reference(row.reference, x.dtype)
    return _reduced(op, (x,), (axes,), axes, out, keepdims)


def user_reduction(fn: UserFunction, x: Node, axis: Any, start: dtypes.Scalar, acc_dtype: np.dtype) -> Node:
    axes = shapes.normalize_axes("reduce", axis, x.ndim)
    acc = dtypes.check_supported(acc_dtype, "reduce")
    args = (x, scalar_node(start, acc, "reduce"))
    return _reduced(Op.REDUCE, args, (axes, fn), axes, acc, keepdims=False)


def _reduced(
    op: Op,
    args: tuple[Node, ...],
    attrs: tuple[Any, ...],
    axes: tuple[int, ...],
    dtype: np.dtype,
    keepdims: bool,
) -> Node:
    x = args[0]
    kept = tuple(s for i, s in enumerate(x.shape) if i not in axes)
    node = make(op, args, attrs, kept, dtype)
    if keepdims:
        return reshape(node, tuple(1 if i in axes else s for i, s in enumerate(x.shape)))
    return node


def mean(x: Node, axis: Any, keepdims: bool) -> Node:
    """NumPy's mean: integers and bool accumulate in float64; sum / count."""
    axes = shapes.normalize_axes("mean", axis, x.ndim)
    acc = x if x.dtype.kind == "f" else astype(x, np.float64)
    total = reduction(Op.SUM, acc, axes, keepdims)
    count = math.prod([x.shape[a] for a in axes])
    return binary(Op.TRUEDIV, total, count)


def matmul(a: Node, b: Node) -> Node:
    """NumPy's matmul: 1-D operands promoted, batch axes broadcast, result squeezed."""
    a_shape, b_shape, out_shape = shapes.matmul(a.shape, b.shape)
    try:
        dtype = dtypes.check_supported(np.result_type(a.dtype, b.dtype), "matmul")
    except TypeError as exc:
        raise DTypeError(f"matmul: {exc}") from exc
    batch = shapes.broadcast("matmul", a_shape[:-2], b_shape[:-2])
    shapes.check_size("matmul", (*batch, a_shape[-2], b_shape[-1]), dtype.itemsize)
    a3 = broadcast_to(reshape(a, a_shape), (*batch, *a_shape[-2:]))
    b3 = broadcast_to(reshape(b, b_shape), (*batch, *b_shape[-2:]))
    product = make(Op.MATMUL, (a3, b3), ((a.dtype, b.dtype),), (*batch, a_shape[-2], b_shape[-1]), dtype)
    return reshape(product, out_shape)


# views ---------------------------------------------------------------------------


def reshape(x: Node, shape: Sequence[int]) -> Node:
    new = shapes.reshape(x.shape, shape)
    if new == x.shape:
        return x
    if x.op is Op.IOTA:
        moved = _iota_reshaped(x, new)
        if moved is not None:
            return moved
    return make(Op.RESHAPE, (x,), (), new, x.dtype)


def permute(x: Node, axes: Sequence[int] | None, name: str = "transpose") -> Node:
    perm = shapes.permutation(name, axes, x.ndim)
    if perm == tuple(range(x.ndim)):
        return x
    if x.op is Op.IOTA:
        return iota(tuple(x.shape[a] for a in perm), perm.index(x.attrs[0]))
    return make(Op.PERMUTE, (x,), (perm,), tuple(x.shape[a] for a in perm), x.dtype)


def broadcast_to(x: Node, shape: Sequence[int]) -> Node:
    """``x`` seen at ``shape``: leading axes added by reshape, size-1 axes expanded."""
    if x.shape == shape:
        return x
    shape = tuple(int(s) for s in shape)
    fits = x.ndim <= len(shape) and all(s in (1, t) for s, t in zip(x.shape[::-1], shape[::-1], strict=False))
    if not fits:
        raise ShapeError(
            f"broadcast_to: cannot broadcast shape {x.shape} to {shape} (each axis, from the last, "
            f"must be 1 or equal to the target's)"
        )
    shapes.check_size("broadcast_to", shape, x.dtype.itemsize)
    lifted = reshape(x, (1,) * (len(shape) - x.ndim) + x.shape)
    if lifted.shape == shape:
        return lifted
    if lifted.op is Op.IOTA and lifted.shape[lifted.attrs[0]] == shape[lifted.attrs[0]]:
        return iota(shape, lifted.attrs[0])
    return make(Op.EXPAND, (lifted,), (), shape, x.dtype)


def expand_dims(x: Node, axis: int | Sequence[int]) -> Node:
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    ndim = x.ndim + len(axes)
    where = shapes.normalize_axes("expand_dims", axes, ndim)
    rest = iter(x.shape)
    return reshape(x, tuple(1 if i in where else next(rest) for i in range(ndim)))


def squeeze(x: Node, axis: int | Sequence[int] | None = None) -> Node:
    if axis is None:
        axes = tuple(i for i, s in enumerate(x.shape) if s == 1)
    else:
        axes = shapes.normalize_axes("squeeze", axis, x.ndim)
        wrong = [a for a in axes if x.shape[a] != 1]
        if wrong:
            raise ShapeError(f"squeeze: cannot select axis {wrong[0]} of shape {x.shape}: its size is not 1")
    return reshape(x, tuple(s for i, s in enumerate(x.shape) if i not in axes))


def index(x: Node, key: Any) -> Node:
    """Basic indexing (ints, slices with any step, None, Ellipsis) as one view."""
    key = key if isinstance(key, tuple) else (key,)
    key = tuple(int(k) if isinstance(k, np.integer) else k for k in key)
    shape = shapes.index(x.shape, key)
    if x.op is Op.IOTA and all(k is None or k is Ellipsis or k == slice(None) for k in key):
        return reshape(x, shape)  # only new axes: an iota again
    return make(Op.INDEX, (x,), (key,), shape, x.dtype)


# index space ------------------------------------------------------------------------


def iota(shape: Sequence[int], axis: int) -> Node:
    """Each element's index along ``axis`` of ``shape`` (int64). It costs no memory: a
    kernel computes it from its loop index. Views of it are iotas again where they can
    be (:func:`reshape`, :func:`permute`, :func:`broadcast_to`), so ``arange(n)[:, None]``
    broadcast over a matrix stays an index, never a stored array."""
    shape = tuple(int(s) for s in shape)
    shapes.check_size("iota", shape, 8)
    return make(Op.IOTA, (), (axis,), shape, _INT64)


def _iota_reshaped(x: Node, new: tuple[int, ...]) -> Node | None:
    """``x`` (an iota) reshaped to ``new`` as an iota, when the reshape only adds or
    drops size-1 axes and keeps the iota's axis; else None (a view of it)."""
    axis = x.attrs[0]
    if x.shape[axis] == 1 or [s for s in x.shape if s != 1] != [s for s in new if s != 1]:
        return None
    rank = sum(1 for s in x.shape[:axis] if s != 1)
    positions = [a for a, s in enumerate(new) if s != 1]
    return iota(new, positions[rank])


def host(name: str, args: Sequence[Node], params: tuple[Any, ...], shape: Sequence[int], dtype: Any) -> Node:
    """A value computed by the host function ``name`` (graph/host.py) from ``args`` and
    the hashable ``params``, of ``shape`` and ``dtype`` (the caller's promise, checked
    when it runs)."""
    return make(Op.HOST, tuple(args), (name, params), tuple(int(s) for s in shape), np.dtype(dtype))


# gathers --------------------------------------------------------------------------


def gather(
    table: Node, indices: Sequence[Node], axes: tuple[tuple[str, int], ...], shape: Sequence[int]
) -> Node:
    """``out[p] = table[e_0, ..., e_k]`` at each position ``p`` of ``shape``: ``e_t`` is
    ``indices[j][p]`` where ``axes[t]`` is ``("i", j)`` (negative values count from the
    end; out of range raises IndexError before a kernel runs), or ``p[a]`` where it is
    ``("d", a)``. Each index is an int32/int64 node of ``shape``."""
    shape = tuple(int(s) for s in shape)
    if len(axes) != table.ndim:
        raise ShapeError(f"gather: {len(axes)} index axes for a table of {table.ndim} axes")
    for index in indices:
        if index.dtype.kind != "i" or index.shape != shape:
            raise DTypeError(
                f"gather: index of dtype {index.dtype}, shape {index.shape}; needs ints of {shape}"
            )
    for t, (kind, j) in enumerate(axes):
        if (
            kind == "i"
            and indices[j].op is Op.IOTA
            and indices[j].shape[indices[j].attrs[0]] > table.shape[t]
        ):
            extent = indices[j].shape[indices[j].attrs[0]]
            raise IndexError(f"index {extent - 1} is out of bounds for axis {t} with size {table.shape[t]}")
    return make(Op.GATHER, (table, *indices), (axes,), shape, table.dtype)


def scatter_add(
    values: Node, indices: Sequence[Node], axes: tuple[tuple[str, int], ...], shape: Sequence[int]
) -> Node:
    """A zero table of ``shape`` with ``values[p]`` added at ``table[e_0, ..., e_k]`` for
    every position ``p`` of ``values`` (``e_t`` as in :func:`gather`, whose gradient this
    is): repeated positions accumulate, as ``np.add.at``. One kernel with the values'
    elementwise producers (see codegen/cpu.py's scatters)."""
    shape = tuple(int(s) for s in shape)
    if len(axes) != len(shape) or any(index.shape != values.shape for index in indices):
        raise ShapeError(f"scatter_add: {len(axes)} index axes for a table of {len(shape)} axes")
    return make(Op.SCATTER_ADD, (values, *indices), (axes,), shape, values.dtype)


def unchecked_index(index: Node) -> bool:
    """Whether a gather's index needs no check of its values: an iota, which the build
    checked against the table's extent."""
    return index.op is Op.IOTA


def scan(op: Op, x: Node, axis: int, dtype: Any) -> Node:
    """The running fold of the reduction ``op`` (SUM for cumsum, PROD for cumprod) along
    ``axis`` of ``x``, accumulated in ``dtype``: one kernel with ``x``'s elementwise
    producers (see codegen/cpu.py's scans)."""
    return make(Op.SCAN, (x,), (op, axis), x.shape, dtypes.check_supported(dtype, REDUCTION[op].name))
