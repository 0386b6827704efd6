"""``lazyfuse train``: MiniTorch's task 3.5 (a 2 -> H -> H -> 1 network on its toy data
sets), the lecture's embedding model, and a digits classifier, trained with lazyfuse.

One training step is one ``lf.jit`` of ``lf.value_and_grad`` and the SGD update: traced
and compiled in the first epoch, then run with new batches and learning rates as they
come. Usable from Python: ``train(Settings(dataset="split", hidden=100))`` returns a
:class:`Result`; ``main`` is the command line.
"""

from __future__ import annotations

import dataclasses
import itertools
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tqdm import tqdm

import lazyfuse as lf
from lazyfuse import datasets
from lazyfuse.pytree import flatten, unflatten

Params = dict[str, np.ndarray]


@dataclass(frozen=True)
class Settings:
    """What to train and how; ``None`` takes the model's default (:data:`DEFAULTS`)."""

    dataset: str = "simple"
    model: str = "mlp"
    hidden: int | None = None
    rate: float | None = None
    epochs: int | None = None
    batch: int | None = None
    points: int = 50
    target: str = "cpu"
    seed: int = 0
    every: int = 10  # a log line every this many epochs


# MiniTorch's flags for the toy sets; the other models' sizes and rates train them well.
DEFAULTS = {
    "mlp": {"hidden": 10, "rate": 0.05, "epochs": 500, "batch": 10},
    "embedding": {"hidden": 16, "rate": 0.5, "epochs": 40, "batch": 32},
    "digits": {"hidden": 64, "rate": 0.1, "epochs": 40, "batch": 32},
}


@dataclass
class Task:
    """A model and its data: ``loss(params, *batch)`` (a mean over the batch) and
    ``predict(params, *inputs)`` (labels); ``train``/``test`` are (inputs..., labels)."""

    name: str
    params: Params
    loss: Callable[..., lf.Tensor]
    predict: Callable[..., lf.Tensor]
    train: tuple[np.ndarray, ...]
    test: tuple[np.ndarray, ...] | None = None


@dataclass
class Result:
    params: Params
    losses: list[float] = field(default_factory=list)  # per epoch: the sum over its examples
    epoch_seconds: list[float] = field(default_factory=list)
    train_correct: int = 0
    train_size: int = 0
    test_accuracy: float | None = None
    gradient_error: float | None = None

    @property
    def first_epoch(self) -> float:
        """Seconds of the first epoch: tracing and compiling the step, then training."""
        return self.epoch_seconds[0]

    @property
    def median_epoch(self) -> float:
        rest = self.epoch_seconds[1:] or self.epoch_seconds
        return float(np.median(rest))

    @property
    def accuracy(self) -> float:
        return self.test_accuracy if self.test_accuracy is not None else self.train_correct / self.train_size


# Models ---------------------------------------------------------------------------------


def dense_layers(sizes: list[int], rng: np.random.Generator) -> Params:
    """MiniTorch's Linear layers: weights uniform in [-0.5, 0.5), biases 0.1."""
    params = {}
    for k, (m, n) in enumerate(itertools.pairwise(sizes), start=1):
        params[f"w{k}"] = rng.random((m, n)) - 0.5
        params[f"b{k}"] = np.full(n, 0.1)
    return params


def mlp(params: Params, x: lf.Tensor) -> lf.Tensor:
    """relu after each layer but the last, whose output stays linear (the logits)."""
    layers = len(params) // 2
    for k in range(1, layers + 1):
        x = x @ params[f"w{k}"] + params[f"b{k}"]
        if k < layers:
            x = lf.relu(x)
    return x


def binary_cross_entropy(p: lf.Tensor, y: lf.Tensor) -> lf.Tensor:
    """MiniTorch's loss: ``-log(p)`` where the label is 1, ``-log(1 - p)`` where it is 0."""
    return -lf.log(p * y + (p - 1) * (y - 1)).mean()


def toy_task(settings: Settings, hidden: int) -> Task:
    data = datasets.toy(settings.dataset, settings.points, seed=settings.seed)
    params = dense_layers([2, hidden, hidden, 1], np.random.default_rng(settings.seed))

    def probability(params: Params, x: lf.Tensor) -> lf.Tensor:
        return lf.sigmoid(mlp(params, x)).reshape(-1)

    def loss(params: Params, x: lf.Tensor, y: lf.Tensor) -> lf.Tensor:
        return binary_cross_entropy(probability(params, x), y)

    def predict(params: Params, x: lf.Tensor) -> lf.Tensor:
        return (probability(params, x) > 0.5).astype(np.float64)

    return Task(settings.dataset, params, loss, predict, (data.x, data.y))


def embedding_task(settings: Settings, hidden: int) -> Task:
    """The lecture's NLP model: an embedding per word, the mean over the sentence's words
    (padding masked), a linear layer and a sigmoid."""
    corpus = datasets.sentiment(seed=settings.seed)
    rng = np.random.default_rng(settings.seed)
    params = {
        "embedding": (rng.random((len(corpus.vocabulary), hidden)) - 0.5),
        "w": rng.random(hidden) - 0.5,
        "b": np.full((), 0.1),
    }

    def probability(params: Params, tokens: lf.Tensor, lengths: lf.Tensor) -> lf.Tensor:
        words = params["embedding"][tokens]  # (sentences, length, hidden): a gather
        mask = (tokens != 0).astype(np.float64)
        mean = (words * lf.expand_dims(mask, -1)).sum(axis=1) / lf.expand_dims(lengths, -1)
        return lf.sigmoid(mean @ params["w"] + params["b"])

    def loss(params: Params, tokens: lf.Tensor, lengths: lf.Tensor, y: lf.Tensor) -> lf.Tensor:
        return binary_cross_entropy(probability(params, tokens, lengths), y)

    def predict(params: Params, tokens: lf.Tensor, lengths: lf.Tensor) -> lf.Tensor:
        return (probability(params, tokens, lengths) > 0.5).astype(np.float64)

    inputs = (corpus.tokens, corpus.lengths.astype(np.float64), corpus.labels)
    cut = len(corpus.labels) * 4 // 5
    train = tuple(a[:cut] for a in inputs)
    test = tuple(a[cut:] for a in inputs)
    return Task("sentiment", params, loss, predict, train, test)


def digits_task(settings: Settings, hidden: int) -> Task:
    """scikit-learn's 8x8 digits: a 64 -> H -> 10 softmax classifier, 20% held out."""
    split = datasets.digits(seed=settings.seed)
    params = dense_layers([64, hidden, 10], np.random.default_rng(settings.seed))

    def loss(params: Params, x: lf.Tensor, labels: lf.Tensor) -> lf.Tensor:
        logits = mlp(params, x)
        return -lf.log_softmax(logits)[lf.arange(labels.shape[0]), labels].mean()

    def predict(params: Params, x: lf.Tensor) -> lf.Tensor:
        return lf.argmax(mlp(params, x), axis=1)

    return Task("digits", params, loss, predict, (split.x_train, split.y_train), (split.x_test, split.y_test))


def make_task(settings: Settings) -> tuple[Task, Settings]:
    """The task and the settings with the model's defaults filled in."""
    model = "digits" if settings.dataset == "digits" else settings.model
    if model not in DEFAULTS:
        raise ValueError(f"train: unknown model {settings.model!r}; choose one of mlp, embedding")
    filled = dataclasses.replace(
        settings, **{k: v for k, v in DEFAULTS[model].items() if getattr(settings, k) is None}
    )
    maker = {"mlp": toy_task, "embedding": embedding_task, "digits": digits_task}[model]
    return maker(filled, filled.hidden), filled  # type: ignore[arg-type]


# Training -------------------------------------------------------------------------------


def sgd_step(loss: Callable[..., lf.Tensor]) -> Callable[..., Any]:
    """``step(params, *batch, lr) -> (loss, new params)``: value_and_grad and the update."""

    def step(params: Params, *batch_and_rate: Any) -> tuple[lf.Tensor, Params]:
        *batch, lr = batch_and_rate
        value, grads = lf.value_and_grad(loss)(params, *batch)
        return value, {k: params[k] - lr * grads[k] for k in params}

    step.__qualname__ = f"sgd_step({getattr(loss, '__qualname__', 'loss')})"
    return step


def train(
    settings: Settings,
    log: Callable[[str], None] = print,
    check: bool = False,
    made: tuple[Task, Settings] | None = None,
) -> Result:
    """Train ``settings``' model; ``log`` gets a line every ``settings.every`` epochs;
    ``check`` compares the first step's gradients with central differences; ``made``:
    :func:`make_task`'s result for ``settings``, when the caller has it."""
    task, settings = made if made is not None else make_task(settings)
    step = lf.jit(sgd_step(task.loss), target=settings.target)
    predict = lf.jit(task.predict, target=settings.target)
    result = Result(dict(task.params))
    if check:
        first = tuple(a[: settings.batch] for a in task.train)
        result.gradient_error = gradient_error(task.loss, task.params, first)
    rng = np.random.default_rng(settings.seed + 1)
    *inputs, labels = task.train
    bar = tqdm(range(1, settings.epochs + 1), disable=not sys.stderr.isatty(), unit="epoch", leave=False)  # type: ignore[arg-type]
    for epoch in bar:
        began = time.perf_counter()
        result.losses.append(_epoch(step, result, task.train, settings, rng))
        result.epoch_seconds.append(time.perf_counter() - began)
        if epoch % settings.every == 0 or epoch == settings.epochs:
            result.train_correct = int((predict(result.params, *inputs) == labels).sum())
            result.train_size = len(labels)
            recent = result.epoch_seconds[-settings.every :]
            line = (
                f"Epoch {epoch}  loss {result.losses[-1]:.2f}  correct {result.train_correct}  "
                f"time/epoch {np.median(recent) * 1e3:.2f} ms"
            )
            if bar.disable:
                log(line)
            else:
                bar.write(line)
    if task.test is not None:
        *test_inputs, test_labels = task.test
        result.test_accuracy = float((predict(result.params, *test_inputs) == test_labels).mean())
    return result


def _epoch(
    step: Callable[..., Any], result: Result, data: tuple[np.ndarray, ...], settings: Settings, rng: Any
) -> float:
    """One pass over ``data`` reshuffled, in batches; the sum of the examples' losses."""
    order = rng.permutation(len(data[0]))
    total = 0.0
    for start in range(0, len(order), settings.batch):  # type: ignore[arg-type]
        chosen = order[start : start + settings.batch]
        value, result.params = step(result.params, *(a[chosen] for a in data), settings.rate)
        total += float(value) * len(chosen)
    return total


def gradient_error(loss: Callable[..., lf.Tensor], params: Params, batch: tuple[np.ndarray, ...]) -> float:
    """The largest relative difference between lf.grad's gradient and central differences,
    over at most 200 parameters (chosen at random when there are more)."""
    grads = lf.compute(lf.grad(loss)(params, *batch))[0]
    leaves, treedef = flatten(params)
    flat_grads, _ = flatten(grads)
    rng = np.random.default_rng(0)
    places = [(k, i) for k, leaf in enumerate(leaves) for i in range(leaf.size)]
    if len(places) > 200:
        places = [places[j] for j in rng.choice(len(places), 200, replace=False)]
    value = lf.jit(lambda p, *b: loss(p, *b))
    worst = 0.0
    for k, i in places:
        h = 1e-6 * max(1.0, abs(leaves[k].flat[i]))
        shifted = []
        for sign in (1, -1):
            moved = [leaf.copy() for leaf in leaves]
            moved[k].flat[i] += sign * h
            shifted.append(float(value(unflatten(treedef, moved), *batch)))
        numeric = (shifted[0] - shifted[1]) / (2 * h)
        exact = float(flat_grads[k].flat[i])
        worst = max(worst, abs(exact - numeric) / max(abs(exact), abs(numeric), 1e-6))
    return worst


# Pictures -------------------------------------------------------------------------------


def plot(path: str, task_name: str, result: Result, settings: Settings) -> None:
    """The loss per epoch and, for the toy sets, the decision boundary over the points."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SystemExit("lazyfuse train --plot needs matplotlib: pip install 'lazyfuse[plot]'") from None
    toy = settings.dataset in datasets.TOY and settings.model == "mlp"
    figure, axes = plt.subplots(1, 2 if toy else 1, figsize=(10 if toy else 5, 4), squeeze=False)
    axes[0][0].plot(range(1, len(result.losses) + 1), result.losses)
    axes[0][0].set(xlabel="epoch", ylabel="loss (sum over the examples)", title=f"{task_name}: training loss")
    if toy:
        _boundary(axes[0][1], result.params, settings)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _boundary(axis: Any, params: Params, settings: Settings) -> None:
    data = datasets.toy(settings.dataset, settings.points, seed=settings.seed)
    grid = np.linspace(0, 1, 101)
    xx, yy = np.meshgrid(grid, grid)
    points = np.stack([xx.ravel(), yy.ravel()], axis=1)
    p = lf.sigmoid(mlp(params, lf.asarray(points))).reshape(xx.shape).compute()
    axis.contourf(xx, yy, p, levels=np.linspace(0, 1, 11), cmap="RdBu_r", alpha=0.6)
    axis.contour(xx, yy, p, levels=[0.5], colors="k", linewidths=1)
    axis.scatter(data.x[:, 0], data.x[:, 1], c=data.y, cmap="RdBu_r", edgecolors="k", s=25)
    axis.set(xlim=(0, 1), ylim=(0, 1), title=f"{settings.dataset}: decision boundary (p = 0.5)")


# Command line ---------------------------------------------------------------------------


def add_arguments(parser: Any) -> None:
    parser.add_argument("--dataset", default="simple", choices=[*datasets.TOY, "digits"])
    parser.add_argument("--model", default="mlp", choices=["mlp", "embedding"])
    parser.add_argument("--hidden", type=int, help="hidden size (MiniTorch's default 10)")
    parser.add_argument("--rate", type=float, help="learning rate (MiniTorch's default 0.05)")
    parser.add_argument("--epochs", type=int, help="epochs (default 500 for the toy sets)")
    parser.add_argument("--batch", type=int, help="batch size (default 10 for the toy sets)")
    parser.add_argument("--points", type=int, default=50, help="points in a toy data set (default 50)")
    parser.add_argument("--target", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plot", metavar="FILE.png", help="write the loss curve and decision boundary")
    parser.add_argument("--check", action="store_true", help="check the first step's gradients numerically")


def main(args: Any) -> int:
    names = ("dataset", "model", "hidden", "rate", "epochs", "batch", "points", "target", "seed")
    settings = Settings(**{k: getattr(args, k) for k in names})
    task, filled = make_task(settings)
    size = sum(v.size for v in task.params.values())
    print(
        f"lazyfuse train: {task.name}, model {filled.model if task.name != 'digits' else 'digits'} "
        f"({size} parameters), hidden {filled.hidden}, rate {filled.rate}, batch {filled.batch}, "
        f"{filled.epochs} epochs on {filled.target}"
    )
    result = train(settings, check=args.check, made=(task, filled))
    if result.gradient_error is not None:
        error = result.gradient_error
        print(f"gradient check (central differences, first batch): largest relative error {error:.2e}")
    print(
        f"first epoch {result.first_epoch * 1e3:.1f} ms (tracing and compiling), "
        f"median epoch {result.median_epoch * 1e3:.2f} ms"
    )
    held_out = "held-out " if result.test_accuracy is not None else ""
    print(f"final {held_out}accuracy {result.accuracy:.1%}")
    if args.plot:
        plot(args.plot, task.name, result, filled)
        print(f"wrote {args.plot}")
    return 0
