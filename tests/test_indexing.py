"""Integer-array and boolean indexing, take and take_along_axis against NumPy; gathers
inside kernels (structure), index checks, and the CUDA target's host gather."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import assert_matches
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import DTYPES, arrays_and_layout, shapes

import lazyfuse as lf

RNG = np.random.default_rng(16)
X = RNG.random((5, 6, 7))
IDX = np.array([[0, 4], [-1, 2]])

# NumPy's advanced indexing: arrays, lists, ints beside arrays (advanced too), slices,
# None, Ellipsis, masks; adjacent advanced axes stay in place, separated ones go first.
KEYS = [
    (IDX,),
    (slice(None), IDX),
    (IDX, IDX),
    (slice(None), slice(1, 3), [1, 2]),
    (1, slice(None), [0, 3]),
    ([0, 1], slice(None), [0, 3]),
    (Ellipsis, [2, -1]),
    (None, [1, 2]),
    (slice(None, None, -1), [[1], [2]], slice(2, None, 2)),
    ([],),
    (np.array([True, False, True, False, True]), 2),
    (X[:, :, 0] > 0.5,),
    (X > 0.5,),
    (np.int32([4, 0]), np.int64([[1], [5]])),
]


def test_advanced_indexing_matches_numpy(serial_kernels):
    x = lf.asarray(X)
    results = lf.compute(*[x[key] for key in KEYS])
    for key, got in zip(KEYS, results, strict=True):
        assert_matches(got, X[key], msg=repr(key))


@settings(max_examples=8)
@given(st.data())
def test_gather_any_dtype_layout_and_shape(serial_kernels, data):
    dtype = data.draw(st.sampled_from(DTYPES))
    shape = data.draw(shapes(min_dims=1, max_dims=3, min_side=1))
    table, layout = data.draw(arrays_and_layout(dtype, shape))
    axis = data.draw(st.integers(0, len(shape) - 1))
    n = shape[axis]
    index = np.asarray(data.draw(st.lists(st.integers(-n, n - 1), max_size=4)), dtype=np.int64)
    key = (slice(None),) * axis + (index,)
    assert_matches(lf.asarray(table)[key].compute(), table[key], msg=layout)
    assert_matches(lf.take(table, index, axis=axis).compute(), np.take(table, index, axis=axis), msg=layout)


def test_take_along_axis_matches_numpy(serial_kernels):
    along = RNG.integers(-7, 7, (5, 6, 3))
    columns = RNG.integers(0, 6, (5, 1, 7))
    flat = RNG.integers(0, X.size, 9)
    got = lf.compute(
        lf.take_along_axis(X, along, axis=2),
        lf.take_along_axis(X, columns, axis=1),
        lf.take_along_axis(X, flat, axis=None),
        lf.take(X, flat),
    )
    expected = [
        np.take_along_axis(X, along, axis=2),
        np.take_along_axis(X, columns, axis=1),
        np.take_along_axis(X, flat, axis=None),
        np.take(X, flat),
    ]
    for a, b in zip(got, expected, strict=True):
        assert_matches(a, b)


def test_out_of_range_indices_raise_index_error_before_running():
    table = lf.asarray(X)
    with pytest.raises(IndexError, match="index 5 is out of bounds for axis 0 with size 5"):
        table[np.array([0, 5])].compute()
    with pytest.raises(IndexError, match="index -6 is out of bounds for axis 0 with size 5"):
        table[np.array([-6])].compute()
    with pytest.raises(IndexError, match="out of bounds"):
        table[lf.arange(6)]  # an arange is checked when built
    with pytest.raises(IndexError, match="out of bounds"):
        table[7, [0]]
    with pytest.raises(IndexError, match="integer"):
        table[np.array([0.5])]
    with pytest.raises(IndexError, match="too many indices"):
        table[[0], [0], [0], [0]]


def test_embedding_bag_is_one_kernel_and_reads_the_table_in_place(serial_kernels):
    emb = RNG.random((50, 8)).astype(np.float32)
    tokens = RNG.integers(0, 50, (16, 5))
    bag = lf.asarray(emb)[tokens].mean(axis=1)
    (kernel,) = bag.kernels()
    assert "a0[" in kernel.source or "a1[" in kernel.source
    assert_matches(bag.compute(), emb[tokens].mean(axis=1), tol=1e-5)


def test_cross_entropy_with_labels_is_two_kernels(serial_kernels):
    z = RNG.random((32, 10))
    labels = RNG.integers(0, 10, 32)
    zt = lf.asarray(z)
    shifted = zt - zt.max(axis=1, keepdims=True)
    log_softmax = shifted - lf.log(lf.exp(shifted).sum(axis=1, keepdims=True))
    loss = -log_softmax[lf.arange(32), labels].mean()
    assert len(loss.kernels()) == 2
    shifted_np = z - z.max(axis=1, keepdims=True)
    expected = -(shifted_np - np.log(np.exp(shifted_np).sum(1, keepdims=True)))[np.arange(32), labels].mean()
    assert_matches(loss.compute(), expected)


def test_gather_then_elementwise_fuses_and_a_second_call_does_not_recompile():
    table = RNG.random((20, 3))
    first = (lf.asarray(table)[np.array([3, 1, 4])] * 2.0 + 1.0).compute()
    compiles = lf.cache_info()["compiles"]
    second = (lf.asarray(table)[np.array([0, 19, 2])] * 2.0 + 1.0).compute()
    assert lf.cache_info()["compiles"] == compiles
    assert_matches(first, table[[3, 1, 4]] * 2.0 + 1.0)
    assert_matches(second, table[[0, 19, 2]] * 2.0 + 1.0)


def test_gathers_on_the_cuda_target():
    emb = RNG.random((12, 4))
    tokens = RNG.integers(-12, 12, (3, 5))
    got = (lf.asarray(emb)[tokens].sum(axis=1) + lf.arange(4)).compute(target="cuda")
    assert_matches(got, emb[tokens].sum(axis=1) + np.arange(4))
    with pytest.raises(IndexError, match="out of bounds"):
        lf.asarray(emb)[np.array([12])].compute(target="cuda")


def test_a_0d_mask_adds_an_axis_of_one_or_none():
    """Found by the random programs: x[x > 0] of a 0-d x (NumPy: shape (1,) or (0,))."""
    x = np.float32(1.5)
    t = lf.asarray(x)
    assert_matches(t[t > 0].compute(), x[np.array(True)])
    assert_matches(t[t < 0].compute(), x[np.array(False)])
    m = np.arange(6.0).reshape(2, 3)
    assert_matches(lf.asarray(m)[np.array(False)].compute(), m[np.array(False)])
