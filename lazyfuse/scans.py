"""Scans: cumsum and cumprod with NumPy's signatures and dtype rules.

Today a scan is a host step (graph/host.py): NumPy's own cumsum/cumprod over the
computed operand, in a step of its own, so the operand is stored first; its consumers
read the result like any stored value. A scan kernel (rows in parallel, a long axis in
chunks with a carry pass) is not written yet: see the README's list.
"""

from __future__ import annotations

import operator
from typing import Any

import numpy as np

from lazyfuse.errors import AxisError
from lazyfuse.graph import build, dtypes, host
from lazyfuse.tensor import Tensor, add_method, asarray

__all__ = ["cumprod", "cumsum"]


def _scan(name: str, reference: Any, x: Any, axis: Any, dtype: Any) -> Tensor:
    t = asarray(x)
    if axis is None:  # NumPy: the flattened array
        t, axis = t.reshape(-1), 0
    axis = operator.index(axis)
    if not -max(t.ndim, 1) <= axis < max(t.ndim, 1) or t.ndim == 0:
        raise AxisError(f"{name}: axis {axis} is out of bounds for array of dimension {t.ndim}")
    axis %= t.ndim
    out = reference(np.zeros((1,) * t.ndim, t.dtype), axis=axis, dtype=dtype).dtype
    out = dtypes.check_supported(out, name)
    return Tensor(build.host(name, (t.node,), (axis, out.name), t.shape, out))


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
