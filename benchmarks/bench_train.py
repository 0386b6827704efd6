"""Training as ``lazyfuse train`` does it, against PyTorch eager and JAX jit, on the CPU:
the same model, the same initial weights, the same batches, float64.

    python3 -m pip install jax jaxlib torch        # CPU builds
    python benchmarks/bench_train.py [--quick] [--budget SECONDS] [--profile]

Workloads (lazyfuse/train.py's tasks, their loss and SGD): MiniTorch's task 3.5 network
on the "split" set (2-100-100-1, relu, relu, sigmoid, ``-log(p*y + (p-1)*(y-1))``
mean, learning rate 0.05), 50 points in batches of 10; the same network 2-1000-1000-1
on 5000 points in batches of 1000; and the embedding model (sentiment corpus, dimension
16, batches of 32, rate 0.5). lazyfuse's step is train.py's own: ``lf.jit(sgd_step(loss))``.
PyTorch's step is eager (forward, ``torch.autograd.grad``, ``w -= lr * g`` in place);
JAX's is ``jax.jit`` of ``value_and_grad`` and the update. Every epoch is one
permutation of the training set, drawn from one ``np.random.default_rng`` sequence that
all contenders share (epoch k sees the same batches everywhere); each step's batch is
gathered with NumPy and handed over, and its loss read back as a Python float (as
train.py does, for the epoch's loss).

Check: from the same initial weights, 50 steps each; every weight array must agree with
lazyfuse's to RTOL = 1e-10 of the array's largest magnitude (a finding, printed per
parameter, when not). Timing: median ms per epoch after a warm-up epoch, the contenders
in turns (``interleaved_medians``). Ratios: the peer's time over lazyfuse's (above 1:
lazyfuse is faster). ``kernels``: the calls in the plan of lazyfuse's jitted step (loop
kernels, BLAS products, host steps). ``--profile``: cProfile of 200 lazyfuse steps per
workload, the functions with the most time of their own. JAX runs with 64-bit types
enabled, PyTorch with 2 threads.
"""

from __future__ import annotations

import collections
import cProfile
import pstats
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

import lazyfuse as lf
from lazyfuse import train
from lazyfuse.timing import benchmark_arguments, interleaved_medians

try:
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
except ImportError:  # pragma: no cover - optional contender
    jax = jnp = None
try:
    import torch

    torch.set_num_threads(2)
except ImportError:  # pragma: no cover - optional contender
    torch = None

RTOL = 1e-10
CHECK_STEPS = 50
PROFILE_STEPS = 200
# Note: at MiniTorch's 0.05 the 1000-wide network diverges (loss 7.4, 66, 18, then inf at
# step 4 in all three: some p rounds to 1 where y is 0, log(0)); at 0.001 it trains (7.4
# to 0.41 in 50 steps).
BIG_RATE = 0.001

Params = dict[str, Any]
Batch = tuple[np.ndarray, ...]


@dataclass
class Workload:
    """A task of train.py with its settings filled in, and its loss written for the
    peers: ``peer_loss(ops, params, *batch)`` with ``ops`` a namespace of the framework's
    relu, sigmoid, log, float conversion and embedding lookup (:func:`torch_ops`,
    :func:`jax_ops`)."""

    name: str
    task: train.Task
    settings: train.Settings
    peer_loss: Callable[..., Any]


class Epochs:
    """One shared sequence of permutations of the training set: epoch ``k``'s order is
    the ``k``-th draw of ``np.random.default_rng(seed + 1)`` (train.py's), whoever asks
    first; so every contender's epoch ``k`` runs the same batches."""

    def __init__(self, size: int, seed: int) -> None:
        self.size, self.rng = size, np.random.default_rng(seed + 1)
        self.orders: list[np.ndarray] = []

    def order(self, k: int) -> np.ndarray:
        while len(self.orders) <= k:
            self.orders.append(self.rng.permutation(self.size))
        return self.orders[k]


# the models, written once for PyTorch and JAX ------------------------------------------


def peer_mlp_loss(ops: Any, params: Params, x: Any, y: Any) -> Any:
    """train.toy_task's loss: ``mlp`` (relu after each layer but the last), sigmoid, and
    MiniTorch's binary cross-entropy, in the same order of operations."""
    layers = len(params) // 2
    for k in range(1, layers + 1):
        x = x @ params[f"w{k}"] + params[f"b{k}"]
        if k < layers:
            x = ops.relu(x)
    p = ops.sigmoid(x).reshape(-1)
    return -ops.log(p * y + (p - 1) * (y - 1)).mean()


def peer_embedding_loss(ops: Any, params: Params, tokens: Any, lengths: Any, y: Any) -> Any:
    """train.embedding_task's loss: the mean of the sentence's word embeddings (padding
    masked), a linear layer, sigmoid, MiniTorch's binary cross-entropy."""
    words = ops.embed(tokens, params["embedding"])
    mask = ops.as_float(tokens != 0)
    mean = (words * mask[..., None]).sum(1) / lengths[:, None]
    p = ops.sigmoid(mean @ params["w"] + params["b"])
    return -ops.log(p * y + (p - 1) * (y - 1)).mean()


def torch_ops() -> Any:
    return _namespace(
        relu=torch.relu,
        sigmoid=torch.sigmoid,
        log=torch.log,
        as_float=lambda t: t.to(torch.float64),
        embed=torch.nn.functional.embedding,
    )


def jax_ops() -> Any:
    return _namespace(
        relu=jax.nn.relu,
        sigmoid=jax.nn.sigmoid,
        log=jnp.log,
        as_float=lambda t: t.astype(jnp.float64),
        embed=lambda tokens, table: table[tokens],
    )


def _namespace(**functions: Callable[..., Any]) -> Any:
    return collections.namedtuple("Ops", functions)(**functions)


# the contenders: a state (the weights) and one SGD step on a batch -----------------------


class Trainer:
    """A contender's training state. ``step(batch, lr)`` updates the weights and returns
    the loss as a Python float; ``weights()`` gives them as NumPy arrays."""

    def __init__(self, w: Workload, epochs: Epochs) -> None:
        self.w, self.epochs, self.done = w, epochs, 0
        self.batch, self.rate = int(w.settings.batch or 0), float(w.settings.rate or 0.0)

    def epoch(self) -> float:
        """The next epoch of the shared sequence; the sum of its examples' losses."""
        order = self.epochs.order(self.done)
        total = 0.0
        for start in range(0, len(order), self.batch):
            chosen = order[start : start + self.batch]
            total += self.step(self._batch(chosen), self.rate) * len(chosen)
        self.done += 1
        return total

    def steps(self, count: int) -> list[float]:
        """``count`` steps from epoch 0 of the shared sequence (whole epochs, then the
        first batches of the next: the check's and the profile's steps); their losses."""
        per_epoch = -(-self.epochs.size // self.batch)
        losses = []
        for k in range(count):
            start = (k % per_epoch) * self.batch
            chosen = self.epochs.order(k // per_epoch)[start : start + self.batch]
            losses.append(self.step(self._batch(chosen), self.rate))
        return losses

    def _batch(self, chosen: np.ndarray) -> Batch:
        return tuple(a[chosen] for a in self.w.task.train)

    def step(self, batch: Batch, lr: float) -> float:
        raise NotImplementedError

    def weights(self) -> dict[str, np.ndarray]:
        raise NotImplementedError


class LazyfuseTrainer(Trainer):
    """train.py's step: ``lf.jit(sgd_step(loss))``, weights as NumPy arrays."""

    def __init__(self, w: Workload, epochs: Epochs) -> None:
        super().__init__(w, epochs)
        self.jitted = lf.jit(train.sgd_step(w.task.loss))
        self.params = dict(w.task.params)

    def step(self, batch: Batch, lr: float) -> float:
        value, self.params = self.jitted(self.params, *batch, lr)
        return float(value)

    def weights(self) -> dict[str, np.ndarray]:
        return self.params


class TorchTrainer(Trainer):
    """PyTorch eager: forward, ``torch.autograd.grad``, ``w -= lr * g`` in place."""

    def __init__(self, w: Workload, epochs: Epochs) -> None:
        super().__init__(w, epochs)
        self.params = {k: torch.tensor(v).requires_grad_() for k, v in w.task.params.items()}
        self.ops = torch_ops()

    def step(self, batch: Batch, lr: float) -> float:
        loss = self.w.peer_loss(self.ops, self.params, *(torch.from_numpy(a) for a in batch))
        grads = torch.autograd.grad(loss, list(self.params.values()))
        with torch.no_grad():
            for p, g in zip(self.params.values(), grads, strict=True):
                p.sub_(lr * g)
        return loss.item()

    def weights(self) -> dict[str, np.ndarray]:
        return {k: v.detach().numpy() for k, v in self.params.items()}


class JaxTrainer(Trainer):
    """``jax.jit`` of ``value_and_grad`` and the update, one call per step."""

    def __init__(self, w: Workload, epochs: Epochs) -> None:
        super().__init__(w, epochs)
        ops = jax_ops()

        def step(params: Params, *batch_and_rate: Any) -> tuple[Any, Params]:
            *batch, lr = batch_and_rate
            value, grads = jax.value_and_grad(lambda p: w.peer_loss(ops, p, *batch))(params)
            return value, {k: params[k] - lr * grads[k] for k in params}

        self.jitted = jax.jit(step)
        self.params = {k: jnp.asarray(v) for k, v in w.task.params.items()}

    def step(self, batch: Batch, lr: float) -> float:
        value, self.params = self.jitted(self.params, *batch, lr)
        return float(value)

    def weights(self) -> dict[str, np.ndarray]:
        return {k: np.asarray(v) for k, v in self.params.items()}


def contenders() -> dict[str, type[Trainer]]:
    found: dict[str, type[Trainer]] = {"lazyfuse": LazyfuseTrainer}
    if jax is not None:
        found["jax"] = JaxTrainer
    if torch is not None:
        found["torch"] = TorchTrainer
    return found


# workloads ------------------------------------------------------------------------------


def workloads() -> list[Workload]:
    chosen = [
        ("MLP 2-100-100-1, 50 pts / 10", train.Settings(dataset="split", hidden=100), peer_mlp_loss),
        (
            f"MLP 2-1000-1000-1, 5000 pts / 1000, lr {BIG_RATE}",
            train.Settings(dataset="split", hidden=1000, points=5000, batch=1000, rate=BIG_RATE),
            peer_mlp_loss,
        ),
        ("embedding 91x16, 1600 sents / 32", train.Settings(model="embedding"), peer_embedding_loss),
    ]
    found = []
    for name, settings, loss in chosen:
        task, filled = train.make_task(settings)
        found.append(Workload(name, task, filled, loss))
    return found


def kernels(w: Workload) -> str:
    """The calls of lazyfuse's jitted step's plan, by kind: ``21 (13 loop, 8 matmul)``."""
    trainer = LazyfuseTrainer(w, Epochs(len(w.task.train[0]), w.settings.seed))
    trainer.steps(1)
    (trace,) = trainer.jitted.traces.values()  # type: ignore[attr-defined]
    kinds = collections.Counter(call.spec.kind for call in trace.plan.calls)
    return f"{len(trace.plan.calls)} ({', '.join(f'{n} {kind}' for kind, n in sorted(kinds.items()))})"


# the check ------------------------------------------------------------------------------


def check(w: Workload, kinds: dict[str, type[Trainer]]) -> list[str]:
    """Each contender's weights after CHECK_STEPS steps against lazyfuse's: a line per
    contender, its worst parameter and how far (max |a - b| over max |lazyfuse's|)."""
    epochs = Epochs(len(w.task.train[0]), w.settings.seed)
    trained, lines = {}, []
    for who, kind in kinds.items():
        trainer = kind(w, epochs)
        losses = np.asarray(trainer.steps(CHECK_STEPS))
        trained[who] = trainer.weights()
        if not np.isfinite(losses).all():
            first = int(np.argmin(np.isfinite(losses))) + 1
            lines.append(f"  {who:8s} loss not finite from step {first} ({losses[first - 1]}): not checked")
    if lines:
        return lines
    ours = trained.pop("lazyfuse")
    for who, theirs in trained.items():
        errors = {k: _relative(theirs[k], ours[k]) for k in ours}
        worst = max(errors, key=errors.__getitem__)
        verdict = "agree" if errors[worst] <= RTOL else "DISAGREE"
        detail = ", ".join(f"{k} {e:.1e}" for k, e in errors.items())
        lines.append(f"  {who:8s} vs lazyfuse after {CHECK_STEPS} steps: {verdict} (worst {worst}; {detail})")
    return lines


def _relative(theirs: np.ndarray, ours: np.ndarray) -> float:
    scale = float(np.max(np.abs(ours))) if ours.size else 0.0
    return float(np.max(np.abs(theirs - ours)) / scale) if scale else float(np.max(np.abs(theirs)))


# profiling ------------------------------------------------------------------------------


def profile(w: Workload, top: int = 14) -> None:
    """cProfile of PROFILE_STEPS lazyfuse steps (after a warm-up epoch), by own time."""
    trainer = LazyfuseTrainer(w, Epochs(len(w.task.train[0]), w.settings.seed))
    trainer.epoch()
    profiler = cProfile.Profile()
    profiler.enable()
    trainer.steps(PROFILE_STEPS)
    profiler.disable()
    print(f"\n{w.name}: cProfile of {PROFILE_STEPS} lazyfuse steps")
    pstats.Stats(profiler, stream=sys.stdout).sort_stats("tottime").print_stats(top)


# running --------------------------------------------------------------------------------


def timings(w: Workload, kinds: dict[str, type[Trainer]], quick: bool, budget: float) -> dict[str, float]:
    """Median seconds per epoch of each contender, in turns, each on its own weights
    (fresh from the initial ones) and all on the shared sequence of epochs."""
    epochs = Epochs(len(w.task.train[0]), w.settings.seed)
    trainers = [kind(w, epochs) for kind in kinds.values()]
    medians = interleaved_medians(
        [t.epoch for t in trainers], repeats=3 if quick else 5, budget=0.0 if quick else budget
    )
    return dict(zip(kinds, medians, strict=True))


def _row(name: str, kernel_calls: str, times: dict[str, float]) -> str:
    ours = times["lazyfuse"]
    peers = ("jax", "torch")
    cells = [f"{times[p] * 1e3:9.2f}" if p in times else f"{'':9s}" for p in peers]
    ratios = [f"{times[p] / ours:7.2f}x" if p in times else f"{'':8s}" for p in peers]
    return f"{name:45s} {kernel_calls:29s} {ours * 1e3:11.2f} {cells[0]} {cells[1]} {ratios[0]} {ratios[1]}"


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    profiling = "--profile" in arguments  # Note: benchmark_arguments is the benchmarks' shared parser
    args = benchmark_arguments(__doc__, [a for a in arguments if a != "--profile"])
    kinds = contenders()
    versions = [f"lazyfuse {lf.__version__}", f"numpy {np.__version__}"]
    versions.append(f"jax {jax.__version__}" if jax else "jax absent")
    threads = f" ({torch.get_num_threads()} threads)" if torch else ""
    versions.append(f"torch {torch.__version__}{threads}" if torch else "torch absent")
    print(", ".join(versions))
    found = workloads()
    rows = []
    for w in found:
        print(f"{w.name}:")
        print("\n".join(check(w, kinds)))
        rows.append(_row(w.name, kernels(w), timings(w, kinds, args.quick, args.budget)))
    header = (
        f"{'workload (ms per epoch)':45s} {'kernels':29s} {'lazyfuse':>11s} {'jax':>9s} {'torch':>9s} "
        f"{'jax/lf':>8s} {'torch/lf':>8s}"
    )
    print("\n".join(["", header, "-" * len(header), *rows]))
    if profiling:
        for w in found:
            profile(w)
    return 0


if __name__ == "__main__":
    sys.exit(main())
