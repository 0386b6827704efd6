"""Statistics and logical reductions: var, std, any, all, count_nonzero, argmax, argmin."""

from __future__ import annotations

__all__: list[str] = []
