"""NumPy's protocols (__array_ufunc__, __array_function__), the Array API's names and
namespace, and scalars out of tensors.

``np.exp(t)``, ``np.sum(t, axis=1)``, ``ndarray + t``: NumPy hands the call to the tensor,
which runs lazyfuse's function of the same name (looked up when called, so every public
function of the package is reached) and returns a lazy tensor. A call lazyfuse cannot
run itself (no such function, an argument it does not take, ``out=`` a NumPy array)
computes the tensors among the arguments and calls NumPy, which gives NumPy's answer;
``LAZYFUSE_DEBUG=1`` prints why to stderr.
"""

from __future__ import annotations

import functools
import inspect
import operator
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

import lazyfuse
from lazyfuse import array_api, config
from lazyfuse.tensor import Tensor, _refuse_if_traced, add_method

# Note: the Array API's names live in array_api.py; lazyfuse/__init__ re-exports them
# through this module, whose __getattr__ serves them (a star import here would shadow
# the builtin bool).
__all__ = list(array_api.__all__)


def __getattr__(name: str) -> Any:
    if name in array_api.__all__:
        return getattr(array_api, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


API_VERSIONS = ("2021.12", "2022.12", "2023.12")

# NumPy's name: lazyfuse's, where they differ (NumPy 2's own aliases, such as np.concat
# for np.concatenate, reach the protocol under NumPy's first name, here the key).
NUMPY_NAMES = {"amax": "max", "amin": "min", "around": "round"}
# ufunc.reduce and ufunc.accumulate as lazyfuse's reductions and scans
REDUCTIONS = {"add": "sum", "multiply": "prod", "maximum": "max", "minimum": "min"}
REDUCTIONS |= {"logical_and": "all", "logical_or": "any"}
SCANS = {"add": "cumsum", "multiply": "cumprod"}
# NumPy functions whose dtype= is the dtype they compute in: the same as casting first
DTYPE_CASTS_INPUT = frozenset({"sum", "prod", "mean", "var", "std", "cumsum", "cumprod"})
# NumPy functions that read only the shape: answered without computing
SHAPE_ONLY = frozenset({"shape", "ndim", "size"})
# Arguments lazyfuse may ignore at these values: a new, immutable result is always made
# (copy), on the host (device); ufuncs' defaults.
HARMLESS: dict[str, tuple[Any, ...]] = {
    "copy": (True, None),
    "device": (None, "cpu"),
    "where": (True,),
    "casting": ("same_kind",),
    "order": ("K",),
    "subok": (True,),
    "signature": (None,),
}


class _UnsupportedError(Exception):
    """Why lazyfuse cannot run a NumPy call itself; the protocol then calls NumPy."""


# __array_function__ ----------------------------------------------------------------


def array_function(self: Tensor, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
    """``np.<func>(..., t, ...)``: lazyfuse's function of the same name, or NumPy's on the
    computed tensors (see the module's docstring)."""
    if not all(issubclass(t, (Tensor, np.ndarray)) for t in types):
        return NotImplemented
    name = func.__name__
    try:
        return _run_function(func, name, args, kwargs)
    except _UnsupportedError as why:
        return _call_numpy(f"np.{name}", func, args, kwargs, str(why))


def _run_function(func: Any, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if name in SHAPE_ONLY and getattr(np, name) is func:
        return func._implementation(*args, **kwargs)  # Note: NumPy's reads only .shape/.ndim/.size
    function = _function(name)
    if getattr(np, name, None) is not func:
        raise _UnsupportedError(f"{func.__module__}.{name} is not np.{name}, which lazyfuse.{name} follows")
    positional, keywords = _arguments(_signature(func), function, args, kwargs)
    if name == "astype":
        keywords.pop("copy", None)  # Note: any value: a lazy astype never shares memory with its input
    dtype = None
    if "dtype" in keywords and "dtype" not in _parameters(function) and name in DTYPE_CASTS_INPUT:
        dtype = np.dtype(keywords.pop("dtype"))
        positional[0] = lazyfuse.asarray(positional[0]).astype(dtype)
    result = _call(function, positional, keywords)
    _check_dtype(result, dtype, name)
    return result


def _arguments(
    numpy_signature: inspect.Signature | None,
    function: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> tuple[list[Any], dict[str, Any]]:
    """The arguments of a NumPy call as lazyfuse's ``function`` takes them: bound to
    NumPy's signature, those lazyfuse lacks dropped where they are at NumPy's default;
    the first and the leading ones passed by position stay positional (the first
    parameter's name differs: NumPy's ``a``, lazyfuse's ``x``), the rest go by name."""
    if numpy_signature is None:
        return list(args), {k: v for k, v in kwargs.items() if not _ignorable(k, v, inspect.Parameter.empty)}
    try:
        bound = numpy_signature.bind(*args, **kwargs)
    except TypeError as exc:
        raise _UnsupportedError(f"NumPy's signature does not take these arguments ({exc})") from None
    known = _parameters(function)
    positional: list[Any] = []
    keywords: dict[str, Any] = {}
    for index, (name, value) in enumerate(bound.arguments.items()):
        parameter = numpy_signature.parameters[name]
        if parameter.kind is inspect.Parameter.VAR_POSITIONAL:
            positional.extend(value)
        elif parameter.kind is inspect.Parameter.VAR_KEYWORD:
            keywords.update(value)
        elif name not in known and _ignorable(name, value, parameter.default):
            continue
        elif index == len(positional) and (
            index < len(args) or index == 0 or parameter.kind is parameter.POSITIONAL_ONLY
        ):
            positional.append(value)
        else:
            keywords[name] = value
    return positional, keywords


def _ignorable(name: str, value: Any, default: Any) -> bool:
    """``value`` is NumPy's default for the parameter, or one lazyfuse's result honours
    anyway (HARMLESS). Note: compares only scalars (an array's == is elementwise)."""
    if value is default or value is np._NoValue:
        return True
    simple = (type(None), bool, int, float, str)
    if isinstance(value, simple) and type(value) is type(default) and value == default:
        return True
    return any(value is v or (isinstance(value, simple) and value == v) for v in HARMLESS.get(name, ()))


def _call(function: Callable[..., Any], positional: list[Any], keywords: dict[str, Any]) -> Any:
    """``function(*positional, **keywords)``, or _UnsupportedError when its signature refuses them."""
    signature = _signature(function)
    if signature is not None:
        try:
            signature.bind(*positional, **keywords)
        except TypeError as exc:
            unknown = sorted(set(keywords) - _parameters(function))
            reason = f"takes no argument {', '.join(unknown)}" if unknown else f"does not take these ({exc})"
            raise _UnsupportedError(f"lazyfuse.{function.__name__} {reason}") from None
    return function(*positional, **keywords)


def _check_dtype(result: Any, dtype: np.dtype | None, name: str) -> None:
    """dtype= was honoured by casting first; where the result's dtype is not ``dtype``
    (sum of int32 in int32), NumPy's rule differs: let NumPy compute it."""
    if dtype is not None and (not isinstance(result, Tensor) or result.dtype != dtype):
        got = getattr(result, "dtype", type(result).__name__)
        raise _UnsupportedError(f"lazyfuse's {name} with dtype={dtype} gives {got}, NumPy's {dtype}")


# __array_ufunc__ --------------------------------------------------------------------


def array_ufunc(self: Tensor, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any) -> Any:
    """``np.<ufunc>(...)`` and ``ndarray <op> t``: lazyfuse's function of the ufunc's name
    (``reduce``: its reduction, ``accumulate``: its scan), or NumPy's on the computed
    tensors."""
    out = kwargs.get("out", ())
    if not all(_handled(x) for x in (*inputs, *out)):
        return NotImplemented
    if any(isinstance(o, Tensor) for o in out):
        raise TypeError(
            f"np.{ufunc.__name__}: out= cannot be a lazyfuse tensor (tensors are immutable); "
            f"use the result, or pass a NumPy array"
        )
    label = f"np.{ufunc.__name__}" if method == "__call__" else f"np.{ufunc.__name__}.{method}"
    try:
        return _run_ufunc(ufunc, method, inputs, dict(kwargs))
    except _UnsupportedError as why:
        return _call_numpy(label, getattr(ufunc, method), inputs, kwargs, str(why))


def _handled(value: Any) -> bool:
    """Tensors, NumPy arrays and scalars, Python numbers and sequences: not an array
    type of another library with its own __array_ufunc__ (which then goes first)."""
    if isinstance(value, (Tensor, np.ndarray, np.generic)):
        return True
    return not hasattr(type(value), "__array_ufunc__")


def _run_ufunc(ufunc: np.ufunc, method: str, inputs: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    out = kwargs.pop("out", None)
    if out is not None and any(o is not None for o in out):
        raise _UnsupportedError("out= writes into a NumPy array")
    dtype = kwargs.pop("dtype", None)
    dtype = None if dtype is None else np.dtype(dtype)
    kwargs = {k: v for k, v in kwargs.items() if not _ignorable(k, v, inspect.Parameter.empty)}
    if method == "__call__":
        function = _function(ufunc.__name__)
        if dtype is not None:
            inputs = tuple(_cast(x, dtype, ufunc.__name__) for x in inputs)
        # Note: a ufunc's arity is fixed, the same as lazyfuse's function's; no check then.
        result = _call(function, list(inputs), kwargs) if kwargs else function(*inputs)
    elif method in ("reduce", "accumulate") and len(inputs) == 1:
        result = _reduce_or_scan(ufunc.__name__, method, inputs[0], dtype, kwargs)
    else:
        raise _UnsupportedError(f"lazyfuse has no ufunc method {method}")
    _check_dtype(result, dtype, ufunc.__name__)
    return result


def _cast(value: Any, dtype: np.dtype, name: str) -> Any:
    """An input of a ufunc called with dtype=: cast, where NumPy's default casting rule
    (same_kind) allows it; a Python scalar stays weak."""
    if isinstance(value, (bool, int, float)) and not isinstance(value, np.generic):
        return value
    source = lazyfuse.asarray(value)
    if not np.can_cast(source.dtype, dtype, "same_kind"):
        raise _UnsupportedError(f"NumPy refuses to cast {source.dtype} to dtype={dtype} in np.{name}")
    return source.astype(dtype)


def _reduce_or_scan(name: str, method: str, x: Any, dtype: np.dtype | None, kwargs: dict[str, Any]) -> Any:
    """``np.add.reduce(x, axis=0)`` as ``sum(x, axis=0)``; ``np.add.accumulate(x)`` as
    ``cumsum(x, axis=0)`` in ``x``'s dtype (a ufunc's scan keeps it: int32 and bool do not
    widen as cumsum's do; the cast back gives the same values, wrapped, or or/and for bool)."""
    table = REDUCTIONS if method == "reduce" else SCANS
    if name not in table:
        raise _UnsupportedError(f"lazyfuse has no {method} of {name}")
    function = _function(table[name])
    x = lazyfuse.asarray(x)
    kwargs.setdefault("axis", 0)
    if "initial" in kwargs:
        raise _UnsupportedError("lazyfuse's reductions take no initial=")
    if dtype is not None:
        x = _cast(x, dtype, name)
    result = _call(function, [x], kwargs)
    if method == "accumulate" and dtype is None and result.dtype != x.dtype:
        result = result.astype(x.dtype)
    return result


# both protocols -------------------------------------------------------------------------


def _function(name: str) -> Callable[..., Any]:
    """lazyfuse's public function for NumPy's ``name``, or _UnsupportedError."""
    public = _public_names(len(lazyfuse.__all__))
    for candidate in (name, NUMPY_NAMES.get(name)):
        needs = array_api.CALLS.get(candidate or "")  # an alias of a function not (yet) there
        if candidate in public and (needs is None or needs in public):
            function = getattr(lazyfuse, candidate)
            if callable(function) and not isinstance(function, type):
                return function  # type: ignore[no-any-return]
    raise _UnsupportedError(f"lazyfuse has no function {name}")


@functools.lru_cache(maxsize=4)
def _public_names(count: int) -> frozenset[str]:
    """lazyfuse's public names (``count``, their number, keys the cache)."""
    return frozenset(lazyfuse.__all__)


@functools.lru_cache(maxsize=1024)
def _signature(func: Any) -> inspect.Signature | None:
    try:
        return inspect.signature(func)
    except (TypeError, ValueError):
        return None


@functools.lru_cache(maxsize=1024)
def _parameters(function: Callable[..., Any]) -> frozenset[str]:
    """The names ``function`` takes by keyword; every name if it takes ``**kwargs``
    (an alias calling another function)."""
    signature = _signature(function)
    if signature is None or any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values()):
        return _Everything()
    return frozenset(
        n for n, p in signature.parameters.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    )


class _Everything(frozenset):  # type: ignore[type-arg]
    def __contains__(self, item: object) -> bool:
        return True


def _call_numpy(label: str, call: Callable[..., Any], args: Any, kwargs: dict[str, Any], reason: str) -> Any:
    """NumPy's ``call`` on the arguments with every tensor among them (in lists, tuples,
    dicts too) computed, in one plan; refused in an ``lf.jit`` trace."""
    tensors: dict[int, Tensor] = {}
    _collect((args, kwargs), tensors)
    for tensor in tensors.values():
        _refuse_if_traced(tensor, f"{label} (run by NumPy: {reason})")
    values = dict(zip(tensors, lazyfuse.compute(*tensors.values()) if tensors else (), strict=True))
    if config.get().debug >= 1:
        print(f"[lazyfuse] {label}: computed the tensors and called NumPy: {reason}", file=sys.stderr)
    return call(*_replace(args, values), **_replace(kwargs, values))


def _collect(value: Any, found: dict[int, Tensor]) -> None:
    if isinstance(value, Tensor):
        found[id(value)] = value
    elif isinstance(value, (list, tuple)):
        for item in value:
            _collect(item, found)
    elif isinstance(value, dict):
        for item in value.values():
            _collect(item, found)


def _replace(value: Any, values: dict[int, np.ndarray]) -> Any:
    if isinstance(value, Tensor):
        return values[id(value)]
    if isinstance(value, list):
        return [_replace(v, values) for v in value]
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        return tuple(_replace(v, values) for v in value)
    if isinstance(value, dict):
        return {k: _replace(v, values) for k, v in value.items()}
    return value


# the Array API's namespace ------------------------------------------------------------


def array_namespace(self: Tensor, api_version: str | None = None) -> Any:
    """The ``lazyfuse`` module, the namespace of the Array API standard's functions."""
    if api_version is not None and api_version not in API_VERSIONS:
        raise ValueError(
            f"__array_namespace__: lazyfuse does not support Array API version {api_version!r}; "
            f"supported: {', '.join(API_VERSIONS)}"
        )
    return lazyfuse


# scalars out ----------------------------------------------------------------------


def item(self: Tensor, *args: Any) -> Any:
    """NumPy's ``item``: the one element of a size-1 tensor, or the element at a flat
    index ``t.item(k)`` or an index ``t.item(i, j)``, as a Python scalar. Computes only
    that element."""
    _refuse_if_traced(self, "t.item()")
    if not args:
        if self.size != 1:
            raise ValueError(
                f"item: can only convert a tensor of size 1 to a Python scalar, got shape {self.shape}; "
                f"pass an index: t.item(k) or t.item(i, j)"
            )
        return self.compute().item()
    return self[_element_index(self.shape, args)].compute().item()


def _element_index(shape: tuple[int, ...], args: tuple[Any, ...]) -> tuple[int, ...]:
    """``item``'s arguments as an index of each axis. NumPy checks them (its errors) on a
    stand-in of the same shape that holds one value (stride 0)."""
    np.broadcast_to(np.zeros((), np.int8), shape).item(*args)
    if len(args) == 1 and isinstance(args[0], tuple):
        args = args[0]
    if len(args) == 1 and len(shape) != 1:
        flat = operator.index(args[0])
        size = int(np.prod(shape))
        return tuple(int(i) for i in np.unravel_index(flat + size if flat < 0 else flat, shape))
    return tuple(operator.index(a) for a in args)


def tolist(self: Tensor) -> Any:
    """NumPy's ``tolist``: nested Python lists of Python scalars (a scalar for 0-d); computes."""
    _refuse_if_traced(self, "t.tolist()")
    return self.compute().tolist()


def tensor_format(self: Tensor, spec: str) -> str:
    """``format(t, ".3f")`` / f-strings, as NumPy arrays: a 0-d tensor formats its value
    (computed); with an empty spec, ``str(t)`` (no compute); other tensors refuse a spec."""
    if not spec:
        return str(self)
    if self.ndim != 0:
        raise TypeError(
            f"unsupported format string {spec!r} passed to lazyfuse.Tensor.__format__: only 0-d "
            f"tensors format their value, as NumPy's arrays; this one has shape {self.shape}"
        )
    _refuse_if_traced(self, "format()")
    return format(self.compute()[()], spec)


def tensor_complex(self: Tensor) -> complex:
    """``complex(t)`` of a tensor of size 1, as ``float(t)``."""
    _refuse_if_traced(self, "complex()")
    return complex(self._one_value("complex"))


add_method("__array_ufunc__", array_ufunc)
add_method("__array_function__", array_function)
add_method("__array_namespace__", array_namespace)
add_method("item", item)
add_method("tolist", tolist)
add_method("__format__", tensor_format)
add_method("__complex__", tensor_complex)
