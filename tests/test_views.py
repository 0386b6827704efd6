"""Views against NumPy: basic indexing (ints, negative steps, None, Ellipsis), transpose
and permute, reshape (with -1), broadcast_to, expand_dims, squeeze, each on its own and
inside expressions, and random chains that mix views, arithmetic and reductions."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import lazyfuse as lf
from tests.conftest import Case, assert_matches, check_all
from tests.strategies import arrays_and_layout, shapes

F64, I32, BOOL = np.dtype(np.float64), np.dtype(np.int32), np.dtype(bool)
VIEW_DTYPES = [F64, I32, BOOL]


def _both(label, view, x):
    """The view alone, and the view inside an expression (a strided read in a kernel)."""
    return [
        Case(label, lambda v: view(lf.asarray(v)), view, (x,)),
        Case(label + " * 3", lambda v: view(lf.asarray(v)) * 3, lambda v: view(v) * 3, (x,)),
    ]


def _draw_inputs(data, **shape_args):
    shape = data.draw(shapes(**shape_args))
    return [data.draw(arrays_and_layout(dtype, shape)) for dtype in VIEW_DTYPES]


@pytest.mark.usefixtures("serial_kernels")
@given(data=st.data())
def test_basic_indexing(data):
    inputs = _draw_inputs(data, min_dims=1)
    index = data.draw(
        hnp.basic_indices(inputs[0][0].shape, min_dims=0, allow_newaxis=True, allow_ellipsis=True)
    )
    cases = []
    for x, layout in inputs:
        cases += _both(f"{x.dtype}[{layout}]{x.shape}[{index}]", lambda v: v[index], x)
    check_all(cases)


def test_indexing_examples():
    x = np.arange(60.0).reshape(3, 4, 5)
    indices = [
        (1, slice(None, None, -2), None, Ellipsis, 3),
        (Ellipsis, -1),
        (slice(None, None, -1), slice(1, -1)),
        (-1, -2, -3),
        (None, Ellipsis, None),
        (slice(5, 1, -1),),
        (slice(10, 20),),
        (0, slice(None), slice(None, None, 3)),
    ]
    check_all([c for i in indices for c in _both(f"x[{i}]", lambda v, i=i: v[i], x)])
    assert lf.asarray(x)[1, 2, 3].compute().shape == ()


@pytest.mark.usefixtures("serial_kernels")
@given(data=st.data())
def test_transpose_and_permute(data):
    inputs = _draw_inputs(data)
    ndim = len(inputs[0][0].shape)
    axes = tuple(data.draw(st.permutations(range(ndim))))
    signed = tuple(a - ndim if data.draw(st.booleans()) else a for a in axes)  # NumPy allows -1 etc.
    cases = []
    for x, layout in inputs:
        label = f"{x.dtype}[{layout}]{x.shape}"
        cases += [
            Case(
                label + f".transpose(*{signed})",
                lambda v: lf.asarray(v).transpose(*signed),
                lambda v: v.transpose(signed),
                (x,),
            ),
            Case(
                label + f".transpose({axes})",
                lambda v: lf.asarray(v).transpose(axes),
                lambda v: v.transpose(axes),
                (x,),
            ),
            Case(label + ".transpose()", lambda v: lf.asarray(v).transpose(), lambda v: v.transpose(), (x,)),
            Case(label + ".T", lambda v: lf.asarray(v).T, lambda v: v.T, (x,)),
            Case(
                label + " lf.transpose",
                lambda v: lf.transpose(v, axes),
                lambda v: np.transpose(v, axes),
                (x,),
            ),
            Case(label + " lf.transpose(None)", lambda v: lf.transpose(v), np.transpose, (x,)),
            Case(
                label + ".permute", lambda v: lf.asarray(v).permute(*axes), lambda v: v.transpose(axes), (x,)
            ),
            Case(label + " lf.permute", lambda v: lf.permute(v, axes), lambda v: v.transpose(axes), (x,)),
        ]
        cases += _both(label + f" transpose {axes} - 1", lambda v: v.transpose(axes) - 1, x)
    check_all(cases)


def _factorizations(size: int) -> list[tuple[int, ...]]:
    out = [(size,), (1, size), (size, 1), (1, 1, size)]
    out += [(d, size // d) for d in range(2, size + 1) if size % d == 0]
    out += [(d, 1, size // d) for d in range(2, size + 1) if size % d == 0]
    out += [(0, 3), (2, 0, 1)] if size == 0 else []
    return out + ([()] if size == 1 else [])


@pytest.mark.usefixtures("serial_kernels")
@given(data=st.data())
def test_reshape(data):
    """Reshape of strided inputs (NumPy copies those; values must match), with -1."""
    inputs = _draw_inputs(data, max_side=4)
    size = inputs[0][0].size
    target = list(data.draw(st.sampled_from(_factorizations(size))))
    if target and size and data.draw(st.booleans()):
        target[data.draw(st.integers(0, len(target) - 1))] = -1
    target = tuple(target)
    cases = []
    for x, layout in inputs:
        label = f"{x.dtype}[{layout}]{x.shape}.reshape{target}"
        cases += [
            Case(label, lambda v: lf.asarray(v).reshape(*target), lambda v: v.reshape(target), (x,)),
            Case(
                label + " tuple", lambda v: lf.asarray(v).reshape(target), lambda v: v.reshape(target), (x,)
            ),
            Case(
                label + " lf.reshape", lambda v: lf.reshape(v, target), lambda v: np.reshape(v, target), (x,)
            ),
            Case(
                label + " of x+1",
                lambda v: (lf.asarray(v) + 1).reshape(target) * 2,
                lambda v: (v + 1).reshape(target) * 2,
                (x,),
            ),
        ]
    check_all(cases)


@pytest.mark.usefixtures("serial_kernels")
@given(data=st.data())
def test_broadcast_to_expand_dims_and_squeeze(data):
    inputs = _draw_inputs(data, max_dims=2, max_side=3)
    shape = inputs[0][0].shape
    ndim = len(shape)
    target = (data.draw(st.integers(0, 3)), *(data.draw(st.integers(1, 3)) if s == 1 else s for s in shape))
    axis = data.draw(st.integers(-ndim - 1, ndim))
    two = tuple(data.draw(st.sets(st.integers(0, ndim + 1), min_size=1, max_size=2)))
    ones = tuple(i for i, s in enumerate(shape) if s == 1)
    squeeze_axis = data.draw(st.sampled_from([None, ones])) if ones else None
    cases = []
    for x, layout in inputs:
        label = f"{x.dtype}[{layout}]{x.shape}"
        cases += _both(
            label + f" broadcast_to {target}",
            lambda v: v.broadcast_to(target) if isinstance(v, lf.Tensor) else np.broadcast_to(v, target),
            x,
        )
        cases += [
            Case(
                label + " lf.broadcast_to",
                lambda v: lf.broadcast_to(v, target),
                lambda v: np.broadcast_to(v, target),
                (x,),
            ),
            Case(
                label + f" expand_dims {axis}",
                lambda v: lf.expand_dims(v, axis),
                lambda v: np.expand_dims(v, axis),
                (x,),
            ),
            Case(
                label + f".expand_dims({two})",
                lambda v: lf.asarray(v).expand_dims(two),
                lambda v: np.expand_dims(v, two),
                (x,),
            ),
            Case(
                label + f".squeeze({squeeze_axis})",
                lambda v: lf.asarray(v).squeeze(squeeze_axis),
                lambda v: v.squeeze(squeeze_axis),
                (x,),
            ),
            Case(label + " lf.squeeze", lambda v: lf.squeeze(v), np.squeeze, (x,)),
            Case(
                label + " expand+squeeze",
                lambda v: lf.asarray(v).expand_dims(axis).squeeze(axis) + v,
                lambda v: np.expand_dims(v, axis).squeeze(axis) + v,
                (x,),
            ),
        ]
    check_all(cases)


# A random chain: each step is drawn from the NumPy array's current shape, then applied
# the same way to the NumPy array and the lazy tensor.
STEPS = [
    "index",
    "transpose",
    "reshape",
    "expand",
    "squeeze",
    "broadcast",
    "arith",
    "exp",
    "reduce",
    "combine",
]


@st.composite
def step(draw, shape: tuple[int, ...]):
    kind = draw(st.sampled_from(STEPS))
    ndim = len(shape)
    if kind == "index" and ndim:
        return kind, draw(
            hnp.basic_indices(shape, min_dims=1, max_dims=3, allow_newaxis=True, allow_ellipsis=True)
        )
    if kind == "transpose" and ndim:
        return kind, tuple(draw(st.permutations(range(ndim))))
    if kind == "reshape":
        size = int(np.prod(shape))
        return kind, draw(st.sampled_from(_factorizations(size)))
    if kind == "expand" and ndim < 4:
        return kind, draw(st.integers(-ndim - 1, ndim))
    if kind == "squeeze" and 1 in shape:
        return kind, shape.index(1)
    if kind == "broadcast" and ndim < 4:
        return kind, (draw(st.integers(1, 3)), *shape)
    if kind == "reduce" and ndim:
        name = draw(st.sampled_from(["sum", "max"])) if 0 not in shape else "sum"
        return kind, (name, draw(st.integers(-ndim, ndim - 1)))
    if kind == "combine":
        return kind, None
    return ("exp", None) if kind == "exp" else ("arith", draw(st.floats(-2, 2, allow_nan=False)))


def apply(kind, arg, v, first, mod):
    if kind == "index":
        return v[arg]
    if kind == "transpose":
        return v.transpose(arg)
    if kind == "reshape":
        return v.reshape(arg)
    if kind == "expand":
        return mod.expand_dims(v, arg)
    if kind == "squeeze":
        return mod.squeeze(v, arg)
    if kind == "broadcast":
        return mod.broadcast_to(v, arg)
    if kind == "exp":
        return mod.exp(-abs(v))
    if kind == "reduce":
        return getattr(mod, arg[0])(v, axis=arg[1])
    if kind == "combine":  # a second use of the input, broadcast against the current value
        return v + mod.sum(first) if v.ndim else v * first.sum()
    return v * arg + 1.0


@given(data=st.data())
def test_random_chains_of_views_and_arithmetic(data):
    """Views of computed values, arithmetic on views, reductions of views, in parallel
    kernels: each step is checked at the end against NumPy doing the same steps."""
    x, layout = data.draw(arrays_and_layout(F64, data.draw(shapes(min_dims=1, max_side=4)), low=-3, high=3))
    expected, t, steps = x, lf.asarray(x), []
    for _ in range(data.draw(st.integers(1, 5))):
        kind, arg = data.draw(step(expected.shape))
        steps.append((kind, arg))
        expected = apply(kind, arg, expected, x, np)
        t = apply(kind, arg, t, lf.asarray(x), lf)
        assert t.shape == expected.shape, steps
    assert_matches(t.compute(), expected, tol=1e-10, msg=f"{layout} {x.shape} {steps}")


def test_views_read_the_array_when_computed_not_when_built():
    x = np.arange(12.0).reshape(3, 4)
    view = lf.asarray(x).T[::-1, 1:]
    x[0, 3] = 100.0  # lazy, no copy: the view sees the change
    assert_matches(view.compute(), x.T[::-1, 1:])
    assert_matches(np.asarray(view + 1), x.T[::-1, 1:] + 1)


def test_views_of_computed_values_and_chains_of_views():
    x = np.arange(24.0).reshape(2, 3, 4)
    t = lf.asarray(x)
    expr = (t * 2)[:, ::-1, None, 1:].transpose(3, 0, 1, 2).reshape(3, -1)[::2] + 1
    expected = (x * 2)[:, ::-1, None, 1:].transpose(3, 0, 1, 2).reshape(3, -1)[::2] + 1
    assert_matches(expr.compute(), expected)
    assert_matches((t.sum(axis=0).T[::-1] * t[0].T[::-1]).compute(), x.sum(axis=0).T[::-1] * x[0].T[::-1])
