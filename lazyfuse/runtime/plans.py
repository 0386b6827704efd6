"""The plan cache: one plan per graph structure, looked up before any pass runs.

A plan is made for a *skeleton* of the user's graph, where every input array and
scalar is a numbered slot, so the cache holds no user data and one plan serves every
call with the same structure: the user's arrays and scalars fill the slots when it runs.

The key (:class:`PlanKey`) has named parts. Sizes are not in it: each shape is written
with its sizes replaced by symbols by equality (0 and 1 stay, since broadcasting and
empty axes change plans), so ``x + y.sum(axis=0)`` at 1000x10 and at 50x7 share a plan,
and the runtime maps the plan's sizes to the call's (:func:`resizer`). Only a graph
with a reshape that regroups axes or with indexing keys on its sizes too (``sizes``).

An index's key (its slices, integers, None and Ellipsis) is data, not structure: it fills
a slot, as an array does, and the plan holds the index's shape only (the runtime applies
the key with NumPy, a view). So ``x[i:i + 256].sum()`` finds one plan for every ``i``
that gives the same shape; a clipped window (a new shape) keys a plan of its own.

Both caches are bounded and drop the least recently used entry first: at most
``PLAN_CACHE_SIZE`` = 1024 plans by structure and ``FORM_CACHE_SIZE`` = 4096 entries by
form (each holds a plan: a few kB to tens of kB with its kernels' bookkeeping).
"""

from __future__ import annotations

import sys
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import llvmlite
import numba

from lazyfuse import config
from lazyfuse.graph import fuse, kernels, passes
from lazyfuse.graph.names import carry_backward_mark
from lazyfuse.graph.node import Node, make
from lazyfuse.graph.ops import LEAVES, Op
from lazyfuse.graph.traverse import toposort
from lazyfuse.version import __version__


class Slot:
    """A placeholder leaf: position ``index`` among the graph's inputs and scalars."""

    __slots__ = ("__weakref__", "index")

    def __init__(self, index: int) -> None:
        self.index = index

    def __repr__(self) -> str:
        return f"slot {self.index}"


@dataclass
class Plan:
    """Optimized skeleton roots, the fusion plan, the bound kernel calls, and the sizes
    (in symbol order) of the graph it was made for."""

    roots: list[Node]
    grouped: fuse.Plan
    calls: list[kernels.KernelCall]
    sizes: tuple[int, ...] = ()
    # how each target runs the calls, by its name, made on its first run (a plan whose graph
    # the CUDA target's lowering leaves as it is serves the CPU target too)
    steps: dict[str, list[Step]] = field(default_factory=dict)
    direct: Any = None  # execute._Direct, or False when the plan has no direct call
    joins: Any = None  # execute._Join per concatenation its parts are written into
    # runtime/replay.Replay per layout of the values (False: that layout is not replayed)
    replays: dict[Any, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Step:
    """One launch of a plan as its target runs it: a kernel call (on CUDA, a matmul and
    the elementwise call after it run as one launch: ``epilogue``, that call and how the
    matmul's store computes it), and the stored values it reads for the last time
    (``dying``: dropped after it). The CPU target also notes the dying values its output
    may be written over (``donors``), whether its arrays need ``execute.arrange``, and
    whether the call before it ran in BLAS (see execute._SERIAL_AFTER_BLAS_THREADS)."""

    call: kernels.KernelCall
    dying: tuple[Node, ...]
    donors: tuple[Node, ...] = ()
    arranged: bool = False
    after_blas: bool = False
    epilogue: tuple[kernels.KernelCall, Any] | None = None


def dying(found: Plan, launches: Sequence[Sequence[kernels.KernelCall]]) -> list[tuple[Node, ...]]:
    """For each launch (its calls, in order), the stored values no later launch reads,
    in the order it reads them: all but the results' own."""
    last_use = {base: i for i, calls in enumerate(launches) for call in calls for base, _, _ in call.loads}
    keep = {fuse.base_of(r)[0] for r in found.roots}
    return [
        tuple(
            dict.fromkeys(b for call in calls for b, _, _ in call.loads if last_use[b] == i and b not in keep)
        )
        for i, calls in enumerate(launches)
    ]


class PlanKey(NamedTuple):
    """What a plan depends on, part by part (LAZYFUSE_DEBUG names the parts of a miss)."""

    graph: tuple[Any, ...]  # per node: op, argument positions, attributes; the roots
    dtypes: tuple[str, ...]
    shapes: tuple[Any, ...]  # leaves', broadcasts' and reshapes' shapes, sizes as symbols
    sizes: tuple[int, ...] | None  # the sizes themselves, only where the plan needs them
    settings: tuple[Any, ...]  # target, fuse, checks
    versions: tuple[str, ...]  # lazyfuse, numba, llvmlite


PLAN_CACHE_SIZE = 1024  # plans by structure (_PLANS); see the module's docstring
FORM_CACHE_SIZE = 4096  # entries by form (_BY_FORM)

_PLANS: OrderedDict[PlanKey, Plan] = OrderedDict()  # least recently used first
_LOCK = threading.Lock()
STATS = {"hits": 0, "misses": 0}
VERSIONS = (__version__, numba.__version__, llvmlite.__version__)
# nodes whose shape does not follow from their arguments' and attrs (INDEX: see below)
_SHAPED = frozenset({Op.INPUT, Op.EXPAND, Op.RESHAPE, Op.IOTA, Op.SCATTER_ADD})


def structure(roots: Sequence[Node]) -> tuple[PlanKey, list[Node], tuple[int, ...]]:
    """The cache key of ``roots``, their leaves (inputs and scalars) in slot order, and
    the graph's sizes in symbol order.

    One walk in ``toposort``'s order (arguments before users, left to right); each node's
    entry names its arguments by position in that order. An index is a leaf after its
    argument (its key fills a slot) and keys on its exact shape instead of its key.
    Note: written as one loop, not toposort then a second pass, since it runs on every
    compute.
    """
    index: dict[int, int] = {}
    leaves: list[Node] = []
    graph: list[tuple[Any, ...]] = []
    dtypes: list[str] = []
    shapes: list[tuple[int, ...]] = []
    symbols: dict[int, int] = {}  # size -> symbol (-2, -3, ...)
    generic = True
    for root in roots:
        stack: list[tuple[Node, bool]] = [(root, False)]
        while stack:
            node, expanded = stack.pop()
            if expanded:
                index[id(node)] = len(graph)
                op = node.op
                dtypes.append(node.dtype.str)
                if op in LEAVES:  # its attrs are the user's data: not part of the key
                    leaves.append(node)
                    graph.append((op,))
                elif op is Op.INDEX:  # Note: its key is data too; its sizes key the plan
                    leaves.append(node)
                    graph.append((op, (index[id(node.args[0])],)))
                    shapes.append(node.shape)
                    generic = False
                else:
                    graph.append((op, tuple([index[id(a)] for a in node.args]), node.key[2]))
                    if op is Op.HOST:  # its shape follows its function, not its arguments' sizes
                        shapes.append(node.shape)
                        generic = False
                if op in _SHAPED:
                    shapes.append(
                        tuple([d if d < 2 else symbols.setdefault(d, -2 - len(symbols)) for d in node.shape])
                    )
                    if op is Op.RESHAPE and not _moves_unit_axes(node):
                        generic = False
            elif id(node) not in index:
                index[id(node)] = -1  # seen; its entry comes after its arguments'
                stack.append((node, True))
                stack.extend([(a, False) for a in reversed(node.args) if id(a) not in index])
    settings = config.get()
    sizes = tuple(symbols)
    key = PlanKey(
        (tuple(graph), tuple([index[id(r)] for r in roots])),
        tuple(dtypes),
        tuple(shapes),
        None if generic else sizes,
        ("cpu", settings.fuse, settings.checks),
        VERSIONS,
    )
    return key, leaves, sizes


def _moves_unit_axes(node: Node) -> bool:
    """A reshape that only adds or drops size-1 axes (as broadcasting does): valid for
    any sizes with the same pattern."""
    return [d for d in node.shape if d != 1] == [d for d in node.args[0].shape if d != 1]


class Known:
    """A plan found for one form of a graph: the plan, its resize, the position among
    the graph's leaves (in their form order) of each slot's leaf, and the runtime's
    call made ready for that form: None until it is made, False when the plan has no
    direct call (see ``execute.run_direct``), else an ``execute.Ready``."""

    __slots__ = ("plan", "ready", "resize", "slots")

    def __init__(self, plan: Plan, resize: Resize | None, slots: tuple[int, ...]) -> None:
        self.plan, self.resize, self.slots = plan, resize, slots
        self.ready: Any = None


# Note: the fast path. Keyed by the roots' forms (graph/node.py), which hold exact shapes,
# so a key names one plan and one resize; a new size misses here and finds the size-free
# plan in _PLANS by a walk of the graph. Its keys hold only ints, bools and tuples (hashed
# and compared in C, no Python code runs), so a hit reorders it without the lock: see
# :func:`_touch`.
_BY_FORM: OrderedDict[tuple[Any, ...], Known] = OrderedDict()  # least recently used first


def plan_for(roots: Sequence[Node]) -> tuple[Plan, list[Any], Resize | None]:
    """The plan for ``roots`` (made on a miss), the values that fill its slots, and the
    map from the plan's sizes to these roots' (None when they are the same)."""
    found, leaves, resize = lookup(roots)
    return found, [leaf.attrs[0] for leaf in leaves], resize


def known(root: Node, settings: config.Config) -> Known | None:
    """The fast path's entry for a graph of one root, None when its form has none yet
    (not counted: the caller counts the hit when it uses the entry)."""
    if root.form is None:
        return None
    key = (root.form, settings.fuse, settings.checks)  # Note: _single_key, inlined (every compute)
    found = _BY_FORM.get(key)
    if found is not None:
        try:  # noqa: SIM105  (Note: _touch, inlined; contextlib.suppress costs more than the hit)
            _BY_FORM.move_to_end(key)
        except KeyError:
            pass
    return found


def _touch(cache: OrderedDict[Any, Any], key: Any) -> None:
    """Mark ``key`` the most recently used entry of ``cache``.

    Note: without the lock. ``move_to_end`` is one C call, atomic under the GIL (and
    under the dict's own lock on free-threaded builds) when the key's hash and equality
    run no Python code, as for form keys; an entry another thread evicted meanwhile
    raises KeyError and stays evicted (it is made again on its next miss)."""
    try:  # noqa: SIM105  (Note: try is cheaper than contextlib.suppress)
        cache.move_to_end(key)
    except KeyError:
        pass


def _insert(cache: OrderedDict[Any, Any], key: Any, value: Any, size: int) -> Any:
    """``cache[key]``, set to ``value`` unless another thread set it first, as the most
    recently used entry; the least recently used entries beyond ``size`` are dropped.
    Invariant: ``len(cache) <= size`` whenever the lock is free."""
    with _LOCK:
        found = cache.setdefault(key, value)
        cache.move_to_end(key)
        while len(cache) > size:
            cache.popitem(last=False)
    return found


def _single_key(root: Node, settings: config.Config) -> tuple[Any, ...]:
    return (root.form, settings.fuse, settings.checks)


def lookup(roots: Sequence[Node]) -> tuple[Plan, list[Node], Resize | None]:
    """:func:`plan_for` with the leaves (inputs and scalars) in slot order instead of
    their values."""
    form_key, leaves = _form_key(roots)
    known = _BY_FORM.get(form_key) if form_key is not None else None
    if known is not None:
        _touch(_BY_FORM, form_key)
        STATS["hits"] += 1
        return known.plan, [leaves[k] for k in known.slots], known.resize
    key, slot_leaves, sizes = structure(roots)
    found = _cached(key)
    if found is not None:
        STATS["hits"] += 1
    else:
        if config.get().debug:
            _report_miss(key)
        made = _make(roots, slot_leaves, sizes)
        with _LOCK:
            STATS["misses"] += 1
        found = _insert(_PLANS, key, made, PLAN_CACHE_SIZE)
    resize = resizer(found.sizes, sizes)
    if form_key is not None:
        position = {id(leaf): k for k, leaf in enumerate(leaves)}
        entry = Known(found, resize, tuple([position[id(leaf)] for leaf in slot_leaves]))
        _insert(_BY_FORM, form_key, entry, FORM_CACHE_SIZE)
    return found, slot_leaves, resize


def _cached(key: PlanKey) -> Plan | None:
    """The plan cached for ``key``, now the most recently used; None when there is none.
    Note: under the lock, unlike :func:`_touch`: a plan key holds ops, whose hash is
    Python code (Enum.__hash__), so another thread may run in the middle of a lookup."""
    with _LOCK:
        found = _PLANS.get(key)
        if found is not None:
            _PLANS.move_to_end(key)
    return found


def _form_key(roots: Sequence[Node]) -> tuple[tuple[Any, ...] | None, tuple[Node, ...]]:
    """The fast key of ``roots`` (their forms, how their leaves overlap, the settings)
    and their distinct leaves; None as the key when a root has no form."""
    settings = config.get()
    if len(roots) == 1:
        (root,) = roots
        if root.form is None:
            return None, ()
        return _single_key(root, settings), root.leaves  # type: ignore[return-value]
    known: dict[Node, int] = {}
    parts: list[Any] = [settings.fuse, settings.checks]
    for root in roots:
        if root.form is None or root.leaves is None:
            return None, ()
        for leaf in root.leaves:
            known.setdefault(leaf, len(known))
        parts.append((root.form, tuple([known[leaf] for leaf in root.leaves])))
    return tuple(parts), tuple(known)


def fresh_plan(roots: Sequence[Node]) -> Plan:
    """A plan made for these very roots, not cached (for ``explain``: its shapes are the
    roots' own, where a cached plan's may be another call's sizes)."""
    _, leaves, sizes = structure(roots)
    return _make(roots, leaves, sizes, keys=True)


Resize = Callable[[tuple[int, ...]], tuple[int, ...]]


def resizer(planned: tuple[int, ...], actual: tuple[int, ...]) -> Resize | None:
    """The shape map from a plan's sizes to a call's, or None when they are equal."""
    if planned == actual:
        return None
    table = dict(zip(planned, actual, strict=True))
    return lambda shape: tuple([table.get(d, d) for d in shape])


def _report_miss(key: PlanKey) -> None:
    """Name the parts of ``key`` that differ from the closest cached key (most parts equal)."""
    with _LOCK:
        known = list(_PLANS)
    if not known:
        print("[lazyfuse] plan miss: the first plan of this process", file=sys.stderr)
        return
    closest = max(known, key=lambda k: sum(a == b for a, b in zip(k, key, strict=True)))
    parts = [name for name, a, b in zip(PlanKey._fields, closest, key, strict=True) if a != b]
    print(
        f"[lazyfuse] plan miss: new {', '.join(parts)} (closest cached plan differs there)", file=sys.stderr
    )


def _make(roots: Sequence[Node], leaves: list[Node], sizes: tuple[int, ...], keys: bool = False) -> Plan:
    """The plan of the skeleton of ``roots``: each of ``leaves`` (in slot order) has its
    attrs replaced by its slot; with ``keys``, an index keeps its own key (a plan for
    these roots alone: explain shows the key, and the runtime reads either)."""
    slot = {leaf: k for k, leaf in enumerate(leaves)}
    skeleton: dict[Node, Node] = {}
    for node in toposort(roots):
        args = tuple([skeleton[a] for a in node.args])
        k = slot.get(node)
        attrs = node.attrs if k is None or (keys and args) else (Slot(k),)
        skeleton[node] = make(node.op, args, attrs, node.shape, node.dtype)
        carry_backward_mark(node, skeleton[node], skeleton)
    optimized = passes.optimize([skeleton[r] for r in roots])
    order = toposort(optimized)
    grouped = fuse.plan(optimized)
    return Plan(optimized, grouped, [kernels.bind(g, order) for g in grouped.groups], sizes)


def clear() -> None:
    with _LOCK:
        _PLANS.clear()
        _BY_FORM.clear()
