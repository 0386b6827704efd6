"""The examples run, and what they print is true: the training example's lazyfuse step
gives NumPy's weights, and the loss goes down."""

from __future__ import annotations

import importlib.util
import pathlib

import numpy as np

EXAMPLES = pathlib.Path(__file__).parent.parent / "examples"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_training_a_small_network_matches_numpy_and_learns(serial_kernels):
    example = _load("train_circle")
    result = example.train(steps=60, batch=256, hidden=8, lr=2.0, n=4000)
    ours, theirs = result["weights"]
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    losses = result["losses"]
    assert np.mean(losses[-10:]) < 0.8 * np.mean(losses[:10])
    assert len(example.lazyfuse_step.traces) == 1  # one trace for every step
