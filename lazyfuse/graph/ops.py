"""The op table: one row per op, holding everything lazyfuse knows about it.

A row gives the op's arity, its NumPy reference (the meaning, used by the reference
interpreter and for dtype rules), its scalar source for the CPU target (which the CUDA
target shares), per dtype kind ('b' bool, 'i' integer, 'f' float; '' is the fallback)
or per dtype ('i32', looked up before its kind), its fast-math source, its cost for the
fusion rule and its public names. In scalar source, ``{0}``, ``{1}``, ``{2}`` are the
operands, ``{T}`` the output's NumPy type name and ``{K}`` the helper suffix of the loop
dtype (``i`` for integers, ``f32``/``f64``). Helper functions named in a template
(``floor_divide_i``) are emitted by codegen. Adding an elementwise op is adding its
member and its row: the rest of lazyfuse reads them from here.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
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
    EXP2 = enum.auto()
    EXPM1 = enum.auto()
    LOG = enum.auto()
    LOG2 = enum.auto()
    LOG10 = enum.auto()
    LOG1P = enum.auto()
    SQRT = enum.auto()
    SQUARE = enum.auto()
    RECIPROCAL = enum.auto()
    SIN = enum.auto()
    COS = enum.auto()
    TANH = enum.auto()
    ARCSIN = enum.auto()
    ARCCOS = enum.auto()
    ARCTAN = enum.auto()
    SINH = enum.auto()
    COSH = enum.auto()
    ERF = enum.auto()
    SIGMOID = enum.auto()
    RELU = enum.auto()
    FLOOR = enum.auto()
    CEIL = enum.auto()
    TRUNC = enum.auto()
    RINT = enum.auto()
    SIGN = enum.auto()
    ISNAN = enum.auto()
    ISINF = enum.auto()
    ISFINITE = enum.auto()
    CAST = enum.auto()
    ADD = enum.auto()
    SUB = enum.auto()
    MUL = enum.auto()
    TRUEDIV = enum.auto()
    FLOORDIV = enum.auto()
    MOD = enum.auto()
    POW = enum.auto()
    ARCTAN2 = enum.auto()
    HYPOT = enum.auto()
    LOGADDEXP = enum.auto()
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
    LEFT_SHIFT = enum.auto()
    RIGHT_SHIFT = enum.auto()
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
    # computed on the host by a NumPy function, in a step of its own (joins, pads)
    HOST = enum.auto()
    # a running fold along one axis (cumsum, cumprod): attrs (reduction op, axis)
    SCAN = enum.auto()
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


# Cost of an op in the fusion rule (fuse.cost), in units of a cheap arithmetic op: a math
# function, a division or a user function is EXPENSIVE_COST (recomputed in no second kernel).
EXPENSIVE_COST = 8


@dataclass(frozen=True)
class ElementwiseRow:
    """An elementwise op: ``name`` is the NumPy-facing name used in messages.

    Invariant: the row is all lazyfuse needs to know of the op; the public functions
    (``public``), Tensor methods (``methods``), operators (``operator``), the fusion
    cost and the fast-math template are read from it. The exceptions, written by hand
    (Python's arithmetic operators in tensor.py; where, astype, round, clip), are listed
    by tests/test_op_table.py, which keeps it so.
    """

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
    # the names of lazyfuse's functions for it (lazyfuse.functions makes them; the first
    # is the function's __name__), of the Tensor methods, and the Python operator
    # (``"lshift"``: ``x << y`` and ``y << x``) attached from this table
    public: tuple[str, ...] = ()
    methods: tuple[str, ...] = ()
    operator: str = ""
    cost: int = 1
    # the float loops' template under LAZYFUSE_MATH=fast: names ``<fn>_{K}`` are
    # lazyfuse.runtime.fastmath's vectorizable functions (codegen imports what it calls)
    fast: str | None = None


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


_ERF = np.vectorize(math.erf, otypes=[np.float64])


def _erf(x: np.ndarray) -> np.ndarray:
    """The error function (no NumPy ufunc has it: math.erf per element), in the dtype
    np.sin gives x: its dtype rule is sin's."""
    x = np.asarray(x)
    return _ERF(x).astype(np.sin(np.zeros(0, x.dtype)).dtype)  # type: ignore[no-any-return]


def _nonnegative_integer_exponent(loop: tuple[np.dtype, ...], exponent: Any) -> None:
    if loop[1].kind == "i" and np.any(np.asarray(exponent) < 0):
        raise DomainError("power: Integers to negative integer powers are not allowed.")


def _row(
    name: str,
    ufunc: np.ufunc,
    cpu: str | dict[str, str],
    precondition: Callable[..., None] | None = None,
    public: tuple[str, ...] | None = None,
    **fields: Any,
) -> ElementwiseRow:
    """A row whose meaning and dtype rule are NumPy's ``ufunc``; public as ``name``
    unless ``public`` says otherwise."""
    templates = {"": cpu} if isinstance(cpu, str) else cpu
    names = (name,) if public is None else public
    return ElementwiseRow(
        name,
        ufunc.nin,
        ufunc,
        templates,
        ufunc,
        precondition=precondition,
        checked_arg=1,
        public=names,
        **fields,
    )


def _math(name: str, ufunc: np.ufunc, fast: bool = False, libm: str | None = None) -> ElementwiseRow:
    """A float function: NumPy's ``np.<name>`` in the kernel (Numba calls the C library's,
    or an LLVM intrinsic), or ``libm`` (a helper: where the CUDA target lacks NumPy's), or
    fastmath's ``<name>_f32``/``<name>_f64`` under fast math."""
    args = ", ".join(f"{{{i}}}" for i in range(ufunc.nin))
    template = f"{name}_{{K}}({args})" if fast else None
    return _row(name, ufunc, f"{libm or 'np.' + name}({args})", cost=EXPENSIVE_COST, fast=template)


def _rounding(name: str, ufunc: np.ufunc) -> ElementwiseRow:
    """floor, ceil, trunc: an LLVM intrinsic on floats; integers and bools stay as they are."""
    return _row(name, ufunc, {"f": f"np.{name}({{0}})", "": "{0}"})


# Note: logaddexp as NumPy's npy_logaddexp: x == y first (equal infinities give no NaN),
# then the larger plus log1p(exp(-|x - y|)); a NaN in either gives NaN.
_LOGADDEXP = "{0} + {T}(0.6931471805599453) if {0} == {1} else ({0} if {0} > {1} else {1}) + "
_LOGADDEXP_LIBM = _LOGADDEXP + "libm_log1p_f(np.exp(-abs({0} - {1})))"
_LOGADDEXP_FAST = _LOGADDEXP + "log1p_{K}(exp_{K}(-abs({0} - {1})))"

ELEMENTWISE: dict[Op, ElementwiseRow] = {
    Op.NEG: _row("negative", np.negative, "-{0}"),
    Op.ABS: _row(
        "absolute", np.absolute, {"": "abs({0})", "b": "{0}"}, public=("abs", "absolute"), methods=("abs",)
    ),
    Op.INVERT: _row("invert", np.invert, {"": "~{0}", "b": "not {0}"}, public=("invert", "bitwise_not")),
    Op.EXP: replace(_math("exp", np.exp, fast=True), methods=("exp",)),
    Op.EXP2: _math("exp2", np.exp2, fast=True),
    Op.EXPM1: _math("expm1", np.expm1, fast=True, libm="libm_expm1_f"),
    Op.LOG: replace(_math("log", np.log, fast=True), methods=("log",)),
    Op.LOG2: _math("log2", np.log2, fast=True),
    Op.LOG10: _math("log10", np.log10, fast=True),
    Op.LOG1P: _math("log1p", np.log1p, fast=True, libm="libm_log1p_f"),
    Op.SQRT: replace(_math("sqrt", np.sqrt), methods=("sqrt",)),
    Op.SQUARE: _row("square", np.square, "{0} * {0}"),
    Op.RECIPROCAL: _row(
        # Note: NumPy's integer loop converts 1.0 / x back: 1 and -1 stay, others give 0, and
        # 0 gives what x86 makes of inf, the type's lowest value
        "reciprocal",
        np.reciprocal,
        {
            "f": "{T}(1) / {0}",
            "i32": "reciprocal_i({0}, -2147483648)",
            "i64": "reciprocal_i({0}, -9223372036854775808)",
        },
        cost=EXPENSIVE_COST,
    ),
    Op.SIN: replace(_math("sin", np.sin, fast=True), methods=("sin",)),
    Op.COS: replace(_math("cos", np.cos, fast=True), methods=("cos",)),
    Op.TANH: replace(_math("tanh", np.tanh, fast=True), methods=("tanh",)),
    Op.ARCSIN: _math("arcsin", np.arcsin),
    Op.ARCCOS: _math("arccos", np.arccos),
    Op.ARCTAN: _math("arctan", np.arctan),
    Op.SINH: _math("sinh", np.sinh, fast=True),
    Op.COSH: _math("cosh", np.cosh, fast=True),
    # the C library's erf (not vectorized), with sin's dtype rule
    Op.ERF: ElementwiseRow(
        "erf", 1, _erf, {"": "math.erf({0})"}, np.sin, public=("erf",), cost=EXPENSIVE_COST
    ),
    Op.SIGMOID: ElementwiseRow(
        "sigmoid",
        1,
        _sigmoid,
        {"": "{T}(1) / ({T}(1) + np.exp(-{0}))"},
        np.exp,
        public=("sigmoid",),
        methods=("sigmoid",),
        cost=EXPENSIVE_COST,
        fast="sigmoid_{K}({0})",
    ),
    Op.RELU: ElementwiseRow(
        # Note: maximum(x, 0): -0.0 gives 0.0 (as NumPy's), NaN stays NaN (NaN <= 0 is False)
        "relu",
        1,
        _relu,
        {"": "{T}(0) if {0} <= 0 else {0}"},
        np.maximum,
        weak_operand=int,
        public=("relu",),
        methods=("relu",),
    ),
    Op.FLOOR: _rounding("floor", np.floor),
    Op.CEIL: _rounding("ceil", np.ceil),
    Op.TRUNC: _rounding("trunc", np.trunc),
    # half to even (llvm.rint in the default rounding mode); lazyfuse.round is built on it
    Op.RINT: _row("rint", np.rint, "np.rint({0})"),
    Op.SIGN: _row(
        # Note: NumPy's sign(-0.0) is 0.0 and sign(NaN) NaN: the rest + 0.0 gives both
        "sign",
        np.sign,
        {
            "f": "{T}(1) if {0} > 0 else ({T}(-1) if {0} < 0 else {0} + {T}(0))",
            "i": "{T}(1) if {0} > 0 else ({T}(-1) if {0} < 0 else {T}(0))",
        },
    ),
    Op.ISNAN: _row("isnan", np.isnan, {"f": "{0} != {0}", "": "False"}),
    Op.ISINF: _row("isinf", np.isinf, {"f": "abs({0}) == np.inf", "": "False"}),
    Op.ISFINITE: _row("isfinite", np.isfinite, {"f": "abs({0}) < np.inf", "": "True"}),
    Op.ADD: _row("add", np.add, {"": "{0} + {1}", "b": "{0} or {1}"}),
    Op.SUB: _row("subtract", np.subtract, "{0} - {1}"),
    Op.MUL: _row("multiply", np.multiply, {"": "{0} * {1}", "b": "{0} and {1}"}),
    Op.TRUEDIV: _row(
        "divide", np.true_divide, "{0} / {1}", public=("divide", "true_divide"), cost=EXPENSIVE_COST
    ),
    Op.FLOORDIV: _row("floor_divide", np.floor_divide, "floor_divide_{K}({0}, {1})", cost=EXPENSIVE_COST),
    Op.MOD: _row(
        "remainder", np.remainder, "remainder_{K}({0}, {1})", public=("remainder", "mod"), cost=EXPENSIVE_COST
    ),
    Op.POW: _row(
        # Note: pow stays the C library's under fast math: fastmath's pow_f64 is faster
        # (bench_math.py --only pow, its `fastmath loop` row), but its inlined double-double
        # code made kernels with many pows compile several times longer (measured on
        # tests/test_elementwise.py::test_every_dtype_pair_matches_numpy[power]; see
        # benchmarks/README.md). Small constant exponents never get here (build.elementwise).
        "power",
        np.power,
        {"i": "power_i({0}, {1})", "f": "np.power({0}, {1})"},
        precondition=_nonnegative_integer_exponent,
        cost=EXPENSIVE_COST,
    ),
    Op.ARCTAN2: _math("arctan2", np.arctan2),
    Op.HYPOT: _math("hypot", np.hypot),
    Op.LOGADDEXP: _row(
        "logaddexp",
        np.logaddexp,
        _LOGADDEXP_LIBM,
        cost=EXPENSIVE_COST,
        fast=_LOGADDEXP_FAST,
    ),
    Op.MAXIMUM: _row(
        "maximum",
        np.maximum,
        {"f": "maximum_f({0}, {1})", "i": "max({0}, {1})", "b": "{0} or {1}"},
        methods=("maximum",),
    ),
    Op.MINIMUM: _row(
        "minimum",
        np.minimum,
        {"f": "minimum_f({0}, {1})", "i": "min({0}, {1})", "b": "{0} and {1}"},
        methods=("minimum",),
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
    # NumPy's shifts: a count outside [0, bits) gives 0 (or -1 for a negative x >> n)
    Op.LEFT_SHIFT: _row("left_shift", np.left_shift, "left_shift_i({0}, {1})", operator="lshift"),
    Op.RIGHT_SHIFT: _row("right_shift", np.right_shift, "right_shift_i({0}, {1})", operator="rshift"),
    # where and astype take other arguments than tensors: lazyfuse.functions writes them
    Op.WHERE: ElementwiseRow("where", 3, np.where, {"": "{1} if {0} else {2}"}, public=("where",)),
    Op.CAST: ElementwiseRow("astype", 1, lambda x: x, {"": "{T}({0})", "b": "{0} != 0"}, public=("astype",)),
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
    """The template for ``dtype`` itself (``i32``), else for its kind, else the fallback ``''``."""
    exact = templates.get(f"{dtype.kind}{dtype.itemsize * 8}")
    return exact if exact is not None else templates.get(kind(dtype), templates.get("", ""))
