"""The demo is the first thing a user runs: it must run, check itself and say so."""

from __future__ import annotations

import subprocess
import sys

from lazyfuse.cli import main


def test_demo_runs_and_checks_every_expression(capsys):
    assert main(["demo", "--n", "2000", "--repeats", "1"]) == 0
    out = capsys.readouterr().out
    assert out.count("checked against NumPy: OK") == 4
    assert "MISMATCH" not in out
    assert "graph:" in out and "@njit(parallel=True" in out and "x NumPy)" in out


def test_console_script_entry_point():
    result = subprocess.run(
        [sys.executable, "-m", "lazyfuse.cli", "--help"], capture_output=True, text=True, check=True
    )
    assert "demo" in result.stdout


def test_cache_info_and_clear(tmp_path, capsys):
    import numpy as np

    import lazyfuse as lf
    from lazyfuse import config

    with config.override(cache_dir=tmp_path):
        x = lf.asarray(np.arange(5.0))
        (lf.sin(lf.cos(x) + 7.0) * x).compute()  # a kernel no other test loads
        lf.map(lambda v: v * 3.5 - 1.0, x).compute()  # a user function, cached in userfn/
        info = lf.cache_info()
        assert {"hits", "misses", "compiles", "compile_seconds"} <= set(info)
        assert info["disk_files"] >= 1 and info["cache_dir"] == str(tmp_path)
        assert any((tmp_path / "userfn").rglob("*.nbc"))
        assert main(["cache", "info"]) == 0
        out = capsys.readouterr().out
        assert "compiles:" in out and "this process only" in out
        assert f"disk cache: {tmp_path}" in out
        assert "entries: 2 kernels" in out and "oldest entry: 2" in out and "newest entry: 2" in out
        assert main(["cache", "clear"]) == 0
        assert "removed" in capsys.readouterr().out
        assert lf.cache_info()["disk_files"] == 0 and not any((tmp_path / "userfn").rglob("*.nbc"))
