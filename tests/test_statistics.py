"""var, std, any, all, count_nonzero, argmax, argmin against NumPy (every dtype, strided
layouts, axis None / int / negative / tuple, keepdims, size 0, 0-d), their errors, and
their kernel counts (each fuses into one kernel per row with its producer)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import lazyfuse as lf
from lazyfuse import config
from lazyfuse.codegen import cpu
from lazyfuse.runtime import execute
from tests.conftest import Case, assert_matches, check_all, sum_atol
from tests.strategies import DTYPES, arrays_and_layout, shapes, strided
from tests.test_reductions import axes, count


def _variance_atol(x: np.ndarray, n: int, ddof: float) -> float | None:
    """The mean's rounding (NumPy sums pairwise, lazyfuse in order) moves every deviation,
    and the sums of squares differ as any two sums do: a bound from ``sum_atol``."""
    values = x if x.dtype.kind == "f" else x.astype(np.float64)
    atol = sum_atol(values * values, n)
    return None if atol is None else 4 * atol / max(n - ddof, 1)


def _spread_cases(x: np.ndarray, label: str, **kwargs) -> list[Case]:
    """var and std of ``x`` with ``kwargs``, as lf functions and as methods."""
    n = count(x.shape, kwargs.get("axis"))
    var_atol = _variance_atol(x, n, kwargs.get("ddof", 0))
    std_atol = None if var_atol is None else math.sqrt(var_atol)  # |sqrt a - sqrt b| <= sqrt |a - b|
    return [
        Case(
            f"{label} var",
            lambda v: lf.var(v, **kwargs),
            lambda v: np.var(v, **kwargs),
            (x,),
            {"atol": var_atol},
        ),
        Case(
            f"{label} std",
            lambda v: lf.std(v, **kwargs),
            lambda v: np.std(v, **kwargs),
            (x,),
            {"atol": std_atol},
        ),
    ]


@pytest.mark.usefixtures("serial_kernels")
@settings(max_examples=3)
@given(data=st.data())
def test_var_and_std(data):
    """Bool and integers compute in float64, floats in their own dtype; ddof >= n gives
    inf or NaN (NumPy's values; NumPy also warns), an empty axis NaN. Two dtypes an
    example (each is a kernel to compile)."""
    shape = data.draw(shapes(max_side=4))
    axis = data.draw(axes(len(shape)))
    ddof = data.draw(st.sampled_from([0, 1, 2.5]))
    keepdims = data.draw(st.booleans())
    cases = []
    for dtype in data.draw(some_dtypes):
        x, layout = data.draw(arrays_and_layout(dtype, shape, low=-1000, high=1000))
        label = f"{dtype}[{layout}] {shape} axis={axis} ddof={ddof} keepdims={keepdims}"
        cases += _spread_cases(x, label, axis=axis, ddof=ddof, keepdims=keepdims)
    check_all(cases)


@pytest.mark.usefixtures("serial_kernels")
def test_var_dtype_correction_and_edge_cases():
    x = np.arange(12, dtype=np.int32).reshape(3, 4) % 5
    f32 = (x / 3).astype(np.float32)
    cases = [
        *_spread_cases(x, "int32 dtype=float32", axis=1, dtype=np.float32),
        *_spread_cases(f32, "correction=1", axis=-1, correction=1),
        *_spread_cases(f32, "ddof=n", axis=1, ddof=4),  # 0 / 0 where a row is constant, else inf
        *_spread_cases(np.zeros((0, 3)), "empty", axis=0),
        *_spread_cases(np.array([1.0, np.nan, 2.0]), "NaN", axis=0),
        *_spread_cases(np.full(7, 1e8) + np.arange(7), "large mean, small spread", axis=0),
    ]
    check_all(cases)


def test_var_errors():
    x = lf.asarray(np.ones((2, 3)))
    with pytest.raises(lf.AxisError, match="var: axis 2 is out of bounds"):
        x.var(axis=2)
    with pytest.raises(lf.AxisError):
        lf.var(np.array(1.0), axis=0)  # as NumPy: a 0-d array has no axis 0 here
    with pytest.raises(ValueError, match="ddof and correction") as info:
        lf.std(x, ddof=1, correction=1)
    assert isinstance(info.value, lf.LazyfuseError)
    with pytest.raises(lf.DTypeError, match="dtype=int64 is not supported"):
        x.var(dtype=np.int64)
    with pytest.raises(TypeError):
        lf.var(x, 0, None, None)  # NumPy's 4th parameter is `out`, which lazyfuse does not take


@pytest.mark.usefixtures("serial_kernels")
@settings(max_examples=3)
@given(data=st.data())
def test_any_all_count_nonzero(data):
    """NaN is not zero; an empty axis gives False / True / 0; count_nonzero is int64.
    Two dtypes an example (each is a kernel to compile); every dtype in test_result_dtypes."""
    shape = data.draw(shapes(max_side=4))
    axis = data.draw(axes(len(shape)))
    keepdims = data.draw(st.booleans())
    cases = []
    for dtype in data.draw(some_dtypes):
        small = st.sampled_from([0, 1]) if dtype.kind != "f" else st.sampled_from([0.0, -0.0, 1.5, np.nan])
        x, layout = data.draw(strided(data.draw(hnp.arrays(dtype, shape, elements=small))))
        label = f"{dtype}[{layout}] {shape} axis={axis} keepdims={keepdims}"
        for name in ("any", "all", "count_nonzero"):
            cases.append(
                Case(
                    f"{name} {label}",
                    lambda v, n=name: getattr(lf, n)(v, axis=axis, keepdims=keepdims),
                    lambda v, n=name: np.asarray(
                        getattr(np, n)(v, axis=axis, keepdims=keepdims),
                        dtype=(np.int64 if n == "count_nonzero" else bool),
                    ),
                    (x,),
                )
            )
    cases.append(Case("method", lambda v: lf.asarray(v).all(axis=0), lambda v: v.all(axis=0), (x,)))
    check_all(cases)


some_dtypes = st.lists(st.sampled_from(DTYPES), min_size=2, max_size=2, unique=True)


def test_result_dtypes():
    """Every dtype, without computing: var/std float64 for bool and ints, else the
    input's; any/all bool; count_nonzero, argmax, argmin int64."""
    for dtype in DTYPES:
        x = np.zeros((2, 3), dtype)
        for name in ("var", "std", "any", "all", "count_nonzero", "argmax", "argmin"):
            for axis in (None, 1):
                expected = np.asarray(getattr(np, name)(x, axis=axis)).dtype
                assert getattr(lf, name)(x, axis=axis).dtype == expected, (name, dtype, axis)


@st.composite
def tied(draw, dtype: np.dtype, shape: tuple[int, ...]) -> tuple[np.ndarray, str]:
    """Values with many ties (and NaNs and infinities for floats), in a drawn layout."""
    if dtype.kind == "f":
        elements = st.sampled_from([-1.0, 0.0, 2.0, np.inf, -np.inf, np.nan])
        values = draw(hnp.arrays(dtype, shape, elements=elements))
        if draw(st.booleans()):  # fewer NaNs: most rows then compare values
            values = np.where(np.isnan(values), 0.5, values).astype(dtype)
    else:
        values = draw(hnp.arrays(dtype, shape, elements=st.integers(0, 2) if dtype.kind == "i" else None))
    return draw(strided(values))


@pytest.mark.usefixtures("serial_kernels")
@settings(max_examples=3)
@given(data=st.data())
def test_argmax_argmin(data):
    """The first of tied extremes, the first NaN where there is one, the flat C-order
    index for axis=None; sizes 0 raise where NumPy's do (tested apart). argmax and argmin
    of one array are one kernel; two dtypes an example."""
    shape = data.draw(shapes(max_side=4, min_side=1))
    axis = data.draw(st.one_of(st.none(), st.integers(-max(len(shape), 1), max(len(shape), 1) - 1)))
    keepdims = data.draw(st.booleans())
    cases = []
    for dtype in data.draw(some_dtypes):
        x, layout = data.draw(tied(dtype, shape))
        cases += [
            Case(
                f"{name}({dtype}[{layout}] {shape}, axis={axis}, keepdims={keepdims})",
                lambda v, n=name: getattr(lf.asarray(v), n)(axis, keepdims=keepdims),
                lambda v, n=name: getattr(np, n)(v, axis=axis, keepdims=keepdims),
                (x,),
            )
            for name in ("argmax", "argmin")
        ]
    check_all(cases)


@pytest.mark.usefixtures("serial_kernels")
def test_argmax_nan_and_ties():
    x = np.array([[1.0, np.nan, 3.0, np.nan], [2.0, 2.0, 1.0, 1.0], [-np.inf, -np.inf, -np.inf, -np.inf]])
    cases = [
        Case(
            f"{name} axis={axis}",
            lambda v, n=name, a=axis: getattr(lf, n)(v, axis=a),
            lambda v, n=name, a=axis: getattr(np, n)(v, axis=a),
            (x,),
        )
        for name in ("argmax", "argmin")
        for axis in (None, 0, 1)
    ]
    cases.append(
        Case(
            "no row is reduced",
            lambda v: lf.argmax(v, axis=1),
            lambda v: np.argmax(v, axis=1),
            (np.zeros((0, 3)),),
        )
    )
    check_all(cases)


def _with_extremes(shape: tuple[int, ...], dtype: np.dtype, seed: int) -> np.ndarray:
    """Values with many ties (a few small integers) and, for floats, NaNs, infinities,
    and rows that are all -inf or all +inf, so that lanes and chunks tie and must
    combine by the smaller index; for integers, the lowest value (argmax's start)."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 3, shape).astype(dtype)
    if dtype.kind == "f":
        flat = x.reshape(-1)
        for value, share in ((np.nan, 0.002), (np.inf, 0.003), (-np.inf, 0.003)):
            flat[rng.random(flat.size) < share] = value
        rows = x.reshape(-1, shape[-1])
        if len(rows) > 1:
            rows[0], rows[-1] = -np.inf, np.inf
    if dtype.kind == "i":
        x[..., 1] = np.iinfo(dtype).min
    return x


@pytest.mark.parametrize(
    ("shape", "axis", "dtypes", "parallel"),
    [
        # rows: lanes of a row (the same code serial and parallel: serial compiles faster)
        ((5, 333), 1, ("float64", "float32", "int32", "bool"), False),
        ((333, 5), 0, ("float64",), True),  # a leading axis: chunks of rows over columns
        ((3, 150, 4), 1, ("float64", "int64"), False),  # a middle axis: rows over trailing columns
        ((20_000,), None, ("float64", "int64"), True),  # everything: chunks, each in lanes
        ((40, 90), None, ("float64",), False),  # everything, two axes: a flat index
    ],
)
def test_argmax_argmin_one_pass_paths(shape, axis, dtypes, parallel):
    """Each code path of the one-pass arg reduction (lanes, chunks, columns, several
    axes) against NumPy: ties across lanes and chunks, NaNs (the first wins),
    infinities, and rows of only the start value."""
    with config.override(parallel=parallel):
        for k, name in enumerate(dtypes):
            x = _with_extremes(shape, np.dtype(name), seed=k)
            t = lf.asarray(x)
            got = lf.compute(lf.argmax(t, axis=axis), lf.argmin(t, axis=axis))
            expected = (np.argmax(x, axis=axis), np.argmin(x, axis=axis))
            for what, g, e in zip(("argmax", "argmin"), got, expected, strict=True):
                np.testing.assert_array_equal(g, e, err_msg=f"{what} {name} {shape} axis={axis}")


def _across_blocks(length: int, dtype: np.dtype) -> np.ndarray:
    """Rows longer than cpu.ARG_BLOCK whose best value (or first NaN) lies in a later
    block, ties in several blocks, signed zeros, and a row of only -inf."""
    x = np.zeros((6, length), dtype)
    block = cpu.ARG_BLOCK
    x[0, [block + 5, 2 * block + 1]] = 5  # the best in two later blocks: the first wins
    x[1, 3] = 9
    if dtype.kind == "f":
        x[1, [block + 2, 2 * block + 7]] = np.nan  # the first NaN wins over the best
        x[2] = -np.inf
        x[3] = -1
        x[3, 10], x[3, block + 1] = -0.0, 0.0  # equal: the first
    x[4, -1] = 7  # the last element, in the last (short) block
    x[5, [block - 1, block]] = 3  # a tie across a block's edge
    return x


@pytest.mark.parametrize(("dtype", "math"), [("float32", "fast"), ("float64", "libm"), ("int32", "fast")])
def test_arg_reductions_find_the_first_best_across_blocks(dtype, math):
    """An arg reduction keeps the first block holding the best value, then searches it:
    rows (serial: the same code as parallel), a 1-D run in parallel chunks, and several
    axes, with LLVM's max (fast math) or NumPy's semantics spelled out (libm, as lf.export
    writes kernels); argmax and argmin in one kernel (one pass, two block maxima)."""
    x = _across_blocks(2 * cpu.ARG_BLOCK + 300, np.dtype(dtype))
    cases = [(x, 1, False), (np.tile(x[:, ::-1], 30).reshape(-1), None, True), (x, None, False)]
    with config.override(math=math):
        for values, axis, parallel in cases:
            with config.override(parallel=parallel):
                t = lf.asarray(values)
                got = lf.compute(lf.argmax(t, axis=axis), lf.argmin(-t, axis=axis))  # the same cases
                expected = (np.argmax(values, axis=axis), np.argmin(-values, axis=axis))
                for what, g, e in zip(("argmax", "argmin"), got, expected, strict=True):
                    np.testing.assert_array_equal(g, e, err_msg=f"{what} {values.shape} axis={axis}")


def test_argmax_errors():
    with pytest.raises(ValueError, match="argmax: attempt to get argmax of an empty sequence") as info:
        lf.argmax(np.zeros((3, 0)), axis=1)
    assert isinstance(info.value, lf.ShapeError)
    with pytest.raises(lf.ShapeError, match="argmin of an empty"):
        lf.asarray(np.zeros(0)).argmin()
    with pytest.raises(lf.AxisError, match="argmax: axis 2 is out of bounds"):
        lf.argmax(np.zeros((2, 3)), axis=2)
    with pytest.raises(TypeError, match="axis must be None or an int"):
        lf.argmin(np.zeros((2, 3)), axis=(0, 1))  # NumPy's argmin takes no tuple
    with pytest.raises(lf.AxisError):
        lf.argmax(np.array(1.0), axis=1)


def planned_kernels(tensor: lf.Tensor) -> list:
    """The kernel calls that compute ``tensor``: what ``tensor.kernels()`` compiles, one
    each (counted here without compiling them)."""
    return [call for call in execute.plan([tensor.node])[2] if call.spec.kind != "host"]


@pytest.mark.usefixtures("serial_kernels")
def test_kernel_counts():
    """var over rows and over everything, any, and argmax/argmin of a fused producer: one
    kernel each. argmax over a leading axis is one pass (a best value and its index, the
    loop index, not an array it reads); over rows, one pass of block maxima and a search
    of the one block holding the best, in the same kernel."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((6, 9)), rng.standard_normal((6, 9))
    x = lf.exp(lf.asarray(a)) * b
    for tensor in (
        lf.asarray(a).var(axis=1),
        lf.asarray(a).std(),
        lf.any(x > 2, axis=0),
        x.argmax(axis=1),
        x.argmin(),
    ):
        assert len(planned_kernels(tensor)) == 1, tensor.explain()
    (call,) = planned_kernels(lf.argmax(a, axis=0))
    assert len(call.loads) == 1 and [a.op.name for a in call.spec.accumulates] == ["ARGMAX"]
    source = cpu.generate(call.spec)
    assert "better_acc0" in source and "maximum_f" not in source, source  # no max pass
    (call,) = planned_kernels(x.argmax(axis=1))
    source = cpu.generate(call.spec)
    assert source.count("block_acc0 = llvm_maximum_f64(block_acc0, t1)") == 1, source
    assert source.count("found_acc0 = min(found_acc0,") == 1, source
    expected = np.exp(a) * b
    argmax, argmin = lf.compute(x.argmax(axis=1), x.argmin())  # one kernel, both outputs
    np.testing.assert_array_equal(argmax, expected.argmax(axis=1))
    assert argmin == expected.argmin()


def test_statistics_and_activations_on_the_cuda_target():
    """The CUDA target (Numba's simulator here) computes them as the CPU does. Blocks of
    8 threads, as in tests/test_cuda.py (the simulator runs each of a block's threads as
    a Python thread: the default 256 took 7 s here)."""
    x = np.random.default_rng(7).standard_normal((3, 5))
    x[1, 2] = x[1, 4] = x[1].max() + 1.0  # a tie: the first index wins
    t = lf.asarray(x)
    with config.override(cuda_block=8):
        got = lf.compute(
            t.argmax(axis=1), t.var(axis=0, ddof=1), lf.softmax(t), lf.one_hot(np.array([0, 2, 4]), 5),
            target="cuda",
        )  # fmt: skip
    want = [
        x.argmax(axis=1), x.var(axis=0, ddof=1), np.exp(x) / np.exp(x).sum(axis=-1, keepdims=True),
        np.eye(5)[[0, 2, 4]],
    ]  # fmt: skip
    for a, b in zip(got, want, strict=True):
        assert_matches(a, b, tol=1e-10)
