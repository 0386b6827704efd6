"""``lf.export``: a computation written out as one standalone Python module.

The module holds the fused kernels lazyfuse runs for the computation (their generated
source, with the scalar helpers they call copied in) and a wrapper function that takes
and returns NumPy arrays and calls them in order. It imports numpy and numba only, so it
runs where lazyfuse is not installed (a deployment, a colleague's machine), and a person
can read exactly what runs.

Its shapes and dtypes are the example's: the plan, each kernel's variant (flat over
C-contiguous arrays, or any strides) and the loop extents are chosen for them, and the
wrapper raises ValueError for others. The wrapper makes its array arguments
C-contiguous and allocates every stored value C-contiguous, so the same layouts hold on
every call. Float matrix products run ``np.matmul`` (BLAS), as in lazyfuse.

Math: the kernels call NumPy's exp, log, tanh, ... (the C library's, as with
``LAZYFUSE_MATH=libm``): lazyfuse's fast math lives in ``lazyfuse.runtime.fastmath``
(Numba intrinsics, a thousand lines), which a standalone module cannot import. Results
may differ from lazyfuse's by an ulp or so.
"""

from __future__ import annotations

import inspect
import keyword
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lazyfuse import config, pytree
from lazyfuse.codegen import cpu, cpu_helpers
from lazyfuse.errors import ConcretizationError
from lazyfuse.graph import host, kernels
from lazyfuse.graph.explain import format_graph, type_of
from lazyfuse.graph.node import Node
from lazyfuse.graph.ops import VIEWS, Op
from lazyfuse.graph.views import apply_view
from lazyfuse.jit import _Arguments, _tracing, _Weak
from lazyfuse.runtime import plans
from lazyfuse.runtime.execute import uses_blas
from lazyfuse.tensor import Tensor, asarray
from lazyfuse.version import __version__

__all__ = ["export"]

# Arrays a function reads that are not its arguments (a closure's weights, a global) are
# written into the module as literals up to this many elements; larger ones must be
# passed as arguments (a literal of a million floats is no longer a readable module).
CONSTANT_LIMIT = 10_000
# The graph listing in the module's header is cut after this many lines.
GRAPH_LINES = 200
# Names the wrapper's parameters must not take: the module's own globals it calls.
_RESERVED = frozenset({"np", "njit", "prange", "math"})


def export(
    fn_or_tensors: Any, path: str | Path, example_args: Sequence[Any] = (), *, name: str | None = None
) -> Path:
    """Write ``fn_or_tensors`` as a standalone module at ``path``; returns the path.

    ``fn_or_tensors``: a function, traced once on ``example_args`` (NumPy arrays, NumPy
    scalars, Python bool/int/float; arrays are seen as lazyfuse tensors, Python int and
    float as run-time scalars, a bool as a fixed flag, as ``lf.jit`` does) returning a
    tensor or a pytree of them; or a tensor or a pytree of tensors, whose input arrays
    become the wrapper's parameters in order of first appearance (``example_args`` then
    empty; 0-d inputs, such as ``lf.full``'s value, are written in as constants). The
    wrapper (named ``name``, else after the function, else ``compute``) takes the
    arguments in that order and returns NumPy arrays in the structure returned.
    Raises NotImplementedError for what a standalone module cannot hold (user functions
    of ``lf.map``/``lf.reduce``, some host steps), before anything is written."""
    traced = _trace(fn_or_tensors, tuple(example_args))
    wrapper = name or traced.default_name
    if not wrapper.isidentifier() or keyword.iskeyword(wrapper):
        raise ValueError(f"lf.export: name {wrapper!r} is not a Python identifier")
    source = _ModuleWriter(traced, wrapper).module()
    target = Path(path)
    target.write_text(source)
    return target


# tracing ------------------------------------------------------------------------------


@dataclass
class _Parameter:
    """One argument of the wrapper: its name, what kind of value it takes ("array" for
    arrays and NumPy scalars, "float"/"int" for a run-time Python scalar, "bool" for a
    flag fixed at export) and the example's value."""

    name: str
    kind: str
    example: Any
    shape: tuple[int, ...] = ()
    dtype: np.dtype | None = None


@dataclass
class _Traced:
    """What is exported: the roots, the structure they are returned in, the wrapper's
    parameters, which graph leaf stands for which parameter, and the header's account
    of what it was made from."""

    roots: list[Node]
    result: pytree.TreeDef
    parameters: list[_Parameter]
    leaf_parameter: dict[Node, int]
    made_from: str
    default_name: str


def _trace(fn_or_tensors: Any, args: tuple[Any, ...]) -> _Traced:
    if isinstance(fn_or_tensors, Tensor) or not callable(fn_or_tensors):
        if args:
            raise TypeError("lf.export: example_args are taken with a function, not with tensors")
        return _trace_tensors(fn_or_tensors)
    return _trace_function(fn_or_tensors, args)


def _outputs(returned: Any, what: str) -> tuple[list[Tensor], pytree.TreeDef]:
    """The tensors at the leaves of ``returned`` and its structure; TypeError naming a
    leaf that is not a tensor."""
    leaves, result = pytree.flatten(returned, is_leaf=lambda x: isinstance(x, Tensor))
    wrong = [type(leaf).__name__ for leaf in leaves if not isinstance(leaf, Tensor)]
    if not leaves or wrong:
        got = f"a {wrong[0]}" if wrong else "no tensor"
        raise TypeError(f"lf.export: {what} must be a lazyfuse tensor or a pytree of them, got {got}")
    return leaves, result


def _trace_tensors(tensors: Any) -> _Traced:
    outputs, result = _outputs(tensors, "the tensors to export")
    roots = [t.node for t in outputs]
    # Note: a 0-d input is a constant (lf.full's fill value, a scalar made a tensor)
    inputs = [leaf for leaf in plans.structure(roots)[1] if leaf.op is Op.INPUT and leaf.ndim]
    parameters = [
        _Parameter(f"x{k}", "array", leaf.attrs[0], leaf.shape, leaf.dtype) for k, leaf in enumerate(inputs)
    ]
    shown = ", ".join(type_of(r) for r in roots)
    return _Traced(
        roots,
        result,
        parameters,
        {leaf: k for k, leaf in enumerate(inputs)},
        f"{len(roots)} lazyfuse tensor(s): {shown}",
        "compute",
    )


def _trace_function(fn: Callable[..., Any], args: tuple[Any, ...]) -> _Traced:
    """Run ``fn`` once on tensors standing for ``args`` (as ``lf.jit`` traces it; a function
    made by ``lf.jit`` is traced as the function it wraps).

    Note: each array argument is traced as its own view, so that two arguments that are
    the same example array are two inputs of the graph, as they are two parameters."""
    if hasattr(fn, "traces") and hasattr(fn, "__wrapped__"):
        fn = fn.__wrapped__
    arguments = _Arguments()
    names = _parameter_names(fn, len(args))
    parameters, inputs = [], []
    for k, (arg, arg_name) in enumerate(zip(args, names, strict=True)):
        parameter, traced = _traced_argument(arg, k, arg_name, arguments)
        parameters.append(parameter)
        inputs.append(traced)
    try:
        with _tracing(fn, arguments):
            returned = fn(*inputs)
    except ConcretizationError as exc:
        raise ConcretizationError(str(exc).replace("lf.jit", "lf.export")) from None
    outputs, result = _outputs(returned, f"{_qualname(fn)}'s result")
    leaf_parameter = {leaf: k for leaf, (k, _) in arguments.slots.items()}
    shown = ", ".join(_shown(p) for p in parameters)
    made_from = f"the function {_qualname(fn)} ({_where(fn)}), traced on ({shown})"
    default = getattr(fn, "__name__", "")
    if not default.isidentifier() or keyword.iskeyword(default) or default in _RESERVED:
        default = "compute"
    return _Traced([t.node for t in outputs], result, parameters, leaf_parameter, made_from, default)


def _traced_argument(arg: Any, k: int, name: str, arguments: _Arguments) -> tuple[_Parameter, Any]:
    """The wrapper's parameter for example argument ``arg`` and what ``fn`` sees for it."""
    if isinstance(arg, Tensor):
        raise TypeError(
            f"lf.export: example argument {name} is a lazyfuse tensor; pass the NumPy arrays it "
            f"would be called with"
        )
    if type(arg) is bool:
        return _Parameter(name, "bool", arg), arg
    if type(arg) in (int, float):
        return _Parameter(name, type(arg).__name__, arg), _Weak.of_argument(arg, k, arguments)
    if isinstance(arg, (np.ndarray, np.generic)):
        view = np.array(arg) if isinstance(arg, np.generic) else arg.view()
        node = arguments.add(asarray(view).node, k, None)
        return _Parameter(name, "array", arg, node.shape, node.dtype), Tensor(node)
    raise TypeError(
        f"lf.export: example argument {name} is a {type(arg).__name__}; export takes NumPy arrays, "
        f"NumPy scalars and Python bool, int and float (pass a pytree's leaves as separate arguments)"
    )


def _parameter_names(fn: Callable[..., Any], count: int) -> list[str]:
    """The wrapper's parameter names: ``fn``'s own where they are usable, else ``x<k>``."""
    try:
        listed = [
            p.name
            for p in inspect.signature(fn).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
    except (TypeError, ValueError):
        listed = []
    names: list[str] = []
    for k in range(count):
        found = listed[k] if k < len(listed) else ""
        usable = found.isidentifier() and not keyword.iskeyword(found) and not found.startswith("_")
        names.append(found if usable and found not in _RESERVED and found not in names else f"x{k}")
    return names


def _qualname(fn: Any) -> str:
    module = getattr(fn, "__module__", None)
    qualname = getattr(fn, "__qualname__", type(fn).__name__)
    return f"{module}.{qualname}" if module else qualname


def _where(fn: Any) -> str:
    code = getattr(fn, "__code__", None)
    return f"{code.co_filename}:{code.co_firstlineno}" if code else "source unknown"


def _shown(p: _Parameter) -> str:
    if p.kind == "array":
        return f"{p.name}: {p.dtype}[{','.join(map(str, p.shape))}]"
    return f"{p.name}: {p.kind} {p.example!r}"


# literals -------------------------------------------------------------------------------


def _literal(value: Any) -> str:
    """Python source that evaluates to ``value`` exactly (floats by repr, which round-trips)."""
    if value is None or value is Ellipsis or isinstance(value, (str, bytes)):
        return repr(value)
    if isinstance(value, (bool, np.bool_)):
        return repr(bool(value))
    if isinstance(value, (int, np.integer)):
        return repr(int(value))
    if isinstance(value, (float, np.floating)):
        number = float(value)
        return repr(number) if math.isfinite(number) else f'float("{number}")'
    if isinstance(value, np.dtype):
        return f'np.dtype("{value}")'
    if isinstance(value, slice):
        return f"slice({_literal(value.start)}, {_literal(value.stop)}, {_literal(value.step)})"
    if isinstance(value, tuple):
        inner = ", ".join(map(_literal, value))
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, list):
        return "[" + ", ".join(map(_literal, value)) + "]"
    raise NotImplementedError(f"lf.export: cannot write a {type(value).__name__} ({value!r}) as source")


def _scalar_literal(value: Any, dtype: np.dtype) -> str:
    return f"{cpu.numpy_type(dtype)}({_literal(dtype.type(value).item())})"


def _array_literal(array: np.ndarray) -> str:
    return f"np.array({_literal(array.tolist())}, dtype={cpu.numpy_type(array.dtype)})"


def _index_source(key: tuple[Any, ...]) -> str:
    """A basic index as written in source: ``[1:5, None, ...]``."""

    def part(item: Any) -> str:
        if isinstance(item, slice):
            ends = [("" if v is None else str(int(v))) for v in (item.start, item.stop)]
            return ":".join(ends) + ("" if item.step is None else f":{int(item.step)}")
        if item is Ellipsis:
            return "..."
        return "None" if item is None else str(int(item))

    # Note: an int on every axis gives a scalar, not the 0-d view kernels read, unless an
    # Ellipsis follows (views.apply_view appends one to every key)
    scalar = all(isinstance(item, (int, np.integer)) for item in key)
    return ", ".join(map(part, (*key, Ellipsis) if scalar else key)) or "..."


# the module ------------------------------------------------------------------------------


def _python_helper(function: Callable[..., Any], renames: dict[str, str]) -> str:
    """The source of a NumPy-only function of lazyfuse, its names changed by ``renames``."""
    text = inspect.getsource(function)
    for old, new in renames.items():
        text = re.sub(rf"\b{old}\(", f"{new}(", text)
    return text


_RENAMES = {"iota_array": "_iota_array", "gather_array": "_gather_array"}

# The wrapper's helpers, emitted where used (the key is the name the wrapper calls).
_HELPERS: dict[str, str] = {
    "_array_argument": '''
def _array_argument(value, name, shape, dtype):
    """``value`` as the C-contiguous array of the shape and dtype this module was exported for."""
    array = np.asarray(value)
    if array.shape != shape:
        raise ValueError(f"{name}: expected shape {shape}, got {array.shape} (exported for fixed shapes)")
    if array.dtype != dtype:
        raise ValueError(f"{name}: expected dtype {np.dtype(dtype)}, got {array.dtype}")
    return array if array.flags.c_contiguous else np.ascontiguousarray(array)
''',
    "_scalar_argument": '''
def _scalar_argument(value, name, kind):
    """A run-time Python scalar argument, checked to be of the kind it was exported with."""
    numbers = (int, float, np.integer, np.floating) if kind is float else (int, np.integer)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers):
        raise TypeError(f"{name}: expected a Python {kind.__name__}, got {type(value).__name__}")
    return kind(value)
''',
    "_fixed_argument": '''
def _fixed_argument(value, name, expected):
    """A flag the computation was traced with: another value would need another export."""
    if value is not expected:
        raise ValueError(f"{name}: this module was exported for {name}={expected}, got {value!r}")
''',
    "_host_result": '''
def _host_result(value, dtype):
    """A NumPy step's result as the kernels after it read it: C-contiguous, of ``dtype``."""
    array = np.asarray(value)
    if array.dtype != dtype:
        array = array.astype(dtype)
    return array if array.flags.c_contiguous else np.ascontiguousarray(array)
''',
    "_check_index": '''
def _check_index(index, size, axis):
    """NumPy's IndexError for an index out of range (a kernel cannot raise one)."""
    if index.size:
        low, high = int(index.min()), int(index.max())
        bad = low if low < -size else high if high >= size else None
        if bad is not None:
            raise IndexError(f"index {bad} is out of bounds for axis {axis} with size {size}")
''',
    "_index_grad": '''
def _index_grad(g, key, shape):
    """The gradient of a basic index: ``g`` written into zeros where the index reads."""
    out = np.zeros(shape, g.dtype)
    out[key] = g
    return out
''',
    "_scatter_add": '''
def _scatter_add(g, indices, axes, shape):
    """The gradient of a gather: ``out[e(p)] += g[p]`` (np.add.at: repeated indices add up)."""
    out = np.zeros(shape, g.dtype)
    parts = [indices[j] if kind == "i" else _iota_array(g.shape, j) for kind, j in axes]
    np.add.at(out, tuple(parts), g)
    return out
''',
    "_check_exponent": '''
def _check_exponent(exponent):
    """NumPy's error for an integer to a negative integer power (a kernel cannot raise one)."""
    if np.any(np.asarray(exponent) < 0):
        raise ValueError("power: Integers to negative integer powers are not allowed.")
''',
}


# lazyfuse's own NumPy functions of the host steps, copied as they are (the key is the
# name the wrapper calls)
_COPIED: dict[str, Callable[[], list[Callable[..., Any]]]] = {
    "_iota_array": lambda: [host.iota_array],
    "_gather_array": lambda: [host.gather_array],
    "_repeat_grad": lambda: [_autodiff()._repeat_grad, _autodiff()._along],
}
# helpers that call others
_NEEDS = {"_gather_array": ("_iota_array",), "_scatter_add": ("_iota_array",)}


def _autodiff() -> Any:
    from lazyfuse import autodiff  # Note: imported when used (it imports much of lazyfuse)

    return autodiff


def _helper_source(name: str) -> str:
    if name in _COPIED:
        return "\n" + "\n\n".join(_python_helper(f, _RENAMES) for f in _COPIED[name]())
    return _HELPERS[name]


@dataclass
class _Value:
    """A value in the wrapper: its source expression, and an array of its shape, dtype and
    layout (on which the export decides each kernel's variant as the runtime would)."""

    source: str
    like: np.ndarray


@dataclass
class _Kernel:
    header: list[str]
    text: str


@dataclass
class _ModuleWriter:
    """Builds the module's text: the wrapper's lines, step by step, and the kernels,
    helpers and constants they use."""

    traced: _Traced
    name: str
    lines: list[str] = field(default_factory=list)
    prologue: list[str] = field(default_factory=list)
    kernels: dict[str, tuple[str, _Kernel]] = field(default_factory=dict)  # text -> (name, kernel)
    numba_helpers: dict[str, None] = field(default_factory=dict)
    imports: dict[str, None] = field(default_factory=dict)
    helpers: dict[str, None] = field(default_factory=dict)
    constants: list[str] = field(default_factory=list)
    baked: list[str] = field(default_factory=list)
    stored: dict[Node, _Value] = field(default_factory=dict)
    seen: dict[Node, _Value] = field(default_factory=dict)
    slots: dict[int, _Value] = field(default_factory=dict)
    scalars: dict[int, str] = field(default_factory=dict)
    taken: set[str] = field(default_factory=set)

    def module(self) -> str:
        traced = self.traced
        self.taken = {p.name for p in traced.parameters} | set(_RESERVED) | {self.name}
        found = plans.fresh_plan(traced.roots)
        leaves = plans.structure(traced.roots)[1]
        self._arguments()
        self._slots(leaves)
        for k, call in enumerate(found.calls):
            self._step(k, call)
        results = [self._result(root) for root in found.roots]
        self.lines.append(f"return {_structured(traced.result, iter(results))}")
        text = self._text(len(found.calls))
        imported = re.findall(r"^\s*(?:import|from)\s+lazyfuse\b.*$", text, flags=re.MULTILINE)
        assert not imported, f"the exported module imports lazyfuse: {imported}"
        return text

    # the wrapper's arguments and the plan's slots ------------------------------------

    def _arguments(self) -> None:
        for p in self.traced.parameters:
            if p.kind == "array":
                self._use("_array_argument")
                shape, dtype = _literal(p.shape), cpu.numpy_type(p.dtype)  # type: ignore[arg-type]
                self.prologue.append(f'{p.name} = _array_argument({p.name}, "{p.name}", {shape}, {dtype})')
            elif p.kind == "bool":
                self._use("_fixed_argument")
                self.prologue.append(f'_fixed_argument({p.name}, "{p.name}", {p.example!r})')
            else:
                self._use("_scalar_argument")
                self.prologue.append(f'{p.name} = _scalar_argument({p.name}, "{p.name}", {p.kind})')

    def _slots(self, leaves: Sequence[Node]) -> None:
        """Each slot's value: an argument, or a constant written into the module."""
        for k, leaf in enumerate(leaves):
            index = self.traced.leaf_parameter.get(leaf)
            parameter = self.traced.parameters[index] if index is not None else None
            if leaf.op is Op.SCALAR:
                if parameter is None:
                    self.scalars[k] = _scalar_literal(leaf.attrs[0], leaf.dtype)
                    self.baked.append(f"{leaf.attrs[0]!r} ({leaf.dtype})")
                else:
                    self.scalars[k] = f"{cpu.numpy_type(leaf.dtype)}({parameter.name})"
            elif leaf.op is Op.INPUT:
                like = np.empty(leaf.shape, leaf.dtype)
                if parameter is None:
                    self.slots[k] = _Value(self._constant(leaf), like)
                elif parameter.kind == "array":
                    self.slots[k] = _Value(parameter.name, like)
                else:  # a Python scalar argument read as a 0-d array
                    local = f"_{parameter.name}_{k}"
                    dtype = cpu.numpy_type(leaf.dtype)
                    self.prologue.append(f"{local} = np.asarray({parameter.name}, dtype={dtype})")
                    self.slots[k] = _Value(local, like)

    def _constant(self, leaf: Node) -> str:
        array = np.asarray(leaf.attrs[0])
        if array.size > CONSTANT_LIMIT:
            raise ValueError(
                f"lf.export: the computation reads an array of shape {array.shape} that is not an "
                f"argument (a closure's or a global's); pass it as an argument (constants of up to "
                f"{CONSTANT_LIMIT} elements are written into the module)"
            )
        name = f"_CONSTANT{len(self.constants)}"
        self.constants.append(f"{name} = {_array_literal(array)}")
        return name

    # values ----------------------------------------------------------------------------

    def _value(self, node: Node) -> _Value:
        """``node``'s value: a slot's, a stored one's, seen through its views."""
        found = self.seen.get(node)
        if found is not None:
            return found
        if node.op is Op.INPUT:
            found = self.slots[node.attrs[0].index]
        elif node.op is Op.SCALAR:
            scalar = self.scalars[node.attrs[0].index]
            like = np.empty((), node.dtype)
            found = _Value(f"np.asarray({scalar}, dtype={cpu.numpy_type(node.dtype)})", like)
        elif node.op in VIEWS:
            found = self._view(node, self._value(node.args[0]))
        else:
            found = self.stored[node]
        self.seen[node] = found
        return found

    def _view(self, node: Node, base: _Value) -> _Value:
        if node.op is Op.RESHAPE:
            return _Value(f"{base.source}.reshape({_literal(node.shape)})", _reshaped(base.like, node.shape))
        like = apply_view(node, base.like)
        if node.op is Op.PERMUTE:
            return _Value(f"{base.source}.transpose({_literal(tuple(node.attrs[0]))})", like)
        if node.op is Op.EXPAND:
            return _Value(f"np.broadcast_to({base.source}, {_literal(node.shape)})", like)
        key = node.attrs[0]
        assert type(key) is tuple, "a fresh plan keeps each index's key"
        return _Value(f"{base.source}[{_index_source(key)}]", like)

    def _store(self, node: Node, like: np.ndarray) -> _Value:
        value = self.stored[node] = _Value(f"_v{len(self.stored)}", like)
        return value

    def _result(self, root: Node) -> str:
        """A returned array: a stored value as it is, anything else (an argument, a view)
        as a copy the caller owns."""
        value = self._value(root)
        return value.source if self.stored.get(root) is value else f"np.array({value.source})"

    # steps -----------------------------------------------------------------------------

    def _step(self, k: int, call: kernels.KernelCall) -> None:
        spec = call.spec
        if spec.user_functions:
            named = ", ".join(f.name for _, f in spec.user_functions)
            raise NotImplementedError(
                f"lf.export: kernel {spec.name} calls user function(s) {named} (lf.map, lf.zip_with, "
                f"lf.reduce), which a standalone module cannot hold"
            )
        self.lines.append("")
        what = f"NumPy step {call.outputs[0].attrs[0]}" if spec.kind == "host" else spec.description[0]
        self.lines.append(f"# step {k}: {what}")
        self._checks(call)
        arrays = [self._value(kernels.viewed_node(base, chain)) for base, chain, _ in call.loads]
        if spec.kind == "host":
            self._host(call, arrays)
            return
        outputs = []
        for root in call.outputs:
            value = self._store(root, np.empty(root.shape, root.dtype))
            dtype = cpu.numpy_type(root.dtype)
            self.lines.append(f"{value.source} = np.empty({_literal(root.shape)}, dtype={dtype})")
            outputs.append(value)
        if not any(o.like.size for o in outputs):
            self.lines.append("# (empty: nothing to compute)")
            return
        if spec.kind in ("loop", "scan") and spec.n_inner > 0:
            loads = zip(arrays, spec.loads, call.loads, strict=True)
            arrays = [a if ld.ndim is not None else _arranged(a, inner, call) for a, ld, (*_, inner) in loads]
            outputs = [_arranged(o, st.inner, call) for o, st in zip(outputs, spec.stores, strict=True)]
        if uses_blas(spec):
            (a, b), (out,) = arrays, outputs
            self.lines.append('with np.errstate(all="ignore"):  # IEEE results, no warnings, as the kernels')
            self.lines.append(f"    np.matmul({a.source}, {b.source}, out={out.source})")
            return
        self._launch(call, arrays, outputs)

    def _launch(self, call: kernels.KernelCall, arrays: list[_Value], outputs: list[_Value]) -> None:
        """Call the kernel: its flat or C-contiguous variant when every array is so, as the
        runtime picks it (execute._layout), else its any-strides variant."""
        spec, extents = call.spec, call.extents
        contiguous = all(v.like.flags.c_contiguous for v in [*arrays, *outputs])
        elementwise = spec.kind == "loop" and spec.n_inner == 0
        flat = contiguous and len(extents) == 1 and not any(ld.ndim for ld in spec.loads)
        if (elementwise and spec.natural and not flat) or spec.kind == "scatter":
            contiguous = False  # its loops keep the domain's axes, its tables (or output) their own
        if contiguous:
            spec = kernels.contiguous(spec)
            if elementwise and len(extents) != 1:  # one flat loop
                arrays, outputs = [_flat(v) for v in arrays], [_flat(v) for v in outputs]
                extents = (math.prod(extents),)
        settings = config.get()
        parallel = settings.parallel and math.prod(extents) >= settings.serial_below
        kernel = self._kernel(spec, cpu.Options(parallel, "libm"))
        params = [self.scalars[p.attrs[0].index] for p in call.params]
        if spec.kind == "matmul":
            args = [v.source for v in [*arrays, *outputs]]
        else:
            args = [v.source for v in arrays] + params + [v.source for v in outputs] + list(map(str, extents))
        self.lines.append(f"{kernel}({', '.join(args)})")

    def _checks(self, call: kernels.KernelCall) -> None:
        """What the runtime checks before the kernel runs (execute.check_values): each
        gather's and scatter-add's indices in range, an integer power's exponents not negative."""
        for node, operand in call.checks:
            if node.op in (Op.GATHER, Op.SCATTER_ADD):
                values = operand
                while values.op in (Op.EXPAND, Op.RESHAPE):  # the same values, without repeats
                    values = values.args[0]
                index = self._value(values).source
                size = node.args[0].shape if node.op is Op.GATHER else node.shape
                for t, (kind, j) in enumerate(node.attrs[0]):
                    if kind == "i" and node.args[1 + j] is operand:
                        self._use("_check_index")
                        self.lines.append(f"_check_index({index}, {size[t]}, {t})")
            elif node.op is Op.POW:
                if node.attrs[0][1].kind == "i":
                    self._use("_check_exponent")
                    self.lines.append(f"_check_exponent({self._value(operand).source})")
            else:
                raise NotImplementedError(f"lf.export: no standalone check for {node.op.name.lower()}")

    def _host(self, call: kernels.KernelCall, arrays: list[_Value]) -> None:
        (node,) = call.outputs
        expression = _host_code(node, [a.source for a in arrays])
        self._use("_host_result")
        for helper in re.findall(r"\b(_\w+)\(", expression):
            self._use(helper)
        value = self._store(node, np.empty(node.shape, node.dtype))
        self.lines.append(f"{value.source} = _host_result({expression}, {cpu.numpy_type(node.dtype)})")

    # kernels and helpers ---------------------------------------------------------------

    def _kernel(self, spec: kernels.KernelSpec, options: cpu.Options) -> str:
        """The name of ``spec``'s kernel in the module (added once; renamed where another
        kernel or a parameter has its name)."""
        text = cpu.generate(spec, options)
        start = text.rindex("\n", 0, text.index(f"\ndef {spec.name}(")) + 1  # its decorator
        body = text[start:]
        known = self.kernels.get(body)
        if known is not None:
            return known[0]
        name, n = spec.name, 2
        while name in self.taken:
            name, n = f"{spec.name}_{n}", n + 1
        self.taken.add(name)
        comments = [line for line in text[:start].splitlines() if line.startswith("#")]
        header = [line.replace(spec.name, name, 1) for line in comments]
        for helper in cpu_helpers.sources_used(body):
            if helper.startswith("import "):
                self.imports[helper] = None
            else:
                self.numba_helpers[helper.strip("\n")] = None
        renamed = body.replace(f"def {spec.name}(", f"def {name}(", 1)
        self.kernels[body] = (name, _Kernel(header, renamed))
        return name

    def _use(self, helper: str) -> None:
        for needed in _NEEDS.get(helper, ()):
            self._use(needed)
        self.helpers[helper] = None

    # the text ----------------------------------------------------------------------------

    def _text(self, steps: int) -> str:
        traced = self.traced
        parameters = ", ".join(p.name for p in traced.parameters)
        body = [*self.prologue, *self.lines]
        kernel_text = [k.text for _, k in self.kernels.values()]
        imports = ["import numpy as np"]
        if any("prange(" in text for text in kernel_text):
            imports.append("from numba import njit, prange")
        elif kernel_text:
            imports.append("from numba import njit")
        imports += list(self.imports)
        parts = [_docstring(traced, self.name, steps, self.baked), "from __future__ import annotations", ""]
        parts += [*imports, "", *_graph_comment(traced.roots), ""]
        for helper in self.numba_helpers:
            parts += ["", helper, ""]
        for _, kernel in self.kernels.values():
            parts += ["", *kernel.header, kernel.text.rstrip("\n"), ""]
        for helper in self.helpers:
            parts += [_helper_source(helper).rstrip("\n"), ""]
        if self.constants:
            parts += ["", "# arrays the computation reads that are not arguments, as they were at export", ""]
            parts += self.constants
        parts += ["", ""]
        parts.append(f"def {self.name}({parameters}):")
        parts.append(f'    """{_wrapper_doc(traced)}"""')
        parts += [f"    {line}" if line else "" for line in body]
        return re.sub(r"\n{4,}", "\n\n\n", "\n".join(parts)) + "\n"


def _flat(value: _Value) -> _Value:
    return _Value(f"{value.source}.reshape(-1)", value.like.reshape(-1))


def _reshaped(like: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``like.reshape(shape)``, without copying the placeholder's (never touched, maybe
    large) memory where NumPy would copy: the copy is a new C-contiguous array."""
    try:
        return like.reshape(shape, copy=False)  # type: ignore[call-overload]
    except ValueError:
        return np.empty(shape, like.dtype)
    except TypeError:  # Note: NumPy before 2.1 has no copy argument
        return like.reshape(shape)


def _arranged(value: _Value, inner: bool, call: kernels.KernelCall) -> _Value:
    """``value`` in the kernel's index space (execute.arrange): kept axes, then reduced."""
    if inner:
        if call.permutation == tuple(range(len(call.permutation))):
            return value
        like = value.like.transpose(call.permutation)
        return _Value(f"{value.source}.transpose({_literal(call.permutation)})", like)
    if value.like.shape == call.kept:
        return value
    return _Value(f"{value.source}.reshape({_literal(call.kept)})", _reshaped(value.like, call.kept))


def _host_code(node: Node, arrays: list[str]) -> str:
    """NumPy source for a host step (graph/host.py), from its registered function."""
    name, params = node.attrs
    if name == "concatenate":
        (axis,) = params
        return f"np.concatenate([{', '.join(arrays)}], axis={axis})"
    if name == "repeat":
        counts, axis = params
        return f"np.repeat({arrays[0]}, {_literal(tuple(counts))}, axis={axis})"
    if name in ("cumsum", "cumprod"):
        axis, dtype = params
        return f"np.{name}({arrays[0]}, axis={_literal(axis)}, dtype={_literal(dtype)})"
    if name == "pad":
        widths, values = params
        source = node.args[0]
        constants = np.frombuffer(values, source.dtype).reshape(source.ndim, 2).tolist()
        filled = f'mode="constant", constant_values={_literal(constants)}'
        return f"np.pad({arrays[0]}, {_literal(widths)}, {filled})"
    if name == "gather":
        axes, shape = params
        return f"_gather_array({_literal(axes)}, {_literal(shape)}, {arrays[0]}, [{', '.join(arrays[1:])}])"
    if name == "scatter_add":
        axes, shape = params
        return f"_scatter_add({arrays[0]}, [{', '.join(arrays[1:])}], {_literal(axes)}, {_literal(shape)})"
    if name == "index_grad":
        key, shape = params
        return f"_index_grad({arrays[0]}, {_literal(key)}, {_literal(shape)})"
    if name == "repeat_grad":
        counts, axis = params
        return f"_repeat_grad({arrays[0]}, {_literal(tuple(counts))}, {axis})"
    raise NotImplementedError(
        f"lf.export: the host step {name!r} (a NumPy step lazyfuse runs between kernels) has no "
        f"standalone code yet; supported: {', '.join(HOST_STEPS)}"
    )


HOST_STEPS = (
    "concatenate",
    "pad",
    "repeat",
    "cumsum",
    "cumprod",
    "gather",
    "scatter_add",
    "index_grad",
    "repeat_grad",
)


def _structured(result: pytree.TreeDef, names: Any) -> str:
    """Source of the returned value in the structure ``fn`` returned."""
    if result.kind == "leaf":
        return str(next(names))
    if result.kind == "none":
        return "None"
    children = [_structured(child, names) for child in result.children]
    if result.kind is dict:
        items = zip(result.keys, children, strict=True)
        return "{" + ", ".join(f"{_literal(k)}: {c}" for k, c in items) + "}"
    if result.kind is list:
        return "[" + ", ".join(children) + "]"
    return f"({children[0]},)" if len(children) == 1 else "(" + ", ".join(children) + ")"


def _docstring(traced: _Traced, name: str, steps: int, baked: list[str]) -> str:
    lines = [
        f"Standalone module exported by lazyfuse {__version__} (lf.export): needs numpy and numba only.",
        "",
        f"Made from {traced.made_from}.",
        f"Call {name}({', '.join(p.name for p in traced.parameters)}); it runs {steps} step(s) below.",
        "",
        "Shapes and dtypes are fixed to the example's: others raise ValueError.",
        "Math: NumPy's (the C library's) exp, log, tanh, ..., as lazyfuse with LAZYFUSE_MATH=libm;",
        "lazyfuse's default fast math may differ by about an ulp.",
        "Numba caches the compiled kernels in __pycache__ beside this file (cache=True): import it",
        "by one module name, so that the next process finds them.",
    ]
    if baked:
        counted = {value: baked.count(value) for value in baked}
        shown = [value if n == 1 else f"{value} x{n}" for value, n in counted.items()]
        listed = ", ".join(shown[:20]) + (", ..." if len(shown) > 20 else "")
        lines.append(f"Scalar parameters written in as constants (not arguments): {listed}.")
    return '"""' + "\n".join(lines) + '\n"""\n'


def _wrapper_doc(traced: _Traced) -> str:
    taken = ", ".join(_shown(p) for p in traced.parameters) or "nothing"
    if traced.result.kind == "leaf":
        return f"Takes {taken}; returns a NumPy array {type_of(traced.roots[0])}."
    returned = ", ".join(type_of(r) for r in traced.roots)
    return f"Takes {taken}; returns NumPy arrays {returned} in the structure {traced.result}."


def _graph_comment(roots: list[Node]) -> list[str]:
    lines = format_graph(roots)
    if len(lines) > GRAPH_LINES:
        lines = [*lines[:GRAPH_LINES], f"... ({len(lines) - GRAPH_LINES} more lines)"]
    title = "# The lazyfuse graph this module computes (as lf.explain shows it):"
    return [title, *[f"#   {line}" for line in lines]]
