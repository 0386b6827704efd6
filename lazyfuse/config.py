"""All LAZYFUSE_* settings in one place.

Imports nothing of lazyfuse, so every layer may read it. Tests override settings
with :func:`override`, a context manager, instead of touching the environment.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, fields, replace
from pathlib import Path

# Note: GNU OpenMP threads (Numba's default threading layer here) spin for a while
# after each parallel kernel; BLAS, which lazyfuse calls for float matmul, then fights
# them for the cores (bench_matmul.py's batched product with an epilogue runs about twice
# as long with libgomp's default spin, `GOMP_SPINCOUNT=300000`, as with this one; kernels
# of 20k elements are no slower; see benchmarks/README.md). Read by libgomp when Numba
# first starts its threads; a value the user set wins.
os.environ.setdefault("GOMP_SPINCOUNT", "10000")


def cache_dir_from_environment() -> Path:
    """LAZYFUSE_CACHE_DIR, else $XDG_CACHE_HOME/lazyfuse, else ~/.cache/lazyfuse; made
    absolute (``~`` expanded) when read, so a later chdir does not move the cache."""
    chosen = os.environ.get("LAZYFUSE_CACHE_DIR")
    if not chosen:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
        chosen = os.path.join(base, "lazyfuse")
    return Path(os.path.abspath(os.path.expanduser(chosen)))


def _flag(name: str, default: str) -> bool:
    return os.environ.get(name, default).strip().lower() not in ("", "0", "false", "no")


MATH_CHOICES = ("fast", "libm")


@dataclass(frozen=True)
class Config:
    """Settings read once from the environment at import time."""

    cache_dir: Path
    debug: int
    checks: bool
    parallel: bool
    fuse: bool
    # kernels whose loops cover fewer elements run serially: starting threads costs more
    serial_below: int
    # "fast": exp, log, tanh, ... from lazyfuse.runtime.fastmath (vectorized by LLVM);
    # "libm": the C library's, one call per element
    math: str = "fast"
    # where compute() runs when it is not told: "cpu" or "cuda"
    target: str = "cpu"
    # CUDA: threads per block of row kernels (a power of two), the matmul tile's side
    cuda_block: int = 256
    cuda_tile: int = 32
    # the most bytes of dropped large outputs kept for reuse (runtime/buffers.py); 0: none
    pool_bytes: int = 1 << 30
    # stacks of float products through OpenBLAS's batched GEMM where its rule says (runtime/blas.py)
    batched_blas: bool = True
    # a plan's run is recorded once per layout of its values and replayed (runtime/replay.py)
    replay: bool = True
    # a replayed record's lines compiled into one Numba function (runtime/driver.py) after
    # this many replays; 0: never. Compiling takes 1 to 4 s and saves tens of microseconds
    # a step: it pays in runs of tens of thousands of steps, not in `lazyfuse train`'s 2500
    compile_replays_after: int = 10_000
    # every kernel call, product and host step timed for lf.profile (runtime/profiling.py)
    profile: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.cache_dir, Path):  # a str from override(), as the environment gives
            object.__setattr__(self, "cache_dir", Path(self.cache_dir))
        if self.cuda_block < 1 or self.cuda_block & (self.cuda_block - 1) or self.cuda_block > 1024:
            raise ValueError(f"LAZYFUSE_CUDA_BLOCK: a power of two up to 1024, got {self.cuda_block}")
        if not 1 <= self.cuda_tile <= 32:
            raise ValueError(f"LAZYFUSE_CUDA_TILE: from 1 to 32 (tile x tile threads), got {self.cuda_tile}")
        if self.math not in MATH_CHOICES:
            raise ValueError(f"LAZYFUSE_MATH / math: expected one of {MATH_CHOICES}, got {self.math!r}")


def _from_environment() -> Config:
    return Config(
        cache_dir=cache_dir_from_environment(),
        debug=int(os.environ.get("LAZYFUSE_DEBUG", "0") or 0),
        checks=_flag("LAZYFUSE_CHECKS", "0"),
        parallel=_flag("LAZYFUSE_PARALLEL", "1"),
        fuse=_flag("LAZYFUSE_FUSE", "1"),
        serial_below=int(os.environ.get("LAZYFUSE_SERIAL_BELOW", "16384") or 0),
        math=os.environ.get("LAZYFUSE_MATH", "fast").strip().lower() or "fast",
        target=os.environ.get("LAZYFUSE_TARGET", "cpu").strip().lower() or "cpu",
        cuda_block=int(os.environ.get("LAZYFUSE_CUDA_BLOCK", "256") or 256),
        cuda_tile=int(os.environ.get("LAZYFUSE_CUDA_TILE", "32") or 32),
        pool_bytes=int(os.environ.get("LAZYFUSE_POOL_BYTES", "").strip() or 1 << 30),
        batched_blas=_flag("LAZYFUSE_BATCHED_BLAS", "1"),
        replay=_flag("LAZYFUSE_REPLAY", "1"),
        compile_replays_after=int(os.environ.get("LAZYFUSE_COMPILE_REPLAYS_AFTER", "10000").strip() or 0),
        profile=_flag("LAZYFUSE_PROFILE", "0"),
    )


_current = _from_environment()
# settings changed for the rest of this process (a forked child's serial kernels): they
# outlast every override, which would otherwise restore what the parent had
_for_process: dict[str, object] = {}


# settings for one thread only (a Dask task's serial kernels): see override_in_thread
_thread = threading.local()


def get() -> Config:
    """The settings in force now (in this thread)."""
    return getattr(_thread, "config", None) or _current


@contextlib.contextmanager
def override_in_thread(**changes: object) -> Iterator[Config]:
    """Change settings in this thread only, for the block: a Dask chunk task runs serial
    kernels this way while the user's other threads keep theirs."""
    previous = getattr(_thread, "config", None)
    _thread.config = replace(previous or _current, **changes)  # type: ignore[arg-type]
    try:
        yield _thread.config
    finally:
        _thread.config = previous


@contextlib.contextmanager
def override(**changes: object) -> Iterator[Config]:
    """Temporarily change settings: ``with config.override(checks=True): ...``."""
    global _current
    known = {f.name for f in fields(Config)}
    unknown = set(changes) - known
    if unknown:
        raise TypeError(f"unknown lazyfuse setting(s) {sorted(unknown)}; known: {sorted(known)}")
    previous = _current
    _current = replace(previous, **changes)  # type: ignore[arg-type]
    try:
        yield _current
    finally:
        _current = replace(previous, **_for_process) if _for_process else previous  # type: ignore[arg-type]


def set_for_process(**changes: object) -> None:
    """Change settings for the rest of this process, overrides included (used in a
    forked child, whose kernels must not start threads the parent's runtime owns)."""
    global _current
    _for_process.update(changes)
    _current = replace(_current, **changes)  # type: ignore[arg-type]
