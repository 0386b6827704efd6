"""Scans: cumsum and cumprod with NumPy's signatures and dtype rules.

A scan is its own kind of kernel (graph/build.scan; codegen/cpu.py's ``_scan``) with
its elementwise producers fused in: rows of the scanned axis run in parallel, and a
single long axis runs in parallel chunks (chunk totals, carries, then each chunk again
from its carry), so its float sums round in another order than NumPy's sequential one.
The CUDA target computes scans as host steps (NumPy's, registered here).
"""

from __future__ import annotations

import operator
from typing import Any

import numpy as np

from lazyfuse.errors import AxisError
from lazyfuse.graph import build, dtypes, host
from lazyfuse.graph.ops import Op
from lazyfuse.tensor import Tensor, add_method, asarray

__all__ = ["cumprod", "cumsum"]


def _scan(name: str, reference: Any, x: Any, axis: Any, dtype: Any) -> Tensor:
    t = asarray(x)
    if axis is None or t.ndim == 0:  # NumPy: the flattened array (a 0-d one as 1-d)
        t, axis = t.reshape(-1), 0 if axis is None else axis
    axis = operator.index(axis)
    if not -t.ndim <= axis < t.ndim:
        raise AxisError(f"{name}: axis {axis} is out of bounds for array of dimension {t.ndim}")
    axis %= t.ndim
    out = reference(np.zeros((1,) * t.ndim, t.dtype), axis=axis, dtype=dtype).dtype
    out = dtypes.check_supported(out, name)
    return Tensor(build.scan(Op.SUM if name == "cumsum" else Op.PROD, t.node, axis, out))


def cumsum(x: Any, axis: int | None = None, dtype: Any = None) -> Tensor:
    """NumPy's cumsum: running sums along ``axis`` (None: of the flattened array); ints
    and bools accumulate in int64 as NumPy's."""
    return _scan("cumsum", np.cumsum, x, axis, dtype)


def cumprod(x: Any, axis: int | None = None, dtype: Any = None) -> Tensor:
    """NumPy's cumprod: running products along ``axis`` (None: of the flattened array)."""
    return _scan("cumprod", np.cumprod, x, axis, dtype)


host.register("cumsum", lambda a, axis, dtype: np.cumsum(a, axis=axis, dtype=dtype))
host.register("cumprod", lambda a, axis, dtype: np.cumprod(a, axis=axis, dtype=dtype))
add_method("cumsum", cumsum)
add_method("cumprod", cumprod)
