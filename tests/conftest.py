"""Test settings: graph checks on, a shared hypothesis profile, and the NumPy oracle."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

from lazyfuse import config

settings.register_profile(
    "lazyfuse",
    deadline=None,  # the first example of a new kernel compiles it (about 0.3 s)
    max_examples=20,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.load_profile("lazyfuse")


@pytest.fixture(autouse=True)
def _verify_graphs():
    """The design promises the verifier after every pass in tests."""
    with config.override(checks=True):
        yield
