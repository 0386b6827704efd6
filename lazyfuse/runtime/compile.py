"""Generated source -> a compiled Numba kernel, cached in memory and on disk.

Each kernel's source is written to a real file in ``LAZYFUSE_CACHE_DIR/kernels`` and
imported, so tracebacks point at real lines and Numba's ``cache=True`` keeps the
machine code next to it for the next process.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import pickle
import shutil
import sys
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import llvmlite
import numba
from numba import types
from numba.core import errors as numba_errors
from numba.np.numpy_support import from_dtype

from lazyfuse import config
from lazyfuse.codegen import cpu
from lazyfuse.errors import LazyfuseError
from lazyfuse.graph.kernels import ROW_VIEWS, KernelSpec, arrays_read


class KernelCompileError(LazyfuseError, TypeError):
    """Numba could not compile a generated kernel (names the kernel and its file)."""


@dataclass
class CompiledKernel:
    """A generated kernel: ``name``, ``target``, ``source``, where it lives, and its
    Numba function, compiled for its one signature on the first call."""

    name: str
    target: str
    source: str
    path: Path
    function: Any = field(repr=False)
    signature: tuple[Any, ...] = field(repr=False, default=())
    compiled: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __call__(self, *args: Any) -> None:
        if not self.compiled:
            self.compile()
        self.function(*args)

    def compile(self) -> None:
        """Compile once (or load Numba's disk cache); later calls of any layout convert."""
        with self._lock:
            if self.compiled:
                return
            started = time.perf_counter()
            try:
                self._compile_or_recover()
            except numba_errors.NumbaError as exc:
                reason = str(exc).strip().splitlines()[0]
                raise KernelCompileError(
                    f"kernel {self.name} failed to compile: {reason} (generated source: {self.path})"
                ) from None
            self.function.disable_compile()
            self.compiled = True
            loaded = sum(self.function.stats.cache_hits.values()) > 0
            STATS["disk_loads" if loaded else "compiles"] += 1
            STATS["compile_seconds"] += time.perf_counter() - started

    def _compile_or_recover(self) -> None:
        """Compile, or load Numba's disk cache; a corrupt cache entry (a truncated or
        unreadable file) is removed, reported once, and the kernel compiled afresh."""
        try:
            self.function.compile(self.signature)
        except (EOFError, OSError, pickle.UnpicklingError, ValueError, AttributeError) as exc:
            removed = [
                p for p in (self.path.parent / "__pycache__").glob(f"{self.path.stem}.*") if p.is_file()
            ]
            for entry in removed:
                entry.unlink(missing_ok=True)
            warnings.warn(
                f"lazyfuse: the disk cache entry of kernel {self.name} was unreadable ({type(exc).__name__}: "
                f"{exc}); removed {len(removed)} file(s) and compiled it again",
                RuntimeWarning,
                stacklevel=4,
            )
            self.function.compile(self.signature)


_CACHE: dict[tuple[KernelSpec, cpu.Options], CompiledKernel] = {}
_LOCK = threading.Lock()
# kernels generated and loaded; compiled by Numba, or loaded from its disk cache instead
STATS = {"kernels": 0, "build_seconds": 0.0, "compiles": 0, "disk_loads": 0, "compile_seconds": 0.0}


def kernel_for(spec: KernelSpec, options: cpu.Options) -> CompiledKernel:
    """The compiled kernel for ``spec``, generated and loaded once per process."""
    key = (spec, options)
    found = _CACHE.get(key)
    if found is not None:
        return found
    with _LOCK:
        found = _CACHE.get(key)
        if found is None:
            started = time.perf_counter()
            found = _CACHE[key] = _load(spec, options)
            STATS["kernels"] += 1
            STATS["build_seconds"] += time.perf_counter() - started
    return found


def kernel_dir() -> Path:
    return config.get().cache_dir / "kernels"


def write_source(name: str, source: str) -> Path:
    """Write ``source`` once, atomically, to a file named by its content hash."""
    versions = f"{numba.__version__}/{llvmlite.__version__}"
    digest = hashlib.sha256((versions + source).encode()).hexdigest()[:16]
    directory = kernel_dir()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}_{digest}.py"
    if path.exists() and _read(path) == source:
        return path
    if path.exists():  # truncated or edited: the name says what it must hold
        warnings.warn(f"lazyfuse: rebuilt the corrupt kernel source {path}", RuntimeWarning, stacklevel=3)
    fd, tmp = tempfile.mkstemp(dir=directory, suffix=".tmp")
    with os.fdopen(fd, "w") as handle:
        handle.write(source)
    os.replace(tmp, path)  # atomic: two processes writing the same entry are safe
    return path


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError):
        return None


def _load(spec: KernelSpec, options: cpu.Options) -> CompiledKernel:
    source = cpu.generate(spec, options)
    path = write_source(spec.name, source)
    module = import_kernel(path, spec, {name: user.compiled for name, user in spec.user_functions})
    return CompiledKernel(spec.name, "cpu", source, path, getattr(module, spec.name), signature(spec))


def import_kernel(path: Path, spec: KernelSpec, bound: dict[str, Any]) -> Any:
    """Import a generated kernel file as a module, with ``bound`` (its user functions) set."""
    module_name = f"lazyfuse_kernel_{path.stem}"
    if spec.user_functions:  # a private module each: its user functions are its own
        module_name += f"_{id(spec)}"
    module_spec = importlib.util.spec_from_file_location(module_name, path)
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    # Note: Numba's disk cache re-imports the kernel's module by name when it loads.
    sys.modules[module_name] = module
    module_spec.loader.exec_module(module)
    for name, function in bound.items():
        setattr(module, name, function)
    return module


def signature(spec: KernelSpec) -> tuple[Any, ...]:
    """The kernel's one Numba signature: inputs are read-only arrays of any strides
    (the spec's layout: 'A', or 'C'/'F' when all are so contiguous), outputs writable, then parameters and
    loop extents. Arrays of every layout convert to it, so a kernel compiles once."""
    layout: Literal["C", "F", "A"] = "C" if spec.layout in "CR" else "F" if spec.layout == "F" else "A"

    def array(dtype: Any, ndim: int, readonly: bool) -> Any:
        # Note: Numba types every contiguous array of fewer than 2 axes as 'C'.
        return types.Array(
            from_dtype(dtype), ndim, "C" if layout == "F" and ndim < 2 else layout, readonly=readonly
        )

    def rank(inner: bool) -> int:
        return spec.n_outer + (spec.n_inner if inner else 0)

    if spec.layout == "R":  # rows x columns; a broadcast row or column is 1-d
        views = dict(zip([ld.var for ld in spec.loads], spec.load_views, strict=True))
        loads = [array(ld.dtype, len(ROW_VIEWS[views[ld.var]]), True) for ld in arrays_read(spec)]
    else:
        loads = [array(ld.dtype, rank(ld.inner), True) for ld in arrays_read(spec)]
    outputs = [array(st.dtype, rank(st.inner), False) for st in spec.stores]
    if spec.kind == "matmul":
        return (*loads, *outputs)
    params = [from_dtype(p.dtype) for p in spec.params]
    return (*loads, *params, *outputs, *([types.intp] * (spec.n_outer + spec.n_inner)))


def disk_files() -> list[Path]:
    """Every file of the disk cache: generated sources and Numba's compiled code."""
    directory = kernel_dir()
    return [p for p in directory.rglob("*") if p.is_file()] if directory.exists() else []


def clear_disk_cache() -> int:
    """Remove the disk cache; returns how many files it held."""
    removed = len(disk_files())
    shutil.rmtree(kernel_dir(), ignore_errors=True)
    return removed
