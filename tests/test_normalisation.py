"""gradflow.normalisation: the three normalisers against PyTorch's own modules (outputs and
gradients, float32 and float64), the closed-form Jacobians against autograd, the growth laws
against their closed forms and against networks built on configurations the chapter does not use,
and the errors at the boundary."""

import math

import numpy as np
import pytest
import torch
from scipy import integrate, stats
from torch import nn

import gradflow
from gradflow import normalisation as norm
from gradflow.networks import stacked

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TOL = {torch.float32: {"rtol": 1e-5, "atol": 1e-5}, torch.float64: {"rtol": 1e-12, "atol": 1e-12}}


def _affine(shape, dtype, seed):
    g = torch.Generator().manual_seed(seed)
    return (1 + 0.3 * torch.randn(shape, generator=g, dtype=dtype),
            0.2 * torch.randn(shape, generator=g, dtype=dtype))


def _compare(ours, module, x, dtype, params):
    """Outputs, input gradients and parameter gradients of ``ours(x)`` and ``module(x)``."""
    upstream = torch.randn(x.shape, dtype=dtype, generator=torch.Generator().manual_seed(9))
    x1 = x.clone().requires_grad_(True)
    x2 = x.clone().requires_grad_(True)
    mine = [p.clone().requires_grad_(True) for p in params]
    y1, y2 = ours(x1, *mine), module(x2)
    torch.testing.assert_close(y1, y2, **TOL[dtype])
    g1 = torch.autograd.grad(y1, [x1, *mine], upstream)
    theirs = [p for p in module.parameters()]
    g2 = torch.autograd.grad(y2, [x2, *theirs], upstream)
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b, **TOL[dtype])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", [(3, 7), (2, 5, 6)])
def test_layer_norm_equals_torch_layer_norm_outputs_and_gradients(dtype, shape):
    x = 3 + 2 * torch.randn(shape, dtype=dtype, generator=torch.Generator().manual_seed(1))
    d = shape[-1]
    module = nn.LayerNorm(d, eps=1e-3, dtype=dtype)
    weight, bias = _affine(d, dtype, 2)
    with torch.no_grad():
        module.weight.copy_(weight)
        module.bias.copy_(bias)
    _compare(lambda t, w, b: norm.layer_norm(t, d, w, b, eps=1e-3), module, x, dtype,
             [weight, bias])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_layer_norm_over_two_trailing_dimensions_equals_torch(dtype):
    x = torch.randn(4, 3, 5, dtype=dtype, generator=torch.Generator().manual_seed(3))
    expected = nn.functional.layer_norm(x, (3, 5))
    torch.testing.assert_close(gradflow.layer_norm(x, (3, 5)), expected, **TOL[dtype])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("eps", [None, 1e-4])
def test_rms_norm_equals_torch_rms_norm_outputs_and_gradients(dtype, eps):
    x = 0.5 + torch.randn(6, 9, dtype=dtype, generator=torch.Generator().manual_seed(4))
    module = nn.RMSNorm(9, eps=eps, dtype=dtype)
    weight, _ = _affine(9, dtype, 5)
    with torch.no_grad():
        module.weight.copy_(weight)
    _compare(lambda t, w: norm.rms_norm(t, 9, w, eps=eps), module, x, dtype, [weight])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("batch", [2, 13])
def test_batch_norm_equals_torch_batch_norm_1d_in_training_mode(dtype, batch):
    x = -1 + 4 * torch.randn(batch, 5, dtype=dtype, generator=torch.Generator().manual_seed(6))
    module = nn.BatchNorm1d(5, eps=1e-4, dtype=dtype).train()
    weight, bias = _affine(5, dtype, 7)
    with torch.no_grad():
        module.weight.copy_(weight)
        module.bias.copy_(bias)
    _compare(lambda t, w, b: norm.batch_norm(t, w, b, eps=1e-4), module, x, dtype, [weight, bias])


def test_layer_norm_uses_the_biased_variance_and_rms_norm_equals_it_at_zero_mean():
    x = torch.tensor([[1.0, 2.0, 4.0, 9.0]], dtype=torch.float64)
    y = norm.layer_norm(x, 4, eps=1e-12)
    # biased: the output's mean square is exactly 1 (an unbiased divisor would give 3/4)
    assert abs(y.pow(2).mean().item() - 1) < 1e-9
    centred = x - x.mean()
    torch.testing.assert_close(norm.rms_norm(centred, 4, eps=1e-12), y)
    assert not torch.allclose(norm.rms_norm(x, 4, eps=1e-12), y)


@pytest.mark.parametrize("d, seed", [(5, 0), (12, 1)])
def test_layer_norm_jacobian_equals_autograd(d, seed):
    g = torch.Generator().manual_seed(seed)
    x = 2 + 3 * torch.randn(d, dtype=torch.float64, generator=g)
    gamma = 1 + torch.randn(d, dtype=torch.float64, generator=g)
    beta = torch.randn(d, dtype=torch.float64, generator=g)
    expected = torch.autograd.functional.jacobian(
        lambda t: nn.functional.layer_norm(t, (d,), gamma, beta, eps=1e-2), x)
    torch.testing.assert_close(gradflow.layer_norm_jacobian(x, gamma, eps=1e-2), expected,
                               rtol=1e-12, atol=1e-12)


def test_rms_norm_jacobian_equals_autograd():
    x = torch.randn(7, dtype=torch.float64, generator=torch.Generator().manual_seed(2)) + 1
    gamma = torch.linspace(0.5, 1.5, 7, dtype=torch.float64)
    expected = torch.autograd.functional.jacobian(
        lambda t: nn.functional.rms_norm(t, (7,), gamma, eps=1e-3), x)
    torch.testing.assert_close(norm.rms_norm_jacobian(x, gamma, eps=1e-3), expected,
                               rtol=1e-12, atol=1e-12)


def test_layer_norm_jacobian_removes_the_mean_and_the_input_direction_and_scales_as_one_over_c():
    x = torch.randn(10, dtype=torch.float64, generator=torch.Generator().manual_seed(8)) * 2 + 1
    jac = norm.layer_norm_jacobian(x, eps=1e-12)
    ones, centred = torch.ones(10, dtype=torch.float64), x - x.mean()
    assert jac.matmul(ones).abs().max() < 1e-10 and jac.matmul(centred).abs().max() < 1e-9
    assert torch.linalg.matrix_rank(jac, rtol=1e-9).item() == 10 - 2
    for c in (0.3, 7.0, 250.0):
        torch.testing.assert_close(norm.layer_norm_jacobian(c * x, eps=1e-12), jac / c,
                                   rtol=1e-8, atol=1e-12)


def test_batch_norm_gradient_growth_is_its_closed_form():
    assert norm.batch_norm_gradient_growth("relu") == pytest.approx(math.pi / (math.pi - 1), 1e-9)
    assert norm.batch_norm_gradient_growth("identity") == 1.0
    # tanh by scipy quadrature, independently of the package's Gauss-Hermite rule
    pdf = stats.norm.pdf
    num = integrate.quad(lambda z: (1 - np.tanh(z) ** 2) ** 2 * pdf(z), -12, 12)[0]
    var = integrate.quad(lambda z: np.tanh(z) ** 2 * pdf(z), -12, 12)[0]
    assert norm.batch_norm_gradient_growth("tanh") == pytest.approx(num / var, rel=1e-9)


def _bn_plain_growth(width, batch, depth, seeds):
    """Measured per-layer growth of the squared gradient towards the input, median over seeds,
    in a plain ReLU network with BatchNorm (StackedMLP's batch_norm network, float64)."""
    weights, biases = stacked.draw_stacked_weights([width] * (depth + 1), seeds, init="kaiming",
                                                   dtype=torch.float64)
    g = torch.Generator().manual_seed(99)
    x = torch.randn(len(seeds), batch, width, dtype=torch.float64, generator=g).requires_grad_()
    # every layer batch-normalised: one extra, unread layer makes the last one "not last"
    states = stacked.stacked_forward(x, weights + [weights[-1]], biases + [biases[-1]], 0.0,
                                     activation="relu", batch_norm=True, return_states=True)
    top = torch.randn(states[depth].shape, dtype=torch.float64, generator=g)
    grads = torch.autograd.grad(states[depth], states[:depth], top)
    sq = torch.stack([gr.pow(2).sum(dim=(1, 2)) for gr in grads], 1).log()
    slope = np.polyfit(np.arange(depth), sq.T.numpy(), 1)[0]   # log per layer, per seed
    return float(np.exp(-np.median(slope)))


def test_bn_relu_network_growth_approaches_pi_over_pi_minus_one_when_wide_and_large_batch():
    measured = _bn_plain_growth(width=200, batch=200, depth=12, seeds=[0, 1, 2])
    assert measured == pytest.approx(math.pi / (math.pi - 1), rel=0.05)
    assert measured > 1.3


def test_stream_variance_laws_match_residual_networks_the_chapter_does_not_build():
    depth, width, batch = 9, 300, 256
    for bn, branch in ((False, "none"), (True, "batch")):
        weights, biases = stacked.draw_stacked_weights([40] + [width] * depth, range(3),
                                                       init="kaiming", dtype=torch.float64)
        x = torch.randn(3, batch, 40, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
        with torch.no_grad():
            states = stacked.stacked_forward(x, weights, biases, 1.0, activation="relu",
                                             batch_norm=bn, preactivation=True,
                                             final_activation=False, return_states=True)
        variance = np.array([s.var(dim=(1, 2)).mean().item() for s in states[1:]])
        predicted = norm.stream_variance_law(np.arange(1, depth + 1), variance[0], branch)
        np.testing.assert_allclose(variance, predicted, rtol=0.15)
    np.testing.assert_allclose(norm.stream_variance_law([1, 4], 2.0, "none"), [2.0, 16.0])
    np.testing.assert_allclose(norm.stream_variance_law([1, 4], 2.0, "batch"), [2.0, 5.0])


@pytest.mark.parametrize("call, match", [
    (lambda: norm.layer_norm(torch.zeros(3, 4), 5), r"normalized_shape \(5,\) must equal"),
    (lambda: norm.rms_norm(torch.zeros(3, 4), (2, 4)), "must equal the last 2"),
    (lambda: norm.layer_norm(torch.zeros(3, 4), 4, weight=torch.ones(3)), "weight must have"),
    (lambda: norm.batch_norm(torch.zeros(1, 4)), "batch of at least 2 examples"),
    (lambda: norm.batch_norm(torch.zeros(2, 4, 3)), r"\(batch, features\)"),
    (lambda: norm.layer_norm(torch.zeros(3, 4), 4, eps=0.0), "eps must be a positive"),
    (lambda: norm.rms_norm(torch.zeros(3, 4), 4, eps=-1e-6), "eps must be a positive"),
    (lambda: norm.batch_norm(torch.zeros(3, 4), eps=float("nan")), "eps must be a positive"),
    (lambda: norm.layer_norm(torch.zeros(3, 4, dtype=torch.long), 4), "floating-point"),
    (lambda: norm.layer_norm_jacobian(torch.zeros(2, 3)), "one vector"),
    (lambda: norm.stream_variance_law([0, 1], 1.0, "none"), "layer indices >= 1"),
    (lambda: norm.stream_variance_law([1], 1.0, "layer"), "'none' or 'batch'"),
])
def test_bad_input_gets_a_clear_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()
