"""The gather kernel of :mod:`lazyfuse.runtime.cuda_views`, in a module of its own: it
imports ``numba.cuda`` (so it is imported on first use), and Numba's simulator finds
``cuda`` among the kernel's globals."""

from numba import cuda


@cuda.jit
def gather_view(source, out, offset, shape, strides):
    """out[i] = element i, in C order, of the view (offset, shape, strides) of the flat
    array source (in elements); a grid-stride loop over out."""
    i = cuda.grid(1)
    while i < out.size:
        rest, at = i, offset
        for axis in range(len(shape) - 1, -1, -1):
            at += (rest % shape[axis]) * strides[axis]
            rest //= shape[axis]
        out[i] = source[at]
        i += cuda.gridsize(1)
