"""lazyfuse expressions over Dask arrays against NumPy on the same values: elementwise
work with broadcasting (NumPy operands, Dask operands with other chunks), every
reduction over chunked and one-chunk axes, row expressions (softmax, logsumexp,
layer-norm-like), matmul both ways with an epilogue, views, ``to_dask``, several results
in one graph, dtypes, empty arrays and chunks, and the schedulers (synchronous, threads,
processes, distributed).

The chunk sizes are odd on purpose (13 rows in chunks of 4 or 5, 7 columns in chunks of
3 or 2): the last block is short, so a kernel that assumes equal blocks is wrong there.
Arrays are small and the expressions repeat (same ops, dtypes and ranks), so each kernel
compiles once for the whole file."""

from __future__ import annotations

import contextlib
import math
import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lazyfuse as lf
from tests.conftest import Case, assert_matches, check_all, sum_atol
from tests.test_reductions import count, tolerance
from tests.test_user_functions import fold

dask = pytest.importorskip("dask")
da = pytest.importorskip("dask.array")

SHAPE = (13, 7)
CHUNKS = (4, 3)  # both axes in several chunks, the last one short
OTHER_CHUNKS = (5, 2)  # an operand whose blocks do not line up with CHUNKS
ROW_CHUNKS = (4, 7)  # axis 1 in one chunk: row work runs inside the block
REDUCTIONS = ["sum", "mean", "max", "min", "prod", "var", "std", "any", "all"]
SCHEDULERS = ["synchronous", "threads", "distributed"]

_rng = np.random.default_rng(20240611)
X = _rng.standard_normal(SHAPE)
Y = _rng.standard_normal(SHAPE)
ROW = _rng.standard_normal(SHAPE[1])
COLUMN = _rng.standard_normal((SHAPE[0], 1))
LINE = _rng.standard_normal(23)
CUBE = _rng.standard_normal((6, 5, 4))
RIGHT = _rng.standard_normal((SHAPE[1], 5))  # X @ RIGHT: (13, 5)
BIAS = _rng.standard_normal(5)


def chunked(values: np.ndarray, chunks) -> lf.Tensor:
    """``values`` as a lazy tensor over a Dask array with ``chunks``."""
    return lf.asarray(da.from_array(values, chunks=chunks))


def row_atol(x: np.ndarray, n: int) -> dict[str, float]:
    """Row expressions (softmax, log_softmax, logsumexp, centring, layer norm) over rows
    of ``n``: a max, a sum of exp and a mean each round within n * eps of the row's scale
    (1 + max|x|, as exp of shifted values is at most 1) whatever order the chunks add in;
    a factor 16 covers the few such steps an expression chains."""
    eps = float(np.finfo(x.dtype).eps)
    return {"atol": 16 * n * eps * (1 + float(np.max(np.abs(x), initial=0)))}


def matmul_atol(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Each output is a dot product of length k: two summation orders (Dask's blocks, a
    loop) each within k * eps * (|a| @ |b|) of the exact value (as in test_matmul)."""
    eps = float(np.finfo(np.result_type(a, b)).eps)
    bound = np.abs(a) @ np.abs(b)
    return {"atol": 2 * a.shape[-1] * eps * float(np.max(bound, initial=0))}


def reduction_tolerance(name: str, x: np.ndarray, n: int, ddof: int = 0) -> dict[str, float | None]:
    """sum, mean and prod: as in test_reductions (a tree of chunk sums is one more
    summation order). var and std: the mean's rounding moves every deviation and the sums
    of squares differ as any two sums do (as in test_statistics); any, all, max and min
    are exact."""
    if name not in ("var", "std"):
        return tolerance(name, x, n)
    var_atol = 4 * (sum_atol(x * x, n) or 0.0) / max(n - ddof, 1)
    return {"atol": var_atol if name == "var" else math.sqrt(var_atol)}


def reduction_case(name: str, values: np.ndarray, chunks, **kwargs) -> Case:
    """``lf.<name>`` over ``values`` in ``chunks`` against ``np.<name>``; any and all
    reduce a comparison (fused into the chunk step) so that some rows differ."""
    axis = kwargs.get("axis")
    n = count(values.shape, axis)
    label = f"{name}({values.dtype}{list(values.shape)} chunks={chunks}, {kwargs})"
    if name in ("any", "all"):
        threshold = 1.0 if name == "any" else -1.0
        return Case(
            label,
            lambda v: getattr(lf, name)(chunked(v, chunks) > threshold, **kwargs),
            lambda v: getattr(np, name)(v > threshold, **kwargs),
            (values,),
        )
    return Case(
        label,
        lambda v: getattr(lf, name)(chunked(v, chunks), **kwargs),
        lambda v: getattr(np, name)(v, **kwargs),
        (values,),
        reduction_tolerance(name, values, n, kwargs.get("ddof", 0)),
    )


def softmax_reference(x: np.ndarray, axis: int) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def logsumexp_reference(x: np.ndarray, axis: int, keepdims: bool = False) -> np.ndarray:
    top = x.max(axis=axis, keepdims=True)
    out = np.log(np.exp(x - top).sum(axis=axis, keepdims=True)) + top
    return out if keepdims else np.squeeze(out, axis)


def layer_norm(x, sqrt):
    """Centre and scale each row (no learned weights): a mean and a variance per row, then
    elementwise work that needs both."""
    centred = x - x.mean(axis=1, keepdims=True)
    return centred / sqrt((centred * centred).mean(axis=1, keepdims=True) + 1e-5)


ROW_EXPRESSIONS = {
    "softmax": (lambda t: lf.softmax(t, axis=1), lambda v: softmax_reference(v, 1)),
    "log_softmax": (lambda t: lf.log_softmax(t, axis=1), lambda v: v - logsumexp_reference(v, 1, True)),
    "logsumexp": (lambda t: lf.logsumexp(t, axis=1), lambda v: logsumexp_reference(v, 1)),
    "x - x.mean(axis=1)": (
        lambda t: t - t.mean(axis=1, keepdims=True),
        lambda v: v - v.mean(axis=1, keepdims=True),
    ),
    "layer norm": (lambda t: layer_norm(t, lf.sqrt), lambda v: layer_norm(v, np.sqrt)),
}


def row_cases(values: np.ndarray, chunks, names=tuple(ROW_EXPRESSIONS)) -> list[Case]:
    """The row expressions ``names`` along axis 1 of ``values`` in ``chunks``."""
    return [
        Case(
            f"{name} {values.dtype} chunks={chunks}",
            lambda v, build=ROW_EXPRESSIONS[name][0]: build(chunked(v, chunks)),
            ROW_EXPRESSIONS[name][1],
            (values,),
            row_atol(values, values.shape[1]),
        )
        for name in names
    ]


def matmul_cases(a_chunks, b_chunks, label: str) -> list[Case]:
    """X @ RIGHT, with Dask on both sides and with a NumPy right operand, and the
    epilogue tanh(a @ b + bias) (bias from NumPy and from Dask)."""
    tol = matmul_atol(X, RIGHT)
    return [
        Case(
            f"a @ b {label}",
            lambda a, b: chunked(a, a_chunks) @ chunked(b, b_chunks),
            np.matmul,
            (X, RIGHT),
            tol,
        ),
        Case(
            f"a @ numpy b {label}",
            lambda a, b: chunked(a, a_chunks) @ b,
            np.matmul,
            (X, RIGHT),
            tol,
        ),
        Case(
            f"tanh(a @ b + numpy bias) {label}",
            lambda a, b, c: lf.tanh(chunked(a, a_chunks) @ chunked(b, b_chunks) + c),
            lambda a, b, c: np.tanh(a @ b + c),
            (X, RIGHT, BIAS),
            tol,  # tanh's slope is at most 1: it does not grow the error
        ),
        Case(
            f"tanh(a @ b + dask bias) {label}",
            lambda a, b, c: lf.tanh(chunked(a, a_chunks) @ chunked(b, b_chunks) + chunked(c, 2)),
            lambda a, b, c: np.tanh(a @ b + c),
            (X, RIGHT, BIAS),
            tol,
        ),
    ]


def mixed_cases() -> list[Case]:
    """One of each kind of lowering (blockwise, reduction tree, row kernel, matmul with
    an epilogue): the schedulers' tests run these."""
    return [
        Case(
            "exp(x) * y + row",
            lambda x, y, r: lf.exp(chunked(x, CHUNKS)) * chunked(y, OTHER_CHUNKS) + r,
            lambda x, y, r: np.exp(x) * y + r,
            (X, Y, ROW),
        ),
        reduction_case("sum", X, CHUNKS, axis=0),
        reduction_case("max", X, CHUNKS),
        *row_cases(X, CHUNKS, ("softmax",)),
        *row_cases(X, ROW_CHUNKS, ("softmax",)),
        *matmul_cases(CHUNKS, (3, 2), "several chunks")[2:3],
    ]


# elementwise -------------------------------------------------------------------------


def test_elementwise_broadcasts_against_numpy_and_differently_chunked_dask():
    x32, y32 = X.astype(np.float32), Y.astype(np.float32)
    check_all(
        [
            Case(
                "exp(x) * 2 + numpy row",
                lambda x, r: lf.exp(chunked(x, CHUNKS)) * 2 + r,
                lambda x, r: np.exp(x) * 2 + r,
                (X, ROW),
            ),
            Case(
                "numpy column - x (NumPy on the left)",
                lambda x, c: c - chunked(x, CHUNKS),
                lambda x, c: c - x,
                (X, COLUMN),
            ),
            Case(
                "x + y, other chunks",
                lambda x, y: chunked(x, CHUNKS) + chunked(y, OTHER_CHUNKS),
                np.add,
                (X, Y),
            ),
            Case(
                "x * dask column + dask row",
                lambda x, c, r: chunked(x, CHUNKS) * chunked(c, (6, 1)) + chunked(r, 2),
                lambda x, c, r: x * c + r,
                (X, COLUMN, ROW),
            ),
            Case(
                "where(x > 0, x, 0.5 * y)",
                lambda x, y: lf.where(
                    chunked(x, CHUNKS) > 0, chunked(x, CHUNKS), 0.5 * chunked(y, OTHER_CHUNKS)
                ),
                lambda x, y: np.where(x > 0, x, 0.5 * y),
                (X, Y),
            ),
            Case(
                "1-D z * z - 1",
                lambda z: (lambda t: t * t - 1)(chunked(z, 5)),
                lambda z: z * z - 1,
                (LINE,),
            ),
            Case(
                "3-D w * numpy (5, 1)",
                lambda w, c: chunked(w, (4, 2, 3)) * c,
                lambda w, c: w * c,
                (CUBE, COLUMN[:5]),
            ),
            Case(
                "float32 x * y + 1",
                lambda x, y: chunked(x, CHUNKS) * chunked(y, OTHER_CHUNKS) + 1,
                lambda x, y: x * y + 1,
                (x32, y32),
            ),
            Case(
                "int64 x * 3 - y",
                lambda x, y: chunked(x, CHUNKS) * 3 - chunked(y, OTHER_CHUNKS),
                lambda x, y: x * 3 - y,
                ((X * 10).astype(np.int64), (Y * 10).astype(np.int64)),
            ),
        ]
    )


# reductions --------------------------------------------------------------------------


@pytest.mark.parametrize("name", REDUCTIONS)
def test_every_reduction_over_chunked_axes(name):
    """Axis None, 0, 1, -1 and (0, 1), keepdims, on two chunkings (a tree of chunk
    kernels on both axes), and over the one-chunk axis of ROW_CHUNKS (inside the block)."""
    cases = [reduction_case(name, X, CHUNKS, axis=axis) for axis in (None, 0, 1, -1, (0, 1))]
    cases += [reduction_case(name, X, CHUNKS, axis=axis, keepdims=True) for axis in (None, 0, (0, 1))]
    cases += [reduction_case(name, X, OTHER_CHUNKS, axis=axis) for axis in (None, 1)]
    cases += [reduction_case(name, X, ROW_CHUNKS, axis=1, keepdims=True)]
    check_all(cases)


def test_argmax_argmin_over_chunked_and_one_chunk_axes():
    """argmax / argmin of a fused producer: over chunked axes as Dask's arg reduction
    (each chunk's best value and index), over a one-chunk axis inside the block's kernel;
    ties across chunks and a NaN give NumPy's first index."""
    tied = np.round(X)
    tied[5, 4] = tied[2, 1] = np.nan
    cases = [
        Case(
            f"{name}(x * 2 + 1, axis={axis}) chunks={chunks} {label}",
            lambda v, n=name, a=axis, c=chunks: getattr(lf, n)(chunked(v, c) * 2 + 1, axis=a),
            lambda v, n=name, a=axis: getattr(np, n)(v * 2 + 1, axis=a),
            (values,),
        )
        for name in ("argmax", "argmin")
        for label, values in (("ties", np.round(X)), ("NaN", tied))
        for chunks, axes in ((CHUNKS, (None, 0, 1)), (ROW_CHUNKS, (1,)))
        for axis in axes
    ]
    cases.append(
        Case(
            "argmax of a 3-d cube, axis None",
            lambda v: lf.argmax(chunked(v, (4, 2, 3))),
            lambda v: np.argmax(v),
            (np.round(CUBE),),
        )
    )
    check_all(cases)


def test_mean_var_std_with_ddof():
    check_all(
        [
            reduction_case(name, X, CHUNKS, axis=axis, ddof=ddof)
            for name in ("var", "std")
            for axis in (None, 0, 1)
            for ddof in (1, 2)
        ]
        + [reduction_case("mean", X, CHUNKS, axis=(0, 1), keepdims=True)]
    )


def test_reductions_on_one_and_three_dimensions():
    cases = [
        reduction_case(name, LINE, 5, axis=axis) for name in ("sum", "max", "mean") for axis in (None, 0)
    ]
    cases += [
        reduction_case("sum", CUBE, (4, 2, 3), axis=(0, 2)),
        reduction_case("max", CUBE, (4, 2, 3), axis=1, keepdims=True),
        reduction_case("mean", CUBE, (4, 2, 3), axis=-1),
        reduction_case("var", CUBE, (4, 2, 3), axis=(1, 2)),
    ]
    check_all(cases)


def test_reductions_keep_numpys_dtypes():
    """int64 sums stay exact ints, an int mean is float64, bool any/all are bool (and a
    bool sum counts in int64), float32 stays float32 (with its own tolerance)."""
    ints = (X * 100).astype(np.int64)
    flags = X > 0.3
    x32 = X.astype(np.float32)
    cases = [
        reduction_case("sum", ints, CHUNKS),
        reduction_case("max", ints, CHUNKS, axis=0),
        reduction_case("mean", ints, CHUNKS, axis=1),
        reduction_case("prod", (X * 2).astype(np.int64), CHUNKS, axis=1),
        reduction_case("sum", x32, CHUNKS),
        reduction_case("max", x32, CHUNKS, axis=0),
        reduction_case("var", x32, CHUNKS, axis=1),
    ]
    cases += [
        Case(
            f"{name}(bool, axis={axis})",
            lambda v, n=name, a=axis: getattr(lf, n)(chunked(v, CHUNKS), axis=a),
            lambda v, n=name, a=axis: getattr(np, n)(v, axis=a),
            (flags,),
        )
        for name, axis in (("any", 0), ("all", 1), ("any", None), ("sum", None))
    ]
    check_all(cases)


# row expressions ---------------------------------------------------------------------


def test_row_expressions_along_a_chunked_axis():
    """Axis 1 in several chunks: the row statistics are reduction trees, then blockwise
    work uses them (a softmax along the chunked axis 0 is in the empty-chunks test)."""
    check_all(row_cases(X, CHUNKS, ("softmax", "logsumexp", "x - x.mean(axis=1)")))


def test_row_expressions_along_a_one_chunk_axis():
    """Axis 1 in one chunk: each block runs the whole row expression in one kernel."""
    check_all(row_cases(X, ROW_CHUNKS))


# matmul ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a_chunks", "b_chunks"),
    [((4, 7), (7, 2)), ((4, 3), (3, 2)), ((5, 3), (2, 5))],
    ids=["contracted axis one chunk", "contracted axis chunked", "contracted chunks differ"],
)
def test_matmul_and_epilogue(a_chunks, b_chunks):
    check_all(matmul_cases(a_chunks, b_chunks, f"{a_chunks} @ {b_chunks}"))


# views -------------------------------------------------------------------------------


def test_views():
    """Dask's own views (transpose, reshape, strided slices, a new axis, broadcast_to)
    between lazyfuse's elementwise and reduction work. The reshapes are ones Dask can do
    on chunks (merging axes): Dask refuses to split 13 x 7 into 7 x 13."""
    check_all(
        [
            Case("x.T * 2", lambda x: chunked(x, CHUNKS).T * 2, lambda x: x.T * 2, (X,)),
            Case("x.T (a view alone)", lambda x: chunked(x, CHUNKS).T, lambda x: x.T, (X,)),
            Case(
                "exp(w.reshape(30, 4)) + 1 (merges axes)",
                lambda w: lf.exp(chunked(w, (4, 2, 3)).reshape(30, 4)) + 1,
                lambda w: np.exp(w.reshape(30, 4)) + 1,
                (CUBE,),
            ),
            Case(
                "x.reshape(-1).sum()",
                lambda x: chunked(x, CHUNKS).reshape(-1).sum(),
                lambda x: x.reshape(-1).sum(),
                (X,),
                {"atol": sum_atol(X, X.size)},
            ),
            Case(
                "x[::2, 1:] * y[::2, 1:]",
                lambda x, y: chunked(x, CHUNKS)[::2, 1:] * chunked(y, OTHER_CHUNKS)[::2, 1:],
                lambda x, y: x[::2, 1:] * y[::2, 1:],
                (X, Y),
            ),
            Case(
                "x[::-3, ::2].max(axis=0)",
                lambda x: chunked(x, CHUNKS)[::-3, ::2].max(axis=0),
                lambda x: x[::-3, ::2].max(axis=0),
                (X,),
            ),
            Case(
                "x[None] + x",
                lambda x: (lambda t: t[None] + t)(chunked(x, CHUNKS)),
                lambda x: x[None] + x,
                (X,),
            ),
            Case(
                "broadcast_to(row) * x",
                lambda x, r: lf.broadcast_to(chunked(r, 2), SHAPE) * chunked(x, CHUNKS),
                lambda x, r: np.broadcast_to(r, SHAPE) * x,
                (X, ROW),
            ),
            Case(
                "3-D transpose(2, 0, 1).sum(axis=0)",
                lambda w: chunked(w, (4, 2, 3)).transpose(2, 0, 1).sum(axis=0),
                lambda w: w.transpose(2, 0, 1).sum(axis=0),
                (CUBE,),
                {"atol": sum_atol(CUBE, CUBE.shape[2])},
            ),
        ]
    )


# to_dask, several results, explain ---------------------------------------------------


def test_to_dask_is_a_lazy_dask_array():
    """to_dask gives a dask Array of the expression's shape and dtype; Dask can build on
    it, and its compute matches NumPy."""
    expr = lf.exp(chunked(X, CHUNKS)) * 2 + ROW
    arr = expr.to_dask()
    assert isinstance(arr, da.Array), type(arr)
    assert arr.shape == SHAPE and arr.dtype == np.float64
    assert_matches(arr.compute(), np.exp(X) * 2 + ROW)
    assert_matches((arr.T + 1).compute(), (np.exp(X) * 2 + ROW).T + 1)
    rows = lf.softmax(chunked(X, CHUNKS), axis=1).to_dask()  # reductions and blockwise layers
    assert isinstance(rows, da.Array)
    assert_matches(rows.sum(axis=0).compute(), softmax_reference(X, 1).sum(axis=0), **row_atol(X, SHAPE[0]))


def test_compute_returns_numpy_arrays_for_every_rank():
    """compute() gives NumPy arrays, a 0-d one for a full reduction (as lazyfuse does for
    NumPy inputs), not Dask arrays."""
    t = chunked(X, CHUNKS)
    for expr in (t + 1, t.sum(axis=0), t.sum()):
        got = expr.compute()
        assert isinstance(got, np.ndarray), type(got)
        assert got.shape == expr.shape


def test_compute_several_results_reads_each_block_once():
    """lf.compute(a, b) builds one graph: blocks both results need are made once. The
    source blocks count their own making (under the synchronous scheduler, so that the
    count is the number of tasks that ran)."""
    made = []
    lock = threading.Lock()

    def counted(block):
        with lock:
            if block.size:  # not a metadata probe on an empty block
                made.append(block.shape)
        return block

    source = da.from_array(X, chunks=CHUNKS).map_blocks(counted, dtype=X.dtype, meta=np.empty((0, 0)))
    blocks = source.npartitions
    e = lf.exp(lf.asarray(source))
    first, second = e.sum(axis=0), e * 2 + ROW  # kernels other tests compile too
    with dask.config.set(scheduler="synchronous"):
        got_first, got_second = lf.compute(first, second)
    assert isinstance(got_first, np.ndarray) and isinstance(got_second, np.ndarray)
    assert_matches(got_first, np.exp(X).sum(axis=0), atol=sum_atol(np.exp(X), SHAPE[0]))
    assert_matches(got_second, np.exp(X) * 2 + ROW)
    assert len(made) == blocks, f"{len(made)} source tasks ran for {blocks} blocks"


def test_explain_has_a_dask_graph_section_naming_kernels():
    """A section headed "dask graph" that lists layers and the kernels they run: for
    exp(x).sum(axis=0) over chunks, a kernel whose name says exp."""
    expr = lf.exp(chunked(X, CHUNKS)).sum(axis=0)
    for text in (lf.explain(expr), expr.explain()):
        lines = text.splitlines()
        starts = [i for i, line in enumerate(lines) if line.strip().startswith("dask graph")]
        assert starts, text
        section = "\n".join(lines[starts[0] + 1 :])
        assert section.strip(), text
        assert "exp" in section, section


# user folds and unsupported ops ------------------------------------------------------


def _decay(acc, v):
    return acc * 0.5 + v  # not associative: the order of the fold shows


def test_user_reduce_along_a_one_chunk_axis():
    check_all(
        [
            Case(
                "reduce(decay, axis=1), axis 1 one chunk",
                lambda v: lf.reduce(_decay, chunked(v, ROW_CHUNKS), axis=1, start=1.0),
                lambda v: fold(_decay, v, 1, 1.0),
                (X,),
            ),
            Case(
                "reduce(decay, axis=0), axis 0 one chunk",
                lambda v: lf.reduce(_decay, chunked(v, (13, 3)), axis=0, start=1.0),
                lambda v: fold(_decay, v, 0, 1.0),
                (X,),
            ),
        ]
    )


@pytest.mark.parametrize(("chunks", "axis"), [(CHUNKS, 1), (CHUNKS, None), ((4, 7), 0)], ids=str)
def test_user_reduce_along_a_chunked_axis_says_chunk(chunks, axis):
    with pytest.raises(lf.LazyfuseError, match="chunk"):
        lf.reduce(_decay, chunked(X, chunks), axis=axis, start=1.0).compute()


@pytest.mark.parametrize(
    ("build", "expected"),
    [
        (lambda t: lf.cumsum(lf.exp(t), axis=0), lambda x: np.cumsum(np.exp(x), axis=0)),
        (lambda t: lf.cumprod(t, axis=1), lambda x: np.cumprod(x, axis=1)),
        (lambda t: lf.take(t, np.array([0, 5, 2]), axis=0), lambda x: np.take(x, [0, 5, 2], axis=0)),
        (lambda t: t[np.array([1, 1, -4])] * 2, lambda x: x[[1, 1, -4]] * 2),
        (lambda t: t[np.array([1, 12]), np.array([0, 6])], lambda x: x[[1, 12], [0, 6]]),
        (
            lambda t: lf.concatenate([t, t + 1], axis=1).sum(axis=0),
            lambda x: np.concatenate([x, x + 1], 1).sum(0),
        ),
    ],
    ids=["cumsum", "cumprod", "take", "fancy index", "two index arrays", "concatenate"],
)
def test_scans_gathers_and_joins_run_with_dasks_own(build, expected):
    """Scans and joins are host steps Dask computes with its own functions; a gather with
    NumPy indices is Dask's pointwise indexing (vindex)."""
    assert_matches(build(chunked(X, CHUNKS)).compute(), expected(X))


def test_a_gather_refuses_indices_computed_from_dask_and_checks_its_bounds():
    t = chunked(X, CHUNKS)
    with pytest.raises(lf.LazyfuseError, match="gather"):
        t[lf.argmax(t, axis=1)].compute()
    with pytest.raises(IndexError, match="out of bounds"):
        t[np.array([0, 13])].compute()


# empty arrays and chunks -------------------------------------------------------------


def test_empty_arrays_and_empty_chunks():
    """A (0, 3) array (one empty block), and a (13, 7) array with an empty block in the
    middle of axis 0: sums of nothing are 0, a max over an empty axis is refused when
    built (as NumPy refuses), and elementwise work keeps the shapes."""
    empty = np.zeros((0, 3))
    gap = ((4, 0, 9), (3, 4))
    cases = [
        Case("exp(empty) + 1", lambda v: lf.exp(chunked(v, (2, 3))) + 1, lambda v: np.exp(v) + 1, (empty,)),
        Case("empty.T * 2", lambda v: chunked(v, (2, 3)).T * 2, lambda v: v.T * 2, (empty,)),
    ]
    cases += [
        Case(
            f"{name}(empty, axis={axis})",
            lambda v, n=name, a=axis: getattr(lf, n)(chunked(v, (2, 3)), axis=a),
            lambda v, n=name, a=axis: getattr(np, n)(v, axis=a),
            (empty,),
        )
        for name in ("sum", "max", "mean", "any")
        for axis in (None, 0, 1)
    ]
    cases += [
        reduction_case(name, X, gap, axis=axis) for name in ("sum", "max", "var") for axis in (None, 0, 1)
    ]
    cases += [
        Case(
            "softmax with an empty block",
            lambda v: lf.softmax(chunked(v, gap), axis=0),
            lambda v: softmax_reference(v, 0),
            (X,),
            row_atol(X, 13),
        ),
        Case(
            "exp(x) with an empty block + y",
            lambda x, y: lf.exp(chunked(x, gap)) + chunked(y, CHUNKS),
            lambda x, y: np.exp(x) + y,
            (X, Y),
        ),
    ]
    check_all(cases)


# chunkings drawn by hypothesis -------------------------------------------------------


@settings(max_examples=10, deadline=None)
@given(rows=st.integers(1, 13), cols=st.integers(1, 7))
def test_any_chunking_gives_numpys_answer(rows, cols):
    """The same expressions (so the same kernels) over any block shape: 1 x 1 blocks,
    one block, and everything between."""
    chunks = (rows, cols)
    check_all(
        [
            Case(
                "exp(x) * y + row",
                lambda x, y, r: lf.exp(chunked(x, chunks)) * chunked(y, OTHER_CHUNKS) + r,
                lambda x, y, r: np.exp(x) * y + r,
                (X, Y, ROW),
            ),
            reduction_case("sum", X, chunks, axis=0),
            reduction_case("max", X, chunks),
            reduction_case("var", X, chunks, axis=1),
            *row_cases(X, chunks, ("softmax",)),
        ]
    )


# schedulers --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster_client():
    """One in-process cluster for the module (one worker, two threads; "inproc://"
    addresses, so no sockets: with host="127.0.0.1" distributed 2026.8 fails to parse its
    own inproc address). Not the default client: the other tests keep Dask's local
    schedulers; ``on_scheduler`` makes it current for a block."""
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(
        n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
    )
    client = distributed.Client(cluster, set_as_default=False)
    yield client
    client.close()
    cluster.close()


@contextlib.contextmanager
def on_scheduler(name: str, request: pytest.FixtureRequest):
    """Dask's scheduler ``name`` for the block; "distributed" is the module's cluster,
    started the first time a test asks for it."""
    if name != "distributed":
        with dask.config.set(scheduler=name):
            yield None
        return
    client = request.getfixturevalue("cluster_client")
    with client.as_current(), dask.config.set(scheduler="dask.distributed"):
        yield client


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_schedulers(scheduler, request):
    with on_scheduler(scheduler, request):
        check_all(mixed_cases())


def test_distributed_workers_report_their_kernel_caches(request):
    """With a client current, cache_info has a "workers" entry keyed by worker address,
    each with its compile count."""
    with on_scheduler("distributed", request) as client:
        expr = lf.exp(chunked(X, CHUNKS)).sum(axis=0)
        assert_matches(expr.compute(), np.exp(X).sum(axis=0), atol=sum_atol(np.exp(X), SHAPE[0]))
        info = lf.cache_info()
        addresses = set(client.scheduler_info()["workers"])
    assert "workers" in info, sorted(info)
    assert set(info["workers"]) == addresses
    for address, worker in info["workers"].items():
        assert isinstance(worker["compiles"], int) and worker["compiles"] >= 0, (address, worker)


def test_processes_scheduler():
    """Tasks pickled to other processes, which load or compile the kernels themselves:
    one small reduction (process start-up is slow)."""
    with dask.config.set(scheduler="processes", num_workers=2):
        got = lf.exp(chunked(X, (7, 7))).sum(axis=0).compute()
    assert_matches(got, np.exp(X).sum(axis=0), atol=sum_atol(np.exp(X), SHAPE[0]))
