"""Random expression graphs: the fused kernels must agree with the reference interpreter.

Each example builds a random DAG of elementwise ops, reductions (with keepdims, so the
result broadcasts back, as in softmax and layernorm), views and shared subexpressions
over a few broadcast-compatible inputs, then compares ``compute()`` with
``graph.interpret.evaluate`` (NumPy). Fusion decides differently for each shape of
graph, so this exercises every fusion rule and the code generator's passes.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import lazyfuse as lf
from lazyfuse import config
from lazyfuse.graph.interpret import evaluate

M, N = 5, 7
SHAPES = [(M, N), (N,), (M, 1), (1, N), ()]

UNARY = [
    lambda t: -t,
    lambda t: abs(t),
    lambda t: lf.tanh(t),
    lambda t: lf.relu(t),
    lambda t: lf.sigmoid(t),
    lambda t: lf.exp(lf.tanh(t)),
    lambda t: t * 0.5 + 1.0,
]
BINARY = [
    lambda a, b: a + b,
    lambda a, b: a - b,
    lambda a, b: a * b,
    lambda a, b: lf.maximum(a, b),
    lambda a, b: lf.where(a > b, a, b * 2.0),
]


def _broadcasts(a, b):
    return all(x == y or 1 in (x, y) for x, y in zip(a[::-1], b[::-1], strict=False))


def _reduce(t, kind, axis):
    if t.ndim == 0:
        return t
    axis = None if axis is None else axis % t.ndim
    if kind == "sum":
        return t.sum(axis=axis, keepdims=True)
    if kind == "max":
        return t.max(axis=axis, keepdims=True)
    return t.mean(axis=axis, keepdims=True)


@st.composite
def programs(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    shapes = draw(st.lists(st.sampled_from(SHAPES), min_size=1, max_size=3))
    inputs = [lf.asarray(rng.standard_normal(s)) for s in shapes]
    values = list(inputs)
    for _ in range(draw(st.integers(1, 7))):
        step = draw(st.sampled_from(["unary", "binary", "binary", "reduce", "view"]))
        a = draw(st.sampled_from(values))
        if step == "unary":
            values.append(draw(st.sampled_from(UNARY))(a))
        elif step == "binary":
            b = draw(st.sampled_from([v for v in values if _broadcasts(a.shape, v.shape)]))
            values.append(draw(st.sampled_from(BINARY))(a, b))
        elif step == "reduce":
            kind = draw(st.sampled_from(["sum", "max", "mean"]))
            values.append(_reduce(a, kind, draw(st.sampled_from([None, 0, -1]))))
        elif a.ndim == 2:  # views that keep the shape, so every value can meet every other
            values.append(draw(st.sampled_from([a[::-1], a[:, ::-1], a.T[::-1].T])))
    outputs = draw(st.lists(st.sampled_from(values[len(inputs) :] or values), min_size=1, max_size=2))
    return outputs


@settings(max_examples=40, deadline=None)
@given(programs())
def test_fused_kernels_agree_with_the_interpreter(outputs):
    with config.override(checks=True):
        got = lf.compute(*outputs)
    expected = evaluate([t.node for t in outputs])
    for g, e in zip(got, expected, strict=True):
        assert g.shape == e.shape and g.dtype == e.dtype
        np.testing.assert_allclose(g, e, rtol=1e-10, atol=1e-12)
