"""The data sets of ``lazyfuse.datasets``: MiniTorch's toy sets checked point by point
against MiniTorch's own scalar rules and spiral formula, the generated sentiment corpus
against its counting rule, and the digits split against scikit-learn's data. No kernels."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest

from lazyfuse import datasets
from lazyfuse.datasets import NEGATIVE_WORDS, POSITIVE_WORDS, TOY, digits, sentiment, toy

# MiniTorch's label rules as its minitorch/datasets.py writes them, one point at a time:
# an oracle independent of the vectorized rules in lazyfuse.datasets.
MINITORCH_RULES = {
    "simple": lambda x_1, x_2: 1 if x_1 < 0.5 else 0,
    "diag": lambda x_1, x_2: 1 if x_1 + x_2 < 0.5 else 0,
    "split": lambda x_1, x_2: 1 if x_1 < 0.2 or x_1 > 0.8 else 0,
    "xor": lambda x_1, x_2: 1 if ((x_1 < 0.5 and x_2 > 0.5) or (x_1 > 0.5 and x_2 < 0.5)) else 0,
    "circle": lambda x_1, x_2: 1 if (x_1 - 0.5) ** 2 + (x_2 - 0.5) ** 2 > 0.1 else 0,
}
RANDOM_SETS = tuple(MINITORCH_RULES)


def minitorch_spiral(n: int) -> tuple[list[tuple[float, float]], list[int]]:
    """MiniTorch's ``spiral(N)`` points and labels, transcribed with ``math``."""

    def x(t: float) -> float:
        return t * math.cos(t) / 20.0

    def y(t: float) -> float:
        return t * math.sin(t) / 20.0

    ts = [10.0 * (float(i) / (n // 2)) for i in range(5, 5 + n // 2)]
    points = [(x(t) + 0.5, y(t) + 0.5) for t in ts] + [(y(-t) + 0.5, x(-t) + 0.5) for t in ts]
    return points, [0] * (n // 2) + [1] * (n // 2)


# --- toy -----------------------------------------------------------------------------


def test_toy_names_are_minitorchs_six() -> None:
    assert set(TOY) == {*RANDOM_SETS, "spiral"}


@pytest.mark.parametrize("name", RANDOM_SETS)
def test_toy_labels_follow_minitorchs_rule(name: str) -> None:
    graph = toy(name, points=400, seed=3)
    expected = [MINITORCH_RULES[name](float(a), float(b)) for a, b in graph.x]
    np.testing.assert_array_equal(graph.y, expected)
    assert 0 < graph.y.sum() < len(graph.y), "both classes should appear in 400 points"


@pytest.mark.parametrize("name", TOY)
def test_toy_shapes_dtypes_and_read_only(name: str) -> None:
    graph = toy(name, points=50)
    assert graph.name == name
    assert graph.x.shape == (50, 2) and graph.x.dtype == np.float64
    assert graph.y.shape == (50,) and graph.y.dtype == np.float64
    assert set(np.unique(graph.y)) <= {0.0, 1.0}
    assert not graph.x.flags.writeable and not graph.y.flags.writeable


@pytest.mark.parametrize("name", RANDOM_SETS)
def test_toy_points_are_uniform_in_the_unit_square(name: str) -> None:
    x = toy(name, points=2000, seed=1).x
    assert x.min() >= 0.0 and x.max() < 1.0
    # Uniform: each quadrant holds about a quarter of the points (binomial sd ~ 0.01).
    quadrants = np.bincount((x[:, 0] >= 0.5) * 2 + (x[:, 1] >= 0.5), minlength=4) / len(x)
    np.testing.assert_allclose(quadrants, 0.25, atol=0.05)


@pytest.mark.parametrize("name", RANDOM_SETS)
def test_toy_is_deterministic_per_seed_and_differs_across_seeds(name: str) -> None:
    first, again, other = toy(name, 30, seed=7), toy(name, 30, seed=7), toy(name, 30, seed=8)
    np.testing.assert_array_equal(first.x, again.x)
    np.testing.assert_array_equal(first.y, again.y)
    assert not np.array_equal(first.x, other.x)


def test_toy_draws_from_its_own_generator_not_the_global_one() -> None:
    np.random.seed(0)
    before = toy("xor", 20, seed=5).x
    np.random.seed(1)
    np.testing.assert_array_equal(before, toy("xor", 20, seed=5).x)
    np.testing.assert_array_equal(before, np.random.default_rng(5).random((20, 2)))


def test_toy_without_seed_draws_fresh_points() -> None:
    assert not np.array_equal(toy("simple", 20, seed=None).x, toy("simple", 20, seed=None).x)


@pytest.mark.parametrize("points", [50, 8, 2])
def test_spiral_matches_minitorchs_formula(points: int) -> None:
    expected_x, expected_y = minitorch_spiral(points)
    graph = toy("spiral", points)
    np.testing.assert_allclose(graph.x, expected_x, rtol=1e-15, atol=1e-15)
    np.testing.assert_array_equal(graph.y, expected_y)


def test_spiral_first_points_by_hand() -> None:
    # N = 50: half = 25, the first t is 10 * 5 / 25 = 2; arm 1 is arm 0 turned by -90 degrees.
    graph = toy("spiral", 50)
    arm0 = (2 * math.cos(2) / 20 + 0.5, 2 * math.sin(2) / 20 + 0.5)
    arm1 = (2 * math.sin(2) / 20 + 0.5, -2 * math.cos(2) / 20 + 0.5)
    np.testing.assert_allclose(graph.x[0], arm0, rtol=1e-15)
    np.testing.assert_allclose(graph.x[25], arm1, rtol=1e-15)
    assert graph.y[0] == 0.0 and graph.y[25] == 1.0


def test_spiral_ignores_seed_and_drops_the_odd_point_like_minitorch() -> None:
    np.testing.assert_array_equal(toy("spiral", 40, seed=1).x, toy("spiral", 40, seed=2).x)
    assert toy("spiral", 51).x.shape == (50, 2)


def test_toy_errors() -> None:
    with pytest.raises(ValueError, match=r"simple, diag, split, xor, circle, spiral"):
        toy("moons")
    with pytest.raises(ValueError, match="at least one point"):
        toy("xor", points=0)
    with pytest.raises(ValueError, match="at least 2 points"):
        toy("spiral", points=1)


# --- sentiment -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def corpus():
    return sentiment(sentences=1000, seed=0, max_length=12)


def test_sentiment_shapes_and_dtypes(corpus) -> None:
    assert corpus.tokens.shape == (1000, 12) and corpus.tokens.dtype == np.int64
    assert corpus.lengths.shape == (1000,) and corpus.lengths.dtype == np.int64
    assert corpus.labels.shape == (1000,) and corpus.labels.dtype == np.float64
    assert set(np.unique(corpus.labels)) == {0.0, 1.0}
    assert corpus.vocabulary[0] == "<pad>"
    assert len(set(corpus.vocabulary)) == len(corpus.vocabulary)
    assert corpus.tokens.max() < len(corpus.vocabulary)


def test_sentiment_pads_with_zero_after_each_length(corpus) -> None:
    assert corpus.lengths.min() >= 3 and corpus.lengths.max() <= 12
    assert len(np.unique(corpus.lengths)) == 10, "lengths 3..12 should all occur"
    inside = np.arange(12)[None, :] < corpus.lengths[:, None]
    assert (corpus.tokens[inside] > 0).all()
    assert (corpus.tokens[~inside] == 0).all()


def test_sentiment_labels_count_positive_against_negative_words(corpus) -> None:
    words = [corpus.decode(i).split() for i in range(len(corpus.labels))]
    positive = np.array([sum(w in POSITIVE_WORDS for w in sentence) for sentence in words])
    negative = np.array([sum(w in NEGATIVE_WORDS for w in sentence) for sentence in words])
    assert (positive != negative).all(), "no ties"
    np.testing.assert_array_equal(corpus.labels, (positive > negative).astype(np.float64))
    assert ((positive > 0) & (negative > 0)).any(), "some sentences mix both kinds"
    assert [len(w) for w in words] == corpus.lengths.tolist()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sentiment_labels_are_balanced(seed: int) -> None:
    assert 0.4 <= sentiment(sentences=301, seed=seed).labels.mean() <= 0.6


def test_sentiment_is_deterministic_per_seed(corpus) -> None:
    again, other = sentiment(1000, seed=0), sentiment(1000, seed=1)
    np.testing.assert_array_equal(corpus.tokens, again.tokens)
    np.testing.assert_array_equal(corpus.labels, again.labels)
    assert not np.array_equal(corpus.tokens, other.tokens)


def test_sentiment_errors() -> None:
    with pytest.raises(ValueError, match="at least one sentence"):
        sentiment(sentences=0)
    with pytest.raises(ValueError, match="max_length"):
        sentiment(max_length=2)


# --- digits --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def split():
    pytest.importorskip("sklearn")
    return digits(seed=0)


def test_digits_shapes_and_split_sizes(split) -> None:
    assert split.x_train.shape[1] == split.x_test.shape[1] == 64
    assert split.x_train.dtype == split.x_test.dtype == np.float64
    assert split.y_train.dtype == split.y_test.dtype == np.int64
    n_train, n_test = len(split.y_train), len(split.y_test)
    assert len(split.x_train) == n_train and len(split.x_test) == n_test
    assert n_train + n_test == 1797
    assert abs(n_test - 0.2 * 1797) <= 10
    assert split.classes == 10


def test_digits_are_sklearns_rows_scaled_to_unit_range(split) -> None:
    from sklearn.datasets import load_digits

    rows = np.concatenate([split.x_train, split.x_test])
    assert rows.min() == 0.0 and rows.max() == 1.0
    bunch = load_digits()
    expected = np.column_stack([bunch.data / 16.0, bunch.target])
    got = np.column_stack([rows, np.concatenate([split.y_train, split.y_test])])
    # The same multiset of (pixels, label) rows: every image lands on exactly one side.
    np.testing.assert_array_equal(got[np.lexsort(got.T)], expected[np.lexsort(expected.T)])


def test_digits_split_is_stratified_and_shuffled(split) -> None:
    train_share = np.bincount(split.y_train, minlength=10) / len(split.y_train)
    test_share = np.bincount(split.y_test, minlength=10) / len(split.y_test)
    np.testing.assert_allclose(train_share, test_share, atol=0.01)
    assert not (np.diff(split.y_train) >= 0).all(), "train rows should not be sorted by class"


def test_digits_is_deterministic_per_seed(split) -> None:
    np.testing.assert_array_equal(digits(seed=0).y_test, split.y_test)
    assert not np.array_equal(digits(seed=1).y_test, split.y_test)


def test_digits_without_sklearn_says_how_to_install(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ImportError, match=r"pip install 'lazyfuse\[data\]'"):
        digits()


def test_digits_rejects_a_bad_test_fraction() -> None:
    with pytest.raises(ValueError, match="test_fraction"):
        digits(test_fraction=1.0)


def test_minitorchs_names_give_the_same_sets():
    for name, make in datasets.DATASETS.items():
        graph = make(20)
        same = datasets.toy(name.lower(), 20)
        assert graph.N == len(graph.y) == len(same.y)
        np.testing.assert_array_equal(graph.X, same.x)
        assert getattr(datasets, name.lower()) is make
