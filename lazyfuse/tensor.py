"""The user-facing lazy tensor: operators, methods, compute(), explain(), kernels().

The one place that joins the graph (building) and the runtime (running).
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Container, Sequence
from typing import Any

import numpy as np

from lazyfuse import config, pytree
from lazyfuse.errors import ConcretizationError, DTypeError
from lazyfuse.graph import build, dtypes
from lazyfuse.graph.explain import format_graph
from lazyfuse.graph.node import Node
from lazyfuse.graph.ops import ELEMENTWISE, Op
from lazyfuse.graph.traverse import toposort
from lazyfuse.graph.verify import verify
from lazyfuse.runtime import buffers, dask_target, execute, plans, targets
from lazyfuse.runtime import compile as runtime_compile
from lazyfuse.visualize import Picture, short_form
from lazyfuse.visualize import visualize as _picture


def _operator(op: Op) -> Callable[[Tensor, Any], Tensor]:
    """The method ``self <op> other``. Note: the member is read here, once; reading an
    Enum member costs 0.1-0.2 us on Python 3.11 (its metaclass's ``__getattr__``), and
    operators run for every op a user writes."""

    def method(self: Tensor, other: Any) -> Tensor:
        if type(other) is Tensor:  # Note: the common case, one call less
            return Tensor(build.binary(op, self.node, other.node))
        return binary(op, self, other)

    return method


def _reflected(op: Op) -> Callable[[Tensor, Any], Tensor]:
    """The method ``other <op> self`` (``__radd__`` and the like)."""

    def method(self: Tensor, other: Any) -> Tensor:
        return binary(op, other, self)

    return method


def _unary_operator(op: Op) -> Callable[[Tensor], Tensor]:
    def method(self: Tensor) -> Tensor:
        return unary(op, self)

    return method


class _Tracing(threading.local):
    """The ``lf.jit`` trace running on this thread (set by ``jit._trace``): the traced
    function's name, and the leaves standing for its arguments. ``function`` is None
    outside a trace."""

    function: str | None = None
    arguments: Container[Node] = frozenset()


TRACING = _Tracing()
_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _refuse_if_traced(tensor: Tensor, what: str) -> None:
    """Raise ConcretizationError when ``tensor`` depends on an argument of the running
    trace: its value is the first call's, and Python would freeze it into the trace.
    A tensor of constants only (no argument among its leaves) computes as usual."""
    if TRACING.function is None:
        return
    arguments = TRACING.arguments
    leaves = tensor.node.leaves
    if leaves is None:
        leaves = tuple(n for n in toposort([tensor.node]) if not n.args)
    if not any(leaf in arguments for leaf in leaves):
        return
    raise ConcretizationError(
        f"lf.jit: {TRACING.function} needs a concrete value of a traced tensor for {what} at "
        f"{_user_line()}; inside lf.jit the arguments' values are known only when it runs, so "
        f"Python control flow and bool()/float()/int()/np.asarray() on them cannot be traced. "
        f"Choose values with lf.where(condition, x, y), or move the Python logic outside lf.jit"
    )


def _user_line() -> str:
    """file:line of the innermost frame outside the lazyfuse package (the user's code)."""
    frame = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE):
        frame = frame.f_back  # type: ignore[assignment]
    return f"{frame.f_code.co_filename}:{frame.f_lineno}" if frame is not None else "?"


class Tensor:
    """A lazy array: an expression that runs only at :meth:`compute`."""

    __slots__ = ("node",)
    # Note: __array_ufunc__ and __array_function__ (np.exp(t), `ndarray + t`, np.sum(t)
    # give lazy tensors) are attached by lazyfuse/protocols.py.

    def __init__(self, node: Node) -> None:
        self.node = node

    # attributes ------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self.node.shape

    @property
    def dtype(self) -> np.dtype:
        return self.node.dtype

    @property
    def ndim(self) -> int:
        return self.node.ndim

    @property
    def size(self) -> int:
        return self.node.size

    @property
    def T(self) -> Tensor:  # noqa: N802 (NumPy's name)
        return self.transpose()

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __repr__(self) -> str:
        return f"lazyfuse.Tensor(shape={self.shape}, dtype={self.dtype}, op={self.node.op.name.lower()})"

    # running ---------------------------------------------------------------------
    def compute(self, target: str | None = None, out: np.ndarray | None = None) -> np.ndarray:
        """Run the expression; returns a NumPy array (0-d for a scalar result).

        ``target``: "cpu" or "cuda" (default: LAZYFUSE_TARGET, else "cpu").
        ``out``: a NumPy array of this tensor's shape and dtype, not overlapping any
        input, that the result is written into (and returned)."""
        settings = config.get()
        fast = target is None and out is None and settings.target == "cpu" and not settings.checks
        if fast and not dask_target.has_dask_inputs([self.node]):
            return execute.run([self.node])[0]  # Note: what compute() does then, without its checks
        return compute(self, target=target, out=out)[0]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        _refuse_if_traced(self, "np.asarray()")
        result = self.compute()
        return result if dtype is None else result.astype(dtype)

    def __bool__(self) -> bool:
        if self.size != 1:
            raise ValueError(
                "The truth value of a tensor with more than one element is ambiguous; "
                "use .compute() and then .any() or .all()"
            )
        _refuse_if_traced(self, "bool() (an if, while, and, or, not)")
        return bool(self.compute())

    def __float__(self) -> float:
        _refuse_if_traced(self, "float()")
        return float(self._one_value("float"))

    def __int__(self) -> int:
        _refuse_if_traced(self, "int()")
        return int(self._one_value("int"))

    def __index__(self) -> int:
        """As NumPy's: only a 0-d integer tensor is an index."""
        if self.ndim != 0 or self.dtype.kind not in "iu":
            raise TypeError("only integer scalar tensors can be converted to a scalar index")
        _refuse_if_traced(self, "an index (operator.index, range, a shape or axis)")
        return int(self.compute())

    def _one_value(self, what: str) -> np.ndarray:
        if self.size != 1:
            raise TypeError(f"only tensors of size 1 can be converted to a Python {what}")
        return self.compute().reshape(())

    def kernels(self, target: str | None = None) -> list[Any]:
        """The kernels that compute this tensor, each with ``name``, ``target``, ``source``
        and ``path``. On the CPU: the versions for arrays of any strides; when every array
        a kernel reads and writes is C-contiguous, the runtime calls a variant with the
        same body (an elementwise one as one flat loop), named ``..._flat`` or ``..._c``,
        and one written over an intermediate it reads last reads it from its output array
        (``..._in_placeK``, K the load that reads it)."""
        return target_for(target, [self.node]).kernels([self.node])

    def to_dask(self) -> Any:
        """This tensor as a lazy Dask array (to ``persist``, ``to_zarr``, hand to xarray):
        its chunk tasks run lazyfuse's kernels. Inputs that are NumPy arrays become
        one-chunk Dask arrays."""
        return dask_target.to_dask(self.node)

    def explain(self, target: str | None = None, graph: bool = True) -> str:
        """The graph (one line per node) and the source of every kernel that computes it;
        with ``graph=False`` one line per kernel (see :func:`explain`)."""
        return explain(self, target=target, graph=graph)

    def visualize(
        self,
        filename: str | os.PathLike[str] | None = None,
        format: str | None = None,
        target: str | None = None,
    ) -> Picture:
        """The picture of this tensor's kernels (see :func:`visualize`)."""
        return visualize(self, filename=filename, format=format, target=target)

    # operators -------------------------------------------------------------------
    __add__ = _operator(Op.ADD)
    __radd__ = _reflected(Op.ADD)
    __sub__ = _operator(Op.SUB)
    __rsub__ = _reflected(Op.SUB)
    __mul__ = _operator(Op.MUL)
    __rmul__ = _reflected(Op.MUL)
    __truediv__ = _operator(Op.TRUEDIV)
    __rtruediv__ = _reflected(Op.TRUEDIV)
    __floordiv__ = _operator(Op.FLOORDIV)
    __rfloordiv__ = _reflected(Op.FLOORDIV)
    __mod__ = _operator(Op.MOD)
    __rmod__ = _reflected(Op.MOD)

    def __pow__(self, other: Any) -> Tensor:
        if self.dtype == np.bool_ and type(other) is int and other == 2:
            # Note: only the operator; np.power(bool_array, 2) is int64, as lf.power's.
            raise DTypeError(
                "**: NumPy squares a bool array ** 2 into int8, which lazyfuse does not "
                "support; cast first (x.astype('int64') ** 2) or use lf.power(x, 2) (int64)"
            )
        return binary(Op.POW, self, other)

    __rpow__ = _reflected(Op.POW)
    __and__ = _operator(Op.AND)
    __rand__ = _reflected(Op.AND)
    __or__ = _operator(Op.OR)
    __ror__ = _reflected(Op.OR)
    __xor__ = _operator(Op.XOR)
    __rxor__ = _reflected(Op.XOR)
    __lt__ = _operator(Op.LT)
    __le__ = _operator(Op.LE)
    __gt__ = _operator(Op.GT)
    __ge__ = _operator(Op.GE)
    __eq__ = _operator(Op.EQ)  # type: ignore[assignment]
    __ne__ = _operator(Op.NE)  # type: ignore[assignment]

    __hash__ = None  # type: ignore[assignment]  # like ndarray: == is elementwise

    def __matmul__(self, other: Any) -> Tensor:
        return Tensor(build.matmul(self.node, asarray(other).node))

    def __rmatmul__(self, other: Any) -> Tensor:
        return Tensor(build.matmul(asarray(other).node, self.node))

    __neg__ = _unary_operator(Op.NEG)

    def __pos__(self) -> Tensor:
        return self

    __abs__ = _unary_operator(Op.ABS)
    __invert__ = _unary_operator(Op.INVERT)

    def __getitem__(self, key: Any) -> Tensor:
        return Tensor(build.index(self.node, key))

    # methods mirroring NumPy's -----------------------------------------------------
    # Note: the elementwise ones (t.exp(), t.maximum(y), t.round(), t.clip()) are attached
    # by lazyfuse.functions from the op table's rows (ElementwiseRow.methods).

    def astype(self, dtype: Any) -> Tensor:
        return Tensor(build.astype(self.node, dtype))

    def sum(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        return Tensor(build.reduction(Op.SUM, self.node, axis, keepdims))

    def prod(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        return Tensor(build.reduction(Op.PROD, self.node, axis, keepdims))

    def max(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        return Tensor(build.reduction(Op.MAX, self.node, axis, keepdims))

    def min(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        return Tensor(build.reduction(Op.MIN, self.node, axis, keepdims))

    def mean(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        return Tensor(build.mean(self.node, axis, keepdims))

    def transpose(self, *axes: Any) -> Tensor:
        return Tensor(build.permute(self.node, _axes_arg(axes)))

    def permute(self, *axes: Any) -> Tensor:
        return Tensor(build.permute(self.node, _axes_arg(axes), name="permute"))

    def reshape(self, *shape: Any) -> Tensor:
        return Tensor(build.reshape(self.node, _axes_arg(shape) or ()))

    def broadcast_to(self, shape: Sequence[int]) -> Tensor:
        return Tensor(build.broadcast_to(self.node, _shape_arg(shape)))

    def expand_dims(self, axis: int | Sequence[int]) -> Tensor:
        return Tensor(build.expand_dims(self.node, axis))

    def squeeze(self, axis: int | Sequence[int] | None = None) -> Tensor:
        return Tensor(build.squeeze(self.node, axis))


def add_method(name: str, function: Callable[..., Any]) -> None:
    """Make ``function`` (whose first argument is the tensor) the method ``name`` of
    Tensor: front-end modules that import this one attach their NumPy-named methods
    (``t.var()``, ``t.argmax()``) this way, so each op is written once."""
    setattr(Tensor, name, function)


def _name_operators(cls: type) -> None:
    """Give the methods made by _operator, _reflected and _unary_operator their own
    names, as help() and tracebacks show them."""
    for name, value in list(vars(cls).items()):
        if getattr(value, "__name__", None) == "method":
            value.__name__, value.__qualname__ = name, f"{cls.__name__}.{name}"


_name_operators(Tensor)


def _axes_arg(axes: tuple[Any, ...]) -> tuple[int, ...] | None:
    """NumPy's ``t.transpose(1, 0)`` / ``t.transpose((1, 0))`` / ``t.transpose()``."""
    if len(axes) == 1 and (axes[0] is None or isinstance(axes[0], (tuple, list))):
        return None if axes[0] is None else tuple(axes[0])
    return tuple(axes) if axes else None


def _shape_arg(shape: int | Sequence[int]) -> tuple[int, ...]:
    return (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(shape)


def asarray(value: Any) -> Tensor:
    """Wrap a NumPy array (no copy), a CUDA device array (no copy: the CUDA target reads
    it on the device, the CPU target copies it to the host), a Dask array (an expression
    that reads one runs on Dask, chunk by chunk) or a Python/NumPy scalar."""
    if isinstance(value, Tensor):
        return value
    if hasattr(value, "__cuda_array_interface__") and not build.is_device_array(value):
        from numba import cuda  # Note: only for a GPU array of another library (CuPy, PyTorch)

        value = cuda.as_cuda_array(value)
    if build.is_device_array(value):
        return Tensor(build.input_node(value))
    if dask_target.is_dask_array(value):
        return Tensor(dask_target.input_node(value))
    if isinstance(value, np.ndarray) and type(value) is not np.ndarray:
        _refuse_subclass(value)
    array = np.asarray(value)  # Note: a memmap becomes the plain array of its data
    if array.dtype.kind in "OUSVcMm":
        raise DTypeError(
            f"asarray: arrays of dtype {array.dtype} are not supported "
            f"(supported: bool, int32, int64, float32, float64)"
        )
    return Tensor(build.input_node(array))


def _refuse_subclass(array: np.ndarray) -> None:
    """Refuse an ndarray subclass whose meaning lazyfuse would silently change (a masked
    array's mask, np.matrix's ``*``); a memmap is only storage and is read as its data.

    Note: DTypeError (a LazyfuseError and a TypeError): the array's type is unsupported."""
    if isinstance(array, np.memmap):
        return
    if isinstance(array, np.ma.MaskedArray):
        advice = (
            "its mask would be dropped (a masked array); pass m.filled(value) (masked entries "
            "replaced) or np.ma.getdata(m) (ignoring the mask)"
        )
    elif isinstance(array, np.matrix):
        advice = "pass np.asarray(m) (then * is elementwise, as on any lazyfuse tensor; use @ for products)"
    else:
        advice = "pass np.asarray(a), if its data means the same as a plain array's"
    raise DTypeError(
        f"asarray: {type(array).__module__}.{type(array).__qualname__} (a numpy.ndarray subclass) is "
        f"not supported, since lazyfuse would read only its data and drop what the subclass means; "
        f"{advice}"
    )


def as_node(value: Any, what: str) -> Node:
    if isinstance(value, Tensor):
        return value.node
    if isinstance(value, (np.ndarray, np.generic)):
        return asarray(value).node
    raise TypeError(f"{what}: expected a lazyfuse tensor or NumPy array, got {type(value).__name__}")


def is_python_scalar(value: Any) -> bool:
    """A Python bool, int or float: weak in NumPy's dtype rule (NEP 50). Note: np.float64
    subclasses float, but NumPy scalars are strong."""
    return isinstance(value, (bool, int, float)) and not isinstance(value, np.generic)


def operand(value: Any, what: str) -> build.Operand:
    """A tensor's node, or a Python scalar kept weak (NEP 50) for the op's dtype rule."""
    if is_python_scalar(value) or is_foreign_scalar(value):
        return value
    if isinstance(value, (list, tuple)):
        return asarray(np.asarray(value)).node
    return as_node(value, what)


def is_foreign_scalar(value: Any) -> bool:
    """A NumPy number of a dtype lazyfuse lacks (int8, uint16, float16, ...): an operand
    whose dtype NumPy's rule sees as it is (see ``build.Operand``)."""
    if not isinstance(value, np.generic):
        return False
    return value.dtype.kind in "biuf" and value.dtype not in dtypes.SUPPORTED


PYTHON_SCALARS = frozenset({bool, int, float})  # the weak operand types (NEP 50)


def binary(op: Op, a: Any, b: Any) -> Tensor:
    # Note: tensors and Python scalars, the common operands, without a call each.
    x = a.node if type(a) is Tensor else a if type(a) in PYTHON_SCALARS else None
    y = b.node if type(b) is Tensor else b if type(b) in PYTHON_SCALARS else None
    if x is None or y is None:
        return _other_binary(op, a, b)
    return Tensor(build.binary(op, x, y))


def _other_binary(op: Op, a: Any, b: Any) -> Tensor:
    """:func:`binary` of other operands: a weak scalar of ``lf.jit`` combines by its own
    rule; NumPy arrays and scalars, lists and tuples become operands."""
    if isinstance(a, WeakScalar):
        return a.combine(op, b, reflected=False)
    if isinstance(b, WeakScalar):
        return b.combine(op, a, reflected=True)
    name = ELEMENTWISE[op].name
    return Tensor(build.binary(op, operand(a, name), operand(b, name)))


class WeakScalar(Tensor):
    """A Python int or float argument of a function ``lf.jit`` traces (``jit._Weak``): a
    run-time value that is weak in dtype rules (NEP 50) as the Python scalar it stands
    for, of Python type ``kind``."""

    __slots__ = ()
    kind: type

    def combine(self, op: Op, other: Any, reflected: bool) -> Tensor:
        raise NotImplementedError


def _kind_of(value: Any) -> dtypes.DTypeLike:
    """What a dtype rule sees of ``value``: a Python type for a weak value, else a dtype."""
    if isinstance(value, WeakScalar):
        return value.kind
    return dtypes.weak_type(value) if is_python_scalar(value) else asarray(value).dtype


def unweak(name: str, *values: Any) -> tuple[Any, ...]:
    """``values`` (operands of one op, such as where's), each :class:`WeakScalar` as a
    tensor of the dtype NumPy gives a Python scalar of its kind among the others."""
    if not any(isinstance(v, WeakScalar) for v in values):
        return values
    kinds = [
        v.kind
        if isinstance(v, WeakScalar)
        else dtypes.weak_type(v)
        if is_python_scalar(v)
        else asarray(v).dtype
        for v in values
    ]
    dtype = dtypes.result_type(name, *kinds)
    return tuple(Tensor(build.astype(v.node, dtype)) if isinstance(v, WeakScalar) else v for v in values)


def unary(op: Op, x: Any) -> Tensor:
    return Tensor(build.unary(op, x.node if type(x) is Tensor else asarray(x).node))


def target_for(target: str | None, roots: Sequence[Node]) -> targets.Target:
    """The target that computes ``roots``: the one named (LAZYFUSE_TARGET's when None), or
    the Dask target when an input is a Dask array; an unknown name is a LazyfuseError."""
    return targets.chosen(config.get().target if target is None else target, roots)


def _check_out(tensor: Tensor, out: Any) -> None:
    """``out`` must be a writable NumPy array of the tensor's shape and dtype that shares
    no memory with any input (a kernel may read an input after writing ``out``)."""
    if not isinstance(out, np.ndarray) or not out.flags.writeable:
        raise TypeError(f"compute: out must be a writable numpy.ndarray, got {type(out).__name__}")
    if out.shape != tensor.shape or out.dtype != tensor.dtype:
        raise ValueError(
            f"compute: out has shape {out.shape} and dtype {out.dtype}; "
            f"the result has shape {tensor.shape} and dtype {tensor.dtype}"
        )
    for leaf in toposort([tensor.node]):
        if leaf.op is not Op.INPUT or not isinstance(leaf.attrs[0], np.ndarray):
            continue  # a device array is copied to the host first: it cannot overlap
        if np.may_share_memory(out, leaf.attrs[0]):
            raise ValueError(f"compute: out overlaps an input of shape {leaf.shape}; pass a separate array")


def compute(*tensors: Any, target: str | None = None, out: np.ndarray | None = None) -> tuple[Any, ...]:
    """Compute several tensors with one plan; returns a tuple of NumPy arrays. An argument
    may be a pytree of tensors (a dict of gradients): its arrays come back in its
    structure. ``target``: "cpu" or "cuda" (default: LAZYFUSE_TARGET, else "cpu").
    ``out`` (with one tensor): the array the result is written into."""
    if any(isinstance(t, (tuple, list, dict)) for t in tensors):
        leaves, treedef = pytree.flatten(tensors, is_leaf=lambda x: isinstance(x, Tensor))
        return pytree.unflatten(treedef, compute(*leaves, target=target))  # type: ignore[no-any-return]
    wrapped = [asarray(t) for t in tensors]
    if out is not None:
        if len(wrapped) != 1:
            raise ValueError(f"compute: out= takes one tensor, got {len(wrapped)}")
        _check_out(wrapped[0], out)
    roots = [t.node for t in wrapped]
    chosen = target_for(target, roots)
    if config.get().checks and chosen.name != "dask":  # Note: verify reads the inputs' values
        verify(roots)
    return tuple(chosen.run(roots, out))


def explain(*tensors: Tensor, target: str | None = None, graph: bool = True) -> str:
    """The graph, the graph after fusion with every refusal's reason, and each kernel's
    source for ``target`` ("cpu" or "cuda"; default: LAZYFUSE_TARGET, else "cpu"); for a
    Dask expression, the Dask layers lazyfuse made and the kernels their tasks run. With
    ``graph=False``, the short form: one line per kernel (name, fused ops, inputs, outputs,
    the variant it runs)."""
    leaves, _ = pytree.flatten(tensors, is_leaf=lambda x: isinstance(x, Tensor))  # a dict of gradients
    written = [asarray(t).node for t in leaves]
    if not graph:
        return "\n".join(short_form(written, target))
    lines = ["graph:"] + ["  " + ln for ln in format_graph(written)]
    return "\n".join(lines + target_for(target, written).describe(written))


def visualize(
    *tensors: Tensor,
    filename: str | os.PathLike[str] | None = None,
    format: str | None = None,
    target: str | None = None,
) -> Picture:
    """A picture of the kernels that compute ``tensors``: each kernel a cluster, stored
    values solid, values fused and never stored dashed, refused fusions as red edges with
    their reasons, backward nodes orange; written to ``filename`` (svg or png) when given
    (Graphviz's ``dot`` when installed, else matplotlib); shown inline in Jupyter."""
    leaves, _ = pytree.flatten(tensors, is_leaf=lambda x: isinstance(x, Tensor))
    return _picture([asarray(t).node for t in leaves], filename, format, target)


def cache_info() -> dict[str, Any]:
    """What the caches did in this process: plan ``hits`` and ``misses``, kernels
    ``compiles`` (compiled by Numba) and ``disk_loads`` (from its disk cache), the
    seconds they took, where the disk cache lives, and the bytes of dropped large
    outputs kept for reuse (``pooled_bytes``)."""
    files = runtime_compile.disk_files()
    return {
        **plans.STATS,
        "compiles": runtime_compile.STATS["compiles"],
        "disk_loads": runtime_compile.STATS["disk_loads"],
        "compile_seconds": runtime_compile.STATS["compile_seconds"],
        "kernels_loaded": runtime_compile.STATS["kernels"],
        "cache_dir": str(config.get().cache_dir),
        "disk_files": len(files),
        "disk_bytes": sum(p.stat().st_size for p in files),
        "pooled_bytes": buffers.pooled_bytes(),
        **({"workers": workers} if (workers := dask_target.workers_cache_info()) is not None else {}),
    }
