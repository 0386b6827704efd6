"""The disk cache's directories and files: private, written atomically, verified before use.

Invariants:

* a directory :func:`directory` returns is inside ``config.get().cache_dir``, was created
  with mode 0o700, is owned by this process's uid and is not writable by group or others
  (checked at every level from the cache dir down); otherwise the caller gets None and
  keeps its work in memory, writing nothing to disk;
* :func:`write_atomic` leaves either the whole new file or the old state: its temporary
  file, in the same directory, is removed on any error;
* a compiled entry (files ``<stem>.*`` of one kernel) is loaded only when its manifest
  ``<stem>.sha256`` lists exactly those files with matching sha256s (:func:`check_entry`).

Each distinct problem is reported by one RuntimeWarning per process (:func:`warn_once`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import tempfile
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no lock; two processes may compile one entry twice
    fcntl = None  # type: ignore[assignment]

from lazyfuse import config

MANIFEST_SUFFIX = ".sha256"
LOCK_SUFFIX = ".lock"
# check_entry's reason for an entry written by an older lazyfuse or a process stopped early
NO_MANIFEST = "without a sha256 manifest"
_WARNED: set[str] = set()
_LOCK = threading.Lock()


def warn_once(message: str, stacklevel: int = 3) -> None:
    """Emit ``message`` as a RuntimeWarning the first time this process sees it."""
    with _LOCK:
        if message in _WARNED:
            return
        _WARNED.add(message)
    warnings.warn(f"lazyfuse: {message}", RuntimeWarning, stacklevel=stacklevel)


def directory(name: str) -> Path | None:
    """``config.get().cache_dir / name``, made ready for this process's private use, or None.

    ``name`` is a relative path ("kernels", "userfn", "kernels/__pycache__"). Missing
    directories (the cache dir and each level of ``name``) are created with mode 0o700.
    Returns the path only if every level from the cache dir down is a directory owned by
    ``os.getuid()``, not writable by group or others, and writable by us. Otherwise returns
    None after one RuntimeWarning per directory and reason: the caller must then keep its
    data in memory and write nothing to disk (nor anywhere else).
    """
    root = config.get().cache_dir
    relative = Path(name)
    if relative.is_absolute() or ".." in relative.parts:
        raise ValueError(f"diskcache.directory: a relative path inside the cache dir, got {name!r}")
    levels = [root] + [root.joinpath(*relative.parts[: i + 1]) for i in range(len(relative.parts))]
    try:
        root.parent.mkdir(parents=True, exist_ok=True)
        problem = None
        for level in levels:  # checked before anything is made inside it
            level.mkdir(mode=0o700, exist_ok=True)
            problem = _unsafe_directory(level)
            if problem:
                break
    except OSError as exc:
        problem = f"cannot create {exc.filename or root} ({exc.strerror or exc})"
    if problem is None:
        return root / relative
    warn_once(
        f"not using the disk cache {root / relative}: {problem}; compiling in memory "
        "(set LAZYFUSE_CACHE_DIR to a private directory of yours to cache on disk)"
    )
    return None


def _unsafe_directory(path: Path) -> str | None:
    """Why ``path`` must not be trusted as a cache directory, or None."""
    info = os.stat(path)
    if not stat.S_ISDIR(info.st_mode):
        return f"{path} is not a directory"
    return _unsafe_owner(path, info) or (
        None if os.access(path, os.W_OK | os.X_OK) else f"{path} is not writable"
    )


def _unsafe_owner(path: Path, info: os.stat_result) -> str | None:
    if info.st_uid != os.getuid():
        return f"{path} is owned by uid {info.st_uid}, not by this user (uid {os.getuid()})"
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"{path} is writable by group or others (mode {stat.S_IMODE(info.st_mode):#o})"
    return None


def unsafe_file(path: Path) -> str | None:
    """Why the existing entry ``path`` must not be loaded (not a regular file, another
    user's, writable by group or others), or None; a missing file is not unsafe."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(info.st_mode):
        return f"{path} is not a regular file"
    return _unsafe_owner(path, info)


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (a temporary file in its directory, then
    ``os.replace``); on any error the temporary file is removed and the error raised."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def entry_files(folder: Path, stem: str) -> list[Path]:
    """The files of compiled entry ``stem`` in ``folder``: ``<stem>.*``, not its manifest,
    its lock nor temporary files."""
    if not folder.is_dir():
        return []
    extra = {stem + MANIFEST_SUFFIX, stem + LOCK_SUFFIX}
    return sorted(p for p in folder.glob(f"{stem}.*") if p.name not in extra and ".tmp" not in p.name)


@contextlib.contextmanager
def entry_lock(folder: Path | None, stem: str) -> Iterator[None]:
    """Hold entry ``stem``'s lock across processes (an exclusive ``flock`` on
    ``<stem>.lock`` in ``folder``): one process checks, compiles and saves the entry with
    its manifest while the others wait, then load what it saved (test workers, a Dask
    worker per core). Without a folder, or where no lock can be had, it only yields."""
    if folder is None or fcntl is None:
        yield
        return
    try:
        handle = os.open(folder / (stem + LOCK_SUFFIX), os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:
        yield
        return
    try:
        with contextlib.suppress(OSError):
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        os.close(handle)  # releases the lock


def _digests(files: list[Path]) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def write_manifest(folder: Path, stem: str) -> None:
    """Record the sha256 of each file of entry ``stem`` in ``<stem>.sha256``, atomically
    (removed when the entry has no files). Raises OSError when it cannot."""
    files = entry_files(folder, stem)
    manifest = folder / (stem + MANIFEST_SUFFIX)
    if not files:
        manifest.unlink(missing_ok=True)
        return
    write_atomic(manifest, json.dumps(_digests(files), sort_keys=True).encode())


def check_entry(folder: Path, stem: str) -> tuple[str, str]:
    """Whether entry ``stem`` in ``folder`` may be loaded: ("ok" | "empty" | "unsafe" |
    "corrupt", why). "unsafe": a file is another user's or writable by others (do not
    load, do not touch); "corrupt": no valid manifest or a file does not match it."""
    files = entry_files(folder, stem)
    if not files:
        return "empty", ""
    manifest = folder / (stem + MANIFEST_SUFFIX)
    problem = next(filter(None, map(unsafe_file, [*files, manifest])), None)
    if problem:
        return "unsafe", problem
    try:
        recorded = json.loads(manifest.read_bytes())
    except FileNotFoundError:
        return "corrupt", NO_MANIFEST
    except (OSError, ValueError) as exc:
        return "corrupt", f"its manifest is unreadable ({exc})"
    try:
        if recorded != _digests(files):
            return "corrupt", "its files do not match their sha256 manifest"
    except OSError as exc:
        return "corrupt", f"a file is unreadable ({exc})"
    return "ok", ""


def remove_entry(folder: Path, stem: str) -> int:
    """Delete entry ``stem``'s files, temporary files and manifest; returns how many files.
    Its lock stays."""
    # Note: not its lock, which a process may hold (a new file would be another lock)
    found = [p for p in folder.glob(f"{stem}.*") if p.name != stem + LOCK_SUFFIX]
    doomed = [p for p in found if p.is_file() or p.is_symlink()]
    for path in doomed:
        path.unlink(missing_ok=True)
    return len(doomed)
