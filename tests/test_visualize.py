"""Pictures of a plan (lazyfuse/visualize.py), checked through their DOT source: one
cluster per kernel, labels naming the ops, stored and fused values told apart, every
refused fusion on an edge with its reason, backward nodes marked; and the files it
writes (matplotlib here; Graphviz's dot only where it is installed)."""

from __future__ import annotations

import re
import shutil
import sys

import numpy as np
import pytest

import lazyfuse as lf
from lazyfuse import config
from lazyfuse.graph.names import BACKWARD_OF
from lazyfuse.runtime import execute
from lazyfuse.visualize import (
    BACKWARD_FILL,
    REFUSED_COLOR,
    PlotDependencyError,
    dot_source,
    short_form,
    visualize,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def arrays():
    rng = np.random.default_rng(0)
    return lf.asarray(rng.random((8, 5))), lf.asarray(rng.random((5, 3))), lf.asarray(rng.random(3))


def clusters(source: str) -> dict[str, str]:
    """Each kernel cluster's label and the text of its body."""
    found = {}
    for body in re.findall(r"subgraph cluster_\d+ \{(.*?)\n  \}", source, flags=re.DOTALL):
        label = re.search(r'graph \[label="([^"]*)"', body)
        assert label is not None
        found[label.group(1)] = body
    return found


def box_lines(source: str) -> list[str]:
    """The DOT lines that declare a box (not an edge, a graph attribute or the legend)."""
    return [
        ln.strip()
        for ln in source.splitlines()
        if "[label=" in ln and "->" not in ln and "legend" not in ln and "graph [" not in ln
    ]


def test_one_elementwise_kernel_is_one_cluster_storing_only_its_result(arrays):
    x, _, _ = arrays
    t = lf.exp(x) * 2 + 1
    source = dot_source([t.node])
    assert source.count("subgraph cluster_") == len(t.kernels()) == 1
    ((label, body),) = clusters(source).items()
    assert "exp" in label
    for op in ("exp", "multiply", "add"):
        assert f": {op} float64[8,5]" in body
    stored = [ln for ln in box_lines(body) if 'style="filled"' in ln]
    fused = [ln for ln in box_lines(body) if "dashed" in ln]
    assert len(stored) == 1 and ": add " in stored[0]  # the result, written to memory
    assert len(fused) == 2  # exp and multiply, computed in registers
    assert "a0: input float64[8,5]" in source  # the input: a plain box outside the cluster
    assert not source.split("subgraph cluster_")[0].count("_k0")


def test_a_float_product_is_a_blas_cluster_and_its_refusal_is_a_labelled_red_edge(arrays):
    x, w, b = arrays
    roots = [(x @ w + b).tanh().node]
    source = dot_source(roots)
    found = clusters(source)
    assert len(found) == 2
    blas, loop = found
    assert blas.endswith("(BLAS)") and ": matmul float64[8,3]" in found[blas]
    assert ": add float64[8,3]" in found[loop] and ": tanh float64[8,3]" in found[loop]
    assert "(BLAS)" not in loop
    decisions = execute.plan(roots)[1].decisions
    assert decisions
    refused = [ln for ln in source.splitlines() if "->" in ln and REFUSED_COLOR in ln]
    assert len(refused) == len(decisions)
    for (_, reason), line in zip(decisions, refused, strict=True):
        assert reason in line.replace("\\n", " ")
        assert 'style="dashed"' in line
        assert line.strip().startswith('"t0_k0" ->')  # from the stored product


def test_an_integer_product_is_not_labelled_blas():
    a = lf.asarray(np.arange(12).reshape(3, 4))
    b = lf.asarray(np.arange(8).reshape(4, 2))
    source = dot_source([(a @ b).node])
    assert "matmul int64[3,2]" in source
    assert "(BLAS)" not in source


def test_softmax_has_as_many_clusters_as_kernels(arrays):
    x, _, _ = arrays
    t = lf.softmax(x)
    source = dot_source([t.node])
    assert source.count("subgraph cluster_") == len(t.kernels())
    for op in ("max", "exp", "sum", "divide"):
        assert f": {op} " in source


def test_a_value_recomputed_in_two_kernels_is_drawn_in_each_with_the_reason(arrays):
    x, _, _ = arrays
    y = x + 1
    roots = [(y * 2).sum(axis=0).node, (y * 3).sum(axis=1).node]
    source = dot_source(roots)
    reasons = [r for _, r in execute.plan(roots)[1].decisions]
    assert any(r.startswith("recomputed in 2 kernels") for r in reasons)
    holding = [body for body in clusters(source).values() if ": add float64[8,5]" in body]
    assert len(holding) == 2
    for reason in reasons:
        assert reason in source.replace("\\n", " ")


def test_backward_nodes_are_marked_and_forward_ones_are_not(arrays):
    x, w, _ = arrays
    g = lf.grad(lambda w: (lf.tanh(x @ w) ** 2).mean())(w)
    source = dot_source([g.node])
    _, grouped, _ = execute.plan([g.node])
    members = {m for group in grouped.groups for m in group.members}
    backward = [m for m in members if m in BACKWARD_OF]
    assert backward and len(backward) < len(members)
    filled = [ln for ln in box_lines(source) if BACKWARD_FILL in ln]
    assert len(filled) == len(backward)
    assert not any(": tanh " in ln for ln in filled)  # the forward tanh
    assert any(": matmul float64[5,3]" in ln for ln in filled)  # the gradient's product
    assert '"legend_backward" [label="backward"' in source
    assert "legend_backward" not in dot_source([lf.tanh(x).node])


def test_short_form_is_one_line_per_kernel(arrays):
    x, w, b = arrays
    roots = [(x @ w + b).tanh().node]
    lines = short_form(roots)
    assert len(lines) == dot_source(roots).count("subgraph cluster_") == 2
    assert lines[0].startswith("kernel 0: matmul_") and "BLAS" in lines[0]
    assert "ops add, tanh" in lines[1] and "reads t0, a2 (reshape, broadcast)" in lines[1]
    assert "writes t4 float64[8,3]" in lines[1] and "; variant: " in lines[1]


def test_short_form_gives_the_variant_the_run_chooses(arrays):
    x, _, _ = arrays
    roots = [(lf.exp(x) * 2 + 1).node]
    with config.override(parallel=True, serial_below=40):  # 8 x 5 elements: parallel
        (line,) = short_form(roots)
    assert "ops exp, multiply, add; reads a0, s0, s1; writes t2 float64[8,5]" in line
    assert line.endswith("variant: C-contiguous, parallel")
    with config.override(parallel=True, serial_below=41):
        assert short_form(roots)[0].endswith("variant: C-contiguous, serial")
    strided = lf.asarray(np.ones((8, 10))[:, ::2])
    (line,) = short_form([lf.exp(strided).node])
    assert "variant: any strides" in line


def test_png_and_svg_by_matplotlib(arrays, tmp_path):
    x, w, _ = arrays
    g = lf.grad(lambda w: (lf.tanh(x @ w) ** 2).mean())(w)
    picture = visualize([g.node], tmp_path / "grad.png")
    assert (tmp_path / "grad.png").read_bytes().startswith(PNG_MAGIC)
    written = picture.render(tmp_path / "grad", format="svg", engine="matplotlib")
    assert written == tmp_path / "grad.svg"
    assert b"<svg" in written.read_bytes()[:1000]
    assert picture.source == dot_source([g.node])


def test_bad_formats_are_refused(arrays, tmp_path):
    x, _, _ = arrays
    roots = [lf.exp(x).node]
    with pytest.raises(ValueError, match="valid formats: 'svg', 'png'"):
        visualize(roots, tmp_path / "graph.pdf")
    with pytest.raises(ValueError, match="valid formats"):
        visualize(roots, tmp_path / "graph", format="jpg")
    with pytest.raises(ValueError, match=r"ends in \.png"):
        visualize(roots, tmp_path / "graph.png", format="svg")
    assert not list(tmp_path.iterdir())


def test_without_matplotlib_the_error_names_the_extra(arrays, tmp_path, monkeypatch):
    x, _, _ = arrays
    picture = visualize([lf.exp(x).node])
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(PlotDependencyError, match=re.escape("pip install 'lazyfuse[plot]'")):
        picture.render(tmp_path / "graph.png", engine="matplotlib")
    assert issubclass(PlotDependencyError, ImportError)


def test_jupyter_shows_svg_by_dot_else_png(arrays):
    x, _, _ = arrays
    picture = visualize([lf.exp(x).node])
    if shutil.which("dot"):
        assert picture._repr_png_() is None and "<svg" in picture._repr_svg_()
    else:
        assert picture._repr_svg_() is None and picture._repr_png_().startswith(PNG_MAGIC)


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")
def test_dot_renders_both_formats(arrays, tmp_path):
    x, w, b = arrays
    picture = visualize([(x @ w + b).tanh().node])
    assert picture.render(tmp_path / "g.png", engine="dot").read_bytes().startswith(PNG_MAGIC)
    svg = picture.render(tmp_path / "g.svg", engine="dot").read_text()
    assert "kernel 0: matmul_f64_f64_2d (BLAS)" in svg


def test_cuda_plan_shows_the_product_and_its_epilogue_as_one_launch(arrays):
    x, w, b = arrays
    source = dot_source([(x @ w + b).tanh().node], target="cuda")
    labels = list(clusters(source))
    assert labels[0].endswith("(matmul kernel)")
    assert labels[1].endswith("(in kernel 0's store)")
    assert "BLAS" not in source
