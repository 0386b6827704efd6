"""The CUDA target (on Numba's simulator: tests/conftest.py sets NUMBA_ENABLE_CUDASIM=1).

The differential tests of the CPU target run again here, with every ``compute()``
going to CUDA (``config.override(target="cuda")``), blocks of 8 threads and 8x8
matmul tiles, so small arrays already cross block and tile edges (the simulator runs
each CUDA thread as a Python thread and waits on every ``syncthreads``: small blocks
keep it fast). Then tests of what only the CUDA target has: rows longer than a block,
launch edges, matmul shapes and 32x32 tiles, device functions, the generated source.
The simulator runs a user's function as plain Python, so ``lf.map`` and ``lf.zip`` of
float32 values (which Numba computes in float32) are tested on the CPU only.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lazyfuse as lf
from lazyfuse import config
from lazyfuse.graph.ops import Op
from lazyfuse.graph.traverse import toposort
from tests.test_elementwise import (  # noqa: F401  (collected again, for CUDA)
    test_broadcasting_and_strided_layouts,
    test_every_dtype_pair_matches_numpy,
    test_python_scalars_are_weak_on_either_side,
    test_unary_functions_match_numpy,
    test_where_broadcasts_three_operands,
)
from tests.test_fusion_random import test_fused_kernels_agree_with_the_interpreter  # noqa: F401
from tests.test_matmul import (  # noqa: F401
    test_bool_matmul_is_logical,
    test_integer_products_wrap_like_numpy,
)
from tests.test_reductions import (  # noqa: F401
    test_empty_axes,
    test_fused_producers_and_consumers,
    test_nan_propagates_and_large_int_sums_are_exact,
    test_reductions_on_every_dtype,
)
from tests.test_user_functions import test_reduce_is_a_left_fold_in_c_order  # noqa: F401
from tests.test_views import test_random_chains_of_views_and_arithmetic  # noqa: F401

# The simulator runs kernels as NumPy scalar code in threads, where np.errstate does not
# reach: IEEE results (inf, nan) come with warnings there, and not on a GPU.
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


@pytest.fixture(autouse=True)
def _on_cuda(request):
    """Every compute() in this module runs on the CUDA target, with small blocks; the
    differential tests without settings of their own run the "cuda" profile's examples.
    Note: @given reads the default settings when it decorates (at import, under the
    "lazyfuse" profile) and keeps them on the test function: loading the profile here
    alone does not change them, so they are swapped for the test's run, and restored for
    the CPU module that defined the test."""
    test = request.function
    saved = getattr(test, "_hypothesis_internal_use_settings", None)
    swap = saved is not None and not getattr(test, "_hypothesis_internal_settings_applied", False)
    if swap:
        test._hypothesis_internal_use_settings = settings.get_profile("cuda")
    settings.load_profile("cuda")
    try:
        with config.override(target="cuda", cuda_block=8, cuda_tile=8):
            yield
    finally:
        settings.load_profile("lazyfuse")
        if swap:
            test._hypothesis_internal_use_settings = saved


def test_compute_really_ran_on_cuda():
    x = lf.asarray(np.arange(5.0))
    assert "cuda.jit" in (x * 2.0).kernels()[0].source
    assert [k.target for k in (x * 2.0).kernels()] == ["cuda"]


@pytest.mark.parametrize("cols", [1, 7, 8, 9, 33, 100])
def test_rows_shorter_and_longer_than_a_block(cols):
    """A block of 8 threads per row: rows of 1..100 elements, softmax and layernorm."""
    rng = np.random.default_rng(cols)
    x = rng.standard_normal((3, cols)).astype(np.float32)
    t = lf.asarray(x)
    e = lf.exp(t - t.max(axis=-1, keepdims=True))
    softmax = e / e.sum(axis=-1, keepdims=True)
    centered = t - t.mean(axis=-1, keepdims=True)
    layernorm = centered / lf.sqrt((centered * centered).mean(axis=-1, keepdims=True) + 1e-5)
    got_softmax, got_layernorm = lf.compute(softmax, layernorm)
    ex = np.exp(x - x.max(axis=-1, keepdims=True))
    np.testing.assert_allclose(got_softmax, ex / ex.sum(axis=-1, keepdims=True), rtol=1e-5, atol=1e-7)
    cx = x - x.mean(axis=-1, keepdims=True)
    expected = cx / np.sqrt((cx * cx).mean(axis=-1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(got_layernorm, expected, rtol=1e-4, atol=1e-5)  # float32 sums of 100 terms
    assert len(softmax.kernels()) == 1 and len(layernorm.kernels()) == 1


@pytest.mark.parametrize("size", [31, 32, 33, 1025])
def test_elementwise_launches_cover_every_element(size):
    x = np.arange(size, dtype=np.int64)
    np.testing.assert_array_equal((lf.asarray(x) * 3 + 1).compute(), x * 3 + 1)
    np.testing.assert_array_equal(lf.asarray(x).sum().compute(), x.sum())


MATMUL_SHAPES = [
    ((3, 5), (5, 4)),
    ((9, 2), (2, 9)),
    ((5,), (5, 3)),
    ((2, 1, 3, 2), (3, 2, 2)),
    ((0, 3), (3, 2)),
]


@pytest.mark.parametrize(("shape_a", "shape_b"), MATMUL_SHAPES, ids=str)
def test_matmul_shapes_dtypes_and_an_epilogue(shape_a, shape_b):
    """8x8 tiles: edge tiles, 1-D operands, broadcast batches, empty; every dtype pair."""
    rng = np.random.default_rng(1)
    cases, expected = [], []
    for da, db in [("float64", "float32"), ("int32", "int64"), ("bool", "bool"), ("float32", "int32")]:
        a = rng.integers(-3, 4, shape_a).astype(da)
        b = rng.integers(-3, 4, shape_b).astype(db)
        cases += [lf.asarray(a) @ b, lf.maximum(lf.asarray(a) @ lf.asarray(b).T.T, 0)]
        expected += [a @ b, np.maximum(a @ b, 0)]
    for got, want in zip(lf.compute(*cases), expected, strict=True):
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_array_equal(got, want)  # small integers: exact in every dtype


def test_matmul_with_32x32_tiles():
    """The default tile: 33x33 (a row and a column of tiles past the edge, two steps
    along k) and a batched (2,20,33) @ (2,33,21) with an epilogue (smaller than a tile;
    the simulator runs each of a block's 1024 threads in Python)."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((33, 33)), rng.standard_normal((33, 33))
    c, d = rng.standard_normal((2, 20, 33)), rng.standard_normal((2, 33, 21))
    with config.override(cuda_tile=32):
        got = lf.compute(lf.asarray(a) @ b, lf.relu(lf.asarray(c) @ d + 1.0))
    np.testing.assert_allclose(got[0], a @ b, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got[1], np.maximum(c @ d + 1.0, 0), rtol=1e-12, atol=1e-12)


def test_a_user_function_runs_as_a_device_function():
    def clipped_square(v):
        return min(v * v, 10.0)

    x = np.linspace(-5, 5, 40)
    expr = lf.map(clipped_square, x)
    np.testing.assert_allclose(expr.compute(), np.minimum(x * x, 10.0), rtol=1e-12)
    assert "device functions: fn" in expr.kernels()[0].source or "clipped_square" in expr.kernels()[0].source


def test_the_cuda_source_has_the_block_reduction_and_explain_shows_it():
    t = lf.asarray(np.ones((4, 50)))
    source = t.sum(axis=1).kernels()[0].source
    assert "cuda.shared.array(8," in source and "cuda.syncthreads()" in source
    assert "for i0 in range(cuda.blockIdx.x, n0, cuda.gridDim.x):" in source
    text = t.sum(axis=1).explain()
    assert "target: cuda" in text


def test_out_and_results_come_back_to_the_host():
    x = np.arange(12.0).reshape(3, 4)
    out = np.empty((4, 3))
    result = (lf.asarray(x).T * 2.0).compute(out=out)
    assert result is out
    np.testing.assert_array_equal(out, x.T * 2)
    assert isinstance(lf.asarray(x).sum(axis=0).compute(), np.ndarray)


def test_without_a_gpu_or_the_simulator_the_error_says_what_to_do(monkeypatch):
    from numba import cuda

    monkeypatch.setattr(cuda, "is_available", lambda: False)
    with pytest.raises(lf.LazyfuseError, match="NUMBA_ENABLE_CUDASIM=1"):
        (lf.asarray(np.ones(3)) + 1.0).compute()


def test_full_reductions_run_in_two_stages():
    """Many blocks write partial results, one block folds them (one pass of built-in
    reductions); a reduction with two passes (x - x.mean()) stays in one block."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal(1000)
    t = lf.asarray(x)
    names = [k.name for k in ((t - 1.0) ** 2).mean().kernels()]
    assert names[0].endswith("_partials") and names[1].endswith("_final")
    assert "partial_acc0[cuda.blockIdx.x]" in ((t - 1.0) ** 2).mean().kernels()[0].source
    got = lf.compute(((t - 1.0) ** 2).mean(), t.max(), t.min(), lf.asarray(x > 0).sum(), (t - t.mean()).sum())
    np.testing.assert_allclose(got[0], ((x - 1.0) ** 2).mean(), rtol=1e-12)
    assert (got[1], got[2], got[3]) == (x.max(), x.min(), (x > 0).sum())
    np.testing.assert_allclose(got[4], (x - x.mean()).sum(), atol=1e-12)
    assert len((t - t.mean()).sum().kernels()) == 1


def test_device_arrays_are_inputs_on_both_targets(monkeypatch):
    """A device array the user passes is read where it is on CUDA (no copy to the
    device) and copied to the host by the CPU target."""
    from numba import cuda

    x = np.arange(24.0).reshape(4, 6)
    on_device = cuda.to_device(x)
    expr = lf.exp(lf.asarray(on_device) * 0.5) + lf.asarray(on_device).sum(axis=1, keepdims=True)
    expected = np.exp(x * 0.5) + x.sum(axis=1, keepdims=True)
    copies = []
    real_to_device = cuda.to_device
    monkeypatch.setattr(
        cuda, "to_device", lambda a, *r, **k: copies.append(a.shape) or real_to_device(a, *r, **k)
    )
    np.testing.assert_allclose(expr.compute(), expected, rtol=1e-12)
    assert copies == []  # both kernels read the user's device array
    np.testing.assert_allclose(expr.compute(target="cpu"), expected, rtol=1e-12)
    with pytest.raises(lf.DTypeError):
        lf.asarray(cuda.to_device(np.zeros(3, np.int8)))


def test_a_traced_function_runs_on_cuda(monkeypatch):
    """lf.jit under LAZYFUSE_TARGET=cuda (this module's setting): the trace and every
    later call run the CUDA kernels."""
    from lazyfuse.runtime import cuda_execute

    launched = []
    real = cuda_execute.run_plan
    monkeypatch.setattr(cuda_execute, "run_plan", lambda *a, **k: launched.append(1) or real(*a, **k))
    softmax = lf.jit(lambda x: lf.exp(x - x.max(axis=1, keepdims=True)).sum(axis=1))
    rng = np.random.default_rng(2)
    for _ in range(2):
        x = rng.standard_normal((3, 20))
        np.testing.assert_allclose(
            softmax(x), np.exp(x - x.max(axis=1, keepdims=True)).sum(axis=1), rtol=1e-12
        )
    assert len(launched) == 2 and len(softmax.traces) == 1


def test_views_of_device_values_are_gathered_on_the_device(monkeypatch):
    """A transpose, slice or broadcast of a computed value, or of an input, is taken on
    the device: only the results come back to the host, and each input crosses once, at
    its own size (a broadcast bias is not inflated first)."""
    from numba import cuda

    from lazyfuse.runtime import cuda_execute

    rng = np.random.default_rng(8)
    x, y, bias = rng.standard_normal((5, 7)), rng.standard_normal((7, 6)), rng.standard_normal(5)
    xt, yt, bt = lf.asarray(x), lf.asarray(y), lf.asarray(bias)
    cases = [
        ((xt @ yt).T + bt, (x @ y).T + bias),
        ((xt @ yt)[::-1, 1::2] * 2.0, (x @ y)[::-1, 1::2] * 2.0),
        (xt.sum(axis=1)[:, None] * xt, x.sum(axis=1)[:, None] * x),
        (lf.exp(xt[::-1].T).sum(axis=1), np.exp(x[::-1].T).sum(axis=1)),
    ]
    sent, fetched = [], []
    real_to_device, real_host = cuda.to_device, cuda_execute._Run.host
    monkeypatch.setattr(
        cuda, "to_device", lambda a, *r, **k: sent.append(a.size) or real_to_device(a, *r, **k)
    )
    monkeypatch.setattr(
        cuda_execute._Run, "host", lambda run, node: fetched.append(node) or real_host(run, node)
    )
    for expr, expected in cases:
        sent.clear()
        fetched.clear()
        np.testing.assert_allclose(expr.compute(), expected, rtol=1e-12)
        # the result alone comes back (a node of the plan's own graph)
        assert [(n.op, n.shape) for n in fetched] == [(expr.node.op, expr.shape)]
        inputs = [leaf.size for leaf in toposort([expr.node]) if leaf.op is Op.INPUT]
        assert sorted(sent) == sorted(inputs)


def test_a_reshape_numpy_cannot_view_is_made_on_the_host():
    """The one view the device does not gather: a reshape of a transposed computed value
    (NumPy copies there too)."""
    x = np.arange(12.0).reshape(3, 4)
    t = lf.asarray(x)
    product = t @ lf.asarray(np.eye(4))
    np.testing.assert_array_equal(
        (product.T.reshape(2, 6) + 1.0).compute(), (x @ np.eye(4)).T.reshape(2, 6) + 1
    )


@pytest.mark.parametrize(
    "view",
    [
        lambda a: a.T,
        lambda a: a[::-2, 1:],
        lambda a: a[1, ::-1],
        lambda a: np.broadcast_to(a[:, :1], (3, 4)),
        lambda a: a[None, :, 2:].transpose(2, 0, 1),
        lambda a: a[:0],
        lambda a: a.reshape(2, 6),
    ],
)
def test_gather_matches_numpy_views(view):
    from numba import cuda

    from lazyfuse.runtime import cuda_views

    base = np.arange(12.0).reshape(3, 4)
    stand_in = cuda_views.stand_in(base.shape)
    found = cuda_views.layout(view(stand_in), stand_in)
    gathered = cuda_views.gather(cuda, cuda.to_device(base.reshape(-1)), found, base.dtype, 8, 2)
    np.testing.assert_array_equal(gathered.copy_to_host(), view(base))


def test_the_epilogue_runs_in_the_matmul_store():
    """relu(x @ w + b) * 2 is one CUDA kernel: the elementwise work happens where the
    product's element is stored. A product that is also a result is stored as well; a
    view of the product between it and the elementwise work keeps two kernels."""
    rng = np.random.default_rng(4)
    x, w, b = rng.standard_normal((2, 9, 5)), rng.standard_normal((5, 11)), rng.standard_normal(11)
    xt, wt, bt = lf.asarray(x), lf.asarray(w), lf.asarray(b)
    fused = lf.relu(xt @ wt + bt) * 2.0
    (kernel,) = fused.kernels()
    assert "_then_" in kernel.name and "out0[e0] = " in kernel.source and "product[" not in kernel.source
    assert "# then, in the store of each element: fused ops: add, relu, multiply" in kernel.source
    np.testing.assert_allclose(fused.compute(), np.maximum(x @ w + b, 0) * 2.0, rtol=1e-12)
    product = xt @ wt
    both = lf.compute(product, lf.relu(product + bt), product[:, ::-1] * 3.0)
    for got, want in zip(both, [x @ w, np.maximum(x @ w + b, 0), (x @ w)[:, ::-1] * 3.0], strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12)
    assert len((product.T + 1.0).kernels()) == 2  # through a view: the product is stored first


def test_a_launch_drops_the_device_values_it_reads_last():
    """The CUDA target runs a plan's steps (plans.Step, the CPU target's shape too): each
    names the stored values no later step reads, which the run drops from the device.
    A two-layer network's hidden layer (made in the first product's store) goes after the
    second product reads it; that product goes after the sum."""
    from lazyfuse.runtime import cuda_execute, plans

    rng = np.random.default_rng(5)
    x, w1, b, w2 = (rng.standard_normal(shape) for shape in ((6, 4), (4, 5), (5,), (5, 3)))
    out = (lf.relu(lf.asarray(x) @ w1 + b) @ w2).sum(axis=1)
    steps = cuda_execute.steps(plans.fresh_plan(cuda_execute.lowered([out.node])))
    assert [(s.call.spec.kind, s.epilogue is not None) for s in steps] == [
        ("matmul", True),
        ("matmul", False),
        ("loop", False),
    ]
    (hidden,) = steps[0].epilogue[0].outputs
    (product,) = steps[1].call.outputs
    assert [hidden in s.dying for s in steps] == [False, True, False]
    assert [product in s.dying for s in steps] == [False, False, True]
    np.testing.assert_allclose(out.compute(), (np.maximum(x @ w1 + b, 0) @ w2).sum(axis=1), rtol=1e-12)


def test_a_plan_run_on_cuda_then_on_the_cpu_gives_numpys_answer_on_both():
    """Both targets share a plan where CUDA's lowering changes nothing; each keeps its own
    steps on it. (A column sum whose CUDA steps the CPU then ran, without arranging its
    arrays, gave wrong sums.)"""
    x = np.random.default_rng(0).standard_normal((13, 7))
    expected = x.sum(axis=0)
    np.testing.assert_allclose(lf.asarray(x).sum(axis=0).compute(), expected, rtol=1e-12)
    with config.override(target="cpu"):
        np.testing.assert_allclose(lf.asarray(x).sum(axis=0).compute(), expected, rtol=1e-12)


def test_an_array_read_by_a_matmul_and_by_elementwise_work():
    """A residual x @ w + x and (x + 1) @ x: the same input in a matmul's form and in
    the elementwise form, each loaded in its own."""
    rng = np.random.default_rng(9)
    x, w = rng.standard_normal((4, 4)), rng.standard_normal((4, 4))
    xt = lf.asarray(x)
    got = lf.compute(xt @ w + xt, (xt + 1.0) @ xt, lf.relu(xt.T @ w) + xt.T)
    for g, want in zip(got, [x @ w + x, (x + 1.0) @ x, np.maximum(x.T @ w, 0) + x.T], strict=True):
        np.testing.assert_allclose(g, want, rtol=1e-12)


def test_an_integer_epilogue_reads_the_wrapped_product():
    """int32 products wrap as NumPy's (50000^2 > 2^31); the epilogue sees that value.
    (On a GPU, Numba computes the accumulator in int64; the simulator runs NumPy scalars,
    which wrap by themselves, so the source is checked too.)"""
    x = lf.asarray(np.array([[50000]], np.int32))
    (kernel,) = ((x @ x) > 0).kernels()
    assert "x0 = np.int32(acc)" in kernel.source
    product = np.array([[50000]], np.int32) @ np.array([[50000]], np.int32)
    got = lf.compute((x @ x) > 0, lf.maximum(x @ x, 0))
    np.testing.assert_array_equal(got[0], product > 0)
    np.testing.assert_array_equal(got[1], np.maximum(product, 0))


def test_a_slice_of_a_numpy_input_crosses_alone(monkeypatch):
    """A part of a NumPy input is made on the host: only that part crosses."""
    from numba import cuda

    big = np.arange(1000.0)
    sent = []
    real_to_device = cuda.to_device
    monkeypatch.setattr(
        cuda, "to_device", lambda a, *r, **k: sent.append(a.size) or real_to_device(a, *r, **k)
    )
    np.testing.assert_array_equal((lf.asarray(big)[10:13] * 2.0).compute(), big[10:13] * 2)
    assert sent == [3]


@settings(max_examples=25, deadline=None)
@given(
    batch=st.sampled_from([(), (1,), (3,), (2, 2)]),
    m=st.integers(1, 11),
    k=st.integers(0, 10),
    n=st.integers(1, 11),
    steps=st.lists(
        st.sampled_from(["bias", "relu", "scale", "tanh", "square", "where"]), min_size=1, max_size=4
    ),
    keep=st.booleans(),
)
def test_random_epilogues_in_the_matmul_store(batch, m, k, n, steps, keep):
    """Chains of elementwise work after a (batched) product, fused into its store, against
    NumPy; with ``keep`` the product is a result too."""
    rng = np.random.default_rng(m * 100 + k * 10 + n)
    a, b = rng.standard_normal((*batch, m, k)), rng.standard_normal((k, n))
    bias = rng.standard_normal(n)
    ours, theirs = lf.asarray(a) @ lf.asarray(b), a @ b
    product = (ours, theirs)
    for step in steps:
        if step == "bias":
            ours, theirs = ours + lf.asarray(bias), theirs + bias
        elif step == "relu":
            ours, theirs = lf.relu(ours), np.maximum(theirs, 0)
        elif step == "scale":
            ours, theirs = ours * 0.5, theirs * 0.5
        elif step == "tanh":
            ours, theirs = lf.tanh(ours), np.tanh(theirs)
        elif step == "square":
            ours, theirs = ours * ours, theirs * theirs
        else:
            ours, theirs = lf.where(ours > 0, ours, -1.0), np.where(theirs > 0, theirs, -1.0)
    roots = [ours, product[0]] if keep else [ours]
    got = lf.compute(*roots)
    np.testing.assert_allclose(got[0], theirs, rtol=1e-12, atol=1e-12)
    if keep:
        np.testing.assert_allclose(got[1], product[1], rtol=1e-12, atol=1e-12)
