"""Structural tests: kernel counts, generated source, recompiles, IR invariants, layering."""

from __future__ import annotations

import ast
import pathlib

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

PACKAGE = pathlib.Path(lf.__file__).parent


def test_equal_expressions_are_one_node():
    x = lf.asarray(np.arange(6.0).reshape(2, 3))
    a = (x + 1.0) * x
    b = (x + 1.0) * x
    assert a.node is b.node
    assert (x + 1.0).node is (x + 1).node  # the weak 1 becomes the float64 parameter 1.0
    assert (x + 1.0).node is not (x + 2.0).node
    assert len({attr_key((v,)) for v in (0, False, 0.0, np.float32(0))}) == 4


def test_one_kernel_per_computing_node_and_views_are_not_kernels():
    x = lf.asarray(np.ones((4, 5)))
    b = lf.asarray(np.ones(5))
    expr = lf.exp(x.T[::-1] * 2.0).sum(axis=0) + b[:4]
    names = [k.name for k in expr.kernels()]
    assert names == ["multiply_f64_sf64_2d", "exp_f64_2d", "sum_f64_1d_over_1", "add_f64_f64_1d"]
    for k in expr.kernels():
        assert k.target == "cpu"
        assert "@njit(parallel=True" in k.source and "prange(" in k.source
        ast.parse(k.source)  # real Python
        assert k.path.read_text() == k.source


def test_scalars_are_parameters_not_literals():
    x = lf.asarray(np.ones(3))
    src_a = (x * 2.5).kernels()[0].source
    src_b = (x * 7.25).kernels()[0].source
    assert src_a == src_b
    assert "2.5" not in src_a and "p0" in src_a


def test_generated_source_reads_like_the_expression():
    x = lf.asarray(np.ones((2, 3), np.float32))
    source = (x / 3).kernels()[0].source
    assert "# computes: divide(float32[2d], float32 scalar) -> float32[2d]" in source
    assert "t0 = np.float32(x0 / p0)" in source
    assert "out[i0, i1] = t0" in source


def test_new_sizes_and_scalar_values_do_not_recompile():
    def expr(n, c):
        return (lf.asarray(np.arange(n, dtype=np.float64)) * c).sum()

    expr(10, 1.0).compute()
    compiled = runtime_compile.STATS["kernels"]
    kernels = {k.name: k for k in expr(10, 1.0).kernels()}
    signatures = {name: len(k.function.signatures) for name, k in kernels.items()}
    for n, c in [(3, 2.0), (1000, -1.5), (0, 4.0)]:
        assert expr(n, c).compute() == pytest.approx(np.arange(n).sum() * c)
    assert runtime_compile.STATS["kernels"] == compiled
    assert {name: len(k.function.signatures) for name, k in kernels.items()} == signatures


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
    assert "kernels (2" in text
    assert "def relu_f64_2d(a0, out):" in text


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
