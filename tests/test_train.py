"""``lazyfuse train`` and lazyfuse.train: MiniTorch's flags and output, the three models
learning what they should, the gradient check, the picture, the CUDA target."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest

from lazyfuse import cli, config
from lazyfuse.train import Settings, dense_layers, make_task, train


def _run(capsys, *argv: str) -> str:
    assert cli.main(["train", *argv]) == 0
    return capsys.readouterr().out


def test_the_command_prints_minitorchs_lines_and_a_summary(capsys):
    out = _run(capsys, "--dataset", "simple", "--epochs", "20", "--hidden", "10")
    lines = re.findall(r"^Epoch (\d+)  loss ([\d.]+)  correct (\d+)  time/epoch ([\d.]+) ms$", out, re.M)
    assert [int(epoch) for epoch, *_ in lines] == [10, 20]
    assert all(0 <= int(correct) <= 50 for _, _, correct, _ in lines)
    assert re.search(r"^first epoch [\d.]+ ms \(tracing and compiling\), median epoch [\d.]+ ms$", out, re.M)
    assert re.search(r"^final accuracy \d+\.\d%$", out, re.M)


def test_minitorchs_split_task_is_learned():
    result = train(Settings(dataset="split", hidden=30, rate=0.5, epochs=150), log=lambda line: None)
    assert result.accuracy >= 0.9
    assert result.losses[-1] < result.losses[0]


def test_one_step_matches_the_same_step_in_numpy():
    """The first SGD step of MiniTorch's model, derived by hand in NumPy."""
    settings = Settings(dataset="xor", hidden=7, rate=0.3, epochs=1, batch=50)
    task, _ = make_task(settings)
    result = train(settings, log=lambda line: None)
    p = {k: v.copy() for k, v in dense_layers([2, 7, 7, 1], np.random.default_rng(0)).items()}
    x, y = task.train
    order = np.random.default_rng(settings.seed + 1).permutation(len(y))
    x, y = x[order], y[order]
    h1p = x @ p["w1"] + p["b1"]
    h1 = np.maximum(h1p, 0)
    h2p = h1 @ p["w2"] + p["b2"]
    h2 = np.maximum(h2p, 0)
    out = 1 / (1 + np.exp(-(h2 @ p["w3"] + p["b3"])[:, 0]))
    d_logit = (out - y)[:, None] / len(y)
    d_h2 = (d_logit @ p["w3"].T) * (h2p > 0)
    d_h1 = (d_h2 @ p["w2"].T) * (h1p > 0)
    grads = {"w3": h2.T @ d_logit, "b3": d_logit.sum(0), "w2": h1.T @ d_h2, "b2": d_h2.sum(0)}
    grads |= {"w1": x.T @ d_h1, "b1": d_h1.sum(0)}
    for k in p:
        np.testing.assert_allclose(result.params[k], p[k] - 0.3 * grads[k], rtol=1e-10, atol=1e-14)


def test_the_gradient_check_is_small(capsys):
    out = _run(capsys, "--dataset", "circle", "--epochs", "1", "--check")
    error = float(re.search(r"largest relative error ([\d.e+-]+)", out).group(1))
    assert error < 1e-4


def test_the_embedding_model_learns_the_sentiment_corpus():
    result = train(Settings(model="embedding", epochs=15), log=lambda line: None)
    assert result.test_accuracy is not None and result.test_accuracy >= 0.9


def test_digits_reach_95_percent_held_out():
    pytest.importorskip("sklearn")
    result = train(Settings(dataset="digits", epochs=20), log=lambda line: None)
    assert result.test_accuracy is not None and result.test_accuracy >= 0.95


def test_plot_writes_a_png(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    path = tmp_path / "split.png"
    out = _run(capsys, "--dataset", "split", "--epochs", "10", "--plot", str(path))
    assert f"wrote {path}" in out
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_unknown_names_are_refused():
    with pytest.raises(SystemExit):
        cli.main(["train", "--dataset", "moons"])
    with pytest.raises(ValueError, match="unknown model"):
        make_task(Settings(model="transformer"))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_the_cuda_target_trains_the_same_weights():
    """One step on the simulator (small blocks: it runs each thread as a Python thread)."""
    settings = Settings(dataset="diag", hidden=3, epochs=1, batch=12, points=12)
    on_cpu = train(settings, log=lambda line: None)
    with config.override(cuda_block=8, cuda_tile=8):
        on_cuda = train(dataclasses.replace(settings, target="cuda"), log=lambda line: None)
    for k in on_cpu.params:
        np.testing.assert_allclose(on_cuda.params[k], on_cpu.params[k], rtol=1e-10, atol=1e-14)
