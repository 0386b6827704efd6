"""Small data sets, generated deterministically (no download) except ``digits``.

- ``spirals``: the demo's two-spirals points, lifted to many columns, with a dense
  layer's weights.
- ``toy``: MiniTorch's six 2-D classification sets (``TOY``), for ``lazyfuse train``.
  Matched to MiniTorch's ``minitorch/datasets.py`` (github.com/minitorch/minitorch,
  commit 4063fab55f7382ac6251de748feec8d3f9b11498): the same label rules and the same
  spiral formula. The points differ: MiniTorch draws with Python's global ``random``,
  these with ``np.random.default_rng(seed)``.
- ``sentiment``: a generated bag-of-words sentiment corpus for an embedding model.
- ``digits``: scikit-learn's 8x8 digits (an optional dependency), split train/test.

The arrays in a ``Graph``, ``Corpus`` or ``Split`` are read-only, so these frozen
dataclasses really are frozen (``spirals``, the demo's, returns a plain dict).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


def spirals(n: int = 200_000, features: int = 16, seed: int = 0) -> dict[str, np.ndarray]:
    """``n`` points on two interleaved spirals, lifted to ``features`` columns.

    Returns ``x`` (n, features) float64, ``labels`` (n,) int64, ``w`` (features, 8) and
    ``b`` (8,) float64: everything the demo's expressions read.
    """
    rng = np.random.default_rng(seed)
    t = np.linspace(0.0, 1.0, n // 2) * 4 * np.pi
    first = np.stack([t * np.cos(t), t * np.sin(t)], axis=1) / (4 * np.pi)
    points = np.concatenate([first, -first]) + rng.normal(0, 0.02, (2 * (n // 2), 2))
    labels = np.repeat(np.array([0, 1]), n // 2)
    lift = rng.normal(0, 1, (2, features))
    x = np.tanh(points @ lift) + 0.1 * rng.normal(0, 1, (len(points), features))
    return {
        "x": np.ascontiguousarray(x),
        "labels": labels.astype(np.int64),
        "w": rng.normal(0, 0.5, (features, 8)),
        "b": rng.normal(0, 0.1, 8),
    }


def _frozen(array: np.ndarray) -> np.ndarray:
    """``array`` made read-only: the data sets are values, shared by whoever loads them."""
    array.setflags(write=False)
    return array


# --- MiniTorch's toy data sets -------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Graph:
    """A 2-D classification set: ``x`` (N, 2) float64 points, ``y`` (N,) float64 0/1.

    Named after MiniTorch's ``Graph``; its ``N`` is ``len(y)`` here.
    """

    x: np.ndarray
    y: np.ndarray
    name: str

    @property
    def N(self) -> int:  # noqa: N802 (MiniTorch's name)
        return len(self.y)

    @property
    def X(self) -> np.ndarray:  # noqa: N802 (MiniTorch's name)
        return self.x


TOY = ("simple", "diag", "split", "xor", "circle", "spiral")


def make_pts(points: int, rng: np.random.Generator) -> np.ndarray:
    """``points`` points drawn uniformly from [0, 1)^2, as MiniTorch's ``make_pts``."""
    return rng.random((points, 2))


def _simple(x1: np.ndarray, x2: np.ndarray) -> np.ndarray:
    return x1 < 0.5


def _diag(x1: np.ndarray, x2: np.ndarray) -> np.ndarray:
    return x1 + x2 < 0.5


def _split(x1: np.ndarray, x2: np.ndarray) -> np.ndarray:
    return (x1 < 0.2) | (x1 > 0.8)


def _xor(x1: np.ndarray, x2: np.ndarray) -> np.ndarray:
    return ((x1 < 0.5) & (x2 > 0.5)) | ((x1 > 0.5) & (x2 < 0.5))


def _circle(x1: np.ndarray, x2: np.ndarray) -> np.ndarray:
    # Note: label 1 is *outside* the circle of radius sqrt(0.1) around the centre.
    return (x1 - 0.5) ** 2 + (x2 - 0.5) ** 2 > 0.1


# Which points get label 1, for the sets made of random points (all but "spiral").
LABEL_RULES: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "simple": _simple,
    "diag": _diag,
    "split": _split,
    "xor": _xor,
    "circle": _circle,
}


def spiral_arms(points: int) -> tuple[np.ndarray, np.ndarray]:
    """MiniTorch's two spiral arms, ``points // 2`` points each (so an odd count loses one).

    With ``half = points // 2`` and ``t_i = 10 i / half`` for i in 5 .. 5 + half - 1, arm 0
    is ``(x(t), y(t)) + 0.5`` and arm 1 is ``(y(-t), x(-t)) + 0.5`` where
    ``x(t) = t cos t / 20`` and ``y(t) = t sin t / 20``: arm 1 is arm 0 turned by -90
    degrees about (0.5, 0.5). The points reach slightly outside [0, 1]^2.
    """
    half = points // 2
    t = 10.0 * (np.arange(5, 5 + half, dtype=np.float64) / half)  # MiniTorch's rounding order
    arm0 = np.stack([t * np.cos(t) / 20.0, t * np.sin(t) / 20.0], axis=1) + 0.5
    arm1 = np.stack([-t * np.sin(-t) / 20.0, -t * np.cos(-t) / 20.0], axis=1) + 0.5
    return arm0, arm1


def _spiral(points: int) -> Graph:
    if points < 2:
        raise ValueError(f"the spiral needs at least 2 points (one per arm), got {points}")
    arm0, arm1 = spiral_arms(points)
    labels = np.repeat(np.array([0.0, 1.0]), len(arm0))
    return Graph(x=_frozen(np.concatenate([arm0, arm1])), y=_frozen(labels), name="spiral")


def toy(name: str, points: int = 50, seed: int | None = 0) -> Graph:
    """MiniTorch's data set ``name`` (one of ``TOY``) with ``points`` points.

    The random sets draw from ``np.random.default_rng(seed)`` (``seed=None``: fresh
    entropy); ``"spiral"`` is deterministic, ignores ``seed``, and like MiniTorch's has
    ``2 * (points // 2)`` points.
    """
    if name not in TOY:
        raise ValueError(f"unknown toy data set {name!r}; choose one of {', '.join(TOY)}")
    if points < 1:
        raise ValueError(f"a data set needs at least one point, got points={points}")
    if name == "spiral":
        return _spiral(points)
    x = make_pts(points, np.random.default_rng(seed))
    labels = LABEL_RULES[name](x[:, 0], x[:, 1]).astype(np.float64)
    return Graph(x=_frozen(x), y=_frozen(labels), name=name)


# --- A generated sentiment corpus ----------------------------------------------------

PAD = "<pad>"
POSITIVE_WORDS = (
    "good", "great", "excellent", "wonderful", "lovely", "brilliant", "delightful", "superb",
    "charming", "enjoyable", "pleasant", "fantastic", "beautiful", "clever", "fun", "moving",
    "touching", "gripping", "warm", "witty", "fresh", "stunning", "memorable", "solid",
    "perfect", "happy", "amazing", "splendid", "graceful", "inspiring",
)  # fmt: skip
NEGATIVE_WORDS = (
    "bad", "awful", "terrible", "boring", "dull", "poor", "weak", "horrible", "dreadful",
    "tedious", "bland", "clumsy", "messy", "painful", "annoying", "lazy", "stale", "silly",
    "ugly", "sloppy", "forgettable", "disappointing", "shallow", "predictable", "pointless",
    "tiresome", "awkward", "cheap", "flat", "worst",
)  # fmt: skip
NEUTRAL_WORDS = (
    "the", "a", "film", "movie", "story", "plot", "actor", "scene", "script", "music",
    "ending", "was", "is", "and", "with", "this", "it", "of", "director", "cast",
    "character", "camera", "dialogue", "pace", "sound", "year", "night", "book", "show",
    "series",
)  # fmt: skip
VOCABULARY = (PAD, *POSITIVE_WORDS, *NEGATIVE_WORDS, *NEUTRAL_WORDS)
_POSITIVE_IDS = np.arange(1, 1 + len(POSITIVE_WORDS))
_NEGATIVE_IDS = _POSITIVE_IDS[-1] + 1 + np.arange(len(NEGATIVE_WORDS))
_NEUTRAL_IDS = _NEGATIVE_IDS[-1] + 1 + np.arange(len(NEUTRAL_WORDS))
_MIN_LENGTH = 3


@dataclass(frozen=True, eq=False)
class Corpus:
    """Sentences as token ids: ``tokens`` (n, max_length) int64 padded with 0 after each
    sentence's ``lengths[i]`` tokens, ``labels`` (n,) float64 (1: positive), and the
    ``vocabulary`` (token id -> word; id 0 is ``"<pad>"``)."""

    tokens: np.ndarray
    lengths: np.ndarray
    labels: np.ndarray
    vocabulary: tuple[str, ...]

    def decode(self, i: int) -> str:
        """Sentence ``i`` as words, without its padding."""
        return " ".join(self.vocabulary[t] for t in self.tokens[i, : self.lengths[i]])


def _sentence(rng: np.random.Generator, positive: bool, max_length: int) -> np.ndarray:
    """One sentence's token ids: an odd number of sentiment words (so never a tie), most
    of them of the label's side, mixed at random positions among neutral words."""
    length = int(rng.integers(_MIN_LENGTH, max_length + 1))
    sentiment = 1 + 2 * int(rng.integers(0, (length // 2 + 1) // 2))  # odd, <= length // 2
    minority = int(rng.integers(0, sentiment // 2 + 1))
    majority_ids, minority_ids = (
        (_POSITIVE_IDS, _NEGATIVE_IDS) if positive else (_NEGATIVE_IDS, _POSITIVE_IDS)
    )
    words = np.concatenate(
        [
            rng.choice(majority_ids, sentiment - minority),
            rng.choice(minority_ids, minority),
            rng.choice(_NEUTRAL_IDS, length - sentiment),
        ]
    )
    return rng.permutation(words)


def sentiment(sentences: int = 2000, seed: int = 0, max_length: int = 12) -> Corpus:
    """A deterministic sentiment corpus: label 1 when a sentence has more positive than
    negative words. Word order and neutral words carry nothing (no negation), so a model
    that averages word embeddings can learn it exactly; half the labels are 1 (one more
    0 when ``sentences`` is odd)."""
    if sentences < 1:
        raise ValueError(f"a corpus needs at least one sentence, got sentences={sentences}")
    if max_length < _MIN_LENGTH:
        raise ValueError(f"max_length must be at least {_MIN_LENGTH}, got {max_length}")
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(sentences) % 2).astype(np.float64)
    tokens = np.zeros((sentences, max_length), dtype=np.int64)
    lengths = np.zeros(sentences, dtype=np.int64)
    for i, label in enumerate(labels):
        words = _sentence(rng, bool(label), max_length)
        tokens[i, : len(words)] = words
        lengths[i] = len(words)
    return Corpus(_frozen(tokens), _frozen(lengths), _frozen(labels), VOCABULARY)


# --- scikit-learn's digits -----------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Split:
    """A train/test split: ``x_*`` (n, 64) float64 in [0, 1], ``y_*`` (n,) int64 classes."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: int = 10


def stratified_split(labels: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Shuffled (train, test) row indices with ``round(count * test_fraction)`` rows of each
    class in test, so both sides keep the class proportions."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for label in np.unique(labels):
        rows = rng.permutation(np.flatnonzero(labels == label))
        cut = round(len(rows) * test_fraction)
        test.append(rows[:cut])
        train.append(rows[cut:])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


def digits(seed: int = 0, test_fraction: float = 0.2) -> Split:
    """scikit-learn's 1,797 8x8 digit images, pixels scaled from 0..16 to [0, 1], split
    into train and test with ``stratified_split``. Needs scikit-learn."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    try:
        from sklearn.datasets import load_digits
    except ImportError as error:
        raise ImportError(
            "lazyfuse.datasets.digits needs scikit-learn: pip install 'lazyfuse[data]'"
        ) from error
    bunch = load_digits()
    x = np.asarray(bunch.data, dtype=np.float64) / 16.0
    y = np.asarray(bunch.target, dtype=np.int64)
    train, test = stratified_split(y, test_fraction, seed)
    return Split(
        x_train=_frozen(x[train]),
        y_train=_frozen(y[train]),
        x_test=_frozen(x[test]),
        y_test=_frozen(y[test]),
        classes=int(bunch.target_names.size),
    )


# MiniTorch's names: ``datasets.split(50)``, ``datasets.DATASETS["Split"](50)``.


def simple(N: int = 50, seed: int | None = 0) -> Graph:  # noqa: N803 (MiniTorch's name)
    return toy("simple", N, seed)


def diag(N: int = 50, seed: int | None = 0) -> Graph:  # noqa: N803
    return toy("diag", N, seed)


def split(N: int = 50, seed: int | None = 0) -> Graph:  # noqa: N803
    return toy("split", N, seed)


def xor(N: int = 50, seed: int | None = 0) -> Graph:  # noqa: N803
    return toy("xor", N, seed)


def circle(N: int = 50, seed: int | None = 0) -> Graph:  # noqa: N803
    return toy("circle", N, seed)


def spiral(N: int = 50, seed: int | None = 0) -> Graph:  # noqa: N803
    return toy("spiral", N, seed)


DATASETS: dict[str, Callable[..., Graph]] = {
    "Simple": simple,
    "Diag": diag,
    "Split": split,
    "Xor": xor,
    "Circle": circle,
    "Spiral": spiral,
}
