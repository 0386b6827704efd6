"""User scalar functions (lf.map, lf.zip, lf.reduce): compiled and typed by Numba when
the expression is built, so a function Numba cannot compile fails at the user's line."""

from __future__ import annotations

import inspect
from typing import Any

import numba
import numpy as np
from numba.core import errors as numba_errors
from numba.np.numpy_support import as_dtype, from_dtype

from lazyfuse.errors import UserFunctionError
from lazyfuse.graph import dtypes
from lazyfuse.graph.build import UserFunction

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
            user = UserFunction(fn, numba.njit(fn), getattr(fn, "__name__", "fn"))
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
