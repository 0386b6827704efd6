"""Test settings: graph checks on, a shared hypothesis profile, and the NumPy oracle."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings

from lazyfuse import config

settings.register_profile(
    "lazyfuse",
    deadline=None,  # the first example of a new kernel compiles it (about 0.3 s)
    max_examples=12,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.load_profile("lazyfuse")


@pytest.fixture(autouse=True)
def _verify_graphs():
    """The verifier runs after every pass in tests. Test arrays are small, so the serial
    variant for small sizes is off: tests run the parallel kernels unless they ask."""
    with config.override(checks=True, serial_below=0):
        yield


@pytest.fixture
def serial_kernels():
    """Compile serial kernels (``range`` for ``prange``): three times faster to compile.

    Note: the dtype sweeps use it, since each (op, dtypes, layout) compiles a kernel and
    what they check is scalar semantics; the parallel loops are covered by the
    structural, fusion and chain tests, which run with the default parallel kernels.
    """
    with config.override(parallel=False):
        yield
