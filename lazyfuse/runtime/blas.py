"""Float matrix products: NumPy's matmul, or OpenBLAS's batched GEMM for stacks of products.

NumPy multiplies a stack one product at a time, and OpenBLAS splits each product over
its threads, so the threads meet once per product. OpenBLAS's ``?gemm_batch`` (in
recent versions; the library NumPy 2.4.6's wheel bundles is 0.3.31) gives each thread
whole products instead. For 64 x 128x128 float64 that is faster than NumPy's matmul
(``python benchmarks/bench_matmul.py``, its batched case, times the whole product and
its epilogue; see benchmarks/README.md).

The rule (:func:`batched`): float32 or float64 operands of three axes whose matrices
have a unit stride along rows or columns (a transpose is read in place), at least
``PRODUCTS_PER_THREAD`` products per BLAS thread, and more than 100^3 multiply-adds
per product. OpenBLAS's DYNAMIC_ARCH builds (NumPy's wheels are such builds) crash in
their small-matrix path of the batched GEMM, which they take at 100^3 and below
(OpenMathLib/OpenBLAS#5980). Anything else, or a library without the batched GEMM, or
``LAZYFUSE_BATCHED_BLAS=0``: ``np.matmul``. The first batched call checks itself
against ``np.matmul`` once, and a mismatch turns the batched path off with a warning.
"""

from __future__ import annotations

import ctypes
import functools
import glob
import os
import threading
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from lazyfuse import config

# Measured on 2 threads with bench_matmul.py's batched case, its batch size edited: at 2
# products per thread the batched GEMM is slower than NumPy's matmul, at 4 about even,
# at 32 (the benchmark's own 64) faster; see benchmarks/README.md.
PRODUCTS_PER_THREAD = 4
SMALL_MATRIX_PATH = 100**3  # OpenBLAS's interface/gemm_batch.c takes its small-matrix kernels at or below
_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112  # CBLAS enums
Order = tuple[int, int]  # how BLAS reads an operand's matrices: (transpose flag, leading dimension)
_FUNCTIONS: dict[np.dtype, str] = {
    np.dtype(np.float64): "scipy_cblas_dgemm_batch64_",
    np.dtype(np.float32): "scipy_cblas_sgemm_batch64_",
}
_lock = threading.Lock()
_library: dict[str, Any] = {}  # "loaded": ({dtype: function}, the thread count's function); {} until loaded


def matmul(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    """``np.matmul(a, b, out=out)`` for float operands of one dtype, with IEEE results
    and no warnings, as the generated kernels give; stacks that :func:`batched`
    accepts go to OpenBLAS's batched GEMM."""
    found = batched(a, b, out)
    if found is not None:
        _call(*found, a, b, out)
        return
    with np.errstate(all="ignore"):
        np.matmul(a, b, out=out)


def product_for(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> Callable[..., None]:
    """What :func:`matmul` calls for arrays laid out as these: a replay decides it once
    (and runs under its own ``np.errstate``, see runtime/replay.py)."""
    found = batched(a, b, out)
    return functools.partial(_call, *found) if found is not None else _numpy_product


def _numpy_product(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    np.matmul(a, b, out=out)


def batched(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> tuple[Any, Order, Order] | None:
    """The batched GEMM that computes ``a @ b`` into ``out`` and how it reads a and b
    (see :func:`_order`), or None where the rule (see the module's docstring) says
    ``np.matmul``."""
    if a.ndim != 3 or b.ndim != 3 or out.ndim != 3 or not out.flags.c_contiguous:
        return None
    if not (a.flags.aligned and b.flags.aligned and out.flags.aligned):
        return None  # np.matmul copies unaligned operands; BLAS would get the raw pointer
    a_order, b_order = _order(a), _order(b)
    if a_order is None or b_order is None:
        return None
    function = _for_shapes(a.shape, b.shape, (a.dtype, b.dtype, out.dtype))
    return None if function is None else (function, a_order, b_order)


def choice(a_shape: tuple[int, ...], b_shape: tuple[int, ...], dtypes: tuple[np.dtype, ...]) -> str:
    """What runs a float product of these shapes and (a, b, out) dtypes, for ``explain()``."""
    if _for_shapes(a_shape, b_shape, dtypes) is None:
        return "numpy.matmul"
    return (
        f"OpenBLAS's batched GEMM, whole products per thread ({a_shape[0]} products), "
        "when each operand's matrices have a unit stride along rows or columns (else numpy.matmul)"
    )


def _for_shapes(a_shape: tuple[int, ...], b_shape: tuple[int, ...], dtypes: tuple[np.dtype, ...]) -> Any:
    dtype = dtypes[-1]
    if not config.get().batched_blas or len(a_shape) != 3 or len(b_shape) != 3 or set(dtypes) != {dtype}:
        return None
    count, m, k = a_shape
    if m * b_shape[2] * k <= SMALL_MATRIX_PATH:
        return None
    function = _loaded()[0].get(dtype)
    if function is None or count < fewest_products():
        return None
    return function


def fewest_products() -> int:
    """The smallest stack the batched GEMM takes: PRODUCTS_PER_THREAD per BLAS thread."""
    _, threads = _loaded()
    return PRODUCTS_PER_THREAD * max(1, threads())


def available() -> bool:
    """Whether NumPy's OpenBLAS has the batched GEMM (and it passed its check)."""
    return bool(_loaded()[0])


def _order(x: np.ndarray) -> Order | None:
    """(CBLAS transpose flag, leading dimension) of each matrix of ``x``, read in place,
    or None when neither axis has a unit stride."""
    size = x.itemsize
    rows, columns = x.shape[1:]
    row_step, column_step = x.strides[1:]
    if x.strides[0] % size:
        return None
    if column_step == size and row_step % size == 0 and row_step >= max(1, columns) * size:
        return _NO_TRANS, row_step // size
    if row_step == size and column_step % size == 0 and column_step >= max(1, rows) * size:
        return _TRANS, column_step // size
    return None


def _call(
    function: Any, a_order: Order, b_order: Order, a: np.ndarray, b: np.ndarray, out: np.ndarray
) -> None:
    """One group of ``len(out)`` products. ctypes passes addresses: every array they
    point into is a local here, alive until the call returns."""
    count, m, k = a.shape
    n = b.shape[2]
    (trans_a, lda), (trans_b, ldb) = a_order, b_order
    index = np.arange(count, dtype=np.int64)
    starts = [x.ctypes.data + index * x.strides[0] for x in (a, b, out)]  # each product's first element
    ints = np.array([m, n, k, lda, ldb, n, count], np.int64)
    flags = np.array([trans_a, trans_b], np.intc)
    scalars = np.array([1, 0], out.dtype)  # alpha, beta

    def at(array: np.ndarray, i: int = 0) -> int:
        return array.ctypes.data + i * array.itemsize  # type: ignore[no-any-return]

    function(
        _ROW_MAJOR, at(flags, 0), at(flags, 1), at(ints, 0), at(ints, 1), at(ints, 2), at(scalars, 0),
        at(starts[0]), at(ints, 3), at(starts[1]), at(ints, 4), at(scalars, 1), at(starts[2]), at(ints, 5),
        1, at(ints, 6),
    )  # fmt: skip


def _loaded() -> tuple[dict[np.dtype, Any], Any]:
    """The batched GEMMs of NumPy's OpenBLAS by dtype ({} when there are none), and
    the function that says its thread count; loaded and checked once."""
    if "loaded" not in _library:
        with _lock:
            if "loaded" not in _library:
                _library["loaded"] = _load()
    return _library["loaded"]  # type: ignore[no-any-return]


def _load() -> tuple[dict[np.dtype, Any], Any]:
    """The batched GEMMs of NumPy's OpenBLAS (see :func:`openblas`), if it has them and
    they agree with ``np.matmul``."""
    library = openblas()
    if library is None:
        return {}, lambda: 1
    try:
        functions = {dtype: getattr(library, name) for dtype, name in _FUNCTIONS.items()}
    except AttributeError:
        return {}, lambda: 1
    for function in functions.values():
        function.argtypes = [ctypes.c_int, *[ctypes.c_void_p] * 13, ctypes.c_int64, ctypes.c_void_p]
        function.restype = None
    if _agrees(functions):
        threads = library.scipy_openblas_get_num_threads64_
        threads.restype = ctypes.c_int
        return functions, threads
    warnings.warn(
        f"lazyfuse: OpenBLAS's batched GEMM in {library._name} disagrees with numpy.matmul; "
        "using numpy.matmul",
        RuntimeWarning,
        stacklevel=2,
    )
    return {}, lambda: 1


@functools.cache
def openblas() -> ctypes.CDLL | None:
    """NumPy's bundled OpenBLAS (Linux and Windows wheels: numpy.libs, macOS: .dylibs)
    when it is an ILP64 build (64-bit integer arguments), else None."""
    folder = os.path.dirname(np.__file__)
    paths = glob.glob(os.path.join(folder, os.pardir, "numpy.libs", "libscipy_openblas64_*"))
    paths += glob.glob(os.path.join(folder, ".dylibs", "libscipy_openblas64_*"))
    for path in paths:
        try:
            library = ctypes.CDLL(path)
            settings = library.scipy_openblas_get_config64_
            library.scipy_openblas_get_num_threads64_  # noqa: B018  # Note: a build without it is not NumPy's
        except (OSError, AttributeError):
            continue
        settings.restype = ctypes.c_char_p
        if b"USE64BITINT" in settings():
            return library
    return None


_GEMMS = {
    np.dtype(np.float64): ("scipy_cblas_dgemm64_", ctypes.c_double),
    np.dtype(np.float32): ("scipy_cblas_sgemm64_", ctypes.c_float),
}


def gemm(dtype: np.dtype) -> Any:
    """``cblas_?gemm`` of NumPy's OpenBLAS for ``dtype`` (float32, float64) as a ctypes
    function (row-major order and the transpose flags as C ints, sizes as int64,
    pointers as addresses), or None."""
    library = openblas()
    if library is None or dtype not in _GEMMS:
        return None
    name, real = _GEMMS[dtype]
    try:
        function = getattr(library, name)
    except AttributeError:
        return None
    size, address = ctypes.c_int64, ctypes.c_void_p
    function.argtypes = (
        [ctypes.c_int] * 3 + [size] * 3 + [real, address, size, address, size, real, address, size]
    )
    function.restype = None
    return function


def _agrees(functions: dict[np.dtype, Any]) -> bool:
    """Each batched GEMM against ``np.matmul`` on one stack (transposed operands
    included), above the small-matrix path."""
    rng = np.random.default_rng(0)
    side = round(SMALL_MATRIX_PATH ** (1 / 3)) + 1
    for dtype, function in functions.items():
        a = rng.standard_normal((3, side, side)).astype(dtype)
        b = rng.standard_normal((3, side, side)).astype(dtype).transpose(0, 2, 1)
        out = np.empty((3, side, side), dtype)
        _call(function, _order(a), _order(b), a, b, out)  # type: ignore[arg-type]
        tolerance = 1e-4 if dtype == np.float32 else 1e-10
        if not np.allclose(out, np.matmul(a, b), rtol=tolerance, atol=tolerance * side):
            return False
    return True
