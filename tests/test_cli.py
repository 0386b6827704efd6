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
