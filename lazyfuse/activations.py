"""softmax, log_softmax, logsumexp and the activations of jax.nn, built from lazyfuse's ops (so they fuse)."""

from __future__ import annotations

__all__: list[str] = []
