"""lf.jit and pytrees: arguments and results may be nested tuples, lists, dicts and
namedtuples; the structure is part of the signature, the leaves' values are not; errors
name the leaf's path."""

from __future__ import annotations

import importlib
import re
from typing import NamedTuple

import numpy as np
import pytest

import lazyfuse as lf

# Serial kernels (three times faster to compile): these test structure, not loops.
pytestmark = pytest.mark.usefixtures("serial_kernels")

jit_module = importlib.import_module("lazyfuse.jit")  # Note: lf.jit is the function

N = 6  # every array has N elements (or N by N), so that kernels are shared between tests


class Batch(NamedTuple):
    x: np.ndarray
    y: np.ndarray


def _vectors(count: int, dtype=np.float64, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(N).astype(dtype) for _ in range(count)]


def _tolerance(dtype) -> float:
    return 1e-5 if dtype == np.float32 else 1e-12


def _loss_and_grads(params, x):
    """A linear model's squared error and its gradients: a tuple holding a dict."""
    error = params["w"] * x + params["b"]
    return (error * error).sum(), {"w": 2.0 * error * x, "b": 2.0 * error}


def _sgd(params, x, lr):
    """One gradient step on ``params`` (a dict) with a run-time learning rate."""
    error = params["w"] * x + params["b"]
    return {"w": params["w"] - lr * (2.0 * error * x), "b": params["b"] - lr * (2.0 * error)}


def _numpy_sgd(params, x, lr):
    error = params["w"] * x + params["b"]
    return {"w": params["w"] - lr * (2.0 * error * x), "b": params["b"] - lr * (2.0 * error)}


def _assert_trees_close(actual, expected, rtol):
    """Same structure (types, dict keys, lengths) and leaves close to NumPy's (an array
    here where NumPy may give a NumPy scalar)."""
    if isinstance(expected, (tuple, list, dict)):
        assert type(actual) is type(expected), (type(actual), type(expected))
    if isinstance(expected, dict):
        assert sorted(actual) == sorted(expected)
        for key in expected:
            _assert_trees_close(actual[key], expected[key], rtol)
    elif isinstance(expected, (tuple, list)):
        assert len(actual) == len(expected)
        for a, e in zip(actual, expected, strict=True):
            _assert_trees_close(a, e, rtol)
    elif expected is None:
        assert actual is None
    else:
        expected = np.asarray(expected)
        assert isinstance(actual, np.ndarray)
        assert (actual.dtype, actual.shape) == (expected.dtype, expected.shape)
        np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol)


# arguments and results -------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_a_dict_of_parameters_and_a_tuple_holding_a_dict_of_gradients(dtype):
    traced = lf.jit(_loss_and_grads)
    for seed in range(3):  # new values each call: new results, no stale constants
        w, b, x = _vectors(3, dtype, seed)
        params = {"w": w, "b": b}
        _assert_trees_close(traced(params, x), _loss_and_grads(params, x), _tolerance(dtype))
    assert len(traced.traces) == 1


def test_the_function_sees_its_arguments_structure_with_a_tensor_at_each_array_leaf():
    seen = []

    @lf.jit
    def spy(params, batch, layers):
        seen.append((params, batch, layers))
        return params["w"] * batch.x + layers[1][0]

    w, x, y, u, v = _vectors(5)
    spy({"w": w}, Batch(x, y), [u, (v,)])
    ((params, batch, layers),) = seen
    assert type(params) is dict and list(params) == ["w"] and isinstance(params["w"], lf.Tensor)
    assert type(batch) is Batch and isinstance(batch.y, lf.Tensor)
    assert type(layers) is list and type(layers[1]) is tuple and isinstance(layers[1][0], lf.Tensor)


def test_nested_lists_tuples_namedtuples_and_none_in_and_out_match_numpy():
    def model(layers, batch, extra):
        first, second = layers
        hidden = lf.tanh(first["w"] * batch.x + first["b"])
        out = second["w"] * hidden
        return [out, (hidden, None)], Batch(out - batch.y, lf.sum(out * batch.y)), {"skip": extra}

    def reference(layers, batch, extra):
        first, second = layers
        hidden = np.tanh(first["w"] * batch.x + first["b"])
        out = second["w"] * hidden
        return [out, (hidden, None)], Batch(out - batch.y, np.sum(out * batch.y)), {"skip": extra}

    traced = lf.jit(model)
    for seed in range(2):
        w1, b1, w2, x, y = _vectors(5, seed=seed)
        args = ([{"w": w1, "b": b1}, {"w": w2}], Batch(x, y), None)
        _assert_trees_close(traced(*args), reference(*args), 1e-12)
    assert len(traced.traces) == 1


def test_dict_keys_are_sorted_whatever_order_they_were_written_in():
    traced = lf.jit(lambda p: {"z": p["a"] - p["b"], "a": p["a"] + p["b"]})
    a, b = _vectors(2)
    first, second = traced({"a": a, "b": b}), traced({"b": b, "a": a})
    assert list(first) == list(second) == ["a", "z"]
    np.testing.assert_array_equal(second["z"], a - b)
    assert len(traced.traces) == 1


def test_an_argument_leaf_returned_as_is_follows_the_new_arguments():
    traced = lf.jit(lambda p: (p["keep"], p["keep"] * 2.0))
    for seed in range(2):
        (a,) = _vectors(1, seed=seed)
        kept, doubled = traced({"keep": a})
        np.testing.assert_array_equal(kept, a)
        np.testing.assert_array_equal(doubled, a * 2.0)


# scalars are run-time values -------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_a_learning_rate_changing_every_call_runs_one_trace(dtype):
    step = lf.jit(_sgd)
    w, b, x = _vectors(3, dtype)
    params = {"w": w, "b": b}
    for lr in (0.1, 0.05, 1e-3, -2.0, 0.0):
        result = step(params, x, lr)
        expected = _numpy_sgd(params, x, lr)  # a Python float is weak: float32 stays float32
        _assert_trees_close(result, expected, _tolerance(dtype))
        params = result  # the next step starts from this one: new array values too
    assert len(step.traces) == 1


def test_a_learning_rate_inside_a_pytree_or_a_numpy_scalar_is_a_run_time_value_too():
    @lf.jit
    def step(params, x, hyper):
        return _sgd(params, x, hyper["lr"] * hyper["decay"][0])

    w, b, x = _vectors(3)
    params = {"w": w, "b": b}
    for lr in (0.1, 0.2, 0.3):
        expected = _numpy_sgd(params, x, lr * 0.5)
        _assert_trees_close(step(params, x, {"lr": lr, "decay": (0.5,)}), expected, 1e-12)
    assert len(step.traces) == 1
    for lr in (np.float64(0.1), np.float64(0.7)):  # strong float64: one more trace, values still free
        expected = _numpy_sgd(params, x, lr * 0.5)
        _assert_trees_close(step(params, x, {"lr": lr, "decay": (0.5,)}), expected, 1e-12)
    assert len(step.traces) == 2

    plain = lf.jit(_sgd)
    for lr in (np.float64(0.1), np.float64(0.25)):
        _assert_trees_close(plain(params, x, lr), _numpy_sgd(params, x, lr), 1e-12)
    assert len(plain.traces) == 1


def test_a_python_bool_leaf_is_a_flag_one_trace_per_value():
    traced = lf.jit(lambda x, options: -x if options["negate"] else x * 1.0)
    (x,) = _vectors(1)
    np.testing.assert_array_equal(traced(x, {"negate": True}), -x)
    np.testing.assert_array_equal(traced(x, {"negate": False}), x)
    np.testing.assert_array_equal(traced(x, {"negate": True}), -x)
    assert len(traced.traces) == 2


# the signature ---------------------------------------------------------------------


def test_the_same_array_at_two_leaves_is_its_own_signature():
    traced = lf.jit(lambda p, q: p["a"] * p["b"] - q[0])
    x, y, z = _vectors(3)
    np.testing.assert_array_equal(traced({"a": x, "b": x}, [z]), x * x - z)
    np.testing.assert_array_equal(traced({"a": x, "b": y}, [z]), x * y - z)  # two slots, not x's one
    np.testing.assert_array_equal(traced({"a": y, "b": y}, [z]), y * y - z)
    np.testing.assert_array_equal(traced({"a": z, "b": y}, [z]), z * y - z)  # across arguments
    assert len(traced.traces) == 3


def test_a_new_structure_dtype_or_shape_traces_again_new_values_do_not():
    traced = lf.jit(lambda p: lf.sum(p[0] * (p[1][0] if isinstance(p[1], tuple) else p[1])))
    a, b, c = _vectors(3)
    square = np.outer(a, b)
    calls = [
        ((a, b), 1),
        ((b, c), 1),  # new values, same signature
        ([a, b], 2),  # a list, not a tuple
        ((a, b, c), 3),  # one more leaf
        ((a, (b,)), 4),  # nested
        ((a, b.astype(np.float32)), 5),  # another dtype
        ((square, square), 6),  # another shape (and one array at two leaves)
        ((a, b), 6),
    ]
    for tree, traces in calls:
        first, second = tree[0], tree[1][0] if isinstance(tree[1], tuple) else tree[1]
        np.testing.assert_allclose(traced(tree), np.sum(first * second), rtol=1e-6)
        assert len(traced.traces) == traces, tree
    keyed = lf.jit(lambda p: p["a"] + 1.0)
    keyed({"a": a})
    keyed({"a": b, "z": c})  # another key: another structure
    assert len(keyed.traces) == 2


def test_flat_arguments_skip_flattening_but_key_as_flatten_would():
    from lazyfuse import pytree

    a = np.ones(N)
    leaves, structure = jit_module._flatten_arguments((a, 2.0, True))
    assert list(leaves) == [a, 2.0, True]
    assert structure == pytree.flatten((a, 2.0, True))[1]
    assert hash(structure) == hash(pytree.flatten((a, 2.0, True))[1])
    assert structure == jit_module._flatten_arguments((a, 1.0, False))[1]
    assert structure != jit_module._flatten_arguments(((a,), 1.0, False))[1]


# errors ----------------------------------------------------------------------------


def test_an_unsupported_leaf_names_its_path_and_type():
    traced = lf.jit(lambda p, q: p["w"] + q[0])
    (a,) = _vectors(1)
    with pytest.raises(TypeError, match=r"argument 0\['w'\] is a str \(pytrees"):
        traced({"w": "weights"}, [a])
    with pytest.raises(TypeError, match=r"argument 1\[2\] is a set"):
        traced({"w": a}, [a, a, {1.0}])
    with pytest.raises(TypeError, match=r"argument 1\[1\]\.y\['k'\] is a frozenset"):
        traced({"w": a}, [a, Batch(a, {"k": frozenset()})])
    with pytest.raises(TypeError, match=r"argument 0\['w'\] is an lf\.asarray tensor; pass the array itself"):
        traced({"w": lf.asarray(a)}, [a])
    with pytest.raises(TypeError, match="masked"):
        traced({"w": np.ma.masked_array(a)}, [a])
    assert len(traced.traces) == 0


def test_every_leaf_path_reaches_its_leaf():
    """The path an error names is the indexing that reaches the leaf, for every leaf of
    a tree of every kind of node (checked by evaluating it)."""
    from lazyfuse import pytree

    args = ({"b": [1, (2, 3)], "a": Batch(4, {"k": 5})}, None, [6, {"z": (7,)}], 8)
    leaves, structure = pytree.flatten(args)
    for index, leaf in enumerate(leaves):
        path = jit_module._argument_path(structure, index)
        expression = re.sub(r"^argument (\d+)", r"args[\1]", path)
        assert expression != path and eval(expression) == leaf, path


def test_a_result_that_is_not_a_pytree_of_tensors_says_where():
    (a,) = _vectors(1)
    with pytest.raises(lf.LazyfuseError, match=r"got int at result\[1\]\['b'\] \(any pytree of tensors"):
        lf.jit(lambda x: (x * 2.0, {"a": x, "b": 3}))(a)
    with pytest.raises(lf.LazyfuseError, match=r"got float at result\[0\]"):
        lf.jit(lambda x: [1.5, x])(a)
    with pytest.raises(lf.LazyfuseError, match="got tuple with no tensor in it"):
        lf.jit(lambda x: ((), None))(a)
    with pytest.raises(lf.LazyfuseError, match="got str"):
        lf.jit(lambda x: "x")(a)
