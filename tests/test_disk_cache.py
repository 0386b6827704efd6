"""The disk cache across processes: reused without compiling, corrupt entries rebuilt."""

from __future__ import annotations

import json
import os
import subprocess
import sys

SCRIPT = """
import json, warnings
import numpy as np
import lazyfuse as lf
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    data = np.arange(40.0).reshape(4, 10)
    x = lf.asarray(data)
    result = (lf.tanh(x * 0.25) - x.mean(axis=1, keepdims=True)).compute()
expected = np.tanh(data * 0.25) - data.mean(axis=1, keepdims=True)
info = lf.cache_info()
print(json.dumps({"ok": bool(np.allclose(result, expected)), "compiles": info["compiles"],
                  "disk_loads": info["disk_loads"], "warnings": [str(w.message) for w in caught]}))
"""


def _run(cache_dir) -> dict:
    env = {**os.environ, "LAZYFUSE_CACHE_DIR": str(cache_dir)}
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_new_process_reuses_the_disk_cache_and_recovers_from_corruption(tmp_path):
    first = _run(tmp_path)
    assert first["ok"] and first["compiles"] >= 1 and not first["warnings"]
    second = _run(tmp_path)
    assert second["ok"] and second["compiles"] == 0 and second["disk_loads"] == first["compiles"]

    kernels = tmp_path / "kernels"
    for source in kernels.glob("*.py"):
        source.write_text(source.read_text()[:40])  # truncated source
    for entry in (kernels / "__pycache__").glob("*.nb*"):
        entry.write_bytes(entry.read_bytes()[:20])  # truncated compiled code
    third = _run(tmp_path)
    assert third["ok"], third
    assert any("corrupt kernel source" in w for w in third["warnings"]), third["warnings"]
    fourth = _run(tmp_path)
    assert fourth["ok"] and fourth["compiles"] == 0 and not fourth["warnings"]


TOGETHER = """
import json, os, sys, time
import numpy as np
import lazyfuse as lf
from lazyfuse.runtime import execute
x = lf.asarray(np.arange(40.0).reshape(4, 10))
expr = lf.sin(x * 0.5).sum(axis=1)
plan = expr.kernels()  # generated and imported, not compiled: compiling waits for the start
open(sys.argv[1] + "." + sys.argv[2], "w").close()
while not all(os.path.exists(sys.argv[1] + "." + k) for k in ("0", "1")):
    time.sleep(0.01)
result = expr.compute()
info = lf.cache_info()
print(json.dumps({"ok": bool(np.allclose(result, np.sin(np.arange(40.0).reshape(4, 10) * 0.5).sum(1))),
                  "compiles": info["compiles"], "disk_loads": info["disk_loads"]}))
"""


def test_two_processes_compiling_one_kernel_at_once_compile_it_once(tmp_path):
    """Each compiled entry has a lock (flock): test workers or Dask workers that need the
    same kernel at once compile it in one process; the others wait and load it."""
    env = {**os.environ, "LAZYFUSE_CACHE_DIR": str(tmp_path / "cache")}
    start = str(tmp_path / "start")
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", TOGETHER, start, str(k)], env=env, stdout=subprocess.PIPE, text=True
        )
        for k in range(2)
    ]
    results = [json.loads(run.communicate(timeout=240)[0].strip().splitlines()[-1]) for run in runs]
    assert all(r["ok"] for r in results), results
    assert sum(r["compiles"] for r in results) == 1, results
    assert sum(r["disk_loads"] for r in results) == 1, results
