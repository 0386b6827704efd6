"""The dispatch fast path: node forms (graph/node.py) and the plan cache keyed by them
(runtime/plans.py). A form names a graph's structure up to its leaves' identity, so a
plan found by form must give the right answer whichever arrays fill its slots, and a
graph whose leaves are shared differently must never find it."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import lazyfuse as lf
from lazyfuse.graph import node as graph_node
from lazyfuse.runtime import execute, plans


def _arrays(shape=(5, 3)):
    rng = np.random.default_rng(7)
    return [rng.standard_normal(shape) for _ in range(3)]


def test_forms_name_structure_not_data():
    x, y, z = (lf.asarray(a) for a in _arrays())
    assert (x * y + 1.0).node.form == (y * z + 2.5).node.form  # new arrays and scalar values
    assert (x * x).node.form != (x * y).node.form  # a shared leaf is another structure
    assert (x * y).node.form != (y * y).node.form
    assert (x * y).node.form == (z * x).node.form
    assert (x * y).node.form != (x + y).node.form
    assert (x * 2).node.form == (x * 2.0).node.form  # both a float64 parameter
    assert (x * 2.0).node.form != (x.astype(np.float32) * 2.0).node.form
    other = lf.asarray(np.ones((5, 4)))
    assert (x * 2.0).node.form != (other * 2.0).node.form  # exact shapes: a new size is a new form
    assert (x * y).node.leaves == (x.node, y.node)
    assert (y * x + y).node.leaves == (y.node, x.node)


# Expressions of three leaves; each is computed with every assignment of the arrays
# x, y, z to its leaves (27, repeats included), so each pattern of shared leaves meets
# the plans that other patterns left in the cache, in both orders.
TEMPLATES = {
    "chain": lambda a, b, c, exp: (a * b + c) * exp(-a),
    "rows": lambda a, b, c, exp: ((a - b) * c).sum(axis=1) + a.max(axis=1),
    "shared_exp": lambda a, b, c, exp: exp(a) * exp(b) - exp(c),
}


@pytest.mark.parametrize("name", list(TEMPLATES))
def test_every_pattern_of_shared_leaves_finds_its_own_plan(name, serial_kernels):
    template = TEMPLATES[name]
    arrays = _arrays()
    tensors = [lf.asarray(a) for a in arrays]
    for _ in range(2):  # the second round finds every plan by form
        for picks in itertools.product(range(3), repeat=3):
            got = template(*[tensors[k] for k in picks], lf.exp).compute()
            expected = template(*[arrays[k] for k in picks], np.exp)
            np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-13, err_msg=f"{name} {picks}")


def test_outputs_computed_together_map_their_shared_leaves(serial_kernels):
    arrays = _arrays()
    tensors = [lf.asarray(a) for a in arrays]
    for _ in range(2):
        for i, j, k in itertools.product(range(3), repeat=3):
            x, y, z = tensors[i], tensors[j], tensors[k]
            first, second = lf.compute(x * y, z - x)
            np.testing.assert_allclose(first, arrays[i] * arrays[j], rtol=1e-12)
            np.testing.assert_allclose(second, arrays[k] - arrays[i], rtol=1e-12)


def test_a_hit_by_form_costs_no_graph_walk(monkeypatch):
    a, b, _ = _arrays()
    x, y = lf.asarray(a), lf.asarray(b)
    (x * y - 3.0).compute()  # planned, and known by form
    walks = []
    monkeypatch.setattr(plans, "structure", lambda roots: walks.append(roots) or pytest.fail("walked"))
    hits = plans.STATS["hits"]
    np.testing.assert_allclose((y * x - 4.0).compute(), b * a - 4.0, rtol=1e-12)
    assert plans.STATS["hits"] == hits + 1 and not walks


def test_new_sizes_miss_the_form_but_reuse_the_plan():
    def expr(n):
        t = lf.asarray(np.arange(float(n)))
        return (t * 2.0 + 1.0).sum()

    expr(10).compute()
    before = lf.cache_info()
    for n in (11, 12, 11, 10):
        assert expr(n).compute() == pytest.approx(n * n)
    after = lf.cache_info()
    assert (after["misses"], after["compiles"]) == (before["misses"], before["compiles"])


def test_graphs_with_many_leaves_have_no_form_and_still_compute(serial_kernels):
    count = graph_node.MAX_FORM_LEAVES + 6
    arrays = [np.full(4, float(k)) for k in range(count)]
    total = lf.asarray(arrays[0])
    for a in arrays[1:]:
        total = total + lf.asarray(a)
    assert total.node.form is None
    np.testing.assert_allclose(total.compute(), sum(arrays), rtol=1e-12)
    misses = plans.STATS["misses"]
    np.testing.assert_allclose(total.compute(), sum(arrays), rtol=1e-12)
    assert plans.STATS["misses"] == misses  # found by the walk of the graph


def test_empty_results_compile_and_launch_nothing(serial_kernels):
    before = lf.cache_info()["compiles"] + lf.cache_info()["disk_loads"]
    empty = lf.asarray(np.zeros((0, 5), np.float32))
    got = (lf.tanh(empty) * 3.0 - empty.sum(axis=1, keepdims=True)).compute()
    assert got.shape == (0, 5) and got.dtype == np.float32
    assert lf.cache_info()["compiles"] + lf.cache_info()["disk_loads"] == before
    # an empty axis reduced away still gives its identity: that kernel runs
    np.testing.assert_array_equal(empty.T.sum(axis=1).compute(), np.zeros(5, np.float32))


def test_a_known_elementwise_plan_calls_its_kernel_directly(monkeypatch, serial_kernels):
    """The second call of a one-kernel elementwise plan over contiguous NumPy inputs
    skips the general path (execute._call); anything else takes it, with NumPy's
    answers either way."""
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((6, 5)), rng.standard_normal((6, 5))

    def expr(x, y, c):
        return (lf.asarray(x) * y + c) * lf.exp(-lf.asarray(x))

    def expected(x, y, c):
        return (x * y + c) * np.exp(-x)

    np.testing.assert_allclose(expr(a, b, 1.0).compute(), expected(a, b, 1.0), rtol=1e-12)  # compiles
    general = []
    original = execute._call
    monkeypatch.setattr(execute, "_call", lambda *args: general.append(1) or original(*args))
    cases = [
        (a, b, 2.5, False),  # the same form, a new scalar
        (a[:4], b[:4], -1.0, False),  # new sizes: the plan's kernel, resized
        (a[::-1], b, 1.0, True),  # a strided input
        (a.T.copy(), b.T.copy(), 1.0, False),  # another shape, contiguous
        (a[:0], b[:0], 1.0, True),  # empty: nothing to launch
    ]
    for x, y, c, takes_general in cases:
        general.clear()
        got = expr(x, y, c).compute()
        np.testing.assert_allclose(got, expected(x, y, c), rtol=1e-12)
        assert got.shape == x.shape and got.flags.c_contiguous
        assert bool(general) == takes_general, (x.shape, x.strides)
    out = np.empty_like(a)
    general.clear()
    assert expr(a, b, 1.0).compute(out=out) is out and general  # out= runs the general path
    np.testing.assert_allclose(out, expected(a, b, 1.0), rtol=1e-12)
    general.clear()
    np.testing.assert_allclose(lf.exp(lf.asarray(a)[:, 1:]).compute(), np.exp(a[:, 1:]), rtol=1e-12)
    assert general  # a view is not a direct load


def test_a_known_form_runs_its_ready_call_under_the_settings_it_was_made_for(monkeypatch, serial_kernels):
    """The second compute of a form goes straight to its kernel (no plan lookup), counts a
    hit, and fills the kernel from this call's leaves; a change of settings (math, debug)
    or a strided input takes the general path again, with NumPy's answers throughout."""
    rng = np.random.default_rng(11)
    a, b = rng.standard_normal((4, 6)), rng.standard_normal((4, 6))

    def expr(x, y, c):
        return lf.sigmoid(lf.asarray(x) * c - y)

    def expected(x, y, c):
        return 1 / (1 + np.exp(-(x * c - y)))

    np.testing.assert_allclose(expr(a, b, 2.0).compute(), expected(a, b, 2.0), rtol=1e-12)
    expr(a, b, 2.0).compute()  # the first compute of the form compiles; this one makes it ready
    looked_up = []
    original = plans.lookup
    monkeypatch.setattr(plans, "lookup", lambda roots: looked_up.append(1) or original(roots))
    hits = lf.cache_info()["hits"]
    for c, x in [(0.5, a), (-3.0, b * 2), (1.0, a + 1)]:  # new scalars and arrays in the same form
        np.testing.assert_allclose(expr(x, b, c).compute(), expected(x, b, c), rtol=1e-12)
    assert not looked_up and lf.cache_info()["hits"] == hits + 3
    known = plans.known(expr(a, b, 1.0).node, lf.config.get())
    assert known is not None and known.ready
    with lf.config.override(math="libm"):  # another kernel: the ready call is not reused
        np.testing.assert_allclose(expr(a, b, 0.25).compute(), expected(a, b, 0.25), rtol=1e-12)
    assert looked_up
    looked_up.clear()
    np.testing.assert_allclose(expr(a[:, ::-1], b, 1.5).compute(), expected(a[:, ::-1], b, 1.5), rtol=1e-12)
    assert looked_up  # a strided input
    looked_up.clear()
    with lf.config.override(debug=1):
        np.testing.assert_allclose(expr(a, b, 3.0).compute(), expected(a, b, 3.0), rtol=1e-12)
    assert looked_up  # debug output comes from the general path
    looked_up.clear()
    np.testing.assert_allclose(expr(b, a, -1.0).compute(), expected(b, a, -1.0), rtol=1e-12)
    assert not looked_up  # the settings of the ready call again
    assert plans.known((lf.asarray(a).sum(axis=0) + 1.0).node, lf.config.get()) is None
    total = lf.asarray(a).sum(axis=0) + 1.0
    total.compute()
    total.compute()
    assert plans.known(total.node, lf.config.get()).ready is False  # two kernels: no ready call
