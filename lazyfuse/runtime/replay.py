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

A record is Python source, one line per operation (``Replay.source``), compiled into one
function: a replay then runs those lines and nothing else, its buffers in local
variables (``b0``, ``b1``, ...), the slots' values read as ``values[k]``.

A run that does what a record cannot say (a concatenation written in place, an array
that is a copy, not a view, of what it was made from) is not recorded, and its layout
always runs the general path.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numba
import numpy as np
from numpy.lib.array_utils import byte_bounds

from lazyfuse.graph.node import Node
from lazyfuse.runtime import buffers, driver

# Where an array comes from: ("value", slot) or ("buffer", index); then its byte
# offset from that array's first element, its shape, strides, dtype and writeability.
View = tuple[tuple[str, int], int, tuple[int, ...], tuple[int, ...], np.dtype, bool]


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
    """Collects a run's operations as the lines of a :class:`Replay` (see the module
    docstring); the objects the lines name (kernels, dtypes, nodes) in ``names``."""

    values: Sequence[Any]
    compile_after: int = 0  # replays before its driver is compiled (runtime/driver.py); 0: never
    failed: str | None = None  # why the run could not be recorded
    lines: list[str] = field(default_factory=list)
    # the same operations for the driver (runtime/driver.py); None when it cannot say them
    driver_lines: list[str] | None = field(default_factory=list)
    names: dict[str, Any] = field(default_factory=dict)
    buffers: list[np.ndarray] = field(default_factory=list)  # the run's own arrays, by index
    node_buffer: dict[Node, int] = field(default_factory=dict)

    # arrays -------------------------------------------------------------------------
    @_guarded
    def allocated(self, node: Node, array: np.ndarray) -> None:
        """``array`` was allocated for ``node`` (a kernel's output)."""
        k = self._own(array)
        self.node_buffer[node] = k
        # Note: below the pool's threshold buffers.empty is np.empty: called directly
        pooled = array.nbytes >= buffers.POOLED_FROM
        dtype = self._name(array.dtype, "dtype")
        self.lines.append(f"b{k} = {'empty' if pooled else 'numpy_empty'}({array.shape!r}, {dtype})")
        self._for_driver(
            None if pooled else f"b{k} = np.empty({array.shape!r}, {self._name(array.dtype.type, 'type')})"
        )

    @_guarded
    def copied(self, source: np.ndarray, copy: np.ndarray) -> None:
        """``copy`` was made C- or F-contiguous from ``source`` (a small broadcast load)."""
        made = self._expression(source)
        driven = self._driver_expression(source)
        k = self._own(copy)
        order = "ascontiguousarray" if copy.flags.c_contiguous else "asfortranarray"
        self.lines.append(f"b{k} = {order}({made})")
        self._for_driver(f"b{k} = {self._retyped(f'np.{order}({driven})', copy)}")

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
            self.lines.append(" = ".join([f"b{k}" for k in dead]) + " = None")

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
        made, driven = [], []
        for a in arguments:
            if a is None:
                slot, scalar = next(slots)
                made.append(self._scalar(slot, scalar, f"values[{slot}]"))
                driven.append(self._scalar(slot, scalar, f"v{slot}"))
            else:
                made.append(self._expression(a))
                driven.append(self._driver_expression(a))
        name = self._name(function, "kernel")
        self.lines.append(f"{name}({', '.join(made)})")
        self._for_driver(f"{name}({', '.join(driven)})")

    @_guarded
    def blas(self, matmul: Callable[..., None], a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
        made = ", ".join([self._expression(x) for x in (a, b, out)])
        self.lines.append(f"{self._name(matmul, 'product')}({made})")
        driven = [self._driver_expression(x) for x in (a, b, out)]
        for line in driver.product_lines((a, b, out), driven, self._name) or [None]:
            self._for_driver(line)

    @_guarded
    def host(
        self, node: Node, compute: Callable[..., np.ndarray], arrays: Sequence[Any], out: np.ndarray
    ) -> None:
        made = ", ".join([self._expression(a) for a in arrays])
        k = self._own(out)
        self.node_buffer[node] = k
        step = f"{self._name(compute, 'host')}, {self._name(node, 'node')}, [{made}]"
        self.lines.append(f"b{k} = hosted({step}, {out.shape!r}, {out.strides!r})")
        self._for_driver(None)  # NumPy, not Numba

    @_guarded
    def check(self, check: Callable[..., None], node: Node, operand: Node, seen: dict[Node, Any]) -> None:
        """A check of values before a kernel: ``seen`` holds the arrays it read, by node."""
        read = ", ".join([f"{self._name(n, 'node')}: {self._expression(a)}" for n, a in seen.items()])
        nodes = f"{self._name(node, 'node')}, {self._name(operand, 'node')}"
        self.lines.append(f"{self._name(check, 'check')}({nodes}, {{{read}}}.__getitem__)")
        self._for_driver(None)  # raises NumPy's errors from Python

    def finish(self, results: Sequence[np.ndarray]) -> Replay | bool:
        """The replay of the run that gave ``results``; False when it cannot be replayed."""
        if self.failed is None:
            try:
                made = [self._expression(r) for r in results]
                driven = [self._driver_expression(r) for r in results]
            except NotRecordableError as exc:
                self.failed = str(exc)
            else:
                found = Replay([*self.lines, f"return [{', '.join(made)}]"], self.names)
                if self.driver_lines is not None:
                    found.driver = self._driver([*self.driver_lines, f"return ({', '.join(driven)},)"], made)
                return found
        return False

    # helpers --------------------------------------------------------------------------
    def _for_driver(self, line: str | None) -> None:
        """Add ``line`` to the driver's lines; None: the driver cannot say this operation."""
        if line is None or self.driver_lines is None:
            self.driver_lines = None
        else:
            self.driver_lines.append(line)

    def _driver(self, lines: list[str], results: Sequence[str]) -> driver.Recorded | None:
        """The record for the driver, when there is more than one call to save (kernels,
        products) and no result is one of the values as it is (the Python lines return
        that very array)."""
        if self.compile_after <= 0 or any(r.startswith("values[") for r in results):
            return None
        if sum(not line.startswith(("b", "return", " ")) for line in lines) < 2:
            return None
        used = {int(k) for k in re.findall(r"\bv(\d+)\b", "\n".join(lines))}
        return driver.Recorded(
            lines, {k: numba.typeof(self.values[k]) for k in sorted(used)}, self.compile_after
        )

    def _own(self, array: np.ndarray) -> int:
        self.buffers.append(array)
        return len(self.buffers) - 1

    def _bases(self) -> list[tuple[tuple[str, int], np.ndarray]]:
        found = [(("buffer", k), b) for k, b in enumerate(self.buffers) if b is not None]
        found += [(("value", k), v) for k, v in enumerate(self.values) if type(v) is np.ndarray]
        return found

    def _name(self, thing: Any, kind: str) -> str:
        """The name a line calls ``thing`` by (one name per object)."""
        for name, known in self.names.items():
            if known is thing:
                return name
        name = f"{kind}{len(self.names)}"
        self.names[name] = thing
        return name

    def _scalar(self, slot: int, scalar: type, value: str) -> str:
        """A kernel's scalar parameter: the slot's ``value`` (as the lines read it) as the
        kernel's scalar type; a Python float, int or bool as it is where Numba types it so
        (the layout keeps its type)."""
        if _NUMBA_TYPES_AS.get(type(self.values[slot])) is scalar:
            return value
        return f"{self._name(scalar, 'scalar')}({value})"

    def _expression(self, argument: Any) -> str:
        """How a replay gets ``argument`` (an array or a size), decided once: an array that
        is all of its base is the base itself (the layout a replay is keyed by keeps it
        so: a value of the same shape, strides, dtype and writeability, a buffer made
        alike), any other a new view of it (made as :func:`rebuild` would)."""
        if isinstance(argument, (int, np.integer)) and not isinstance(argument, np.ndarray):
            return str(int(argument))
        (kind, k), offset, shape, strides, dtype, writeable = self.view(argument)
        base_array = self.buffers[k] if kind == "buffer" else self.values[k]
        base = f"b{k}" if kind == "buffer" else f"values[{k}]"
        read_only = base_array.flags.writeable and not writeable
        laid_out = (base_array.shape, base_array.strides, base_array.dtype)
        whole = offset == 0 and laid_out == (shape, strides, dtype)
        if whole and not read_only:
            return base
        made = f"ndarray({shape!r}, {self._name(dtype, 'dtype')}, {base}, {offset}, {strides!r})"
        return f"frozen({made})" if read_only else made

    def _driver_expression(self, argument: Any) -> str:
        """How the driver gets ``argument``: as :meth:`_expression`, in Numba (a view
        made by ``driver.strided``), typed as Numba typed the Python replay's argument."""
        if isinstance(argument, (int, np.integer)) and not isinstance(argument, np.ndarray):
            return f"np.int64({int(argument)})"
        (kind, k), offset, shape, strides, dtype, _ = self.view(argument)
        base_array = self.buffers[k] if kind == "buffer" else self.values[k]
        base = f"b{k}" if kind == "buffer" else f"v{k}"
        if offset % dtype.itemsize or dtype != base_array.dtype:
            self.driver_lines = None  # Note: a view of another dtype: not in Numba
            return ""
        if offset == 0 and (base_array.shape, base_array.strides) == (shape, strides):
            return self._retyped(base, argument, numba.typeof(base_array))
        return self._retyped(f"strided({base}, {offset // dtype.itemsize}, {shape!r}, {strides!r})", argument)

    def _retyped(self, made: str, argument: np.ndarray, made_type: Any = None) -> str:
        """``made`` as the Numba type of ``argument`` (unless it has that type already)."""
        wanted = numba.typeof(argument)
        if made_type == wanted:
            return made
        return f"retype({made}, {self._name(wanted, 'numba_type')})"


@dataclass
class Replay:
    """A recorded run: its lines and the objects they name, compiled into one function
    of the slots' values that returns the results."""

    lines: list[str]
    names: dict[str, Any]
    driver: driver.Recorded | None = None  # compiled after driver.after replays (runtime/driver.py)
    runs: int = 0
    driver_error: str | None = None  # why the driver did not compile (it runs the Python lines)

    def __post_init__(self) -> None:
        self.source = "def replay(values):\n" + "".join(f"    {line}\n" for line in self.lines)
        scope = {**_HELPERS, **self.names}
        exec(compile(self.source, "<lazyfuse replay>", "exec"), scope)  # Note: lines this module wrote
        self.lines_function = scope["replay"]
        self.function: Callable[..., Sequence[np.ndarray]] = self._python  # or the driver, once compiled

    def run(self, values: Sequence[Any]) -> list[np.ndarray]:
        recorded = self.driver
        if recorded is not None:
            self.runs += 1
            if self.runs >= recorded.after:
                self.driver = None
                self._to_driver(recorded)
        found = self.function(values)
        return [r if r.flags.writeable else r.copy() for r in found]

    def _python(self, values: Sequence[Any]) -> Sequence[np.ndarray]:
        """The Python lines' results."""
        with np.errstate(all="ignore"):  # IEEE results without warnings, as the kernels give
            return self.lines_function(values)  # type: ignore[no-any-return]

    def _to_driver(self, recorded: driver.Recorded) -> None:
        """Run the driver (compiled now) in place of the Python lines from now on; keep
        the Python lines when Numba refuses a line (``driver_error`` says why)."""
        try:
            self.function = driver.compiled(recorded, self.names, self._python)
        except Exception as exc:  # Note: a line Numba cannot type: the Python lines are right too
            self.driver_error = f"{type(exc).__name__}: {exc}"


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


def _frozen(array: np.ndarray) -> np.ndarray:
    """``array`` (a new view), read-only."""
    array.flags.writeable = False
    return array


def _hosted(
    compute: Callable[..., np.ndarray],
    node: Node,
    arrays: list[Any],
    shape: tuple[int, ...],
    strides: tuple[int, ...],
) -> np.ndarray:
    """A host step's result, laid out as when it was recorded."""
    made = compute(node, arrays)
    if made.shape != shape or made.strides != strides:
        raise NotRecordableError("a host step's result is laid out otherwise than when recorded")
    return made


# The NumPy scalar type Numba gives a Python scalar's value: the same kernel signature.
_NUMBA_TYPES_AS: dict[type, type] = {float: np.float64, int: np.int64, bool: np.bool_}

# What a replay's lines call besides the recorded objects.
_HELPERS: dict[str, Any] = {
    "empty": buffers.empty,
    "numpy_empty": np.empty,
    "ascontiguousarray": np.ascontiguousarray,
    "asfortranarray": np.asfortranarray,
    "ndarray": np.ndarray,
    "frozen": _frozen,
    "hosted": _hosted,
}


def _hashable(part: Any) -> Any:
    return ("slice", part.start, part.stop, part.step) if isinstance(part, slice) else part


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return (
        a.__array_interface__["data"][0] == b.__array_interface__["data"][0]
        and a.shape == b.shape
        and a.strides == b.strides
        and a.dtype == b.dtype
    )
