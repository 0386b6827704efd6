"""Seeded random-program differential test: lazyfuse against NumPy, unfused and lf.jit.

Every program comes from ``numpy.random.default_rng(seed)`` alone, so a failure is
reproduced from the seed the assertion message prints (with the program's text):

    python tests/test_random_programs.py SEED [SEED ...]      # prints and checks them

What a program is. 1-3 input arrays (bool, int32, int64, float32, float64; rank 0-3,
dims 1-5, a size-0 axis sometimes; the later inputs mostly broadcast-compatible with the
first, sometimes a matmul partner) in random layouts (contiguous, transposed ``b.T``,
reversed ``b[::-1]``/``b[..., ::-1]``, strided ``b[::-2]``, sliced ``b[..., 1:]``), then
3-10 steps, each one entry of ``OPS`` (a name -> (lazyfuse builder, NumPy builder) table)
applied to earlier values or Python/NumPy scalars:

* unary: ``-x``, ``abs``, ``lf.exp``, ``lf.log(abs(x) + 1)``, ``lf.sqrt(abs(x))``,
  ``lf.tanh``, ``lf.sigmoid`` (NumPy: ``1 / (1 + exp(-x))``), ``lf.relu`` (NumPy:
  ``maximum(x, 0)``), ``lf.sin``, ``lf.cos``;
* binary ``+ - * /`` (the divisor guarded: ``a / (abs(b) + 1)`` or a nonzero scalar),
  ``lf.maximum``/``lf.minimum``, with broadcasting, weak Python scalars (``2.0``, ``-3``)
  and strong NumPy scalars (``np.float32(2)``, ``np.int32(3)``) on either side;
* comparisons (kept as bool values) and ``lf.where``; ``power`` of a small non-negative
  float base ``minimum(abs(x), 2.0)`` to a scalar or a bounded exact tensor exponent;
* ``astype`` to each supported dtype (method and ``lf.astype``, dtype as type, string or
  np.dtype);
* reductions ``sum prod max min mean`` (method and ``lf.*``) over ``None``, an int, a
  negative int, a tuple, the empty tuple ``()``, keepdims either way; a reduction is
  often followed by another (``x.sum().sum()``, ``x.sum(axis=1).sum(axis=())``), 0-d
  values are reduced too;
* views: ``.T``, ``transpose`` (method, varargs, ``lf.transpose``), ``reshape`` (tuple,
  varargs, ``-1``, to 0-d), ``broadcast_to``, ``expand_dims``, ``squeeze``, basic
  indexing (slices with negative steps and out-of-range bounds, ints, None, Ellipsis);
* ``@`` / ``lf.matmul`` of float 1-D/2-D/batched operands (with an inserted transpose
  where needed, or ``a @ a.mT``);
* more elementwise math: ``lf.log1p(lf.abs(x))``, ``lf.expm1(lf.minimum(x, 8))``,
  ``floor ceil round sign square``, ``x ** 3``, ``(lf.abs(x) + 1) ** -1``,
  ``lf.abs(x) ** 0.5``, ``lf.hypot``/``lf.arctan2``/``lf.logaddexp`` (as the binary ops),
  ``lf.clip(x, lo, hi)`` (scalars, None or a value for ``lo``);
* statistics ``var std`` (``ddof`` 0/1), ``argmax argmin`` (axis None or an int, 0-d too),
  ``any all`` (method and ``lf.*``, axes and keepdims as the reductions');
  ``lf.softmax``/``lf.log_softmax`` (axis default, int, tuple, None) and ``lf.logsumexp``;
* gathers with int64 index arrays written into the program (negative indices, 0-d, 2-d
  and empty ones): ``x[..., idx, ...]`` on one or two axes (beside slices and ints),
  ``lf.take`` (axis None or an int), ``lf.take_along_axis``, and a boolean mask
  ``x[x > c]`` (computed when built); an index out of range is an error probe (IndexError,
  raised when built or when computed);
* scans ``cumsum`` (method and ``lf.cumsum``) and ``lf.cumprod(lf.clip(x, -L, L))``
  (L <= 1.5 keeps products bounded) over an axis or flattened;
* ``lf.concatenate([a, b], axis)`` (axis None too) and ``lf.stack``; creation inside an
  expression: ``x + lf.arange(...)`` (int, float step, decreasing, a dtype),
  ``x * lf.eye(n, m, k)``, ``lf.tril``/``lf.triu`` (1-D to 3-D).

The generator evaluates each drawn step with NumPy as it goes and keeps only valid
programs: a step NumPy refuses (a shape or axis error, ``-bool``, a dtype lazyfuse lacks
such as ``exp(bool) -> float16``) is not added to the program; instead, up to
``MAX_PROBES`` of them per program are kept as *error probes*: building that step on the
lazy values must raise a ``lf.LazyfuseError`` that is also the builtin NumPy raised (see
``conftest.expected_error``). A step whose result is unsafe (not finite, larger than
``CAP``, an int product that would overflow, more than ``MAX_SIZE`` elements) is dropped.

Tolerances. Alongside NumPy's values the generator carries, for every value, an
elementwise bound on how far another correct implementation may be from NumPy's result
(rounding of each op in its dtype, a few ulps for exp/log/tanh/sin/..., the textbook
``count * eps * sum|x|`` bound of ``conftest.sum_atol`` for sums and means, first-order
propagation through later ops; cumsum rounds as a sum in any order, var/std as two passes,
softmax's shift by the max rounds by eps |x - max|). Comparisons, float->int/bool casts,
masks, floor/ceil/round/sign, argmax/argmin, any/all and arctan2 across its cut whose
outcome that bound leaves undecided (``x - x == 0``) are not drawn, so the bool and int
results must match exactly. A float output matches when ``conftest.assert_matches``
accepts it with rtol 1e-4 (float32) / 1e-10 (float64) and atol ``2 * max(bound) +
conftest.ATOL``.

Each program is checked four ways: (1) ``lf.compute`` (all programs of a batch of
``BATCH`` seeds in one call) against NumPy; (2) the program built and computed under
``config.override(fuse=False)`` against (1); (3) ``lf.jit`` of the program (a function
of the input arrays) against (1), on two calls (the second with fresh copies of the
inputs in the same layouts). Compiling is the whole cost (about 1 s a program on a cold
cache, 0.07 s warm): the kernels are serial (``parallel=False``, three times faster to
compile; what small arrays run by default anyway, below ``serial_below``) except in every
5th batch of the long run, which compiles the parallel kernels.

Two runs: ``test_random_programs_agree_with_numpy`` (normal suite; N from
LAZYFUSE_RANDOM_PROGRAMS, default 24, seeds 0..N-1) and
``test_many_random_programs_agree_with_numpy`` (marked ``random_programs``; N from
LAZYFUSE_RANDOM_PROGRAMS_LONG, default 300, seeds from 1_000_000, in LONG_PARTS parts that
test workers share). The long run draws issue 16's ops LONG_BOOST times as often (their
kernels are the slowest to compile; the short run keeps its time). It is skipped unless
pytest runs with a ``-m`` expression that names the marker:

    pytest tests/test_random_programs.py -m random_programs

(pytest deselects it under ``-m "not random_programs"``; without ``-m`` it is skipped).
"""

from __future__ import annotations

import math
import operator
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

if __name__ == "__main__":  # run as a script: make ``tests.conftest`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import lazyfuse as lf
from lazyfuse import config
from tests.conftest import ATOL, assert_matches, expected_error, numpy_result

DTYPES = [np.dtype(t) for t in ("bool", "int32", "int64", "float32", "float64")]
INPUT_DTYPE_P = [0.12, 0.12, 0.12, 0.38, 0.26]
CAP = 1e4  # the largest magnitude a value may reach (ints stay far from overflow)
MAX_SIZE = 2048  # elements of a value, at most
MAX_PROBES = 2  # error probes kept per program
BATCH = 8  # programs computed by one lf.compute
RTOL = {np.dtype(np.float32): 1e-4, np.dtype(np.float64): 1e-10}
SHORT_SEEDS = 0
LONG_SEEDS = 1_000_000


# --------------------------------------------------------------------------- the op table


def _guarded(b: Any, side: int) -> Any:
    return (lf.abs(b) if side == 0 else np.abs(b)) + 1


def _pow_base(a: Any, side: int) -> Any:
    return lf.minimum(lf.abs(a), 2.0) if side == 0 else np.minimum(np.abs(a), 2.0)


def _pow_exponent(b: Any, side: int) -> Any:
    return lf.minimum(lf.abs(b), 3) if side == 0 else np.minimum(np.abs(b), 3)


def _np_sigmoid(x: Any) -> Any:
    return 1 / (1 + np.exp(-x))


def _np_relu(x: Any) -> Any:
    return np.maximum(x, 0)


def _method(name: str) -> Callable[..., Any]:
    return lambda x, *args, **kw: getattr(x, name)(*args, **kw)


def _np_floating(x: Any) -> np.ndarray:
    x = np.asarray(x)
    return x if x.dtype.kind == "f" else x.astype(np.float64)


def _np_softmax(x: Any, axis: Any = -1) -> np.ndarray:
    x = _np_floating(x)
    if x.size == 0:
        return x
    unnormalized = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return unnormalized / np.sum(unnormalized, axis=axis, keepdims=True)


def _np_log_softmax(x: Any, axis: Any = -1) -> np.ndarray:
    x = _np_floating(x)
    if x.size == 0:
        return x
    shifted = x - np.max(x, axis=axis, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


def _np_logsumexp(x: Any, axis: Any = None, keepdims: bool = False) -> np.ndarray:
    x = _np_floating(x)
    largest = np.max(x, axis=axis, keepdims=True, initial=-np.inf)
    shift = np.where(np.isfinite(largest), largest, 0)
    total = np.log(np.sum(np.exp(x - shift), axis=axis, keepdims=True)) + shift
    return total if keepdims else np.squeeze(total, axis=axis)


def _lf_or_np(side: int) -> Any:
    return lf if side == 0 else np


def _cumprod_clipped(side: int) -> Callable[..., Any]:
    """cumprod of ``clip(x, -limit, limit)``: products stay bounded (as power's base)."""
    m = _lf_or_np(side)
    return lambda x, limit, **kw: m.cumprod(m.clip(x, -limit, limit), **kw)


def _joined(side: int, name: str) -> Callable[..., Any]:
    function = getattr(_lf_or_np(side), name)
    return lambda a, b, **kw: function([a, b], **kw)


def _plus_arange(side: int) -> Callable[..., Any]:
    arange = _lf_or_np(side).arange
    return lambda x, args, **kw: x + arange(*args, **kw)


def _times_eye(side: int) -> Callable[..., Any]:
    eye = _lf_or_np(side).eye
    return lambda x, args, **kw: x * eye(*args, **kw)


def _unary_math(side: int) -> dict[str, Callable[..., Any]]:
    m = _lf_or_np(side)
    return {
        "log1p_abs": lambda x: m.log1p(m.abs(x)),
        "expm1": lambda x: m.expm1(m.minimum(x, 8)),
        "floor": m.floor,
        "ceil": m.ceil,
        "round": m.round,
        "square": m.square,
        "sign": m.sign,
        "pow3": lambda x: x**3,
        "recip": lambda x: (m.abs(x) + 1) ** -1,
        "pow_half": lambda x: m.abs(x) ** 0.5,
    }


MATH_TEXT = {
    "log1p_abs": "lf.log1p(lf.abs({0}))",
    "expm1": "lf.expm1(lf.minimum({0}, 8))",
    "floor": "lf.floor({0})",
    "ceil": "lf.ceil({0})",
    "round": "lf.round({0})",
    "square": "lf.square({0})",
    "sign": "lf.sign({0})",
    "pow3": "{0} ** 3",
    "recip": "(lf.abs({0}) + 1) ** -1",
    "pow_half": "lf.abs({0}) ** 0.5",
}
LF_MATH, NP_MATH = _unary_math(0), _unary_math(1)
MATH_BINARY = ["hypot", "arctan2", "logaddexp"]
STATISTICS = ["var", "std", "argmax", "argmin", "any", "all"]

# name: (lazyfuse builder, NumPy builder, text with {0} {1} {2} for the operands and
# {kw} for the keywords' names). Each builder takes the operands positionally and the
# step's keywords (axis, keepdims, shape, ...) by keyword.
OPS: dict[str, tuple[Callable[..., Any], Callable[..., Any], str]] = {
    # unary
    "neg": (operator.neg, operator.neg, "-{0}"),
    "abs": (lf.abs, np.abs, "lf.abs({0})"),
    "abs_builtin": (abs, abs, "abs({0})"),
    "exp": (lf.exp, np.exp, "lf.exp({0})"),
    "log_abs1": (lambda x: lf.log(lf.abs(x) + 1), lambda x: np.log(np.abs(x) + 1), "lf.log(lf.abs({0}) + 1)"),
    "sqrt_abs": (lambda x: lf.sqrt(lf.abs(x)), lambda x: np.sqrt(np.abs(x)), "lf.sqrt(lf.abs({0}))"),
    "tanh": (lf.tanh, np.tanh, "lf.tanh({0})"),
    "sigmoid": (lf.sigmoid, _np_sigmoid, "lf.sigmoid({0})"),
    "relu": (lf.relu, _np_relu, "lf.relu({0})"),
    "sin": (lf.sin, np.sin, "lf.sin({0})"),
    "cos": (lf.cos, np.cos, "lf.cos({0})"),
    # binary
    "add": (operator.add, operator.add, "{0} + {1}"),
    "sub": (operator.sub, operator.sub, "{0} - {1}"),
    "mul": (operator.mul, operator.mul, "{0} * {1}"),
    "div": (
        lambda a, b: a / _guarded(b, 0),
        lambda a, b: a / _guarded(b, 1),
        "{0} / (lf.abs({1}) + 1)",
    ),
    "div_scalar": (operator.truediv, operator.truediv, "{0} / {1}"),
    "maximum": (lf.maximum, np.maximum, "lf.maximum({0}, {1})"),
    "minimum": (lf.minimum, np.minimum, "lf.minimum({0}, {1})"),
    "lt": (operator.lt, operator.lt, "{0} < {1}"),
    "le": (operator.le, operator.le, "{0} <= {1}"),
    "gt": (operator.gt, operator.gt, "{0} > {1}"),
    "ge": (operator.ge, operator.ge, "{0} >= {1}"),
    "eq": (operator.eq, operator.eq, "{0} == {1}"),
    "ne": (operator.ne, operator.ne, "{0} != {1}"),
    "where": (lf.where, np.where, "lf.where({0}, {1}, {2})"),
    "power": (
        lambda a, e: lf.power(_pow_base(a, 0), e),
        lambda a, e: np.power(_pow_base(a, 1), e),
        "lf.power(lf.minimum(lf.abs({0}), 2.0), {1})",
    ),
    "pow_op": (
        lambda a, e: _pow_base(a, 0) ** e,
        lambda a, e: _pow_base(a, 1) ** e,
        "lf.minimum(lf.abs({0}), 2.0) ** {1}",
    ),
    "power_tensor": (
        lambda a, b: lf.power(_pow_base(a, 0), _pow_exponent(b, 0)),
        lambda a, b: np.power(_pow_base(a, 1), _pow_exponent(b, 1)),
        "lf.power(lf.minimum(lf.abs({0}), 2.0), lf.minimum(lf.abs({1}), 3))",
    ),
    # casts
    "astype": (_method("astype"), _method("astype"), "{0}.astype({kw})"),
    "lf.astype": (lf.astype, lambda x, dtype: x.astype(dtype), "lf.astype({0}, {kw})"),
    # reductions
    **{
        f"{kind}": (_method(kind), _method(kind), f"{{0}}.{kind}({{kw}})")
        for kind in ("sum", "prod", "max", "min", "mean")
    },
    **{
        f"lf.{kind}": (getattr(lf, kind), getattr(np, kind), f"lf.{kind}({{0}}, {{kw}})")
        for kind in ("sum", "prod", "max", "min", "mean")
    },
    # views
    "T": (operator.attrgetter("T"), operator.attrgetter("T"), "{0}.T"),
    "transpose": (_method("transpose"), _method("transpose"), "{0}.transpose({kw})"),
    "transpose_varargs": (
        lambda x, axes: x.transpose(*axes),
        lambda x, axes: x.transpose(*axes),
        "{0}.transpose({star})",
    ),
    "lf.transpose": (lf.transpose, np.transpose, "lf.transpose({0}, {kw})"),
    "reshape": (_method("reshape"), _method("reshape"), "{0}.reshape({kw})"),
    "reshape_varargs": (
        lambda x, shape: x.reshape(*shape),
        lambda x, shape: x.reshape(*shape),
        "{0}.reshape({star})",
    ),
    "lf.reshape": (lf.reshape, np.reshape, "lf.reshape({0}, {kw})"),
    "broadcast_to": (_method("broadcast_to"), np.broadcast_to, "{0}.broadcast_to({kw})"),
    "lf.broadcast_to": (lf.broadcast_to, np.broadcast_to, "lf.broadcast_to({0}, {kw})"),
    "expand_dims": (_method("expand_dims"), np.expand_dims, "{0}.expand_dims({kw})"),
    "lf.expand_dims": (lf.expand_dims, np.expand_dims, "lf.expand_dims({0}, {kw})"),
    "squeeze": (_method("squeeze"), _method("squeeze"), "{0}.squeeze({kw})"),
    "lf.squeeze": (lf.squeeze, np.squeeze, "lf.squeeze({0}, {kw})"),
    "index": (lambda x, key: x[key], lambda x, key: x[key], "{0}[{kw}]"),
    # products
    "matmul": (operator.matmul, operator.matmul, "{0} @ {1}"),
    "lf.matmul": (lf.matmul, np.matmul, "lf.matmul({0}, {1})"),
    # more elementwise math (issue 16)
    **{name: (LF_MATH[name], NP_MATH[name], text) for name, text in MATH_TEXT.items()},
    **{name: (getattr(lf, name), getattr(np, name), f"lf.{name}({{0}}, {{1}})") for name in MATH_BINARY},
    "clip": (lf.clip, np.clip, "lf.clip({0}, {1}, {2})"),
    # statistics (as the reductions' rows: method and lf.*)
    **{kind: (_method(kind), _method(kind), f"{{0}}.{kind}({{kw}})") for kind in STATISTICS},
    **{
        f"lf.{kind}": (getattr(lf, kind), getattr(np, kind), f"lf.{kind}({{0}}, {{kw}})")
        for kind in STATISTICS
    },
    "softmax": (lf.softmax, _np_softmax, "lf.softmax({0}, {kw})"),
    "log_softmax": (lf.log_softmax, _np_log_softmax, "lf.log_softmax({0}, {kw})"),
    "logsumexp": (lf.logsumexp, _np_logsumexp, "lf.logsumexp({0}, {kw})"),
    # gathers: integer arrays (constants in the program), take, take_along_axis, a mask
    "gather": (lambda x, key: x[key], lambda x, key: x[key], "{0}[{kw}]"),
    "take": (lf.take, np.take, "lf.take({0}, {kw})"),
    "take_along_axis": (lf.take_along_axis, np.take_along_axis, "lf.take_along_axis({0}, {kw})"),
    "mask": (lambda x, c: x[x > c], lambda x, c: x[x > c], "{0}[{0} > {1}]"),
    # scans
    "cumsum": (_method("cumsum"), _method("cumsum"), "{0}.cumsum({kw})"),
    "lf.cumsum": (lf.cumsum, np.cumsum, "lf.cumsum({0}, {kw})"),
    "cumprod_clip": (_cumprod_clipped(0), _cumprod_clipped(1), "lf.cumprod(lf.clip({0}, -{1}, {1}), {kw})"),
    # joining
    "concatenate": (_joined(0, "concatenate"), _joined(1, "concatenate"), "lf.concatenate([{0}, {1}], {kw})"),
    "stack": (_joined(0, "stack"), _joined(1, "stack"), "lf.stack([{0}, {1}], {kw})"),
    # creation: computed from the loop index inside the consumer's kernel
    "add_arange": (_plus_arange(0), _plus_arange(1), "{0} + lf.arange({star})"),
    "mul_eye": (_times_eye(0), _times_eye(1), "{0} * lf.eye({star})"),
    "tril": (lf.tril, np.tril, "lf.tril({0}, {kw})"),
    "triu": (lf.triu, np.triu, "lf.triu({0}, {kw})"),
}

UNARY = ["neg", "abs", "abs_builtin", "exp", "log_abs1", "sqrt_abs", "tanh", "sigmoid", "relu", "sin", "cos"]
ARITHMETIC = ["add", "sub", "mul", "div", "div_scalar", "maximum", "minimum"]
COMPARISONS = ["lt", "le", "gt", "ge", "eq", "ne"]
REDUCTIONS = ["sum", "prod", "max", "min", "mean"]
MATH_UNARY = list(MATH_TEXT)
JUMPS = {"floor": "integer", "ceil": "integer", "round": "half", "sign": "zero"}  # where the step jumps
INDEX_OPS = {"gather", "take", "take_along_axis"}  # out-of-range indices: IndexError

# How often each kind of step is drawn (Generator.draw). From LONG_SEEDS on, the kinds of
# issue 16's ops are drawn LONG_BOOST times as often: the long run covers them, the short
# run (in the normal suite) keeps its time.
KIND_WEIGHTS = {
    "unary": 0.17,
    "binary": 0.2,
    "compare": 0.05,
    "where": 0.06,
    "power": 0.04,
    "astype": 0.07,
    "reduce": 0.17,
    "view": 0.17,
    "matmul": 0.07,
    # issue 16's ops (NEW_KINDS); math, statistics and softmax compile the slowest kernels
    # (transcendental functions inlined into two- and three-pass reductions)
    "math": 0.03,
    "stats": 0.03,
    "softmax": 0.012,
    "gather": 0.04,
    "scan": 0.03,
    "join": 0.03,
    "create": 0.03,
}

NEW_KINDS = ["math", "stats", "softmax", "gather", "scan", "join", "create"]
LONG_BOOST = 2.0

PY_SCALARS: list[Any] = [0.5, -1.5, 2.0, 3.0, 0.25, 2, -3, 1, 0]
NP_SCALARS: list[Any] = [np.float32(2), np.int32(3), np.float64(-0.5), np.int64(2), np.float32(-1.25)]
DIVISORS: list[Any] = [2.0, -0.5, 4, np.float32(2), np.int32(3), np.float64(-4)]
EXPONENTS: list[Any] = [2, 3, 0.5, 1.5, 2.0, np.float32(2), np.int32(3), np.float64(0.5)]
CMP_SCALARS: list[Any] = [0, 0.5, -1.0, 1, 2.5, np.float32(0.5), np.int32(1)]


@dataclass(frozen=True)
class Lit:
    """A scalar operand (a Python or NumPy scalar) written into the program."""

    value: Any

    def __repr__(self) -> str:
        return repr(self.value)


@dataclass(frozen=True)
class Step:
    op: str
    args: tuple[Any, ...]  # value indices (int) or Lit
    params: tuple[Any, ...] = ()  # positional parameters (a shape, axes, a key, a dtype)
    kw: tuple[tuple[str, Any], ...] = ()  # keyword parameters (axis, keepdims)


@dataclass
class Input:
    base: np.ndarray  # contiguous storage
    layout: str  # a key of LAYOUTS

    def array(self, fresh: bool = False) -> np.ndarray:
        return LAYOUTS[self.layout][0](self.base.copy() if fresh else self.base)


LAYOUTS: dict[str, tuple[Callable[[np.ndarray], np.ndarray], str]] = {
    "c": (lambda b: b, "{b}"),
    "T": (lambda b: b.T, "{b}.T"),
    "rev": (lambda b: b[::-1], "{b}[::-1]"),
    "rev_last": (lambda b: b[..., ::-1], "{b}[..., ::-1]"),
    "step": (lambda b: b[::-2], "{b}[::-2]"),
    "slice": (lambda b: b[..., 1:], "{b}[..., 1:]"),
}


def _base_shape(shape: tuple[int, ...], layout: str) -> tuple[int, ...]:
    if layout == "T":
        return shape[::-1]
    if layout == "step":
        return (2 * shape[0] - 1 if shape[0] else 0, *shape[1:])
    if layout == "slice":
        return (*shape[:-1], shape[-1] + 1)
    return shape


def show(value: Any) -> str:
    """A keyword's value as source text (slices, Ellipsis, dtypes)."""
    if isinstance(value, slice):
        parts = ["" if v is None else str(v) for v in (value.start, value.stop)]
        return ":".join(parts) + ("" if value.step is None else f":{value.step}")
    if value is Ellipsis:
        return "..."
    if isinstance(value, type) and issubclass(value, np.generic):
        return f"np.{value.__name__}"
    if isinstance(value, np.dtype):
        return f"np.dtype({str(value)!r})"
    if isinstance(value, np.ndarray):  # an index array (int64, as np.array of ints)
        return f"np.array({value.tolist()})"
    if isinstance(value, tuple):
        inner = ", ".join(show(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    return repr(value)


def show_key(key: Any) -> str:
    if isinstance(key, tuple):
        return ", ".join(show(k) for k in key) if key else "()"
    return show(key)


@dataclass
class Program:
    seed: int
    inputs: list[Input]
    steps: list[Step] = field(default_factory=list)
    outputs: list[int] = field(default_factory=list)
    expected: list[np.ndarray] = field(default_factory=list)
    atol: list[float] = field(default_factory=list)
    # (values built before the step, the step, the errors it must raise, NumPy's answer)
    probes: list[tuple[int, Step, tuple[type[Exception], ...], str]] = field(default_factory=list)

    def name(self, k: int) -> str:
        return f"x{k}" if k < len(self.inputs) else f"v{k}"

    def step_text(self, step: Step) -> str:
        names = [repr(a) if isinstance(a, Lit) else self.name(a) for a in step.args]
        keywords = [f"{k}={show(v)}" for k, v in step.kw]
        if step.op in ("index", "gather"):
            shown = show_key(step.params[0])
        else:
            shown = ", ".join([show(p) for p in step.params] + keywords)
        star = ""
        if step.op.endswith("varargs") or step.op in ("add_arange", "mul_eye"):
            star = ", ".join([show(v) for v in step.params[0]] + keywords)
        return OPS[step.op][2].format(*names, kw=shown, star=star).replace(", )", ")")

    def text(self) -> str:
        lines = [f"# seed {self.seed}"]
        for k, inp in enumerate(self.inputs):
            arr = inp.array()
            view = LAYOUTS[inp.layout][1].format(b=f"b{k}")
            if inp.base.size <= 24:
                data = np.array2string(inp.base, separator=", ", precision=9, floatmode="maxprec")
                lines.append(f"b{k} = np.array({' '.join(data.split())}, dtype=np.{inp.base.dtype})")
            else:
                lines.append(f"b{k} = <{inp.base.dtype} array of shape {inp.base.shape}: run the seed>")
            lines.append(
                f"x{k} = {view}  # {arr.dtype} {arr.shape}{'' if arr.flags.c_contiguous else ', strided'}"
            )
        for k, step in enumerate(self.steps, start=len(self.inputs)):
            lines.append(f"v{k} = {self.step_text(step)}")
        for position, step, errors, answer in self.probes:
            lines.append(
                f"# probe after v{position - 1}: {self.step_text(step)}  -> must raise "
                f"{'/'.join(e.__name__ for e in errors)} (NumPy: {answer})"
            )
        outs = ", ".join(
            f"{self.name(k)}: {e.dtype} {e.shape}" for k, e in zip(self.outputs, self.expected, strict=True)
        )
        lines.append(f"outputs: {outs}")
        return "\n".join(lines)


def apply(step: Step, values: Sequence[Any], side: int) -> Any:
    """The step on lazyfuse tensors (side 0) or NumPy arrays (side 1)."""
    args = [a.value if isinstance(a, Lit) else values[a] for a in step.args]
    return OPS[step.op][side](*args, *step.params, **dict(step.kw))


def evaluate(
    program: Program, arrays: Sequence[Any], side: int, probes: list[str] | None = None
) -> list[Any]:
    """The program's outputs; with ``probes``, the error probes are tried on the way and
    what went wrong with them is appended there."""
    values = list(arrays)
    pending = list(program.probes) if probes is not None else []
    for step in program.steps:
        while pending and pending[0][0] == len(values):
            _, bad, errors, answer = pending.pop(0)
            problem = _probe(bad, values, errors)
            if problem:
                probes.append(f"probe {program.step_text(bad)} (NumPy: {answer}): {problem}")  # type: ignore[union-attr]
        values.append(apply(step, values, side))
    for _, bad, errors, answer in pending:
        problem = _probe(bad, values, errors)
        if problem:
            probes.append(f"probe {program.step_text(bad)} (NumPy: {answer}): {problem}")  # type: ignore[union-attr]
    return [values[k] for k in program.outputs]


def _probe(step: Step, values: Sequence[Any], errors: tuple[type[Exception], ...]) -> str | None:
    """What is wrong with how lazyfuse refuses ``step`` (None: it raised as it should).
    Note: an index out of range is NumPy's IndexError, which lazyfuse raises as it is
    (no LazyfuseError subclass), when building or, for an index array, when computing."""
    out_of_range = errors == (IndexError,)
    try:
        got = apply(step, values, 0)
        if out_of_range and isinstance(got, lf.Tensor):
            got.compute()
    except errors as exc:
        if not isinstance(exc, lf.LazyfuseError) and not out_of_range:
            return f"raised {type(exc).__name__} ({exc}), not a LazyfuseError"
        return None
    except Exception as exc:
        return f"raised {type(exc).__name__} ({exc}), expected {'/'.join(e.__name__ for e in errors)}"
    return f"built {getattr(got, 'dtype', '?')} {getattr(got, 'shape', '?')} without an error"


# ------------------------------------------------------------------ error bounds (NumPy side)


def _eps(dtype: np.dtype) -> float:
    return float(np.finfo(dtype).eps) if dtype.kind == "f" else 0.0


def _f64(x: Any) -> np.ndarray:
    return np.asarray(x).astype(np.float64)


def _mag(x: Any) -> np.ndarray:
    return np.abs(_f64(x))


def error_bound(step: Step, out: np.ndarray, xs: list[np.ndarray], es: list[np.ndarray]) -> np.ndarray | None:
    """How far a correct implementation of ``step`` may be from NumPy's ``out``, elementwise,
    given such bounds ``es`` for its operands ``xs``; None when the step's outcome is not
    decided by the values (a comparison or cast within the bound of a threshold)."""
    op, kw = step.op, dict(step.kw)
    eps = _eps(out.dtype)

    def rounding(k: float, scale: Any = None) -> np.ndarray:
        return 2 * k * eps * (_mag(out) if scale is None else scale)

    e0 = es[0] if es else None
    if op in ("neg", "abs", "abs_builtin", "relu"):
        return e0
    if op == "exp":
        return _mag(out) * np.expm1(e0) + rounding(4)
    if op == "log_abs1":
        return e0 / (_mag(xs[0]) + 1) + rounding(4, _mag(out) + 2)
    if op == "sqrt_abs":
        root = np.sqrt(_mag(xs[0]))
        with np.errstate(divide="ignore", invalid="ignore"):
            linear = np.where(root > 0, e0 / np.where(root > 0, root, 1), np.inf)
        return np.minimum(np.sqrt(e0), linear) + rounding(2)
    if op in ("tanh", "sigmoid"):
        return e0 + rounding(4, _mag(out) + 1e-30)
    if op in ("sin", "cos"):
        return e0 + rounding(4, _mag(out) + _mag(xs[0]))
    if op in ("add", "sub"):
        return es[0] + es[1] + rounding(1)
    if op == "mul":
        a, b = _mag(xs[0]), _mag(xs[1])
        return es[0] * b + es[1] * a + es[0] * es[1] + rounding(1)
    if op == "div":
        d = _mag(xs[1]) + 1
        ed = es[1] + 2 * eps * d
        return es[0] / d + _mag(xs[0]) * ed / (d * np.maximum(d - ed, 0.5)) + rounding(1)
    if op == "div_scalar":
        return es[0] / _mag(xs[1]) + rounding(1)
    if op in ("maximum", "minimum"):
        return np.maximum(es[0], es[1])
    if op in COMPARISONS:
        slack = es[0] + es[1]
        undecided = (slack > 0) & (np.abs(_f64(xs[0]) - _f64(xs[1])) <= 2 * slack)
        return None if undecided.any() else np.zeros(out.shape)
    if op == "where":
        return np.where(xs[0], es[1], es[2])
    if op in ("power", "pow_op", "power_tensor"):
        if op == "power_tensor":
            if es[1].any():
                return None  # the exponent must be exact
            p = np.minimum(_mag(xs[1]), 3)
        else:
            p = _mag(xs[1])
        t = np.minimum(_mag(xs[0]), 2.0)
        et = e0
        with np.errstate(all="ignore"):
            small = np.power(et, np.where(p > 0, p, 1))
            large = p * np.power(t + et, np.maximum(p - 1, 0)) * et
        bound = np.where(p == 0, 0.0, np.where(p <= 1, small, large))
        return bound + rounding(4)
    if op in ("astype", "lf.astype"):
        src = xs[0]
        if out.dtype.kind == "f":
            return e0 + rounding(1)
        if src.dtype.kind == "f" and e0.any():
            v = _f64(src)
            if out.dtype == np.bool_:
                undecided = (e0 > 0) & (np.abs(v) <= 2 * e0)
            else:
                nearest = np.round(v)
                undecided = (e0 > 0) & (nearest != 0) & (np.abs(v - nearest) <= 2 * e0)
            if undecided.any():
                return None
        return np.zeros(out.shape)
    kind = op.removeprefix("lf.")
    if kind in REDUCTIONS:
        axis, keepdims = kw.get("axis"), kw.get("keepdims", False)
        x = xs[0]
        count = np.sum(np.ones(x.shape), axis=axis, keepdims=keepdims)
        if kind in ("max", "min"):
            return np.max(e0, axis=axis, keepdims=keepdims, initial=0.0)
        if kind == "prod":
            hi = np.prod(_mag(x) + e0, axis=axis, keepdims=keepdims)
            lo = np.prod(_mag(x), axis=axis, keepdims=keepdims)
            return hi - lo + 2 * count * eps * hi
        total = np.sum(e0, axis=axis, keepdims=keepdims) + 2 * count * eps * np.sum(
            _mag(x), axis=axis, keepdims=keepdims
        )
        if kind == "sum":
            return total
        return total / np.maximum(count, 1) + rounding(2)
    if op in ("matmul", "lf.matmul"):
        a, b = _mag(xs[0]), _mag(xs[1])
        inner = xs[0].shape[-1]
        return a @ es[1] + es[0] @ b + es[0] @ es[1] + 2 * (inner + 1) * eps * (a @ b)
    if op in MATH_UNARY or op in MATH_BINARY or op == "clip":
        return _math_bound(op, out, xs, es, rounding)
    if kind in STATISTICS:
        return _statistic_bound(kind, kw, out, xs[0], e0, eps)
    if op in ("softmax", "log_softmax", "logsumexp"):
        return _softmax_bound(op, kw, out, xs[0], e0, eps)
    if op in ("cumsum", "lf.cumsum", "cumprod_clip"):
        return _scan_bound(op, kw, xs, e0, eps)
    if op == "mask":
        return None if _undecided(_f64(xs[0]) - _f64(xs[1]), e0) else e0[xs[0] > xs[1]]
    if op in ("add_arange", "mul_eye"):
        return e0 + rounding(1)  # the arange's values are exact; eye's are 0 and 1
    # views, gathers, joins, tril/triu: the same of the bounds
    return np.asarray(OPS[op][1](*es, *step.params, **kw))


def _undecided(distance: np.ndarray, e: np.ndarray) -> bool:
    """Whether some value may be on the other side of a threshold at ``distance``."""
    return bool(((e > 0) & (np.abs(distance) <= 2 * e)).any())


def _math_bound(op: str, out: np.ndarray, xs: list[np.ndarray], es: list[np.ndarray], rounding: Any) -> Any:
    """Issue 16's elementwise functions: first-order propagation plus a few ulps; the
    steps that jump (floor, ceil, round, sign) are exact or undecided."""
    x, e = _f64(xs[0]), es[0]
    if op in JUMPS:
        at = {"integer": np.round(x), "half": np.floor(x) + 0.5, "zero": 0.0}[JUMPS[op]]
        return None if _undecided(x - at, e) else np.zeros(out.shape)
    if op == "log1p_abs":
        return e / (np.abs(x) + 1) + rounding(4)
    if op == "expm1":
        return (_mag(out) + 1) * np.expm1(e) + rounding(4)
    if op == "square":
        return 2 * np.abs(x) * e + e * e + rounding(1)
    if op == "pow3":
        return (np.abs(x) + e) ** 3 - np.abs(x) ** 3 + rounding(3)
    if op == "recip":
        d = np.abs(x) + 1
        ed = e + 2 * _eps(out.dtype) * d
        return ed / (d * np.maximum(d - ed, 0.5)) + rounding(2)
    if op == "pow_half":
        root = np.sqrt(np.abs(x))
        linear = np.where(root > 0, e / np.where(root > 0, root, 1), np.inf)
        return np.minimum(np.sqrt(e), linear) + rounding(2)
    if op == "clip":
        return np.maximum(np.maximum(es[0], es[1]), es[2])
    if op == "hypot":
        return es[0] + es[1] + rounding(2)
    if op == "logaddexp":
        return np.maximum(es[0], es[1]) + rounding(4, _mag(out) + 1)
    # arctan2(y, x): undecided near the origin and across the cut along x < 0
    y, e_y, e_x = x, es[0], es[1]
    x = _f64(xs[1])
    spread = e_y + e_x
    radius = np.hypot(y, x)
    if bool(((spread > 0) & (radius <= 4 * spread)).any()) or _undecided(np.where(x < 0, y, np.inf), e_y):
        return None
    return np.where(spread > 0, 2 * spread / np.where(radius > 0, radius, 1), 0.0) + rounding(4)


def _statistic_bound(
    kind: str, kw: dict[str, Any], out: np.ndarray, x: np.ndarray, e: np.ndarray, eps: float
) -> Any:
    axis, keepdims = kw.get("axis"), kw.get("keepdims", False)
    if kind in ("any", "all"):
        return None if _undecided(_f64(x), e) else np.zeros(out.shape)
    if kind in ("argmax", "argmin"):
        v = _f64(x) if kind == "argmax" else -_f64(x)
        if axis is None or v.ndim == 0:
            v, e, axis = v.reshape(-1), e.reshape(-1), 0
        top = np.max(v, axis=axis, keepdims=True)
        near = np.sum(v >= top - 2 * (e + np.max(e, axis=axis, keepdims=True)), axis=axis)
        return None if ((near > 1) & (np.sum(e, axis=axis) > 0)).any() else np.zeros(out.shape)
    # var and std: sum((x - mean)**2) / (n - ddof), two passes (as NumPy's)
    v, keep = _f64(x), {"axis": axis, "keepdims": True}
    count = np.sum(np.ones(v.shape), **keep)
    deviation = v - np.mean(v, **keep)
    spread = np.sum(deviation * deviation, **keep)
    mean_error = 2 * (count + 1) * eps * np.mean(np.abs(v), **keep)
    denominator = count - kw.get("ddof", 0)
    propagated = 2 * np.sum(np.abs(deviation) * e, **keep) + np.sum(e * e, **keep)
    rounded = 2 * (count + 5) * eps * spread + count * mean_error**2  # and the division
    bound = (propagated + rounded) / denominator
    if kind == "std":
        root = np.sqrt(spread / denominator)
        linear = np.where(root > 0, bound / np.where(root > 0, root, 1), np.inf)
        bound = np.minimum(np.sqrt(bound), linear) + 4 * eps * root
    return bound if keepdims else np.squeeze(bound, axis=axis)


def _softmax_bound(
    op: str, kw: dict[str, Any], out: np.ndarray, x: np.ndarray, e: np.ndarray, eps: float
) -> Any:
    """A shift by the max then a sum of exps: the shift rounds by eps |x - max|, the sum's
    relative error grows with the count, the result moves by at most the inputs' bounds."""
    if x.size == 0:
        return np.zeros(out.shape)
    axis = kw.get("axis", None if op == "logsumexp" else -1)
    v, keep = _f64(x), {"axis": axis, "keepdims": True}
    shifted = v - np.max(v, **keep)
    weights = np.exp(shifted) / np.sum(np.exp(shifted), **keep)
    count = np.sum(np.ones(v.shape), **keep)
    worst = np.max(e, **keep)
    relative = 2 * (count + 8) * eps + 4 * eps * np.sum(weights * np.abs(shifted), **keep)
    if op == "softmax":
        return _mag(out) * (np.expm1(e + worst + 4 * eps * np.abs(shifted)) + relative)
    if op == "log_softmax":
        return e + worst + relative + 4 * eps * (np.abs(shifted) + _mag(out))
    bound = worst + relative + 4 * eps * (np.abs(np.max(v, **keep)) + 1)
    return bound if kw.get("keepdims", False) else np.squeeze(bound, axis=axis)


def _scan_bound(op: str, kw: dict[str, Any], xs: list[np.ndarray], e: np.ndarray, eps: float) -> np.ndarray:
    """Running sums round as sums do, in any order (lazyfuse's chunks of one long axis
    add in another order than NumPy); running products as prod (of the clipped values)."""
    axis = kw.get("axis")
    v = _mag(np.clip(xs[0], -xs[1], xs[1]) if op == "cumprod_clip" else xs[0])
    if axis is None or v.ndim == 0:  # flattened (NumPy scans a 0-d array as 1-d)
        v, e, axis = v.reshape(-1), e.reshape(-1), 0
    count = v.shape[axis]
    if op == "cumprod_clip":
        high = np.cumprod(v + e, axis=axis)
        return high - np.cumprod(v, axis=axis) + 2 * count * eps * high
    return np.cumsum(e, axis=axis) + 2 * count * eps * np.cumsum(v, axis=axis)


# ------------------------------------------------------------------------------ the generator


class Generator:
    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        boost = LONG_BOOST if seed >= LONG_SEEDS else 1.0
        self.weights = {k: w * boost if k in NEW_KINDS else w for k, w in KIND_WEIGHTS.items()}

    # draws -----------------------------------------------------------------------------
    def chance(self, p: float) -> bool:
        return bool(self.rng.random() < p)

    def integer(self, lo: int, hi: int) -> int:
        """From lo to hi, both included."""
        return int(self.rng.integers(lo, hi + 1))

    def pick(self, seq: Sequence[Any], p: Sequence[float] | None = None) -> Any:
        return seq[int(self.rng.choice(len(seq), p=p))]

    # inputs ------------------------------------------------------------------------------
    def shape(self, rank: int) -> tuple[int, ...]:
        return tuple(self.integer(1, 5) for _ in range(rank))

    def make_input(self, shape: tuple[int, ...]) -> Input:
        dtype = self.pick(DTYPES, INPUT_DTYPE_P)
        layouts = ["c"]
        if shape:
            layouts += ["rev", "rev_last", "step", "slice"]
        if len(shape) >= 2:
            layouts += ["T", "T"]
        layout = "c" if self.chance(0.4) else self.pick(layouts)
        base_shape = _base_shape(shape, layout)
        if dtype.kind == "f":
            if self.chance(0.25):  # a grid: ties, exact sums
                base = self.rng.integers(-12, 13, size=base_shape) / 4
            else:
                base = self.rng.uniform(-3, 3, size=base_shape)
        elif dtype.kind == "i":
            base = self.rng.integers(-5, 6, size=base_shape)
        else:
            base = self.rng.random(base_shape) < 0.5
        made = Input(np.array(base, dtype=dtype, order="C"), layout)
        assert made.array().shape == shape, (made.array().shape, shape, layout)
        return made

    def inputs(self) -> list[Input]:
        rank = int(self.pick([0, 1, 2, 3], [0.08, 0.22, 0.45, 0.25]))
        dims = list(self.shape(rank))
        if rank and self.chance(0.07):
            dims[self.integer(0, rank - 1)] = 0
        shapes = [tuple(dims)]
        for _ in range(self.integer(0, 2)):
            r = self.rng.random()
            if r < 0.65:  # broadcast-compatible with the first
                drop = self.integer(0, rank)
                shapes.append(tuple(1 if self.chance(0.3) else d for d in dims[drop:]))
            elif r < 0.8 and rank:  # a matmul partner
                shapes.append((dims[-1], self.integer(1, 4)))
            elif r < 0.88:
                shapes.append(())
            else:
                shapes.append(self.shape(self.integer(1, 3)))
        return [self.make_input(s) for s in shapes]

    # steps -------------------------------------------------------------------------------
    def operand(self, values: list[np.ndarray], recent: float = 0.6) -> int:
        if self.chance(recent):
            return len(values) - 1
        return self.integer(0, len(values) - 1)

    def partner(self, values: list[np.ndarray], a: int, scalars: Sequence[Any], p_scalar: float = 0.3) -> Any:
        """A scalar, a value that broadcasts with ``a`` or (rarely) any value."""
        if self.chance(p_scalar):
            return Lit(self.pick(scalars))
        fits = [k for k, v in enumerate(values) if _broadcasts(v.shape, values[a].shape)]
        if self.chance(0.04) or not fits:
            return self.integer(0, len(values) - 1)
        return self.pick(fits)

    def scalar_list(self) -> list[Any]:
        return PY_SCALARS if self.chance(0.6) else NP_SCALARS

    def axis(self, ndim: int) -> Any:
        r = self.rng.random()
        if r < 0.05 or (ndim == 0 and r < 0.1):  # out of range or repeated: an error probe
            return self.pick([ndim, -ndim - 1, (0, 0) if ndim else (0,)])
        if r < 0.3 or ndim == 0:
            return self.pick([None, None, ()]) if ndim else self.pick([None, ()])
        if r < 0.6:
            k = self.integer(0, ndim - 1)
            return k - ndim if self.chance(0.4) else k
        if r < 0.7:
            return ()
        chosen = self.rng.permutation(ndim)[: self.integer(1, ndim)]
        return tuple(int(k) - ndim if self.chance(0.3) else int(k) for k in chosen)

    def reshape_target(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        size = math.prod(shape)
        if size == 0:
            target = [self.integer(1, 4) for _ in range(self.integer(1, 3))]
            zero = self.integer(0, len(target) - 1)
            target[zero] = -1 if self.chance(0.4) else 0
            return tuple(target)
        factors = _prime_factors(size)
        rank = self.integer(0 if size == 1 else 1, 4)
        target = [1] * rank
        for f in factors:
            target[self.integer(0, rank - 1)] *= f
        if rank and self.chance(0.4):
            target[self.integer(0, rank - 1)] = -1
        return tuple(target)

    def broadcast_target(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        lead = tuple(self.integer(1, 3) for _ in range(self.integer(0, 2)))
        rest = tuple(self.integer(1, 3) if d == 1 else d for d in shape)
        if self.chance(0.04) and rest:  # does not broadcast: an error probe
            rest = (*rest[:-1], rest[-1] + 1)
        return lead + rest

    def key(self, shape: tuple[int, ...]) -> Any:
        parts: list[Any] = []
        for d in shape:
            r = self.rng.random()
            if r < 0.3:
                parts.append(slice(None))
            elif r < 0.7:
                bound = [None, *range(-d - 1, d + 2)]
                step = self.pick([None, 1, 2, -1, -1, -2, 3])
                parts.append(slice(self.pick(bound), self.pick(bound), step))
            elif r < 0.85 and d > 0:
                parts.append(self.integer(-d, d - 1))
            else:
                parts.append(slice(None))
            if self.chance(0.1):
                parts.append(None)
        while parts and parts[-1] == slice(None) and self.chance(0.5):
            parts.pop()
        if self.chance(0.3):  # an Ellipsis for a run (maybe empty) of full slices
            runs = [
                (i, j)
                for i in range(len(parts) + 1)
                for j in range(i, len(parts) + 1)
                if all(p == slice(None) for p in parts[i:j])
            ]
            i, j = self.pick(runs)
            parts[i:j] = [Ellipsis]
        if self.chance(0.1):
            parts.insert(0, None)
        if len(parts) == 1 and self.chance(0.5):
            return parts[0]
        return tuple(parts)

    def draw(self, values: list[np.ndarray], last_op: str | None) -> list[Step]:
        """One step (or two: a transpose then a product, a comparison then a where)."""
        weights = dict(self.weights)
        if last_op and last_op.removeprefix("lf.") in REDUCTIONS:
            weights["reduce"] = 0.5  # reductions of reductions
        kinds = list(weights)
        total = sum(weights.values())
        kind = self.pick(kinds, [weights[k] / total for k in kinds])
        a = self.operand(values)
        x = values[a]
        if kind == "unary":
            return [Step(self.pick(UNARY), (a,))]
        if kind == "binary":
            op = self.pick(ARITHMETIC)
            if op == "div_scalar":
                return [Step(op, (a, Lit(self.pick(DIVISORS))))]
            b = self.partner(values, a, self.scalar_list())
            return [Step(op, (b, a) if self.chance(0.35) else (a, b))]
        if kind == "compare":
            return [self.comparison(values, a)]
        if kind == "where":
            bools = [k for k, v in enumerate(values) if v.dtype == np.bool_]
            steps = []
            if not bools or self.chance(0.3):
                steps.append(self.comparison(values, a))
                c = len(values)
                try:
                    shape = np.broadcast_shapes(
                        *(values[i].shape for i in steps[0].args if isinstance(i, int))
                    )
                except ValueError:
                    shape = x.shape
            else:
                c = self.pick(bools)
                shape = values[c].shape
            fits = [k for k, v in enumerate(values) if _broadcasts(v.shape, shape)] or [a]
            branch = [
                Lit(self.pick(self.scalar_list())) if self.chance(0.35) else self.pick(fits) for _ in "xy"
            ]
            return [*steps, Step("where", (c, *branch))]
        if kind == "power":
            if self.chance(0.3):
                b = self.partner(values, a, [0], p_scalar=0.0)
                return [Step("power_tensor", (a, b))]
            return [Step(self.pick(["power", "pow_op"]), (a, Lit(self.pick(EXPONENTS))))]
        if kind == "astype":
            dtype = self.pick(DTYPES)
            spelled = self.pick([dtype, dtype.type, str(dtype)])
            return [Step(self.pick(["astype", "astype", "lf.astype"]), (a,), (spelled,))]
        if kind == "reduce":
            red = self.pick(REDUCTIONS, [0.3, 0.1, 0.2, 0.15, 0.25])
            if self.chance(0.35):
                red = "lf." + red
            axis = self.axis(x.ndim)
            kw: list[tuple[str, Any]] = []
            if axis is not None or self.chance(0.3):
                kw.append(("axis", axis))
            if self.chance(0.5):
                kw.append(("keepdims", self.chance(0.5)))
            return [Step(red, (a,), (), tuple(kw))]
        if kind == "view":
            return [self.view(x, a)]
        if kind == "matmul":
            return self.matmul(values, a)
        return [getattr(self, kind)(values, a)]

    # issue 16's ops -------------------------------------------------------------------------
    def math(self, values: list[np.ndarray], a: int) -> Step:
        r = self.rng.random()
        if r < 0.65:
            return Step(self.pick(MATH_UNARY), (a,))
        if r < 0.9:
            b = self.partner(values, a, self.scalar_list())
            return Step(self.pick(MATH_BINARY), (b, a) if self.chance(0.35) else (a, b))
        low = self.partner(values, a, [-1, -1.5, 0, np.float32(-0.5), None], p_scalar=0.8)
        high = Lit(self.pick([1, 2.5, 0.5, np.float32(1.5)] + ([] if low == Lit(None) else [None])))
        return Step("clip", (a, low, high))

    def stats(self, values: list[np.ndarray], a: int) -> Step:
        x = values[a]
        kind = self.pick(STATISTICS, [0.2, 0.15, 0.2, 0.15, 0.15, 0.15])
        op = "lf." + kind if self.chance(0.35) else kind
        kw: list[tuple[str, Any]] = []
        if kind in ("argmax", "argmin"):
            if self.chance(0.55):
                n = max(x.ndim, 1)  # NumPy takes axis 0 and -1 of a 0-d array
                axis: Any = self.integer(-n, n - 1)
                if self.chance(0.06):  # out of range or a tuple: an error probe
                    axis = self.pick([n, -n - 1, (0,)])
                kw.append(("axis", axis))
        else:
            axis = self.axis(x.ndim)
            if axis is not None or self.chance(0.3):
                kw.append(("axis", axis))
            if kind in ("var", "std") and self.chance(0.5):
                kw.append(("ddof", self.pick([0, 1, 1])))
        if self.chance(0.4):
            kw.append(("keepdims", self.chance(0.5)))
        return Step(op, (a,), (), tuple(kw))

    def softmax(self, values: list[np.ndarray], a: int) -> Step:
        floats = [k for k, v in enumerate(values) if v.dtype.kind == "f"]
        if floats and values[a].dtype.kind != "f" and self.chance(0.8):
            a = self.pick(floats)
        x = values[a]
        op = self.pick(["softmax", "log_softmax", "logsumexp"])
        kw: list[tuple[str, Any]] = []
        if op == "logsumexp":
            axis = self.axis(x.ndim)
            if axis is not None or self.chance(0.3):
                kw.append(("axis", axis))
            if self.chance(0.4):
                kw.append(("keepdims", self.chance(0.5)))
        elif self.chance(0.7):
            axis = self.axis(x.ndim)
            kw.append(("axis", -1 if axis is None and self.chance(0.7) else axis))
        return Step(op, (a,), (), tuple(kw))

    def index_array(self, size: int, shape: tuple[int, ...]) -> np.ndarray:
        """An int64 index array of ``shape`` into an axis of ``size`` (negative indices
        too); sometimes with one index out of range: an error probe."""
        if size == 0 or self.chance(0.04):
            shape = shape if math.prod(shape) else (1,)
            index = np.zeros(shape, np.int64)
            index.flat[self.integer(0, index.size - 1)] = self.pick([size, -size - 1])
            return index if size or self.chance(0.3) else np.zeros((0,), np.int64)
        return self.rng.integers(-size, size, size=shape).astype(np.int64)

    def index_shape(self) -> tuple[int, ...]:
        k = self.integer(1, 4)
        return self.pick([(k,), (k,), (k,), (), (2, k), (0,)], [0.3, 0.2, 0.1, 0.15, 0.2, 0.05])

    def gather(self, values: list[np.ndarray], a: int) -> Step:
        x = values[a]
        n = x.ndim
        r = self.rng.random()
        if r < 0.12 or (n == 0 and r < 0.8):
            return Step("mask", (a, Lit(self.pick(CMP_SCALARS))))
        if r < 0.5:
            return Step("gather", (a,), (self.gather_key(x.shape),))
        if r < 0.75 or n == 0:
            if self.chance(0.2) or n == 0:
                return Step("take", (a,), (self.index_array(x.size, self.index_shape()),))
            k = self.integer(-n, n - 1)
            return Step("take", (a,), (self.index_array(x.shape[k], self.index_shape()),), (("axis", k),))
        if self.chance(0.1):  # axis None: a 1-d index into x flattened
            return Step("take_along_axis", (a,), (self.index_array(x.size, (self.integer(0, 4),)), None))
        k = self.integer(-n, n - 1)
        shape = [1 if self.chance(0.3) else d for d in x.shape]
        shape[k] = self.integer(0, 4) if self.chance(0.1) else self.integer(1, 4)
        return Step("take_along_axis", (a,), (self.index_array(x.shape[k], tuple(shape)), k))

    def gather_key(self, shape: tuple[int, ...]) -> Any:
        """Integer arrays on one or two axes (of the same shape: NumPy broadcasts them),
        the other axes whole, reversed, sliced or (an advanced index too) an int."""
        n = len(shape)
        if n == 0:
            return self.index_array(1, (2,))  # a 0-d value has no axis: an IndexError probe
        axes = sorted(int(k) for k in self.rng.permutation(n)[: 1 if n == 1 or self.chance(0.7) else 2])
        index_shape = self.index_shape()
        parts: list[Any] = [slice(None)] * (axes[-1] + 1)
        for k in axes:
            parts[k] = self.index_array(shape[k], index_shape)
        for k, d in enumerate(shape[: len(parts)]):
            if k not in axes and self.chance(0.25):
                parts[k] = self.pick(
                    [slice(None, None, -1), slice(1, None)] + ([self.integer(-d, d - 1)] if d else [])
                )
        if axes == [n - 1] and n > 1 and self.chance(0.3):
            return (Ellipsis, parts[-1])
        return parts[0] if len(parts) == 1 and self.chance(0.5) else tuple(parts)

    def scan(self, values: list[np.ndarray], a: int) -> Step:
        x = values[a]
        op = self.pick(["cumsum", "lf.cumsum", "cumprod_clip"])
        axis = None
        n = max(x.ndim, 1)  # NumPy takes axis 0 and -1 of a 0-d array
        if self.chance(0.75):
            axis = self.integer(-n, n - 1)
            if self.chance(0.04):
                axis = self.pick([n, -n - 1])  # out of range: an error probe
        kw = (("axis", axis),) if axis is not None or op == "cumprod_clip" or self.chance(0.3) else ()
        if op == "cumprod_clip":
            return Step(op, (a, Lit(self.pick([1.5, 1.5, 1.25, 1]))), (), kw)
        return Step(op, (a,), (), kw)

    def join(self, values: list[np.ndarray], a: int) -> Step:
        x = values[a]
        n = x.ndim
        if self.chance(0.3):  # stack: the same shapes
            same = [k for k, v in enumerate(values) if v.shape == x.shape]
            b = self.integer(0, len(values) - 1) if self.chance(0.05) else self.pick(same)
            return Step("stack", (a, b), (), (("axis", self.integer(-n - 1, n)),))
        if n == 0 or self.chance(0.15):  # axis None: both flattened (0-d values too)
            b = self.integer(0, len(values) - 1)
            return Step("concatenate", (a, b), (), (("axis", None),) if n == 0 or self.chance(0.7) else ())
        k = self.integer(0, n - 1)
        fits = [
            j
            for j, v in enumerate(values)
            if v.ndim == n and v.shape[:k] + v.shape[k + 1 :] == x.shape[:k] + x.shape[k + 1 :]
        ]
        b = self.integer(0, len(values) - 1) if self.chance(0.05) else self.pick(fits)
        pair = (b, a) if self.chance(0.4) else (a, b)
        axis = k - n if self.chance(0.3) else k
        return Step("concatenate", pair, (), (("axis", axis),) if axis or self.chance(0.6) else ())

    def create(self, values: list[np.ndarray], a: int) -> Step:
        x = values[a]
        r = self.rng.random()
        kw: tuple[tuple[str, Any], ...] = ()
        if r < 0.35 or x.ndim == 0:
            n = x.shape[-1] if x.ndim else self.integer(1, 3)
            if self.chance(0.04):
                n += 1  # does not broadcast: an error probe
            args = self.pick([(n,), (-2, n - 2), (0.0, n / 2, 0.5), (n - 1, -1, -1)])
            if self.chance(0.2):
                kw = (("dtype", self.pick([np.float32, np.int32, "float64"])),)
            return Step("add_arange", (a,), (args,), kw)
        if r < 0.65:
            rows, cols = x.shape[-2:] if x.ndim >= 2 else self.pick([(1, x.shape[0]), (x.shape[0],) * 2])
            args = (rows, cols, self.integer(-1, 1)) if self.chance(0.6) else (rows, cols)
            if self.chance(0.2):
                kw = (("dtype", self.pick([np.float32, int, np.int64])),)
            return Step("mul_eye", (a,), (args,), kw)
        return Step(self.pick(["tril", "triu"]), (a,), (self.integer(-1, 2),))

    def comparison(self, values: list[np.ndarray], a: int) -> Step:
        b = self.partner(values, a, CMP_SCALARS, p_scalar=0.35)
        return Step(self.pick(COMPARISONS), (a, b))

    def view(self, x: np.ndarray, a: int) -> Step:
        v = self.pick(
            ["T", "transpose", "reshape", "broadcast_to", "expand_dims", "squeeze", "index", "index"]
        )
        n = x.ndim
        if v == "T":
            return Step("T", (a,))
        if v == "transpose":
            perm = tuple(int(k) - n if self.chance(0.2) else int(k) for k in self.rng.permutation(n))
            op = self.pick(["transpose", "transpose_varargs", "lf.transpose"])
            if self.chance(0.05):
                perm = perm[:-1]  # too few axes: an error probe
            return Step(op, (a,), (perm,))
        if v == "reshape":
            target = self.reshape_target(x.shape)
            op = self.pick(["reshape", "reshape_varargs", "lf.reshape"])
            if op == "reshape_varargs" and not target:
                op = "reshape"
            if op == "lf.reshape" and len(target) == 1 and self.chance(0.5):
                return Step(op, (a,), (target[0],))
            return Step(op, (a,), (target,))
        if v == "broadcast_to":
            return Step(
                self.pick(["broadcast_to", "lf.broadcast_to"]), (a,), (self.broadcast_target(x.shape),)
            )
        if v == "expand_dims":
            if self.chance(0.7):
                axis: Any = self.integer(-n - 1, n)
            else:
                axis = tuple(int(k) for k in self.rng.permutation(n + 2)[:2])
            return Step(self.pick(["expand_dims", "lf.expand_dims"]), (a,), (axis,))
        if v == "squeeze":
            ones = [k for k, d in enumerate(x.shape) if d == 1]
            op = self.pick(["squeeze", "lf.squeeze"])
            if not ones or self.chance(0.3):
                if self.chance(0.15) and n:  # a non-1 axis: an error probe, unless it is 1
                    return Step(op, (a,), (self.integer(0, n - 1),))
                return Step(op, (a,), (None,) if self.chance(0.5) else ())
            k = self.pick(ones)
            axis = k - n if self.chance(0.4) else k
            return Step(op, (a,), ((axis,) if self.chance(0.3) else axis,))
        return Step("index", (a,), (self.key(x.shape),))

    def matmul(self, values: list[np.ndarray], a: int) -> list[Step]:
        op = self.pick(["matmul", "matmul", "lf.matmul"])
        x = values[a]
        floats = [k for k, v in enumerate(values) if v.dtype.kind == "f" and v.ndim >= 1]
        if x.dtype.kind != "f" or x.ndim == 0:
            if not floats:
                return []  # float products only
            a = self.pick(floats)
            x = values[a]
        options: list[list[Step]] = []
        for b in floats:
            y = values[b]
            if _matmul_fits(x.shape, y.shape):
                options += [[Step(op, (a, b))]] * 2
            if _matmul_fits(y.shape, x.shape):
                options.append([Step(op, (b, a))])
            if y.ndim >= 2 and _matmul_fits(x.shape, _swapped(y.shape)):
                options.append([self.swap_last(y, b), Step(op, (a, len(values)))])
        if x.ndim >= 2:
            options.append([self.swap_last(x, a), Step(op, (a, len(values)))])
        else:
            options.append([Step(op, (a, a))])
        return self.pick(options)

    def swap_last(self, y: np.ndarray, b: int) -> Step:
        if y.ndim == 2 and self.chance(0.5):
            return Step("T", (b,))
        perm = (*range(y.ndim - 2), y.ndim - 1, y.ndim - 2)
        return Step("transpose", (b,), (perm,))

    # the program ----------------------------------------------------------------------------
    def program(self) -> Program:
        program = Program(self.seed, self.inputs())
        values = [inp.array() for inp in program.inputs]
        bounds = [np.zeros(v.shape) for v in values]
        wanted = self.integer(3, 10)
        last_op = None
        for _ in range(4 * wanted):
            if len(program.steps) >= wanted:
                break
            steps = self.draw(values, last_op)
            added = []
            for step in steps:
                if not self.add(program, step, values, bounds):
                    break
                added.append(step)
            if len(added) < len(steps):  # undo a transpose whose product was refused
                for _ in added:
                    program.steps.pop()
                    values.pop()
                    bounds.pop()
            elif steps:
                last_op = steps[-1].op
        if not program.steps:
            self.add(program, Step("abs", (0,)), values, bounds)
        # the last value and up to two other values no step used (so no step is dead)
        first = len(program.inputs)
        used = {k for step in program.steps for k in step.args if isinstance(k, int)}
        unused = [k for k in range(first, len(values) - 1) if k not in used]
        program.outputs = [len(values) - 1, *unused[-2:]]
        for k in program.outputs:
            program.expected.append(values[k])
            slack = float(bounds[k].max()) if bounds[k].size else 0.0
            program.atol.append(2 * slack + ATOL[values[k].dtype] if values[k].dtype.kind == "f" else 0.0)
        return program

    def add(self, program: Program, step: Step, values: list[np.ndarray], bounds: list[np.ndarray]) -> bool:
        """NumPy's value of ``step``: added (with its bound) if valid and safe; an error
        probe if NumPy refuses it; else dropped."""
        try:
            out = numpy_result(apply, step, values, 1)
        except IndexError as exc:  # an index out of range: a gather's error probe
            if step.op not in INDEX_OPS:
                return False
            out = exc
        except Exception:  # not drawn on purpose: dropped
            return False
        errors = (IndexError,) if type(out) is IndexError else expected_error(out)
        if errors is not None:
            if len(program.probes) < MAX_PROBES:
                answer = repr(out) if isinstance(out, Exception) else f"dtype {out.dtype}"
                program.probes.append((len(values), step, errors, answer[:120]))
            return False
        if out.size > MAX_SIZE or out.ndim > 6:
            return False
        if out.dtype.kind in "fi" and out.size:
            as_float = _f64(out)
            if not np.isfinite(as_float).all() or np.abs(as_float).max() > CAP:
                return False
        if step.op.removeprefix("lf.") in ("prod", "pow3", "square") and out.dtype.kind in "iu":
            floats = [_f64(v) if k in step.args else v for k, v in enumerate(values)]
            exact = numpy_result(apply, step, floats, 1)  # ints must not wrap around
            if not isinstance(exact, np.ndarray) or (exact.size and np.abs(exact).max() > CAP):
                return False
        xs = [np.asarray(a.value) if isinstance(a, Lit) else values[a] for a in step.args]
        es = [np.zeros(()) if isinstance(a, Lit) else bounds[a] for a in step.args]
        with np.errstate(all="ignore"):
            bound = error_bound(step, out, xs, es)
        if bound is None:
            return False
        bound = np.broadcast_to(np.asarray(bound, dtype=np.float64), out.shape)
        if out.dtype.kind != "f" and bound.any():
            return False  # an int or bool from inexact floats: not decided
        if not np.isfinite(bound).all():
            return False
        program.steps.append(step)
        values.append(out)
        bounds.append(np.array(bound))
        return True


def _broadcasts(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    return all(x == y or 1 in (x, y) for x, y in zip(a[::-1], b[::-1], strict=False))


def _swapped(shape: tuple[int, ...]) -> tuple[int, ...]:
    return (*shape[:-2], shape[-1], shape[-2])


def _matmul_fits(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    try:
        out = np.matmul(np.zeros(a, np.float32), np.zeros(b, np.float32))
    except ValueError:
        return False
    return out.size <= MAX_SIZE


def _prime_factors(n: int) -> list[int]:
    out, p = [], 2
    while n > 1:
        while n % p == 0:
            out.append(p)
            n //= p
        p += 1
    return out


# ------------------------------------------------------------------------------- the checks


@dataclass
class Report:
    programs: list[Program] = field(default_factory=list)
    failures: dict[int, list[str]] = field(default_factory=dict)  # by seed: what differed
    seconds: dict[str, float] = field(default_factory=lambda: {"fused": 0.0, "unfused": 0.0, "jit": 0.0})

    def fail(self, program: Program, what: str, detail: str) -> None:
        detail = detail.strip()
        if len(detail) > 1500:
            detail = detail[:1500] + " ..."
        self.failures.setdefault(program.seed, []).append(f"[{what}] {detail}")

    def summary(self) -> str:
        steps = sum(len(p.steps) for p in self.programs)
        probes = sum(len(p.probes) for p in self.programs)
        seeds = [p.seed for p in self.programs]
        return (
            f"{len(seeds)} programs (seeds {min(seeds)}..{max(seeds)}), {steps} steps, "
            f"{probes} error probes; " + ", ".join(f"{k} {v:.1f} s" for k, v in self.seconds.items())
        )

    def explain(self, limit: int = 6) -> str:
        """Each failing program (up to ``limit``): its seed, what differed, its text."""
        texts = {p.seed: p.text() for p in self.programs}
        shown = [
            f"seed {seed}:\n" + "\n".join(lines) + "\n" + texts[seed]
            for seed, lines in list(self.failures.items())[:limit]
        ]
        more = len(self.failures) - len(shown)
        return "\n\n".join(shown) + (f"\n\n... and {more} more programs" if more > 0 else "")


def _compare(report: Report, program: Program, what: str, got: Sequence[Any], want: Sequence[Any]) -> None:
    if len(got) != len(want):
        report.fail(program, what, f"{len(got)} results for {len(want)} outputs")
        return
    for k, (g, w) in enumerate(zip(got, want, strict=True)):
        w = np.asarray(w)
        tol = RTOL.get(w.dtype)
        try:
            if not isinstance(g, np.ndarray):
                raise AssertionError(f"gave {type(g).__name__}, not an ndarray")
            assert_matches(g, w, tol=tol, atol=program.atol[k] if w.dtype.kind == "f" else None)
        except AssertionError as exc:
            report.fail(program, what, f"output {k} ({program.name(program.outputs[k])}): {exc}")


def _build_and_compute(
    report: Report, programs: Sequence[Program], what: str, probe: bool
) -> dict[int, list[np.ndarray]]:
    """Build every program on lazyfuse tensors and compute them all with one lf.compute
    (one by one to find the culprit if that raises). Returns the results by seed."""
    built: list[tuple[Program, list[Any]]] = []
    for program in programs:
        problems: list[str] | None = [] if probe else None
        try:
            arrays = [lf.asarray(inp.array()) for inp in program.inputs]
            outs = evaluate(program, arrays, 0, problems)
        except Exception as exc:
            report.fail(program, f"{what}: build", f"{type(exc).__name__}: {exc}")
            continue
        for problem in problems or ():
            report.fail(program, "error probe", problem)
        bad = [
            f"output {k}: built {t.dtype} {t.shape}, NumPy gives {w.dtype} {w.shape}"
            for k, (t, w) in enumerate(zip(outs, program.expected, strict=True))
            if not isinstance(t, lf.Tensor) or t.shape != w.shape or t.dtype != w.dtype
        ]
        if bad:
            report.fail(program, f"{what}: build", "; ".join(bad))
            continue
        built.append((program, outs))
    results: dict[int, list[np.ndarray]] = {}
    flat = [t for _, outs in built for t in outs]
    try:
        computed = list(lf.compute(*flat)) if flat else []
    except Exception:
        computed = None
    for program, outs in built:
        if computed is not None:
            results[program.seed] = computed[: len(outs)]
            del computed[: len(outs)]
            continue
        try:
            results[program.seed] = list(lf.compute(*outs))
        except Exception as exc:
            report.fail(program, f"{what}: compute", f"{type(exc).__name__}: {exc}")
    return results


def _jit_function(program: Program) -> Callable[..., Any]:
    def fn(*arrays: Any) -> tuple[Any, ...]:
        return tuple(evaluate(program, arrays, 0))

    fn.__name__ = f"program_{program.seed}"
    return fn


def check_programs(seeds: Sequence[int], parallel_every: int = 0) -> Report:
    """Checks the programs of ``seeds``, ``BATCH`` at a time. The kernels are serial
    (three times faster to compile) except, when ``parallel_every`` is n > 0, in every
    n-th batch, which runs the parallel kernels (``serial_below=0``, as the suite's)."""
    report = Report()
    for number, start in enumerate(range(0, len(seeds), BATCH)):
        programs = []
        for seed in seeds[start : start + BATCH]:
            try:
                programs.append(Generator(seed).program())
            except Exception as exc:  # a bug of this test: say which seed
                raise RuntimeError(f"generating the program of seed {seed} failed") from exc
        report.programs += programs
        parallel = bool(parallel_every) and number % parallel_every == parallel_every - 1
        with np.errstate(all="ignore"), config.override(parallel=parallel, serial_below=0):
            _check_batch(report, programs)
    return report


def _check_batch(report: Report, programs: list[Program]) -> None:
    t0 = time.perf_counter()
    fused = _build_and_compute(report, programs, "fused", probe=True)
    for program in programs:
        if program.seed in fused:
            _compare(report, program, "fused vs NumPy", fused[program.seed], program.expected)
    t1 = time.perf_counter()
    with config.override(fuse=False):
        unfused = _build_and_compute(report, programs, "unfused", probe=False)
    for program in programs:
        if program.seed in unfused:
            want = fused.get(program.seed, program.expected)
            _compare(report, program, "unfused vs fused", unfused[program.seed], want)
    t2 = time.perf_counter()
    for program in programs:
        want = fused.get(program.seed, program.expected)
        jitted = lf.jit(_jit_function(program))
        for call in (1, 2):  # the second with fresh copies, in the same layouts
            try:
                got = jitted(*(inp.array(fresh=call == 2) for inp in program.inputs))
            except Exception as exc:
                report.fail(program, f"jit call {call}", f"{type(exc).__name__}: {exc}")
                break
            _compare(report, program, f"jit call {call} vs fused", list(got), want)
    t3 = time.perf_counter()
    for what, took in (("fused", t1 - t0), ("unfused", t2 - t1), ("jit", t3 - t2)):
        report.seconds[what] += took


def _run(seeds: Sequence[int], parallel_every: int = 0) -> None:
    began = time.perf_counter()
    report = check_programs(seeds, parallel_every)
    summary = f"{report.summary()}; {time.perf_counter() - began:.1f} s in all"
    print(summary)
    if report.failures:
        raise AssertionError(
            f"{len(report.failures)} of {len(report.programs)} random programs differ ({summary}); "
            f"reproduce one with `python tests/test_random_programs.py SEED`:\n\n{report.explain()}"
        )


def test_random_programs_agree_with_numpy():
    n = int(os.environ.get("LAZYFUSE_RANDOM_PROGRAMS", "24"))
    _run(range(SHORT_SEEDS, SHORT_SEEDS + n))


LONG_PARTS = 6  # the long run in parts, so that test workers (-n auto) share it


@pytest.mark.random_programs
@pytest.mark.parametrize("part", range(LONG_PARTS))
def test_many_random_programs_agree_with_numpy(request, part):
    if "random_programs" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("the long random-program run: pytest -m random_programs")
    n = int(os.environ.get("LAZYFUSE_RANDOM_PROGRAMS_LONG", "300"))
    _run(range(LONG_SEEDS + part, LONG_SEEDS + n, LONG_PARTS), parallel_every=5)


def test_generator_is_deterministic_and_draws_everything():
    """The same seed gives the same program; the drawn programs cover every op of the table."""
    assert Generator(7).program().text() == Generator(7).program().text()
    seen = set()
    for seed in range(LONG_SEEDS, LONG_SEEDS + 400):
        program = Generator(seed).program()
        seen.update(step.op for step in program.steps)
    missing = set(OPS) - seen
    assert not missing, f"never drawn in 400 programs: {sorted(missing)}"


if __name__ == "__main__":
    # python tests/test_random_programs.py SEED [SEED ...] [--parallel]
    chosen = [int(a) for a in sys.argv[1:] if a != "--parallel"]
    with config.override(checks=True):
        found = check_programs(chosen, parallel_every=1 if "--parallel" in sys.argv else 0)
    for program in found.programs:
        print(program.text())
        print("\n".join(found.failures.get(program.seed, ["agrees with NumPy, unfused and lf.jit"])), "\n")
