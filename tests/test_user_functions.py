"""lf.map, lf.zip and lf.reduce with user scalar functions compiled by Numba, against the
same functions run element by element (jitted by Numba, so the scalar semantics and the
result dtype are Numba's, as lazyfuse promises)."""

from __future__ import annotations

import math

import numba
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numba.np.numpy_support import as_dtype

import lazyfuse as lf
from lazyfuse import config
from tests.conftest import Case, assert_matches, check_all
from tests.strategies import DTYPES, FLOATS, arrays, arrays_and_layout, broadcast_shapes, shapes

F64, I64, I32 = np.dtype(np.float64), np.dtype(np.int64), np.dtype(np.int32)


_JITTED: dict = {}


def jit(fn):
    """One Numba dispatcher per function (each new one would compile again)."""
    if fn not in _JITTED:
        _JITTED[fn] = numba.njit(fn)
    return _JITTED[fn]


def numba_dtype(fn, *dtypes) -> np.dtype:
    """The return dtype Numba infers for ``fn`` on scalars of these dtypes."""
    jitted = jit(fn)
    signature = tuple(numba.typeof(d.type(0)) if isinstance(d, np.dtype) else numba.typeof(d) for d in dtypes)
    jitted.compile(signature)
    return np.dtype(as_dtype(jitted.overloads[signature].signature.return_type))


def elementwise(fn, *arrays_: np.ndarray) -> np.ndarray:
    """``fn`` jitted by Numba, applied element by element after broadcasting."""
    jitted = jit(fn)
    dtype = numba_dtype(fn, *(a.dtype for a in arrays_))
    b = np.broadcast_arrays(*arrays_)
    out = np.empty(b[0].shape, dtype)
    for index in np.ndindex(out.shape):
        out[index] = jitted(*(x[index] for x in b))
    return out


def fold(fn, x: np.ndarray, axis, start) -> np.ndarray:
    """A left fold ``fn(...fn(fn(start, x0), x1)...)`` over the reduced elements of ``x``
    in C order, for each kept position (what lf.reduce promises)."""
    jitted = jit(fn)
    ndim = x.ndim
    reduced = tuple(range(ndim)) if axis is None else tuple(sorted(a % ndim for a in np.atleast_1d(axis)))
    kept = [a for a in range(ndim) if a not in reduced]
    n = int(np.prod([x.shape[a] for a in reduced]))
    rows = np.transpose(x, kept + list(reduced)).reshape(*[x.shape[a] for a in kept], n)
    dtype = numba_dtype(fn, start, x.dtype)
    out = np.empty(rows.shape[:-1], dtype)
    for index in np.ndindex(out.shape):
        acc = start
        for v in rows[index]:
            acc = jitted(acc, v)
        out[index] = acc
    return out


def smooth(v):
    return v * v * (3.0 - 2.0 * v)


def clipped(v):
    if v > 2:
        return 2
    return v


MAP_FUNCTIONS = {
    "smooth": smooth,
    "clipped (branches)": clipped,
    "double": lambda v: v * 2,
    "math.sqrt(abs)": lambda v: math.sqrt(abs(v)),
    "comparison": lambda v: v > 1,
}


@pytest.mark.parametrize("name", list(MAP_FUNCTIONS))
@given(data=st.data())
def test_map_on_every_dtype_and_layout(name, data):
    fn = MAP_FUNCTIONS[name]
    shape = data.draw(shapes())
    cases = []
    for dtype in DTYPES:
        x, layout = data.draw(arrays_and_layout(dtype, shape, low=-5, high=5))
        cases.append(
            Case(f"map {name} {dtype}[{layout}]", lambda v: lf.map(fn, v), lambda v: elementwise(fn, v), (x,))
        )
        cases.append(
            Case(
                f"map {name} {dtype} of a view",
                lambda v: lf.map(fn, lf.asarray(v).T[None][..., ::-1]),
                lambda v: elementwise(fn, v.T[None][..., ::-1]),
                (x,),
            )
        )
    check_all(cases)


@given(data=st.data())
def test_zip_broadcasts_mixed_dtypes_and_layouts(data):
    shape_a, shape_b = data.draw(broadcast_shapes())
    cases = []
    for dtype_a, dtype_b in [(F64, I64), (I32, I32), (np.dtype(np.float32), np.dtype(bool))]:
        a, b = data.draw(arrays(dtype_a, shape_a)), data.draw(arrays(dtype_b, shape_b))

        def fn(p, q):
            return p * q - 1

        cases.append(
            Case(
                f"zip {dtype_a}{a.shape} {dtype_b}{b.shape}",
                lambda x, y: lf.zip(fn, x, y),
                lambda x, y: elementwise(fn, x, y),
                (a, b),
            )
        )
    check_all(cases)


def _fma(p, q):
    return p * q - 1


def _plus_one(v):
    return v + 1.0


def _add(a, b):
    return a + b


def _max(a, b):
    return max(a, b)


def _mul(a, b):
    return a * b


def _affine(acc, v):
    return acc * 0.5 + v  # not associative: the order of the fold shows


@pytest.mark.parametrize("axis", [None, 0, 1, -1, (0, 2), (2, 0), (0, 1, 2)], ids=str)
@given(data=st.data())
def test_reduce_is_a_left_fold_in_c_order(axis, data):
    shape = data.draw(shapes(min_dims=3, max_dims=3, max_side=4))
    x, layout = data.draw(arrays_and_layout(F64, shape, low=-5, high=5))
    i = data.draw(arrays(I32, shape, low=-5, high=5))
    check_all(
        [
            Case(
                f"fold {layout}",
                lambda v: lf.reduce(_affine, v, axis=axis, start=1.0),
                lambda v: fold(_affine, v, axis, 1.0),
                (x,),
                {"tol": 1e-12},
            ),
            Case(
                "fold of a transposed view",
                lambda v: lf.reduce(_affine, lf.asarray(v).transpose(2, 0, 1), axis=axis, start=1.0),
                lambda v: fold(_affine, v.transpose(2, 0, 1), axis, 1.0),
                (x,),
            ),
            Case(
                "int sum, start 0",
                lambda v: lf.reduce(lambda a, b: a + b, v, axis=axis, start=0),
                lambda v: fold(_add, v, axis, 0),
                (i,),
            ),
            Case(
                "max, start -inf",
                lambda v: lf.reduce(lambda a, b: max(a, b), v, axis=axis, start=-np.inf),
                lambda v: fold(_max, v, axis, -np.inf),
                (i,),
            ),
        ]
    )


def test_reduce_defaults_and_empty_axes():
    x = np.arange(1, 7, dtype=np.int64).reshape(2, 3)
    check_all(
        [
            Case(
                "start=0 default",
                lambda v: lf.reduce(lambda a, b: a + b, v),
                lambda v: fold(_add, v, None, 0),
                (x,),
            ),
            Case(
                "product, start 1",
                lambda v: lf.reduce(_mul, v, axis=1, start=1),
                lambda v: fold(_mul, v, 1, 1),
                (x,),
            ),
            Case(
                "empty axis gives start",
                lambda v: lf.reduce(_mul, v[:, :0], axis=1, start=7),
                lambda v: fold(_mul, v[:, :0], 1, 7),
                (x,),
            ),
            Case(
                "0-d input, axis None",
                lambda v: lf.reduce(_mul, v[0, 0], start=3),
                lambda v: fold(_mul, v[0, 0], None, 3),
                (x,),
            ),
        ]
    )


@pytest.mark.parametrize("dtype", [*FLOATS, I32, np.dtype(bool)], ids=str)
def test_result_dtypes_are_what_numba_infers(dtype):
    """map: Numba's type of fn(v); reduce: Numba's type of fn(start, v), so a Python int
    start (int64 to Numba) with float32 elements accumulates in float64."""
    x = np.ones(3, dtype)
    for fn in (*MAP_FUNCTIONS.values(), _plus_one):
        assert lf.map(fn, x).dtype == numba_dtype(fn, dtype), fn
    for start in (0, 0.0, np.float32(0), -np.inf, True):
        assert lf.reduce(_add, x, start=start).dtype == numba_dtype(_add, start, dtype), start


def test_user_functions_fuse_with_other_ops_and_inline_lambdas_compile_once():
    x = np.linspace(-1, 1, 12).reshape(3, 4)

    def step(t):
        return lf.map(lambda v: v * v + 1.0, t * 2.0).sum(axis=1)  # a new lambda each call

    step(lf.asarray(x)).compute()
    before = lf.cache_info()["compiles"]
    for _ in range(3):
        assert_matches(step(lf.asarray(x)).compute(), ((x * 2) ** 2 + 1).sum(axis=1), tol=1e-12)
    assert lf.cache_info()["compiles"] == before
    assert len(step(lf.asarray(x)).kernels()) == 1


def test_closures_read_their_values():
    x = np.arange(4.0)
    for k in (2.0, 3.0):
        scale = k
        assert_matches(lf.map(lambda v: v * scale, x).compute(), x * k)  # noqa: B023


def test_functions_with_default_arguments():
    """Numba compiles a function with defaults called with fewer arguments; lazyfuse
    says functions "with the same code, defaults and closure values share kernels"."""
    x = np.arange(4.0)
    for k in (2.0, 3.0):
        assert_matches(lf.map(lambda v, k=k: v * k, x).compute(), x * k)


def test_a_function_of_the_wrong_arity_is_a_user_function_error():
    def takes_three(a, b, c):
        return a

    with pytest.raises(lf.UserFunctionError, match="takes_three"):
        lf.reduce(takes_three, np.ones(3))
    with pytest.raises(lf.UserFunctionError, match="takes_three"):
        lf.map(takes_three, np.ones(3))


def test_functions_numba_cannot_compile():
    def needs_python(v):
        return v.no_such_attribute

    with pytest.raises(lf.UserFunctionError, match="needs_python") as info:
        lf.map(needs_python, np.ones(3))
    assert isinstance(info.value, TypeError) and isinstance(info.value, lf.LazyfuseError)
    assert "no_such_attribute" in str(info.value)  # Numba's reason

    def makes_a_list(a, b):
        return [a, b]

    with pytest.raises(lf.UserFunctionError, match="makes_a_list"):
        lf.zip(makes_a_list, np.ones(3), np.ones(3))

    with pytest.raises(lf.UserFunctionError):
        lf.map(lambda v: (v, v), np.ones(3))  # a tuple is not a scalar
    with pytest.raises(TypeError):
        lf.map(3, np.ones(3))


def test_user_functions_run_in_parallel_kernels():
    x = np.linspace(-2, 2, 40000).reshape(200, 200)
    with config.override(parallel=True):
        got = lf.reduce(lambda a, v: a + v * v, lf.map(smooth, x), axis=1, start=0.0).compute()
    assert_matches(got, (smooth(x) ** 2).sum(axis=1), tol=1e-10)
