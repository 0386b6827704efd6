"""Joining and reshaping: concatenate, stack, split, swapaxes, moveaxis, flip, pad, repeat, tile."""

from __future__ import annotations

__all__: list[str] = []
