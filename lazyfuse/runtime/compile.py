"""Generated source -> a compiled Numba kernel, cached in memory and on disk.

Each kernel's source is written to a real file in ``LAZYFUSE_CACHE_DIR/kernels`` and
imported, so tracebacks point at real lines and Numba's ``cache=True`` keeps the
machine code next to it for the next process, with a sha256 manifest checked before
the next process loads it (runtime/diskcache.py). When that directory cannot be used
(another user's, writable by others, unwritable, full), kernels are compiled in memory:
their source is exec'd under a ``<lazyfuse: in memory>/...`` name registered in
``linecache`` (tracebacks still show its lines), with Numba's disk cache off, so nothing
is written anywhere.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import linecache
import pickle
import re
import shutil
import sys
import threading
import time
import types as pytypes
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import llvmlite
import numba
from numba import types
from numba.core import errors as numba_errors
from numba.core.caching import NullCache
from numba.np.numpy_support import from_dtype

from lazyfuse import config
from lazyfuse.codegen import cpu
from lazyfuse.errors import LazyfuseError
from lazyfuse.graph.kernels import ROW_VIEWS, KernelSpec, Layout, arrays_read
from lazyfuse.runtime import diskcache, numba_speedups

numba_speedups.install()


class KernelCompileError(LazyfuseError, TypeError):
    """Numba could not compile a generated kernel (names the kernel and its file)."""


@dataclass
class CompiledKernel:
    """A generated kernel of either target: ``name``, ``target``, ``source``, where it
    lives, and its Numba function: on the CPU compiled for its one signature on the first
    call; on CUDA a ``numba.cuda`` dispatcher, compiled by Numba on its first launch
    (``compiled`` from the start)."""

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
            with diskcache.entry_lock(cache_folder(self.function), self.path.stem):
                if not _may_load(self.function, self.path):
                    self.function._cache = NullCache()  # compiled in memory
                loaded = self._compile_checked()
            self.compiled = True
            STATS["disk_loads" if loaded else "compiles"] += 1
            STATS["compile_seconds"] += time.perf_counter() - started

    def _compile_checked(self) -> bool:
        """Compile (or load) and record the manifest of what was saved; whether it was
        loaded from the disk cache."""
        try:
            self._compile_or_recover()
        except numba_errors.NumbaError as exc:
            reason = str(exc).strip().splitlines()[0]
            raise KernelCompileError(
                f"kernel {self.name} failed to compile: {reason} (generated source: {self.path})"
            ) from None
        self.function.disable_compile()
        loaded = sum(self.function.stats.cache_hits.values()) > 0
        if not loaded:
            self._record_manifest()
        return loaded

    def _compile_or_recover(self) -> None:
        """Compile, or load Numba's disk cache. An entry that fails to load (truncated,
        unreadable) is removed, reported once, and the kernel compiled afresh; compiled code
        Numba cannot save (a full disk) is kept in memory only, with one warning."""
        try:
            self.function.compile(self.signature)
            return
        except (EOFError, OSError, pickle.UnpicklingError, ValueError, AttributeError, RuntimeError) as exc:
            failure = exc
        folder = cache_folder(self.function)
        removed = _remove_entry(folder, self.path.stem)
        if self.function.overloads:  # Note: Numba adds the compiled code, then saves it
            self.function._cache = NullCache()  # Numba's dispatcher keeps its disk cache here
            diskcache.warn_once(
                f"could not save compiled code to the disk cache {folder} "
                f"({getattr(failure, 'strerror', None) or failure}); compiling in memory"
            )
            return
        warnings.warn(
            f"lazyfuse: the disk cache entry of kernel {self.name} was unreadable ({type(failure).__name__}: "
            f"{failure}); removed {removed} file(s) and compiled it again",
            RuntimeWarning,
            stacklevel=5,
        )
        self.function.compile(self.signature)

    def _record_manifest(self) -> None:
        """After compiling: the sha256 manifest of the code Numba saved, checked by the next
        process before it loads it; if it cannot be written, the entry is removed."""
        folder = cache_folder(self.function)
        if folder is None:
            return
        try:
            diskcache.write_manifest(folder, self.path.stem)
        except OSError as exc:
            _remove_entry(folder, self.path.stem)
            diskcache.warn_once(f"could not write to the disk cache {folder} ({exc.strerror or exc})")


# Every target's kernels, by (spec, the target's options): one cache for all targets.
_CACHE: dict[tuple[KernelSpec, Any], CompiledKernel] = {}
_LOCK = threading.Lock()
# kernels generated and loaded; compiled by Numba, or loaded from its disk cache instead
STATS = {"kernels": 0, "build_seconds": 0.0, "compiles": 0, "disk_loads": 0, "compile_seconds": 0.0}


def kernel_for(spec: KernelSpec, options: cpu.Options) -> CompiledKernel:
    """The CPU kernel for ``spec``, generated and loaded once per process."""
    return cached(spec, options, lambda: _load(spec, options))


def cached(spec: KernelSpec, options: Any, make: Callable[[], CompiledKernel]) -> CompiledKernel:
    """The kernel of ``spec`` for a target's ``options`` (hashable), ``make``d once per
    process: the one kernel cache, shared by the targets."""
    key = (spec, options)
    found = _CACHE.get(key)
    if found is not None:
        return found
    with _LOCK:
        found = _CACHE.get(key)
        if found is None:
            started = time.perf_counter()
            found = _CACHE[key] = make()
            STATS["kernels"] += 1
            STATS["build_seconds"] += time.perf_counter() - started
    return found


def kernel_dir() -> Path:
    return config.get().cache_dir / "kernels"


# Kernels compiled in memory: their pseudo path (under IN_MEMORY) -> the source exec'd.
IN_MEMORY = Path("<lazyfuse: in memory>")
_SOURCES: dict[Path, str] = {}


def write_source(name: str, source: str) -> Path:
    """Write ``source`` once, atomically, to ``kernels/<name>_<hash>.py``; returns its path.

    The file is read once: only a file found with other content (truncated, edited) is
    reported as corrupt and rewritten, so two processes writing the same entry at once
    raise no warning. Where the kernels directory is unusable (:func:`diskcache.directory`),
    the file unsafe to import or the write fails, nothing is written (no temporary file
    left) and the returned path is an in-memory one (under ``IN_MEMORY``) that
    :func:`import_kernel` execs from memory, with Numba's disk cache off."""
    versions = f"{numba.__version__}/{llvmlite.__version__}"
    digest = hashlib.sha256((versions + source).encode()).hexdigest()[:16]
    file_name = f"{name}_{digest}.py"
    directory = diskcache.directory("kernels")
    if directory is None or diskcache.directory("kernels/__pycache__") is None:
        return in_memory(file_name, source)
    path = directory / file_name
    unsafe = diskcache.unsafe_file(path)
    if unsafe:
        diskcache.warn_once(f"not importing {path}: {unsafe}; compiling in memory")
        return in_memory(file_name, source)
    found = _read(path)
    if found == source:
        return path
    if found is not None:  # truncated or edited: the name says what it must hold
        warnings.warn(f"lazyfuse: rebuilt the corrupt kernel source {path}", RuntimeWarning, stacklevel=3)
    try:
        diskcache.write_atomic(path, source.encode())  # two processes writing it are safe
    except OSError as exc:
        diskcache.warn_once(
            f"could not write to the disk cache {directory} ({exc.strerror or exc}); compiling in memory"
        )
        return in_memory(file_name, source)
    return path


def _read(path: Path) -> str | None:
    """The file's text; None if there is no file, "" if it cannot be read as text."""
    try:
        return path.read_text()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError):
        return ""


def in_memory(file_name: str, source: str) -> Path:
    """The pseudo path under which :func:`import_kernel` execs ``source`` from memory, its
    ``@njit(...)`` / ``@cuda.jit(...)`` decorators set to ``cache=False`` (Numba's disk
    cache needs a real file, and must not fall back to ~/.cache/numba or NUMBA_CACHE_DIR)."""
    path = IN_MEMORY / file_name
    _SOURCES[path] = re.sub(r"^(@[\w.]*jit\(.*\bcache=)True\b", r"\1False", source, flags=re.MULTILINE)
    return path


def cache_folder(function: Any) -> Path | None:
    """Where Numba keeps ``function``'s compiled code on disk; None if it caches nothing."""
    # Note: a Numba dispatcher's ``_cache`` is its disk cache (a NullCache when off).
    folder = getattr(getattr(function, "_cache", None), "cache_path", None)
    return Path(folder) if folder else None


def _remove_entry(folder: Path | None, stem: str) -> int:
    with contextlib.suppress(OSError):
        return diskcache.remove_entry(folder, stem) if folder else 0
    return 0


def _load(spec: KernelSpec, options: cpu.Options) -> CompiledKernel:
    source = cpu.generate(spec, options)
    path = write_source(spec.name, source)
    bound = {name: user.compiled for name, user in spec.user_functions}
    function = getattr(import_kernel(path, spec, bound), spec.name)
    return CompiledKernel(spec.name, "cpu", _SOURCES.get(path, source), path, function, signature(spec))


def _may_load(function: Any, path: Path) -> bool:
    """Check the compiled code Numba would load for ``function`` before it does (with
    the entry's lock held: no other process is between saving it and its manifest): a
    corrupt entry (no valid sha256 manifest) is removed, with one warning, to be compiled
    again; False for an unsafe entry (another user's, writable by others) or a cache
    outside the kernels directory that nobody asked for (then: compile in memory)."""
    folder = cache_folder(function)
    if folder is None:
        return True
    if not folder.is_relative_to(path.parent) and not numba.config.CACHE_DIR:
        diskcache.warn_once(
            f"Numba would cache kernels in {folder}, outside the cache dir; compiling in memory"
        )
        return False
    status, why = diskcache.check_entry(folder, path.stem)
    if status == "unsafe":
        diskcache.warn_once(f"not loading the compiled kernel {path.stem}: {why}; compiling in memory")
        return False
    if status == "corrupt" and why == diskcache.NO_MANIFEST:  # e.g. from an older lazyfuse
        _remove_entry(folder, path.stem)
        diskcache.warn_once(f"removed compiled kernels {why} from {folder}; compiling them again")
    elif status == "corrupt":
        removed = _remove_entry(folder, path.stem)
        warnings.warn(
            f"lazyfuse: the compiled code of kernel {path.stem} failed its sha256 check ({why}); "
            f"removed {removed} file(s) and compiling it again",
            RuntimeWarning,
            stacklevel=5,
        )
    return True


def import_kernel(path: Path, spec: KernelSpec, bound: dict[str, Any]) -> Any:
    """Import a generated kernel file as a module, with ``bound`` (its user functions) set;
    a path from :func:`in_memory` is exec'd from memory, its lines kept in ``linecache``."""
    module_name = f"lazyfuse_kernel_{path.stem}"
    if not spec.cacheable:
        # a private module each: its user functions are its own. Note: a kernel whose user
        # functions are all keyed has their keys in its file, so the file's name says which
        # they are; it keeps the name Numba's disk cache imports again when it loads.
        module_name += f"_{id(spec)}"
    source = _SOURCES.get(path)
    if source is None:
        module_spec = importlib.util.spec_from_file_location(module_name, path)
        assert module_spec is not None and module_spec.loader is not None
        module = importlib.util.module_from_spec(module_spec)
        # Note: Numba's disk cache re-imports the kernel's module by name when it loads.
        sys.modules[module_name] = module
        module_spec.loader.exec_module(module)
    else:
        module = pytypes.ModuleType(module_name)
        module.__file__ = str(path)
        # Note: an entry without an mtime stays in linecache (checkcache skips it).
        linecache.cache[str(path)] = (len(source), None, source.splitlines(keepends=True), str(path))
        sys.modules[module_name] = module
        exec(compile(source, str(path), "exec"), module.__dict__)
    for name, function in bound.items():
        setattr(module, name, function)
    return module


def signature(spec: KernelSpec) -> tuple[Any, ...]:
    """The kernel's one Numba signature: inputs are read-only arrays of any strides
    (the spec's layout: 'A', or 'C'/'F' when all are so contiguous), outputs writable, then parameters and
    loop extents. Arrays of every layout convert to it, so a kernel compiles once."""
    layout: Literal["C", "F", "A"] = (
        "C" if spec.layout in (Layout.C, Layout.ROWS) else "F" if spec.layout is Layout.F else "A"
    )

    def array(dtype: Any, ndim: int, readonly: bool) -> Any:
        # Note: Numba types every contiguous array of fewer than 2 axes as 'C'.
        return types.Array(
            from_dtype(dtype), ndim, "C" if layout == "F" and ndim < 2 else layout, readonly=readonly
        )

    def rank(inner: bool) -> int:
        return spec.n_outer + (spec.n_inner if inner else 0)

    if spec.layout is Layout.ROWS:  # rows x columns; a broadcast row or column is 1-d
        views = dict(zip([ld.var for ld in spec.loads], spec.load_views, strict=True))
        loads = [array(ld.dtype, len(ROW_VIEWS[views[ld.var]]), True) for ld in arrays_read(spec)]
    else:
        loads = [
            types.Array(from_dtype(ld.dtype), ld.ndim, spec.table_layout, readonly=True)  # type: ignore[arg-type]
            if ld.ndim is not None
            else array(ld.dtype, rank(ld.inner), True)
            for ld in arrays_read(spec)
        ]
    outputs = [array(st.dtype, rank(st.inner) if st.ndim is None else st.ndim, False) for st in spec.stores]
    if spec.kind == "matmul":
        return (*loads, *outputs)
    params = [from_dtype(p.dtype) for p in spec.params]
    return (*loads, *params, *outputs, *([types.intp] * (spec.n_outer + spec.n_inner)))


CACHED = ("kernels", "userfn")  # the disk cache's directories: kernels, user functions (userfn.py)


def disk_files() -> list[Path]:
    """Every file of the disk cache: generated sources and Numba's compiled code of the
    kernels and of the user functions."""
    folders = [config.get().cache_dir / name for name in CACHED]
    return [p for folder in folders if folder.exists() for p in folder.rglob("*") if p.is_file()]


def clear_disk_cache() -> int:
    """Remove the disk cache; returns how many files it held."""
    removed = len(disk_files())
    for name in CACHED:
        shutil.rmtree(config.get().cache_dir / name, ignore_errors=True)
    return removed


def disk_summary() -> dict[str, Any]:
    """What the disk cache holds now, as every process sees it: its directory,
    ``entries`` (generated kernel sources), ``files``, ``bytes`` and the times the
    oldest and newest entries were written (None when empty)."""
    files = disk_files()
    sizes, entry_times = 0, []
    for path in files:
        with contextlib.suppress(OSError):  # another process may remove it meanwhile
            info = path.stat()
            sizes += info.st_size
            if path.suffix == ".py":
                entry_times.append(info.st_mtime)

    def when(stamp: float | None) -> str | None:
        return None if stamp is None else datetime.fromtimestamp(stamp).isoformat(sep=" ", timespec="seconds")

    return {
        "directory": str(config.get().cache_dir),
        "entries": len(entry_times),
        "files": len(files),
        "bytes": sizes,
        "oldest": when(min(entry_times, default=None)),
        "newest": when(max(entry_times, default=None)),
    }
