"""Joining and reshaping against NumPy: the views (swapaxes, moveaxis, matrix_transpose
and .mT, flip, split and array_split, tile, repeat by an int) and the host steps
(concatenate, stack, pad, repeat by an array) on every dtype, layout, size 0 and 0-d;
their errors; and that the views fuse with their readers."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lazyfuse as lf
from lazyfuse import config
from lazyfuse.graph.ops import Op
from lazyfuse.graph.traverse import toposort
from tests.conftest import Case, assert_matches, check_all
from tests.strategies import DTYPES, arrays_and_layout, shapes

pytestmark = pytest.mark.usefixtures("serial_kernels")


@st.composite
def axis_of(draw, ndim: int, none: bool = False):
    """An axis of an ``ndim``-d array, negative half the time (None among them if asked)."""
    if ndim == 0 or (none and draw(st.booleans())):
        return None if none else 0
    axis = draw(st.integers(0, ndim - 1))
    return axis - ndim if draw(st.booleans()) else axis


def _view_cases(data, x: np.ndarray, label: str) -> list[Case]:
    """Cases for every view function on ``x``, with drawn axes and counts."""
    ndim = x.ndim
    cases = [Case(f"flip {label}", lf.flip, np.flip, (x,))]
    if ndim == 0:
        return [
            *cases,
            Case(f"tile 0-d {label}", lambda v: lf.tile(v, (2, 1)), lambda v: np.tile(v, (2, 1)), (x,)),
        ]
    a, b = data.draw(axis_of(ndim)), data.draw(axis_of(ndim))
    moved = data.draw(st.permutations(range(ndim)))[: data.draw(st.integers(1, ndim))]
    targets = data.draw(st.permutations(range(ndim)))[: len(moved)]
    flipped = tuple(moved) if data.draw(st.booleans()) else a
    reps = tuple(data.draw(st.lists(st.integers(0, 2), max_size=ndim + 1)))
    count = data.draw(st.integers(0, 3))
    sections = data.draw(st.sampled_from([1, 2, 3]))
    indices = data.draw(st.lists(st.integers(-4, 5), max_size=3))

    cases += [
        Case(
            f"swapaxes({a}, {b}) {label}",
            lambda v: lf.swapaxes(v, a, b),
            lambda v: np.swapaxes(v, a, b),
            (x,),
        ),
        Case(
            f"method swapaxes {label}",
            lambda v: lf.asarray(v).swapaxes(b, a),
            lambda v: v.swapaxes(b, a),
            (x,),
        ),
        Case(
            f"moveaxis({moved}, {targets}) {label}",
            lambda v: lf.moveaxis(v, moved, targets),
            lambda v: np.moveaxis(v, moved, targets),
            (x,),
        ),
        Case(f"flip({flipped}) {label}", lambda v: lf.flip(v, flipped), lambda v: np.flip(v, flipped), (x,)),
        Case(f"tile({reps}) {label}", lambda v: lf.tile(v, reps), lambda v: np.tile(v, reps), (x,)),
        Case(f"repeat({count}) {label}", lambda v: lf.repeat(v, count), lambda v: np.repeat(v, count), (x,)),
        Case(
            f"method repeat({count}, axis={a}) {label}",
            lambda v: lf.asarray(v).repeat(count, axis=a),
            lambda v: v.repeat(count, axis=a),
            (x,),
        ),
    ]
    if ndim >= 2:
        cases += [
            Case(f"mT {label}", lambda v: lf.asarray(v).mT, lambda v: v.mT, (x,)),
            Case(f"matrix_transpose {label}", lf.matrix_transpose, np.matrix_transpose, (x,)),
        ]
    for k, (got, want) in enumerate(
        zip(lf.array_split(x, sections, axis=a), np.array_split(x, sections, axis=a), strict=True)
    ):
        cases.append(
            Case(f"array_split({sections}, {a})[{k}] {label}", lambda v, g=got: g, lambda v, w=want: w, (x,))
        )
    for k, (got, want) in enumerate(
        zip(lf.split(x, indices, axis=b), np.split(x, indices, axis=b), strict=True)
    ):
        cases.append(
            Case(f"split({indices}, {b})[{k}] {label}", lambda v, g=got: g, lambda v, w=want: w, (x,))
        )
    return cases


def _chain(m, v, axis):
    """Views of a computed value, with the functions of module ``m`` (lf or np)."""
    return m.swapaxes(m.repeat(m.flip(v + v, axis), 2, axis), 0, -1) if v.ndim else v + v


@settings(max_examples=25)
@given(data=st.data())
def test_views_match_numpy(data):
    """Each example: one shape (0-d and size 0 included), every dtype in a drawn layout,
    every view function with drawn axes. Views of inputs compute without kernels."""
    shape = data.draw(shapes(max_side=3))
    cases = []
    for dtype in DTYPES:
        x, layout = data.draw(arrays_and_layout(dtype, shape))
        cases += _view_cases(data, x, f"{dtype}{shape}[{layout}]")
    # and views of a computed value, read inside kernels (one drawn dtype: each compiles)
    x, layout = data.draw(arrays_and_layout(data.draw(st.sampled_from(DTYPES)), shape))
    a = data.draw(axis_of(x.ndim))
    cases.append(
        Case(
            f"swapaxes(repeat(flip(x + x), 2, {a})) {x.dtype}{shape}[{layout}]",
            lambda v: _chain(lf, lf.asarray(v), a),
            lambda v: _chain(np, v, a),
            (x,),
        )
    )
    check_all(cases)


@settings(max_examples=25)
@given(data=st.data())
def test_joins_match_numpy(data):
    """concatenate (any axis, None, mixed dtypes: np.result_type), stack, pad and repeat
    by counts on drawn shapes, dtypes and layouts."""
    shape = data.draw(shapes(min_dims=1, max_side=3))
    ndim = len(shape)
    axis = data.draw(axis_of(ndim))
    dtypes = data.draw(st.lists(st.sampled_from(DTYPES), min_size=3, max_size=3))
    sides = [data.draw(st.integers(0, 3)) for _ in dtypes]
    parts = []
    for dtype, side in zip(dtypes, sides, strict=True):
        part_shape = tuple(side if i == axis % ndim else s for i, s in enumerate(shape))
        parts.append(data.draw(arrays_and_layout(dtype, part_shape))[0])
    x = parts[0]
    widths = data.draw(
        st.sampled_from([0, 2, (1, 2), ((1, 0),) * ndim, tuple((i, 2 - i) for i in range(ndim))])
    )
    constant = data.draw(st.sampled_from([0, -3, 1.5, True, ((1, 2),) * ndim]))
    counts = data.draw(st.lists(st.integers(0, 3), min_size=x.shape[axis], max_size=x.shape[axis]))
    label = f"{[p.dtype.name + str(p.shape) for p in parts]} axis={axis}"
    cases = [
        Case(
            f"concatenate {label}",
            lambda *p: lf.concatenate(p, axis=axis),
            lambda *p: np.concatenate(p, axis=axis),
            parts,
        ),
        Case(
            f"concat one {label}",
            lambda p: lf.concat([p], axis=axis),
            lambda p: np.concat([p], axis=axis),
            [x],
        ),
        Case(
            f"concatenate None {label}",
            lambda *p: lf.concatenate(p, axis=None),
            lambda *p: np.concatenate(p, axis=None),
            parts,
        ),
        Case(
            f"stack {label}",
            lambda p: lf.stack([p, p, p], axis=axis),
            lambda p: np.stack([p, p, p], axis=axis),
            [x],
        ),
        Case(
            f"stack -1 {label}", lambda p: lf.stack([p, p], axis=-1), lambda p: np.stack([p, p], axis=-1), [x]
        ),
        Case(
            f"pad({widths}, constant_values={constant}) {label}",
            lambda p: lf.pad(p, widths, constant_values=constant),
            lambda p: np.pad(p, widths, constant_values=constant),
            [x],
        ),
        Case(
            f"repeat({counts}, {axis}) {label}",
            lambda p: lf.repeat(p, counts, axis),
            lambda p: np.repeat(p, counts, axis),
            [x],
        ),
    ]
    check_all(cases)


def test_zero_d_and_scalar_edge_cases():
    zero_d = np.array(2.5)
    cases = [
        Case("stack 0-d", lambda v: lf.stack([v, v]), lambda v: np.stack([v, v]), (zero_d,)),
        Case(
            "concatenate 0-d axis=None",
            lambda v: lf.concatenate([v, v], axis=None),
            lambda v: np.concatenate([v, v], axis=None),
            (zero_d,),
        ),
        Case("pad 0-d", lambda v: lf.pad(v, 3), lambda v: np.pad(v, 3), (zero_d,)),
        Case("repeat 0-d", lambda v: lf.repeat(v, 3, axis=0), lambda v: np.repeat(v, 3, axis=0), (zero_d,)),
        Case("repeat [2]", lambda v: lf.repeat(v, [2]), lambda v: np.repeat(v, [2]), (np.arange(3),)),
        Case("tile ()", lambda v: lf.tile(v, ()), lambda v: np.tile(v, ()), (np.arange(3),)),
        Case(
            "pad -0.0",
            lambda v: lf.pad(v, 1, constant_values=-0.0),
            lambda v: np.pad(v, 1, constant_values=-0.0),
            (np.ones(2),),
        ),
        Case(
            "pad 0.0",
            lambda v: lf.pad(v, 1, constant_values=0.0),
            lambda v: np.pad(v, 1, constant_values=0.0),
            (np.ones(2),),
        ),
        Case(
            "pad bool",
            lambda v: lf.pad(v, (0, 1), constant_values=5),
            lambda v: np.pad(v, (0, 1), constant_values=5),
            (np.zeros(2, bool),),
        ),
    ]
    computed = check_all(cases)
    assert np.signbit(computed[-3].compute()[0]) and not np.signbit(computed[-2].compute()[0])


def test_views_fuse_with_computed_values():
    """A view of a computed value is read inside the kernel that computes it or the one
    that reads it; joins of computed values compute their parts first."""
    x = np.arange(12.0).reshape(3, 4)
    t = lf.asarray(x)
    e = lf.exp(t)
    cases = [
        Case(
            "flip(exp) + x",
            lambda v: lf.flip(lf.exp(lf.asarray(v)), 1) + v,
            lambda v: np.flip(np.exp(v), 1) + v,
            (x,),
        ),
        Case(
            "swapaxes(x*2).sum(1)",
            lambda v: lf.swapaxes(lf.asarray(v) * 2, 0, 1).sum(1),
            lambda v: np.swapaxes(v * 2, 0, 1).sum(1),
            (x,),
        ),
        Case(
            "repeat(x+1, 2, 1)",
            lambda v: lf.repeat(lf.asarray(v) + 1, 2, axis=1),
            lambda v: np.repeat(v + 1, 2, axis=1),
            (x,),
        ),
        Case(
            "tile(x-1) * 2",
            lambda v: lf.tile(lf.asarray(v) - 1, (2, 1)) * 2,
            lambda v: np.tile(v - 1, (2, 1)) * 2,
            (x,),
        ),
        Case(
            "concatenate(computed)",
            lambda v: lf.concatenate([lf.asarray(v) * 2, lf.asarray(v).T[:1]]) - 1,
            lambda v: np.concatenate([v * 2, v.T[:1]]) - 1,
            (x,),
        ),
    ]
    check_all(cases)
    assert len((lf.flip(e, 0) * t).kernels()) == 1
    ops = [n.op for n in toposort([lf.flip(t, (0, 1)).node])]
    assert ops == [Op.INPUT, Op.INDEX]


def test_methods_are_numpys():
    t = lf.asarray(np.ones((2, 3, 4)))
    assert t.mT.shape == (2, 4, 3) and t.swapaxes(0, 2).shape == (4, 3, 2) and t.repeat(2).shape == (48,)
    assert not hasattr(np.ndarray, "flip") and not hasattr(lf.Tensor, "flip")
    assert_matches(lf.split(np.arange(6), 3)[1].compute(), np.split(np.arange(6), 3)[1])


ERRORS = [
    ("swapaxes axis", lambda m, x: m.swapaxes(x, 5, 0)),
    ("moveaxis repeated", lambda m, x: m.moveaxis(x, [0, 0], [1, 0])),
    ("moveaxis lengths", lambda m, x: m.moveaxis(x, [0], [1, 0])),
    ("moveaxis bounds", lambda m, x: m.moveaxis(x, 5, 0)),
    ("matrix_transpose 1-d", lambda m, x: m.matrix_transpose(x[0])),
    ("mT 1-d", lambda m, x: m.asarray(x[0]).mT),
    ("flip repeated", lambda m, x: m.flip(x, (0, 0))),
    ("flip bounds", lambda m, x: m.flip(x, 2)),
    ("split unequal", lambda m, x: m.split(x, 2, axis=1)),
    ("split bounds", lambda m, x: m.split(x, 3, axis=2)),
    ("split 0-d", lambda m, x: m.split(np.ones(()), 1)),
    ("array_split sections", lambda m, x: m.array_split(x, 0)),
    ("concatenate none", lambda m, x: m.concatenate([])),
    ("concatenate 0-d", lambda m, x: m.concatenate([np.ones(()), np.ones(())])),
    ("concatenate ndim", lambda m, x: m.concatenate([x, np.ones(2)])),
    ("concatenate sizes", lambda m, x: m.concatenate([x, np.ones((2, 2))])),
    ("concatenate bounds", lambda m, x: m.concatenate([x, x], axis=2)),
    ("stack none", lambda m, x: m.stack([])),
    ("stack shapes", lambda m, x: m.stack([x, x.T])),
    ("stack bounds", lambda m, x: m.stack([x, x], axis=3)),
    ("pad negative", lambda m, x: m.pad(x, -1)),
    ("pad widths", lambda m, x: m.pad(x, ((1, 2), (3, 4), (5, 6)))),
    ("pad float widths", lambda m, x: m.pad(x, 1.5)),
    ("pad mode", lambda m, x: m.pad(x, 1, mode="edge") if m is lf else m.pad(x, 1, mode="foo")),
    ("repeat negative", lambda m, x: m.repeat(x, -1)),
    ("repeat counts", lambda m, x: m.repeat(x, [1, 2], axis=1)),
    ("repeat bounds", lambda m, x: m.repeat(x, 2, axis=2)),
    ("tile negative", lambda m, x: m.tile(x, -1)),
]


@pytest.mark.parametrize(("name", "build"), ERRORS, ids=[e[0] for e in ERRORS])
def test_errors_are_numpys(name, build):
    """Where NumPy raises, lazyfuse raises a LazyfuseError of a class NumPy's is an
    instance of (AxisError is ValueError and IndexError), when the expression is built.
    Not a NumPy error: lf.pad's other modes (NumPy has them; lazyfuse says so)."""
    x = np.ones((2, 3))
    with pytest.raises(Exception) as numpy_error:
        build(np, x)
    with pytest.raises(lf.LazyfuseError) as ours:
        build(lf, x)
    if name != "pad mode":
        assert (
            isinstance(ours.value, type(numpy_error.value))
            or type(numpy_error.value) in type(ours.value).__mro__
        )


def test_on_the_cuda_target():
    """The same functions with compute() on the CUDA target (the simulator in tests)."""
    x = np.arange(12.0).reshape(3, 4)
    cases = [
        Case("flip(x * 2)", lambda v: lf.flip(lf.asarray(v) * 2, 1), lambda v: np.flip(v * 2, 1), (x,)),
        Case(
            "tile(x + 1)",
            lambda v: lf.tile(lf.asarray(v) + 1, (2, 1)),
            lambda v: np.tile(v + 1, (2, 1)),
            (x,),
        ),
        Case(
            "concatenate",
            lambda v: lf.concatenate([lf.asarray(v) * 2, v]),
            lambda v: np.concatenate([v * 2, v]),
            (x,),
        ),
        Case("pad", lambda v: lf.pad(lf.asarray(v) + 1, 1), lambda v: np.pad(v + 1, 1), (x,)),
        Case(
            "repeat counts",
            lambda v: lf.repeat(v, [1, 2, 0, 1], axis=1),
            lambda v: np.repeat(v, [1, 2, 0, 1], axis=1),
            (x,),
        ),
    ]
    with config.override(target="cuda", cuda_block=8, cuda_tile=8):
        check_all(cases)


def test_concatenated_parts_are_written_into_their_slices():
    """Each computed part's kernel writes into its slice of the one output; parts that are
    inputs, views or read elsewhere too are copied in. Both give NumPy's answer."""
    from lazyfuse.runtime import execute, plans

    rng = np.random.default_rng(5)
    a, b, c = rng.random((4, 5)), rng.random((3, 5)), rng.random((4, 2))
    ta, tb, tc = lf.asarray(a), lf.asarray(b), lf.asarray(c)
    joined = lf.concatenate([ta * 2, tb + 1, ta])
    found, _, _ = plans.plan_for([joined.node])
    (join,) = execute._joins(found).values()
    assert [k for k, _, _ in join.parts] == [0, 1]  # the input is copied in
    assert_matches(joined.compute(), np.concatenate([a * 2, b + 1, a]))
    shared = lf.exp(ta)
    both = lf.compute(lf.concatenate([shared, tc], axis=1), shared.sum())
    assert_matches(both[0], np.concatenate([np.exp(a), c], axis=1))
    assert_matches(both[1], np.exp(a).sum())
    stacked = lf.stack([ta.sum(axis=1), (ta * ta).sum(axis=1)], axis=1) + 0.5
    assert_matches(stacked.compute(), np.stack([a.sum(1), (a * a).sum(1)], axis=1) + 0.5)
