"""Contractions: einsum, tensordot, vecdot, outer (views, products through matmul, reductions)."""

from __future__ import annotations

__all__: list[str] = []
