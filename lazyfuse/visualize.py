"""Pictures of how lazyfuse computes an expression: ``t.visualize()`` and ``lf.visualize``.

The picture is the graph after passes and fusion, the same one ``explain()`` prints
under "after fusion": each kernel a cluster, each value a box named as explain names
it (``t3: tanh float64[8,3]``). A value a kernel stores (writes to memory) is a solid
box; one computed inside the kernel that reads it and never stored is dashed, and is
drawn once in each kernel that computes it. Every fusion decision that left a value
read across kernels is a red dashed edge labelled with the rule's reason; a decision
that did not (a value recomputed in each kernel) is a note beside the value. Nodes of
a backward pass (``lf.grad``) are filled in another colour.

The picture is DOT text (:func:`dot_source`), rendered by Graphviz's ``dot`` when it is
installed; else the same drawing is made with networkx and matplotlib
(``pip install 'lazyfuse[plot]'``), so a picture can always be made.
:func:`short_form` is the text form: one line per kernel.
"""

from __future__ import annotations

import io
import os
import pathlib
import shutil
import subprocess
import textwrap
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from lazyfuse import config
from lazyfuse.errors import LazyfuseError
from lazyfuse.graph import fuse
from lazyfuse.graph.explain import graph_names, type_of
from lazyfuse.graph.kernels import KernelCall
from lazyfuse.graph.names import BACKWARD_OF, op_name
from lazyfuse.graph.node import Node
from lazyfuse.graph.ops import LEAVES, VIEWS, Op
from lazyfuse.graph.traverse import toposort
from lazyfuse.runtime import targets

FORMATS = ("svg", "png")
PLOT_EXTRA = "pip install 'lazyfuse[plot]'"
DOT_TIMEOUT_S = 60  # dot lays out a few hundred boxes in well under a second

# Fills: a value of the forward pass, of a backward pass, an input; clusters: one
# light background per kernel (cycled).
FORWARD_FILL = "#dbe9f6"
BACKWARD_FILL = "#fbd9b4"
LEAF_FILL = "#ffffff"
REFUSED_COLOR = "#c62828"
NOTE_COLOR = "#666666"
KERNEL_COLORS = ("#eef5e9", "#f3eef8", "#fdf6e3", "#e8f4f8", "#f9ecec", "#eef0f6", "#f1f8f1", "#fbf3ea")
KERNEL_EDGES = ("#5b8c3e", "#7b5ea7", "#b58900", "#2a7f9e", "#a94442", "#4a5a8c", "#3d8b3d", "#b5651d")
REASON_WIDTH = 44  # characters per line of a reason on an edge

VIEW_NAMES = {Op.EXPAND: "broadcast", Op.PERMUTE: "transpose", Op.RESHAPE: "reshape", Op.INDEX: "index"}


class PlotDependencyError(ImportError):
    """Drawing without Graphviz needs matplotlib, which is not installed."""


# -- the plan, and how its calls run on a target -------------------------------------


@dataclass
class _Planned:
    """A fresh plan for the roots on one target, and per kernel call: a note for its
    cluster's label ("BLAS", "host step") and the short form's variant."""

    roots: list[Node]
    grouped: fuse.Plan
    calls: list[KernelCall]
    notes: list[str]
    variants: list[str]


def _planned(roots: Sequence[Node], target: str | None) -> _Planned:
    """The plan explain() shows for ``roots`` on ``target`` (LAZYFUSE_TARGET's when None)."""
    chosen = targets.chosen(config.get().target if target is None else target, roots)
    made, notes, variants = chosen.how_calls_run(roots)
    return _Planned(made.roots, made.grouped, made.calls, notes, variants)


# -- the drawing: boxes, lines and clusters, for DOT and for matplotlib ----------------


@dataclass(frozen=True)
class _Box:
    id: str
    label: str
    kind: str  # "leaf", "stored", "fused" (computed where read, not stored), "view", "note"
    kernel: int | None = None
    backward: bool = False
    output: bool = False


@dataclass(frozen=True)
class _Line:
    source: str
    target: str
    label: str = ""
    kind: str = "data"  # "data", "refused" (a fusion decision kept them apart), "note"


@dataclass
class _Drawing:
    boxes: list[_Box] = field(default_factory=list)
    lines: list[_Line] = field(default_factory=list)
    kernels: list[str] = field(default_factory=list)  # cluster labels, in execution order

    @property
    def has_backward(self) -> bool:
        return any(b.backward for b in self.boxes)

    @property
    def has_refusals(self) -> bool:
        return any(line.kind == "refused" for line in self.lines)


def _drawing(found: _Planned) -> _Drawing:
    """Boxes for the plan's values (one per kernel that computes a value, so a value
    recomputed in two kernels is drawn in both), edges through views labelled with
    them, then the fusion decisions (:func:`_add_decisions`)."""
    roots, groups = found.roots, found.grouped.groups
    names = graph_names(roots)
    kernels_of: dict[Node, list[int]] = {}
    stored_by: dict[Node, int] = {}
    for k, group in enumerate(groups):
        for member in group.members:
            kernels_of.setdefault(member, []).append(k)
        for root in group.roots:
            stored_by.setdefault(root, k)
    outputs = set(roots)

    def box_id(node: Node, kernel: int | None) -> str:
        return names[node] if kernel is None else f"{names[node]}_k{kernel}"

    def source_of(node: Node, kernel: int | None) -> str:
        """The box a value is read from in ``kernel``: its copy there, else where it is stored."""
        computed_in = kernels_of.get(node, [])
        if kernel in computed_in:
            return box_id(node, kernel)
        if node in stored_by:
            return box_id(node, stored_by[node])
        return box_id(node, computed_in[0] if computed_in else None)

    drawing = _Drawing(
        kernels=[
            _kernel_label(k, call, note)
            for k, (call, note) in enumerate(zip(found.calls, found.notes, strict=True))
        ]
    )
    lines: dict[_Line, None] = {}  # in order, once each
    for node in toposort(roots):
        backward = node in BACKWARD_OF
        if node.op in LEAVES:
            drawing.boxes.append(_Box(names[node], _leaf_label(node, names), "leaf", output=node in outputs))
            continue
        if node.op in VIEWS:
            if node in outputs:  # a result that is a view of a stored value: no copy
                label = f"{names[node]}: {VIEW_NAMES[node.op]} {type_of(node)} (a view)"
                drawing.boxes.append(_Box(names[node], label, "view", backward=backward, output=True))
                base, chain = fuse.base_of(node)
                lines[_Line(source_of(base, None), names[node], _views(chain[:-1]))] = None
            continue
        copies: list[int | None] = [*kernels_of[node]] if node in kernels_of else [None]
        for kernel in copies:
            kind = "stored" if kernel is None or node in groups[kernel].roots else "fused"
            label = f"{names[node]}: {op_name(node)} {type_of(node)}"
            if len(copies) > 1:
                label += f"\n(computed in {len(copies)} kernels)"
            box = _Box(box_id(node, kernel), label, kind, kernel, backward, node in outputs)
            drawing.boxes.append(box)
            for arg in dict.fromkeys(node.args):
                base, chain = fuse.base_of(arg)
                lines[_Line(source_of(base, kernel), box.id, _views(chain))] = None
    drawing.lines = list(lines)
    _add_decisions(drawing, found, names, kernels_of, stored_by, box_id)
    return drawing


def _add_decisions(
    drawing: _Drawing,
    found: _Planned,
    names: dict[Node, str],
    kernels_of: dict[Node, list[int]],
    stored_by: dict[Node, int],
    box_id: Callable[[Node, int | None], str],
) -> None:
    """Each decided value: a red dashed edge to every reader in a kernel that does not
    compute it, labelled with the reasons; a note when every reader computes it."""
    reasons: dict[Node, list[str]] = {}
    for node, reason in found.grouped.decisions:
        reasons.setdefault(node, []).append(reason)
    readers = _readers(found.roots)
    for node, said in reasons.items():
        computed_in = kernels_of.get(node, [])
        home = stored_by.get(node, computed_in[0] if computed_in else None)
        source = box_id(node, home)
        label = "\n".join(textwrap.fill(r, REASON_WIDTH) for r in said)
        apart = [
            (reader, k)
            for reader in readers.get(node, [])
            for k in kernels_of.get(reader, [])
            if k not in computed_in
        ]
        for reader, k in dict.fromkeys(apart):
            _mark_refused(drawing, _Line(source, box_id(reader, k), label, "refused"))
        if not apart:
            note = f"why_{names[node]}"
            drawing.boxes.append(_Box(note, f"{names[node]}: {label}", "note"))
            drawing.lines.append(_Line(source, note, "", "note"))


def _mark_refused(drawing: _Drawing, refused: _Line) -> None:
    """Draw the data edge between the two boxes as the refusal (its views' names first)."""
    for k, line in enumerate(drawing.lines):
        if line.kind == "data" and (line.source, line.target) == (refused.source, refused.target):
            label = f"{line.label}\n{refused.label}" if line.label else refused.label
            drawing.lines[k] = _Line(refused.source, refused.target, label, "refused")
            return
    drawing.lines.append(refused)


def _readers(roots: Sequence[Node]) -> dict[Node, list[Node]]:
    """For each value, the computing nodes that read it (through any views)."""
    found: dict[Node, list[Node]] = {}
    for node in toposort(roots):
        if node.op in LEAVES or node.op in VIEWS:
            continue
        for arg in dict.fromkeys(node.args):
            found.setdefault(fuse.base_of(arg)[0], []).append(node)
    return found


def _kernel_label(k: int, call: KernelCall, note: str) -> str:
    return f"kernel {k}: {call.spec.name}" + (f" ({note})" if note else "")


def _leaf_label(node: Node, names: dict[Node, str]) -> str:
    if node.op is Op.SCALAR:
        return f"{names[node]}: scalar {node.dtype}"
    return f"{names[node]}: input {type_of(node)}"


def _views(chain: Sequence[Node]) -> str:
    return ", ".join(VIEW_NAMES[v.op] for v in chain)


# -- DOT ------------------------------------------------------------------------------


def dot_source(roots: Sequence[Node], target: str | None = None) -> str:
    """The picture as Graphviz DOT text: one ``subgraph cluster_k`` per kernel."""
    return _dot(_drawing(_planned(roots, target)))


def _quote(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def _attrs(**values: Any) -> str:
    return "[" + ", ".join(f"{k}={_quote(str(v))}" for k, v in values.items()) + "]"


def _fill(box: _Box) -> str:
    if box.kind == "leaf":
        return LEAF_FILL
    return BACKWARD_FILL if box.backward else FORWARD_FILL


def _dot_box(box: _Box) -> str:
    if box.kind == "note":
        style = _attrs(label=box.label, shape="note", color=NOTE_COLOR, fontcolor=NOTE_COLOR, fontsize=8)
        return f"{_quote(box.id)} {style};"
    shape = {"leaf": "ellipse", "view": "box"}.get(box.kind, "box")
    style = {"fused": "dashed,filled,rounded", "view": "dotted,filled"}.get(box.kind, "filled")
    extra = {"penwidth": 2} if box.kind == "stored" else {}
    if box.output:
        extra["peripheries"] = 2
    look = _attrs(label=box.label, shape=shape, style=style, fillcolor=_fill(box), **extra)
    return f"{_quote(box.id)} {look};"


def _dot_line(line: _Line) -> str:
    ends = f"{_quote(line.source)} -> {_quote(line.target)}"
    if line.kind == "refused":
        look = _attrs(
            label=line.label,
            color=REFUSED_COLOR,
            fontcolor=REFUSED_COLOR,
            style="dashed",
            fontsize=8,
        )
        return f"{ends} {look};"
    if line.kind == "note":
        return f"{ends} {_attrs(color=NOTE_COLOR, style='dotted', arrowhead='none')};"
    return f"{ends} {_attrs(label=line.label)};" if line.label else f"{ends};"


def _dot(drawing: _Drawing) -> str:
    out = [
        "digraph lazyfuse {",
        '  graph [rankdir="TB", fontname="Helvetica", fontsize="10"];',
        '  node [fontname="Helvetica", fontsize="10", shape="box"];',
        '  edge [fontname="Helvetica", fontsize="9"];',
    ]
    out += ["  " + _dot_box(b) for b in drawing.boxes if b.kernel is None]
    for k, label in enumerate(drawing.kernels):
        color, edge = KERNEL_COLORS[k % len(KERNEL_COLORS)], KERNEL_EDGES[k % len(KERNEL_EDGES)]
        out.append(f"  subgraph cluster_{k} {{")
        out.append(f"    graph {_attrs(label=label, style='filled,rounded', fillcolor=color, color=edge)};")
        out += ["    " + _dot_box(b) for b in drawing.boxes if b.kernel == k]
        out.append("  }")
    out += ["  " + _dot_line(line) for line in drawing.lines]
    out += _dot_legend(drawing)
    out.append("}")
    return "\n".join(out) + "\n"


def _dot_legend(drawing: _Drawing) -> list[str]:
    """A legend row (a plain subgraph, not a cluster): what the box styles and colours mean."""
    entries = [
        ("legend_stored", _Box("", "stored (written to memory)", "stored")),
        ("legend_fused", _Box("", "fused: computed where it is read, not stored", "fused")),
    ]
    if drawing.has_backward:
        entries.append(("legend_backward", _Box("", "backward", "stored", backward=True)))
    lines = ["  subgraph legend {", '    graph [rank="sink"];']
    lines += [
        "    " + _dot_box(_Box(name, box.label, box.kind, backward=box.backward)) for name, box in entries
    ]
    if drawing.has_refusals:
        look = _attrs(label="refused fusion: reason on the edge", shape="plaintext", fontcolor=REFUSED_COLOR)
        lines.append(f"    {_quote('legend_refused')} {look};")
    lines.append("  }")
    return lines


# -- rendering ----------------------------------------------------------------------


class Picture:
    """A drawing of how lazyfuse computes some values; ``source`` is its DOT text.
    In Jupyter it shows inline (SVG by Graphviz's dot when installed, else a PNG by
    matplotlib)."""

    def __init__(self, source: str, drawing: _Drawing) -> None:
        self.source = source
        self._drawing = drawing
        self._rendered: dict[tuple[str, str], bytes] = {}

    def __repr__(self) -> str:
        return f"<lazyfuse Picture: {len(self._drawing.kernels)} kernel(s); .source is its DOT text>"

    def render(
        self, filename: str | os.PathLike[str], format: str | None = None, engine: str | None = None
    ) -> pathlib.Path:
        """Write the picture to ``filename`` as ``format`` ("svg" or "png"; default: the
        file's suffix, else svg). ``engine``: "dot" or "matplotlib" (default: dot when
        installed). Returns the path written."""
        path = pathlib.Path(filename)
        chosen = _format_for(path, format)
        if not path.suffix:
            path = path.with_suffix("." + chosen)
        path.write_bytes(self.image(chosen, engine))
        return path

    def image(self, format: str = "svg", engine: str | None = None) -> bytes:
        """The picture's file contents as ``format`` ("svg" or "png")."""
        _check_format(format)
        engine = engine or ("dot" if shutil.which("dot") else "matplotlib")
        if engine not in ("dot", "matplotlib"):
            raise ValueError(f"visualize: unknown engine {engine!r}; valid: 'dot', 'matplotlib'")
        key = (format, engine)
        if key not in self._rendered:
            made = (
                _run_dot(self.source, format) if engine == "dot" else _matplotlib_image(self._drawing, format)
            )
            self._rendered[key] = made
        return self._rendered[key]

    def _repr_svg_(self) -> str | None:
        if not shutil.which("dot"):
            return None  # Jupyter then shows _repr_png_
        return self.image("svg", "dot").decode()

    def _repr_png_(self) -> bytes | None:
        if shutil.which("dot"):
            return None  # the SVG is shown
        return self.image("png", "matplotlib")


def visualize(
    roots: Sequence[Node],
    filename: str | os.PathLike[str] | None = None,
    format: str | None = None,
    target: str | None = None,
) -> Picture:
    """The picture of how ``roots`` are computed on ``target`` (default
    LAZYFUSE_TARGET's, else "cpu"), written to ``filename`` when one is given (as
    ``format``, or the file's suffix: "svg" or "png")."""
    if format is not None:
        _check_format(format)
    if filename is not None:
        _format_for(pathlib.Path(filename), format)  # a bad name fails before any planning
    drawing = _drawing(_planned(roots, target))
    picture = Picture(_dot(drawing), drawing)
    if filename is not None:
        picture.render(filename, format)
    return picture


def _check_format(format: str) -> None:
    if format not in FORMATS:
        raise ValueError(f"visualize: format {format!r} is not supported; valid formats: 'svg', 'png'")


def _format_for(path: pathlib.Path, format: str | None) -> str:
    """The suffix's format when the name has one, else ``format`` (svg by default)."""
    suffix = path.suffix[1:].lower()
    if suffix:
        _check_format(suffix)
        if format is not None and format != suffix:
            raise ValueError(f"visualize: format {format!r} but the file {path.name!r} ends in .{suffix}")
        return suffix
    chosen = format or "svg"
    _check_format(chosen)
    return chosen


def _run_dot(source: str, format: str) -> bytes:
    dot = shutil.which("dot")
    if dot is None:
        raise LazyfuseError("visualize: engine 'dot' needs Graphviz's dot executable on PATH")
    done = subprocess.run(
        [dot, f"-T{format}"], input=source.encode(), capture_output=True, timeout=DOT_TIMEOUT_S, check=False
    )
    if done.returncode != 0:
        raise LazyfuseError(f"visualize: dot failed ({done.returncode}): {done.stderr.decode().strip()}")
    return done.stdout


# -- the matplotlib drawing (no Graphviz) -------------------------------------------


def _matplotlib_image(drawing: _Drawing, format: str) -> bytes:
    """The drawing laid out in layers (each box one row below everything it reads),
    kernels as coloured rectangles, saved by matplotlib (no pyplot: no GUI backend)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as error:
        raise PlotDependencyError(
            f"visualize: without Graphviz's dot, pictures are drawn with matplotlib: {PLOT_EXTRA} "
            "(or install Graphviz for dot)"
        ) from error
    position = _layers(drawing)
    width = max((x for x, _ in position.values()), default=0) + 1
    depth = max((-y for _, y in position.values()), default=0) + 1
    figure = Figure(figsize=(min(4 + 2.6 * width, 60), min(2 + 1.2 * depth, 60)))
    FigureCanvasAgg(figure)
    axes = figure.add_axes((0, 0, 1, 1))
    axes.set_axis_off()
    axes.set_xlim(-1, width)
    axes.set_ylim(-depth, 1)
    _draw_kernels(axes, drawing, position)
    _draw_lines(axes, drawing, position)
    for box in drawing.boxes:
        _draw_box(axes, box, position[box.id])
    _draw_legend(axes, drawing)
    buffer = io.BytesIO()
    figure.savefig(buffer, format=format, dpi=100)
    return buffer.getvalue()


def _layers(drawing: _Drawing) -> dict[str, tuple[float, float]]:
    """Positions (x, -row). A box's row is one below the lowest box it reads; an input
    sits just above its first reader. Each kernel has its own band of columns, so the
    kernels' rectangles never overlap: on its left the boxes outside any kernel that
    belong with it (inputs it reads first, notes), on its right its own boxes."""
    graph = nx.DiGraph()
    graph.add_nodes_from(b.id for b in drawing.boxes)
    graph.add_edges_from((ln.source, ln.target) for ln in drawing.lines)
    row = _rows(graph)
    band = _bands(drawing, graph)
    position: dict[str, tuple[float, float]] = {}
    x = 0
    for k in sorted(set(band.values())):
        outside = [b.id for b in drawing.boxes if band[b.id] == k and b.kernel is None]
        inside = [b.id for b in drawing.boxes if band[b.id] == k and b.kernel is not None]
        for column_start, names in ((x, outside), (x + _widest_row(outside, row), inside)):
            per_row: dict[int, int] = {}
            for name in names:
                position[name] = (column_start + per_row.get(row[name], 0), -float(row[name]))
                per_row[row[name]] = per_row.get(row[name], 0) + 1
        x += _widest_row(outside, row) + _widest_row(inside, row)
    return position


def _rows(graph: nx.DiGraph) -> dict[str, int]:
    row: dict[str, int] = {}
    for name in nx.topological_sort(graph):
        row[name] = max((row[p] + 1 for p in graph.predecessors(name)), default=0)
    for name in graph:  # inputs: just above their first reader
        if graph.in_degree(name) == 0 and graph.out_degree(name):
            row[name] = max(0, min(row[s] for s in graph.successors(name)) - 1)
    return row


def _bands(drawing: _Drawing, graph: nx.DiGraph) -> dict[str, int]:
    """The kernel whose band each box is drawn in: its own, else its first neighbour's."""
    kernel = {b.id: b.kernel for b in drawing.boxes}
    band = {}
    for box in drawing.boxes:
        near = [*graph.successors(box.id), *graph.predecessors(box.id)]
        found = [kernel[n] for n in near if kernel[n] is not None]
        band[box.id] = box.kernel if box.kernel is not None else (found[0] if found else -1)
    return band


def _widest_row(names: list[str], row: dict[str, int]) -> int:
    return max(Counter(row[n] for n in names).values(), default=0)


def _draw_kernels(axes: Any, drawing: _Drawing, position: dict[str, tuple[float, float]]) -> None:
    from matplotlib.patches import FancyBboxPatch

    for k, label in enumerate(drawing.kernels):
        points = [position[b.id] for b in drawing.boxes if b.kernel == k]
        if not points:
            continue
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        x0, y0 = min(xs) - 0.48, min(ys) - 0.4
        patch = FancyBboxPatch(
            (x0, y0),
            max(xs) - min(xs) + 0.96,
            max(ys) - min(ys) + 0.8,
            boxstyle="round,pad=0.02",
            facecolor=KERNEL_COLORS[k % len(KERNEL_COLORS)],
            edgecolor=KERNEL_EDGES[k % len(KERNEL_EDGES)],
            zorder=0,
        )
        axes.add_patch(patch)
        axes.text(
            x0 + 0.02,
            max(ys) + 0.36,
            label,
            fontsize=7,
            va="top",
            ha="left",
            color=KERNEL_EDGES[k % len(KERNEL_EDGES)],
            zorder=1,
        )


def _draw_lines(axes: Any, drawing: _Drawing, position: dict[str, tuple[float, float]]) -> None:
    for line in drawing.lines:
        (x0, y0), (x1, y1) = position[line.source], position[line.target]
        color = {"refused": REFUSED_COLOR, "note": NOTE_COLOR}.get(line.kind, "#333333")
        style = {"refused": "--", "note": ":"}.get(line.kind, "-")
        axes.annotate(
            "",
            xy=(x1, y1),
            xytext=(x0, y0),
            zorder=2,
            arrowprops={
                "arrowstyle": "->",
                "color": color,
                "linestyle": style,
                "shrinkA": 14,
                "shrinkB": 14,
            },
        )
        if line.label:
            size = 6 if line.kind == "refused" else 6.5
            axes.text(
                (x0 + x1) / 2,
                (y0 + y1) / 2,
                line.label,
                fontsize=size,
                color=color,
                ha="center",
                va="center",
                zorder=4,
                bbox={"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.8},
            )


def _draw_box(axes: Any, box: _Box, at: tuple[float, float]) -> None:
    if box.kind == "note":
        axes.text(
            *at,
            box.label,
            fontsize=6,
            color=NOTE_COLOR,
            ha="center",
            va="center",
            zorder=3,
            bbox={"boxstyle": "square,pad=0.3", "fc": "#f7f7f7", "ec": NOTE_COLOR, "ls": ":"},
        )
        return
    style = {"fused": "--", "view": ":"}.get(box.kind, "-")
    shape = "round,pad=0.4" if box.kind == "leaf" else "square,pad=0.3"
    width = 2.0 if box.kind == "stored" else 1.0
    axes.text(
        *at,
        box.label,
        fontsize=7,
        ha="center",
        va="center",
        zorder=3,
        fontweight="bold" if box.output else "normal",
        bbox={"boxstyle": shape, "fc": _fill(box), "ec": "#333333", "ls": style, "lw": width},
    )


def _draw_legend(axes: Any, drawing: _Drawing) -> None:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles = [
        Patch(facecolor=FORWARD_FILL, edgecolor="#333333", linewidth=2, label="stored (written to memory)"),
        Patch(
            facecolor=FORWARD_FILL,
            edgecolor="#333333",
            linestyle="--",
            label="fused: computed where it is read, not stored",
        ),
    ]
    if drawing.has_backward:
        handles.append(Patch(facecolor=BACKWARD_FILL, edgecolor="#333333", label="backward"))
    if drawing.has_refusals:
        handles.append(
            Line2D([], [], color=REFUSED_COLOR, linestyle="--", label="refused fusion (reason on it)")
        )
    axes.legend(handles=handles, loc="lower right", fontsize=7, frameon=True)


# -- the short form -------------------------------------------------------------------


def short_form(roots: Sequence[Node], target: str | None = None) -> list[str]:
    """One line per kernel: its name, the ops it fuses, the values it reads and
    writes, and how it runs (what is known before the run; the layout variant of a
    loop follows from the arrays' strides, known only when it runs)."""
    found = _planned(roots, target)
    names = graph_names(found.roots)
    lines = []
    for k, (group, call) in enumerate(zip(found.grouped.groups, found.calls, strict=True)):
        ops = _counted(op_name(m) for m in group.members)
        reads = [names[base] + (f" ({_views(chain)})" if chain else "") for base, chain, _ in call.loads]
        reads += [names[p] for p in call.params]
        writes = ", ".join(f"{names[r]} {type_of(r)}" for r in call.outputs)
        lines.append(
            f"kernel {k}: {call.spec.name}: ops {ops}; reads {', '.join(reads) or 'nothing'}; "
            f"writes {writes}; {found.variants[k]}"
        )
    return lines or ["no kernels: the results are inputs, scalars or views of them"]


def _counted(names: Iterable[str]) -> str:
    """``add, multiply x3``: each name once, in order, with its count."""
    counts = Counter(names)
    return ", ".join(name if n == 1 else f"{name} x{n}" for name, n in counts.items())
