"""Structural tests: kernel counts, generated source, recompiles, IR invariants, layering."""

from __future__ import annotations

import ast
import pathlib
import tracemalloc

import numpy as np
import pytest

import lazyfuse as lf
from lazyfuse import config
from lazyfuse.graph import build
from lazyfuse.graph.interpret import evaluate
from lazyfuse.graph.node import attr_key
from lazyfuse.graph.ops import Op
from lazyfuse.graph.verify import VerificationError, verify
from lazyfuse.runtime import compile as runtime_compile
from lazyfuse.runtime import plans

PACKAGE = pathlib.Path(lf.__file__).parent


def test_equal_expressions_are_one_node():
    x = lf.asarray(np.arange(6.0).reshape(2, 3))
    y = lf.asarray(np.ones(3))
    a = lf.exp(x * y).sum(axis=1)
    b = lf.exp(x * y).sum(axis=1)
    assert a.node is b.node
    one = 1.0
    assert (x + one).node is not (x + one).node  # each scalar written is its own parameter
    c = x + one
    assert ((c * c) - c).node.args[0].args == (c.node, c.node)
    assert len({attr_key((v,)) for v in (0, False, 0.0, np.float32(0))}) == 4


def _softmax(t):
    e = lf.exp(t - t.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _layernorm(t):
    centered = t - t.mean(axis=-1, keepdims=True)
    return centered / lf.sqrt((centered * centered).mean(axis=-1, keepdims=True) + 1e-5)


X = np.arange(20.0).reshape(4, 5) / 7
B = np.linspace(-1, 1, 5)
KERNEL_COUNTS = [
    ("elementwise chain", lambda x, b: (x * 2.0 + 1.0) * lf.exp(-x), 1),
    ("chain with broadcast input", lambda x, b: x * b + b, 1),
    ("row reduction with prologue", lambda x, b: ((x - b) ** 2).sum(axis=1), 1),
    ("reduction with epilogue", lambda x, b: lf.sqrt((x * x).sum(axis=1)) + 1.0, 1),
    ("softmax", lambda x, b: _softmax(x), 1),
    ("layernorm", lambda x, b: _layernorm(x), 1),
    ("variance", lambda x, b: ((x - x.mean(axis=1, keepdims=True)) ** 2).mean(axis=1), 1),
    ("full reduction and broadcast back", lambda x, b: x - x.mean(), 1),
    ("leading-axis reduction", lambda x, b: x.sum(axis=0) * 2, 1),
    ("broadcast work computed at its own shape", lambda x, b: x * lf.exp(b) + lf.log(abs(b) + 1), 2),
    ("matmul then its epilogue", lambda x, b: lf.relu(x.T @ x + 1.0), 2),
    ("transpose and slice between elementwise ops", lambda x, b: (lf.exp(x).T[::-1] * 2 + 1).sum(axis=1), 1),
]


@pytest.mark.parametrize(("expr", "count"), [c[1:] for c in KERNEL_COUNTS], ids=[c[0] for c in KERNEL_COUNTS])
def test_kernel_counts(expr, count):
    t = expr(lf.asarray(X), lf.asarray(B))
    assert len(t.kernels()) == count, t.explain()
    (reference,) = evaluate([t.node])
    # Note: float sums agree to rounding (lanes combine as a tree; NumPy adds pairwise)
    np.testing.assert_allclose(t.compute(), reference, rtol=1e-12, atol=1e-14)


def test_fused_kernels_read_like_the_expression():
    x = lf.asarray(X)
    (kernel,) = _softmax(x).kernels()
    assert "# fused ops: max, subtract, exp, sum, divide" in kernel.source
    # chunks of rows in parallel, each allocating its scratch once, then one row at a time
    assert "for c in prange(chunks):" in kernel.source and "i0 = q" in kernel.source
    # max: a pass of LLVM's maximum (in blocks); sum: in 16 lanes (then the row's tail);
    # then the stores
    assert kernel.source.count("acc0 = llvm_maximum_f64(acc0, x0)") == 1
    assert kernel.source.count("for r_lanes in range(0, m_lanes, 16):") == 1
    assert kernel.source.count("for r0 in range(m_lanes, m0):") == 1
    assert kernel.source.count("for r0 in range(m0):") == 1
    assert "@njit(parallel=True" in kernel.source
    ast.parse(kernel.source)  # real Python
    assert kernel.path.read_text() == kernel.source


def test_per_row_values_are_hoisted_out_of_the_inner_loop():
    x = lf.asarray(X)
    (kernel,) = _layernorm(x).kernels()
    lines = kernel.source.splitlines()
    sqrt_line = next(i for i, ln in enumerate(lines) if "np.sqrt(" in ln)
    # row level: inside the loops over chunks and their rows only, not over a row's elements
    assert lines[sqrt_line].startswith(" " * 12 + "t")


def test_outputs_computed_together_share_a_kernel():
    x = lf.asarray(X)
    a, b = x + 1.0, x * 2.0
    text = lf.explain(a, b)
    assert "kernels (1)" in text
    out_a, out_b = lf.compute(a, b)
    np.testing.assert_array_equal(out_a, X + 1.0)
    np.testing.assert_array_equal(out_b, X * 2.0)


def test_refused_fusions_say_why():
    x, b = lf.asarray(X), lf.asarray(B)
    text = (x * lf.exp(b)).explain()
    assert "after fusion:" in text
    assert "computed once at its own shape" in text
    text = lf.relu(x @ x.T).explain()
    assert "matmul is its own kernel" in text


def test_fusion_can_be_turned_off():
    x = lf.asarray(X)
    with config.override(fuse=False):
        assert len(((x * 2.0 + 1.0) * lf.exp(-x)).kernels()) == 5
        np.testing.assert_allclose(_softmax(x).compute(), _softmax(x).compute())


def test_scalars_are_parameters_not_literals():
    x = lf.asarray(np.ones(3))
    src_a = (x * 2.5).kernels()[0].source
    src_b = (x * 7.25).kernels()[0].source
    assert src_a == src_b
    assert "2.5" not in src_a and "p0" in src_a


def test_generated_source_reads_like_the_expression():
    x = lf.asarray(np.ones((2, 3), np.float32))
    source = (x / 3).kernels()[0].source
    assert "# fused ops: divide" in source
    assert "t0 = np.float32(x0 / p0)" in source
    assert "out0[i0, i1] = t0" in source


def test_new_sizes_and_scalar_values_do_not_recompile():
    def expr(n, c):
        x = lf.asarray(np.arange(2 * n, dtype=np.float64).reshape(2, n))
        return (x * c + 1.0).sum(axis=1) * c, x.T[::-1] * c

    for n, c in [(10, 1.0), (0, 1.0)]:  # warm both layouts: C-contiguous and strided
        lf.compute(*expr(n, c))
    before = dict(runtime_compile.STATS)
    for n, c in [(3, 2.0), (1000, -1.5), (0, 4.0), (7, 0.5)]:
        total, view = lf.compute(*expr(n, c))
        x = np.arange(2 * n, dtype=np.float64).reshape(2, n)
        np.testing.assert_allclose(total, (x * c + 1.0).sum(axis=1) * c)
        np.testing.assert_array_equal(view, x.T[::-1] * c)
    assert runtime_compile.STATS["kernels"] == before["kernels"]
    assert runtime_compile.STATS["compiles"] == before["compiles"]


def test_runtime_matches_reference_interpreter():
    rng = np.random.default_rng(1)
    a = lf.asarray(rng.standard_normal((3, 4)))
    b = lf.asarray(rng.integers(-3, 4, (4,)).astype(np.int32))
    expr = lf.where(a > 0, a // b, a % 2) @ lf.asarray(np.ones((4, 2))) + a.mean()
    (reference,) = evaluate([expr.node])
    np.testing.assert_allclose(expr.compute(), reference, rtol=1e-12)


def test_verifier_accepts_built_graphs_and_rejects_broken_ones():
    x = lf.asarray(np.ones((2, 3)))
    expr = (x + x.sum(axis=0)).T @ x
    verify([expr.node])
    with config.override(checks=True):
        expr.compute()
    bad = build.make(Op.ADD, (x.node, x.T.node), ((x.dtype, x.dtype),), (2, 3), x.dtype)
    with pytest.raises(VerificationError, match="operand shapes"):
        verify([bad])


def test_explain_shows_graph_and_sources():
    x = lf.asarray(np.ones((2, 3)))
    text = (lf.relu(x) + 1).explain()
    assert "a0: float64[2,3] = input" in text
    assert "relu a0" in text
    assert "kernels (1)" in text
    assert "def relu_add_f64_flat(a0, p0, out0, n0):" in text  # the variant C arrays run
    assert "variant: C-contiguous" in text


def test_explain_shows_the_variant_the_run_takes():
    """explain() chooses each call's variant as the run does, from the inputs' layouts,
    and shows that variant's source; the run then compiles exactly that kernel."""
    strided = lf.asarray(np.ones((64, 64))[:, ::2])
    expr = lf.exp(strided) + 1
    text = expr.explain()
    assert "variant: any strides" in text or "variant: rows" in text or "padded" in text
    shown = text.split("kernels (1):\n  ")[1].split(":")[0]
    found, _, _ = plans.plan_for([expr.node])
    for call in found.calls:
        call.kernels.clear()  # the call's memo of loaded kernels (other tests share the plan)
    expr.compute()
    ran = [kernel.name for call in found.calls for kernel in call.kernels.values()]
    assert ran == [shown]


def _imports(path: pathlib.Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return found


@pytest.mark.parametrize(
    ("layer", "forbidden"),
    [
        ("graph", ("lazyfuse.codegen", "lazyfuse.runtime", "lazyfuse.tensor", "numba")),
        ("codegen", ("lazyfuse.runtime", "lazyfuse.tensor", "numba")),
        ("runtime", ("lazyfuse.tensor", "lazyfuse.functions", "lazyfuse.cli")),
    ],
)
def test_imports_point_one_way(layer, forbidden):
    for path in (PACKAGE / layer).glob("*.py"):
        bad = [m for m in _imports(path) if m.startswith(forbidden)]
        assert not bad, f"{path.name} imports {bad}"


def test_config_imports_nothing_of_lazyfuse():
    assert not [m for m in _imports(PACKAGE / "config.py") if m.startswith("lazyfuse")]


def test_plans_are_cached_per_structure_and_keep_no_user_data():
    import gc
    import weakref

    from lazyfuse.runtime import plans

    def expr(values, scale):
        x = lf.asarray(values)
        return (x * scale - x.mean()).sum(axis=0)

    first = np.arange(12.0).reshape(3, 4)
    expr(first, 2.0).compute()
    misses = plans.STATS["misses"]
    second = np.ones((3, 4))
    np.testing.assert_allclose(expr(second, 5.0).compute(), (second * 5.0 - 1.0).sum(axis=0))
    assert plans.STATS["misses"] == misses  # same structure, new data and scalar: a hit
    watched = weakref.ref(second)
    del second
    gc.collect()
    assert watched() is None  # the cached plan does not hold the user's array


def test_small_sizes_run_a_serial_variant():
    from lazyfuse.codegen.cpu import Options

    x = lf.asarray(np.arange(10.0))
    expr = lf.exp(x * 0.125 - 3.0)
    with config.override(serial_below=1000):
        np.testing.assert_allclose(expr.compute(), np.exp(np.arange(10.0) * 0.125 - 3.0), rtol=1e-12)
    stem = expr.kernels()[0].name.rsplit("_", 1)[0]  # the name without its rank
    used = {options for spec, options in list(runtime_compile._CACHE) if spec.stem == stem}
    assert Options(parallel=False, math=config.get().math) in used


def test_an_elementwise_chain_allocates_only_its_output():
    """Peak memory (NumPy reports its buffers to tracemalloc) of a cached fused chain is
    its output; NumPy's version of the same chain holds temporaries too."""
    rng = np.random.default_rng(0)
    a, b, c, d = (rng.random(200_000) for _ in range(4))
    ta, tb, tc, td = map(lf.asarray, (a, b, c, d))

    def chain(x, y, z, w, exp):
        return (x * y + z) * exp(-w)

    chain(ta, tb, tc, td, lf.exp).compute()  # compile and plan first
    tracemalloc.start()
    try:
        result = chain(ta, tb, tc, td, lf.exp).compute()
        ours = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        expected = chain(a, b, c, d, np.exp)
        numpy_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    np.testing.assert_allclose(result, expected, rtol=1e-12)
    assert result.nbytes <= ours < result.nbytes + 64 * 1024, (ours, result.nbytes)
    assert numpy_peak >= 2 * result.nbytes  # the oracle's temporaries: the test can tell


def _plan_key(tensor):
    from lazyfuse.runtime import plans

    return plans.structure([tensor.node])[0]


def test_the_plan_key_has_named_parts_and_no_sizes():
    def expr(shape, dtype=np.float64):
        x = lf.asarray(np.ones(shape, dtype))
        return (x * 2.0 + x.sum(axis=0)).T

    small, large = _plan_key(expr((3, 4))), _plan_key(expr((50, 7)))
    assert small._fields == ("graph", "dtypes", "shapes", "sizes", "settings", "versions")
    assert small == large  # sizes are symbols: one plan serves both
    assert small.sizes is None
    assert _plan_key(expr((3, 3))).shapes != small.shapes  # equal sizes are a different pattern
    assert _plan_key(expr((1, 4))).shapes != small.shapes  # 1 broadcasts: stays in the key
    assert _plan_key(expr((0, 4))).shapes != small.shapes  # so does an empty axis
    assert _plan_key(expr((3, 4), np.float32)).dtypes != small.dtypes
    assert "cpu" in small.settings and lf.__version__ in small.versions
    with config.override(fuse=False):
        assert _plan_key(expr((3, 4))).settings != small.settings
    # a reshape that regroups axes (or indexing) depends on the sizes themselves
    regroup = _plan_key(lf.asarray(np.ones((4, 6))).reshape(6, 4) + 1.0)
    assert regroup.sizes == (4, 6)
    assert _plan_key(lf.asarray(np.ones((4, 6)))[1:] + 1.0).sizes == (4, 6)


@pytest.mark.parametrize("parallel", [False, True])
def test_new_sizes_reuse_the_plan_and_the_kernels(parallel):
    """Softmax-like rows, a broadcast and a transpose at several sizes: one plan, no
    compile after the first size, results as NumPy's."""
    from lazyfuse.runtime import plans

    def expr(x, b, exp):
        e = exp(x - x.max(axis=1, keepdims=True))
        return (e / e.sum(axis=1, keepdims=True) + b).T

    rng = np.random.default_rng(3)
    with config.override(parallel=parallel, serial_below=0):
        for k, (rows, cols) in enumerate([(3, 5), (40, 17), (7, 1000), (2, 3)]):
            x, b = rng.standard_normal((rows, cols)), rng.standard_normal(cols)
            before = lf.cache_info()
            got = expr(lf.asarray(x), lf.asarray(b), lf.exp).compute()
            np.testing.assert_allclose(got, expr(x, b, np.exp), rtol=1e-12, atol=1e-15)
            if k:
                after = lf.cache_info()
                assert (after["misses"], after["compiles"]) == (before["misses"], before["compiles"])
    assert plans.STATS["misses"] >= 1


def test_debug_names_the_part_of_the_key_that_missed(capsys):
    from lazyfuse.runtime import plans

    plans.clear()  # Note: else a plan another test left in this process may be the closest
    x = lf.asarray(np.ones((3, 4)))
    (x * 2.0 - 1.0).compute()
    with config.override(debug=1):
        (x.astype(np.float32) * 2.0 - 1.0).compute()
        (lf.asarray(np.ones((3, 3))) * 2.0 - 1.0).compute()
    err = capsys.readouterr().err
    assert "plan miss: new graph, dtypes" in err
    assert "plan miss: new shapes" in err


GOLDEN = pathlib.Path(__file__).parent / "golden"


def _golden_cases():
    x = lf.asarray(np.ones((4, 6)))
    f32 = lf.asarray(np.ones((4, 6), np.float32))
    i64 = lf.asarray(np.ones((3, 3), np.int64))
    b = lf.asarray(np.ones(6))
    e = lf.exp(f32 - f32.max(axis=1, keepdims=True))
    return {
        "chain": (x * x + 1.5) * lf.exp(-x),
        "softmax_f32": e / e.sum(axis=1, keepdims=True),
        "row_distance": ((x - b) ** 2).sum(axis=1),
        "column_sum": x.sum(axis=0),
        "int_matmul_epilogue": lf.maximum(i64 @ i64 + 1, 0),
    }


@pytest.mark.parametrize("name", list(_golden_cases()))
def test_generated_source_matches_its_golden_file(name):
    """The full source of a few kernels, as reviewed. After an intended change of the code
    generator, rewrite them with LAZYFUSE_UPDATE_GOLDEN=1 and review the diff."""
    import os
    import re

    source = "\n# ---- next kernel ----\n".join(k.source for k in _golden_cases()[name].kernels())
    source = re.sub(r"\(version [0-9a-f]+\)", "(version ...)", source)  # the fastmath module's hash
    path = GOLDEN / f"{name}.py.txt"
    if os.environ.get("LAZYFUSE_UPDATE_GOLDEN"):
        path.write_text(source)
    assert source == path.read_text(), f"generated source of {name} changed; see {path}"


def test_an_epilogue_writes_over_the_product_it_reads_last():
    """The product's buffer is dying when the epilogue reads it at the same index: the
    epilogue writes there (peak memory: one result), and the answers stay NumPy's."""
    rng = np.random.default_rng(0)
    a, b, bias = rng.standard_normal((300, 40)), rng.standard_normal((40, 200)), rng.standard_normal(200)
    expr = lambda: lf.maximum(lf.asarray(a) @ b + bias, 0.0)  # noqa: E731
    expr().compute()  # plan and compile first
    tracemalloc.start()
    try:
        result = expr().compute()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    np.testing.assert_allclose(result, np.maximum(a @ b + bias, 0.0), rtol=1e-12, atol=1e-12)
    assert peak < 1.5 * result.nbytes, (peak, result.nbytes)
    # a value still needed later (returned too) is never written over
    product, relu = lf.compute(lf.asarray(a) @ b, lf.maximum(lf.asarray(a) @ b + bias, 0.0))
    np.testing.assert_allclose(product, a @ b, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(relu, np.maximum(a @ b + bias, 0.0), rtol=1e-12, atol=1e-12)


def test_an_epilogue_over_the_product_runs_in_place():
    """Written over the product it reads, the flat and rows variants read the product
    from their output's array (one argument: LLVM vectorizes the loop; two that overlap
    would take its scalar fallback); a strided variant reads it as an input. The answers
    are NumPy's in each case."""
    from lazyfuse.runtime import execute, plans

    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((64, 30)), rng.standard_normal((30, 50))
    bias, other = rng.standard_normal(50), rng.standard_normal((50, 64))
    cases = [
        (lambda p: lf.tanh(p) * 2.0, lambda p: np.tanh(p) * 2.0, "_flat_in_place0"),
        (lambda p: p * p + lf.asarray(bias), lambda p: p * p + bias, "_rows_fr_in_place0"),
        (lambda p: p + lf.asarray(other).T, lambda p: p + other.T, None),
    ]
    with config.override(serial_below=0):
        for ours, theirs, suffix in cases:
            expr = ours(lf.asarray(a) @ b)
            np.testing.assert_allclose(expr.compute(), theirs(a @ b), rtol=1e-12, atol=1e-12)
            found, _, _ = plans.plan_for([expr.node])
            (epilogue,) = [s for s in execute._schedule(found) if s.call.spec.kind == "loop"]
            names = [k.name for k in epilogue.call.kernels.values()]
            if suffix is None:
                assert not any("_in_place" in n for n in names), names
            else:
                assert any(n.endswith(suffix) for n in names), names
                source = next(k.source for k in epilogue.call.kernels.values() if k.name.endswith(suffix))
                assert "x0 = out0[" in source


def test_a_kernel_with_several_outputs_never_writes_over_an_input():
    """Sibling outputs share a kernel; none of them may take the buffer of a value that
    another output of that kernel still reads."""
    rng = np.random.default_rng(2)
    a, b, z = rng.standard_normal((6, 4)), rng.standard_normal((4, 5)), rng.standard_normal((6, 5))
    product = lf.asarray(a) @ b
    first, second = lf.compute(lf.asarray(z) + 1.0, product * 2.0)
    np.testing.assert_array_equal(first, z + 1.0)
    np.testing.assert_allclose(second, (a @ b) * 2.0, rtol=1e-12)
