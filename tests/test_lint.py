"""The code stays formatted and lint-clean (ruff, configured in pyproject.toml)."""

from __future__ import annotations

import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _ruff(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "ruff", *args]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)


def test_ruff_lint_and_format_are_clean():
    lint = _ruff("check", "lazyfuse", "tests", "benchmarks")
    assert lint.returncode == 0, lint.stdout + lint.stderr
    formatting = _ruff("format", "--check", "lazyfuse", "tests", "benchmarks")
    assert formatting.returncode == 0, formatting.stdout + formatting.stderr
