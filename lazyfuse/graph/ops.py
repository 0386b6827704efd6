"""The op table: one row per op, holding everything lazyfuse knows about it.

A row gives the op's arity, its NumPy reference (the meaning, used by the reference
interpreter and for dtype rules) and its scalar source for the CPU target, per dtype
kind ('b' bool, 'i' integer, 'f' float; '' is the fallback). In scalar source,
``{0}``, ``{1}``, ``{2}`` are the operands, ``{T}`` the output's NumPy type name and
``{K}`` the helper suffix of the loop dtype (``i`` for integers, ``f32``/``f64``).
Helper functions named in a template (``floor_divide_i``) are emitted by codegen.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from lazyfuse.errors import DomainError


class Op(enum.Enum):
    # Note: members are singletons; hashing by identity (in C) keeps graph building fast.
    __hash__ = object.__hash__

    # leaves
    INPUT = enum.auto()
    SCALAR = enum.auto()
    # elementwise
    NEG = enum.auto()
    ABS = enum.auto()
    INVERT = enum.auto()
    EXP = enum.auto()
    LOG = enum.auto()
    SQRT = enum.auto()
    SIN = enum.auto()
    COS = enum.auto()
    TANH = enum.auto()
    SIGMOID = enum.auto()
    RELU = enum.auto()
    CAST = enum.auto()
    ADD = enum.auto()
    SUB = enum.auto()
    MUL = enum.auto()
    TRUEDIV = enum.auto()
    FLOORDIV = enum.auto()
    MOD = enum.auto()
    POW = enum.auto()
    MAXIMUM = enum.auto()
    MINIMUM = enum.auto()
    LT = enum.auto()
    LE = enum.auto()
    GT = enum.auto()
    GE = enum.auto()
    EQ = enum.auto()
    NE = enum.auto()
    AND = enum.auto()
    OR = enum.auto()
    XOR = enum.auto()
    WHERE = enum.auto()
    MAP = enum.auto()
    ZIP = enum.auto()
    # reductions
    SUM = enum.auto()
    PROD = enum.auto()
    MAX = enum.auto()
    MIN = enum.auto()
    REDUCE = enum.auto()
    # index space: the position along one axis of the node's shape (arange, eye, tril)
    IOTA = enum.auto()
    # a load at computed indices (integer-array indexing, take, take_along_axis)
    GATHER = enum.auto()
    # computed on the host by a NumPy function, in a step of its own (scans, joins)
    HOST = enum.auto()
    # contraction
    MATMUL = enum.auto()
    # views (never copy)
    RESHAPE = enum.auto()
    PERMUTE = enum.auto()
    EXPAND = enum.auto()
    INDEX = enum.auto()


LEAVES = frozenset({Op.INPUT, Op.SCALAR})
USER_ELEMENTWISE = frozenset({Op.MAP, Op.ZIP})
REDUCTIONS = frozenset({Op.SUM, Op.PROD, Op.MAX, Op.MIN, Op.REDUCE})
VIEWS = frozenset({Op.RESHAPE, Op.PERMUTE, Op.EXPAND, Op.INDEX})


@dataclass(frozen=True)
class ElementwiseRow:
    """An elementwise op: ``name`` is the NumPy-facing name used in messages."""

    name: str
    arity: int
    reference: Callable[..., Any]
    cpu: Mapping[str, str]
    # the ufunc whose loop dtypes define this op's dtype rule
    ufunc: np.ufunc | None = None
    # extra weak Python operand the dtype rule sees (relu is maximum(x, 0))
    weak_operand: type | None = None
    # ``precondition(loop_dtypes, value)`` raises the errors NumPy raises on the values
    # of operand ``checked_arg``: on a scalar when built, on an array before the kernel
    # runs (a kernel cannot raise from inside a prange loop), so that operand is stored
    precondition: Callable[[tuple[np.dtype, ...], Any], None] | None = None
    checked_arg: int = 0


@dataclass(frozen=True)
class ReductionRow:
    """A built-in reduction: its NumPy reference, identity and combine source per kind."""

    name: str
    reference: Callable[..., Any]
    identity: Mapping[str, str]
    combine: Mapping[str, str]
    # reductions without an identity refuse empty axes, as NumPy does
    refuses_empty: bool = False


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))  # type: ignore[no-any-return]


def _relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0)


def _nonnegative_integer_exponent(loop: tuple[np.dtype, ...], exponent: Any) -> None:
    if loop[1].kind == "i" and np.any(np.asarray(exponent) < 0):
        raise DomainError("power: Integers to negative integer powers are not allowed.")


def _row(
    name: str, ufunc: np.ufunc, cpu: str | dict[str, str], precondition: Callable[..., None] | None = None
) -> ElementwiseRow:
    templates = {"": cpu} if isinstance(cpu, str) else cpu
    return ElementwiseRow(name, ufunc.nin, ufunc, templates, ufunc, precondition=precondition, checked_arg=1)


ELEMENTWISE: dict[Op, ElementwiseRow] = {
    Op.NEG: _row("negative", np.negative, "-{0}"),
    Op.ABS: _row("absolute", np.absolute, {"": "abs({0})", "b": "{0}"}),
    Op.INVERT: _row("invert", np.invert, {"": "~{0}", "b": "not {0}"}),
    Op.EXP: _row("exp", np.exp, "np.exp({0})"),
    Op.LOG: _row("log", np.log, "np.log({0})"),
    Op.SQRT: _row("sqrt", np.sqrt, "np.sqrt({0})"),
    Op.SIN: _row("sin", np.sin, "np.sin({0})"),
    Op.COS: _row("cos", np.cos, "np.cos({0})"),
    Op.TANH: _row("tanh", np.tanh, "np.tanh({0})"),
    Op.SIGMOID: ElementwiseRow("sigmoid", 1, _sigmoid, {"": "{T}(1) / ({T}(1) + np.exp(-{0}))"}, np.exp),
    Op.RELU: ElementwiseRow(
        # Note: maximum(x, 0): -0.0 gives 0.0 (as NumPy's), NaN stays NaN (NaN <= 0 is False)
        "relu",
        1,
        _relu,
        {"": "{T}(0) if {0} <= 0 else {0}"},
        np.maximum,
        weak_operand=int,
    ),
    Op.ADD: _row("add", np.add, {"": "{0} + {1}", "b": "{0} or {1}"}),
    Op.SUB: _row("subtract", np.subtract, "{0} - {1}"),
    Op.MUL: _row("multiply", np.multiply, {"": "{0} * {1}", "b": "{0} and {1}"}),
    Op.TRUEDIV: _row("divide", np.true_divide, "{0} / {1}"),
    Op.FLOORDIV: _row("floor_divide", np.floor_divide, "floor_divide_{K}({0}, {1})"),
    Op.MOD: _row("remainder", np.remainder, "remainder_{K}({0}, {1})"),
    Op.POW: _row(
        "power",
        np.power,
        {"i": "power_i({0}, {1})", "f": "np.power({0}, {1})"},
        precondition=_nonnegative_integer_exponent,
    ),
    Op.MAXIMUM: _row(
        "maximum", np.maximum, {"f": "maximum_f({0}, {1})", "i": "max({0}, {1})", "b": "{0} or {1}"}
    ),
    Op.MINIMUM: _row(
        "minimum", np.minimum, {"f": "minimum_f({0}, {1})", "i": "min({0}, {1})", "b": "{0} and {1}"}
    ),
    Op.LT: _row("less", np.less, "{0} < {1}"),
    Op.LE: _row("less_equal", np.less_equal, "{0} <= {1}"),
    Op.GT: _row("greater", np.greater, "{0} > {1}"),
    Op.GE: _row("greater_equal", np.greater_equal, "{0} >= {1}"),
    Op.EQ: _row("equal", np.equal, "{0} == {1}"),
    Op.NE: _row("not_equal", np.not_equal, "{0} != {1}"),
    Op.AND: _row("bitwise_and", np.bitwise_and, {"": "{0} & {1}", "b": "{0} and {1}"}),
    Op.OR: _row("bitwise_or", np.bitwise_or, {"": "{0} | {1}", "b": "{0} or {1}"}),
    Op.XOR: _row("bitwise_xor", np.bitwise_xor, {"": "{0} ^ {1}", "b": "{0} != {1}"}),
    Op.WHERE: ElementwiseRow("where", 3, np.where, {"": "{1} if {0} else {2}"}),
    Op.CAST: ElementwiseRow("astype", 1, lambda x: x, {"": "{T}({0})", "b": "{0} != 0"}),
}

REDUCTION: dict[Op, ReductionRow] = {
    Op.SUM: ReductionRow(
        "sum", np.sum, {"": "{T}(0)", "b": "False"}, {"": "{acc} + {x}", "b": "{acc} or {x}"}
    ),
    Op.PROD: ReductionRow(
        "prod", np.prod, {"": "{T}(1)", "b": "True"}, {"": "{acc} * {x}", "b": "{acc} and {x}"}
    ),
    Op.MAX: ReductionRow(
        "max",
        np.max,
        {"f": "{T}(-np.inf)", "i": "{T}({LOWEST})", "b": "False"},
        {"f": "maximum_f({acc}, {x})", "i": "max({acc}, {x})", "b": "{acc} or {x}"},
        refuses_empty=True,
    ),
    Op.MIN: ReductionRow(
        "min",
        np.min,
        {"f": "{T}(np.inf)", "i": "{T}({HIGHEST})", "b": "True"},
        {"f": "minimum_f({acc}, {x})", "i": "min({acc}, {x})", "b": "{acc} and {x}"},
        refuses_empty=True,
    ),
}


def kind(dtype: np.dtype) -> str:
    """'b', 'i' or 'f': the key of the per-kind templates."""
    return {"b": "b", "i": "i", "f": "f"}[dtype.kind]


def pick(templates: Mapping[str, str], dtype: np.dtype) -> str:
    """The template for ``dtype``'s kind, else the fallback ``''``."""
    return templates.get(kind(dtype), templates.get("", ""))
