"""Kernel specs: the contract between the graph and code generation.

A spec says what one kernel computes without any array size in it, so one compiled
kernel serves every size: its iteration domain (output rank, reduced axes), the array
arguments it loads, the scalar parameters, a small expression DAG over loaded values,
and how the result is stored or accumulated. Specs are hashable and equal specs
compile to the same kernel.

Note: views are not kernels. The runtime passes each array argument already seen
through its views (a strided NumPy view: permuted, sliced, broadcast with stride 0,
negative strides), so a load is an index into a strided array and never a copy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from lazyfuse.graph import dtypes
from lazyfuse.graph.node import Node
from lazyfuse.graph.ops import ELEMENTWISE, REDUCTION, Op


@dataclass(frozen=True)
class ArrayArg:
    name: str
    dtype: np.dtype
    ndim: int


@dataclass(frozen=True)
class ScalarArg:
    name: str
    dtype: np.dtype


@dataclass(frozen=True)
class Expr:
    """``target = op(*args)``: args (names of loads, params or earlier exprs) are
    cast to ``loop`` dtypes, the result has ``dtype``."""

    target: str
    op: Op
    args: tuple[str, ...]
    arg_dtypes: tuple[np.dtype, ...]
    loop: tuple[np.dtype, ...]
    dtype: np.dtype
    fn: str | None = None


@dataclass(frozen=True)
class KernelSpec:
    """One kernel. ``kind`` is 'elementwise', 'reduce' or 'matmul'.

    elementwise: ``out[i] = body(arrays[i], params)`` over ``ndim`` axes.
    reduce: arrays[0] arrives with kept axes first and ``n_reduced`` reduced axes last;
      ``out[i] = fold(reduce_op, start, body(arrays[0][i, r]))``.
    matmul: ``out[..., i, j] = sum_k arrays[0][..., i, k] * arrays[1][..., k, j]``.
    """

    name: str
    kind: str
    ndim: int
    arrays: tuple[ArrayArg, ...]
    params: tuple[ScalarArg, ...]
    body: tuple[Expr, ...]
    out_dtype: np.dtype
    reduce_op: Op | None = None
    n_reduced: int = 0
    user_functions: tuple[tuple[str, Any], ...] = ()
    description: str = ""


def is_kernel(node: Node) -> bool:
    return node.op in ELEMENTWISE or node.op in REDUCTION or node.op in (Op.MAP, Op.ZIP, Op.REDUCE, Op.MATMUL)


def op_name(node: Node) -> str:
    if node.op in ELEMENTWISE:
        return ELEMENTWISE[node.op].name
    if node.op in REDUCTION:
        return REDUCTION[node.op].name
    if node.op in (Op.MAP, Op.ZIP, Op.REDUCE):
        fn = node.attrs[1] if node.op is Op.REDUCE else node.attrs[0]
        return f"{node.op.name.lower()}_{_identifier(fn.name)}"
    return node.op.name.lower()


def _identifier(text: str) -> str:
    cleaned = "".join(c if c.isalnum() else "_" for c in text).strip("_")
    return cleaned or "fn"


def spec_for(node: Node) -> KernelSpec:
    """The kernel that computes ``node`` from its (viewed) arguments."""
    if node.op is Op.MATMUL:
        return _matmul_spec(node)
    if node.op in REDUCTION or node.op is Op.REDUCE:
        return _reduce_spec(node)
    return _elementwise_spec(node)


def _signature(node: Node, args: tuple[Node, ...]) -> str:
    parts = [("s" if a.op is Op.SCALAR else "") + dtypes.short(a.dtype) for a in args]
    return "_".join([op_name(node), *parts, f"{node.ndim}d"])


def _describe(node: Node) -> str:
    """What the kernel computes, by dtype and rank only: sizes must not change its source."""
    args = ", ".join(
        f"{a.dtype}[{a.ndim}d]" if a.op is not Op.SCALAR else f"{a.dtype} scalar" for a in node.args
    )
    return f"{op_name(node)}({args}) -> {node.dtype}[{node.ndim}d]"


def _arguments(args: tuple[Node, ...]) -> tuple[tuple[ArrayArg, ...], tuple[ScalarArg, ...], list[str]]:
    arrays: list[ArrayArg] = []
    params: list[ScalarArg] = []
    names: list[str] = []
    for a in args:
        if a.op is Op.SCALAR:
            params.append(ScalarArg(f"p{len(params)}", a.dtype))
            names.append(params[-1].name)
        else:
            arrays.append(ArrayArg(f"a{len(arrays)}", a.dtype, a.ndim))
            names.append(f"x{len(arrays) - 1}")
    return tuple(arrays), tuple(params), names


def _elementwise_spec(node: Node) -> KernelSpec:
    arrays, params, names = _arguments(node.args)
    user = node.attrs[0] if node.op in (Op.MAP, Op.ZIP) else None
    loop = tuple(a.dtype for a in node.args) if user else node.attrs[0]
    expr = Expr(
        "t0",
        node.op,
        tuple(names),
        tuple(a.dtype for a in node.args),
        loop,
        node.dtype,
        "fn0" if user else None,
    )
    return KernelSpec(
        name=_signature(node, node.args),
        kind="elementwise",
        ndim=node.ndim,
        arrays=arrays,
        params=params,
        body=(expr,),
        out_dtype=node.dtype,
        user_functions=(("fn0", user),) if user else (),
        description=_describe(node),
    )


def _reduce_spec(node: Node) -> KernelSpec:
    x = node.args[0]
    axes = node.attrs[0]
    user = node.attrs[1] if node.op is Op.REDUCE else None
    arrays = (ArrayArg("a0", x.dtype, x.ndim),)
    params = (ScalarArg("p0", node.dtype),) if user else ()
    cast = Expr("t0", Op.CAST, ("x0",), (x.dtype,), (x.dtype,), node.dtype)
    return KernelSpec(
        name=f"{_signature(node, (x,))}_over_{len(axes)}",
        kind="reduce",
        ndim=node.ndim,
        arrays=arrays,
        params=params,
        body=(cast,) if not user else (),
        out_dtype=node.dtype,
        reduce_op=node.op,
        n_reduced=len(axes),
        user_functions=(("fn0", user),) if user else (),
        description=_describe(node),
    )


def reduce_permutation(node: Node) -> tuple[int, ...]:
    """How the runtime permutes a reduction's input: kept axes first, reduced last."""
    axes = node.attrs[0]
    x = node.args[0]
    return (*[a for a in range(x.ndim) if a not in axes], *axes)


def _matmul_spec(node: Node) -> KernelSpec:
    a, b = node.args
    arrays = (ArrayArg("a0", a.dtype, a.ndim), ArrayArg("a1", b.dtype, b.ndim))
    return KernelSpec(
        name=_signature(node, node.args),
        kind="matmul",
        ndim=node.ndim,
        arrays=arrays,
        params=(),
        body=(),
        out_dtype=node.dtype,
        description=_describe(node),
    )
