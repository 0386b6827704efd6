"""Compiled replays: a replay's lines (runtime/replay.py) as one Numba function.

A replay runs its recorded calls from Python: for a training step of small arrays that
is most of the step (bench_grad's 2-100-100-1 step: about 60 us of Python around 9
kernels and 8 BLAS products, each a few microseconds). Once a record has been replayed
``Config.compile_replays_after`` times, its lines are written again for Numba (the same
calls, in the same order, with the same arrays) and compiled into one function, the
*driver*, which then runs in its place.

What the driver's lines use besides the recorded kernels:

- :func:`strided`: an array as the run made it (byte offset, shape, strides) over its base;
- :func:`retype`: that array given the exact Numba type the Python replay's argument had
  (layout, read-only, aligned), so each kernel is called through the overload it was
  compiled for, not a new one;
- a float product as a call of the GEMM of NumPy's OpenBLAS (``cblas_?gemm``, as
  ``np.matmul`` calls it; :func:`product_lines`), one call per matrix of a stack.

A record the driver cannot say (a host step, a check of values, a pooled buffer, a
product without NumPy's OpenBLAS) keeps its Python function.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np
from numba.core.extending import intrinsic

from lazyfuse.runtime import blas

_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112  # CBLAS enums


@intrinsic
def retype(typingctx: Any, array: Any, wanted: Any) -> Any:
    """``array`` as the Numba array type ``wanted`` (a type given as a global): the same
    data, shape and strides, typed as the recorded argument was (C layout, read-only).
    Only for an array that is what ``wanted`` says: the recording checked it."""
    target = wanted.instance_type

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        context.nrt.incref(builder, signature.args[0], args[0])
        return args[0]

    return target(array, wanted), codegen


@numba.njit(cache=True)
def strided(base: Any, offset: int, shape: Any, strides: Any) -> Any:
    """The array of ``shape`` and ``strides`` (bytes) starting ``offset`` elements past
    ``base``'s first element: the recorded view of ``base``."""
    start = np.lib.stride_tricks.as_strided(base, (offset + 1,), (base.itemsize,))
    return np.lib.stride_tricks.as_strided(start[offset:], shape, strides)


def product_lines(
    arrays: Sequence[np.ndarray], made: Sequence[str], names: Callable[[Any, str], str]
) -> list[str] | None:
    """The driver's lines for ``a @ b`` into ``out`` (``arrays``; ``made``: the driver's
    expressions for them; one float dtype, 2-D, or 3-D stacks one matrix at a time): a
    ``cblas_?gemm`` call per matrix whose transpose flags and leading dimensions are
    decided here, from the recorded strides. ``names`` names an object for the lines.
    None when BLAS cannot read an operand in place (``np.matmul`` copies it) or there is
    no GEMM."""
    a, b, out = arrays
    gemm = blas.gemm(out.dtype)
    if gemm is None or not (a.dtype == b.dtype == out.dtype) or out.ndim not in (2, 3) or out.size == 0:
        return None
    m, k = a.shape[-2:]
    n = b.shape[-1]
    orders = [_order(x.shape[-2:], x.strides[-2:], x.itemsize) for x in (a, b)]
    written = _order(out.shape[-2:], out.strides[-2:], out.itemsize)
    if None in orders or written is None or written[0] != _NO_TRANS or k == 0:
        return None
    (trans_a, lda), (trans_b, ldb), (_, ldc) = *orders, written  # type: ignore[misc]
    one, zero = (f"{names(out.dtype.type, 'type')}({x})" for x in (1, 0))
    call = (
        f"{names(gemm, 'gemm')}({_ROW_MAJOR}, {trans_a}, {trans_b}, {m}, {n}, {k}, {one}, {{a}}, {lda}, "
        f"{{b}}, {ldb}, {zero}, {{out}}, {ldc})"
    )
    if out.ndim == 2:
        return [
            call.format(a=f"{made[0]}.ctypes.data", b=f"{made[1]}.ctypes.data", out=f"{made[2]}.ctypes.data")
        ]
    step = [
        f"{e}.ctypes.data + i * {x.strides[0] if x.shape[0] > 1 else 0}"
        for e, x in zip(made, arrays, strict=True)
    ]
    return [f"for i in range({out.shape[0]}):", "    " + call.format(a=step[0], b=step[1], out=step[2])]


def _order(shape: tuple[int, ...], strides: tuple[int, ...], size: int) -> tuple[int, int] | None:
    """How BLAS reads a matrix of ``shape`` and ``strides`` (bytes) in place: (transpose
    flag, leading dimension), or None when it cannot."""
    (rows, columns), (row_step, column_step) = shape, strides
    if (columns == 1 or column_step == size) and (
        rows == 1 or (row_step % size == 0 and row_step >= columns * size)
    ):
        return _NO_TRANS, max(row_step // size if rows > 1 else columns, columns, 1)
    if (rows == 1 or row_step == size) and (
        columns == 1 or (column_step % size == 0 and column_step >= rows * size)
    ):
        return _TRANS, max(column_step // size if columns > 1 else rows, rows, 1)
    return None


@dataclass
class Recorded:
    """A record's lines for the driver, the Numba type of each value slot they read
    (``v{k}``), and after how many replays the driver is compiled."""

    lines: list[str]
    types: dict[int, Any]
    after: int


def compiled(recorded: Recorded, names: dict[str, Any], fallback: Callable[..., Any]) -> Callable[..., Any]:
    """The driver of ``recorded``, called as the Python replay is: ``run(values)``;
    compiled here for the recorded types only, so values typed otherwise (an unaligned
    array) run ``fallback``, the Python lines."""
    used = sorted(recorded.types)
    arguments = ", ".join(f"v{k}" for k in used)
    source = f"def driver({arguments}):\n" + "".join(f"    {line}\n" for line in recorded.lines)
    source += (
        "\n\ndef run(values):\n    try:\n"
        f"        return driver({', '.join(f'values[{k}]' for k in used)})\n"
        "    except TypeError:  # Note: Numba's 'No matching definition': values typed otherwise\n"
        "        return fallback(values)\n"
    )
    scope: dict[str, Any] = {**names, "np": np, "strided": strided, "retype": retype, "fallback": fallback}
    exec(compile(source, "<lazyfuse driver>", "exec"), scope)  # Note: lines runtime/replay.py wrote
    types = tuple([recorded.types[k] for k in used])
    scope["driver"] = numba.njit(types, nogil=True)(scope["driver"])  # compiled now, for these types only
    run = scope["run"]
    run.source = source  # type: ignore[attr-defined]
    return run  # type: ignore[no-any-return]
