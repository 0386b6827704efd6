"""User functions of lf.map across processes: loaded from the disk cache when their code,
closure and the globals they read are unchanged, compiled afresh when any of them changed."""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import subprocess
import sys

import numba
import numpy as np
from numba.core.caching import NullCache

import lazyfuse as lf
from lazyfuse.runtime import userfn

MODULE = """
import numba
import numpy as np
from numba.core.caching import NullCache
SCALE = {scale}

def scaled(v):
    return np.float64(v * SCALE)
"""

SCRIPT = """
import json, sys
sys.path.insert(0, {path!r})
import numba
import numpy as np
from numba.core.caching import NullCache
import lazyfuse as lf
from lazyfuse.runtime import userfn
import usermod

def adder(k):
    return lambda v: v + k

data = np.arange(5.0)
found = {{}}
for name, fn in {{"module": usermod.scaled, "lambda": adder({k})}}.items():
    y = lf.map(fn, lf.asarray(data))
    stats = userfn.wrap(fn, "map").compiled.stats
    found[name] = {{"result": y.compute().tolist(), "hits": sum(stats.cache_hits.values()),
                   "misses": sum(stats.cache_misses.values())}}
found["kernels compiled"] = lf.cache_info()["compiles"]
print(json.dumps(found))
"""

DATA = np.arange(5.0)


def _run(tmp_path, scale: float, k: float) -> dict:
    """Build lf.map of usermod.scaled (reads the global SCALE) and of a lambda closing over
    ``k`` in a new process sharing ``tmp_path/cache``; their results and cache stats."""
    (tmp_path / "usermod.py").write_text(MODULE.format(scale=scale))
    env = {**os.environ, "LAZYFUSE_CACHE_DIR": str(tmp_path / "cache"), "PYTHONDONTWRITEBYTECODE": "1"}
    script = SCRIPT.format(path=str(tmp_path), k=k)
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["module"]["result"] == (DATA * scale).tolist(), found
    assert found["lambda"]["result"] == (DATA + k).tolist(), found
    return found


def _loaded(found: dict, name: str) -> bool:
    return found[name]["hits"] >= 1 and found[name]["misses"] == 0


def _compiled(found: dict, name: str) -> bool:
    return found[name]["hits"] == 0 and found[name]["misses"] >= 1


def test_a_new_process_loads_user_functions_from_the_disk_cache(tmp_path):
    first = _run(tmp_path, scale=2.0, k=1.0)
    assert _compiled(first, "module") and _compiled(first, "lambda"), first
    second = _run(tmp_path, scale=2.0, k=1.0)
    assert _loaded(second, "module") and _loaded(second, "lambda"), second
    assert first["kernels compiled"] == 2 and second["kernels compiled"] == 0, (first, second)


def test_a_changed_global_is_compiled_again_not_loaded_stale(tmp_path):
    _run(tmp_path, scale=2.0, k=1.0)
    changed = _run(tmp_path, scale=3.0, k=1.0)
    assert _compiled(changed, "module") and _loaded(changed, "lambda"), changed
    assert changed["kernels compiled"] == 1, changed  # the kernel that calls it, not the other
    back = _run(tmp_path, scale=2.0, k=1.0)
    assert _loaded(back, "module"), back


def test_a_changed_closure_value_is_compiled_again_not_loaded_stale(tmp_path):
    _run(tmp_path, scale=2.0, k=1.0)
    changed = _run(tmp_path, scale=2.0, k=5.0)
    assert _compiled(changed, "lambda") and _loaded(changed, "module"), changed


def test_corrupt_cache_entries_are_compiled_again(tmp_path):
    _run(tmp_path, scale=2.0, k=1.0)
    entries = [p for p in (tmp_path / "cache").rglob("*.nb*") if p.is_file()]
    assert entries
    for entry in entries:
        entry.write_bytes(entry.read_bytes()[:20])
    again = _run(tmp_path, scale=2.0, k=1.0)
    assert _compiled(again, "module") and _compiled(again, "lambda"), again
    assert _loaded(_run(tmp_path, scale=2.0, k=1.0), "module")


LIMIT = 2.0
LIBM = ctypes.CDLL(ctypes.util.find_library("m"))
COS = LIBM.cos
COS.restype, COS.argtypes = ctypes.c_double, (ctypes.c_double,)


def _below_limit(v):
    return min(v, LIMIT)


def _twice_below_limit(v):
    return 2.0 * _jitted_below_limit(v)


_jitted_below_limit = numba.njit(_below_limit)


def _libm_cos(v):
    return COS(v)


def test_the_key_covers_the_globals_read_also_through_jitted_helpers(monkeypatch):
    def keys() -> list[str | None]:
        return [userfn.cache_key(_below_limit), userfn.cache_key(_twice_below_limit)]

    before = keys()
    assert None not in before and before == keys()
    monkeypatch.setattr(sys.modules[__name__], "LIMIT", 3.0)
    after = keys()
    assert after[0] != before[0] and after[1] != before[1]


def test_a_function_reading_a_global_with_no_stable_key_works_uncached():
    assert userfn.cache_key(_libm_cos) is None
    result = lf.map(_libm_cos, lf.asarray(DATA)).compute()
    np.testing.assert_allclose(result, np.cos(DATA))
    assert userfn.wrap(_libm_cos, "map").compiled.stats.cache_path == NullCache().cache_path


def test_a_kernel_is_cached_on_disk_only_when_its_user_functions_have_keys():
    """The key is in the kernel's header, so its file names the machine code it calls;
    a function without a key would make one file serve several functions: not cached."""
    from lazyfuse import config

    keyed = lf.map(_below_limit, lf.asarray(DATA))
    unkeyed = lf.map(_libm_cos, lf.asarray(DATA))
    for target in ("cpu", "cuda"):
        with config.override(target=target):
            (source,) = [k.source for k in keyed.kernels(target=target)]
            assert f"key {userfn.cache_key(_below_limit)[:16]}" in source
            assert "cache=True" in source
            (source,) = [k.source for k in unkeyed.kernels(target=target)]
            assert "cache=False" in source and "key " not in source
