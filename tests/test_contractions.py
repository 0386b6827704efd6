"""Contractions against NumPy: einsum (explicit and implicit output, ``...``, size-1
broadcasting, diagonals, several operands, size 0, every dtype and layout), tensordot,
vecdot and outer; their errors; and what they lower to (matmul for a matrix product,
one fused kernel for a multiply and a sum)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lazyfuse as lf
from lazyfuse import config
from lazyfuse.graph.ops import Op
from lazyfuse.graph.traverse import toposort
from tests.conftest import ATOL, Case, check_all
from tests.strategies import DTYPES, FLOATS, arrays_and_layout

pytestmark = pytest.mark.usefixtures("serial_kernels")

SUBSCRIPTS = [
    "ij,jk->ik",  # matmul
    "ij,kj->ik",  # matmul of a transposed view
    "bij,bjk->bik",  # batched matmul
    "ij,ij->i",  # multiply and sum
    "ij,j->i",
    "i,i",  # implicit: a full sum
    "i,j->ij",  # outer
    "ij->",
    "ba",  # implicit: transposed (alphabetical output)
    "Ba,aB",
    "ii->i",  # diagonal
    "ii",  # trace
    "iij->ji",
    "...ij->...ji",
    "...i,...i",
    "i...,i...->...",
    "ij,jk,kl->il",  # three operands
    "abc,cd,bd->a",
    "ij,jk,jl->ikl",  # a label in three operands
    "bhqd,bhkd->bhqk",  # attention scores
    "",  # a 0-d operand
]


def _tolerance(subscripts: str, operands: list[np.ndarray]) -> dict[str, float | None]:
    """Sums of products in another order than NumPy's: each result element is within
    n * eps * einsum(|operands|) of the exact value, n the terms summed."""
    dtype = np.result_type(*operands)
    if dtype.kind != "f":
        return {}
    bound = np.einsum(subscripts, *[np.abs(o).astype(np.float64) for o in operands])
    terms = max(1, max((o.size for o in operands), default=1))
    eps = float(np.finfo(dtype).eps)
    return {"atol": 4 * terms * eps * float(np.max(bound, initial=0)) + ATOL[dtype]}


@st.composite
def einsum_shapes(draw, subscripts: str) -> list[tuple[int, ...]]:
    """Shapes for the operands of ``subscripts``: one size per letter (0 to 3), some axes
    1 (broadcast), and a broadcast block of 0 to 2 axes for ``...``, each operand taking
    a suffix of it."""
    inputs = subscripts.split("->")[0].split(",")
    letters = sorted({c for part in inputs for c in part if c.isalpha()})
    sizes = {c: draw(st.integers(0, 3)) for c in letters}
    block = draw(st.lists(st.integers(1, 3), max_size=2))
    result = []
    for part in inputs:
        left, dots, right = part.partition("...")
        shape = [sizes[c] for c in left]
        if dots:
            shape += block[draw(st.integers(0, len(block))) :]
        shape += [sizes[c] for c in right]
        repeated = {c for c in part if part.count(c) > 1}
        ones = [draw(st.booleans()) and draw(st.booleans()) for _ in shape]
        broadcastable = [c not in repeated for c in left] + [True] * (len(shape) - len(left))
        result.append(
            tuple(1 if one and ok else s for s, one, ok in zip(shape, ones, broadcastable, strict=False))
        )
    return result


@settings(max_examples=5)
@given(data=st.data())
def test_einsum_matches_numpy(data):
    """Every subscript form, with drawn sizes (0 included), broadcasting and layouts, in a
    float dtype (the lowering does not depend on the dtype; the dtypes' own rules are
    the next test's)."""
    cases = []
    dtype = data.draw(st.sampled_from(FLOATS))
    for subscripts in SUBSCRIPTS:
        shapes = data.draw(einsum_shapes(subscripts))
        drawn = [data.draw(arrays_and_layout(dtype, s, low=-5, high=5)) for s in shapes]
        operands = [a for a, _ in drawn]
        label = f"einsum({subscripts!r}, {', '.join(f'{a.dtype}{a.shape}[{lay}]' for a, lay in drawn)})"
        tol = _tolerance(subscripts, operands)
        cases.append(
            Case(
                label,
                lambda *o, s=subscripts: lf.einsum(s, *o),
                lambda *o, s=subscripts: np.einsum(s, *o),
                operands,
                tol,
            )
        )
    check_all(cases)


def _integers(shape: tuple[int, ...], dtype: np.dtype, seed: int) -> np.ndarray:
    values = np.random.default_rng(seed).integers(-3, 4, shape)
    return (values > 0 if dtype.kind == "b" else values).astype(dtype)


def _einsum_case(label: str, subscripts: str, *operands: np.ndarray) -> Case:
    return Case(label, lambda *o: lf.einsum(subscripts, *o), lambda *o: np.einsum(subscripts, *o), operands)


def test_einsum_tensordot_vecdot_outer_every_dtype():
    """As NumPy's: the result dtype is np.result_type of the operands and sums accumulate
    in it (an int32 sum wraps in int32, a bool product is a logical and, its sum a logical
    or). tensordot and vecdot lower to the same kernels as the einsums beside them."""
    n = 3
    cases = []
    for dtype in DTYPES:
        a, b, c = _integers((2, n), dtype, 0), _integers((n, 2), dtype, 1), _integers((2, n), dtype, 2)
        square, vector = _integers((n, n), dtype, 3), _integers((n,), dtype, 4)
        cases += [
            _einsum_case(f"ij,jk->ik {dtype}", "ij,jk->ik", a, b),
            Case(
                f"tensordot {dtype}",
                lambda x, y: lf.tensordot(x, y, 1),
                lambda x, y: np.tensordot(x, y, 1),
                (a, b),
            ),
            _einsum_case(f"ij,ij->i {dtype}", "ij,ij->i", a, c),
            Case(f"vecdot {dtype}", lf.vecdot, np.vecdot, (a, c)),
            _einsum_case(f"i-> {dtype}", "i->", vector),
            _einsum_case(f"ii->i {dtype}", "ii->i", square),
            Case(f"outer {dtype}", lf.outer, np.outer, (vector, a)),
        ]
    big = np.full((2, n), 2**30, np.int32)
    cases += [
        _einsum_case("int32 sum wraps", "ij->", big),
        _einsum_case("int32 product wraps", "ij,ij->i", big, big),
        _einsum_case("int32 x float32", "ij,ij->i", big, np.ones((2, n), np.float32)),
        _einsum_case("a Python scalar operand is strong", "i,->i", big[0], 2),
    ]
    check_all(cases)


@settings(max_examples=4)
@given(data=st.data())
def test_tensordot_vecdot_outer(data):
    """Their axes arguments, shapes and layouts (floats: products run as BLAS)."""
    cases = []
    dtype = data.draw(st.sampled_from(FLOATS))
    n, m, k = (data.draw(st.integers(0, 3)) for _ in range(3))
    tol = {"atol": 1e-4}
    forms = [
        ((2, n, m), (n, m, k), 2),
        ((n, 3), (3, k), 1),
        ((n, 3), (k,), 0),
        ((m, n, 2), (2, n, k), ([2, -2], [0, 1])),
        ((3, n), (n, 3), ([0, 1], [1, 0])),
        ((n,), (n,), (0, 0)),
    ]
    for sa, sb, axes in forms:
        a, la = data.draw(arrays_and_layout(dtype, sa, low=-5, high=5))
        b, lb = data.draw(arrays_and_layout(dtype, sb, low=-5, high=5))
        label = f"tensordot({dtype}{sa}[{la}], {sb}[{lb}], axes={axes})"
        build, reference = (
            (lambda x, y, ax=axes: lf.tensordot(x, y, ax)),
            (lambda x, y, ax=axes: np.tensordot(x, y, ax)),
        )
        cases.append(Case(label, build, reference, (a, b), tol))
    for sa, sb, axis in [((2, n, 3), (n, 3), -1), ((3, 1), (2, 3, 4), -2), ((n,), (n,), 0)]:
        a, la = data.draw(arrays_and_layout(dtype, sa, low=-5, high=5))
        b, lb = data.draw(arrays_and_layout(dtype, sb, low=-5, high=5))
        label = f"vecdot({dtype}{sa}[{la}], {sb}[{lb}], axis={axis})"
        build, reference = (
            (lambda x, y, ax=axis: lf.vecdot(x, y, axis=ax)),
            (lambda x, y, ax=axis: np.vecdot(x, y, axis=ax)),
        )
        cases.append(Case(label, build, reference, (a, b), tol))
    a, la = data.draw(arrays_and_layout(dtype, (2, n), low=-5, high=5))
    cases.append(Case(f"outer({a.dtype}[{la}], 0-d)", lf.outer, np.outer, (a, np.float64(2.5))))
    check_all(cases)


def _ops(tensor: lf.Tensor) -> list[Op]:
    return [node.op for node in toposort([tensor.node])]


def test_multiply_and_sum_is_one_kernel():
    x, y = np.arange(12.0).reshape(3, 4), np.ones((3, 4))
    t = lf.einsum("ij,ij->i", x, y)
    assert len(t.kernels()) == 1, t.explain()
    assert Op.MATMUL not in _ops(t)
    np.testing.assert_allclose(t.compute(), np.einsum("ij,ij->i", x, y))


@pytest.mark.parametrize("subscripts", ["bij,bjk->bik", "ij,jk->ik", "ij,kj->ik"])
def test_matrix_products_go_through_matmul(subscripts):
    """One matmul node reading the operands' own nodes (or a transposed view of one): one
    kernel, no copy."""
    shapes = {
        "bij,bjk->bik": [(2, 3, 4), (2, 4, 5)],
        "ij,jk->ik": [(3, 4), (4, 5)],
        "ij,kj->ik": [(3, 4), (5, 4)],
    }
    a, b = (np.arange(np.prod(s), dtype=np.float64).reshape(s) for s in shapes[subscripts])
    t = lf.einsum(subscripts, a, b)
    ops = _ops(t)
    assert t.node.op is Op.MATMUL, t.explain()
    assert ops.count(Op.MATMUL) == 1 and set(ops) <= {Op.INPUT, Op.MATMUL, Op.PERMUTE}, ops
    assert len(t.kernels()) == 1, t.explain()
    np.testing.assert_allclose(t.compute(), np.einsum(subscripts, a, b))


def test_implicit_output_and_ellipsis_shapes():
    """NumPy's implicit rule (the ellipsis axes, then letters used once, upper case before
    lower case) gives the same shapes; nothing is computed."""
    rng = np.random.default_rng(1)
    for subscripts, shapes in [
        ("ba", [(2, 3)]),
        ("Ba,aB", [(2, 3), (3, 2)]),
        ("bA,Ac", [(2, 3), (3, 4)]),
        ("...i,i", [(2, 5, 3), (3,)]),
        ("i...->...", [(2, 3, 4)]),
    ]:
        operands = [rng.standard_normal(s) for s in shapes]
        assert lf.einsum(subscripts, *operands).shape == np.einsum(subscripts, *operands).shape, subscripts


ERRORS = [
    ("ij,jk", [(2, 3)]),  # more operands in the subscripts
    ("i", [(2,), (2,)]),  # fewer
    ("ij", [(3,)]),  # too many subscripts for the operand
    ("i", [(2, 3)]),  # too few (no ellipsis)
    ("i1", [(2, 3)]),  # not a letter
    (".i->i", [(3,)]),  # a lone dot
    ("i->k", [(3,)]),  # output label never in an input
    ("ij->ii", [(2, 3)]),  # output label twice
    ("i->i->i", [(3,)]),
    ("ii->i", [(2, 3)]),  # diagonal of unequal sizes
    ("ij,ij->ij", [(2, 2), (2, 3)]),  # does not broadcast
    ("...i->i", [(2, 3)]),  # broadcast axes without '...' in the output
]


@pytest.mark.parametrize(("subscripts", "shapes"), ERRORS, ids=[e[0] for e in ERRORS])
def test_einsum_errors_are_numpys(subscripts, shapes):
    operands = [np.ones(s) for s in shapes]
    with pytest.raises(ValueError):
        np.einsum(subscripts, *operands)
    with pytest.raises(ValueError, match="einsum") as info:
        lf.einsum(subscripts, *operands)
    assert isinstance(info.value, lf.LazyfuseError)


def test_tensordot_vecdot_errors():
    a, b = np.ones((2, 3)), np.ones((3, 2))
    builds = [
        (lambda: lf.tensordot(a, b, ([0], [0])), ValueError, "shape-mismatch"),
        (lambda: lf.tensordot(a, b, ([5], [0])), IndexError, "out of bounds"),
        (lambda: lf.tensordot(a, b, 3), IndexError, "axes=3"),
        (lambda: lf.tensordot(a, b, -1), IndexError, "axes=-1"),
        (lambda: lf.vecdot(a, np.ones(2)), ValueError, "size 3"),
        (lambda: lf.vecdot(np.ones(()), np.ones(())), ValueError, "0-d"),
        (lambda: lf.einsum(a, [0, 1]), lf.LazyfuseError, "interleaved"),
        (lambda: lf.einsum("ij"), ValueError, "no operands"),
    ]
    for build, error, match in builds:
        with pytest.raises(error, match=match) as info:
            build()
        assert isinstance(info.value, lf.LazyfuseError)


def test_on_the_cuda_target():
    """The lowering on the CUDA target (the simulator in tests): a matmul, a multiply and
    a sum, a diagonal, and an int32 sum that wraps."""
    a, b = np.arange(12.0).reshape(3, 4), np.arange(8.0).reshape(4, 2)
    big = np.full((2, 3), 2**30, np.int32)
    cases = [
        _einsum_case("ij,jk->ik", "ij,jk->ik", a, b),
        _einsum_case("ij,ij->i", "ij,ij->i", a, a),
        _einsum_case("ii->i", "ii->i", a[:, :3]),
        _einsum_case("int32 wraps", "ij->", big),
        Case("tensordot", lambda x, y: lf.tensordot(x, y, 1), lambda x, y: np.tensordot(x, y, 1), (a, b)),
    ]
    with config.override(target="cuda", cuda_block=8, cuda_tile=8):
        check_all(cases)
