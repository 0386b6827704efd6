"""Supported dtypes and NumPy 2 (NEP 50) promotion.

Note: promotion is asked of NumPy itself (``ufunc.resolve_dtypes``), so lazyfuse
follows NumPy's rules exactly instead of keeping a copy of its tables.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from lazyfuse.errors import DTypeError

SUPPORTED = tuple(np.dtype(d) for d in ("bool", "int32", "int64", "float32", "float64"))
SHORT_NAMES = {
    np.dtype("bool"): "b1",
    np.dtype("int32"): "i32",
    np.dtype("int64"): "i64",
    np.dtype("float32"): "f32",
    np.dtype("float64"): "f64",
}
Scalar = bool | int | float
Weak = type[bool] | type[int] | type[float]
DTypeLike = np.dtype | Weak


def supported_names() -> str:
    return ", ".join(d.name for d in SUPPORTED)


def check_supported(dtype: Any, what: str) -> np.dtype:
    """Return ``dtype`` as a numpy dtype, or raise a DTypeError naming ``what``."""
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise DTypeError(f"{what}: {dtype!r} is not a dtype; supported: {supported_names()}") from exc
    if dt not in SUPPORTED:
        raise DTypeError(f"{what}: dtype {dt} is not supported by lazyfuse; supported: {supported_names()}")
    return dt


def short(dtype: np.dtype) -> str:
    return SHORT_NAMES[dtype]


def weak_type(value: Scalar) -> DTypeLike:
    """The NEP 50 type of a Python scalar: ``int`` and ``float`` are weak; a Python
    bool is NumPy's bool (the lowest kind, so it never promotes an array)."""
    if isinstance(value, bool):
        return np.dtype(bool)
    if isinstance(value, int):
        return int
    return float


@functools.lru_cache(maxsize=4096)
def resolve_ufunc(ufunc: np.ufunc, name: str, operands: tuple[DTypeLike, ...]) -> tuple[np.dtype, ...]:
    """Loop dtypes ``(*inputs, output)`` NumPy picks for ``ufunc`` on these operands.

    Python scalar operands are passed as their type (``int``, ``float``) and are weak.
    Raises DTypeError where NumPy has no loop or picks a dtype lazyfuse lacks (float16).
    Cached: it runs on every op a user writes.
    """
    try:
        loop = ufunc.resolve_dtypes((*operands, None))
    except (TypeError, np.exceptions.DTypePromotionError) as exc:
        raise DTypeError(f"{name}: NumPy has no {name} for ({_described(operands)}): {exc}") from exc
    for dt in loop:
        if dt not in SUPPORTED:
            raise DTypeError(
                f"{name}: for ({_described(operands)}) NumPy would compute in {dt}, which lazyfuse "
                f"does not support; cast first, e.g. x.astype('float32')"
            )
    return tuple(loop)


def _described(operands: tuple[DTypeLike, ...]) -> str:
    return ", ".join(_describe(o) for o in operands)


def result_type(name: str, *operands: DTypeLike) -> np.dtype:
    """NumPy's ``result_type`` with weak Python scalar types, restricted to supported dtypes."""
    try:
        dt = np.result_type(*[_weak_example(o) for o in operands])
    except (TypeError, np.exceptions.DTypePromotionError) as exc:
        raise DTypeError(f"{name}: cannot promote {operands}: {exc}") from exc
    return check_supported(dt, name)


def scalar_as(value: Scalar, dtype: np.dtype, name: str) -> Scalar:
    """``value`` converted to ``dtype`` as NumPy would for a weak operand (may overflow)."""
    try:
        converted = np.asarray(value, dtype=dtype)
    except OverflowError as exc:
        raise DTypeError(f"{name}: Python scalar {value!r} does not fit {dtype}: {exc}") from exc
    return converted.item()  # type: ignore[no-any-return]


def _weak_example(o: DTypeLike) -> Any:
    examples: dict[Any, Any] = {bool: False, int: 0, float: 0.0}
    return examples.get(o, o)


def _describe(o: DTypeLike) -> str:
    return f"Python {o.__name__}" if isinstance(o, type) else str(o)


@functools.lru_cache(maxsize=1024)
def dtype_rule_from_reference(reference: Callable[..., Any], *dtypes: np.dtype) -> np.dtype:
    """The dtype NumPy's own function gives on one-element arrays of these dtypes
    (cached: it runs for every reduction a user writes)."""
    return np.asarray(reference(*[np.zeros(1, d) for d in dtypes])).dtype
