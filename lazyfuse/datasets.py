"""The demo's embedded data set: MiniTorch's two-spirals points, generated
deterministically (no download), with a small dense layer's weights."""

from __future__ import annotations

import numpy as np


def spirals(n: int = 200_000, features: int = 16, seed: int = 0) -> dict[str, np.ndarray]:
    """``n`` points on two interleaved spirals, lifted to ``features`` columns.

    Returns ``x`` (n, features) float64, ``labels`` (n,) int64, ``w`` (features, 8) and
    ``b`` (8,) float64: everything the demo's expressions read.
    """
    rng = np.random.default_rng(seed)
    t = np.linspace(0.0, 1.0, n // 2) * 4 * np.pi
    first = np.stack([t * np.cos(t), t * np.sin(t)], axis=1) / (4 * np.pi)
    points = np.concatenate([first, -first]) + rng.normal(0, 0.02, (2 * (n // 2), 2))
    labels = np.repeat(np.array([0, 1]), n // 2)
    lift = rng.normal(0, 1, (2, features))
    x = np.tanh(points @ lift) + 0.1 * rng.normal(0, 1, (len(points), features))
    return {
        "x": np.ascontiguousarray(x),
        "labels": labels.astype(np.int64),
        "w": rng.normal(0, 0.5, (features, 8)),
        "b": rng.normal(0, 0.1, 8),
    }
