"""Kernel spec -> source text, one module per target. Never imports numba."""
