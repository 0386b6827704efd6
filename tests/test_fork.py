"""A child forked after a parallel kernel ran computes (issue 15, item 8): with GNU
OpenMP it switches to serial kernels; before, Numba killed it with SIGTERM."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import multiprocessing, sys
    import numpy as np
    import lazyfuse as lf
    from lazyfuse import config

    def work(k):
        x = np.arange(100_000.0) + k
        return float((lf.asarray(x) * 2.0).sum().compute()), config.get().parallel

    if __name__ == "__main__":
        work(0)  # a parallel kernel runs in the parent (100k elements: above serial_below)
        with multiprocessing.get_context("fork").Pool(2) as pool:
            results = pool.map_async(work, range(4)).get(120)
        expected = [float((np.arange(100_000.0) + k).sum() * 2.0) for k in range(4)]
        assert [r for r, _ in results] == expected, (results, expected)
        assert work(1)[1], "the parent keeps its parallel kernels"
        print("children parallel:", sorted({p for _, p in results}))
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fork() start method")
def test_a_child_forked_after_a_parallel_kernel_computes(tmp_path):
    script = tmp_path / "forked.py"
    script.write_text(SCRIPT)
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=240, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "children parallel:" in done.stdout


def test_a_child_keeps_parallel_kernels_where_the_threading_layer_survives_fork(monkeypatch):
    from lazyfuse import config
    from lazyfuse.runtime import forks

    monkeypatch.setattr(forks, "threads_survive_fork", lambda: True)
    with config.override(parallel=True):
        forks._after_fork_in_child()
        assert config.get().parallel
    monkeypatch.setattr(forks, "threads_survive_fork", lambda: False)
    saved = dict(config._for_process)
    try:
        with config.override(parallel=True):
            forks._after_fork_in_child()
            assert not config.get().parallel
        assert not config.get().parallel, "the change outlasts the override"
    finally:
        config._for_process.clear()
        config._for_process.update(saved)
        config._current = config.replace(config._current, parallel=True)
