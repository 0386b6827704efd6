"""Train a small network on one of MiniTorch's data sets (points inside a circle) with
lazyfuse, next to NumPy.

    python examples/train_circle.py             # 300 steps of batch 4096, 32 hidden units
    python examples/train_circle.py --steps 50 --batch 256

The network is ``relu(x @ w1 + b1) @ w2 + b2`` (the logit of "inside"), trained by
gradient descent on the mean binary cross-entropy. ``lf.value_and_grad`` gives the loss
and its gradient with respect to the dict of weights; one training step, gradient and
update, is one ``lf.jit`` function: traced once, then each call runs its fused kernels on
the new batch, weights and learning rate without building the expression again. The same
step in NumPy, with the gradient derived by hand, runs beside it from the same start, and
the two must agree.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import numpy as np

import lazyfuse as lf

Params = dict[str, Any]  # "w1", "b1", "w2", "b2": arrays, or tensors inside a traced step


def loss(params: Params, x: Any, y: Any) -> lf.Tensor:
    """The mean binary cross-entropy of the labels ``y`` (0 or 1) given the logits ``z``:
    ``log(1 + e^z) - y z``, which never takes the log of a saturated sigmoid."""
    hidden = lf.relu(x @ params["w1"] + params["b1"])
    z = hidden @ params["w2"] + params["b2"]
    return (lf.softplus(z) - y * z).mean()


@lf.jit
def lazyfuse_step(params: Params, x: Any, y: Any, lr: float) -> tuple[lf.Tensor, Params]:
    """One gradient step: the loss before it and the new weights."""
    value, grads = lf.value_and_grad(loss)(params, x, y)
    return value, {name: params[name] - lr * grads[name] for name in params}


def numpy_step(params: Params, x: np.ndarray, y: np.ndarray, lr: float) -> tuple[float, Params]:
    """The same step in NumPy, with the gradient derived by hand: the check on lazyfuse's."""
    pre = x @ params["w1"] + params["b1"]
    hidden = np.maximum(pre, 0)
    z = hidden @ params["w2"] + params["b2"]
    value = np.mean(np.logaddexp(z, 0) - y * z)
    g = (1 / (1 + np.exp(-z)) - y) / len(x)  # d loss / d z
    g_pre = np.where(pre > 0, np.outer(g, params["w2"]), 0.0)
    grads = {"w1": x.T @ g_pre, "b1": g_pre.sum(axis=0), "w2": hidden.T @ g, "b2": g.sum()}
    return value, {name: params[name] - lr * grads[name] for name in params}


def initial_weights(features: int, hidden: int, seed: int = 1) -> Params:
    rng = np.random.default_rng(seed)
    w1 = rng.normal(0, 1 / np.sqrt(features), (features, hidden))
    w2 = rng.normal(0, 1 / np.sqrt(hidden), hidden)
    return {"w1": w1, "b1": np.zeros(hidden), "w2": w2, "b2": np.zeros(())}


def circle(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """MiniTorch's "circle" data set: points in the square [-1, 1]^2, labelled 1 inside
    the circle of radius sqrt(0.5) around the centre."""
    x = np.random.default_rng(seed).uniform(-1, 1, (n, 2))
    return x, ((x**2).sum(axis=1) < 0.5).astype(np.float64)


def train(steps: int, batch: int, hidden: int, lr: float, n: int = 50_000) -> dict[str, Any]:
    """Train with lazyfuse and with NumPy from the same start on the same batches;
    ``weights`` holds both final sets as lists in the same order."""
    x, y = circle(n)
    ours = initial_weights(x.shape[1], hidden)
    theirs = dict(ours)
    rng = np.random.default_rng(2)
    losses: list[float] = []
    seconds = {"lazyfuse": 0.0, "numpy": 0.0}
    for k in range(steps):
        rows = rng.integers(0, len(x), batch)
        xb, yb = np.ascontiguousarray(x[rows]), y[rows]
        started = time.perf_counter()
        value, ours = lazyfuse_step(ours, xb, yb, lr)
        middle = time.perf_counter()
        _, theirs = numpy_step(theirs, xb, yb, lr)
        ended = time.perf_counter()
        if k:  # the first lazyfuse step traces and compiles
            seconds["lazyfuse"] += middle - started
            seconds["numpy"] += ended - middle
        losses.append(float(value))
    hidden_x = np.maximum(x @ ours["w1"] + ours["b1"], 0)
    accuracy = float(((hidden_x @ ours["w2"] + ours["b2"] > 0) == (y > 0.5)).mean())
    names = sorted(ours)
    weights = ([ours[k] for k in names], [theirs[k] for k in names])
    return {"losses": losses, "weights": weights, "accuracy": accuracy, "seconds": seconds}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--lr", type=float, default=2.0)
    args = parser.parse_args(argv)
    result = train(args.steps, args.batch, args.hidden, args.lr)
    losses = result["losses"]
    for k in range(0, len(losses), max(1, len(losses) // 10)):
        print(f"step {k:4d}  loss {losses[k]:.4f}")
    ours, theirs = result["weights"]
    drift = max(float(np.max(np.abs(a - b))) for a, b in zip(ours, theirs, strict=True))
    spent = result["seconds"]
    per_step = {name: 1e3 * s / max(1, args.steps - 1) for name, s in spent.items()}
    print(f"final loss {losses[-1]:.4f}, training accuracy {result['accuracy']:.3f}")
    print(f"largest difference from NumPy's weights: {drift:.2e}")
    print(
        f"ms per step: lazyfuse {per_step['lazyfuse']:.3f}, NumPy {per_step['numpy']:.3f} "
        f"({per_step['numpy'] / per_step['lazyfuse']:.2f}x NumPy)"
    )
    return 0 if drift < 1e-8 else 1


if __name__ == "__main__":
    sys.exit(main())
