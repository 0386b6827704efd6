"""CPU code generation: a kernel spec becomes the source of one Numba ``njit`` function.

The source is plain Python a person can read: a header naming the op, one statement
a line, ``prange`` over the outermost parallel axis, names ``a0`` (arrays), ``p0``
(scalar parameters), ``x0`` (loaded values), ``t0`` (computed values), ``i0``
(output axes) and ``r0`` (reduced axes).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lazyfuse.codegen import cpu_helpers
from lazyfuse.codegen.source import SourceBuilder
from lazyfuse.graph import dtypes
from lazyfuse.graph.kernels import Expr, KernelSpec
from lazyfuse.graph.ops import ELEMENTWISE, REDUCTION, Op, kind, pick

# Full reductions split their first reduced axis into this many chunks (one per task).
FULL_REDUCTION_CHUNKS = 64


@dataclass(frozen=True)
class Options:
    """Code generation options; part of the compiled kernel's identity."""

    parallel: bool = True


def numpy_type(dtype: np.dtype) -> str:
    return "np.bool_" if dtype == np.bool_ else f"np.{dtype.name}"


def generate(spec: KernelSpec, options: Options = Options()) -> str:
    """The complete source file of ``spec``'s kernel."""
    body = SourceBuilder()
    emit = {"elementwise": _elementwise, "reduce": _reduce, "matmul": _matmul}[spec.kind]
    emit(spec, body, options)
    kernel = body.text()
    out = SourceBuilder()
    out.line(f"# lazyfuse kernel {spec.name}")
    out.line(f"# computes: {spec.description}")
    out.line(f"# target: cpu, {'parallel' if options.parallel else 'serial'}")
    if spec.user_functions:
        out.line(
            "# user functions are bound by the runtime before the first call: "
            + ", ".join(f"{n} = {f.name} ({f.where})" for n, f in spec.user_functions)
        )
    out.lines(["import numpy as np", "from numba import njit, prange", ""])
    for helper in _helpers_used(kernel):
        out.lines([*helper.strip("\n").split("\n"), "", ""])
    text = out.text() + "\n" + kernel
    return text


def _decorator(spec: KernelSpec, options: Options) -> str:
    cache = not spec.user_functions  # a user's function is not part of this file
    return f'@njit(parallel={_parallel(spec, options)}, error_model="numpy", cache={cache})'


def _parallel(spec: KernelSpec, options: Options) -> bool:
    """Whether the kernel has a ``prange`` loop (a 0-d elementwise kernel has none)."""
    return options.parallel and (spec.ndim > 0 or spec.kind != "elementwise")


def _header(spec: KernelSpec, body: SourceBuilder, options: Options) -> None:
    args = [a.name for a in spec.arrays] + [p.name for p in spec.params] + ["out"]
    body.line(_decorator(spec, options))
    body.line(f"def {spec.name}({', '.join(args)}):")


def _loop(body: SourceBuilder, var: str, extent: str, parallel: bool) -> object:
    """A loop header context; ``prange`` when ``parallel``."""
    return body.indent(f"for {var} in {'prange' if parallel else 'range'}({extent}):")


def _index(names: list[str]) -> str:
    return ", ".join(names) if names else "()"


def _elementwise(spec: KernelSpec, body: SourceBuilder, options: Options) -> None:
    _header(spec, body, options)
    with body.indent():
        idx = [f"i{d}" for d in range(spec.ndim)]
        loops = [_loop(body, v, f"out.shape[{d}]", options.parallel and d == 0) for d, v in enumerate(idx)]
        _nested(body, loops, lambda: _elementwise_body(spec, body, idx))


def _nested(body: SourceBuilder, loops: Sequence[Any], inner: Callable[[], None]) -> None:
    """Enter each loop context in turn (each one indents), then emit ``inner``."""
    if not loops:
        inner()
        return
    with loops[0]:
        _nested(body, loops[1:], inner)


def _elementwise_body(spec: KernelSpec, body: SourceBuilder, idx: list[str]) -> None:
    for k, a in enumerate(spec.arrays):
        body.line(f"x{k} = {a.name}[{_index(idx)}]")
    for e in spec.body:
        body.line(f"{e.target} = {expression(e)}")
    body.line(f"out[{_index(idx)}] = {spec.body[-1].target}")


def cast(value: str, source: np.dtype, target: np.dtype) -> str:
    if source == target:
        return value
    if target == np.bool_:
        return f"({value} != 0)"
    return f"{numpy_type(target)}({value})"


def expression(e: Expr) -> str:
    """The scalar source of one expression, operands cast to the op's loop dtypes."""
    args = [cast(a, s, t) for a, s, t in zip(e.args, e.arg_dtypes, e.loop, strict=True)]
    if e.op in (Op.MAP, Op.ZIP):
        return f"{e.fn}({', '.join(args)})"
    picked = e.dtype if e.op is Op.CAST else e.loop[-1]
    template = pick(ELEMENTWISE[e.op].cpu, picked)
    text = template.format(*args, T=numpy_type(e.dtype), K=_suffix(e.loop[-1]))
    if e.op is Op.CAST or e.dtype not in (np.dtype(np.int32), np.dtype(np.float32)):
        return text
    return f"{numpy_type(e.dtype)}({text})"  # Note: Numba widens int32 and may widen float32


def _suffix(dtype: np.dtype) -> str:
    return "i" if kind(dtype) == "i" else dtypes.short(dtype) if kind(dtype) == "f" else "b"


def _identity(op: Op, dtype: np.dtype) -> str:
    template = pick(REDUCTION[op].identity, dtype)
    info = np.iinfo(dtype) if dtype.kind == "i" else None
    return template.format(
        T=numpy_type(dtype), LOWEST=info.min if info else "", HIGHEST=info.max if info else ""
    )


def _combine(spec: KernelSpec, acc: str, x: str) -> str:
    if spec.reduce_op is Op.REDUCE:
        return f"fn0({acc}, {x})"
    assert spec.reduce_op is not None
    return pick(REDUCTION[spec.reduce_op].combine, spec.out_dtype).format(acc=acc, x=x)


def _reduce(spec: KernelSpec, body: SourceBuilder, options: Options) -> None:
    _header(spec, body, options)
    full = spec.ndim == 0 and spec.n_reduced > 0 and spec.reduce_op is not Op.REDUCE
    with body.indent():
        if full:
            _full_reduction(spec, body, options)
            return
        kept = [f"i{d}" for d in range(spec.ndim)]
        loops = [_loop(body, v, f"out.shape[{d}]", options.parallel and d == 0) for d, v in enumerate(kept)]
        _nested(body, loops, lambda: _reduce_row(spec, body, kept, first=None))


def _start(spec: KernelSpec) -> str:
    return "p0" if spec.reduce_op is Op.REDUCE else _identity(spec.reduce_op, spec.out_dtype)  # type: ignore[arg-type]


def _reduce_row(
    spec: KernelSpec, body: SourceBuilder, kept: list[str], first: tuple[str, str] | None
) -> None:
    """``acc`` folded over the reduced axes; ``first`` bounds the first reduced axis."""
    body.line(f"acc = {_start(spec)}")
    reduced = [f"r{d}" for d in range(spec.n_reduced)]
    loops = []
    for d, v in enumerate(reduced):
        extent = f"a0.shape[{len(kept) + d}]"
        header = (
            f"for {v} in range({first[0]}, {first[1]}):"
            if first and d == 0
            else f"for {v} in range({extent}):"
        )
        loops.append(body.indent(header))

    def inner() -> None:
        body.line(f"x0 = a0[{_index(kept + reduced)}]")
        value = "x0"
        for e in spec.body:
            body.line(f"{e.target} = {expression(e)}")
            value = e.target
        body.line(f"acc = {_combine(spec, 'acc', value)}")

    _nested(body, loops, inner)
    if first is None:
        body.line(f"out[{_index(kept)}] = acc")


def _full_reduction(spec: KernelSpec, body: SourceBuilder, options: Options) -> None:
    """Two stages: one partial per chunk of the first reduced axis (in parallel), then
    the partials combined in order."""
    body.line(f"chunks = min(a0.shape[0], {FULL_REDUCTION_CHUNKS})")
    body.line(f"partial = np.empty(chunks, dtype={numpy_type(spec.out_dtype)})")
    with _loop(body, "c", "chunks", options.parallel):  # type: ignore[attr-defined]
        body.line("lo = c * a0.shape[0] // chunks")
        body.line("hi = (c + 1) * a0.shape[0] // chunks")
        _reduce_row(spec, body, [], first=("lo", "hi"))
        body.line("partial[c] = acc")
    body.line(f"acc = {_start(spec)}")
    with body.indent("for c in range(chunks):"):
        body.line(f"acc = {_combine(spec, 'acc', 'partial[c]')}")
    body.line("out[()] = acc")


def _matmul(spec: KernelSpec, body: SourceBuilder, options: Options) -> None:
    """Row-parallel product: each task owns output rows; the inner loop runs over the
    output's contiguous axis, so it reads b and writes out contiguously."""
    _header(spec, body, options)
    batch = [f"i{d}" for d in range(spec.ndim - 2)]
    dt = spec.out_dtype
    a0, a1 = spec.arrays
    with body.indent():
        body.line("m = out.shape[-2]")
        body.line("n = out.shape[-1]")
        body.line("k_size = a0.shape[-1]")
        body.line("rows = out.size // n if n else 0")
        with _loop(body, "q", "rows", options.parallel):  # type: ignore[attr-defined]
            body.line("i = q % m")
            rest = "q // m"
            for d in reversed(range(len(batch))):  # unravel the batch index, last axis first
                body.line(f"{batch[d]} = ({rest}) % out.shape[{d}]")
                rest = f"q // (m * {' * '.join(f'out.shape[{e}]' for e in range(d, len(batch)))})"
            row = _index([*batch, "i", "j"])
            with body.indent("for j in range(n):"):
                body.line(f"out[{row}] = {_identity(Op.SUM, dt) if dt != np.bool_ else 'False'}")
            with body.indent("for k in range(k_size):"):
                a_ik = "a0[" + _index([*batch, "i", "k"]) + "]"
                b_kj = "a1[" + _index([*batch, "k", "j"]) + "]"
                body.line(f"x0 = {cast(a_ik, a0.dtype, dt)}")
                with body.indent("for j in range(n):"):
                    y = cast(b_kj, a1.dtype, dt)
                    update = f"out[{row}] or (x0 and {y})" if dt == np.bool_ else f"out[{row}] + x0 * {y}"
                    body.line(f"out[{row}] = {update}")


def _helpers_used(kernel: str) -> list[str]:
    sources = []
    for name in sorted(
        set(re.findall(r"\b((?:floor_divide|remainder|power|maximum|minimum)_(?:i|f|f32|f64))\(", kernel))
    ):
        key = name if name in cpu_helpers.TEMPLATES else name.rstrip("0123456789")
        suffix = name.rsplit("_", 1)[1]
        type_name = {"f32": "np.float32", "f64": "np.float64"}.get(suffix, "")
        sources.append(cpu_helpers.TEMPLATES[key].format(S=suffix, T=type_name))
    return sources
