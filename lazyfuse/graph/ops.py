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
    TAN = enum.auto()
    SINH = enum.auto()
    COSH = enum.auto()
    ARCSINH = enum.auto()
    ARCCOSH = enum.auto()
    ARCTANH = enum.auto()
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
    SIGNBIT = enum.auto()
    LOGICAL_NOT = enum.auto()
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
    COPYSIGN = enum.auto()
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
    LOGICAL_AND = enum.auto()
    LOGICAL_OR = enum.auto()
    LOGICAL_XOR = enum.auto()
    LEFT_SHIFT = enum.auto()
    RIGHT_SHIFT = enum.auto()
    WHERE = enum.auto()
    # the value of its argument: stop_gradient, or a differentiated argument (attrs[1])
    IDENTITY = enum.auto()
    MAP = enum.auto()
    ZIP = enum.auto()
    # reductions
    SUM = enum.auto()
    PROD = enum.auto()
    MAX = enum.auto()
    MIN = enum.auto()
    # the first index of the largest / smallest element (one pass: a value and an index)
    ARGMAX = enum.auto()
    ARGMIN = enum.auto()
    REDUCE = enum.auto()
    # index space: the position along one axis of the node's shape (arange, eye, tril)
    IOTA = enum.auto()
    # a load at computed indices (integer-array indexing, take, take_along_axis)
    GATHER = enum.auto()
    # a gather's gradient: its values added into a zero table at the gather's indices
    # (np.add.at; repeated indices accumulate). attrs (the gather's axes,)
    SCATTER_ADD = enum.auto()
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
REDUCTIONS = frozenset({Op.SUM, Op.PROD, Op.MAX, Op.MIN, Op.ARGMAX, Op.ARGMIN, Op.REDUCE})
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
    # the partial derivatives: ``grad(f, out, *operands)`` gives one per operand, built
    # from tensors with lazyfuse's functions ``f`` (lazyfuse.functions): a tensor, a bool
    # tensor (a mask: the cotangent where true, 0 elsewhere) or a Python number (0: no
    # cotangent). lazyfuse/autodiff.py multiplies each by the cotangent (see there).
    grad: Callable[..., tuple[Any, ...]] | None = None


@dataclass(frozen=True)
class ReductionRow:
    """A built-in reduction: its NumPy reference, identity and combine source per kind."""

    name: str
    reference: Callable[..., Any]
    identity: Mapping[str, str]
    combine: Mapping[str, str]
    # reductions without an identity refuse empty axes, as NumPy does
    refuses_empty: bool = False
    # ``grad(f, g, out, x, axes)``: the cotangent of ``x`` from the cotangent ``g`` of
    # ``out`` (both with the reduced axes kept, of size 1); ``f`` is lazyfuse.functions
    grad: Callable[..., Any] | None = None
    # an arg reduction's: the reduction whose extreme it finds (its identity starts the
    # best value) and the comparison that makes an element better ('>' or '<')
    extreme: Op | None = None
    better: str = ""


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


def _math(
    name: str,
    ufunc: np.ufunc,
    grad: Callable[..., tuple[Any, ...]],
    fast: bool = False,
    libm: str | None = None,
) -> ElementwiseRow:
    """A float function: NumPy's ``np.<name>`` in the kernel (Numba calls the C library's,
    or an LLVM intrinsic), or ``libm`` (a helper: where the CUDA target lacks NumPy's), or
    fastmath's ``<name>_f32``/``<name>_f64`` under fast math."""
    args = ", ".join(f"{{{i}}}" for i in range(ufunc.nin))
    template = f"{name}_{{K}}({args})" if fast else None
    source = f"{libm or 'np.' + name}({args})"
    return _row(name, ufunc, source, cost=EXPENSIVE_COST, fast=template, grad=grad)


def _rounding(name: str, ufunc: np.ufunc) -> ElementwiseRow:
    """floor, ceil, trunc: an LLVM intrinsic on floats; integers and bools stay as they are."""
    return _row(name, ufunc, {"f": f"np.{name}({{0}})", "": "{0}"}, grad=_zero)


# Partial derivatives (ElementwiseRow.grad) -------------------------------------------


def _zero(f: Any, out: Any, *operands: Any) -> tuple[int, ...]:
    """No cotangent for any operand: comparisons, integer and bool ops, rounding."""
    return (0,) * len(operands)


_LN2, _LN10 = math.log(2), math.log(10)
_TWO_OVER_SQRT_PI = 2 / math.sqrt(math.pi)


def _power_grad(f: Any, out: Any, x: Any, y: Any) -> tuple[Any, Any]:
    """d/dx = y x^(y-1), 0 where y is 0 (0^-1 is inf there); d/dy = x^y log x, 0 where x
    is 0 (as JAX: a base of 0 contributes nothing through the exponent)."""
    by_base = f.where(y == 0, 0, y * f.power(x, y - 1))
    by_exponent = out * f.log(f.where(x == 0, 1, x))
    return by_base, by_exponent


def _identity_grad(f: Any, out: Any, x: Any) -> tuple[int]:
    """stop_gradient passes no cotangent; a differentiated argument passes it on."""
    return (0,) if out.node.attrs[1] == "stop" else (1,)


def _extreme_grad(larger: bool) -> Callable[..., tuple[Any, Any]]:
    """maximum (``larger``) or minimum: the cotangent goes to the operand chosen; on a tie
    half to each (as JAX)."""

    def grad(f: Any, out: Any, x: Any, y: Any) -> tuple[Any, Any]:
        tie = f.where(x == y, 0.5, 0)
        wins = (x > y) if larger else (x < y)
        loses = (x < y) if larger else (x > y)
        return f.where(wins, 1, tie), f.where(loses, 1, tie)

    return grad


# Note: logaddexp as NumPy's npy_logaddexp: x == y first (equal infinities give no NaN),
# then the larger plus log1p(exp(-|x - y|)); a NaN in either gives NaN.
_LOGADDEXP = "{0} + {T}(0.6931471805599453) if {0} == {1} else ({0} if {0} > {1} else {1}) + "
_LOGADDEXP_LIBM = _LOGADDEXP + "libm_log1p_f(np.exp(-abs({0} - {1})))"
_LOGADDEXP_FAST = _LOGADDEXP + "log1p_{K}(exp_{K}(-abs({0} - {1})))"

ELEMENTWISE: dict[Op, ElementwiseRow] = {
    Op.NEG: _row("negative", np.negative, "-{0}", grad=lambda f, out, x: (-1,)),
    Op.ABS: _row(
        "absolute",
        np.absolute,
        {"": "abs({0})", "b": "{0}"},
        public=("abs", "absolute"),
        methods=("abs",),
        grad=lambda f, out, x: (f.sign(x),),
    ),
    Op.INVERT: _row(
        "invert", np.invert, {"": "~{0}", "b": "not {0}"}, public=("invert", "bitwise_not"), grad=_zero
    ),
    Op.EXP: replace(_math("exp", np.exp, lambda f, out, x: (out,), fast=True), methods=("exp",)),
    Op.EXP2: _math("exp2", np.exp2, lambda f, out, x: (out * _LN2,), fast=True),
    Op.EXPM1: _math("expm1", np.expm1, lambda f, out, x: (out + 1,), fast=True, libm="libm_expm1_f"),
    Op.LOG: replace(_math("log", np.log, lambda f, out, x: (1 / x,), fast=True), methods=("log",)),
    Op.LOG2: _math("log2", np.log2, lambda f, out, x: (1 / (x * _LN2),), fast=True),
    Op.LOG10: _math("log10", np.log10, lambda f, out, x: (1 / (x * _LN10),), fast=True),
    Op.LOG1P: _math("log1p", np.log1p, lambda f, out, x: (1 / (x + 1),), fast=True, libm="libm_log1p_f"),
    Op.SQRT: replace(_math("sqrt", np.sqrt, lambda f, out, x: (0.5 / out,)), methods=("sqrt",)),
    Op.SQUARE: _row("square", np.square, "{0} * {0}", grad=lambda f, out, x: (2 * x,)),
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
        grad=lambda f, out, x: (-out * out,),
    ),
    Op.SIN: replace(_math("sin", np.sin, lambda f, out, x: (f.cos(x),), fast=True), methods=("sin",)),
    Op.COS: replace(_math("cos", np.cos, lambda f, out, x: (-f.sin(x),), fast=True), methods=("cos",)),
    Op.TANH: replace(
        _math("tanh", np.tanh, lambda f, out, x: (1 - out * out,), fast=True), methods=("tanh",)
    ),
    Op.ARCSIN: _math("arcsin", np.arcsin, lambda f, out, x: (1 / f.sqrt(1 - x * x),)),
    Op.ARCCOS: _math("arccos", np.arccos, lambda f, out, x: (-1 / f.sqrt(1 - x * x),)),
    Op.ARCTAN: _math("arctan", np.arctan, lambda f, out, x: (1 / (1 + x * x),)),
    Op.TAN: _math("tan", np.tan, lambda f, out, x: (1 + out * out,)),
    Op.SINH: _math("sinh", np.sinh, lambda f, out, x: (f.cosh(x),), fast=True),
    Op.COSH: _math("cosh", np.cosh, lambda f, out, x: (f.sinh(x),), fast=True),
    Op.ARCSINH: _math("arcsinh", np.arcsinh, lambda f, out, x: (1 / f.sqrt(x * x + 1),)),
    Op.ARCCOSH: _math("arccosh", np.arccosh, lambda f, out, x: (1 / (f.sqrt(x - 1) * f.sqrt(x + 1)),)),
    Op.ARCTANH: _math("arctanh", np.arctanh, lambda f, out, x: (1 / (1 - x * x),)),
    # the C library's erf (not vectorized), with sin's dtype rule
    Op.ERF: ElementwiseRow(
        "erf",
        1,
        _erf,
        {"": "math.erf({0})"},
        np.sin,
        public=("erf",),
        cost=EXPENSIVE_COST,
        grad=lambda f, out, x: (_TWO_OVER_SQRT_PI * f.exp(-x * x),),
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
        grad=lambda f, out, x: (out * (1 - out),),
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
        grad=lambda f, out, x: (x > 0,),
    ),
    Op.FLOOR: _rounding("floor", np.floor),
    Op.CEIL: _rounding("ceil", np.ceil),
    Op.TRUNC: _rounding("trunc", np.trunc),
    # half to even (llvm.rint in the default rounding mode); lazyfuse.round is built on it
    Op.RINT: _row("rint", np.rint, "np.rint({0})", grad=_zero),
    Op.SIGN: _row(
        # Note: NumPy's sign(-0.0) is 0.0 and sign(NaN) NaN: the rest + 0.0 gives both
        "sign",
        np.sign,
        {
            "f": "{T}(1) if {0} > 0 else ({T}(-1) if {0} < 0 else {0} + {T}(0))",
            "i": "{T}(1) if {0} > 0 else ({T}(-1) if {0} < 0 else {T}(0))",
        },
        grad=_zero,
    ),
    Op.ISNAN: _row("isnan", np.isnan, {"f": "{0} != {0}", "": "False"}, grad=_zero),
    Op.ISINF: _row("isinf", np.isinf, {"f": "abs({0}) == np.inf", "": "False"}, grad=_zero),
    Op.ISFINITE: _row("isfinite", np.isfinite, {"f": "abs({0}) < np.inf", "": "True"}, grad=_zero),
    Op.SIGNBIT: ElementwiseRow(
        # Note: NumPy's signbit computes bool in float16 (which lazyfuse lacks); bool and
        # integers compute in their own dtype here (isnan's loops), with NumPy's answers
        "signbit",
        1,
        np.signbit,
        {"f": "np.signbit({0})", "i": "{0} < 0", "b": "False"},
        np.isnan,
        public=("signbit",),
        grad=_zero,
    ),
    Op.LOGICAL_NOT: _row("logical_not", np.logical_not, {"": "{0} == 0", "b": "not {0}"}, grad=_zero),
    Op.ADD: _row("add", np.add, {"": "{0} + {1}", "b": "{0} or {1}"}, grad=lambda f, out, x, y: (1, 1)),
    Op.SUB: _row("subtract", np.subtract, "{0} - {1}", grad=lambda f, out, x, y: (1, -1)),
    Op.MUL: _row(
        "multiply", np.multiply, {"": "{0} * {1}", "b": "{0} and {1}"}, grad=lambda f, out, x, y: (y, x)
    ),
    Op.TRUEDIV: _row(
        "divide",
        np.true_divide,
        "{0} / {1}",
        public=("divide", "true_divide"),
        cost=EXPENSIVE_COST,
        grad=lambda f, out, x, y: (1 / y, -out / y),
    ),
    Op.FLOORDIV: _row(
        "floor_divide", np.floor_divide, "floor_divide_{K}({0}, {1})", cost=EXPENSIVE_COST, grad=_zero
    ),
    Op.MOD: _row(
        "remainder",
        np.remainder,
        "remainder_{K}({0}, {1})",
        public=("remainder", "mod"),
        cost=EXPENSIVE_COST,
        grad=_zero,
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
        grad=_power_grad,
    ),
    Op.ARCTAN2: _math(
        "arctan2", np.arctan2, lambda f, out, y, x: (x / (x * x + y * y), -y / (x * x + y * y))
    ),
    Op.HYPOT: _math("hypot", np.hypot, lambda f, out, x, y: (x / out, y / out)),
    Op.COPYSIGN: _row(
        "copysign",
        np.copysign,
        "np.copysign({0}, {1})",
        grad=lambda f, out, x, y: (f.where(f.signbit(x) == f.signbit(y), 1, -1), 0),
    ),
    Op.LOGADDEXP: _row(
        "logaddexp",
        np.logaddexp,
        _LOGADDEXP_LIBM,
        cost=EXPENSIVE_COST,
        fast=_LOGADDEXP_FAST,
        grad=lambda f, out, x, y: (f.exp(x - out), f.exp(y - out)),
    ),
    Op.MAXIMUM: _row(
        "maximum",
        np.maximum,
        {"f": "maximum_f({0}, {1})", "i": "max({0}, {1})", "b": "{0} or {1}"},
        methods=("maximum",),
        grad=_extreme_grad(larger=True),
    ),
    Op.MINIMUM: _row(
        "minimum",
        np.minimum,
        {"f": "minimum_f({0}, {1})", "i": "min({0}, {1})", "b": "{0} and {1}"},
        methods=("minimum",),
        grad=_extreme_grad(larger=False),
    ),
    Op.LT: _row("less", np.less, "{0} < {1}", grad=_zero),
    Op.LE: _row("less_equal", np.less_equal, "{0} <= {1}", grad=_zero),
    Op.GT: _row("greater", np.greater, "{0} > {1}", grad=_zero),
    Op.GE: _row("greater_equal", np.greater_equal, "{0} >= {1}", grad=_zero),
    Op.EQ: _row("equal", np.equal, "{0} == {1}", grad=_zero),
    Op.NE: _row("not_equal", np.not_equal, "{0} != {1}", grad=_zero),
    Op.AND: _row("bitwise_and", np.bitwise_and, {"": "{0} & {1}", "b": "{0} and {1}"}, grad=_zero),
    Op.OR: _row("bitwise_or", np.bitwise_or, {"": "{0} | {1}", "b": "{0} or {1}"}, grad=_zero),
    Op.XOR: _row("bitwise_xor", np.bitwise_xor, {"": "{0} ^ {1}", "b": "{0} != {1}"}, grad=_zero),
    # Note: any nonzero value is true (a NaN too, as NumPy's)
    Op.LOGICAL_AND: _row(
        "logical_and", np.logical_and, {"": "({0} != 0) & ({1} != 0)", "b": "{0} & {1}"}, grad=_zero
    ),
    Op.LOGICAL_OR: _row(
        "logical_or", np.logical_or, {"": "({0} != 0) | ({1} != 0)", "b": "{0} | {1}"}, grad=_zero
    ),
    Op.LOGICAL_XOR: _row(
        "logical_xor", np.logical_xor, {"": "({0} != 0) != ({1} != 0)", "b": "{0} != {1}"}, grad=_zero
    ),
    # NumPy's shifts: a count outside [0, bits) gives 0 (or -1 for a negative x >> n)
    Op.LEFT_SHIFT: _row("left_shift", np.left_shift, "left_shift_i({0}, {1})", operator="lshift", grad=_zero),
    Op.RIGHT_SHIFT: _row(
        "right_shift", np.right_shift, "right_shift_i({0}, {1})", operator="rshift", grad=_zero
    ),
    # where and astype take other arguments than tensors: lazyfuse.functions writes them
    Op.WHERE: ElementwiseRow(
        "where",
        3,
        np.where,
        {"": "{1} if {0} else {2}"},
        public=("where",),
        grad=lambda f, out, c, x, y: (0, c, ~c),
    ),
    # float to float passes the cotangent on (autodiff casts it back); to or from
    # integers and bools gives none
    Op.CAST: ElementwiseRow(
        "astype",
        1,
        lambda x: x,
        {"": "{T}({0})", "b": "{0} != 0"},
        public=("astype",),
        grad=lambda f, out, x: (1 if x.dtype.kind == out.dtype.kind == "f" else 0,),
    ),
    # not a NumPy op: lazyfuse.autodiff's stop_gradient (attrs[1] "stop": no cotangent)
    # and its differentiated arguments (attrs[1] ("argument", k)); graph.passes drops it
    Op.IDENTITY: ElementwiseRow(
        "stop_gradient", 1, lambda x: x, {"": "{0}"}, public=("stop_gradient",), grad=_identity_grad
    ),
}


def _prod_grad(f: Any, g: Any, out: Any, x: Any, axes: tuple[int, ...]) -> Any:
    """The product of the others, without dividing by a zero: ``out / x`` where the slice
    has no zero; where it has one, the product of the rest at the zero and 0 elsewhere;
    0 where it has more."""
    zero = x == 0
    zeros = zero.sum(axes, keepdims=True)
    rest = f.where(zero, 1, x).prod(axes, keepdims=True)
    return g * f.where(zeros == 0, out / f.where(zero, 1, x), f.where((zeros == 1) & zero, rest, 0))


def _extreme_reduction_grad(f: Any, g: Any, out: Any, x: Any, axes: tuple[int, ...]) -> Any:
    """max and min: the cotangent split evenly between the elements equal to the result
    (as JAX); none where the result is NaN."""
    chosen = x == out
    count = chosen.astype(g.dtype).sum(axes, keepdims=True)
    return f.where(chosen, g / count, 0)


def _arg_reference(find: Callable[..., Any]) -> Callable[..., Any]:
    """NumPy's argmax or argmin over several axes: the index into them flattened in C
    order (NumPy's own take one axis, so the reduced axes are moved last and joined)."""

    def reference(x: Any, axis: Any = None) -> Any:
        x = np.asarray(x)
        axes = tuple(range(x.ndim)) if axis is None else tuple(np.atleast_1d(axis))
        kept = [a for a in range(x.ndim) if a not in axes]
        joined = np.transpose(x, kept + list(axes)).reshape([x.shape[a] for a in kept] + [-1])
        return find(joined, axis=-1)

    return reference


def _no_cotangent(f: Any, g: Any, out: Any, x: Any, axes: tuple[int, ...]) -> None:
    return None  # Note: an index has no derivative; x gets no cotangent from it


REDUCTION: dict[Op, ReductionRow] = {
    Op.SUM: ReductionRow(
        "sum",
        np.sum,
        {"": "{T}(0)", "b": "False"},
        {"": "{acc} + {x}", "b": "{acc} or {x}"},
        grad=lambda f, g, out, x, axes: f.broadcast_to(g, x.shape),
    ),
    Op.PROD: ReductionRow(
        "prod",
        np.prod,
        {"": "{T}(1)", "b": "True"},
        {"": "{acc} * {x}", "b": "{acc} and {x}"},
        grad=_prod_grad,
    ),
    Op.MAX: ReductionRow(
        "max",
        np.max,
        {"f": "{T}(-np.inf)", "i": "{T}({LOWEST})", "b": "False"},
        {"f": "maximum_f({acc}, {x})", "i": "max({acc}, {x})", "b": "{acc} or {x}"},
        refuses_empty=True,
        grad=_extreme_reduction_grad,
    ),
    Op.MIN: ReductionRow(
        "min",
        np.min,
        {"f": "{T}(np.inf)", "i": "{T}({HIGHEST})", "b": "True"},
        {"f": "minimum_f({acc}, {x})", "i": "min({acc}, {x})", "b": "{acc} and {x}"},
        refuses_empty=True,
        grad=_extreme_reduction_grad,
    ),
    # Note: an arg reduction's fold is written by codegen (a best value beside its index)
    Op.ARGMAX: ReductionRow(
        "argmax", _arg_reference(np.argmax), {}, {}, True, _no_cotangent, extreme=Op.MAX, better=">"
    ),
    Op.ARGMIN: ReductionRow(
        "argmin", _arg_reference(np.argmin), {}, {}, True, _no_cotangent, extreme=Op.MIN, better="<"
    ),
}
ARG_REDUCTIONS = frozenset(op for op, row in REDUCTION.items() if row.extreme is not None)


def kind(dtype: np.dtype) -> str:
    """'b', 'i' or 'f': the key of the per-kind templates."""
    return {"b": "b", "i": "i", "f": "f"}[dtype.kind]


def pick(templates: Mapping[str, str], dtype: np.dtype) -> str:
    """The template for ``dtype`` itself (``i32``), else for its kind, else the fallback ``''``."""
    exact = templates.get(f"{dtype.kind}{dtype.itemsize * 8}")
    return exact if exact is not None else templates.get(kind(dtype), templates.get("", ""))
