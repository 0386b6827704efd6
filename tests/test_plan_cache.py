"""The plan cache's bounds (least recently used) and slice offsets as run-time values.

A sliding window ``x[i:i + 256].sum()`` over many offsets must find one plan (no new
plan, no new kernel) and give NumPy's answer at every offset; the caches keep at most
their documented number of entries, dropping the least recently used first.
"""

from __future__ import annotations

import numpy as np
import pytest

import lazyfuse as lf
from lazyfuse.runtime import compile as runtime_compile
from lazyfuse.runtime import plans
from tests.conftest import run_in_threads

# Serial kernels (three times faster to compile): these test semantics and caching, not loops.
pytestmark = pytest.mark.usefixtures("serial_kernels")


def _counts() -> tuple[int, int, int, int]:
    """Plan misses, plans cached, kernels built and compiled so far."""
    return (
        plans.STATS["misses"],
        len(plans._PLANS),
        runtime_compile.STATS["kernels"],
        runtime_compile.STATS["compiles"],
    )


@pytest.fixture
def small_caches(monkeypatch):
    """Both caches bounded at 8 entries, emptied before and after the test."""
    plans.clear()
    monkeypatch.setattr(plans, "PLAN_CACHE_SIZE", 8, raising=False)
    monkeypatch.setattr(plans, "FORM_CACHE_SIZE", 8, raising=False)
    yield
    plans.clear()


def _distinct(k: int) -> lf.Tensor:
    """A graph with a plan of its own for each ``k`` (a reshape that regroups axes keys
    its plan on its sizes), all computed by one kernel."""
    return lf.asarray(np.arange(2.0 * k + 4)).reshape(k + 2, 2) * 2.0


def _reference(k: int) -> np.ndarray:
    return np.arange(2.0 * k + 4).reshape(k + 2, 2) * 2.0


def test_the_documented_sizes_are_module_constants():
    assert plans.PLAN_CACHE_SIZE >= 64 and plans.FORM_CACHE_SIZE >= plans.PLAN_CACHE_SIZE
    assert str(plans.PLAN_CACHE_SIZE) in plans.__doc__ and str(plans.FORM_CACHE_SIZE) in plans.__doc__


def test_both_caches_stay_bounded(small_caches):
    for k in range(20):
        np.testing.assert_allclose(_distinct(k).compute(), _reference(k))
        assert len(plans._PLANS) <= 8 and len(plans._BY_FORM) <= 8
    assert len(plans._PLANS) == 8 and len(plans._BY_FORM) == 8


def test_the_least_recently_used_plan_goes_first(small_caches):
    """By structure: each compute below finds its plan by a walk of the graph."""
    for k in range(8):
        _distinct(k).compute()
    plans._BY_FORM.clear()
    _distinct(0).compute()  # used again: now the most recent
    _distinct(8).compute()  # evicts the least recently used: k = 1
    misses = plans.STATS["misses"]
    plans._BY_FORM.clear()
    _distinct(0).compute()
    assert plans.STATS["misses"] == misses
    plans._BY_FORM.clear()
    _distinct(1).compute()
    assert plans.STATS["misses"] == misses + 1


def test_the_least_recently_used_form_goes_first(small_caches):
    settings = lf.config.get()
    for k in range(8):
        _distinct(k).compute()
    _distinct(0).compute()  # a hit by form: now the most recent
    _distinct(8).compute()
    assert plans.known(_distinct(0).node, settings) is not None
    assert plans.known(_distinct(1).node, settings) is None
    assert plans.known(_distinct(2).node, settings) is not None


def test_a_plan_dropped_by_structure_is_still_found_by_form(small_caches):
    """Each cache has its own order: a form entry keeps its plan alive and right."""
    first = _distinct(0)
    first.compute()
    for k in range(1, 12):
        _distinct(k).compute()
    np.testing.assert_allclose(_distinct(0).compute(), _reference(0))


def test_bounded_caches_under_threads(small_caches):
    def work(k: int) -> None:
        for j in range(12):
            m = (k + j) % 12
            np.testing.assert_allclose(_distinct(m).compute(), _reference(m))

    run_in_threads(work, 6)
    assert len(plans._PLANS) <= 8 and len(plans._BY_FORM) <= 8


def test_a_sliding_window_finds_one_plan_and_no_new_kernel():
    x = np.random.default_rng(0).random(5000)
    t = lf.asarray(x)
    np.testing.assert_allclose(t[0:256].sum().compute(), x[0:256].sum())
    before = _counts()
    hits = plans.STATS["hits"]
    for i in range(1, 300):
        np.testing.assert_allclose(t[i : i + 256].sum().compute(), x[i : i + 256].sum(), rtol=1e-12)
    assert _counts() == before
    assert plans.STATS["hits"] >= hits + 299


def test_a_window_of_an_expression_finds_one_plan():
    x = np.random.default_rng(1).standard_normal((40, 30))
    t = lf.asarray(x)

    def both(i, exp, a):
        return (exp(a)[i : i + 8, ::2] * 2.0 + 1.0).sum(axis=1)

    np.testing.assert_allclose(both(0, lf.exp, t).compute(), both(0, np.exp, x))
    before = _counts()
    for i in range(1, 30):
        np.testing.assert_allclose(both(i, lf.exp, t).compute(), both(i, np.exp, x), rtol=1e-12)
    assert _counts() == before


WINDOWS = [
    # (make the key from offset i), offsets: negative starts, clipped ends, negative steps
    (lambda i: slice(i, i + 5), [0, 3, 7, -9, -3, 18, 25, 40]),
    (lambda i: slice(i, None, -1), [19, 10, 3, -1, -5, 0]),
    (lambda i: slice(i + 10, i, -2), [0, 4, 9, -15, 12]),
    (lambda i: slice(None, i, 3), [20, 7, -4, -30]),
    (lambda i: (i, slice(None)), [0, 5, -1, -7]),
    (lambda i: (slice(None), i), [0, 2, -3]),
    (lambda i: (None, slice(i, i + 3), Ellipsis), [0, 9, -4]),
    (lambda i: (Ellipsis, slice(i, i + 2), None), [0, 1, -3]),
    (lambda i: (i, -1), [0, 4, -2]),
]


@pytest.mark.parametrize(("make_key", "offsets"), WINDOWS)
def test_windows_at_many_offsets_match_numpy(make_key, offsets):
    rng = np.random.default_rng(2)
    for shape in [(20,), (20, 6)]:
        x = rng.standard_normal(shape)
        t = lf.asarray(x)
        for i in offsets:
            key = make_key(i)
            try:
                expected = x[key]
            except IndexError:
                continue  # a key this shape cannot take (NumPy's error is tested elsewhere)
            view = t[key]
            for got, want in [
                (view.compute(), expected),
                ((view * 2.0 + 1.0).compute(), expected * 2.0 + 1.0),
                (lf.exp(t)[key].compute(), np.exp(x)[key]),
                ((view - 1.0).sum().compute(), (expected - 1.0).sum()),
                ((view + t[key]).compute(), expected + expected),
            ]:
                np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12, err_msg=f"{shape} {key}")


def test_two_windows_of_one_input():
    x = np.arange(30.0)
    t = lf.asarray(x)
    for i in [0, 3, 11, 19]:
        for j in [0, 3, 5, 19]:
            got = (t[i : i + 10] * t[j : j + 10]).compute()
            np.testing.assert_allclose(got, x[i : i + 10] * x[j : j + 10], err_msg=f"{i} {j}")


def test_several_roots_with_windows():
    x = np.arange(50.0)
    t = lf.asarray(x)
    for i in [0, 7, 30]:
        a, b = lf.compute(t[i : i + 10] + 1.0, (t[i + 1 : i + 11] * 2.0).sum())
        np.testing.assert_allclose(a, x[i : i + 10] + 1.0)
        np.testing.assert_allclose(b, (x[i + 1 : i + 11] * 2.0).sum())


def test_out_with_a_window():
    x = np.arange(40.0)
    t = lf.asarray(x)
    for i in [0, 13, 29]:
        out = np.empty(10)
        t[i : i + 10].compute(out=out)
        np.testing.assert_array_equal(out, x[i : i + 10])
        (t[i : i + 10] * 3.0).compute(out=out)
        np.testing.assert_array_equal(out, x[i : i + 10] * 3.0)


def test_jit_functions_with_different_windows():
    x = np.arange(40.0)
    first = lf.jit(lambda a: (a[2:12] * 2.0).sum())
    second = lf.jit(lambda a: (a[20:30] * 2.0).sum())
    for _ in range(2):
        assert first(x) == (x[2:12] * 2.0).sum()
        assert second(x) == (x[20:30] * 2.0).sum()
    shifted = lf.jit(lambda a: a[5:15] - a[4:14])
    for _ in range(2):
        np.testing.assert_array_equal(shifted(x), x[5:15] - x[4:14])


def test_explain_shows_the_window_itself():
    t = lf.asarray(np.arange(20.0))
    text = lf.explain(t[3:9:2] + 1.0)
    assert "index[3:9:2]" in text


def test_windows_on_the_cuda_target():
    """The CUDA runtime reads an index's key from its slot too (Numba's simulator, with
    small blocks and tiles as in tests/test_cuda.py: it runs each thread in Python)."""
    x = np.random.default_rng(4).standard_normal((12, 9))
    t = lf.asarray(x)
    with lf.config.override(cuda_block=8, cuda_tile=8):
        for i in [0, 3, -5]:
            for got, want in [
                ((t[i : i + 4, ::-2] * 2.0).sum(axis=1), (x[i : i + 4, ::-2] * 2.0).sum(axis=1)),
                (lf.exp(t)[i, 1:], np.exp(x)[i, 1:]),
                ((t @ t.T)[i : i + 3, ::-1] + 1.0, (x @ x.T)[i : i + 3, ::-1] + 1.0),
            ]:
                np.testing.assert_allclose(got.compute(target="cuda"), want, rtol=1e-12, atol=1e-12)


def test_debug_output_shows_the_window_itself(capsys):
    t = lf.asarray(np.arange(20.0))
    with lf.config.override(debug=2):
        np.testing.assert_array_equal((t[2:8:3] * 2.0).compute(), np.arange(20.0)[2:8:3] * 2.0)
    assert "index[2:8:3]" in capsys.readouterr().err
