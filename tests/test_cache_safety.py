"""The disk cache is verified, private and optional: a damaged entry is rebuilt, a
directory another user could write is not trusted, and an unusable one (a file, a full
disk) makes lazyfuse compile in memory, writing nothing, with one warning."""

from __future__ import annotations

import errno
import inspect
import json
import os
import subprocess
import sys
import traceback
import warnings
from pathlib import Path

import numpy as np
import pytest

import lazyfuse as lf
from lazyfuse import config
from lazyfuse.runtime import compile as runtime_compile

SCRIPT = """
import json, warnings
import numpy as np
import lazyfuse as lf
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    data = np.arange(30.0).reshape(3, 10)
    x = lf.asarray(data)
    result = (lf.sqrt(x * 0.5 + 3.0) - x.max(axis=1, keepdims=True)).compute()
expected = np.sqrt(data * 0.5 + 3.0) - data.max(axis=1, keepdims=True)
info = lf.cache_info()
print(json.dumps({"ok": bool(np.allclose(result, expected)), "compiles": info["compiles"],
                  "disk_loads": info["disk_loads"], "warnings": [str(w.message) for w in caught]}))
"""


def _run(cache_dir: Path) -> dict:
    env = {**os.environ, "LAZYFUSE_CACHE_DIR": str(cache_dir)}
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"exit status {done.returncode}: {done.stderr[-2000:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


def _compiled_code(cache_dir: Path) -> list[Path]:
    return sorted((cache_dir / "kernels" / "__pycache__").glob("*.nbc"))


def _lazyfuse_warnings(caught: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in caught if "lazyfuse" in str(w.message)]


def test_a_flipped_byte_in_compiled_code_is_detected_and_rebuilt(tmp_path):
    first = _run(tmp_path)
    assert first["ok"] and first["compiles"] >= 1 and not first["warnings"], first
    for entry in _compiled_code(tmp_path):
        data = bytearray(entry.read_bytes())
        data[len(data) // 2] ^= 0xFF
        entry.write_bytes(bytes(data))
    second = _run(tmp_path)  # used to crash (SIGSEGV) or load the damaged code
    assert second["ok"], second
    rebuilt = [w for w in second["warnings"] if "sha256" in w]
    kernels = {entry.name.split(".")[0] for entry in _compiled_code(tmp_path)}
    assert len(rebuilt) == len(kernels) >= 1, second["warnings"]  # one warning per kernel
    third = _run(tmp_path)
    assert third["ok"] and third["compiles"] == 0 and not third["warnings"], third


def test_an_entry_owned_by_another_user_is_not_loaded(tmp_path):
    assert _run(tmp_path)["ok"]
    for entry in _compiled_code(tmp_path):
        os.chown(entry, 54321, -1)  # the tests run as root; a user's would be refused alike
    second = _run(tmp_path)
    assert second["ok"] and second["disk_loads"] == 0, second
    assert any("owned by uid 54321" in w for w in second["warnings"]), second["warnings"]


@pytest.mark.parametrize("problem", ["world-writable", "another owner"])
def test_a_cache_dir_others_could_write_is_not_trusted(tmp_path, problem):
    cache_dir = tmp_path / "cache"
    cache_dir.mkdir()
    if problem == "world-writable":
        cache_dir.chmod(0o777)
    else:
        os.chown(cache_dir, 54321, -1)
    data = np.arange(12.0)
    trig, numpy_trig = (lf.sin, np.sin) if problem == "world-writable" else (lf.cos, np.cos)
    with config.override(cache_dir=cache_dir), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # a kernel no other test compiles (one per case)
        result = (lf.sigmoid(lf.asarray(data)) * trig(lf.asarray(data))).compute()
    np.testing.assert_allclose(result, numpy_trig(data) / (1.0 + np.exp(-data)))
    said = _lazyfuse_warnings(caught)
    assert len(said) == 1 and "compiling in memory" in said[0], said
    assert ("writable by group or others" if problem == "world-writable" else "owned by uid 54321") in said[0]
    assert list(cache_dir.iterdir()) == []  # nothing written into a directory we do not trust


def test_new_cache_directories_are_private(tmp_path):
    cache_dir = tmp_path / "new" / "cache"
    with config.override(cache_dir=cache_dir):
        x = lf.asarray(np.arange(4.0))
        (lf.relu(lf.sin(x)) * lf.exp(x)).compute()
    for folder in (cache_dir, cache_dir / "kernels", cache_dir / "kernels" / "__pycache__"):
        assert folder.stat().st_mode & 0o777 == 0o700, folder


def test_a_relative_cache_dir_is_made_absolute_when_read(tmp_path):
    env = {**os.environ, "LAZYFUSE_CACHE_DIR": "relative/cache"}
    code = "from lazyfuse import config; print(config.get().cache_dir)"
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert Path(done.stdout.strip()) == tmp_path / "relative" / "cache"


@pytest.fixture
def numba_cache_dir(tmp_path, monkeypatch):
    """Where Numba would cache (NUMBA_CACHE_DIR) if lazyfuse let it: must stay empty."""
    from numba.core import config as numba_config

    folder = tmp_path / "numba-cache"
    monkeypatch.setattr(numba_config, "CACHE_DIR", str(folder))
    return folder


def _compute(cache_dir: Path, first: str, second: str) -> list[str]:
    """Computes first(second(x)) * x, a kernel each test picks apart from the others';
    checks the result, returns lazyfuse's warnings."""
    data = np.arange(1.0, 11.0)
    outer, inner = getattr(lf, first), getattr(lf, second)
    with config.override(cache_dir=cache_dir), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = (outer(inner(lf.asarray(data))) * lf.asarray(data)).compute()
    np.testing.assert_allclose(result, getattr(np, first)(getattr(np, second)(data)) * data)
    return _lazyfuse_warnings(caught)


def test_a_cache_dir_under_a_file_means_compiling_in_memory(tmp_path, numba_cache_dir):
    (tmp_path / "a-file").write_text("not a directory")
    said = _compute(tmp_path / "a-file" / "cache", "tanh", "sin")
    assert len(said) == 1 and "compiling in memory" in said[0], said
    assert not numba_cache_dir.exists()


def test_a_full_disk_means_compiling_in_memory_and_leaves_no_temporary_file(
    tmp_path, numba_cache_dir, monkeypatch
):
    def full(src, dst, *args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(dst))

    monkeypatch.setattr(os, "replace", full)
    said = _compute(tmp_path, "tanh", "cos")
    assert len(said) == 1 and "No space left" in said[0], said
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []
    assert not numba_cache_dir.exists()


def test_numba_failing_to_save_compiled_code_means_compiling_in_memory(tmp_path, monkeypatch):
    replace = os.replace

    def full_for_compiled_code(src, dst, *args, **kwargs):
        if ".nb" in str(dst):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(dst))
        return replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", full_for_compiled_code)
    said = _compute(tmp_path, "sqrt", "exp")
    assert len(said) == 1 and "No space left" in said[0] and "in memory" in said[0], said
    assert [p.name for p in tmp_path.rglob("*") if ".tmp" in p.name] == []


def test_a_kernel_compiled_in_memory_keeps_its_source_lines_in_tracebacks(tmp_path):
    (tmp_path / "a-file").write_text("")
    with config.override(cache_dir=tmp_path / "a-file"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        x = lf.asarray(np.arange(3.0))
        (lf.exp(lf.cos(x)) + lf.sin(x)).compute()
    found = [k for k in runtime_compile._CACHE.values() if not k.path.is_file()]
    assert found, "no kernel compiled in memory"
    kernel = found[-1]
    with pytest.raises(Exception) as raised:
        kernel.function.py_func(*[None] * len(inspect.signature(kernel.function.py_func).parameters))
    frames = [f for f in traceback.extract_tb(raised.value.__traceback__) if f.filename == str(kernel.path)]
    assert frames and frames[-1].line, traceback.format_tb(raised.value.__traceback__)
    assert "cache=False" in kernel.source


def test_two_processes_writing_the_same_source_raise_no_false_warning(tmp_path, monkeypatch):
    source = "# a kernel\nvalue = 1\n"
    exists = Path.exists

    def other_process_lands_meanwhile(self: Path) -> bool:
        found = exists(self)
        if self.suffix == ".py" and not found:  # the other process's os.replace lands now
            self.write_text(source)
        return found

    monkeypatch.setattr(Path, "exists", other_process_lands_meanwhile)
    with config.override(cache_dir=tmp_path), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        path = runtime_compile.write_source("race", source)
    assert path.read_text() == source
    assert _lazyfuse_warnings(caught) == []


def test_a_source_file_with_other_content_is_rebuilt_with_a_warning(tmp_path):
    with config.override(cache_dir=tmp_path):
        path = runtime_compile.write_source("edited", "value = 2\n")
        path.write_text("value = 3\n")
        with pytest.warns(RuntimeWarning, match="corrupt kernel source"):
            assert runtime_compile.write_source("edited", "value = 2\n") == path
    assert path.read_text() == "value = 2\n"


def test_the_cuda_target_compiles_in_memory_too(tmp_path):
    (tmp_path / "a-file").write_text("")
    data = np.arange(16.0)
    settings = config.override(cache_dir=tmp_path / "a-file", target="cuda", cuda_block=8, cuda_tile=8)
    with settings, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = (lf.sigmoid(lf.sqrt(lf.asarray(data))) + 2.0).compute()
    np.testing.assert_allclose(result, 1.0 / (1.0 + np.exp(-np.sqrt(data))) + 2.0)


def test_a_cache_directory_given_as_a_string_is_used(tmp_path):
    """``config.override(cache_dir=...)`` takes a str as the environment variable does (a
    bug: it failed with AttributeError when the first kernel was written)."""
    x = np.arange(6.0)
    with config.override(cache_dir=str(tmp_path / "kernels here")):
        np.testing.assert_array_equal((lf.asarray(x) * 3.0 - 0.5).compute(), x * 3.0 - 0.5)
        assert isinstance(config.get().cache_dir, Path)
    assert list((tmp_path / "kernels here").rglob("*.py"))
