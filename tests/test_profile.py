"""lf.profile: per-kernel rows whose bytes are the arrays' own, whose flops are counted
from the expression, whose times agree with a plain timing of the same compute, and a
machine peak that is measured once, kept, and never trusted when its file is wrong."""

from __future__ import annotations

import importlib
import json
import os
import statistics
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import lazyfuse as lf
from lazyfuse import config

profiling = importlib.import_module("lazyfuse.profile")  # the module (lf.profile is its function)

# A machine for the tests' bounds: the rows' bound follows from these and the counts.
PEAKS = {"bandwidth": 10e9, "flops": 40e9}
N = 1_000_000


def _vectors(count: int, n: int = N, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.random(n) for _ in range(count)]


def _row(p: profiling.Profile, kind: str) -> dict:
    (row,) = [r for r in p.rows() if r["kind"] == kind]
    return row


def test_rows_count_calls_and_the_bytes_each_call_moves():
    x_np, y_np = _vectors(2)
    x, y = lf.asarray(x_np), lf.asarray(y_np)
    (lf.exp(x) * y).compute()  # compiled outside the profile
    with profiling.profile(PEAKS) as p:
        for _ in range(3):
            np.testing.assert_allclose((lf.exp(x) * y).compute(), np.exp(x_np) * y_np, rtol=1e-12)
    row = _row(p, "loop")
    assert "exp" in row["name"] and row["calls"] == 3
    assert row["bytes_read"] == x_np.nbytes + y_np.nbytes  # 16 MB
    assert row["bytes_written"] == x_np.nbytes  # 8 MB
    assert (row["flops"], row["transcendentals"]) == (N, N)  # one multiply, one exp per element
    moved = row["bytes_read"] + row["bytes_written"]  # the same each call: an odd count's medians agree
    assert row["gbps"] == pytest.approx(moved / row["median_s"] / 1e9)


def test_flops_counted_per_element_and_per_row():
    x_np, y_np, z_np = _vectors(3, seed=1)
    x, y, z = lf.asarray(x_np), lf.asarray(y_np), lf.asarray(z_np)
    m_np = x_np.reshape(500, 2000)
    m = lf.asarray(m_np)
    with profiling.profile(PEAKS) as p:
        (x * y + z).compute()
    assert _row(p, "loop")["flops"] == 2 * N and _row(p, "loop")["transcendentals"] == 0
    with profiling.profile(PEAKS) as p:
        np.testing.assert_allclose((m * m).sum(axis=1).compute(), (m_np * m_np).sum(axis=1), rtol=1e-12)
    assert _row(p, "loop")["flops"] == 2 * m_np.size  # a multiply and an add per element
    with profiling.profile(PEAKS) as p:
        np.testing.assert_allclose(lf.tanh(m).mean(axis=1).compute(), np.tanh(m_np).mean(axis=1), rtol=1e-12)
    rows = [r for r in p.rows() if r["kind"] == "loop"]
    assert sum(r["transcendentals"] for r in rows) == m_np.size
    assert sum(r["flops"] for r in rows) == m_np.size + m_np.shape[0]  # the sum, then a divide per row


def test_flops_follow_the_size_of_the_call_when_a_plan_serves_another_size():
    small = [lf.asarray(v) for v in _vectors(3, n=5000, seed=2)]
    (small[0] * small[1] - small[2]).compute()  # the plan is made for 5000 elements
    x, y, z = (lf.asarray(v) for v in _vectors(3, n=120_000, seed=3))
    with profiling.profile(PEAKS) as p:
        (x * y - z).compute()
    row = _row(p, "loop")
    assert row["flops"] == 2 * 120_000 and row["bytes_written"] == 120_000 * 8


def test_median_agrees_with_timing_the_compute():
    x_np, y_np = _vectors(2, seed=4)
    x, y = lf.asarray(x_np), lf.asarray(y_np)
    (lf.exp(x) * y).compute()
    with profiling.profile(PEAKS) as p:
        for _ in range(9):
            (lf.exp(x) * y).compute()
    timed = []
    for _ in range(9):
        started = time.perf_counter()
        (lf.exp(x) * y).compute()
        timed.append(time.perf_counter() - started)
    ratio = _row(p, "loop")["median_s"] / statistics.median(timed)
    assert 0.2 < ratio < 5, ratio


def test_float_product_is_a_blas_row_with_2mkn_flops():
    rng = np.random.default_rng(5)
    a_np, b_np = rng.random((64, 80)), rng.random((80, 96))
    a, b = lf.asarray(a_np), lf.asarray(b_np)
    with profiling.profile(PEAKS) as p:
        np.testing.assert_allclose((a @ b).compute(), a_np @ b_np, rtol=1e-12)
    row = _row(p, "blas")
    assert row["calls"] == 1 and row["flops"] == 2 * 64 * 80 * 96
    assert row["bytes_read"] == a_np.nbytes + b_np.nbytes and row["bytes_written"] == 64 * 96 * 8


def test_compile_row_on_a_first_compile_only(tmp_path):
    x = lf.asarray(np.linspace(0.1, 0.9, 3001))
    with config.override(cache_dir=tmp_path):  # an empty disk cache: the kernel compiles
        with profiling.profile(PEAKS) as p:
            (lf.arctan(lf.cosh(x)) * 0.375 - x).compute()
        compile_row = p.rows()[-1]
        assert compile_row["kind"] == "compile" and compile_row["calls"] >= 1 and compile_row["total_s"] > 0
        with profiling.profile(PEAKS) as again:
            (lf.arctan(lf.cosh(x)) * 0.375 - x).compute()
    assert [r["kind"] for r in again.rows()] == ["loop"]


def test_bound_follows_the_roofline_rule():
    x, y, z = (lf.asarray(v) for v in _vectors(3, seed=6))
    with profiling.profile(PEAKS) as p:
        (x * y + z).compute()
    row = _row(p, "loop")  # 2 flops per 32 bytes: below any ridge over 1/16 flop per byte
    assert row["intensity"] == pytest.approx(2 / 32)
    assert row["bound"] == "memory"
    assert row["fraction_of_bound"] == pytest.approx(row["gbps"] * 1e9 / PEAKS["bandwidth"])
    p._peaks = {"bandwidth": 1e12, "flops": 1e9}  # a ridge of 0.001 flop per byte
    row = _row(p, "loop")
    assert row["bound"] == "compute"
    assert row["fraction_of_bound"] == pytest.approx(row["gflops"] * 1e9 / 1e9)


def test_table_has_the_headers_and_a_line_per_kernel(capsys):
    rng = np.random.default_rng(7)
    a, b = lf.asarray(rng.random((40, 50))), lf.asarray(rng.random((50, 30)))
    with profiling.profile(PEAKS) as p:
        lf.relu(a @ b + 1.0).compute()
    table = p.text()
    for header in ("kernel", "calls", "median ms", "total ms", "MB read", "GB/s", "GFLOP/s", "bound"):
        assert header in table
    for row in p.rows():
        assert any(line.startswith(row["name"]) for line in table.splitlines())
    assert str(p) == table
    p.table()
    assert capsys.readouterr().out == table + "\n"


def test_roofline_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    x, y = (lf.asarray(v) for v in _vectors(2, n=50_000, seed=8))
    with profiling.profile(PEAKS) as p:
        (lf.exp(x) * y).compute()
    path = p.roofline(tmp_path / "roofline.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


SMALL = {"triad_elements": 2**16, "gemm_n": 64}


def test_peak_is_measured_once_kept_and_a_wrong_file_measured_again(tmp_path, monkeypatch):
    measured = []
    triad = profiling.triad_bandwidth
    monkeypatch.setattr(profiling, "triad_bandwidth", lambda n: measured.append(n) or triad(n))
    with config.override(cache_dir=tmp_path):
        first = profiling.peak(**SMALL)
        assert first["bandwidth"] > 0 and first["flops"] > 0 and len(measured) == 1
        assert json.loads((tmp_path / "peak.json").read_text()) == first
        assert profiling.peak(**SMALL) == first and len(measured) == 1  # read back
        wrong_files = [
            "{not json",
            json.dumps({**first, "bandwidth": -1.0}),
            json.dumps({**first, "machine": {**first["machine"], "cpus": -1}}),
            json.dumps([first]),
        ]
        for count, text in enumerate(wrong_files, start=2):
            (tmp_path / "peak.json").write_text(text)
            again = profiling.peak(**SMALL)
            assert len(measured) == count and again["bandwidth"] > 0
            assert profiling._read_peak(tmp_path / "peak.json", **SMALL) == again
        profiling.peak(refresh=True, **SMALL)
        assert len(measured) == len(wrong_files) + 2


def test_run_script_profiles_the_script_and_keeps_its_exit_status(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(profiling, "peak", lambda: PEAKS)
    script = tmp_path / "script.py"
    script.write_text(
        textwrap.dedent(
            """
            import sys
            import numpy as np
            import lazyfuse as lf
            n = int(sys.argv[1])
            x = lf.asarray(np.arange(n, dtype=np.float64))
            assert np.allclose((lf.sqrt(x) + x).compute(), np.sqrt(np.arange(n)) + np.arange(n))
            sys.exit(int(sys.argv[2]))
            """
        )
    )
    assert profiling.run_script(str(script), ["20000", "0"]) == 0
    assert "sqrt_add_f64" in capsys.readouterr().out
    assert profiling.run_script(str(script), ["100", "3"]) == 3


def test_environment_setting_prints_the_run_at_exit(tmp_path):
    stored = {
        "format": profiling.PEAK_FORMAT,
        "machine": profiling.machine(),
        "triad_elements": profiling.TRIAD_ELEMENTS,
        "gemm_n": profiling.GEMM_N,
        **PEAKS,
        "measured": "by the test",
    }
    (tmp_path / "peak.json").write_text(json.dumps(stored))
    code = (
        "import numpy as np, lazyfuse as lf, lazyfuse.profile\n"
        "x = lf.asarray(np.arange(30000.0))\n"
        "for _ in range(4): (x * 2.0 + 1.0).compute()\n"
    )
    env = {**os.environ, "LAZYFUSE_PROFILE": "1", "LAZYFUSE_CACHE_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    (line,) = [ln for ln in done.stderr.splitlines() if ln.startswith("multiply_add_f64")]
    assert line.split()[2] == "4"  # calls
    assert "compile" in done.stderr and "10.0 GB/s" in done.stderr


def test_a_product_planned_at_another_size_counts_the_k_it_ran_with():
    """A plan serves other sizes: the flops of its product follow the arrays' k, not the
    k of the arrays the plan was made for."""
    rng = np.random.default_rng(6)
    (lf.asarray(rng.random((13, 7))) @ lf.asarray(rng.random((7, 5)))).compute()  # the plan, k = 7
    a_np, b_np = rng.random((64, 80)), rng.random((80, 96))
    with profiling.profile(PEAKS) as p:
        (lf.asarray(a_np) @ lf.asarray(b_np)).compute()
    assert _row(p, "blas")["flops"] == 2 * 64 * 80 * 96
