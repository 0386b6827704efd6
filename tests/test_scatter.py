"""The gradient of a gather is a scatter-add kernel: ``out[index] += value``, with the
cotangent's producer computed inside it (an embedding's gradient never materializes the
(sentences, length, width) cotangent), parallel only over a table axis that every
iteration writes apart (the columns of a row), serial otherwise; NumPy's ``np.add.at``
is the reference."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lazyfuse as lf
from lazyfuse import config

RNG = np.random.default_rng(11)


def scatter_reference(shape, dtype, index, values) -> np.ndarray:
    out = np.zeros(shape, dtype)
    np.add.at(out, index, values)
    return out


def embedding_loss(tokens: np.ndarray, weights: np.ndarray):
    """A masked mean of embeddings times weights: the gather's cotangent is a broadcast
    per-sentence value times a per-token mask."""
    mask = (tokens != 0).astype(np.float64)

    def loss(table):
        words = table[tokens]
        return ((words * mask[:, :, None]).sum(axis=1) * weights).sum()

    return loss, mask


def embedding_reference(table, tokens, weights, mask):
    values = weights[:, None, :] * mask[:, :, None] * np.ones(tokens.shape + table.shape[1:])
    return scatter_reference(table.shape, table.dtype, tokens, values)


def test_an_embedding_gradient_is_one_fused_scatter_kernel_and_no_host_step():
    tokens = RNG.integers(0, 20, (6, 5))
    tokens[0, :2] = 0  # padding, and repeated rows
    tokens[1] = -3  # negative ids count from the end
    table, weights = RNG.standard_normal((20, 4)), RNG.standard_normal((6, 4))
    loss, mask = embedding_loss(tokens, weights)
    grad = lf.grad(loss)(table)
    text = lf.explain(grad)
    assert "host steps" not in text
    scatter = [k for k in grad.kernels() if "scatter_add" in k.name]
    assert len(scatter) == 1
    source = scatter[0].source
    assert "+=" in source and "fused ops:" in source
    assert "multiply" in source.split("fused ops:")[1].split("\n")[0]  # the cotangent, inside
    np.testing.assert_allclose(grad.compute(), embedding_reference(table, tokens, weights, mask), rtol=1e-12)


def test_the_embedding_gradient_in_parallel_over_columns_matches_serial_and_numpy():
    """Big enough for the parallel variant: chunks of the table's columns, each thread
    adding its own columns of every row (no two threads write one element)."""
    tokens = RNG.integers(0, 50, (64, 16))
    table, weights = RNG.standard_normal((50, 48)), RNG.standard_normal((64, 48))
    loss, mask = embedding_loss(tokens, weights)
    want = embedding_reference(table, tokens, weights, mask)
    parallel = lf.grad(loss)(table).compute()
    assert "prange" in next(k.source for k in lf.grad(loss)(table).kernels() if "scatter_add" in k.name)
    with config.override(parallel=False):
        serial = lf.grad(loss)(table).compute()
    np.testing.assert_allclose(parallel, want, rtol=1e-12)
    np.testing.assert_array_equal(parallel, serial)  # each element adds in the same order


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gathers_of_every_form_scatter_back_like_np_add_at(dtype):
    x = RNG.standard_normal((5, 6)).astype(dtype)
    rows = np.array([4, 0, 4, -1, 2, 4])
    cols = np.array([[5, 0], [0, -6]])
    i, j = np.array([0, 2, 2, -5]), np.array([1, 3, 1, 1])
    along = RNG.integers(0, 6, (5, 3))
    cases = [
        ("x[rows]", lambda t: t[rows], (rows,)),
        ("x[:, cols]", lambda t: t[:, cols], (slice(None), cols)),
        ("x[i, j]", lambda t: t[i, j], (i, j)),
        ("take_along_axis", lambda t: lf.take_along_axis(t, along, axis=1), (np.arange(5)[:, None], along)),
    ]
    for label, gather, index in cases:
        cotangent = RNG.standard_normal(gather(lf.asarray(x)).shape).astype(dtype)
        _, pullback = lf.vjp(gather, x)
        (got,) = pullback(cotangent)
        got = got.compute()
        assert got.dtype == dtype, label
        want = scatter_reference(x.shape, dtype, index, cotangent)
        np.testing.assert_allclose(got, want, rtol=1e-6 if dtype == np.float32 else 1e-12, err_msg=label)


@settings(max_examples=25, deadline=None)
@given(
    vocab=st.integers(1, 7),
    sentences=st.integers(0, 4),
    length=st.integers(1, 5),
    width=st.integers(1, 4),
    reversed_table=st.booleans(),
    transposed_cotangent=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_scatter_matches_np_add_at_on_strided_values(
    vocab, sentences, length, width, reversed_table, transposed_cotangent, seed
):
    rng = np.random.default_rng(seed)
    tokens = rng.integers(-vocab, vocab, (sentences, length))
    table = rng.standard_normal((vocab, width))
    if reversed_table:
        table = table[::-1]
    cotangent = (
        rng.standard_normal((width, length, sentences)).T
        if transposed_cotangent
        else (rng.standard_normal((sentences, length, width)))
    )
    scale = rng.standard_normal()
    _, pullback = lf.vjp(lambda t: t[tokens] * scale, table)
    (got,) = pullback(cotangent)
    want = scatter_reference(table.shape, table.dtype, tokens, cotangent * scale)
    np.testing.assert_allclose(got.compute(), want, rtol=1e-12, atol=1e-14)


def test_an_index_out_of_range_raises_before_the_scatter_runs():
    _, pullback = lf.vjp(lambda t: t[np.array([0, 3])], np.ones((3, 2)))
    with pytest.raises(IndexError, match="out of bounds for axis 0 with size 3"):
        pullback(np.ones((2, 2)))[0].compute()


def test_a_second_gradient_call_does_not_recompile():
    tokens = RNG.integers(0, 9, (4, 3))
    table, weights = RNG.standard_normal((9, 5)), RNG.standard_normal((4, 5))
    loss, _ = embedding_loss(tokens, weights)
    lf.grad(loss)(table).compute()
    before = lf.cache_info()
    lf.grad(loss)(table * 2.0).compute()
    after = lf.cache_info()
    assert (after["compiles"], after["disk_loads"]) == (before["compiles"], before["disk_loads"])


def test_one_plan_serves_tables_of_other_sizes():
    """The table's extents appear in no input of the gradient's graph (a linear loss
    never reads the table), only in the scatter's shape: they key the plan and size it."""
    tokens = RNG.integers(0, 3, (2, 3))
    weights = RNG.standard_normal((2, 2))
    loss, mask = embedding_loss(tokens, weights)
    for vocab in (3, 7, 5):
        table = RNG.standard_normal((vocab, 2))
        got = lf.grad(loss)(table).compute()
        np.testing.assert_allclose(got, embedding_reference(table, tokens, weights, mask), rtol=1e-12)
