"""What a gradient becomes: kernel counts (the backward pass fused with the forward one),
what explain() says about it, no recompiles on a second call, lf.jit of a whole training
step, and the same gradients on the CUDA target (the simulator)."""

from __future__ import annotations

import re

import numpy as np
import pytest

import lazyfuse as lf
from lazyfuse import config
from lazyfuse.runtime.variants import Layout

RNG = np.random.default_rng(7)


def kernel_lines(*tensors: lf.Tensor) -> tuple[int, int]:
    """(kernels, of which BLAS products) in the plan of ``tensors``."""
    text = lf.explain(*tensors)
    count = int(re.search(r"^kernels \((\d+)\):", text, re.M).group(1))
    return count, text.count("(runs as BLAS")


def cross_entropy(n: int, classes: int):
    labels = RNG.integers(0, classes, n)
    return labels, lambda z: -lf.log_softmax(z)[lf.arange(n), labels].mean()


def cross_entropy_numpy(z: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    shifted = z - z.max(1, keepdims=True)
    p = np.exp(shifted) / np.exp(shifted).sum(1, keepdims=True)
    n = len(labels)
    loss = -np.log(p[np.arange(n), labels]).mean()
    grad = p.copy()
    grad[np.arange(n), labels] -= 1
    return loss, grad / n


def layernorm_loss(weights: np.ndarray):
    def loss(x, gamma, beta):
        mean = x.mean(1, keepdims=True)
        var = ((x - mean) ** 2).mean(1, keepdims=True)
        return ((((x - mean) / lf.sqrt(var + 1e-5)) * gamma + beta) * weights).sum()

    return loss


def test_softmax_cross_entropy_value_and_gradient_are_two_kernels():
    z = RNG.standard_normal((64, 10))
    labels, loss = cross_entropy(64, 10)
    value, grad = lf.value_and_grad(loss)(z)
    assert kernel_lines(value, grad) == (2, 0)
    got_value, got_grad = lf.compute(value, grad)
    want_value, want_grad = cross_entropy_numpy(z, labels)
    np.testing.assert_allclose(got_value, want_value, rtol=1e-12)
    np.testing.assert_allclose(got_grad, want_grad, rtol=1e-10, atol=1e-14)


def test_layernorm_value_and_three_gradients_are_three_kernels():
    x, weights = RNG.standard_normal((40, 30)), RNG.random((40, 30))
    gamma, beta = RNG.random(30), RNG.random(30)
    value, grads = lf.value_and_grad(layernorm_loss(weights), argnums=(0, 1, 2))(x, gamma, beta)
    assert kernel_lines(value, *grads) == (3, 0)
    mean, std = x.mean(1, keepdims=True), np.sqrt(x.var(1, keepdims=True) + 1e-5)
    xhat = (x - mean) / std
    d_xhat = weights * gamma
    d_x = (d_xhat - d_xhat.mean(1, keepdims=True) - xhat * (d_xhat * xhat).mean(1, keepdims=True)) / std
    for got, want in zip(lf.compute(*grads), (d_x, (weights * xhat).sum(0), weights.sum(0)), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


def test_tanh_layer_gradient_is_the_blas_products_and_two_kernels():
    x, w, b = RNG.random((50, 30)), RNG.random((30, 20)) - 0.5, RNG.random(20)
    value, (gw, gb) = lf.value_and_grad(lambda w, b: (lf.tanh(x @ w + b) ** 2).mean(), argnums=(0, 1))(w, b)
    kernels, blas = kernel_lines(value, gw, gb)
    assert blas == 2 and kernels - blas <= 2
    h = np.tanh(x @ w + b)
    d_pre = 2 * h * (1 - h * h) / h.size
    np.testing.assert_allclose(gw.compute(), x.T @ d_pre, rtol=1e-10)
    np.testing.assert_allclose(gb.compute(), d_pre.sum(0), rtol=1e-10)


def test_explain_marks_the_backward_pass_and_the_forward_values_it_reads():
    z = RNG.standard_normal((8, 5))
    _, loss = cross_entropy(8, 5)
    value, grad = lf.value_and_grad(loss)(z)
    text = lf.explain(value, grad)
    assert re.search(r"= exp t\d+$", text, re.M)  # a forward node is not marked
    assert re.search(r"= multiply t\d+ t\d+   ; grad of t\d+", text)
    assert "(forward and backward)" in text
    reads = text.split("forward values the backward pass reads:\n")[1]
    assert re.search(r"\(sum\): stored by kernel \d", reads)
    assert "(exp): recomputed where it is read" in reads


def test_a_second_gradient_call_compiles_nothing():
    z = RNG.standard_normal((16, 6))
    _, loss = cross_entropy(16, 6)
    lf.compute(*lf.value_and_grad(loss)(z))
    before = lf.cache_info()["compiles"]
    value, grad = lf.compute(*lf.value_and_grad(loss)(z + 1.0))
    assert lf.cache_info()["compiles"] == before
    assert np.isfinite(value) and grad.shape == z.shape


def _mlp(params, x, y):
    hidden = lf.relu(x @ params["w1"] + params["b1"])
    p = lf.sigmoid(hidden @ params["w2"] + params["b2"])[:, 0]
    return -(y * lf.log(p) + (1 - y) * lf.log(1 - p)).mean()


def _step(params, x, y, lr):
    loss, grads = lf.value_and_grad(_mlp)(params, x, y)
    return loss, {k: params[k] - lr * grads[k] for k in params}


def _numpy_step(params, x, y, lr):
    h_pre = x @ params["w1"] + params["b1"]
    h = np.maximum(h_pre, 0)
    p = 1 / (1 + np.exp(-(h @ params["w2"] + params["b2"])[:, 0]))
    loss = -(y * np.log(p) + (1 - y) * np.log(1 - p)).mean()
    d_logit = ((p - y) / len(y))[:, None]
    d_h = (d_logit @ params["w2"].T) * (h_pre > 0)
    grads = {"w2": h.T @ d_logit, "b2": d_logit.sum(0), "w1": x.T @ d_h, "b1": d_h.sum(0)}
    return loss, {k: params[k] - lr * grads[k] for k in params}


def test_a_jitted_training_step_traces_once_and_takes_each_learning_rate():
    params = {
        "w1": RNG.uniform(-0.5, 0.5, (2, 8)),
        "b1": np.full(8, 0.1),
        "w2": RNG.uniform(-0.5, 0.5, (8, 1)),
        "b2": np.full(1, 0.1),
    }
    x, y = RNG.random((10, 2)), (RNG.random(10) > 0.5).astype(float)
    step = lf.jit(_step)
    mine, reference = params, params
    for lr in (0.5, 0.05, 0.2):
        loss, mine = step(mine, x, y, lr)
        want_loss, reference = _numpy_step(reference, x, y, lr)
        np.testing.assert_allclose(loss, want_loss, rtol=1e-12)
        for k in params:
            np.testing.assert_allclose(mine[k], reference[k], rtol=1e-10, atol=1e-14)
    assert len(step.traces) == 1


def test_a_traced_scalar_in_the_loss_is_not_folded_into_a_constant():
    """The constant folding of size-1 cotangents leaves lf.jit's arguments alone."""
    grad_of = lf.jit(lambda w, scale: lf.grad(lambda w: scale * (w * w).sum() / 3.0)(w))
    w = np.array([1.0, -2.0, 4.0])
    for scale in (1.0, 5.0, -0.5):
        np.testing.assert_allclose(grad_of(w, scale), scale * 2 * w / 3.0)
    assert len(grad_of.traces) == 1


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_the_same_gradients_on_the_cuda_target():
    z = RNG.standard_normal((12, 5))
    labels, loss = cross_entropy(12, 5)
    x, weights = RNG.standard_normal((6, 9)), RNG.random((6, 9))
    gamma, beta, table = RNG.random(9), RNG.random(9), RNG.random((5, 3))
    on_cpu = lf.compute(*lf.value_and_grad(loss)(z))
    ln_cpu = lf.compute(*lf.grad(layernorm_loss(weights), argnums=(0, 1, 2))(x, gamma, beta))
    with config.override(target="cuda", cuda_block=8, cuda_tile=8):
        on_cuda = lf.compute(*lf.value_and_grad(loss)(z))
        ln_cuda = lf.compute(*lf.grad(layernorm_loss(weights), argnums=(0, 1, 2))(x, gamma, beta))
        embedded = lf.grad(lambda e: (e[labels] ** 2).sum())(table).compute()
    for got, want in zip((*on_cuda, *ln_cuda), (*on_cpu, *ln_cpu), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-13)
    scattered = np.zeros_like(table)
    np.add.at(scattered, labels, 2 * table[labels])
    np.testing.assert_allclose(embedded, scattered, rtol=1e-12)


def test_a_broadcast_cotangent_keeps_the_row_kernel_on_its_contiguous_variant():
    """The per-row cotangent of cross-entropy is a broadcast (stride-0) view: copied small,
    it does not send the row kernel to its any-strides variant (several times slower)."""
    z = RNG.standard_normal((64, 10))
    _, loss = cross_entropy(64, 10)
    step = lf.jit(lf.value_and_grad(loss))
    step(z)
    (trace,) = step.traces.values()
    row_kernel = max(trace.plan.calls, key=lambda call: len(call.outputs))
    assert {variant.layout for variant in row_kernel.kernels} == {Layout.C}
