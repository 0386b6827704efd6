"""NumPy as the oracle: run the same thing both ways and compare exactly or within a
tolerance suited to the dtype."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import lazyfuse as lf
from lazyfuse.graph.dtypes import SUPPORTED

# float64: 1e-12 relative. float32: 1e-5 relative. Both are far above the 1-2 ulp that
# separate NumPy's SIMD exp/log/sin from the C library's that Numba calls.
RTOL = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-12}
ATOL = {np.dtype(np.float32): 1e-6, np.dtype(np.float64): 1e-13}


def numpy_result(fn: Callable[..., Any], *args: Any) -> Any:
    """NumPy's answer, or the exception NumPy raises (returned, not raised)."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return np.asarray(fn(*args))
        except (TypeError, ValueError, OverflowError, np.exceptions.DTypePromotionError) as exc:
            return exc


def assert_same(
    actual: np.ndarray, expected: np.ndarray, rtol: float | None = None, atol: float | None = None
) -> None:
    """Same dtype and shape; exact for integers and bool (and NaN where NumPy has NaN)."""
    actual = np.asarray(actual)
    assert actual.dtype == expected.dtype, f"dtype {actual.dtype} != NumPy's {expected.dtype}"
    assert actual.shape == expected.shape, f"shape {actual.shape} != NumPy's {expected.shape}"
    if expected.dtype.kind in "biu":
        np.testing.assert_array_equal(actual, expected)
        return
    np.testing.assert_array_equal(np.isnan(actual), np.isnan(expected))
    np.testing.assert_allclose(
        actual, expected, rtol=rtol or RTOL[expected.dtype], atol=atol or ATOL[expected.dtype], equal_nan=True
    )


def check(lf_fn: Callable[..., Any], np_fn: Callable[..., Any], *args: Any, **tolerance: float) -> None:
    """``lf_fn(*args).compute()`` equals ``np_fn(*args)``; where NumPy raises, lazyfuse
    raises the same kind of error when the expression is built."""
    expected = numpy_result(np_fn, *args)
    if isinstance(expected, np.ndarray) and expected.dtype not in SUPPORTED:
        with pytest.raises(lf.DTypeError, match="not support"):  # NumPy gives int8 or float16
            lf_fn(*args)
        return
    if isinstance(expected, Exception):
        kind = ValueError if isinstance(expected, (ValueError, OverflowError)) else TypeError
        with pytest.raises((kind, OverflowError)):
            lf_fn(*args)
        return
    with np.errstate(all="ignore"):
        actual = lf_fn(*args).compute()
    assert_same(actual, expected, **tolerance)


def sum_tolerance(x: np.ndarray, count: int) -> dict[str, float]:
    """Sums: NumPy adds pairwise, lazyfuse in order (in chunks). Both errors are bounded
    by count * eps * sum(|x|), which is looser than 1e-12 relative when terms cancel."""
    if x.dtype.kind != "f" or x.size == 0:
        return {}
    eps = np.finfo(x.dtype).eps
    return {"rtol": RTOL[x.dtype], "atol": float(max(count, 1) * eps * np.abs(x).sum()) + ATOL[x.dtype]}
