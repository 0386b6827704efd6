"""Generated source -> a compiled Numba kernel, cached in memory and on disk.

Each kernel's source is written to a real file in ``LAZYFUSE_CACHE_DIR/kernels`` and
imported, so tracebacks point at real lines and Numba's ``cache=True`` keeps the
machine code next to it for the next process.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import llvmlite
import numba
from numba.core import errors as numba_errors

from lazyfuse import config
from lazyfuse.codegen import cpu
from lazyfuse.errors import LazyfuseError
from lazyfuse.graph.kernels import KernelSpec


class KernelCompileError(LazyfuseError, TypeError):
    """Numba could not compile a generated kernel (names the kernel and its file)."""


@dataclass
class CompiledKernel:
    """A kernel ready to call: ``name``, ``target``, ``source`` and where it lives."""

    name: str
    target: str
    source: str
    path: Path
    function: Any = field(repr=False)
    calls: int = 0

    def __call__(self, *args: Any) -> None:
        self.calls += 1
        try:
            self.function(*args)
        except numba_errors.NumbaError as exc:
            raise KernelCompileError(
                f"kernel {self.name} failed to compile: {str(exc).strip().splitlines()[0]} "
                f"(generated source: {self.path})"
            ) from None


_CACHE: dict[tuple[KernelSpec, cpu.Options], CompiledKernel] = {}
_LOCK = threading.Lock()
STATS = {"kernels": 0, "build_seconds": 0.0}


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
    if not path.exists():
        fd, tmp = tempfile.mkstemp(dir=directory, suffix=".tmp")
        with os.fdopen(fd, "w") as handle:
            handle.write(source)
        os.replace(tmp, path)
    return path


def _load(spec: KernelSpec, options: cpu.Options) -> CompiledKernel:
    source = cpu.generate(spec, options)
    path = write_source(spec.name, source)
    module_name = f"lazyfuse_kernel_{path.stem}"
    if spec.user_functions:  # a private module each: its user functions are its own
        module_name += f"_{id(spec)}"
    module_spec = importlib.util.spec_from_file_location(module_name, path)
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    # Note: Numba's disk cache re-imports the kernel's module by name when it loads.
    sys.modules[module_name] = module
    module_spec.loader.exec_module(module)
    for name, user in spec.user_functions:
        setattr(module, name, user.compiled)
    return CompiledKernel(spec.name, "cpu", source, path, getattr(module, spec.name))
