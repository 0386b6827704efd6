"""``lf.jit``: trace a function of tensors once per argument signature, then run its
plan on new arguments directly, without building the expression again.

Building an expression costs a few microseconds per op in Python (see bench_dispatch),
which small arrays in a loop pay on every call. A traced function pays it once per
signature: the structure of its arguments (pytrees: nested tuples, lists, dicts and
namedtuples, see ``lazyfuse.pytree``), the dtypes and shapes of the arrays at their
leaves, which leaves are the same array, and the types of its scalar leaves. After that
a call flattens its arguments, fills the plan's slots with the new arrays and scalars
and runs the kernels; the results come back in the structure the function returned.

Scalar arguments are run-time values (as in ``jax.jit``): a Python ``int`` or ``float``
is traced as a weak scalar (NEP 50: it takes the dtype of the array it meets), a NumPy
scalar as a 0-d array of its dtype; a Python ``bool`` stays a Python value (a flag, one
trace per value). Python control flow on a traced value raises ConcretizationError.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lazyfuse import config, pytree
from lazyfuse.errors import LazyfuseError
from lazyfuse.graph import build, dtypes
from lazyfuse.graph.node import Node
from lazyfuse.graph.ops import ELEMENTWISE, Op
from lazyfuse.runtime import plans, targets
from lazyfuse.tensor import PYTHON_SCALARS, TRACING, Tensor, WeakScalar, asarray, compute, target_for

MAX_TRACES = 256  # traces kept per jitted function, least recently used dropped first
_WEAK_DTYPES = {float: np.dtype(np.float64), int: np.dtype(np.int64)}

Convert = Callable[[Any], Any]  # a leaf of the arguments to the value its slot holds


@dataclass(eq=False)
class _Trace:
    """One signature's plan: for each slot, the leaf of the flattened arguments that fills
    it (an index, and how a scalar is converted, None for as it is) or the value the
    function itself put there (a constant it read or wrote); and the structure of what
    the function returned, whose leaves are the plan's outputs in order."""

    plan: plans.Plan
    slots: tuple[tuple[int, Any, Convert | None], ...]  # (leaf index, or -1 and the constant; convert)
    resize: plans.Resize | None
    target: targets.Target
    result: pytree.TreeDef  # the returned pytree's structure, one leaf per output
    ready: Any = None  # the CPU's ready call of a direct plan: None, False or execute.Ready (see run_direct)
    arrays: tuple[int, ...] = ()  # the slots an array argument fills: their strides may change between calls
    replayed: Any = None  # the CPU's last replay of this trace: (settings, layout, replay) (see run_plan)

    def __post_init__(self) -> None:
        self.fill = _filler(self.slots)
        self.flat = self.result.kind is tuple and all(c.kind == "leaf" for c in self.result.children)

    def layout(self, values: Sequence[Any]) -> tuple[Any, ...]:
        """What may change between the calls of one trace in its slots' values: the
        strides and writeability of the arrays (shapes, dtypes and scalar types are in
        the trace's key; constants are the trace's own)."""
        return tuple([(values[k].strides, values[k].flags.writeable) for k in self.arrays])


def jit(fn: Callable[..., Any] | None = None, *, target: str | None = None) -> Any:
    """``@lf.jit`` (or ``lf.jit(fn, target="cuda")``): ``fn`` takes pytrees (nested tuples,
    lists, dicts, namedtuples; ``None`` an empty one) whose leaves are arrays
    (``np.memmap`` too) and Python or NumPy scalars, positionally or by keyword, and
    returns a pytree of tensors built from them (a tensor, ``(loss, {"w": gw, "b": gb})``);
    calling the result returns NumPy arrays in the same structure, computed by one plan,
    as ``.compute()`` does. ``fn`` sees its arguments' structure with a tensor at each
    array leaf (``params["w"]``); dicts, in the arguments and the results, have their keys
    sorted, as in ``jax.jit``. Every leaf of the result must be a tensor (unlike
    ``jax.jit``, a Python scalar leaf is refused, not returned as an array).

    ``fn`` runs (is traced) once per signature: the arguments' structure, the dtypes and
    shapes of the array leaves, which of them are the same array, and the types of scalar
    leaves. Scalars are run-time values, at the top level or inside a pytree: a new
    learning rate fills a slot of the same plan. A Python int or float is weak (NEP 50:
    ``float32_array * 0.5`` stays float32), a NumPy scalar strong, as in NumPy; a Python
    bool stays a Python value, one trace per value. Python control flow on a traced value
    (``if x.sum() > 0``, ``if lr > 0``) or ``float()``/``int()``/``np.asarray()`` of one
    raises ConcretizationError: use ``lf.where``. As with ``jax.jit``, anything else
    ``fn`` reads (a global array, a closure's scalar) is fixed when it is traced; arrays
    are read where they are, so writes into them are seen. At most MAX_TRACES (256)
    traces are kept per function, the least recently used dropped first (``.traces``,
    oldest first)."""
    if fn is None:
        return lambda f: jit(f, target=target)
    traces: OrderedDict[tuple[Any, ...], _Trace] = OrderedDict()
    lock = threading.Lock()

    @functools.wraps(fn)
    def traced(*args: Any, **kwargs: Any) -> Any:
        if kwargs:
            args = _positional(fn, args, kwargs)
        leaves, structure = _flatten_arguments(args)
        key = _signature(fn, leaves, structure, target)
        found = traces.get(key)
        if found is None:
            made, first = _trace(fn, leaves, structure, target)
            with lock:
                _remember(traces, key, made)
            return _rebuilt(made.result, first)
        with contextlib.suppress(KeyError):  # Note: another thread may have dropped it
            traces.move_to_end(key)
        results = found.target.run_plan(found.plan, found.fill(leaves), found.resize, found)
        return tuple(results) if found.flat else _rebuilt(found.result, results)

    traced.traces = traces  # type: ignore[attr-defined]  # one per signature seen, oldest first
    return traced


def _filler(slots: Sequence[tuple[int, Any, Convert | None]]) -> Callable[[Sequence[Any]], list[Any]]:
    """The function of a call's leaves that gives the plan's slot values (one list
    display, compiled once per trace): ``leaves[k]``, ``convert3(leaves[k])`` or the
    constant ``constant2``."""
    scope: dict[str, Any] = {}
    made = []
    for s, (k, constant, convert) in enumerate(slots):
        if k < 0:
            scope[f"constant{s}"] = constant
            made.append(f"constant{s}")
        elif convert is not None:
            scope[f"convert{s}"] = convert
            made.append(f"convert{s}(leaves[{k}])")
        else:
            made.append(f"leaves[{k}]")
    source = f"def fill(leaves):\n    return [{', '.join(made)}]\n"
    exec(compile(source, "<lazyfuse jit slots>", "exec"), scope)  # Note: names and indexes made here
    return scope["fill"]  # type: ignore[no-any-return]


def _rebuilt(result: pytree.TreeDef, outputs: Sequence[np.ndarray]) -> Any:
    """The plan's ``outputs`` (in flatten's order) in the structure ``fn`` returned."""
    if result is pytree.LEAF:
        return outputs[0]
    return pytree.unflatten(result, outputs)


_NOT_LEAVES = (tuple, list, dict, type(None))  # what pytree.flatten descends into (or skips)
_PLAIN_LEAVES = frozenset({np.ndarray, np.memmap, float, int, bool})  # Note: one set lookup, the common case
_FLAT: dict[int, pytree.TreeDef] = {}  # the structure of n arguments that are all leaves


def _flatten_arguments(args: tuple[Any, ...]) -> tuple[Sequence[Any], pytree.TreeDef]:
    """The leaves of the arguments (in pytree.flatten's order) and their structure.

    Note: arguments that are all leaves (arrays, scalars) skip pytree.flatten: the common
    call pays a loop instead of a walk (about 4 us for a dict of two arrays), and gets the
    structure flatten would give."""
    for arg in args:
        if type(arg) not in _PLAIN_LEAVES and isinstance(arg, _NOT_LEAVES):
            return pytree.flatten(args)
    found = _FLAT.get(len(args))
    if found is None:
        found = _FLAT.setdefault(len(args), pytree.TreeDef(tuple, (), (pytree.LEAF,) * len(args)))
    return args, found


def _remember(traces: OrderedDict[tuple[Any, ...], _Trace], key: tuple[Any, ...], made: _Trace) -> None:
    """Keep ``made`` (unless another thread traced ``key`` first) and drop the least
    recently used traces beyond MAX_TRACES. Called with the function's lock held."""
    traces.setdefault(key, made)
    while len(traces) > MAX_TRACES:
        traces.popitem(last=False)


def _positional(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """``args`` and ``kwargs`` as positional arguments of ``fn`` (bound by its signature),
    with ``fn``'s defaults for the parameters before the last one given. A call Python
    would refuse, or a keyword that names a keyword-only or ``**`` parameter, is a
    TypeError naming ``fn``."""
    try:
        parameters = inspect.signature(fn).parameters
        given = inspect.signature(fn).bind(*args, **kwargs).arguments
    except (TypeError, ValueError) as exc:
        raise TypeError(f"lf.jit: {_name(fn)}(): {exc}") from None
    names = list(parameters)
    last = max(names.index(name) for name in given)
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    values = []
    for name in names[: last + 1]:
        if parameters[name].kind not in positional:
            raise TypeError(
                f"lf.jit: {_name(fn)}(): parameter {name!r} is keyword-only or variadic, which lf.jit "
                f"does not trace; make it positional or close over it"
            )
        values.append(given.get(name, parameters[name].default))
    return tuple(values)


def _signature(
    fn: Callable[..., Any], leaves: Sequence[Any], structure: pytree.TreeDef, target: str | None
) -> tuple[Any, ...]:
    """What a trace depends on, per leaf of the arguments: an array's dtype, shape and the
    first leaf that is the same array; a scalar's type (and a Python bool's value). Then
    the arguments' structure and the settings."""
    parts: list[Any] = []
    first: dict[int, int] = {}
    for k, leaf in enumerate(leaves):
        kind = type(leaf)
        if kind is np.ndarray or kind is np.memmap:
            parts.append((leaf.dtype, leaf.shape, first.setdefault(id(leaf), k)))
        elif kind is bool:
            parts.append((bool, leaf))  # Note: a flag, kept a Python value (see _input)
        elif kind in PYTHON_SCALARS or isinstance(leaf, np.generic):
            parts.append(kind)
        else:
            parts.append(_refused(fn, _argument_path(structure, k), leaf))
    settings = config.get()
    parts.append(structure)
    parts.append((target or settings.target, settings.fuse, settings.checks))
    return tuple(parts)


def _refused(fn: Callable[..., Any], where: str, leaf: Any) -> Any:
    """Raise the TypeError for a leaf lf.jit does not take; ``where`` is its path."""
    if isinstance(leaf, np.ndarray):
        asarray(leaf)  # raises the error of a refused subclass (masked arrays, np.matrix)
    if type(leaf) is Tensor and leaf.node.op is Op.INPUT:
        raise TypeError(f"lf.jit: {_name(fn)} {where} is an lf.asarray tensor; pass the array itself")
    raise TypeError(
        f"lf.jit: {_name(fn)} takes NumPy arrays and Python or NumPy scalars; {where} is a "
        f"{type(leaf).__name__} (pytrees of them are taken: tuples, lists, dicts, namedtuples, nested)"
    )


def _argument_path(structure: pytree.TreeDef, index: int) -> str:
    """Where leaf ``index`` of the arguments is, as the caller wrote it: ``argument 0['w']``,
    ``argument 1[2]``, ``argument 2.lr`` (a namedtuple's field)."""
    position, child, inner = _child_holding(structure, index)
    return f"argument {position}{_path(child, inner)}"


def _path(structure: pytree.TreeDef, index: int) -> str:
    """The indexing that reaches leaf ``index`` of a tree of ``structure`` (``""`` for a leaf)."""
    steps = []
    while structure.kind != "leaf":
        position, child, index = _child_holding(structure, index)
        if structure.kind is dict:
            steps.append(f"[{structure.keys[position]!r}]")
        elif hasattr(structure.kind, "_fields"):
            steps.append(f".{structure.kind._fields[position]}")
        else:
            steps.append(f"[{position}]")
        structure = child
    return "".join(steps)


def _child_holding(structure: pytree.TreeDef, index: int) -> tuple[int, pytree.TreeDef, int]:
    """The child of ``structure`` that holds its leaf ``index``: its position, structure
    and the leaf's index inside it."""
    for position, child in enumerate(structure.children):
        if index < child.leaves:
            return position, child, index
        index -= child.leaves
    raise IndexError(f"leaf {index} past the end of {structure}")


@dataclass(eq=False)
class _Arguments:
    """The graph leaves that stand for a trace's arguments: per graph leaf, the index of
    the argument leaf (in the flattened arguments) and how a call's leaf becomes the
    slot's value (None: as it is)."""

    slots: dict[Node, tuple[int, Convert | None]] = field(default_factory=dict)

    def add(self, node: Node, k: int, convert: Convert | None) -> Node:
        self.slots[node] = (k, convert)
        return node


@contextlib.contextmanager
def _tracing(fn: Callable[..., Any], arguments: _Arguments) -> Iterator[None]:
    """Mark this thread as tracing ``fn`` (see tensor._refuse_if_traced); nests."""
    saved = (TRACING.function, TRACING.arguments)
    TRACING.function, TRACING.arguments = _name(fn), arguments.slots  # Note: grows as fn runs
    try:
        yield
    finally:
        TRACING.function, TRACING.arguments = saved


def _trace(
    fn: Callable[..., Any], leaves: Sequence[Any], structure: pytree.TreeDef, target: str | None
) -> tuple[_Trace, tuple[np.ndarray, ...]]:
    """Run ``fn`` on the arguments rebuilt from tensors of their ``leaves``, compute the
    leaves of what it returns with one plan (as ``compute()`` does: checked, verified,
    planned) and keep the plan, where each slot's value comes from and the result's
    structure.

    Note: each array argument is traced as a view of itself, one per distinct array, so
    that its node is not the node of the same array read as a constant inside ``fn``
    (nodes are hash-consed: ``lf.asarray(C)`` in ``fn`` and an argument ``C`` would be one
    leaf, and a later call would put its argument where the constant C belongs)."""
    arguments = _Arguments()
    originals: dict[int, Any] = {}
    inputs = _inputs(leaves, arguments, originals)
    with _tracing(fn, arguments):
        returned = fn(*pytree.unflatten(structure, inputs))
    outputs, result = _outputs(fn, returned)
    roots = [t.node for t in outputs]
    chosen = target_for(target, roots)
    planned = chosen.planned(roots)
    results = tuple(
        originals.get(id(r), r) for r in compute(*outputs, target=chosen.name)
    )  # an argument itself
    found, graph_leaves, resize = plans.lookup(planned)
    slots = tuple(_slot(leaf, arguments) for leaf in graph_leaves)
    arrays = tuple(
        s
        for s, (k, _, convert) in enumerate(slots)
        if k >= 0 and convert is None and isinstance(leaves[k], np.ndarray)
    )
    return _Trace(found, slots, resize, chosen, result, arrays=arrays), results


def _outputs(fn: Callable[..., Any], returned: Any) -> tuple[list[Tensor], pytree.TreeDef]:
    """The tensors at the leaves of what ``fn`` returned, and its structure; a LazyfuseError
    when there is none or a leaf is not a tensor (naming where it is)."""
    outputs, result = pytree.flatten(returned)
    wrong = next((k for k, leaf in enumerate(outputs) if not isinstance(leaf, Tensor)), None)
    if outputs and wrong is None:
        return outputs, result
    if wrong is None:
        got = f"{type(returned).__name__} with no tensor in it"
    else:
        where = _path(result, wrong)
        got = type(outputs[wrong]).__name__ + (f" at result{where}" if where else "")
    raise LazyfuseError(
        f"lf.jit: {_name(fn)} must return a lazyfuse tensor or a tuple of them, got {got} "
        f"(any pytree of tensors is taken: tuples, lists, dicts, namedtuples, nested)"
    )


def _inputs(leaves: Sequence[Any], arguments: _Arguments, originals: dict[int, Any]) -> list[Any]:
    """What ``fn`` is traced on, per leaf of its arguments: a tensor per array (one per
    distinct array), a weak scalar per Python int or float, a 0-d tensor per NumPy scalar,
    a Python bool as is. Each tensor's graph leaf records the argument leaf's index."""
    seen: dict[int, Tensor] = {}
    inputs: list[Any] = []
    for k, arg in enumerate(leaves):
        kind = type(arg)
        if kind is np.ndarray or kind is np.memmap:
            if id(arg) not in seen:
                view = np.asarray(arg).view()
                originals[id(view)] = arg
                seen[id(arg)] = Tensor(arguments.add(asarray(view).node, k, None))
            inputs.append(seen[id(arg)])
        elif kind is float or kind is int:
            inputs.append(_Weak.of_argument(arg, k, arguments))
        elif isinstance(arg, np.generic):
            leaf = asarray(np.array(arg)).node
            inputs.append(Tensor(arguments.add(leaf, k, functools.partial(np.asarray, dtype=leaf.dtype))))
        else:
            inputs.append(arg)  # a Python bool: part of the signature
    return inputs


def _slot(leaf: Node, arguments: _Arguments) -> tuple[int, Any, Convert | None]:
    found = arguments.slots.get(leaf)
    return (found[0], None, found[1]) if found is not None else (-1, leaf.attrs[0], None)


def _name(fn: Callable[..., Any]) -> str:
    return getattr(fn, "__qualname__", repr(fn))


# weak scalars ---------------------------------------------------------------------------


def _weak_operator(op: Op, reflected: bool) -> Callable[[_Weak, Any], Tensor]:
    def method(self: _Weak, other: Any) -> Tensor:
        return self.combine(op, other, reflected)

    method.__name__ = method.__qualname__ = f"_Weak.{op.name.lower()}"
    return method


class _Weak(WeakScalar):
    """A Python int or float argument, or a value computed from such arguments and
    Python scalars only, inside a trace: weak as the Python scalar it stands for (NEP 50).

    Invariant: ``node`` is its value as a 0-d tensor of Python's dtype (float64, int64;
    bool for a comparison) over 0-d input leaves, one per argument; ``kind`` is the
    Python type it stands for; ``argument`` is the index of the argument leaf (in the
    flattened arguments) when it is one argument leaf itself, else None. With a tensor
    it is converted to the dtype NumPy gives a Python scalar of ``kind`` there: in
    operators and binary functions (``lf.maximum``, through ``tensor.binary``) and in
    ``lf.where`` (``tensor.unweak``). Other uses (a reduction of it, ``lf.map``) see
    ``node``: a strong 0-d tensor of float64 or int64.

    Note: a Tensor subclass, so that Python calls its reflected operators before the
    tensor's own (``x * s`` is ``s.__rmul__(x)``), and ``float(s)``, ``if s > 0`` raise
    as on any traced tensor. Its leaves are run-time slots, never constants: the only
    fold at build time (``x ** 2`` as ``x * x``) and the build-time preconditions are
    kept off them (see :meth:`combine`)."""

    __slots__ = ("argument", "arguments", "kind")

    def __init__(self, node: Node, kind: type, argument: int | None, arguments: _Arguments) -> None:
        super().__init__(node)
        self.kind, self.argument, self.arguments = kind, argument, arguments

    @classmethod
    def of_argument(cls, value: float | int, k: int, arguments: _Arguments) -> _Weak:
        dtype = _WEAK_DTYPES[type(value)]
        leaf = asarray(np.array(value, dtype=dtype)).node
        arguments.add(leaf, k, functools.partial(np.array, dtype=dtype))
        return cls(leaf, type(value), k, arguments)

    def combine(self, op: Op, other: Any, reflected: bool) -> Tensor:
        """``self <op> other`` (``other <op> self`` when ``reflected``): weak with another
        weak scalar or a Python scalar, else a tensor of the dtype NumPy gives."""
        if isinstance(other, _Weak) or (type(other) in PYTHON_SCALARS):
            mine, theirs = self.node, other.node if isinstance(other, _Weak) else other
            node = build.binary(op, *((theirs, mine) if reflected else (mine, theirs)))
            return _Weak(node, _python_kind(node.dtype), None, self.arguments)
        tensor = other if isinstance(other, Tensor) else asarray(other)
        if self.argument is not None and op is not Op.POW and ELEMENTWISE[op].precondition is None:
            return self._as_scalar_leaf(op, tensor, reflected)
        dtype = _weak_dtype(op, tensor.node, self.kind, reflected)
        mine = build.astype(self.node, dtype)
        return Tensor(build.binary(op, *((tensor.node, mine) if reflected else (mine, tensor.node))))

    def _as_scalar_leaf(self, op: Op, tensor: Tensor, reflected: bool) -> Tensor:
        """``tensor <op> argument`` with the argument a scalar parameter of the kernel (a
        SCALAR leaf of NumPy's dtype there), filled from the argument on every call."""
        value = self.node.attrs[0].item()  # the argument's 0-d array: this call's value
        made = build.binary(op, *((tensor.node, value) if reflected else (value, tensor.node)))
        leaf = made.args[1 if reflected else 0]
        assert leaf.op is Op.SCALAR, made
        self.arguments.add(leaf, self.argument, _converter(self.kind, leaf.dtype, ELEMENTWISE[op].name))  # type: ignore[arg-type]
        return Tensor(made)

    def __neg__(self) -> _Weak:
        return _Weak(build.unary(Op.NEG, self.node), self.kind, None, self.arguments)

    def __abs__(self) -> _Weak:
        return _Weak(build.unary(Op.ABS, self.node), self.kind, None, self.arguments)

    def __pos__(self) -> _Weak:
        return self


_WEAK_OPERATORS = {
    "add": Op.ADD, "sub": Op.SUB, "mul": Op.MUL, "truediv": Op.TRUEDIV, "floordiv": Op.FLOORDIV,
    "mod": Op.MOD, "pow": Op.POW, "and": Op.AND, "or": Op.OR, "xor": Op.XOR,
}  # fmt: skip
for _name_, _op in _WEAK_OPERATORS.items():
    setattr(_Weak, f"__{_name_}__", _weak_operator(_op, reflected=False))
    setattr(_Weak, f"__r{_name_}__", _weak_operator(_op, reflected=True))
for _name_, _op in {"lt": Op.LT, "le": Op.LE, "gt": Op.GT, "ge": Op.GE, "eq": Op.EQ, "ne": Op.NE}.items():
    setattr(_Weak, f"__{_name_}__", _weak_operator(_op, reflected=False))


def _python_kind(dtype: np.dtype) -> type:
    return {"f": float, "i": int, "b": bool}[dtype.kind]


def _weak_dtype(op: Op, tensor: Node, kind: type, reflected: bool) -> np.dtype:
    """The dtype NumPy converts a Python scalar of ``kind`` to in ``op`` with ``tensor``:
    read from the scalar leaf of the node built with an example value (one no op treats
    specially: ``x ** 1`` is ``x``, ``x ** 2`` is ``x * x``)."""
    example = {float: 1.5, int: 5, bool: True}[kind]
    made = build.binary(op, *((tensor, example) if reflected else (example, tensor)))
    return made.args[1 if reflected else 0].dtype  # type: ignore[no-any-return]


def _converter(kind: type, dtype: np.dtype, name: str) -> Convert | None:
    """How a Python scalar argument of ``kind`` becomes a SCALAR slot's value of
    ``dtype``: as it is when exact (a float as float64), else as NumPy converts a weak
    scalar (an int that does not fit raises, as in NumPy)."""
    if kind is float and dtype == np.float64:
        return None
    return lambda value: dtypes.scalar_as(value, dtype, name)
