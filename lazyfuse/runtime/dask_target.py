"""Dask as a target: an expression with a Dask array among its inputs becomes a Dask
graph whose chunk tasks run lazyfuse's fused kernels on NumPy blocks.

How a graph is lowered (:class:`Lowering`, one Dask array per node, memoized):

- a *stage* is a region of nodes that one lazyfuse compute evaluates per block, through
  ``da.blockwise``: elementwise ops, broadcasts and unit-axis reshapes, reductions whose
  reduced axes are each one chunk (a row kernel inside the block: softmax, layernorm),
  and products whose contracted axis is one chunk (BLAS per block with its epilogue);
- a reduction over chunked axes is a tree (``da.reduction``): its chunk step is a stage
  that ends in the reduction, kept per block (the producer and the partial reduction in
  one kernel); combine and aggregate reduce the small partials with NumPy. A row
  expression over a chunked axis is so computed in passes (max, then sum of exp, ...),
  each in bounded memory, rather than rechunked to whole rows (which may not fit);
- views are Dask's own (reshape, transpose, broadcast_to, slicing), as is a product
  whose contracted axis is chunked (``da.matmul``); ``lf.reduce`` needs one chunk.

A stage travels to the tasks as a :class:`Recipe` (each node's op, attrs and dtype, its
arguments, and one Dask index letter per axis), which a task rebuilds on its blocks (a
block's extents fix every node's shape through the letters) and computes with the CPU
target's serial kernels: Dask's threads, processes or workers run blocks in parallel,
and Numba's default threading layer must not be entered from several threads at once
(numba#8563). Kernels are compiled once per process, or loaded from the disk cache.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lazyfuse import config
from lazyfuse.errors import LazyfuseError
from lazyfuse.graph import build, host, passes
from lazyfuse.graph.names import op_name
from lazyfuse.graph.node import Node, make
from lazyfuse.graph.ops import ARG_REDUCTIONS, ELEMENTWISE, USER_ELEMENTWISE, Op
from lazyfuse.graph.traverse import toposort
from lazyfuse.runtime import compile as runtime_compile
from lazyfuse.runtime import execute
from lazyfuse.runtime.variants import Layout

_ELEMENTWISE = frozenset(ELEMENTWISE) | USER_ELEMENTWISE
_TREE: dict[Op, Callable[..., Any]] = {Op.SUM: np.sum, Op.PROD: np.prod, Op.MAX: np.max, Op.MIN: np.min}
# reductions a stage runs in its kernel where the reduced axes are one chunk
_BLOCK_REDUCTIONS = frozenset(_TREE) | ARG_REDUCTIONS | {Op.REDUCE}
# host steps NumPy's functions compute for Dask arrays with Dask's own (NEP 18)
DASK_HOST_STEPS = ("concatenate", "pad", "repeat", "cumsum", "cumprod")


def is_dask_array(value: Any) -> bool:
    return type(value).__module__.startswith("dask.array") and hasattr(value, "chunks")


def has_dask_inputs(roots: Sequence[Node]) -> bool:
    """Whether an input of ``roots`` is a Dask array (free while Dask is not imported)."""
    if "dask.array" not in sys.modules:
        return False
    for root in roots:
        leaves = root.leaves if root.leaves is not None else toposort([root])
        if any(leaf.op is Op.INPUT and is_dask_array(leaf.attrs[0]) for leaf in leaves):
            return True
    return False


def input_node(array: Any) -> Node:
    """A Dask array as an input (its chunk sizes must be known)."""
    if any(np.isnan(s) for s in array.shape):
        raise LazyfuseError(
            f"asarray: a Dask array of unknown shape {array.shape} (after boolean indexing or "
            f"a filter); call .compute_chunk_sizes() on it first"
        )
    return build.input_node(array)


def _da() -> Any:
    try:
        import dask.array as da
    except ImportError as exc:  # pragma: no cover - only without the extra
        raise LazyfuseError("lazyfuse's Dask target needs Dask: pip install 'lazyfuse[dask]'") from exc
    return da


# Recipes: a stage as data, rebuilt on each block ----------------------------------


@dataclass(frozen=True)
class Step:
    """One node of a stage: ``args`` index earlier steps (leaves first); ``letters`` name
    its axes (None: an axis of extent 1)."""

    op: Op
    attrs: tuple[Any, ...]
    dtype: np.dtype
    args: tuple[int, ...]
    letters: tuple[str | None, ...]


@dataclass(frozen=True)
class Recipe:
    """A stage: its leaves' letters (the blocks a task gets, in order), its steps (the
    last one is the stage's result) and the extents of letters no leaf has."""

    leaves: tuple[tuple[str, ...], ...]
    steps: tuple[Step, ...]
    fixed: tuple[tuple[str, int], ...]

    def rebuilt(self, blocks: Sequence[np.ndarray]) -> Node:
        """The stage's result node, over ``blocks``."""
        extent: dict[str | None, int] = {None: 1, **dict(self.fixed)}
        for letters, block in zip(self.leaves, blocks, strict=True):
            extent.update(zip(letters, block.shape, strict=True))
        nodes = [build.input_node(block) for block in blocks]
        for step in self.steps:
            if step.op is Op.SCALAR:  # a new occurrence of the value (see build.scalar_node)
                nodes.append(build.scalar_node(step.attrs[0], step.dtype, "dask"))
                continue
            shape = tuple(extent[letter] for letter in step.letters)
            args = tuple(nodes[k] for k in step.args)
            nodes.append(make(step.op, args, step.attrs, shape, step.dtype))
        return nodes[-1]


def run_block(recipe: Recipe, *blocks: Any) -> np.ndarray:
    """A chunk task: the stage over these blocks, with serial kernels (see the module's note)."""
    arrays = [np.asarray(block) for block in blocks]
    with config.override_in_thread(parallel=False):
        return execute.run([recipe.rebuilt(arrays)])[0]


def _keep(x: np.ndarray, axis: Any = None, keepdims: bool = True) -> np.ndarray:
    """A tree reduction's chunk step: the partials a stage already reduced per block."""
    return x


# Letters: which axes of a stage's nodes are the same Dask index --------------------


class _Letters:
    """Union-find over (node, axis); a class reduced inside a block is *whole*: it must be
    one chunk in every leaf (the block then holds the whole axis)."""

    def __init__(self) -> None:
        self.parent: dict[tuple[Node, int], tuple[Node, int]] = {}
        self.whole: set[tuple[Node, int]] = set()

    def find(self, item: tuple[Node, int]) -> tuple[Node, int]:
        root = self.parent.setdefault(item, item)
        while root != self.parent[root]:
            root = self.parent[root]
        self.parent[item] = root
        return root

    def join(self, a: tuple[Node, int], b: tuple[Node, int]) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[ra] = rb
            if ra in self.whole:
                self.whole.add(rb)

    def mark_whole(self, item: tuple[Node, int]) -> None:
        self.whole.add(self.find(item))

    def is_whole(self, item: tuple[Node, int]) -> bool:
        return self.find(item) in self.whole


def _unit_axes_map(old: tuple[int, ...], new: tuple[int, ...]) -> list[int | None] | None:
    """For a reshape that only adds or drops axes of extent 1: for each new axis, the
    old axis it is (None: a new unit axis); None for any other reshape."""
    kept = [i for i, s in enumerate(old) if s != 1]
    if [old[i] for i in kept] != [s for s in new if s != 1]:
        return None
    moved = iter(kept)
    return [None if s == 1 else next(moved) for s in new]


# Lowering ---------------------------------------------------------------------------


@dataclass
class Layer:
    """One layer the lowering made, for explain(): its Dask name, what it is, and for a
    stage its recipe and one block's shapes (to show the kernels a task runs)."""

    name: str
    kind: str
    note: str
    recipe: Recipe | None = None
    block_shapes: tuple[tuple[int, ...], ...] = ()
    block_dtypes: tuple[np.dtype, ...] = ()

    @functools.cached_property
    def kernels(self) -> list[tuple[Any, bool]]:
        """The kernels a stage's tasks run, as the run chooses their variants on its first
        block (True for a product that runs as BLAS); found once (explain reads them twice)."""
        if self.recipe is None:
            return []
        blocks = [np.zeros(s, d) for s, d in zip(self.block_shapes, self.block_dtypes, strict=True)]
        with config.override_in_thread(parallel=False):
            chosen = execute.variants([self.recipe.rebuilt(blocks)])
            return [
                (execute.variant_kernel(call, variant), variant is not None and variant.layout is Layout.BLAS)
                for call, variant in chosen
                if call.spec.kind != "host"
            ]


@dataclass
class Lowering:
    """The Dask arrays of a graph's nodes, and the layers made for them."""

    arrays: dict[Node, Any] = field(default_factory=dict)
    layers: list[Layer] = field(default_factory=list)
    _single: dict[Node, tuple[bool, ...]] = field(default_factory=dict)

    def array(self, node: Node) -> Any:
        found = self.arrays.get(node)
        if found is None:
            found = self.arrays[node] = self._lowered(node)
        return found

    def _lowered(self, node: Node) -> Any:
        op = node.op
        if op is Op.INPUT:
            return self._input(node)
        if op in (Op.RESHAPE, Op.PERMUTE, Op.EXPAND, Op.INDEX):
            return self._view(node)
        if op is Op.IOTA:
            return self._iota(node)
        if op is Op.HOST:
            return self._host(node)
        if op is Op.GATHER:
            return self._gather(node)
        if op in _BLOCK_REDUCTIONS and not self.in_block(node):
            return self._tree(node)
        if op is Op.MATMUL and not self.in_block(node):
            return self._dask_matmul(node)
        if op in _ELEMENTWISE or op in _BLOCK_REDUCTIONS or op is Op.MATMUL:
            return self._stage(node)
        raise LazyfuseError(
            f"{op_name(node)} (shape {node.shape}) is not supported on Dask arrays yet; the Dask target "
            f"runs elementwise ops, reductions, products and views (compute the Dask array first, or "
            f"use dask.array's own function)"
        )

    # which axes are one chunk ------------------------------------------------------
    def single(self, node: Node) -> tuple[bool, ...]:
        """For each axis of ``node``: whether its Dask array will be one chunk along it."""
        found = self._single.get(node)
        if found is None:
            found = self._single[node] = self._one_chunk(node)
        return found

    def _one_chunk(self, node: Node) -> tuple[bool, ...]:
        op, args = node.op, node.args
        if op is Op.SCALAR:
            return ()
        if op in _ELEMENTWISE:
            arrays = [self.single(a) for a in args if a.op is not Op.SCALAR]
            return tuple(all(axis) for axis in zip(*arrays, strict=True)) if arrays else (True,) * node.ndim
        if op is Op.EXPAND:
            inner = self.single(args[0])
            return tuple(s != t or one for s, t, one in zip(args[0].shape, node.shape, inner, strict=True))
        if op is Op.RESHAPE and (moved := _unit_axes_map(args[0].shape, node.shape)) is not None:
            inner = self.single(args[0])
            return tuple(True if k is None else inner[k] for k in moved)
        if op in _BLOCK_REDUCTIONS and self.in_block(node):
            inner = self.single(args[0])
            return tuple(one for k, one in enumerate(inner) if k not in node.attrs[0])
        if op is Op.MATMUL and self.in_block(node):
            a, b = (self.single(x) for x in args)
            return (*(x and y for x, y in zip(a[:-2], b[:-2], strict=True)), a[-2], b[-1])
        return tuple(n == 1 for n in self.array(node).numblocks)

    def in_block(self, node: Node) -> bool:
        """Whether a reduction or product runs inside a block: what it reduces over (the
        contracted axis) is one chunk."""
        if node.op is Op.MATMUL:
            a, b = node.args
            return a is not b and self.single(a)[-1] and self.single(b)[-2]
        inner = self.single(node.args[0])
        return all(inner[k] for k in node.attrs[0])

    # nodes Dask computes itself -----------------------------------------------------
    def _input(self, node: Node) -> Any:
        value = node.attrs[0]
        if is_dask_array(value):
            return value
        if not isinstance(value, np.ndarray):
            raise LazyfuseError(
                f"an input of shape {node.shape} is a {type(value).__name__}; a Dask expression takes "
                f"Dask and NumPy arrays (copy a device array to the host first)"
            )
        return _da().from_array(value, chunks=-1, name=False)

    def _view(self, node: Node) -> Any:
        x, da = self.array(node.args[0]), _da()
        try:
            if node.op is Op.RESHAPE:
                found = x.reshape(node.shape)
            elif node.op is Op.PERMUTE:
                found = x.transpose(node.attrs[0])
            elif node.op is Op.EXPAND:
                found = da.broadcast_to(x, node.shape)
            else:
                found = x[node.attrs[0]]
        except (NotImplementedError, ValueError) as exc:  # Dask's limits (an uneven reshape)
            raise LazyfuseError(
                f"{node.op.name.lower()} of shape {x.shape} in chunks {x.chunksize} to {node.shape} on Dask: "
                f"{exc} (rechunk first, e.g. x.rechunk(-1) along the axes it moves)"
            ) from exc
        self.layers.append(Layer(found.name, "view", f"{node.op.name.lower()} (Dask's own) to {node.shape}"))
        return found

    def _iota(self, node: Node) -> Any:
        da, axis = _da(), node.attrs[0]
        line = da.arange(node.shape[axis], dtype=node.dtype)
        unit = tuple(-1 if k == axis else 1 for k in range(node.ndim))
        return da.broadcast_to(line.reshape(unit), node.shape)

    def _host(self, node: Node) -> Any:
        """A host step (a join, a pad, a repeat, a scan) by its NumPy function, which
        dispatches to Dask's own for Dask arrays (NEP 18); an error for the others."""
        name, params = node.attrs
        if name not in DASK_HOST_STEPS:
            raise LazyfuseError(
                f"{name} (shape {node.shape}) is not supported on Dask arrays; the Dask target runs "
                f"{', '.join(DASK_HOST_STEPS)} with Dask's own functions"
            )
        args = [self.array(a) for a in node.args]
        try:
            found = host.FUNCTIONS[name](*args, *params)
        except (NotImplementedError, ValueError, TypeError, IndexError) as exc:
            raise LazyfuseError(
                f"{name} (shape {node.shape}) on Dask arrays: Dask's {name} refused these arguments "
                f"({type(exc).__name__}: {exc})"
            ) from exc
        if not is_dask_array(found) or tuple(found.shape) != node.shape:
            raise LazyfuseError(
                f"{name} (shape {node.shape}) is not supported on Dask arrays: Dask has no lazy {name} "
                f"for these arguments"
            )
        found = found.astype(node.dtype, copy=False)
        self.layers.append(Layer(found.name, "host step", f"{name} (Dask's own) to {node.shape}"))
        return found

    def _gather(self, node: Node) -> Any:
        """A gather (``x[idx]``, ``take``, ``take_along_axis``) as Dask's pointwise
        indexing (``vindex``) of the table by index arrays of the result's shape; the
        indices must not depend on Dask arrays (they are computed here, and checked)."""
        table, *indices = node.args
        if has_dask_inputs(indices):
            raise LazyfuseError(
                f"gather (shape {node.shape}) on Dask: its indices are computed from Dask arrays; "
                f"compute them first (the indices of a Dask gather are NumPy arrays)"
            )
        values = execute.run(indices) if indices else []
        parts = []
        for t, (kind, j) in enumerate(node.attrs[0]):
            if kind != "i":
                parts.append(host.iota_array(node.shape, j))
                continue
            extent = table.shape[t]
            if values[j].size and (values[j].min() < -extent or values[j].max() >= extent):
                bad = values[j][(values[j] < -extent) | (values[j] >= extent)].flat[0]
                raise IndexError(f"index {bad} is out of bounds for axis {t} with size {extent}")
            parts.append(np.where(values[j] < 0, values[j] + extent, values[j]))
        found = self.array(table).vindex[tuple(parts)] if parts else self.array(table)
        self.layers.append(Layer(found.name, "gather", f"Dask's vindex to {node.shape}"))
        return found

    def _dask_matmul(self, node: Node) -> Any:
        a, b = (self.array(x) for x in node.args)
        found = _da().matmul(a, b).astype(node.dtype, copy=False)
        self.layers.append(
            Layer(
                found.name,
                "matmul",
                f"{node.shape}: Dask's matmul (the contracted axis is in several chunks)",
            )
        )
        return found

    def _tree(self, node: Node) -> Any:
        if node.op is Op.REDUCE:
            raise LazyfuseError(
                f"{op_name(node)}: lf.reduce over axes {node.attrs[0]} of shape {node.args[0].shape} on "
                f"Dask needs each reduced axis in one chunk (its function has no combine step); "
                f"rechunk, e.g. x.rechunk({{{node.attrs[0][0]}: -1}})"
            )
        if node.op in ARG_REDUCTIONS:
            return self._arg_tree(node)
        axes = node.attrs[0]
        partials = self._stage(node, partial=True)
        reduce = functools.partial(_reduce_partials, _TREE[node.op], node.dtype)
        found = _da().reduction(
            partials,
            _keep,
            reduce,
            axis=axes,
            keepdims=False,
            dtype=node.dtype,
            combine=reduce,
            concatenate=True,
        )
        self.layers.append(
            Layer(
                found.name,
                "reduction tree",
                f"{op_name(node)} over axes {axes}: the partials of {partials.numblocks} blocks combined"
                + (_not_rechunked(axes) if len(axes) < partials.ndim else ""),
            )
        )
        return found

    def _arg_tree(self, node: Node) -> Any:
        """argmax / argmin over a chunked axis: Dask's own arg reduction (each chunk's best
        value and its index, combined as a tree: NumPy's first-index and NaN rules) over
        the stage that computes the operand. Over several axes, Dask's tie rule is not
        NumPy's (it takes the first chunk holding the extreme, not the first element in C
        order), so there it is two trees: the extreme, then the first position holding it."""
        (source,), axes = node.args, node.attrs[0]
        if len(axes) > 1:
            return self.array(passes.first_position_of_extreme(node.op, source, axes))
        find = _da().argmax if node.op is Op.ARGMAX else _da().argmin
        found = find(self.array(source), axis=axes[0]).astype(node.dtype, copy=False)
        self.layers.append(
            Layer(
                found.name,
                "reduction tree",
                f"{op_name(node)} over axes {axes}: Dask's own (value and index)",
            )
        )
        return found

    # stages -------------------------------------------------------------------------
    def _interior(self, node: Node) -> bool:
        op = node.op
        if op is Op.SCALAR or op in _ELEMENTWISE or op is Op.EXPAND:
            return True
        if op is Op.RESHAPE:
            return _unit_axes_map(node.args[0].shape, node.shape) is not None
        if op in _BLOCK_REDUCTIONS or op is Op.MATMUL:
            return self.in_block(node)
        return False

    def _region(self, root: Node) -> tuple[list[Node], list[Node]]:
        """The stage's nodes, arguments first (root last), and its leaves: the nodes it
        reads that are lowered on their own."""
        inner: list[Node] = []
        leaves: list[Node] = []
        seen: set[Node] = set()

        def visit(node: Node, top: bool) -> None:
            if node in seen:
                return
            seen.add(node)
            if not top and not self._interior(node):
                leaves.append(node)
                return
            for arg in node.args:
                visit(arg, False)
            inner.append(node)

        visit(root, True)
        return inner, leaves

    def _stage(self, root: Node, partial: bool = False) -> Any:
        """``root`` computed per block; with ``partial``: ``root``'s reduction kept per
        block (the chunk step of a tree), extent 1 along each reduced axis."""
        inner, leaves = self._region(root)
        letters = _Letters()
        for node in inner:
            _join_axes(letters, node, partial and node is root)
        names = _letter_names(letters, [*leaves, *inner])
        arrays: list[Any] = []
        for leaf in leaves:
            whole = {k: -1 for k in range(leaf.ndim) if letters.is_whole((leaf, k))}
            array = self.array(leaf)
            arrays.append(
                array.rechunk(whole) if whole and any(array.numblocks[k] > 1 for k in whole) else array
            )
        leaf_letters = tuple(
            tuple(names[letters.find((leaf, k))] for k in range(leaf.ndim)) for leaf in leaves
        )
        steps = _steps(inner, leaves, letters, names, root if partial else None)
        out = tuple(
            names[letters.find((root.args[0] if partial else root, k))] for k in range(len(steps[-1].letters))
        )
        on_leaves = {letter for each in leaf_letters for letter in each}
        fixed = tuple(
            (letter, _extent(root, partial, k)) for k, letter in enumerate(out) if letter not in on_leaves
        )
        recipe = Recipe(leaf_letters, steps, fixed)
        found = self._blockwise(recipe, root, out, arrays, partial)
        self.layers.append(
            Layer(
                found.name,
                "blockwise" if not partial else "blockwise (chunk step of the tree below)",
                _stage_note(inner, leaves, letters, partial),
                recipe,
                tuple(tuple(c[0] if c else 0 for c in a.chunks) for a in arrays),
                tuple(a.dtype for a in arrays),
            )
        )
        return found

    def _blockwise(
        self, recipe: Recipe, root: Node, out: tuple[str, ...], arrays: list[Any], partial: bool
    ) -> Any:
        da = _da()
        from dask.base import tokenize

        pairs: list[Any] = []
        for array, letters in zip(arrays, recipe.leaves, strict=True):
            pairs += [array, letters]
        reduced = {out[k] for k in root.attrs[0]} if partial else set()
        token = tokenize(repr(recipe.steps), recipe.leaves, recipe.fixed, [a.name for a in arrays])
        return da.blockwise(
            functools.partial(run_block, recipe),
            out,
            *pairs,
            dtype=root.dtype,
            concatenate=True,
            new_axes=dict(recipe.fixed),
            adjust_chunks={letter: (lambda c: 1) for letter in reduced},
            meta=np.empty((0,) * len(out), dtype=root.dtype),
            name=f"lazyfuse-{op_name(root)}-{token}",
        )

    # explain ------------------------------------------------------------------------
    def kernels(self) -> list[Any]:
        """The CPU kernels the stages' tasks run (the variants they run), each once."""
        found: dict[str, Any] = {}
        for layer in self.layers:
            for kernel, _ in layer.kernels:
                found.setdefault(kernel.name, kernel)
        return list(found.values())

    def describe(self) -> list[str]:
        lines = [f"dask graph ({len(self.layers)} layers lazyfuse made; chunk tasks run serial kernels):"]
        for layer in self.layers:
            ran = [kernel.name + (" (BLAS)" if blas else "") for kernel, blas in layer.kernels]
            lines.append(f"  {layer.name[:64]}: {layer.kind}: {layer.note}")
            if ran:
                lines.append(f"    runs: {', '.join(ran)}")
        lines.append("kernels the chunk tasks run:")
        return lines


def _not_rechunked(axes: tuple[int, ...]) -> str:
    return (
        f" (not rechunked to whole rows, which may not fit in memory; rechunk to one chunk "
        f"along {list(axes)} for a row kernel per block)"
    )


def _reduce_partials(
    reduce: Callable[..., Any], result: np.dtype, x: np.ndarray, axis: Any, keepdims: bool
) -> Any:
    return np.asarray(reduce(x, axis=axis, keepdims=keepdims)).astype(result, copy=False)


def _join_axes(letters: _Letters, node: Node, partial: bool) -> None:
    """Which axes of ``node`` and of its arguments are the same index."""
    op, args = node.op, node.args
    if op is Op.SCALAR:
        return
    if op in _ELEMENTWISE:
        for arg in args:
            for k in range(arg.ndim):
                letters.join((arg, k), (node, k))
    elif op is Op.EXPAND:
        for k, (s, t) in enumerate(zip(args[0].shape, node.shape, strict=True)):
            if s == t:
                letters.join((args[0], k), (node, k))
    elif op is Op.RESHAPE:
        for k, old in enumerate(_unit_axes_map(args[0].shape, node.shape) or ()):
            if old is not None:
                letters.join((args[0], old), (node, k))
    elif op in _BLOCK_REDUCTIONS:
        axes = node.attrs[0]
        kept = [k for k in range(args[0].ndim) if k not in axes]
        for j, k in enumerate(kept):
            letters.join((args[0], k), (node, j))
        for k in axes:
            letters.find((args[0], k))
            if not partial:
                letters.mark_whole((args[0], k))
    elif op is Op.MATMUL:
        a, b = args
        for k in range(node.ndim - 2):
            letters.join((a, k), (node, k))
            letters.join((b, k), (node, k))
        letters.join((a, node.ndim - 2), (node, node.ndim - 2))
        letters.join((b, node.ndim - 1), (node, node.ndim - 1))
        letters.join((a, node.ndim - 1), (b, node.ndim - 2))
        letters.mark_whole((b, node.ndim - 2))


def _letter_names(letters: _Letters, nodes: Sequence[Node]) -> dict[tuple[Node, int], str]:
    """A Dask index name per class; a class holding two axes of one node (x * x.T's
    operand, were it seen through its transpose) is made whole, so one chunk is right."""
    names: dict[tuple[Node, int], str] = {}
    for node in nodes:
        classes = [letters.find((node, k)) for k in range(node.ndim)]
        for k, found in enumerate(classes):
            if found in classes[:k]:
                letters.mark_whole(found)
            names.setdefault(found, f"i{len(names)}")
    return names


def _steps(
    inner: Sequence[Node],
    leaves: Sequence[Node],
    letters: _Letters,
    names: dict[tuple[Node, int], str],
    partial: Node | None,
) -> tuple[Step, ...]:
    where = {leaf: k for k, leaf in enumerate(leaves)}
    steps: list[Step] = []
    for node in inner:
        where[node] = len(leaves) + len(steps)
        axes = tuple(None if s == 1 else names[letters.find((node, k))] for k, s in enumerate(node.shape))
        attrs = node.attrs[:1] if node.op is Op.SCALAR else node.attrs  # not its occurrence
        steps.append(Step(node.op, attrs, node.dtype, tuple(where[a] for a in node.args), axes))
    if partial is not None:  # the reduction kept per block: its reduced axes of extent 1
        x = partial.args[0]
        kept = tuple(None if k in partial.attrs[0] else names[letters.find((x, k))] for k in range(x.ndim))
        steps.append(Step(Op.RESHAPE, (), partial.dtype, (where[partial],), kept))
    return tuple(steps)


def _extent(root: Node, partial: bool, k: int) -> int:
    return 1 if partial and k in root.attrs[0] else (root.args[0] if partial else root).shape[k]


def _stage_note(inner: Sequence[Node], leaves: Sequence[Node], letters: _Letters, partial: bool) -> str:
    ops = [op_name(n) for n in inner if n.op not in (Op.SCALAR, Op.EXPAND, Op.RESHAPE, Op.IDENTITY)]
    whole = any(letters.is_whole((leaf, k)) for leaf in leaves for k in range(leaf.ndim))
    rows = "; each block holds whole reduced (contracted) axes: one row kernel per block" if whole else ""
    return f"{', '.join(ops) or 'copy'} per block, over {len(leaves)} input(s){rows}"


# The target's entry points ----------------------------------------------------------


def lower(roots: Sequence[Node]) -> tuple[Lowering, list[Any]]:
    """The lowering of ``roots`` and their Dask arrays. Scans become host steps first (as
    on CUDA), which Dask computes with its own ``cumsum`` / ``cumprod``."""
    scans = any(node.op is Op.SCAN for node in toposort(roots))
    hosted = passes.scans_on_host(roots) if scans else list(roots)
    lowering = Lowering()
    return lowering, [lowering.array(root) for root in hosted]


def to_dask(root: Node) -> Any:
    """``root`` as a lazy Dask array."""
    return lower([root])[1][0]


def compute(roots: Sequence[Node]) -> list[np.ndarray]:
    """``roots`` computed in one Dask graph, on Dask's current scheduler; NumPy arrays."""
    import dask

    results = dask.compute(*lower(roots)[1])
    return [
        np.asarray(r, dtype=root.dtype).reshape(root.shape) for r, root in zip(results, roots, strict=True)
    ]


def workers_cache_info() -> dict[str, Any] | None:
    """Each Dask worker's compiles and disk loads, when a distributed client is active."""
    if "distributed" not in sys.modules:
        return None
    from distributed import default_client

    try:
        client = default_client()
    except ValueError:
        return None
    return client.run(_cache_stats)  # type: ignore[no-any-return]


def _cache_stats() -> dict[str, Any]:
    return {k: runtime_compile.STATS[k] for k in ("compiles", "disk_loads", "compile_seconds")}
