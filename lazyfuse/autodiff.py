"""Reverse-mode autodiff: ``lf.grad``, ``lf.value_and_grad``, ``lf.vjp``, ``lf.stop_gradient``.

The backward pass is an ordinary lazy graph. :func:`backward` walks the forward graph
from the output in reverse topological order (only the nodes that depend on an argument
asked for), applies each op's rule through the ordinary builders, and sums the
cotangents that fan in. Nothing runs until ``compute``: forward and backward are planned
together, and the fusion pass decides, by the rule it has for any graph, which forward
values are stored and which recomputed.

Where the rules live: an elementwise op's partial derivatives and a reduction's rule are
fields of its row (``graph/ops.py``, ``grad``); the ops without a row (matmul, views,
gathers, scans, host steps) have theirs here, in :data:`RULES` and :data:`HOST_RULES`.
tests/test_autodiff_rules.py fails when a differentiable op has none.

Conventions (the README's Gradients section): broadcasting is undone by summing; ties in
``maximum``/``minimum`` and in ``max``/``min`` reductions split the cotangent evenly (as
JAX); a zero cotangent times an infinite or NaN partial derivative contributes 0, so the
branch ``where`` did not take never turns a gradient into NaN (JAX and PyTorch give NaN
there); zero cotangents are absent, not arrays of zeros.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from lazyfuse import creation, functions, joining, scans
from lazyfuse.errors import GradError
from lazyfuse.graph import build, host, interpret
from lazyfuse.graph.names import BACKWARD_OF, op_name, user_function
from lazyfuse.graph.node import Node, make
from lazyfuse.graph.ops import ELEMENTWISE, LEAVES, REDUCTION, Op
from lazyfuse.graph.traverse import toposort
from lazyfuse.pytree import flatten, unflatten
from lazyfuse.tensor import TRACING, Tensor, asarray

__all__ = ["grad", "stop_gradient", "value_and_grad", "vjp"]

f = functions  # the namespace the rows' rules build with


# The public functions -----------------------------------------------------------------


def stop_gradient(x: Any) -> Tensor:
    """``x`` itself, through which no cotangent flows (as ``jax.lax.stop_gradient``)."""
    node = asarray(x).node
    return Tensor(_identity(node, "stop"))


def _identity(node: Node, tag: Any) -> Node:
    return make(Op.IDENTITY, (node,), ((node.dtype,), tag), node.shape, node.dtype)


def value_and_grad(
    fn: Callable[..., Any], argnums: int | Sequence[int] = 0, has_aux: bool = False
) -> Callable[..., Any]:
    """A function returning ``(fn(*args), gradient)``: the gradient of ``fn``'s output (a
    0-d float tensor) with respect to the arguments ``argnums`` (an int: that argument's
    gradient; a tuple: a tuple of them), each with its argument's pytree structure,
    shapes and dtypes, as lazy tensors: ``lf.compute(value, *grads)`` runs forward and
    backward as one plan. With ``has_aux``, ``fn`` returns ``(output, aux)`` and the
    value is that pair."""
    _check_argnums_type(fn, argnums)

    @functools.wraps(fn)
    def value_and_gradient(*args: Any, **kwargs: Any) -> tuple[Any, Any]:
        nums = _argnums(fn, argnums, len(args))
        arguments, wrt, structure = _differentiated(fn, args, nums)
        returned = fn(*arguments, **kwargs)
        out, aux = _split_aux(fn, returned, has_aux)
        value = _scalar_output(fn, out)
        seed = creation.ones((), value.dtype)
        cotangents = backward([(value.node, seed.node)], [w for w, _ in wrt])
        grads = _gradients(cotangents, wrt, structure, nums)
        result = tuple(grads) if isinstance(argnums, Sequence) else grads[0]
        return ((value, aux) if has_aux else value), result

    return value_and_gradient


def grad(
    fn: Callable[..., Any], argnums: int | Sequence[int] = 0, has_aux: bool = False
) -> Callable[..., Any]:
    """The gradient of ``fn`` (see :func:`value_and_grad`, whose value it drops); with
    ``has_aux``, ``(gradient, aux)``."""
    both = value_and_grad(fn, argnums, has_aux)

    @functools.wraps(fn)
    def gradient(*args: Any, **kwargs: Any) -> Any:
        value, grads = both(*args, **kwargs)
        return (grads, value[1]) if has_aux else grads

    return gradient


def vjp(fn: Callable[..., Any], *primals: Any, has_aux: bool = False) -> tuple[Any, ...]:
    """``(fn(*primals), vjp_fn)`` (and ``aux`` with ``has_aux``), as ``jax.vjp``:
    ``vjp_fn(cotangent)`` takes a cotangent of the output's structure, shapes and dtypes
    and returns a tuple with one gradient per primal, as lazy tensors."""
    nums = tuple(range(len(primals)))
    arguments, wrt, structure = _differentiated(fn, primals, nums)
    returned = fn(*arguments)
    out, aux = _split_aux(fn, returned, has_aux)
    leaves, treedef = flatten(out)
    outputs = [_float_output(fn, leaf, "vjp") for leaf in leaves]

    def vjp_fn(cotangent: Any) -> tuple[Any, ...]:
        given, given_def = flatten(cotangent)
        if given_def != treedef:
            raise GradError(
                f"vjp of {_name(fn)}: cotangent of structure {given_def}, the output's is {treedef}"
            )
        seeds = []
        for out_leaf, cot in zip(outputs, given, strict=True):
            c = asarray(cot)
            if c.shape != out_leaf.shape:
                raise GradError(
                    f"vjp of {_name(fn)}: cotangent of shape {c.shape} for an output of shape "
                    f"{out_leaf.shape}"
                )
            seeds.append((out_leaf.node, c.astype(out_leaf.dtype).node))
        cotangents = backward(seeds, [w for w, _ in wrt])
        return tuple(_gradients(cotangents, wrt, structure, nums))

    result = unflatten(treedef, outputs)
    return (result, vjp_fn, aux) if has_aux else (result, vjp_fn)


# Arguments and outputs ------------------------------------------------------------------


def _name(fn: Any) -> str:
    return getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)


def _check_argnums_type(fn: Any, argnums: Any) -> None:
    nums = argnums if isinstance(argnums, Sequence) else (argnums,)
    if not nums or not all(isinstance(k, int) and not isinstance(k, bool) for k in nums):
        raise GradError(f"grad of {_name(fn)}: argnums must be an int or a tuple of ints, got {argnums!r}")


def _argnums(fn: Any, argnums: int | Sequence[int], count: int) -> tuple[int, ...]:
    nums = tuple(argnums) if isinstance(argnums, Sequence) else (argnums,)
    for k in nums:
        if not -count <= k < count:
            raise GradError(
                f"grad of {_name(fn)}: argnums {argnums!r} is out of range for a call with {count} "
                f"positional argument{'s' if count != 1 else ''}"
            )
    return tuple(k % count for k in nums)


def _differentiated(
    fn: Any, args: Sequence[Any], nums: tuple[int, ...]
) -> tuple[list[Any], list[tuple[Node, np.dtype]], dict[int, Any]]:
    """``args`` with the leaves of those in ``nums`` as tensors standing for them (an
    IDENTITY node per leaf, tagged with its place: distinct even when two leaves are the
    same array, and apart from a constant ``fn`` reads), the leaves' nodes and dtypes in
    order, and each differentiated argument's tree structure."""
    arguments = list(args)
    wrt: list[tuple[Node, np.dtype]] = []
    structure: dict[int, Any] = {}
    for k in nums:
        leaves, treedef = flatten(args[k], is_leaf=lambda x: isinstance(x, Tensor))
        made = []
        for leaf in leaves:
            tensor = _float_argument(fn, k, leaf)
            node = _identity(tensor.node, ("argument", len(wrt)))
            wrt.append((node, tensor.dtype))
            made.append(Tensor(node))
        arguments[k] = unflatten(treedef, made)
        structure[k] = treedef
    return arguments, wrt, structure


def _float_argument(fn: Any, k: int, leaf: Any) -> Tensor:
    if isinstance(leaf, (bool, int, np.integer, np.bool_)) or (
        not isinstance(leaf, (float, Tensor)) and np.asarray(leaf).dtype.kind != "f"
    ):
        kind = type(leaf).__name__
        if isinstance(leaf, np.ndarray):
            kind = f"array of {leaf.dtype}"
        raise GradError(
            f"grad of {_name(fn)}: argument {k} has a leaf of type {kind}; only float arrays and "
            f"tensors can be differentiated (pass it as float, or leave it out of argnums)"
        )
    tensor = asarray(np.asarray(leaf, dtype=np.float64) if isinstance(leaf, float) else leaf)
    if tensor.dtype.kind != "f":
        raise GradError(
            f"grad of {_name(fn)}: argument {k} has a tensor of dtype {tensor.dtype}; only float "
            f"arrays and tensors can be differentiated"
        )
    return tensor


def _split_aux(fn: Any, returned: Any, has_aux: bool) -> tuple[Any, Any]:
    if not has_aux:
        return returned, None
    if not isinstance(returned, (tuple, list)) or len(returned) != 2:
        got = f"a {type(returned).__name__}" + (
            f" of length {len(returned)}" if isinstance(returned, (tuple, list)) else ""
        )
        raise GradError(
            f"grad of {_name(fn)} with has_aux=True: fn must return a pair (output, aux), got {got}"
        )
    return returned[0], returned[1]


def _float_output(fn: Any, out: Any, what: str) -> Tensor:
    if not isinstance(out, Tensor):
        raise GradError(f"{what} of {_name(fn)}: fn must return a lazyfuse tensor, got {type(out).__name__}")
    if out.dtype.kind != "f":
        raise GradError(f"{what} of {_name(fn)}: the output has dtype {out.dtype}; it must be a float")
    return out


def _scalar_output(fn: Any, out: Any) -> Tensor:
    tensor = _float_output(fn, out, "grad")
    if tensor.ndim != 0:
        raise GradError(
            f"grad of {_name(fn)}: the output has shape {tensor.shape}; grad needs a 0-d output "
            f"(reduce it, e.g. with .sum(), or use lf.vjp for a non-scalar one)"
        )
    return tensor


def _gradients(
    cotangents: list[Node | None],
    wrt: list[tuple[Node, np.dtype]],
    structure: dict[int, Any],
    nums: tuple[int, ...],
) -> list[Any]:
    """The gradient of each argument in ``nums``: its tree of tensors, zeros where no
    cotangent reached a leaf."""
    tensors = [
        Tensor(c) if c is not None else creation.zeros(node.shape, dtype)
        for c, (node, dtype) in zip(cotangents, wrt, strict=True)
    ]
    grads, start = [], 0
    for k in nums:
        count = structure[k].leaves
        grads.append(unflatten(structure[k], tensors[start : start + count]))
        start += count
    return grads


# The backward pass ----------------------------------------------------------------------


def backward(seeds: Sequence[tuple[Node, Node]], wrt: Sequence[Node]) -> list[Node | None]:
    """The cotangent of each node of ``wrt`` (None where none reaches it) given the
    cotangents ``seeds`` of some output nodes."""
    order = toposort([node for node, _ in seeds])
    targets = set(wrt)
    needed = _depends_on(order, targets)
    known = set(order)
    cotangents: dict[Node, Node] = {}
    for node, seed in seeds:
        if node in needed:
            _add(cotangents, node, seed)
    for node in reversed(order):
        cotangent = cotangents.get(node)
        if cotangent is None or node in targets:
            continue
        for arg, contribution in _rule(node, Tensor(cotangent)):
            if arg in needed and contribution is not None:
                made = _folded(_as_dtype(contribution, arg.dtype).node)
                _mark(made, node, known)
                _add(cotangents, arg, made)
    return [cotangents.get(w) for w in wrt]


def _folded(node: Node) -> Node:
    """``node`` as a constant input when it is one value computed from constants only
    (the seed, a mean's count: the cotangents of a scalar loss's last ops), so that no
    kernel computes one number; else ``node``. The arguments of a running ``lf.jit``
    trace are not constants (a learning rate changes on each call)."""
    if node.size != 1 or not node.args or node.leaves is None:
        return node
    for leaf in node.leaves:
        if leaf.op not in (Op.INPUT, Op.SCALAR) or leaf.size != 1 or leaf in TRACING.arguments:
            return node
    (value,) = interpret.evaluate([node])
    return asarray(np.array(value, dtype=node.dtype)).node


def _depends_on(order: list[Node], targets: set[Node]) -> set[Node]:
    """The float nodes of ``order`` that depend on a node of ``targets`` (or are one)."""
    needed: set[Node] = set()
    for node in order:
        if node.dtype.kind == "f" and (node in targets or any(a in needed for a in node.args)):
            needed.add(node)
    return needed


def _add(cotangents: dict[Node, Node], node: Node, contribution: Node) -> None:
    found = cotangents.get(node)
    cotangents[node] = contribution if found is None else _folded(build.binary(Op.ADD, found, contribution))


def _as_dtype(t: Tensor, dtype: np.dtype) -> Tensor:
    return t if t.dtype == dtype else t.astype(dtype)


def _mark(node: Node, forward: Node, known: set[Node]) -> None:
    """Record that the new nodes below ``node`` differentiate ``forward``."""
    stack = [node]
    while stack:
        n = stack.pop()
        if n in known or n in BACKWARD_OF or n.op in LEAVES:
            continue
        BACKWARD_OF[n] = forward
        stack.extend(n.args)


def _rule(node: Node, g: Tensor) -> list[tuple[Node, Tensor | None]]:
    """(argument, its cotangent) pairs for ``node`` with cotangent ``g``."""
    op = node.op
    if op in ELEMENTWISE:
        return _elementwise(node, g)
    if op in REDUCTION:
        return [(node.args[0], _reduction(node, g))]
    rule = RULES.get(op)
    if rule is None:
        raise GradError(f"grad: the op {op_name(node)} is not differentiable")
    return rule(node, g)


def _elementwise(node: Node, g: Tensor) -> list[tuple[Node, Tensor | None]]:
    """Each operand's cotangent: ``g`` times the row's partial derivative."""
    operands = [Tensor(a) for a in node.args]
    partials = ELEMENTWISE[node.op].grad(f, Tensor(node), *operands)  # type: ignore[misc]
    return [(a, _times(g, d)) for a, d in zip(node.args, partials, strict=True)]


def _times(g: Tensor, partial: Any) -> Tensor | None:
    """``g * partial`` where a zero ``g`` contributes 0 whatever the partial (inf, NaN);
    a mask partial selects ``g``; a number needs no guard (None for 0: no cotangent)."""
    if isinstance(partial, (int, float)):
        return None if partial == 0 else g if partial == 1 else g * partial
    if partial.dtype.kind == "b":
        return functions.where(partial, g, 0)
    partial = Tensor(_folded(partial.node))
    return functions.where(g == 0, 0, g * partial)


def _reduction(node: Node, g: Tensor) -> Tensor:
    x = node.args[0]
    axes = node.attrs[0]
    kept = tuple(1 if a in axes else s for a, s in enumerate(x.shape))
    return REDUCTION[node.op].grad(f, g.reshape(kept), Tensor(node).reshape(kept), Tensor(x), axes)  # type: ignore[misc]


# Rules for the ops without a row --------------------------------------------------------

Rule = Callable[[Node, Tensor], list[tuple[Node, "Tensor | None"]]]


def _matmul(node: Node, g: Tensor) -> list[tuple[Node, Tensor | None]]:
    """``a @ b`` (batch axes already broadcast): ``g @ b^T`` and ``a^T @ g``."""
    a, b = (Tensor(n) for n in node.args)
    return [(a.node, g @ joining.matrix_transpose(b)), (b.node, joining.matrix_transpose(a) @ g)]


def _reshape(node: Node, g: Tensor) -> list[tuple[Node, Tensor | None]]:
    return [(node.args[0], g.reshape(node.args[0].shape))]


def _permute(node: Node, g: Tensor) -> list[tuple[Node, Tensor | None]]:
    inverse = tuple(np.argsort(node.attrs[0]).tolist())
    return [(node.args[0], g.transpose(inverse))]


def _expand(node: Node, g: Tensor) -> list[tuple[Node, Tensor | None]]:
    """A broadcast: the cotangent summed over the axes it widened."""
    x = node.args[0]
    widened = tuple(a for a, (s, t) in enumerate(zip(x.shape, node.shape, strict=True)) if s != t)
    return [(x, g.sum(widened, keepdims=True) if widened else g)]


def _index(node: Node, g: Tensor) -> list[tuple[Node, Tensor | None]]:
    """Basic indexing: the cotangent written into zeros where the view reads (a host step)."""
    x = node.args[0]
    params = (node.attrs[0], x.shape)
    return [(x, Tensor(build.host("index_grad", [g.node], params, x.shape, g.dtype)))]


def _index_grad(g: np.ndarray, key: tuple[Any, ...], shape: tuple[int, ...]) -> np.ndarray:
    out = np.zeros(shape, g.dtype)
    out[key] = g
    return out


def _gather(node: Node, g: Tensor) -> list[tuple[Node, Tensor | None]]:
    """The cotangent added into the table where it was read: an elementwise select where
    each table position was read at most once by a position the table's axes determine
    (``log_softmax(z)[arange(n), labels]``), else a scatter-add: one kernel with the
    cotangent's producers, parallel over a row's columns (codegen/cpu.py)."""
    table, *indices = node.args
    covered = _covered_axes(node)
    if covered is not None:
        return [(table, _scattered_densely(node, g, covered))]
    return [(table, Tensor(build.scatter_add(g.node, indices, node.attrs[0], table.shape)))]


def _scatter_add(node: Node, g: Tensor) -> list[tuple[Node, Tensor | None]]:
    """The cotangent of a scatter-add's values: the table's cotangent read where each
    value went (a gather); its indices get none."""
    values, *indices = node.args
    return [(values, Tensor(build.gather(g.node, indices, node.attrs[0], values.shape)))]


def _covered_axes(node: Node) -> dict[int, int] | None:
    """For a gather whose output axes each match one table axis (a ``("d", a)`` axis, or an
    index that is an iota along output axis ``a``): output axis -> table axis; else None.
    Size-1 output axes may be unmatched."""
    table, *indices = node.args
    matched: dict[int, int] = {}
    for t, (kind, j) in enumerate(node.attrs[0]):
        a = j if kind == "d" else _iota_axis(indices[j])
        if a is None:
            continue
        if a in matched or table.shape[t] != node.shape[a]:
            return None
        matched[a] = t
    if any(s != 1 for a, s in enumerate(node.shape) if a not in matched):
        return None
    return matched


def _iota_axis(index: Node) -> int | None:
    return index.attrs[0] if index.op is Op.IOTA else None


def _scattered_densely(node: Node, g: Tensor, covered: dict[int, int]) -> Tensor:
    table, *indices = node.args
    shape = table.shape

    def at_table(t: Tensor) -> Tensor:
        """An output-shaped tensor read at each table position's output position."""
        kept = sorted(covered)
        t = t.reshape(tuple(node.shape[a] for a in kept))
        t = t.transpose(tuple(np.argsort([covered[a] for a in kept]).tolist()))
        lifted = tuple(s if t_axis in covered.values() else 1 for t_axis, s in enumerate(shape))
        return t.reshape(lifted).broadcast_to(shape)

    hit: Tensor | None = None
    for t_axis, (kind, j) in enumerate(node.attrs[0]):
        if kind == "d" or _iota_axis(indices[j]) is not None:
            continue
        index = at_table(Tensor(indices[j]))
        index = functions.where(index < 0, index + shape[t_axis], index)
        same = index == Tensor(build.iota(shape, t_axis))
        hit = same if hit is None else hit & same
    spread = at_table(g)
    return spread if hit is None else functions.where(hit, spread, 0)


def _scan(node: Node, g: Tensor) -> list[tuple[Node, Tensor | None]]:
    op, axis = node.attrs
    x = node.args[0]
    if op is Op.SUM:
        return [(x, _reverse_cumsum(g, axis))]
    return [(x, _cumprod_grad(Tensor(x), g, axis))]


def _reverse_cumsum(t: Tensor, axis: int) -> Tensor:
    return joining.flip(scans.cumsum(joining.flip(t, axis), axis), axis)


def _cumprod_grad(x: Tensor, g: Tensor, axis: int) -> Tensor:
    """``sum_{j >= i} g_j prod_{k <= j, k != i} x_k`` without dividing by a zero: with P
    the running product of the nonzeros and n the running count of zeros, a nonzero x_i
    gets ``sum_{j >= i, n_j = 0} g_j P_j / x_i`` and the first zero ``sum_{j >= i, n_j = 1}
    g_j P_j`` (later zeros get 0: every term then holds the first zero)."""
    zero = x == 0
    nonzero = functions.where(zero, 1, x)
    running = scans.cumprod(nonzero, axis) * g
    zeros = scans.cumsum(zero, axis)
    before = _reverse_cumsum(functions.where(zeros == 0, running, 0), axis)
    at_first = _reverse_cumsum(functions.where(zeros == 1, running, 0), axis)
    return functions.where(zero, at_first, before / nonzero)


def _user(node: Node, g: Tensor) -> list[tuple[Node, Tensor | None]]:
    """lf.map / lf.zip: the partial derivatives the user passed as ``grad=``."""
    fn = user_function(node)
    partials = node.attrs[1] if len(node.attrs) > 1 else None
    if partials is None:
        how = "grad=dfn" if node.op is Op.MAP else "grad=(dfx, dfy)"
        raise GradError(
            f"grad: lf.{node.op.name.lower()}({fn.name}) at {fn.where} has no derivative; pass "
            f"{how} (scalar functions of the same arguments giving the partial derivatives)"
        )
    what = f"the derivative of {fn.name}"
    pairs = []
    for arg, partial in zip(node.args, partials, strict=True):
        local = functions._elementwise_user(partial, what, *node.args)  # compiled as fn is
        pairs.append((arg, _times(g, local)))
    return pairs


def _user_reduction(node: Node, g: Tensor) -> list[tuple[Node, Tensor | None]]:
    fn = user_function(node)
    raise GradError(
        f"grad: lf.reduce({fn.name}) at {fn.where} cannot be differentiated (a fold of a user function "
        f"has no rule); write the reduction with lf.sum / lf.prod / lf.max / lf.min, or wrap it in "
        f"lf.stop_gradient"
    )


def _host(node: Node, g: Tensor) -> list[tuple[Node, Tensor | None]]:
    name = node.attrs[0]
    rule = HOST_RULES.get(name)
    if rule is None:
        raise GradError(f"grad: the host step {name} is not differentiable")
    return rule(node, g)


def _concatenate(node: Node, g: Tensor) -> list[tuple[Node, Tensor | None]]:
    (axis,) = node.attrs[1]
    pairs, start = [], 0
    for part in node.args:
        key = (slice(None),) * axis + (slice(start, start + part.shape[axis]),)
        pairs.append((part, g[key]))
        start += part.shape[axis]
    return pairs


def _pad(node: Node, g: Tensor) -> list[tuple[Node, Tensor | None]]:
    widths = node.attrs[1][0]
    x = node.args[0]
    key = tuple(slice(before, before + s) for (before, _), s in zip(widths, x.shape, strict=True))
    return [(x, g[key])]


def _repeat(node: Node, g: Tensor) -> list[tuple[Node, Tensor | None]]:
    counts, axis = node.attrs[1]
    x = node.args[0]
    made = build.host("repeat_grad", [g.node], (counts, axis), x.shape, g.dtype)
    return [(x, Tensor(made))]


def _repeat_grad(g: np.ndarray, counts: tuple[int, ...], axis: int) -> np.ndarray:
    """The sums of ``g``'s runs of ``counts`` along ``axis`` (0 for a count of 0)."""
    shape = list(g.shape)
    shape[axis] = len(counts)
    out = np.zeros(shape, g.dtype)
    sizes = np.asarray(counts)
    used = np.flatnonzero(sizes)
    if used.size:
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])[used]
        sums = np.add.reduceat(g, starts, axis=axis)
        np.put_along_axis(out, _along(used, axis, g.ndim), sums, axis)
    return out


def _along(positions: np.ndarray, axis: int, ndim: int) -> np.ndarray:
    return positions.reshape([-1 if a == axis else 1 for a in range(ndim)])


def _nothing(node: Node, g: Tensor) -> list[tuple[Node, Tensor | None]]:
    return []


RULES: dict[Op, Rule] = {
    Op.MATMUL: _matmul,
    Op.RESHAPE: _reshape,
    Op.PERMUTE: _permute,
    Op.EXPAND: _expand,
    Op.INDEX: _index,
    Op.GATHER: _gather,
    Op.SCATTER_ADD: _scatter_add,
    Op.SCAN: _scan,
    Op.MAP: _user,
    Op.ZIP: _user,
    Op.REDUCE: _user_reduction,
    Op.HOST: _host,
    # leaves and index space: nothing below them
    Op.INPUT: _nothing,
    Op.SCALAR: _nothing,
    Op.IOTA: _nothing,
}

# Host steps (graph/host.py) by name; the backward pass's own steps and those the CUDA
# target makes after autodiff ran (gather, cumsum) have none.
HOST_RULES: dict[str, Rule] = {
    "concatenate": _concatenate,
    "pad": _pad,
    "repeat": _repeat,
}
NOT_DIFFERENTIABLE_HOSTS = frozenset(
    {"index_grad", "scatter_add", "repeat_grad", "gather", "cumsum", "cumprod"}
)

host.register("index_grad", _index_grad)
host.register("repeat_grad", _repeat_grad)
