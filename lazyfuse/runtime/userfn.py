"""User scalar functions (lf.map, lf.zip, lf.reduce): compiled and typed by Numba when
the expression is built, so a function Numba cannot compile fails at the user's line.

Their machine code is cached on disk (``LAZYFUSE_CACHE_DIR/userfn``) keyed by
:func:`cache_key`, which covers the globals Numba freezes; a function it cannot key, or a
cache directory diskcache refuses, compiles in every process as Numba does."""

from __future__ import annotations

import builtins
import enum
import functools
import hashlib
import inspect
import re
import sys
import types
from pathlib import Path
from typing import Any

import llvmlite
import numba
import numpy as np
from numba.core import errors as numba_errors
from numba.core.caching import CompileResultCacheImpl, FunctionCache, _CacheLocator
from numba.core.dispatcher import Dispatcher
from numba.np.numpy_support import as_dtype, from_dtype

from lazyfuse.errors import UserFunctionError
from lazyfuse.graph import dtypes
from lazyfuse.graph.build import UserFunction
from lazyfuse.runtime import diskcache

# Note: one UserFunction per function *definition*, so kernels that call it are reused,
# even for a lambda written inline and so re-created on every call. The table keeps
# the functions passed to lf.map/zip/reduce alive for the process.
_WRAPPED: dict[Any, UserFunction] = {}


def _identity(fn: Any) -> Any:
    """Functions with the same code, defaults, closure values and globals are one
    function to Numba (which freezes globals at compile time); others are keyed by id."""
    code = getattr(fn, "__code__", None)
    if code is None:
        return ("object", id(fn))
    cells = tuple(c.cell_contents for c in fn.__closure__ or ())
    key = ("code", code, fn.__defaults__, cells, id(fn.__globals__))
    try:
        hash(key)
    except TypeError:
        return ("object", id(fn))
    return key


def wrap(fn: Any, what: str) -> UserFunction:
    """The UserFunction for ``fn`` (a Python function or a Numba ``njit`` function)."""
    if not callable(fn):
        raise TypeError(f"{what}: expected a Python function, got {type(fn).__name__}")
    key = _identity(fn)
    user = _WRAPPED.get(key)
    if user is None:
        if isinstance(fn, numba.core.registry.CPUDispatcher):
            user = UserFunction(fn.py_func, fn, fn.py_func.__name__)
        else:
            disk_key = cache_key(fn)
            user = UserFunction(fn, _jit(fn, disk_key), getattr(fn, "__name__", "fn"), disk_key)
        _WRAPPED[key] = user
    return user


def scalar_dtype(value: Any) -> np.dtype:
    """The dtype Numba gives a Python or NumPy scalar (a Python int is int64)."""
    try:
        return np.dtype(as_dtype(numba.typeof(value)))
    except (NotImplementedError, ValueError, numba_errors.NumbaError):
        return np.asarray(value).dtype


def return_dtype(user: UserFunction, arg_dtypes: tuple[np.dtype, ...], what: str) -> np.dtype:
    """The dtype Numba infers for ``user(*args)``, or a UserFunctionError that names the
    function, quotes Numba's reason and says where the function was defined."""
    signature = _signature(user, arg_dtypes, what)
    try:
        user.compiled.compile(signature)
        result = user.compiled.overloads[signature].signature.return_type
    except numba_errors.NumbaError as exc:
        raise UserFunctionError(
            f"{what}: Numba cannot compile user function `{user.name}` (defined at {user.where}) "
            f"for arguments ({', '.join(str(d) for d in arg_dtypes)}): {_reason(exc)}"
        ) from None
    try:
        dt = as_dtype(result)
    except (NotImplementedError, numba_errors.NumbaError):
        raise UserFunctionError(
            f"{what}: user function `{user.name}` (defined at {user.where}) returns {result}, "
            f"not a scalar of a supported dtype ({dtypes.supported_names()})"
        ) from None
    return dtypes.check_supported(dt, f"{what} (return type of `{user.name}`)")


def _signature(user: UserFunction, arg_dtypes: tuple[np.dtype, ...], what: str) -> tuple[Any, ...]:
    """Numba types of the arguments the kernel passes, then the omitted defaults, as Numba
    types a call from compiled code (so the kernel reuses this compiled version)."""
    try:
        signature = inspect.signature(user.fn)
        signature.bind(*arg_dtypes)
    except (TypeError, ValueError) as exc:
        raise UserFunctionError(
            f"{what}: user function `{user.name}` (defined at {user.where}) cannot be called with "
            f"{len(arg_dtypes)} argument(s) ({what} passes {_arguments(what)}): {exc}"
        ) from None
    rest = list(signature.parameters.values())[len(arg_dtypes) :]
    omitted = [numba.types.Omitted(p.default) for p in rest if p.default is not p.empty]
    return (*(from_dtype(d) for d in arg_dtypes), *omitted)


_ARGUMENTS = {"map": "the element", "zip": "one element of each", "reduce": "the accumulator and an element"}


def _arguments(what: str) -> str:
    return _ARGUMENTS.get(what, "its arguments")


def _reason(exc: Exception) -> str:
    """Numba's message cut to its first two meaningful lines."""
    lines = [ln.strip() for ln in str(exc).splitlines()]
    skip = ("During:", "File ", "^", "[1]", "Failed in ")
    useful = [ln for ln in lines if ln and not ln.startswith(skip)]
    return " ".join(useful[:2])[:400]


# --- the disk cache of compiled user functions -------------------------------------------
#
# Numba freezes the globals a function reads into its machine code, and its own cache
# index key covers only the bytecode and closure: a global changed between processes
# would load stale code. Here the index key is :func:`cache_key`, a digest of everything
# frozen, computed when Numba loads or saves (so with the values it compiles).

_LIBRARIES = frozenset({"numpy", "numba", "math", "cmath", "builtins", "operator"})
_SCALARS = (bool, int, float, complex, str, bytes)


class _UnkeyableError(Exception):
    """A value a user function reads has no key that is stable across processes."""


def cache_key(fn: Any) -> str | None:
    """A sha256 of what Numba freezes into ``fn``'s machine code: its code (bytecode and
    constants, nested code too), defaults, closure values, the values of the globals it
    reads (recursively through the functions it calls), and the Numba/llvmlite/NumPy versions.
    Equal keys in two processes mean the same machine code; None when a value read has
    no stable key (then ``fn`` is not cached on disk)."""
    if not isinstance(fn, types.FunctionType):
        return None
    try:
        key = _function_key(fn, {})
    except (_UnkeyableError, RecursionError):
        return None
    versions = (numba.__version__, llvmlite.__version__, np.__version__)
    return hashlib.sha256(repr((versions, key)).encode()).hexdigest()


def _function_key(fn: types.FunctionType, seen: dict[int, int]) -> tuple[Any, ...]:
    code = fn.__code__
    names = tuple(sorted(_names(code)))
    kwdefaults = tuple(sorted((fn.__kwdefaults__ or {}).items()))
    return (
        "function",
        str(fn.__module__),
        fn.__qualname__,
        _code_key(code, seen),
        _value_key(fn.__defaults__, names, seen),
        _value_key(kwdefaults, names, seen),
        tuple(_cell_key(cell, names, seen) for cell in fn.__closure__ or ()),
        tuple((name, _global_key(name, fn.__globals__, names, seen)) for name in names),
    )


def _names(code: types.CodeType) -> set[str]:
    """The global and attribute names ``code`` and its nested code objects read."""
    found = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            found |= _names(const)
    return found


def _code_key(code: types.CodeType, seen: dict[int, int]) -> tuple[Any, ...]:
    consts = tuple(
        _code_key(c, seen) if isinstance(c, types.CodeType) else _value_key(c, (), seen)
        for c in code.co_consts
    )
    shape = (code.co_argcount, code.co_posonlyargcount, code.co_kwonlyargcount, code.co_flags)
    return (
        "code",
        code.co_code,
        shape,
        code.co_names,
        code.co_varnames,
        code.co_freevars,
        code.co_cellvars,
        consts,
    )


def _cell_key(cell: types.CellType, names: tuple[str, ...], seen: dict[int, int]) -> Any:
    try:
        contents = cell.cell_contents
    except ValueError:
        return ("empty cell",)
    return _value_key(contents, names, seen)


def _global_key(name: str, namespace: dict[str, Any], names: tuple[str, ...], seen: dict[int, int]) -> Any:
    if name in namespace:
        return _value_key(namespace[name], names, seen)
    return ("builtin",) if name in vars(builtins) else ("absent",)


def _value_key(value: Any, names: tuple[str, ...], seen: dict[int, int]) -> Any:
    """A key of ``value`` built only of strings, bytes and tuples, so its repr is the same
    in every process; raises _UnkeyableError for values it cannot key so. ``names``: the
    attribute names the code reads, keyed on modules."""
    if value is None or value is Ellipsis or type(value) in _SCALARS:
        return (type(value).__name__, repr(value))
    if isinstance(value, (types.FunctionType, Dispatcher, types.ModuleType)):
        if id(value) in seen:  # the graph of identities, not a second copy (nor a cycle)
            return ("seen", seen[id(value)])
        seen[id(value)] = len(seen)
        return _object_key(value, names, seen)
    return _data_key(value, names, seen)


def _object_key(value: Any, names: tuple[str, ...], seen: dict[int, int]) -> Any:
    """Functions by their code and what they read; jitted functions also by their options;
    modules by name and the attributes the code reads."""
    if isinstance(value, types.FunctionType):
        return _function_key(value, seen)
    if isinstance(value, Dispatcher):
        options = tuple(sorted((k, _value_key(v, (), seen)) for k, v in value.targetoptions.items()))
        return ("jitted", type(value).__name__, options, _value_key(value.py_func, names, seen))
    attributes = vars(value)
    read = tuple((a, _value_key(attributes[a], names, seen)) for a in names if a in attributes)
    return ("module", value.__name__, read)


def _data_key(value: Any, names: tuple[str, ...], seen: dict[int, int]) -> Any:
    """Constants Numba can freeze (arrays, NumPy scalars, tuples, enums, types) and the
    functions and types of NumPy, Numba, math and builtins (by their qualified name)."""
    if isinstance(value, tuple):
        kind = type(value)
        return (f"{kind.__module__}.{kind.__qualname__}", tuple(_value_key(v, names, seen) for v in value))
    if isinstance(value, (frozenset, set)):
        return ("set", tuple(sorted(repr(_value_key(v, names, seen)) for v in value)))
    if isinstance(value, np.ndarray) and not value.dtype.hasobject:
        return ("ndarray", str(numba.typeof(value)), value.shape, hashlib.sha256(value.tobytes()).hexdigest())
    if isinstance(value, np.generic) and not value.dtype.hasobject:
        return ("numpy scalar", value.dtype.str, value.tobytes())
    if isinstance(value, (np.dtype, numba.core.types.Type)):
        return (type(value).__name__, str(value))
    if isinstance(value, enum.Enum):
        kind = type(value)
        return ("enum", kind.__module__, kind.__qualname__, value.name, _value_key(value.value, names, seen))
    module, qualname = getattr(value, "__module__", None), getattr(value, "__qualname__", None)
    if isinstance(module, str) and isinstance(qualname, str) and module.split(".")[0] in _LIBRARIES:
        return ("library", module, qualname)
    raise _UnkeyableError(type(value).__qualname__)


def _jit(fn: Any, key: str | None) -> Any:
    """``numba.njit(fn)``, its machine code cached on disk when ``fn`` has a cache ``key``
    and the disk cache may be used; otherwise compiled in every process, as Numba does."""
    dispatcher = numba.njit(fn)
    if key is None:
        return dispatcher
    folder = diskcache.directory("userfn")
    if folder is not None:
        # Note: what Dispatcher.enable_caching does, with our cache class.
        dispatcher._cache = _UserFunctionCache(fn, folder, _stem(fn))
    return dispatcher


def _stem(fn: types.FunctionType) -> str:
    """The file name of ``fn``'s entry: its name and a digest of its code (one index
    holds the versions of one code, keyed by :func:`cache_key`)."""
    code = hashlib.sha256(repr((fn.__module__, fn.__qualname__, _code_key(fn.__code__, {}))).encode())
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{fn.__module__}.{fn.__qualname__}")[:60]
    python = f"py{sys.version_info[0]}{sys.version_info[1]}{getattr(sys, 'abiflags', '')}"
    return f"{name}-{code.hexdigest()[:16]}.{python}"


class _Locator(_CacheLocator):
    """Files in a lazyfuse cache directory, stamped with the Numba and llvmlite versions
    (not the source file: a lambda typed at a prompt has none, and the index key covers
    the code)."""

    def __init__(self, folder: Path) -> None:
        self._folder = folder

    def ensure_cache_path(self) -> None:
        if not self._folder.is_dir():  # Note: removed since; never recreated with other modes
            raise FileNotFoundError(self._folder)

    def get_cache_path(self) -> str:
        return str(self._folder)

    def get_source_stamp(self) -> str:
        return f"{numba.__version__}/{llvmlite.__version__}"

    def get_disambiguator(self) -> str:
        return ""


class _Impl(CompileResultCacheImpl):
    """Numba's compile-result cache with our locator and file name."""

    def __init__(self, py_func: Any, locator: _Locator, filename_base: str) -> None:
        self._lineno = py_func.__code__.co_firstlineno
        self._locator = locator
        self._filename_base = filename_base

    def check_cachable(self, cres: Any) -> bool:
        """Numba's rule, without its warning: such a function compiles in every process."""
        return all(x.can_cache for x in cres.lifted) and not cres.library.has_dynamic_globals


class _UserFunctionCache(FunctionCache):
    """Numba's function cache in ``folder``, entry ``stem``, index keyed by :func:`cache_key`.

    Invariants: an entry is loaded only when diskcache.check_entry finds its files match
    their manifest (unsafe ones are never touched, corrupt ones removed); any failure to
    load or save means a compile, as without a cache, never an error."""

    def __init__(self, py_func: Any, folder: Path, stem: str) -> None:
        self._impl_class = functools.partial(_Impl, locator=_Locator(folder), filename_base=stem)
        super().__init__(py_func)
        self._folder, self._stem = folder, stem

    def _index_key(self, sig: Any, codegen: Any) -> tuple[Any, ...]:
        key = cache_key(self._py_func)
        if key is None:
            raise _UnkeyableError(self._py_func.__qualname__)
        return (sig, codegen.magic_tuple(), key)

    def load_overload(self, sig: Any, target_context: Any) -> Any:
        status, why = diskcache.check_entry(self._folder, self._stem)
        if status in ("unsafe", "corrupt"):
            diskcache.warn_once(
                f"not loading the user function cache entry {self._folder / self._stem}: {why}"
            )
        if status == "unsafe":
            self.disable()
        if status == "corrupt":
            diskcache.remove_entry(self._folder, self._stem)
        if status != "ok":
            return None
        try:
            return super().load_overload(sig, target_context)
        except Exception:  # Note: e.g. its module is not importable here; compile instead
            return None

    def save_overload(self, sig: Any, data: Any) -> None:
        try:
            super().save_overload(sig, data)
            diskcache.write_manifest(self._folder, self._stem)
        except Exception:  # Note: the cache only saves time; a failed save costs a compile later
            return
