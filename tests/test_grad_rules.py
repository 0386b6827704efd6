"""Gradient rules (lazyfuse/autodiff.py and the ``grad`` fields of graph/ops.py) in float64
against central differences and autograd; ties and zeros against exact values; zero
cotangents, float32, pytrees, errors, and ``grad=`` of lf.map / lf.zip.

A :class:`Case` is ``fn(ns, *args)``, written once for three namespaces: lazyfuse, NumPy
and autograd.numpy (:class:`Like` adds what NumPy lacks), so all three compute the same
function. lazyfuse's vector-Jacobian product with a fixed, uneven cotangent ``w``
(:func:`cotangent`) must match
- central differences of the NumPy version, ``sum(w * (f(x + h e_i) - f(x - h e_i))) / 2h``
  (h = 1e-6; rtol 1e-5, atol 1e-7 times ``1 + sum|w * f(x)|``), except at kinks (ties),
  where an ``exact`` gradient is given instead, and
- autograd's gradient of ``sum(w * f)`` (rtol 1e-9), where autograd has the op and does
  not divide by a zero (its prod does).

Compile time: each test computes all its cases with one ``lf.compute`` (one plan), shapes
come from a small fixed set, and kernels are serial with the C library's math
(``math="libm"``). Note: fastmath's inlined functions make a kernel about ten times
slower to compile, and what is tested here is the rules, not the math functions.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import autograd
import autograd.numpy as anp
import autograd.scipy.special as autograd_special
import numpy as np
import pytest
import scipy.special
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import strided

import lazyfuse as lf
from lazyfuse import config

H = 1e-6
NUMERIC_RTOL, NUMERIC_ATOL = 1e-5, 1e-7
AUTOGRAD_RTOL, AUTOGRAD_ATOL = 1e-9, 1e-12
EXACT_RTOL, EXACT_ATOL = 1e-12, 1e-14
# Each example that draws a new (op, shapes, layout) compiles new kernels: few examples,
# drawn from small fixed sets so that examples share kernels.
FEW = settings(max_examples=6, deadline=None)
STRIDED = ["fortran", "permuted", "negative", "sliced", "broadcast"]  # tests/strategies.py's


@pytest.fixture(autouse=True)
def _quick_kernels():
    """Serial kernels with the C library's math: several times faster to compile."""
    with config.override(parallel=False, math="libm"):
        yield


# The three namespaces --------------------------------------------------------------------


class Like:
    """NumPy or autograd.numpy, plus lazyfuse's functions that NumPy lacks (jax.nn's
    formulas), so that a case runs unchanged on lazyfuse, NumPy and autograd."""

    def __init__(self, module: Any, special: Any) -> None:
        self.module, self.special = module, special

    def __getattr__(self, name: str) -> Any:
        return getattr(self.module, name)

    def sigmoid(self, x: Any) -> Any:
        return 1 / (1 + self.module.exp(-x))

    def relu(self, x: Any) -> Any:
        return self.module.maximum(x, 0.0)

    def erf(self, x: Any) -> Any:
        return self.special.erf(x)

    def logsumexp(self, x: Any, axis: Any = None, keepdims: bool = False) -> Any:
        return self.special.logsumexp(x, axis=axis, keepdims=keepdims)

    def log_softmax(self, x: Any, axis: Any = -1) -> Any:
        return x - self.logsumexp(x, axis, keepdims=True)

    def softmax(self, x: Any, axis: Any = -1) -> Any:
        return self.module.exp(self.log_softmax(x, axis))

    def softplus(self, x: Any) -> Any:
        return self.module.logaddexp(x, 0.0)

    def log_sigmoid(self, x: Any) -> Any:
        return -self.softplus(-x)

    def silu(self, x: Any) -> Any:
        return x * self.sigmoid(x)

    def gelu(self, x: Any, approximate: bool = True) -> Any:
        if approximate:
            inner = math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)
            return 0.5 * x * (1 + self.module.tanh(inner))
        return 0.5 * x * (1 + self.erf(x / math.sqrt(2)))


NP = Like(np, scipy.special)
AG = Like(anp, autograd_special)


# Cases and the check ------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """``fn(ns, *args)`` differentiated with respect to the arguments ``wrt``."""

    label: str
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    wrt: tuple[int, ...] = (0,)
    autograd: bool = True  # False where autograd lacks the op or divides by a zero
    numeric: bool = True  # False at a kink (a tie), where ``exact`` says the convention
    exact: tuple[np.ndarray, ...] | None = None  # the gradients for cotangent(out shape)


def uniform(shape: tuple[int, ...], low: float, high: float, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(low, high, shape)


def signed(shape: tuple[int, ...], low: float = 0.2, high: float = 2.0, seed: int = 0) -> np.ndarray:
    """Values of both signs with ``low <= |x| <= high``: away from a kink at 0."""
    rng = np.random.default_rng(seed)
    return rng.uniform(low, high, shape) * rng.choice([-1.0, 1.0], shape)


def cotangent(shape: tuple[int, ...]) -> np.ndarray:
    """Uneven weights in [0.5, 1.5]: a rule that mixes up positions or drops the
    cotangent gets a different answer."""
    size = math.prod(shape)
    return (0.5 + (np.arange(size) * 7 % 11) / 10).reshape(shape)


def substituted(args: Sequence[Any], positions: Sequence[int], values: Sequence[Any]) -> list[Any]:
    replaced = list(args)
    for k, v in zip(positions, values, strict=True):
        replaced[k] = v
    return replaced


def numpy_value(case: Case, k: int, x: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        return np.asarray(case.fn(NP, *substituted(case.args, (k,), (x,))), dtype=np.float64)


def central_difference(case: Case, k: int, w: np.ndarray) -> np.ndarray:
    """``d sum(w * f) / d args[k]`` by central differences of the NumPy version."""
    x = np.array(case.args[k], dtype=np.float64)
    grad = np.zeros(x.shape)
    for i in np.ndindex(x.shape):
        step = np.zeros(x.shape)
        step[i] = H
        change = numpy_value(case, k, x + step) - numpy_value(case, k, x - step)
        grad[i] = np.sum(w * change) / (2 * H)
    return grad


def autograd_gradient(case: Case, k: int, w: np.ndarray) -> np.ndarray:
    def weighted(v: Any) -> Any:
        return anp.sum(w * case.fn(AG, *substituted(case.args, (k,), (v,))))

    return np.asarray(autograd.grad(weighted)(np.array(case.args[k], dtype=np.float64)))


def lazy_vjp(case: Case) -> tuple[np.ndarray, tuple[lf.Tensor, ...]]:
    """The cotangent used and lazyfuse's gradients (lazy) for it."""

    def fn(*differentiated: Any) -> Any:
        return case.fn(lf, *substituted(case.args, case.wrt, differentiated))

    out, pull = lf.vjp(fn, *(case.args[k] for k in case.wrt))
    expected_shape = numpy_value(case, case.wrt[0], np.asarray(case.args[case.wrt[0]])).shape
    assert out.shape == expected_shape, f"{case.label}: output shape {out.shape} != NumPy's {expected_shape}"
    w = cotangent(out.shape)
    return w, pull(w)


def compare(actual: np.ndarray, expected: np.ndarray, rtol: float, atol: float, what: str) -> str | None:
    """None when close (a NaN never is), else how many differ and the first of them."""
    if actual.shape != expected.shape:
        return f"{what}: shape {actual.shape} != {expected.shape}"
    bad = ~np.isclose(actual, expected, rtol=rtol, atol=atol) | np.isnan(actual)
    if not bad.any():
        return None
    at = tuple(int(i) for i in np.argwhere(bad)[0])
    return f"{what}: {bad.sum()} of {bad.size} differ; at {at} got {actual[at]!r}, want {expected[at]!r}"


def case_failures(case: Case, w: np.ndarray, grads: Sequence[np.ndarray]) -> list[str]:
    """What is wrong with lazyfuse's gradients ``grads`` of ``case`` for the cotangent
    ``w``: dtype and shape, then each reference the case has."""
    failures = []
    for j, (k, got) in enumerate(zip(case.wrt, grads, strict=True)):
        arg = np.asarray(case.args[k])
        if got.dtype != arg.dtype or got.shape != arg.shape:
            failures.append(
                f"arg {k}: gradient {got.dtype}{list(got.shape)} for {arg.dtype}{list(arg.shape)}"
            )
            continue
        scale = 1 + float(np.abs(w * numpy_value(case, k, arg)).sum())
        checks = []
        if case.numeric:
            checks.append(("central differences", central_difference(case, k, w), NUMERIC_RTOL, NUMERIC_ATOL))
        if case.autograd:
            checks.append(("autograd", autograd_gradient(case, k, w), AUTOGRAD_RTOL, AUTOGRAD_ATOL))
        if case.exact is not None:
            checks.append(("exact", case.exact[j], EXACT_RTOL, EXACT_ATOL))
        for name, want, rtol, atol in checks:
            failure = compare(got, want, rtol, atol * scale, f"arg {k} vs {name}")
            if failure:
                failures.append(failure)
    return failures


def check_grads(cases: Sequence[Case]) -> None:
    """Every case's gradients, computed with one ``lf.compute``, against its references;
    one AssertionError lists every case that differs."""
    assert all(c.numeric or c.autograd or c.exact is not None for c in cases)
    pending = [(case, *lazy_vjp(case)) for case in cases]
    flat = lf.compute(*[g for _, _, grads in pending for g in grads])
    failures, start = [], 0
    for case, w, grads in pending:
        computed = flat[start : start + len(grads)]
        start += len(grads)
        failures += [f"{case.label}: {f}" for f in case_failures(case, w, computed)]
    assert not failures, f"{len(failures)} wrong gradients:\n" + "\n".join(failures)


# 1. Elementwise rules --------------------------------------------------------------------------

SHAPE = (3, 4)


def _unary(name: str, values: np.ndarray) -> Case:
    return Case(name, lambda ns, x: getattr(ns, name)(x), (values,))


UNARY_DOMAINS = {
    "exp": (-2, 2),
    "exp2": (-2, 2),
    "expm1": (-2, 2),
    "log": (0.2, 3),
    "log2": (0.2, 3),
    "log10": (0.2, 3),
    "log1p": (-0.5, 3),
    "sqrt": (0.2, 3),
    "square": (-2, 2),
    "sin": (-3, 3),
    "cos": (-3, 3),
    "tanh": (-2, 2),
    "arcsin": (-0.9, 0.9),
    "arccos": (-0.9, 0.9),
    "arctan": (-2, 2),
    "sinh": (-2, 2),
    "cosh": (-2, 2),
    "tan": (-1.2, 1.2),
    "arcsinh": (-2, 2),
    "arccosh": (1.2, 3),
    "arctanh": (-0.9, 0.9),
    "erf": (-2, 2),
    "sigmoid": (-3, 3),
    "negative": (-2, 2),
}
SIGNED_UNARY = ("reciprocal", "relu", "abs")  # kinks or poles at 0


def unary_cases(shape: tuple[int, ...] = SHAPE) -> list[Case]:
    cases = [
        _unary(n, uniform(shape, lo, hi, seed=i)) for i, (n, (lo, hi)) in enumerate(UNARY_DOMAINS.items())
    ]
    return cases + [_unary(n, signed(shape, seed=i)) for i, n in enumerate(SIGNED_UNARY)]


def test_unary_elementwise_rules():
    check_grads(unary_cases())


@FEW
@given(data=st.data())
def test_unary_rules_on_strided_inputs(data):
    """The same rules on transposed, negative-stride, sliced and stride-0 inputs."""
    cases = data.draw(
        st.lists(st.sampled_from(unary_cases()), min_size=1, max_size=2, unique_by=lambda c: c.label)
    )
    layout = data.draw(st.sampled_from(STRIDED))
    check_grads([Case(c.label, c.fn, (data.draw(strided(c.args[0], layout))[0],)) for c in cases])


def _binary(name: str, x_shape: tuple[int, ...], y_shape: tuple[int, ...]) -> Case:
    """``name(x, y)`` on values inside its domain and away from its kinks."""
    a, b = uniform(x_shape, -2, 2, seed=1), uniform(y_shape, -2, 2, seed=2)
    args = {
        "divide": (a, signed(y_shape, 0.3, 2, seed=3)),
        "power": (uniform(x_shape, 0.3, 2, seed=4), b),
        "arctan2": (signed(x_shape, seed=5), signed(y_shape, seed=6)),
        "hypot": (signed(x_shape, seed=7), signed(y_shape, seed=8)),
    }.get(name, (a, b))
    label = f"{name} {x_shape} {y_shape}"
    return Case(label, lambda ns, p, q: getattr(ns, name)(p, q), args, wrt=(0, 1))


ARITHMETIC = ("add", "subtract", "multiply", "divide", "power", "arctan2", "hypot", "logaddexp")
BINARY = (*ARITHMETIC, "maximum", "minimum")  # their ties: test_ties_in_maximum_and_minimum...


def _where_case(x_shape: tuple[int, ...], y_shape: tuple[int, ...]) -> Case:
    """autograd's where does not sum over broadcast axes: compared with it only when
    the operands have the mask's shape."""
    mask_shape = np.broadcast_shapes(x_shape, y_shape)
    mask = uniform(mask_shape, -1, 1, seed=9) > 0
    x, y = uniform(x_shape, -2, 2, seed=10), uniform(y_shape, -2, 2, seed=11)
    label, same = f"where {x_shape} {y_shape}", x_shape == y_shape == mask_shape
    return Case(label, lambda ns, x, y, m: ns.where(m, x, y), (x, y, mask), (0, 1), autograd=same)


def test_binary_elementwise_rules():
    check_grads([*(_binary(name, SHAPE, SHAPE) for name in BINARY), _where_case(SHAPE, SHAPE)])


def test_copysign_rule():
    """copysign(x, y): the cotangent of x is +-1 (signs equal or not), y gets none
    (autograd has no rule for it: central differences and the exact values)."""
    x, y = signed(SHAPE, seed=12), signed(SHAPE, seed=13)
    same = np.where(np.signbit(x) == np.signbit(y), 1.0, -1.0)
    w = cotangent(SHAPE)
    check_grads(
        [
            Case(
                "copysign",
                lambda ns, p, q: ns.copysign(p, q),
                (x, y),
                wrt=(0,),
                autograd=False,
                exact=(same * w,),
            )
        ]
    )


BROADCAST_PAIRS = [((3, 1), (1, 4)), ((2, 3, 4), (4,)), ((3, 1), (2, 1, 4)), ((), (3, 4)), ((4,), (3, 1))]


@FEW
@given(data=st.data())
def test_binary_rules_undo_broadcasting_on_strided_operands(data):
    """Broadcasting undone by summing, for operands of any layout."""
    x_shape, y_shape = data.draw(st.sampled_from(BROADCAST_PAIRS))
    name = data.draw(st.sampled_from([*BINARY, "where"]))
    case = _where_case(x_shape, y_shape) if name == "where" else _binary(name, x_shape, y_shape)
    layout = data.draw(st.sampled_from(["contiguous", *STRIDED]))
    laid_out = tuple(data.draw(strided(np.asarray(a), layout))[0] for a in case.args)
    check_grads([Case(case.label, case.fn, laid_out, case.wrt, case.autograd)])


def test_power_at_a_zero_base_and_a_zero_exponent():
    """d/dx = y x^(y-1), 0 where y is 0; d/dy = x^y log x, 0 where x is 0 (as JAX)."""
    x, y = np.array([0.0, 0.0, 2.0, 0.0]), np.array([1.0, 2.0, 0.0, 3.0])
    w = cotangent((4,))
    exact = (w * np.array([1.0, 0.0, 0.0, 0.0]), w * np.array([0.0, 0.0, math.log(2), 0.0]))
    check_grads(
        [Case("power at 0", lambda ns, a, b: ns.power(a, b), (x, y), (0, 1), autograd=False, exact=exact)]
    )


def test_ties_in_maximum_and_minimum_split_evenly():
    x = np.array([1.0, 2.0, -1.0, 3.0])
    y = np.array([1.0, 0.5, -1.0, 4.0])
    w = cotangent((4,))
    x_share = {"maximum": np.array([0.5, 1.0, 0.5, 0.0]), "minimum": np.array([0.5, 0.0, 0.5, 1.0])}
    cases = [
        Case(
            f"{name} ties",
            lambda ns, a, b, name=name: getattr(ns, name)(a, b),
            (x, y),
            (0, 1),
            numeric=False,
            exact=(w * share, w * (1 - share)),
        )
        for name, share in x_share.items()
    ]
    check_grads(cases)


def test_astype_between_floats_passes_the_cotangent_in_the_argument_dtype():
    x64 = uniform(SHAPE, -2, 2)
    x32 = x64.astype(np.float32)
    w = cotangent(SHAPE)
    down = lf.vjp(lambda x: x.astype(np.float32) * 3.0, x64)[1](w.astype(np.float32))[0]
    up = lf.vjp(lambda x: x.astype(np.float64) * 3.0, x32)[1](w)[0]
    round_trip = lf.grad(lambda x: (x.astype(np.float32).astype(np.float64) * w).sum())(x64)
    down, up, round_trip = lf.compute(down, up, round_trip)
    assert (down.dtype, up.dtype, round_trip.dtype) == (np.float64, np.float32, np.float64)
    np.testing.assert_allclose(down, 3 * w.astype(np.float32), rtol=1e-7)
    np.testing.assert_allclose(up, (3 * w).astype(np.float32), rtol=1e-7)
    np.testing.assert_array_equal(round_trip, w.astype(np.float32))  # the cotangent passed float32


# 2. Reductions --------------------------------------------------------------------------------

REDUCTIONS = ("sum", "mean", "prod", "max", "min")


def _reduction(name: str, x: np.ndarray, axis: Any, keepdims: bool, **kw: Any) -> Case:
    label = f"{name} axis={axis} keepdims={keepdims}"
    return Case(label, lambda ns, v: getattr(ns, name)(v, axis=axis, keepdims=keepdims), (x,), **kw)


@FEW
@given(
    name=st.sampled_from(REDUCTIONS),
    axis=st.sampled_from([None, 0, -1, (0, 2), (1, 2)]),
    keepdims=st.booleans(),
    data=st.data(),
)
def test_reductions_over_axes_on_strided_inputs(name, axis, keepdims, data):
    """No ties (a stride-0 layout would repeat values): those are tested below."""
    x = data.draw(strided(signed((2, 3, 4), 0.5, 1.5, seed=12), data.draw(st.sampled_from(STRIDED[:-1]))))[0]
    check_grads([_reduction(name, x, axis, keepdims)])


def test_reductions_with_zeros_and_ties():
    """prod: a slice with one zero gives the product of the others at the zero and 0
    elsewhere; with two zeros, 0 everywhere (autograd's prod divides by the zero).
    max and min: ties split the cotangent evenly (as JAX and autograd)."""
    zeros = signed((3, 4), 0.5, 1.5, seed=13)
    zeros[1, 2] = 0.0
    zeros[2, [0, 3]] = 0.0
    w3, w1 = cotangent((3,)), cotangent(())
    prod_rows = np.zeros((3, 4))
    prod_rows[0] = np.prod(zeros[0]) / zeros[0]
    prod_rows[1, 2] = np.prod(np.delete(zeros[1], 2))
    prod_all = np.zeros((3, 4))  # three zeros in the only slice
    one_zero = np.where(zeros == 0, 1.0, zeros)
    one_zero[0, 1] = 0.0
    prod_one = np.zeros((3, 4))
    prod_one[0, 1] = np.prod(np.delete(one_zero, 1))
    ties = np.array([[1.0, 3.0, 3.0, 0.0], [5.0, 5.0, 5.0, 5.0], [2.0, -1.0, 0.5, 1.0]])
    max_rows = np.array([[0, 0.5, 0.5, 0], [0.25, 0.25, 0.25, 0.25], [1, 0, 0, 0]])
    min_rows = np.array([[0, 0, 0, 1], [0.25, 0.25, 0.25, 0.25], [0, 1, 0, 0]])
    max_all = np.where(ties == 5.0, 0.25, 0.0)  # four elements hold the max
    column_ties = np.array([[1.0, 2.0, 0.0, 4.0], [1.0, -2.0, 0.0, 4.0], [0.0, -2.0, 0.0, 4.0]])
    third = 1 / 3
    min_cols = np.array([[0, 0, third, third], [0, 0.5, third, third], [1, 0.5, third, third]])
    cases = [
        _reduction("prod", zeros, 1, False, autograd=False, exact=(prod_rows * w3[:, None],)),
        _reduction("prod", zeros, None, False, autograd=False, exact=(prod_all,)),
        _reduction("prod", one_zero, None, False, autograd=False, exact=(prod_one * w1,)),
        _reduction("prod", zeros, 0, True, autograd=False),
        _reduction("max", ties, 1, False, numeric=False, exact=(max_rows * w3[:, None],)),
        _reduction("max", ties, None, False, numeric=False, exact=(max_all * w1,)),
        _reduction("max", ties, (0, 1), True, numeric=False, exact=(max_all * cotangent((1, 1)),)),
        _reduction("min", ties, -1, False, numeric=False, exact=(min_rows * w3[:, None],)),
        _reduction("min", column_ties, 0, True, numeric=False, exact=(min_cols * cotangent((1, 4)),)),
    ]
    check_grads(cases)


# 3. Matmul, views, gathers ---------------------------------------------------------------------


def test_matmul_vectors_and_batch_broadcasting():
    def mm(label: str, a_shape: tuple[int, ...], b_shape: tuple[int, ...], seed: int) -> Case:
        a, b = uniform(a_shape, -1, 1, seed), uniform(b_shape, -1, 1, seed + 1)
        return Case(f"matmul {label}", lambda ns, p, q: ns.matmul(p, q), (a, b), wrt=(0, 1))

    cases = [
        mm("1-D @ 2-D", (4,), (4, 3), 20),
        mm("2-D @ 1-D", (3, 4), (4,), 22),
        mm("batch broadcast", (2, 1, 3, 4), (5, 4, 2), 24),
        Case(
            "matmul a @ b.T",
            lambda ns, p, q: p @ q.T,
            (uniform(SHAPE, -1, 1), uniform((2, 4), -1, 1)),
            (0, 1),
        ),
    ]
    check_grads(cases)


def test_views():
    x = uniform((2, 3, 4), -2, 2, seed=30)
    column = uniform((3, 1), -2, 2, seed=31)
    middle_one = uniform((3, 1, 4), -2, 2, seed=32)
    views: list[tuple[str, Callable[..., Any], np.ndarray]] = [
        ("transpose", lambda ns, v: ns.transpose(v, (2, 0, 1)), x),
        ("transpose default", lambda ns, v: ns.transpose(v), x),
        ("reshape", lambda ns, v: ns.reshape(v, (4, 6)), x),
        ("broadcast_to", lambda ns, v: ns.broadcast_to(v, (2, 3, 4)), column),
        ("expand_dims", lambda ns, v: ns.expand_dims(v, 1), x),
        ("squeeze axis", lambda ns, v: ns.squeeze(v, 1), middle_one),
        ("squeeze all", lambda ns, v: ns.squeeze(v), middle_one),
        ("index negative steps", lambda ns, v: v[::-1, 1:, ::-2], x),
        ("index int and None", lambda ns, v: v[1, :, None, ::2], x),
        ("index ellipsis", lambda ns, v: v[-1, ..., 1], x),
        ("index reversed slice", lambda ns, v: v[:, -1:0:-1], x),
        ("view then math", lambda ns, v: ns.sin(v[:, ::-1].T) * 2.0, x),
    ]
    # autograd's broadcast_to cannot add leading axes
    check_grads([Case(label, fn, (v,), autograd=label != "broadcast_to") for label, fn, v in views])


def test_gathers_scatter_add_repeated_indices():
    x = uniform((3, 4), -2, 2, seed=40)
    rows = np.array([0, 2, 0, -1, 2])
    cols = np.array([3, 0, 3, 1])
    i, j = np.array([0, 2, 2, 2]), np.array([1, 3, 1, 1])
    along = np.array([[0, 0], [3, 1], [2, 2]])
    z = uniform((4, 5), -2, 2, seed=41)
    labels = np.array([1, 4, 1, 0])
    cases = [
        Case("x[rows] repeated", lambda ns, v: v[rows], (x,)),
        Case("x[:, cols]", lambda ns, v: v[:, cols], (x,)),
        Case("x[i, j] repeated pairs", lambda ns, v: v[i, j], (x,)),
        Case("take axis=1", lambda ns, v: ns.take(v, cols, axis=1), (x,), autograd=False),
        Case("take flat", lambda ns, v: ns.take(v, np.array([5, 0, 5, 11])), (x,), autograd=False),
        Case("take_along_axis", lambda ns, v: ns.take_along_axis(v, along, axis=1), (x,), autograd=False),
        Case("log_softmax picked", lambda ns, v: ns.log_softmax(v)[ns.arange(4), labels], (z,)),
        Case("cross entropy", lambda ns, v: -ns.mean(ns.log_softmax(v)[ns.arange(4), labels]), (z,)),
    ]
    check_grads(cases)


# 4. Composite functions ------------------------------------------------------------------------


def test_softmax_family_and_statistics():
    x = uniform((3, 4), -2, 2, seed=50)
    cases = [
        Case("softmax", lambda ns, v: ns.softmax(v), (x,)),
        Case("log_softmax axes", lambda ns, v: ns.log_softmax(v, axis=(0, 1)), (x,)),
        Case("logsumexp axis=1 keepdims", lambda ns, v: ns.logsumexp(v, axis=1, keepdims=True), (x,)),
        Case("var axis=1 ddof=1", lambda ns, v: ns.var(v, axis=1, ddof=1), (x,)),
        Case("std axis=0 ddof=1 keepdims", lambda ns, v: ns.std(v, axis=0, ddof=1, keepdims=True), (x,)),
        Case("std", lambda ns, v: ns.std(v), (x,)),
    ]
    check_grads(cases)


def test_activations():
    x = uniform((3, 4), -3, 3, seed=51)
    names = ("silu", "softplus", "log_sigmoid", "gelu")
    cases = [Case(n, lambda ns, v, n=n: getattr(ns, n)(v), (x,)) for n in names]
    cases.append(Case("gelu exact", lambda ns, v: ns.gelu(v, approximate=False), (x,)))
    cases.append(Case("clip", lambda ns, v: ns.clip(v, -1.0, 1.5), (x,)))
    check_grads(cases)


def test_scans():
    """cumprod (autograd lacks it) with one zero in some slices and two in another."""
    x = signed((3, 4), 0.5, 1.5, seed=52)
    zeros = x.copy()
    zeros[1, 1] = 0.0
    zeros[2, [0, 2]] = 0.0
    cases = [
        Case("cumsum axis=0", lambda ns, v: ns.cumsum(v, axis=0), (x,)),
        Case("cumsum flat", lambda ns, v: ns.cumsum(v), (x,)),
        Case("cumprod axis=1", lambda ns, v: ns.cumprod(v, axis=1), (zeros,), autograd=False),
        Case("cumprod axis=0", lambda ns, v: ns.cumprod(v, axis=0), (zeros,), autograd=False),
        Case("cumprod flat", lambda ns, v: ns.cumprod(v), (zeros,), autograd=False),
    ]
    check_grads(cases)


def test_joining_padding_repeating():
    a, b = uniform((2, 4), -1, 1, seed=53), uniform(SHAPE, -1, 1, seed=54)
    c, x = uniform(SHAPE, -1, 1, seed=55), uniform(SHAPE, -1, 1, seed=56)
    counts = [2, 0, 1, 3]
    cases = [
        Case("concatenate axis=0", lambda ns, p, q: ns.concatenate([p, q]), (a, b), (0, 1)),
        Case("concatenate axis=1", lambda ns, p, q: ns.concatenate([p.T, q.T], axis=1), (a, b), (0, 1)),
        Case("stack axis=1", lambda ns, p, q: ns.stack([p, q], axis=1), (b, c), (0, 1)),
        Case("pad", lambda ns, v: ns.pad(v, ((1, 2), (0, 1)), mode="constant"), (x,)),
        Case("repeat int axis=1", lambda ns, v: ns.repeat(v, 2, axis=1), (x,)),
        Case("repeat flat", lambda ns, v: ns.repeat(v, 2), (x,)),
        Case("repeat counts", lambda ns, v: ns.repeat(v, counts, axis=1), (x,), autograd=False),
    ]
    check_grads(cases)


def test_contractions():
    a, b = uniform((3, 4), -1, 1, seed=57), uniform((4, 2), -1, 1, seed=58)
    p, q = uniform((2, 3, 4), -1, 1, seed=59), uniform((2, 5, 4), -1, 1, seed=60)
    r = uniform((3, 4, 2), -1, 1, seed=61)
    cases = [
        Case("einsum ij,jk->ik", lambda ns, u, v: ns.einsum("ij,jk->ik", u, v), (a, b), (0, 1)),
        Case("einsum bij,bkj->bik", lambda ns, u, v: ns.einsum("bij,bkj->bik", u, v), (p, q), (0, 1)),
        Case("einsum ij->j", lambda ns, u: ns.einsum("ij->j", u), (a,)),
        Case("einsum outer", lambda ns, u, v: ns.einsum("i,j->ij", u, v), (a[0], b[:, 0]), (0, 1)),
        Case("tensordot axes=1", lambda ns, u, v: ns.tensordot(u, v, axes=1), (a, b), (0, 1)),
        Case("tensordot axes=2", lambda ns, u, v: ns.tensordot(u, v, axes=2), (p, r), (0, 1)),
        Case("tensordot pairs", lambda ns, u, v: ns.tensordot(u, v, axes=([0, 1], [0, 1])), (a, r), (0, 1)),
    ]
    check_grads(cases)


# 5. Zero cotangents -------------------------------------------------------------------------------


def test_ops_without_a_derivative_give_zero_cotangents():
    x, y = uniform(SHAPE, -3, 3, seed=70), signed(SHAPE, 0.5, 2, seed=71)
    as_float = np.float64
    zero_paths: list[tuple[str, Callable[..., Any]]] = [
        ("comparison", lambda v: (v > y).astype(as_float) + (v == v).astype(as_float)),
        ("where of constants", lambda v: lf.where(v <= y, 1.0, 2.0)),
        ("floor_divide", lambda v: lf.floor_divide(v, y)),
        ("remainder", lambda v: lf.remainder(v, y)),
        ("round", lambda v: lf.round(v)),
        ("floor", lambda v: lf.floor(v)),
        ("sign", lambda v: lf.sign(v)),
        ("argmax", lambda v: lf.argmax(v, axis=1).astype(as_float)),
        ("through an integer", lambda v: v.astype(np.int64).astype(as_float)),
        ("stop_gradient", lambda v: lf.stop_gradient(v) * 2.0),
    ]
    w = cotangent(SHAPE)
    grads = [lf.vjp(fn, x)[1](cotangent(fn(lf.asarray(x)).shape))[0] for _, fn in zero_paths]
    # a zero path beside a differentiable one: only the differentiable one's partial
    mixed = lf.vjp(lambda v: v * lf.floor(v) + lf.stop_gradient(v) * v, x)[1](w)[0]
    computed = lf.compute(*grads, mixed)
    for (label, _), got in zip(zero_paths, computed, strict=False):
        assert got.dtype == np.float64 and got.shape == SHAPE, label
        np.testing.assert_array_equal(got, np.zeros(SHAPE), err_msg=label)
    np.testing.assert_allclose(computed[-1], w * (np.floor(x) + x), rtol=1e-14)


def test_where_guards_the_branch_not_taken():
    """A zero cotangent times an infinite partial (sqrt', log' at 0) contributes 0."""
    x = np.array([0.0, 1.0, 4.0, -1.0])
    sqrt_grad = lf.grad(lambda v: lf.where(v > 0, lf.sqrt(v), 0.0).sum())(x)
    log_grad = lf.grad(lambda v: lf.where(v > 0, lf.log(v), v).sum())(x)
    sqrt_grad, log_grad = lf.compute(sqrt_grad, log_grad)
    np.testing.assert_array_equal(sqrt_grad, [0.0, 0.5, 0.25, 0.0])
    np.testing.assert_array_equal(log_grad, [1.0, 1.0, 0.25, 1.0])


# 6. float32 ---------------------------------------------------------------------------------------


def test_float32_rules_give_float32_gradients_close_to_float64():
    """float32 arguments: float32 gradients, within float32 rounding of the float64
    gradient (autograd's, which the float64 tests compare lazyfuse's with)."""
    x, y = uniform((3, 4), -1, 1, seed=80), uniform((4, 2), -1, 1, seed=81)
    labels = np.array([1, 3, 0])
    cases = [
        Case("exp", lambda ns, v: ns.exp(v), (x,)),
        Case("tanh", lambda ns, v: ns.tanh(v), (x,)),
        Case("divide", lambda ns, u, v: u / (v[:, 0] + 2.0), (x, y), (0, 1)),
        Case("sum axis=1", lambda ns, v: ns.sum(v * v, axis=1), (x,)),
        Case("matmul", lambda ns, u, v: ns.matmul(u, v), (x, y), (0, 1)),
        Case("cross entropy", lambda ns, v: ns.log_softmax(v)[ns.arange(3), labels], (x,)),
        Case("cumsum", lambda ns, v: ns.cumsum(v, axis=1), (x,)),
    ]
    narrow = [Case(c.label, c.fn, tuple(a.astype(np.float32) for a in c.args), c.wrt) for c in cases]
    pending = [lazy_vjp(c) for c in narrow]
    flat = iter(lf.compute(*[g for _, grads in pending for g in grads]))
    for case, (w, _) in zip(cases, pending, strict=True):
        for k in case.wrt:
            got, want = next(flat), autograd_gradient(case, k, w.astype(np.float32).astype(np.float64))
            assert got.dtype == np.float32, f"{case.label} arg {k}: {got.dtype}"
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=f"{case.label} arg {k}")


# 7. Pytrees and the API's errors ----------------------------------------------------------------


def test_gradients_keep_the_pytree_structure():
    w, b = uniform((3, 4), -1, 1, seed=90), uniform((4,), -1, 1, seed=91)
    v = uniform((3, 4), -1, 1, seed=92)

    def loss(params, scale):
        return (lf.sin(params["w"]) * scale + params["b"] * params["extra"][0]).sum()

    params = {"w": w, "b": b, "extra": [v[0]]}
    g = lf.grad(loss)(params, 2.0)
    assert isinstance(g, dict) and sorted(g) == ["b", "extra", "w"] and isinstance(g["extra"], list)
    gw, gb, gextra = lf.compute(g["w"], g["b"], g["extra"][0])
    np.testing.assert_allclose(gw, 2 * np.cos(w), rtol=1e-14)
    np.testing.assert_allclose(gb, 3 * v[0], rtol=1e-14)
    np.testing.assert_allclose(gextra, 3 * b, rtol=1e-14)

    pair = lf.grad(lambda t: (t[0] * t[1]).sum())((w, v))
    assert isinstance(pair, tuple) and len(pair) == 2
    np.testing.assert_allclose(lf.compute(*pair), (v, w), rtol=1e-14)


def test_argnums_tuple_has_aux_and_value_and_grad():
    x, y = uniform((3, 4), -1, 1, seed=93), uniform((3, 4), -1, 1, seed=94)

    def loss(a, b, c):
        return (a * b * c).sum(), a + b

    (ga, gc), aux = lf.grad(loss, argnums=(0, -1), has_aux=True)(x, y, 3.0)
    (value, aux2), gb = lf.value_and_grad(loss, argnums=1, has_aux=True)(x, y, 3.0)
    assert isinstance(gc, lf.Tensor) and gc.shape == () and gc.dtype == np.float64
    ga, gc, aux, value, aux2, gb = lf.compute(ga, gc, aux, value, aux2, gb)
    np.testing.assert_allclose(ga, 3 * y, rtol=1e-14)
    np.testing.assert_allclose(gc, (x * y).sum(), rtol=1e-12)
    np.testing.assert_allclose(gb, 3 * x, rtol=1e-14)
    np.testing.assert_allclose(value, 3 * (x * y).sum(), rtol=1e-12)
    np.testing.assert_array_equal(aux, x + y)
    np.testing.assert_array_equal(aux2, x + y)


def test_vjp_of_a_non_scalar_output_with_a_given_cotangent():
    x, y = uniform((3, 4), -1, 1, seed=95), uniform((4,), -1, 1, seed=96)
    w = cotangent((3, 4))
    out, pull = lf.vjp(lambda a, b: {"p": a * b, "s": lf.tanh(a)}, x, y)
    assert sorted(out) == ["p", "s"]
    gx, gy = pull({"p": w, "s": 2 * w})
    gx, gy = lf.compute(gx, gy)
    np.testing.assert_allclose(gx, w * y + 2 * w * (1 - np.tanh(x) ** 2), rtol=1e-13)
    np.testing.assert_allclose(gy, (w * x).sum(0), rtol=1e-13)
    with pytest.raises(lf.GradError, match="shape"):
        pull({"p": w[:1], "s": w})


def test_grad_errors_name_the_function():
    x = uniform((3,), -1, 1)

    def my_loss(a, b=None):
        return (a * 2.0).sum()

    def my_vector(a):
        return a * 2.0

    def my_single(a):
        return a.sum()

    def my_triple(a):
        return a.sum(), a, a

    assert issubclass(lf.GradError, TypeError)
    for bad in (np.arange(3), 3, np.array([True])):
        with pytest.raises(lf.GradError, match="my_loss"):
            lf.grad(my_loss)(bad)
    with pytest.raises(lf.GradError, match=r"my_vector.*shape"):
        lf.grad(my_vector)(x)
    with pytest.raises(lf.GradError, match=r"my_loss.*out of range"):
        lf.grad(my_loss, argnums=2)(x, x)
    with pytest.raises(lf.GradError, match=r"my_loss.*out of range"):
        lf.grad(my_loss, argnums=(0, -3))(x, x)
    with pytest.raises(lf.GradError, match=r"my_single.*pair"):
        lf.grad(my_single, has_aux=True)(x)
    with pytest.raises(lf.GradError, match=r"my_triple.*pair"):
        lf.grad(my_triple, has_aux=True)(x)


# 8. lf.map / lf.zip with grad=, lf.reduce ---------------------------------------------------------


def cube(v):
    return v * v * v


def cube_derivative(v):
    return 3.0 * v * v


def scaled_product(a, b):
    return a * b * b


def scaled_product_by_a(a, b):
    return b * b


def scaled_product_by_b(a, b):
    return 2.0 * a * b


def larger(acc, v):
    return acc if acc > v else v


def test_map_and_zip_use_the_given_derivatives():
    x, y = uniform((3, 1), -2, 2, seed=97), uniform((1, 4), -2, 2, seed=98)
    z, w = uniform((3, 4), -2, 2, seed=99), cotangent((3, 4))
    mapped = lf.vjp(lambda a: lf.map(cube, a, grad=cube_derivative) * 1.0, z)[1]
    partials = (scaled_product_by_a, scaled_product_by_b)
    zipped = lf.vjp(lambda a, b: lf.zip(scaled_product, a, b, grad=partials), x, y)[1]
    gm, gx, gy = lf.compute(*mapped(w), *zipped(w))
    np.testing.assert_allclose(gm, w * 3 * z**2, rtol=1e-13)
    np.testing.assert_allclose(gx, (w * y * y).sum(1, keepdims=True), rtol=1e-13)
    np.testing.assert_allclose(gy, (w * 2 * x * y).sum(0, keepdims=True), rtol=1e-13)


def test_user_functions_without_a_derivative_raise():
    x = uniform((3, 4), -2, 2)
    with pytest.raises(lf.GradError, match=r"cube.*grad="):
        lf.grad(lambda a: lf.map(cube, a).sum())(x)
    with pytest.raises(lf.GradError, match=r"scaled_product.*grad="):
        lf.grad(lambda a: lf.zip(scaled_product, a, 2.0).sum())(x)
    with pytest.raises(lf.GradError, match=r"reduce\(larger"):
        lf.grad(lambda a: lf.reduce(larger, a, start=-np.inf).sum())(x)
