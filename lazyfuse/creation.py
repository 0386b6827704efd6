"""Creation functions with NumPy's signatures: arange, linspace, zeros, ones, full, eye, *_like, empty, tril, triu."""

from __future__ import annotations

__all__: list[str] = []
