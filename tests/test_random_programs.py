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
  where needed, or ``a @ a.mT``).

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
propagation through later ops). Comparisons and float->int/bool casts whose outcome that
bound leaves undecided (``x - x == 0``) are not drawn, so the bool and int results must
match exactly. A float output matches when ``conftest.assert_matches`` accepts it with
rtol 1e-4 (float32) / 1e-10 (float64) and atol ``2 * max(bound) + conftest.ATOL``.

Each program is checked four ways: (1) ``lf.compute`` (all programs of a batch of
``BATCH`` seeds in one call) against NumPy; (2) the program built and computed under
``config.override(fuse=False)`` against (1); (3) ``lf.jit`` of the program (a function
of the input arrays) against (1), on two calls (the second with fresh copies of the
inputs in the same layouts). Compiling is the whole cost (about 1 s a program on a cold
cache, 0.07 s warm): the kernels are serial (``parallel=False``, three times faster to
compile; what small arrays run by default anyway, below ``serial_below``) except in every
5th batch of the long run, which compiles the parallel kernels.

Two tests: ``test_random_programs_agree_with_numpy`` (normal suite; N from
LAZYFUSE_RANDOM_PROGRAMS, default 24, seeds 0..N-1) and
``test_many_random_programs_agree_with_numpy`` (marked ``random_programs``; N from
LAZYFUSE_RANDOM_PROGRAMS_LONG, default 300, seeds from 1_000_000, in LONG_PARTS parts that
test workers share). The long one is
skipped unless pytest runs with a ``-m`` expression that names the marker:

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
}

UNARY = ["neg", "abs", "abs_builtin", "exp", "log_abs1", "sqrt_abs", "tanh", "sigmoid", "relu", "sin", "cos"]
ARITHMETIC = ["add", "sub", "mul", "div", "div_scalar", "maximum", "minimum"]
COMPARISONS = ["lt", "le", "gt", "ge", "eq", "ne"]
REDUCTIONS = ["sum", "prod", "max", "min", "mean"]

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
        if step.op == "index":
            shown = show_key(step.params[0])
        else:
            shown = ", ".join([show(p) for p in step.params] + [f"{k}={show(v)}" for k, v in step.kw])
        star = ", ".join(show(v) for v in step.params[0]) if step.op.endswith("varargs") else ""
        return OPS[step.op][2].format(*names, kw=shown, star=star)

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
    try:
        got = apply(step, values, 0)
    except errors as exc:
        if not isinstance(exc, lf.LazyfuseError):
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
    # views: the same view of the bound
    return np.asarray(OPS[op][1](e0, *step.params, **kw))


# ------------------------------------------------------------------------------ the generator


class Generator:
    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.rng = np.random.default_rng(seed)

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
        weights = {
            "unary": 0.17,
            "binary": 0.2,
            "compare": 0.05,
            "where": 0.06,
            "power": 0.04,
            "astype": 0.07,
            "reduce": 0.17,
            "view": 0.17,
            "matmul": 0.07,
        }
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
        return self.matmul(values, a)

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
        except Exception:  # IndexError and the like: not drawn on purpose, dropped
            return False
        errors = expected_error(out)
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
        if step.op.removeprefix("lf.") == "prod" and out.dtype.kind in "iu":
            exact = numpy_result(lambda: np.prod(_f64(values[step.args[0]]), **dict(step.kw)))
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
