"""Replays: a plan's run, recorded once per layout of its values, then repeated without
deciding anything again.

A run of a plan decides, for each kernel call, which values and views it reads, which
variant fits their strides, how its arrays are reshaped for that variant, which buffer
it writes over, and when a stored value dies. All of that follows from the plan, the
settings and the shapes, strides and dtypes of the values filling its slots (and the
keys of its basic indexes). So the first run with a new such *layout* is recorded, as
what each call was given: every array as a view (byte offset, shape, strides) of a slot's
value or of a buffer the run allocated, every scalar as a slot, every size as the number
it was. A later run with the same layout replays it: the same views of the new values,
the same calls, checks and host steps, the same drops. In an ``lf.jit`` training step of
twenty small kernels that is the difference between 0.8 ms and a few tenths
(``benchmarks/bench_train.py``).

A run that does what a record cannot say (a concatenation written in place, an array
that is a copy, not a view, of what it was made from) is not recorded, and its layout
always runs the general path.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.lib.array_utils import byte_bounds

from lazyfuse.graph.node import Node
from lazyfuse.runtime import buffers

# Where an array comes from: ("value", slot) or ("buffer", index); then its byte
# offset from that array's first element, its shape, strides, dtype and writeability.
View = tuple[tuple[str, int], int, tuple[int, ...], tuple[int, ...], np.dtype, bool]
# How a replayed call gets one of its arguments from the run's buffers and values.
Getter = Callable[[Sequence[Any], Sequence[Any]], Any]


# Layouts recorded per plan: more (a sliding window's keys) run the general path.
MAX_LAYOUTS = 8


class NotRecordableError(Exception):
    """This run does something a record cannot replay."""


def layout_of(values: Sequence[Any], settings: Any, sizes: tuple[int, ...]) -> tuple[Any, ...]:
    """What a run's decisions depend on, besides its plan: each value's type, and for an
    array its shape, strides, dtype and writeability; an index key itself; the settings;
    the run's ``sizes`` (the plan's, resized), which the values do not all show
    (``arange(n)``, a scatter-add's table)."""
    parts: list[Any] = [settings, sizes]
    for v in values:
        if type(v) is np.ndarray:
            parts.append((v.shape, v.strides, v.dtype, v.flags.writeable))
        elif type(v) is tuple:
            parts.append(tuple(map(_hashable, v)))  # a basic index's key: it moves the views
        else:
            parts.append(type(v))
    return tuple(parts)


def _guarded(method: Callable[..., None]) -> Callable[..., None]:
    """A record method that, when the run does what a record cannot say, gives up the
    record (``failed``) and lets the run go on."""

    def guarded(self: Recorder, *args: Any) -> None:
        if self.failed is None:
            try:
                method(self, *args)
            except NotRecordableError as exc:
                self.failed = str(exc)

    guarded.__doc__ = method.__doc__
    return guarded


@dataclass
class Recorder:
    """Collects a run's operations as :class:`Replay` steps (see the module docstring)."""

    values: Sequence[Any]
    failed: str | None = None  # why the run could not be recorded
    steps: list[Callable[[list[Any], Sequence[Any]], None]] = field(default_factory=list)
    buffers: list[np.ndarray] = field(default_factory=list)  # the run's own arrays, by index
    node_buffer: dict[Node, int] = field(default_factory=dict)

    # arrays -------------------------------------------------------------------------
    @_guarded
    def allocated(self, node: Node, array: np.ndarray) -> None:
        """``array`` was allocated for ``node`` (a kernel's output)."""
        k = self._own(array)
        self.node_buffer[node] = k
        shape, dtype = array.shape, array.dtype
        self.steps.append(lambda bufs, values: _store(bufs, k, buffers.empty(shape, dtype)))

    @_guarded
    def copied(self, source: np.ndarray, copy: np.ndarray) -> None:
        """``copy`` was made C-contiguous from ``source`` (a small broadcast load)."""
        view = self.view(source)
        k = self._own(copy)
        self.steps.append(
            lambda bufs, values: _store(bufs, k, np.ascontiguousarray(rebuild(view, bufs, values)))
        )

    @_guarded
    def aliased(self, node: Node, array: np.ndarray) -> None:
        """``node`` is written over ``array`` (a donated buffer)."""
        (kind, k), *_ = self.view(array)
        if kind != "buffer":
            raise NotRecordableError("a donated buffer the run did not allocate")
        self.node_buffer[node] = k

    @_guarded
    def died(self, nodes: Sequence[Node]) -> None:
        dead = [self.node_buffer.pop(n) for n in nodes if n in self.node_buffer]
        dead = [k for k in dead if k not in self.node_buffer.values()]
        if dead:
            self.steps.append(lambda bufs, values: _drop(bufs, dead))

    def view(self, array: Any) -> View:
        """Where ``array`` lies: a view of a slot's value or of one of the run's buffers."""
        if not isinstance(array, np.ndarray):
            raise NotRecordableError(f"a {type(array).__name__} argument")
        start = array.__array_interface__["data"][0]
        for source, base in self._bases():
            low, high = byte_bounds(base)
            if array.size == 0 or low <= start < max(high, low + 1):
                made = (source, start - base.__array_interface__["data"][0], array.shape, array.strides,
                        array.dtype, bool(array.flags.writeable))  # fmt: skip
                try:
                    rebuilt = rebuild(made, self.buffers, self.values)
                except (TypeError, ValueError) as exc:  # a base that exports no buffer
                    raise NotRecordableError(f"a view that cannot be rebuilt from its base: {exc}") from None
                if array.size and not _same(rebuilt, array):
                    raise NotRecordableError("a view that cannot be rebuilt from its base")
                return made
        raise NotRecordableError("an array that is not a view of the run's values or buffers")

    # operations -----------------------------------------------------------------------
    @_guarded
    def kernel(self, function: Any, arguments: Sequence[Any], params: Sequence[tuple[int, type]]) -> None:
        """``function(*arguments)``, where the scalars after the arrays come from slots:
        ``arguments`` holds arrays, then ``params`` stand for the parameters' places
        (marked by None), then the sizes."""
        slots = iter(params)
        getters = [_parameter(*next(slots)) if a is None else self._getter(a) for a in arguments]
        self.steps.append(lambda bufs, values: function(*[get(bufs, values) for get in getters]))

    @_guarded
    def blas(self, matmul: Callable[..., None], a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
        getters = [self._getter(x) for x in (a, b, out)]
        self.steps.append(lambda bufs, values: matmul(*[get(bufs, values) for get in getters]))

    @_guarded
    def host(
        self, node: Node, compute: Callable[..., np.ndarray], arrays: Sequence[Any], out: np.ndarray
    ) -> None:
        views = [self.view(a) for a in arrays]
        k = self._own(out)
        self.node_buffer[node] = k
        shape, strides = out.shape, out.strides

        def run(bufs: list[Any], values: Sequence[Any]) -> None:
            made = compute(node, [rebuild(v, bufs, values) for v in views])
            if made.shape != shape or made.strides != strides:
                raise NotRecordableError("a host step's result is laid out otherwise than when recorded")
            _store(bufs, k, made)

        self.steps.append(run)

    @_guarded
    def check(self, check: Callable[..., None], node: Node, operand: Node, seen: dict[Node, Any]) -> None:
        """A check of values before a kernel: ``seen`` holds the arrays it read, by node."""
        views = {n: self.view(a) for n, a in seen.items()}
        self.steps.append(
            lambda bufs, values: check(node, operand, lambda n: rebuild(views[n], bufs, values))
        )

    def finish(self, results: Sequence[np.ndarray]) -> Replay | bool:
        """The replay of the run that gave ``results``; False when it cannot be replayed."""
        if self.failed is None:
            try:
                return Replay(self.steps, [self.view(r) for r in results], len(self.buffers))
            except NotRecordableError as exc:
                self.failed = str(exc)
        return False

    # helpers --------------------------------------------------------------------------
    def _own(self, array: np.ndarray) -> int:
        self.buffers.append(array)
        return len(self.buffers) - 1

    def _bases(self) -> list[tuple[tuple[str, int], np.ndarray]]:
        found = [(("buffer", k), b) for k, b in enumerate(self.buffers) if b is not None]
        found += [(("value", k), v) for k, v in enumerate(self.values) if type(v) is np.ndarray]
        return found

    def _getter(self, argument: Any) -> Getter:
        """How a replay gets ``argument`` (an array or a size), decided once: an array that
        is all of its base is the base itself (the layout a replay is keyed by keeps it
        so: a value of the same shape, strides, dtype and writeability, a buffer made
        alike), any other a new view of it (:func:`rebuild`)."""
        if isinstance(argument, (int, np.integer)) and not isinstance(argument, np.ndarray):
            size = int(argument)
            return lambda bufs, values: size
        view = self.view(argument)
        (kind, k), offset, shape, strides, dtype, writeable = view
        base = self.buffers[k] if kind == "buffer" else self.values[k]
        whole = offset == 0 and (base.shape, base.strides, base.dtype) == (shape, strides, dtype)
        if not whole or (base.flags.writeable and not writeable):
            return _view_getter(view, read_only=base.flags.writeable and not writeable)
        if kind == "buffer":
            return lambda bufs, values: bufs[k]
        return lambda bufs, values: values[k]


@dataclass
class Replay:
    """A recorded run: its steps, where its results lie, and how many buffers it makes."""

    steps: list[Callable[[list[Any], Sequence[Any]], None]]
    results: list[View]
    buffer_count: int

    def run(self, values: Sequence[Any]) -> list[np.ndarray]:
        bufs: list[Any] = [None] * self.buffer_count
        with np.errstate(all="ignore"):  # IEEE results without warnings, as the kernels give
            for step in self.steps:
                step(bufs, values)
        found = [rebuild(v, bufs, values) for v in self.results]
        return [r if r.flags.writeable else r.copy() for r in found]


def rebuild(view: View, bufs: Sequence[Any], values: Sequence[Any]) -> np.ndarray:
    """The array ``view`` describes, over this run's values and buffers."""
    (kind, k), offset, shape, strides, dtype, writeable = view
    base = bufs[k] if kind == "buffer" else values[k]
    if offset == 0 and base.shape == shape and base.strides == strides and base.dtype == dtype:
        made = base
    else:
        made = np.ndarray(shape, dtype, buffer=base, offset=offset, strides=strides)
    if made.flags.writeable and not writeable:
        made = made.view()
        made.flags.writeable = False
    return made


def _view_getter(view: View, read_only: bool) -> Getter:
    """:func:`rebuild` with its questions answered when recorded (a kernel's arguments
    get made on every replay: the embedding model's step makes 32 views, which took a
    sixth of its time in :func:`rebuild`). ``read_only``: the view is read-only over a
    writeable base."""
    (kind, k), offset, shape, strides, dtype, _ = view

    def made(bufs: Sequence[Any], values: Sequence[Any]) -> np.ndarray:
        base = bufs[k] if kind == "buffer" else values[k]
        return np.ndarray(shape, dtype, buffer=base, offset=offset, strides=strides)

    if not read_only:
        return made

    def frozen(bufs: Sequence[Any], values: Sequence[Any]) -> np.ndarray:
        array = made(bufs, values)
        array.flags.writeable = False
        return array

    return frozen


def _parameter(slot: int, scalar: type) -> Getter:
    """A kernel's scalar parameter: the value in ``slot``, as the kernel's scalar type."""
    return lambda bufs, values: scalar(values[slot])


def _store(bufs: list[Any], k: int, array: np.ndarray) -> None:
    bufs[k] = array


def _drop(bufs: list[Any], dead: list[int]) -> None:
    for k in dead:
        bufs[k] = None


def _hashable(part: Any) -> Any:
    return ("slice", part.start, part.stop, part.step) if isinstance(part, slice) else part


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return (
        a.__array_interface__["data"][0] == b.__array_interface__["data"][0]
        and a.shape == b.shape
        and a.strides == b.strides
        and a.dtype == b.dtype
    )
