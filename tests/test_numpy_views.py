"""Views against NumPy: transpose/permute, reshape, broadcast_to, expand_dims, squeeze and
basic indexing, returned as they are and used inside computed expressions."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import lazyfuse as lf
from tests.oracle import assert_same, check
from tests.strategies import arrays, shapes

pytestmark = pytest.mark.usefixtures("serial_kernels")
F64, I32 = np.dtype(np.float64), np.dtype(np.int32)


@st.composite
def basic_indices(draw, shape):
    """An index of ints (negative too), slices with any step, None and Ellipsis."""
    index = draw(hnp.basic_indices(shape, min_dims=0, allow_newaxis=True, allow_ellipsis=True))
    return index


@pytest.mark.parametrize("dtype", [F64, I32], ids=str)
@given(data=st.data())
def test_indexing_matches_numpy(dtype, data):
    x = data.draw(arrays(dtype, data.draw(shapes(min_dims=1, max_dims=3))))
    index = data.draw(basic_indices(x.shape))
    assert_same(lf.asarray(x)[index].compute(), x[index])
    check(lambda v: lf.asarray(v)[index] * 2 + 1, lambda v: v[index] * 2 + 1, x)


@given(data=st.data())
def test_transpose_and_permute_match_numpy(data):
    x = data.draw(arrays(F64, data.draw(shapes(min_dims=1, max_dims=3))))
    axes = tuple(data.draw(st.permutations(range(x.ndim))))
    t = lf.asarray(x)
    assert_same(t.transpose(*axes).compute(), x.transpose(axes))
    assert_same(t.transpose(axes).compute(), x.transpose(axes))
    assert_same(lf.transpose(t, axes).compute(), np.transpose(x, axes))
    assert_same(lf.permute(t, axes).compute(), x.transpose(axes))
    assert_same(t.T.compute(), x.T)
    check(lambda v: lf.exp(lf.asarray(v).transpose(axes)) - 1, lambda v: np.exp(v.transpose(axes)) - 1, x)


@given(data=st.data())
def test_reshape_matches_numpy(data):
    x = data.draw(arrays(F64, data.draw(shapes(min_dims=1, max_dims=3, max_side=4))))
    target = list(data.draw(st.sampled_from([s for s in _factorizations(x.size)])))
    if target and data.draw(st.booleans()) and x.size:
        target[data.draw(st.integers(0, len(target) - 1))] = -1
    t = lf.asarray(x)
    assert_same(t.reshape(*target).compute(), x.reshape(target))
    assert_same(lf.reshape(t, tuple(target)).compute(), np.reshape(x, target))
    check(lambda v: (lf.asarray(v) + 1.0).reshape(target) * 2, lambda v: (v + 1.0).reshape(target) * 2, x)


def _factorizations(size: int) -> list[tuple[int, ...]]:
    shapes_ = [(size,), (1, size), (size, 1)]
    shapes_ += [(d, size // d) for d in range(2, size + 1) if size % d == 0]
    return shapes_


@given(data=st.data())
def test_broadcast_expand_and_squeeze_match_numpy(data):
    x = data.draw(arrays(F64, data.draw(shapes(min_dims=0, max_dims=2, max_side=3))))
    target = tuple(data.draw(st.sampled_from([2, 3])) if s == 1 else s for s in x.shape)
    target = (data.draw(st.integers(1, 3)), *target)
    t = lf.asarray(x)
    assert_same(t.broadcast_to(target).compute(), np.broadcast_to(x, target))
    assert_same(lf.broadcast_to(t, target).compute(), np.broadcast_to(x, target))
    axis = data.draw(st.integers(-x.ndim - 1, x.ndim))
    assert_same(lf.expand_dims(t, axis).compute(), np.expand_dims(x, axis))
    assert_same(t.expand_dims(axis).squeeze().compute(), np.expand_dims(x, axis).squeeze())
    expanded = np.expand_dims(x, axis)
    assert_same(lf.squeeze(t.expand_dims(axis), axis).compute(), np.squeeze(expanded, axis))


def test_views_of_computed_values_and_chains_of_views():
    x = np.arange(24.0).reshape(2, 3, 4)
    t = lf.asarray(x)
    expr = (t * 2)[:, ::-1, None, 1:].transpose(3, 0, 1, 2).reshape(3, -1)[::2] + 1
    expected = (x * 2)[:, ::-1, None, 1:].transpose(3, 0, 1, 2).reshape(3, -1)[::2] + 1
    assert_same(expr.compute(), expected)
    assert_same((t.sum(axis=0).T[::-1] * t[0].T[::-1]).compute(), x.sum(axis=0).T[::-1] * x[0].T[::-1])


def test_views_never_copy_inputs():
    x = np.arange(12.0).reshape(3, 4)
    t = lf.asarray(x)
    assert t.node.attrs[0] is x  # wrapped, not copied
    view = t.T[::-1]
    x[0, 0] = 100.0  # lazy: reads the array when computed
    assert view.compute()[-1, 0] == 100.0
