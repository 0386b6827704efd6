"""Value and gradients: lazyfuse's ``value_and_grad`` against JAX's ``jit(value_and_grad)``
and PyTorch's eager ``backward()``, on the CPU, in one run, in turns.

    python3 -m pip install jax jaxlib torch        # CPU builds
    python benchmarks/bench_grad.py [--quick] [--budget SECONDS]

Workloads: softmax cross-entropy over integer labels (float32 logits, gradient with
respect to them), layernorm with scale and shift weighted by a fixed random matrix
(float64, gradients with respect to x, gamma and beta), and one training epoch of
MiniTorch's task-3.5 network (2-H-H-1, relu, relu, sigmoid, mean binary cross-entropy,
SGD) at two sizes, float64. Every contender returns the value and every gradient (an
epoch: each step's loss and the final weights) as its own arrays; lazyfuse's come from
one plan (``lf.compute(value, *grads)``; an epoch's steps from ``lf.jit``). Each
contender's results are checked against lazyfuse's first (relative 1e-6 of each array's
largest magnitude), then all run in turns (``interleaved_medians``). JAX runs with 64-bit
types enabled, PyTorch with 2 threads. ``kernels``: how many kernels lazyfuse's plan runs
for one value and its gradients (one step, for the epochs), from ``lf.explain``. Ratios
are the peer's time over lazyfuse's (above 1: lazyfuse is faster).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

import lazyfuse as lf
from lazyfuse.timing import benchmark_arguments, interleaved_medians

try:
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
except ImportError:  # pragma: no cover - optional contender
    jax = jnp = None
try:
    import torch
    import torch.nn.functional as functional

    torch.set_num_threads(2)
except ImportError:  # pragma: no cover - optional contender
    torch = functional = None

RTOL = 1e-6
EPS = 1e-5  # layernorm's
LEARNING_RATE = 0.05

Results = Sequence[Any]  # the value, then each gradient (or each loss, then each weight)


@dataclass
class Workload:
    """A name, each contender's call (returning its results as its own arrays), lazyfuse's
    kernels per value and gradients, and the issue's target against JAX and PyTorch."""

    name: str
    contenders: dict[str, Callable[[], Results]]
    kernels: int
    target: tuple[float, float]


def _kernel_count(*tensors: lf.Tensor) -> int:
    """The ``kernels (N)`` line of ``lf.explain``: N kernels run per plan (BLAS products
    among them; host steps not)."""
    found = re.search(r"^kernels \((\d+)\):", lf.explain(*tensors), re.MULTILINE)
    assert found is not None, "lf.explain printed no 'kernels (N)' line"
    return int(found.group(1))


# softmax cross-entropy ------------------------------------------------------------------


def cross_entropy(quick: bool, rng: np.random.Generator) -> Workload:
    rows, classes = (400, 250) if quick else (4000, 2500)
    z = rng.standard_normal((rows, classes)).astype(np.float32)
    labels = rng.integers(0, classes, rows)

    def lf_loss(logits: lf.Tensor) -> lf.Tensor:
        return -lf.log_softmax(logits, axis=1)[lf.arange(rows), labels].mean()

    lf_value_and_grad = lf.value_and_grad(lf_loss)
    zt = lf.asarray(z)
    found: dict[str, Callable[[], Results]] = {"lazyfuse": lambda: lf.compute(*lf_value_and_grad(zt))}
    if jax is not None:

        def jax_loss(logits: Any, y: Any) -> Any:
            return -jnp.mean(jax.nn.log_softmax(logits, axis=1)[jnp.arange(rows), y])

        jax_step = jax.jit(jax.value_and_grad(jax_loss))
        zj, yj = jnp.asarray(z), jnp.asarray(labels)
        found["jax"] = lambda: jax.block_until_ready(jax_step(zj, yj))
    if torch is not None:
        zp, yp = torch.from_numpy(z.copy()).requires_grad_(), torch.from_numpy(labels)

        def torch_step() -> Results:
            zp.grad = None
            loss = functional.cross_entropy(zp, yp)
            loss.backward()
            return loss.detach(), zp.grad

        found["torch"] = torch_step
    kernels = _kernel_count(*lf_value_and_grad(zt))
    return Workload(f"cross-entropy {rows}x{classes} f32", found, kernels, (1.5, 2.0))


# layernorm ----------------------------------------------------------------------------


def _layernorm(xp: Any, x: Any, gamma: Any, beta: Any, weights: Any) -> Any:
    """``sum((layernorm(x) * gamma + beta) * weights)``: the weights make the gradient
    with respect to ``x`` nontrivial (with a plain sum it is zero)."""
    centered = x - x.mean(axis=1, keepdims=True)
    normed = centered / xp.sqrt((centered * centered).mean(axis=1, keepdims=True) + EPS)
    return ((normed * gamma + beta) * weights).sum()


def layernorm(quick: bool, rng: np.random.Generator) -> Workload:
    rows, cols = (400, 250) if quick else (4000, 2500)
    x, weights = rng.standard_normal((rows, cols)), rng.standard_normal((rows, cols))
    gamma, beta = rng.uniform(0.5, 1.5, cols), rng.standard_normal(cols)
    lf_value_and_grad = lf.value_and_grad(
        lambda *a: _layernorm(lf, *a, lf.asarray(weights)), argnums=(0, 1, 2)
    )
    lf_args = [lf.asarray(a) for a in (x, gamma, beta)]

    def lf_step() -> Results:
        value, grads = lf_value_and_grad(*lf_args)
        return lf.compute(value, *grads)

    found: dict[str, Callable[[], Results]] = {"lazyfuse": lf_step}
    if jax is not None:
        jax_step = jax.jit(jax.value_and_grad(lambda *a: _layernorm(jnp, *a), argnums=(0, 1, 2)))
        jax_args = [jnp.asarray(a) for a in (x, gamma, beta, weights)]
        found["jax"] = lambda: _flat(jax.block_until_ready(jax_step(*jax_args)))
    if torch is not None:
        xp, gp, bp = (torch.from_numpy(a.copy()).requires_grad_() for a in (x, gamma, beta))
        wp = torch.from_numpy(weights)

        def torch_step() -> Results:
            for p in (xp, gp, bp):
                p.grad = None
            loss = (functional.layer_norm(xp, (cols,), gp, bp, eps=EPS) * wp).sum()
            loss.backward()
            return loss.detach(), xp.grad, gp.grad, bp.grad

        found["torch"] = torch_step
    value, grads = lf_value_and_grad(*lf_args)
    kernels = _kernel_count(value, *grads)
    return Workload(f"layernorm {rows}x{cols} f64 (x, gamma, beta)", found, kernels, (1.5, 2.0))


def _flat(value_and_grads: Any) -> Results:
    value, grads = value_and_grads
    return (value, *grads)


# MiniTorch's network, one epoch -------------------------------------------------------


def _split_dataset(points: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """MiniTorch's "split" data set: points in the unit square, label 1 where x0 < 0.2
    or x0 > 0.8."""
    x = rng.uniform(0.0, 1.0, (points, 2))
    return x, ((x[:, 0] < 0.2) | (x[:, 0] > 0.8)).astype(np.float64)


def _initial_weights(hidden: int, rng: np.random.Generator) -> list[np.ndarray]:
    """w1, b1, w2, b2, w3, b3: weights uniform in [-0.5, 0.5), biases 0.1."""
    shapes = [(2, hidden), (hidden, hidden), (hidden, 1)]
    found = []
    for rows, cols in shapes:
        found += [rng.uniform(-0.5, 0.5, (rows, cols)), np.full(cols, 0.1)]
    return found


def _mlp_loss(xp: Any, w1: Any, b1: Any, w2: Any, b2: Any, w3: Any, b3: Any, x: Any, y: Any) -> Any:
    """Mean binary cross-entropy of ``p = sigmoid(relu(relu(x w1 + b1) w2 + b2) w3 + b3)``,
    written once for the three namespaces.

    Note: ``log(p)`` is ``log_sigmoid(z)`` and ``log(1 - p)`` is ``log_sigmoid(-z)``, the
    same loss; with the 1000-wide layers and weights in [-0.5, 0.5) some ``z`` exceed 37,
    where ``1 - sigmoid(z)`` is 0 in float64 and MiniTorch's ``log(1 - p)`` gives NaN."""
    relu, log_sigmoid = _activations(xp)
    h = relu(x @ w1 + b1)
    h = relu(h @ w2 + b2)
    z = (h @ w3 + b3).reshape(-1)
    return -(y * log_sigmoid(z) + (1.0 - y) * log_sigmoid(-z)).mean()


def _activations(xp: Any) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    """Each namespace's own relu and log-sigmoid."""
    if xp is lf:
        return lf.relu, lf.log_sigmoid
    return (jax.nn.relu, jax.nn.log_sigmoid) if xp is jnp else (torch.relu, functional.logsigmoid)


def _lf_step(*arrays: lf.Tensor) -> tuple[lf.Tensor, ...]:
    """One SGD step: the loss and the six updated weights, a flat tuple for ``lf.jit``."""
    weights, (x, y) = arrays[:6], arrays[6:]
    loss, grads = lf.value_and_grad(lambda *w: _mlp_loss(lf, *w, x, y), argnums=tuple(range(6)))(*weights)
    return (loss, *(w - LEARNING_RATE * g for w, g in zip(weights, grads, strict=True)))


def _jax_step(weights: tuple[Any, ...], x: Any, y: Any) -> tuple[Any, tuple[Any, ...]]:
    loss, grads = jax.value_and_grad(lambda w: _mlp_loss(jnp, *w, x, y))(weights)
    return loss, tuple(w - LEARNING_RATE * g for w, g in zip(weights, grads, strict=True))


def _epoch(step: Callable[[Any, Any, Any], tuple[Any, Any]], weights: Any, batches: list[Any]) -> Results:
    """Run ``step`` over every batch from ``weights``: each step's loss, then the final
    weights (every call of an epoch starts from the same initial weights)."""
    losses = []
    for x, y in batches:
        loss, weights = step(weights, x, y)
        losses.append(loss)
    return (*losses, *weights)


def mlp(hidden: int, points: int, batch: int, rng: np.random.Generator) -> Workload:
    x, y = _split_dataset(points, rng)
    batches = [(x[i : i + batch], y[i : i + batch]) for i in range(0, points, batch)]
    initial = _initial_weights(hidden, rng)
    lf_jitted = lf.jit(_lf_step)

    def lf_step(weights: Any, xb: Any, yb: Any) -> tuple[Any, Any]:
        loss, *updated = lf_jitted(*weights, xb, yb)
        return loss, updated

    found: dict[str, Callable[[], Results]] = {"lazyfuse": lambda: _epoch(lf_step, initial, batches)}
    if jax is not None:
        jax_jitted = jax.jit(_jax_step)
        jax_batches = [(jnp.asarray(a), jnp.asarray(b)) for a, b in batches]
        jax_initial = tuple(jnp.asarray(w) for w in initial)
        found["jax"] = lambda: jax.block_until_ready(_epoch(jax_jitted, jax_initial, jax_batches))
    if torch is not None:
        torch_batches = [(torch.from_numpy(a), torch.from_numpy(b)) for a, b in batches]
        torch_initial = [torch.from_numpy(w).requires_grad_() for w in initial]
        found["torch"] = lambda: _epoch(_torch_step, torch_initial, torch_batches)
    kernels = _kernel_count(*_lf_step(*(lf.asarray(a) for a in (*initial, *batches[0]))))
    name = f"MLP 2-{hidden}-{hidden}-1 epoch, {points} pts / {batch}"
    return Workload(name, found, kernels, (1.0, 1.0))


def _torch_step(weights: list[Any], x: Any, y: Any) -> tuple[Any, list[Any]]:
    """PyTorch's eager step: forward, ``torch.autograd.grad`` (``backward()`` without
    accumulating into ``.grad``), then new weights, as the other two make (an epoch then
    starts from the same initial weights without copying them)."""
    loss = _mlp_loss(torch, *weights, x, y)
    grads = torch.autograd.grad(loss, weights)
    with torch.no_grad():
        updated = [(w - LEARNING_RATE * g).requires_grad_() for w, g in zip(weights, grads, strict=True)]
    return loss.detach(), updated


# running --------------------------------------------------------------------------------


def workloads(quick: bool) -> list[Workload]:
    rng = np.random.default_rng(0)
    found = [cross_entropy(quick, rng), layernorm(quick, rng), mlp(100, 50, 10, rng)]
    found.append(mlp(100, 500, 100, rng) if quick else mlp(1000, 5000, 1000, rng))
    return found


def _as_numpy(value: Any) -> np.ndarray:
    if torch is not None and isinstance(value, torch.Tensor):
        return value.detach().numpy()
    return np.asarray(value)


def check_against_lazyfuse(w: Workload) -> None:
    """Every contender's results against lazyfuse's, each array to RTOL of its largest
    magnitude (a gradient's smallest entries carry no relative precision in float32)."""
    expected = [np.asarray(a) for a in w.contenders["lazyfuse"]()]
    for who, fn in w.contenders.items():
        got = [_as_numpy(a) for a in fn()]
        assert len(got) == len(expected), f"{w.name}: {who} returned {len(got)} arrays"
        for k, (mine, ours) in enumerate(zip(got, expected, strict=True)):
            scale = float(np.max(np.abs(ours))) if ours.size else 0.0
            np.testing.assert_allclose(
                mine, ours, rtol=RTOL, atol=RTOL * scale, err_msg=f"{w.name}: {who}, result {k}"
            )


def main(argv: list[str] | None = None) -> int:
    args = benchmark_arguments(__doc__, argv)
    versions = [f"lazyfuse {lf.__version__}", f"numpy {np.__version__}"]
    versions.append(f"jax {jax.__version__}" if jax else "jax absent")
    threads = f" ({torch.get_num_threads()} threads)" if torch else ""
    versions.append(f"torch {torch.__version__}{threads}" if torch else "torch absent")
    print(", ".join(versions))
    header = (
        f"{'workload':44s} {'kernels':>7s} {'lazyfuse ms':>11s} {'jax ms':>8s} {'torch ms':>8s} "
        f"{'jax/lf':>7s} {'torch/lf':>8s}  target (jax, torch)"
    )
    print(header)
    print("-" * len(header))
    for w in workloads(args.quick):
        check_against_lazyfuse(w)
        medians = interleaved_medians(list(w.contenders.values()), budget=args.budget)
        times = dict(zip(w.contenders, medians, strict=True))
        ours = times["lazyfuse"]
        cells = [f"{times[p] * 1e3:8.2f}" if p in times else f"{'':8s}" for p in ("jax", "torch")]
        ratios = [f"{times[p] / ours:6.2f}x" if p in times else f"{'':7s}" for p in ("jax", "torch")]
        print(
            f"{w.name:44s} {w.kernels:7d} {ours * 1e3:11.2f} {cells[0]} {cells[1]} {ratios[0]} "
            f"{ratios[1]:>8s}  >= {w.target[0]}x, {w.target[1]}x"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
