"""Train a small network on one of MiniTorch's data sets (points inside a circle) with
lazyfuse, next to NumPy.

    python examples/train_circle.py             # 300 steps of batch 4096, 32 hidden units
    python examples/train_circle.py --steps 50 --batch 256

The network is ``sigmoid(relu(x @ w1 + b1) @ w2 + b2)``, trained by gradient descent on
the mean binary cross-entropy, with the gradients written out by hand (lazyfuse has no
autodiff). One training step is one ``lf.jit`` function: traced once, then each call runs
its fused kernels on the new batch and weights without building the expression again.
The same step in NumPy runs beside it from the same start, and the two must agree.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import numpy as np

import lazyfuse as lf

EPS = 1e-12  # keeps log() finite where the prediction saturates


def step(xp: Any, x: Any, y: Any, w1: Any, b1: Any, w2: Any, b2: Any, lr: float) -> tuple[Any, ...]:
    """One gradient step, written once for both libraries: ``xp`` is ``lf`` or ``np``.
    Returns the new weights and the loss before the step."""
    n = x.shape[0]
    pre = x @ w1 + b1  # (n, hidden)
    hidden = xp.maximum(pre, 0)
    p = 1 / (1 + xp.exp(-(hidden @ w2 + b2)))  # (n,)
    loss = -(y * xp.log(p + EPS) + (1 - y) * xp.log(1 - p + EPS)).mean()
    g = (p - y) / n  # d loss / d logits
    g_pre = xp.where(pre > 0, xp.expand_dims(g, 1) * w2, 0.0)  # (n, hidden)
    new = (w1 - lr * (x.T @ g_pre), b1 - lr * g_pre.sum(axis=0), w2 - lr * (hidden.T @ g), b2 - lr * g.sum())
    return (*new, loss)


lazyfuse_step = lf.jit(lambda *args: step(lf, *args))


def initial_weights(features: int, hidden: int, seed: int = 1) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    w1 = rng.normal(0, 1 / np.sqrt(features), (features, hidden))
    w2 = rng.normal(0, 1 / np.sqrt(hidden), hidden)
    return [w1, np.zeros(hidden), w2, np.zeros(())]


def circle(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """MiniTorch's "circle" data set: points in the square [-1, 1]^2, labelled 1 inside
    the circle of radius sqrt(0.5) around the centre."""
    x = np.random.default_rng(seed).uniform(-1, 1, (n, 2))
    return x, ((x**2).sum(axis=1) < 0.5).astype(np.float64)


def train(steps: int, batch: int, hidden: int, lr: float, n: int = 50_000) -> dict[str, Any]:
    """Train with lazyfuse and with NumPy from the same start on the same batches."""
    x, y = circle(n)
    ours = initial_weights(x.shape[1], hidden)
    theirs = [w.copy() for w in ours]
    rng = np.random.default_rng(2)
    losses: list[float] = []
    seconds = {"lazyfuse": 0.0, "numpy": 0.0}
    for k in range(steps):
        rows = rng.integers(0, len(x), batch)
        xb, yb = np.ascontiguousarray(x[rows]), y[rows]
        started = time.perf_counter()
        *ours, loss = lazyfuse_step(xb, yb, *ours, lr)
        middle = time.perf_counter()
        *theirs, _ = step(np, xb, yb, *theirs, lr)
        ended = time.perf_counter()
        if k:  # the first lazyfuse step traces and compiles
            seconds["lazyfuse"] += middle - started
            seconds["numpy"] += ended - middle
        losses.append(float(loss))
    hidden_x = np.maximum(x @ ours[0] + ours[1], 0)
    accuracy = float(((hidden_x @ ours[2] + ours[3] > 0) == (y > 0.5)).mean())
    return {"losses": losses, "weights": (ours, theirs), "accuracy": accuracy, "seconds": seconds}


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
