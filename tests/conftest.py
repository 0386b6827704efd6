"""Test settings (graph checks on, one hypothesis profile) and the NumPy oracle helpers
the differential tests share: ``assert_matches``, ``sum_atol`` and ``check_all``."""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

# The CUDA tests run on Numba's simulator unless NUMBA_ENABLE_CUDASIM=0 is set (a
# machine with a GPU). Note: pytest imports numba (for the warning filter in
# pyproject.toml) before this file, so Numba's settings are read again; numba.cuda
# itself is imported later, by the CUDA target.
os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")
from numba.core import config as numba_config

numba_config.reload_config()

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

import lazyfuse as lf  # noqa: E402
from lazyfuse import config  # noqa: E402

# Every new (op, dtypes, rank, layout) compiles a Numba kernel (0.1-0.7 s): the first
# example of a test is slow, so no deadline; few examples, since the differential
# tests draw shapes and layouts that each may compile a kernel.
settings.register_profile(
    "lazyfuse",
    deadline=None,
    max_examples=int(os.environ.get("LAZYFUSE_TEST_EXAMPLES", "20")),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
# The CUDA target's runs of the differential tests (tests/test_cuda.py): the simulator
# runs each CUDA thread as a Python thread, so fewer examples.
settings.register_profile(
    "cuda",
    parent=settings.get_profile("lazyfuse"),
    max_examples=int(os.environ.get("LAZYFUSE_CUDA_TEST_EXAMPLES", "4")),
)
settings.load_profile("lazyfuse")

SUPPORTED = {np.dtype(d) for d in ("bool", "int32", "int64", "float32", "float64")}
RTOL = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-12}
# A tiny absolute tolerance for values that should be 0 (sin(pi), x - x): NumPy's SIMD
# exp/sin/log and the C library's that Numba calls differ by an ulp of the inputs there.
ATOL = {np.dtype(np.float32): 1e-6, np.dtype(np.float64): 1e-13}


@pytest.fixture(autouse=True)
def _verify_graphs():
    """The verifier runs after every pass in tests. Test arrays are small, so the serial
    variant for small sizes is off: tests run the parallel kernels unless they ask."""
    with config.override(checks=True, serial_below=0):
        yield


@pytest.fixture
def serial_kernels():
    """Compile serial kernels (``range`` for ``prange``): three times faster to compile.
    The dtype sweeps use it (they check scalar semantics); chains and structure tests
    keep the parallel kernels."""
    with config.override(parallel=False):
        yield


def assert_matches(actual: Any, expected: Any, tol: float | None = None, atol: float | None = None, msg=""):
    """``actual`` is NumPy's ``expected``: same dtype and shape; equal for ints and bool;
    for floats the same NaN positions and values within ``tol`` (relative; 1e-12 for
    float64, 1e-5 for float32 by default) plus ``atol``."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    where = f" ({msg})" if msg else ""
    assert actual.dtype == expected.dtype, f"dtype {actual.dtype} != NumPy's {expected.dtype}{where}"
    assert actual.shape == expected.shape, f"shape {actual.shape} != NumPy's {expected.shape}{where}"
    if expected.dtype.kind != "f":
        np.testing.assert_array_equal(actual, expected, err_msg=msg)
        return
    np.testing.assert_array_equal(np.isnan(actual), np.isnan(expected), err_msg=f"NaN positions{where}")
    np.testing.assert_allclose(
        actual,
        expected,
        rtol=RTOL[expected.dtype] if tol is None else tol,
        atol=ATOL[expected.dtype] if atol is None else atol,
        equal_nan=True,
        err_msg=msg,
    )


def sum_atol(x: np.ndarray, count: int) -> float | None:
    """Absolute error bound for a float sum (or mean) of ``count`` terms of ``x``.

    NumPy adds pairwise, lazyfuse in order (in chunks): neither is exact and they round
    differently. Each result is within (count - 1) * eps * sum(|x|) of the true sum (the
    textbook bound for recursive summation; pairwise is tighter), so they differ by at
    most twice that. A relative tolerance alone fails when terms cancel (sum near 0).
    """
    if x.dtype.kind != "f" or x.size == 0:
        return None
    eps = float(np.finfo(x.dtype).eps)
    return 2 * max(count, 1) * eps * float(np.abs(x.astype(np.float64)).sum()) + ATOL[x.dtype]


def numpy_result(fn: Callable[..., Any], *args: Any) -> np.ndarray | Exception:
    """NumPy's answer, or the exception NumPy raises (returned, not raised); warnings
    (division by zero, overflow, invalid) are silenced: the values are what we compare."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return np.asarray(fn(*args))
        except (TypeError, ValueError, OverflowError) as exc:
            return exc


def expected_error(expected: np.ndarray | Exception) -> tuple[type[Exception], ...] | None:
    """The errors lazyfuse may raise when building what NumPy refused (or what NumPy
    computes in a dtype lazyfuse does not support, such as bool // bool -> int8)."""
    if isinstance(expected, np.ndarray):
        return None if expected.dtype in SUPPORTED else (TypeError,)
    if isinstance(expected, OverflowError):  # a Python int that does not fit the dtype
        return (OverflowError, TypeError, ValueError)
    return (ValueError,) if isinstance(expected, ValueError) else (TypeError,)


@dataclass
class Case:
    """One lazyfuse expression and NumPy's version of it on the same inputs."""

    label: str
    build: Callable[..., Any]
    reference: Callable[..., Any]
    args: Sequence[Any]
    tol: dict[str, float | None] = field(default_factory=dict)


def check_all(cases: Sequence[Case]) -> list[Any]:
    """Checks every case against NumPy. Where NumPy refuses, building the expression
    raises a matching error (a ``LazyfuseError``); the others are computed together
    with one ``lf.compute`` (one plan: far fewer kernels to compile than one by one)
    and compared. Every case is checked; one AssertionError lists all that failed.
    Returns the lazyfuse expressions that were computed."""
    failures: list[str] = []
    built, refs = [], []
    for case in cases:
        expected = numpy_result(case.reference, *case.args)
        error = expected_error(expected)
        try:
            if error is not None:
                try:
                    case.build(*case.args)
                except error as exc:
                    if not isinstance(exc, lf.LazyfuseError):
                        raise AssertionError(f"not a LazyfuseError: {exc!r}") from exc
                else:
                    raise AssertionError(f"built without error; NumPy: {expected!r}")
                continue
            tensor = case.build(*case.args)
            if not isinstance(tensor, lf.Tensor):
                raise AssertionError(f"built {type(tensor)}, not a Tensor")
            if tensor.shape != expected.shape or tensor.dtype != expected.dtype:
                got, want = f"{tensor.dtype}{list(tensor.shape)}", f"{expected.dtype}{list(expected.shape)}"
                raise AssertionError(f"built {got}, NumPy gives {want}")
        except Exception as exc:  # reported below, with every other failing case
            failures.append(f"{case.label}: {type(exc).__name__}: {exc}")
            continue
        built.append(tensor)
        refs.append((case, expected))
    with np.errstate(all="ignore"):
        try:
            results = lf.compute(*built) if built else ()
        except Exception:  # find which: compute them one by one
            results = []
            for tensor in built:
                try:
                    results.append(tensor.compute())
                except Exception as exc:
                    results.append(exc)
    assert len(results) == len(built)
    for result, (case, expected) in zip(results, refs, strict=True):
        try:
            if not isinstance(result, np.ndarray):
                raise AssertionError(f"compute() gave {result!r}")
            assert_matches(result, expected, msg=case.label, **case.tol)
        except AssertionError as exc:
            failures.append(f"{case.label}: {exc}")
    if failures:
        raise AssertionError(
            f"{len(failures)} of {len(cases)} cases differ from NumPy:\n" + "\n".join(failures)
        )
    return built


def check(build: Callable[..., Any], reference: Callable[..., Any], *args: Any, **tol: float | None):
    """One case: ``build(*args).compute()`` against ``reference(*args)``, computed alone
    (its own plan and kernels, unlike :func:`check_all`)."""
    expected = numpy_result(reference, *args)
    error = expected_error(expected)
    if error is not None:
        with pytest.raises(error):
            build(*args)
        return
    with np.errstate(all="ignore"):
        actual = build(*args).compute()
    assert isinstance(actual, np.ndarray)
    assert_matches(actual, expected, **tol)


def run_in_threads(work: Callable[[int], None], count: int) -> None:
    """Run ``work(k)`` for k in range(count), each in its own thread, all at once; the
    first exception a thread raised is raised here, in the test's thread."""
    errors: list[BaseException] = []

    def guarded(k: int) -> None:
        try:
            work(k)
        except BaseException as exc:  # collected: a thread's failure must fail the test
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(k,)) for k in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
