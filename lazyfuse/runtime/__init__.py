"""Source -> compiled kernel (Numba), caches, buffers and execution."""
