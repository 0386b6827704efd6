"""matmul against NumPy: 1-D promotion on either side, batch broadcasting, size-0 axes,
every dtype (integers and bool exact, overflow wraps), strided operands, epilogues."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import lazyfuse as lf
from lazyfuse.runtime import blas
from tests.conftest import Case, check_all
from tests.strategies import DTYPES, arrays_and_layout

pytestmark = pytest.mark.usefixtures("serial_kernels")

SHAPES = [
    ((3,), (3,)),  # vector . vector -> 0-d
    ((4,), (4, 5)),  # 1-D on the left: prepended 1, removed after
    ((2, 4), (4,)),  # 1-D on the right: appended 1, removed after
    ((3,), (2, 3, 4)),
    ((2, 4, 3), (1, 3, 5)),  # batch broadcasting
    ((2, 1, 4, 3), (5, 3, 2)),
    ((1, 7), (7, 1)),
    ((0, 3), (3, 4)),  # size 0
    ((3, 0), (0, 2)),  # empty contraction: zeros
    ((2, 3), (3, 0)),
    ((0,), (0,)),
    ((9, 17), (17, 33)),  # longer than a tile or a SIMD width
]
PAIRS = [(d, d) for d in DTYPES] + [
    (np.dtype(a), np.dtype(b)) for a, b in [("int32", "float32"), ("bool", "int32"), ("int64", "float64")]
]


def _tolerance(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Float products: each output is a dot product of length k; BLAS and a loop sum in
    different orders, each within k * eps * (|a| @ |b|) of the exact value."""
    kind = np.result_type(a, b)
    if kind.kind != "f" or a.size == 0 or b.size == 0:
        return {}
    k = a.shape[-1]
    eps = float(np.finfo(kind).eps)
    bound = np.matmul(np.abs(a).astype(np.float64), np.abs(b).astype(np.float64))
    return {"atol": 2 * k * eps * float(np.max(bound, initial=0)) + 1e-6 * (kind == np.float32)}


@pytest.mark.parametrize(("shape_a", "shape_b"), SHAPES, ids=str)
@given(data=st.data())
def test_matmul_shapes_and_dtypes(shape_a, shape_b, data):
    cases = []
    for dtype_a, dtype_b in PAIRS:
        a, layout_a = data.draw(arrays_and_layout(dtype_a, shape_a, low=-9, high=9))
        b, layout_b = data.draw(arrays_and_layout(dtype_b, shape_b, low=-9, high=9))
        label = f"{dtype_a}{shape_a}[{layout_a}] @ {dtype_b}{shape_b}[{layout_b}]"
        tol = _tolerance(a, b)
        cases += [
            Case(label, lambda x, y: lf.asarray(x) @ lf.asarray(y), np.matmul, (a, b), tol),
            Case(label + " lf.matmul", lf.matmul, np.matmul, (a, b), tol),
            Case(label + " ndarray left", lambda x, y: x @ lf.asarray(y), np.matmul, (a, b), tol),
        ]
    check_all(cases)


def test_integer_products_wrap_like_numpy():
    a = np.full((2, 3), 2**20, np.int32)
    b = np.full((3, 2), 2**40, np.int64)
    check_all(
        [
            Case("int32 wraps", lambda x: lf.asarray(x) @ x.T, lambda x: x @ x.T, (a,)),
            Case("int64 wraps", lambda x, y: lf.asarray(y) @ lf.asarray(y).T, lambda x, y: y @ y.T, (a, b)),
        ]
    )


def test_bool_matmul_is_logical():
    a = np.array([[True, False], [False, False]])
    b = np.array([[True, True], [False, True]])
    check_all(
        [
            Case("bool @ bool", lf.matmul, np.matmul, (a, b)),
            Case("bool @ int32", lf.matmul, np.matmul, (a, b.astype(np.int32))),
        ]
    )


def test_products_inside_expressions():
    """An epilogue (bias, relu, reduction) after the product, transposed and reversed
    operands, and a product of computed values."""
    rng = np.random.default_rng(1)
    a, b, bias = rng.standard_normal((6, 5)), rng.standard_normal((6, 4)), rng.standard_normal(4)
    i, j = rng.integers(-5, 5, (3, 4)), rng.integers(-5, 5, (4, 2)).astype(np.int32)

    def epilogue(x, y, z, relu):
        return relu(x.T @ y[::-1] + z).sum(axis=1)

    def chained(x, y):
        return ((x * 2) @ (y + 1)).T @ (x[:, :2] - 1)

    check_all(
        [
            Case(
                "relu(a.T @ b[::-1] + bias).sum(1)",
                lambda *v: epilogue(*map(lf.asarray, v), lf.relu),
                lambda *v: epilogue(*v, lambda t: np.maximum(t, 0)),
                (a, b, bias),
                {"tol": 1e-10},
            ),
            Case(
                "products of computed ints",
                lambda x, y: chained(lf.asarray(x), lf.asarray(y)),
                chained,
                (i, j),
            ),
        ]
    )


def test_the_epilogue_after_blas_runs_serially_on_two_threads(monkeypatch):
    """BLAS's threads spin after a product: on two threads the epilogue runs serially
    (execute._SERIAL_AFTER_BLAS_THREADS); with more it stays parallel."""
    import numba

    from lazyfuse import config
    from lazyfuse.runtime import execute, plans

    rng = np.random.default_rng(5)
    a, b, bias = rng.standard_normal((40, 30)), rng.standard_normal((30, 20)), rng.standard_normal(20)
    expr = lf.maximum(lf.asarray(a) @ lf.asarray(b) + lf.asarray(bias), 0)

    def epilogue_parallel() -> set[bool]:
        """Whether the epilogue ran its parallel kernel, from a fresh record of its kernels."""
        (product, epilogue) = plans.plan_for([expr.node])[0].calls
        assert execute.uses_blas(product.spec) and not execute.uses_blas(epilogue.spec)
        epilogue.kernels.clear()  # the call's memo of loaded kernels (other tests share the plan)
        np.testing.assert_allclose(expr.compute(), np.maximum(a @ b + bias, 0), rtol=1e-12)
        return {variant.parallel for variant in epilogue.kernels}

    with config.override(parallel=True, serial_below=0, replay=False):  # each run decides again
        assert epilogue_parallel() == {numba.get_num_threads() > 2}
        monkeypatch.setattr(execute, "_SERIAL_AFTER_BLAS_THREADS", 0)
        assert epilogue_parallel() == {True}


# OpenBLAS's batched GEMM (runtime/blas.py) ------------------------------------------

needs_batched_blas = pytest.mark.skipif(
    not blas.available(), reason="NumPy's OpenBLAS has no batched GEMM here"
)


@needs_batched_blas
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_stacks_of_float_products_run_as_one_batched_gemm(dtype):
    """Above the rule's sizes, with transposed and broadcast operands read in place:
    NumPy's answers; the rule's refusals go to np.matmul, also with NumPy's answers."""
    from lazyfuse import config

    rng = np.random.default_rng(11)
    count, side = blas.fewest_products(), 101  # 101^3 multiply-adds: above OpenBLAS's small-matrix path
    a = rng.standard_normal((count, side, side + 3)).astype(dtype)
    b = rng.standard_normal((count, side + 3, side - 2)).astype(dtype)
    bias = rng.standard_normal(side - 2).astype(dtype)
    wide = rng.standard_normal((count, side, 2 * (side + 3))).astype(dtype)
    tall = rng.standard_normal((count, 2 * side, side + 3)).astype(dtype)
    tol = {"rtol": 2e-4 if dtype == np.float32 else 1e-12, "atol": 1e-3 if dtype == np.float32 else 1e-11}
    operands = [
        (a, b),
        (a.transpose(0, 2, 1).copy().transpose(0, 2, 1), b),  # each matrix column-major: CblasTrans
        (a, np.broadcast_to(b[0], b.shape)),  # one matrix for the whole stack: batch stride 0
        (a[::-1], b[:, :, :]),  # a negative batch stride
        (tall[:, ::2], b),  # rows apart in memory: a leading dimension of twice the row
    ]
    for x, y in operands:
        out = np.empty((count, side, side - 2), dtype)
        assert blas.batched(x, y, out) is not None
        got = lf.maximum(lf.asarray(x) @ lf.asarray(y) + bias, 0).compute()
        np.testing.assert_allclose(got, np.maximum(np.matmul(x, y) + bias, 0), **tol)
    out = np.empty((count, side, side - 2), dtype)
    refused = [
        (a[:, :, :100], b[:, :100, :], "100^3 or fewer multiply-adds: OpenBLAS's small-matrix path"),
        (a[:2], b[:2], "too few products per thread"),
        (wide[:, :, ::2], b, "no unit stride in a's matrices (above the size floor)"),
    ]
    for x, y, why in refused:
        target = np.empty((len(x), x.shape[1], y.shape[2]), dtype)
        assert blas.batched(x, y, target) is None, why
        np.testing.assert_allclose((lf.asarray(x) @ lf.asarray(y)).compute(), np.matmul(x, y), **tol)
    assert blas.batched(a.astype(np.int64), b.astype(np.int64), np.empty(out.shape, np.int64)) is None
    assert blas.batched(a, b.astype(np.float32 if dtype == np.float64 else np.float64), out) is None
    with config.override(batched_blas=False):
        assert blas.batched(a, b, out) is None


@needs_batched_blas
def test_explain_names_the_batched_gemm_where_the_rule_chooses_it():
    count = blas.fewest_products()
    stack = lf.asarray(np.ones((count, 101, 101))) @ lf.asarray(np.ones((count, 101, 101)))
    assert "OpenBLAS's batched GEMM" in stack.explain()
    single = lf.asarray(np.ones((101, 101))) @ lf.asarray(np.ones((101, 101)))
    assert "by the rule for float products: numpy.matmul" in single.explain()
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((count, 101, 101)).astype(np.float32), rng.standard_normal((count, 101, 101))
    mixed = lf.asarray(a) @ lf.asarray(b)  # float32 @ float64 operands: the batched GEMM takes one dtype
    assert "by the rule for float products: numpy.matmul" in mixed.explain()
    np.testing.assert_allclose(mixed.compute(), a @ b, rtol=1e-10, atol=1e-9)


def test_a_batched_gemm_that_disagrees_with_numpy_is_not_used():
    """blas._agrees, the check on first use: a function that leaves its output unwritten
    fails it (np.empty's contents are not the products)."""

    def writes_nothing(*arguments):
        return None

    assert not blas._agrees({np.dtype(np.float64): writes_nothing})
    if blas.available():
        assert blas._agrees(blas._loaded()[0])
