"""Make the pictures of docs/seeing-what-runs.md (the README shows the first): the kernels of one
training step's gradient (docs/images/mlp_grad.png), a profile table of that step
(printed), and its roofline (docs/images/roofline.png).

    python examples/seeing_what_runs.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

import lazyfuse as lf

IMAGES = Path(__file__).resolve().parent.parent / "docs" / "images"


def loss(params: dict[str, lf.Tensor], x: np.ndarray, labels: np.ndarray) -> lf.Tensor:
    """A two-layer classifier's mean cross-entropy."""
    hidden = lf.tanh(x @ params["w1"] + params["b1"])
    logits = hidden @ params["w2"] + params["b2"]
    return -lf.log_softmax(logits, axis=1)[lf.arange(len(labels)), labels].mean()


def main() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4096, 256))
    labels = rng.integers(0, 10, 4096)
    params = {
        "w1": rng.standard_normal((256, 512)) * 0.05,
        "b1": np.zeros(512),
        "w2": rng.standard_normal((512, 10)) * 0.05,
        "b2": np.zeros(10),
    }
    value, grads = lf.value_and_grad(loss)(params, x, labels)
    IMAGES.mkdir(parents=True, exist_ok=True)
    lf.visualize(value, grads, filename=IMAGES / "mlp_grad.png")
    print(lf.explain(value, grads, graph=False))
    step = lf.jit(lf.value_and_grad(loss))
    step(params, x, labels)  # traced and compiled outside the profile
    with lf.profile() as p:
        for _ in range(20):
            step(params, x, labels)
    p.table()
    p.roofline(IMAGES / "roofline.png")
    print(f"wrote {IMAGES / 'mlp_grad.png'} and {IMAGES / 'roofline.png'}")


if __name__ == "__main__":
    main()
