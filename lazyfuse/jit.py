"""``lf.jit``: trace a function of tensors once per argument signature, then run its
plan on new arguments directly, without building the expression again.

Building an expression costs a few microseconds per op in Python (see bench_dispatch),
which small arrays in a loop pay on every call. A traced function pays it once per
signature: the dtypes and shapes of its array arguments, which of them are the same
array, and the values of its scalar arguments. After that a call fills the plan's slots
with the new arrays and runs the kernels.
"""

from __future__ import annotations

import functools
import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lazyfuse import config
from lazyfuse.errors import LazyfuseError
from lazyfuse.graph.node import Node
from lazyfuse.graph.ops import Op
from lazyfuse.runtime import cuda_execute, execute, plans
from lazyfuse.tensor import PYTHON_SCALARS, Tensor, asarray, compute, target_of


@dataclass(eq=False)
class _Trace:
    """One signature's plan: for each slot, the argument that fills it (an index) or the
    value the function itself put there (a constant it read or wrote)."""

    plan: plans.Plan
    slots: tuple[tuple[int, Any], ...]  # (argument index, or -1 and the constant)
    resize: plans.Resize | None
    target: str
    single: bool  # the function returned one tensor, not a tuple
    ready: Any = None  # the CPU's ready call of a direct plan: None, False or execute.Ready (see run_direct)


def jit(fn: Callable[..., Any] | None = None, *, target: str | None = None) -> Any:
    """``@lf.jit`` (or ``lf.jit(fn, target="cuda")``): ``fn`` takes arrays and Python
    scalars and returns a tensor or a tuple of tensors built from them; calling the result
    returns NumPy arrays, as ``.compute()`` does.

    ``fn`` runs (is traced) once per signature: the dtypes and shapes of the array
    arguments, which of them are the same array, and the values of scalar arguments (a
    new value traces again: no compile, since the plan is cached). As with ``jax.jit``,
    anything else ``fn`` reads (a global array, a closure's scalar) is fixed when it is
    traced; arrays are read where they are, so writes into them are seen."""
    if fn is None:
        return lambda f: jit(f, target=target)
    traces: dict[tuple[Any, ...], _Trace] = {}
    lock = threading.Lock()

    @functools.wraps(fn)
    def traced(*args: Any) -> Any:
        key = _signature(fn, args, target)
        found = traces.get(key)
        if found is None:
            made, first = _trace(fn, args, target)
            with lock:
                traces.setdefault(key, made)
            return first[0] if made.single else first
        values = [args[k] if k >= 0 else constant for k, constant in found.slots]
        if found.target == "cuda":
            results = cuda_execute.run_plan(found.plan, values, found.resize)
        else:
            results = execute.run_plan(found.plan, values, found.resize, held=found)
        return results[0] if found.single else tuple(results)

    traced.traces = traces  # type: ignore[attr-defined]  # one per signature seen
    return traced


def _signature(fn: Callable[..., Any], args: Sequence[Any], target: str | None) -> tuple[Any, ...]:
    """What a trace depends on, per argument: an array's dtype, shape and the first
    argument that is the same array; a scalar's type and value. Then the settings."""
    parts: list[Any] = []
    first: dict[int, int] = {}
    for k, arg in enumerate(args):
        kind = type(arg)
        if kind is np.ndarray:
            parts.append((arg.dtype, arg.shape, first.setdefault(id(arg), k)))
        elif kind in PYTHON_SCALARS or isinstance(arg, np.generic):
            parts.append(_scalar_part(arg))
        elif kind is Tensor and arg.node.op is Op.INPUT:
            raise TypeError(
                f"lf.jit: {_name(fn)} argument {k} is an lf.asarray tensor; pass the array itself"
            )
        else:
            raise TypeError(
                f"lf.jit: {_name(fn)} takes NumPy arrays and Python or NumPy scalars; argument {k} "
                f"is a {kind.__name__}"
            )
    settings = config.get()
    parts.append((target or settings.target, settings.fuse, settings.checks))
    return tuple(parts)


def _scalar_part(value: Any) -> tuple[Any, ...]:
    """A scalar argument's part of a signature: its type and value, where -0.0 is not 0.0
    (they divide to -inf and inf) and a NaN is equal to itself (or every call with a NaN
    would trace again)."""
    kind = type(value)
    if isinstance(value, (float, np.floating)):
        number = float(value)
        return (kind, "nan") if number != number else (kind, number, math.copysign(1.0, number))
    return (kind, value)


def _trace(
    fn: Callable[..., Any], args: Sequence[Any], target: str | None
) -> tuple[_Trace, tuple[np.ndarray, ...]]:
    """Run ``fn`` on tensors of ``args``, compute what it returns (as ``compute()`` does:
    checked, verified, planned) and keep the plan and where each slot's value comes from.

    Note: each array argument is traced as a view of itself, one per distinct array, so
    that its node is not the node of the same array read as a constant inside ``fn``
    (nodes are hash-consed: ``lf.asarray(C)`` in ``fn`` and an argument ``C`` would be one
    leaf, and a later call would put its argument where the constant C belongs)."""
    views: dict[int, np.ndarray] = {}
    originals: dict[int, np.ndarray] = {}
    for a in args:
        if type(a) is np.ndarray and id(a) not in views:
            views[id(a)] = view = a.view()
            originals[id(view)] = a
    inputs = [asarray(views[id(a)]) if type(a) is np.ndarray else a for a in args]
    returned = fn(*inputs)
    single = isinstance(returned, Tensor)
    outputs = [returned] if single else list(returned) if isinstance(returned, (tuple, list)) else None
    if not outputs or not all(isinstance(t, Tensor) for t in outputs):
        raise LazyfuseError(
            f"lf.jit: {_name(fn)} must return a lazyfuse tensor or a tuple of them, "
            f"got {type(returned).__name__}"
        )
    roots = [t.node for t in outputs]
    chosen = target_of(target)
    results = tuple(originals.get(id(r), r) for r in compute(*outputs, target=chosen))  # an argument itself
    found, leaves, resize = plans.lookup(roots)
    argument = {id(t.node): k for k, t in enumerate(inputs) if isinstance(t, Tensor)}
    slots = tuple(_slot(leaf, argument) for leaf in leaves)
    return _Trace(found, slots, resize, chosen, single), results


def _slot(leaf: Node, argument: dict[int, int]) -> tuple[int, Any]:
    k = argument.get(id(leaf))
    return (k, None) if k is not None else (-1, leaf.attrs[0])


def _name(fn: Callable[..., Any]) -> str:
    return getattr(fn, "__qualname__", repr(fn))
