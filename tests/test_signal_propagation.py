"""Mean-field predictions (gradflow.signal_propagation) against closed forms, scipy's adaptive
quadrature, seeded Monte Carlo and torch's autograd."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import integrate

from gradflow import signal_propagation as sp
from gradflow.activations import REGISTRY
from gradflow.networks.mlp import ACTIVATION_NAMES

VARIANCES = [1e-6, 0.3, 2.0, 2.5, 30.0, 400.0]  # both sides of the switch at q = 2

#: phi'(0) from the definitions: sigmoid'(0) = 1/4, tanh'(0) = 1, GELU'(0) = Phi(0) = 1/2,
#: tanh-GELU'(0) = 1/2, SiLU'(0) = sigmoid(0) = 1/2.
SLOPE_AT_ZERO = {"sigmoid": 0.25, "tanh": 1.0, "gelu": 0.5, "gelu_tanh": 0.5, "silu": 0.5}


@pytest.mark.parametrize("q", [1e-8, 1e-3, 0.5, 1.0, 3.0, 100.0, 1e4])
def test_relu_with_kaiming_has_backward_factor_one_at_any_variance(q):
    sw2 = 2.0   # Kaiming: fan_in * Var(W) = 2 (He et al. 2015, Eq. 10)
    assert sp.backward_factor("relu", q, sw2) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("q", [1e-8, 1e-3, 0.5, 1.0, 3.0, 100.0, 1e4])
def test_expected_squared_relu_derivative_is_one_half_at_any_variance(q):
    assert sp.derivative_second_moment("relu", q) == pytest.approx(0.5, abs=1e-12)
    assert sp.second_moment("relu", q) == pytest.approx(q / 2, rel=1e-12)


@pytest.mark.parametrize("name", sorted(SLOPE_AT_ZERO))
@pytest.mark.parametrize("sw2", [1 / 3, 1.0, 2.0])
def test_small_signal_factor_is_slope_at_zero_times_sigma_w(name, sw2):
    expected = SLOPE_AT_ZERO[name] * math.sqrt(sw2)
    assert sp.backward_factor(name, 1e-12, sw2) == pytest.approx(expected, rel=1e-6)


def test_small_signal_factor_helper_uses_each_inits_sigma_w():
    # PyTorch's default: sigma_w^2 = 1/3, so GELU gives 0.5 / sqrt(3) per layer
    assert sp.small_signal_factor("gelu_tanh", "default") == pytest.approx(0.5 / math.sqrt(3))
    assert sp.small_signal_factor("tanh", "xavier") == pytest.approx(1.0)
    assert sp.small_signal_factor("sigmoid", "kaiming", gain=2.0) == pytest.approx(
        0.25 * math.sqrt(2.0) * 2.0)


def _quad_reference(f, q):
    s = math.sqrt(q)

    def integrand(u):
        return f(np.array([u]))[0] * math.exp(-u * u / (2 * q)) / math.sqrt(2 * math.pi * q)

    value, _ = integrate.quad(integrand, -40 * s, 40 * s, points=[0.0, -20.0, 20.0],
                              limit=2000, epsabs=0.0, epsrel=1e-12)
    return value


@pytest.mark.parametrize("name", ACTIVATION_NAMES)
@pytest.mark.parametrize("q", VARIANCES)
def test_quadrature_agrees_with_scipy_adaptive_quadrature(name, q):
    phi, dphi = sp.phi(name), sp.phi_prime(name)
    assert sp.second_moment(name, q) == pytest.approx(
        _quad_reference(lambda u: phi(u) ** 2, q), rel=1e-8, abs=1e-300)
    assert sp.derivative_second_moment(name, q) == pytest.approx(
        _quad_reference(lambda u: dphi(u) ** 2, q), rel=1e-8)


@pytest.fixture(scope="module")
def normal_samples():
    return np.random.default_rng(12345).standard_normal(500_000)


@pytest.mark.parametrize("name", ACTIVATION_NAMES)
@pytest.mark.parametrize("q", [0.3, 1.0, 5.0, 50.0])
def test_quadrature_agrees_with_a_large_seeded_monte_carlo_estimate(name, q, normal_samples):
    a = math.sqrt(q) * normal_samples
    for samples, value in [
        (sp.phi(name)(a) ** 2, sp.second_moment(name, q)),
        (sp.phi_prime(name)(a) ** 2, sp.derivative_second_moment(name, q)),
    ]:
        standard_error = samples.std() / math.sqrt(samples.size)
        assert abs(samples.mean() - value) < 5 * standard_error


@pytest.mark.parametrize("name", ACTIVATION_NAMES)
def test_numpy_activations_and_derivatives_match_torch_autograd(name):
    x = torch.linspace(-12, 12, 4001, dtype=torch.float64, requires_grad=True)
    y = REGISTRY[name].fn(x)
    (dy,) = torch.autograd.grad(y.sum(), x)
    grid = x.detach().numpy()
    np.testing.assert_allclose(sp.phi(name)(grid), y.detach().numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(sp.phi_prime(name)(grid), dy.numpy(), rtol=1e-10, atol=1e-14)


def test_variance_map_in_closed_form_for_relu_and_in_the_linear_limit_for_tanh():
    assert sp.variance_map("relu", 1.7, 2.0, 0.1) == pytest.approx(2.0 * 1.7 / 2 + 0.1)
    # tanh(x) ~ x for small x: q_next ~ sigma_w^2 q + sigma_b^2
    assert sp.variance_map("tanh", 1e-8, 3.0, 0.0) == pytest.approx(3e-8, rel=1e-6)


def test_prediction_starts_from_the_inputs_second_moment_and_pytorchs_nonzero_bias():
    n = 64
    table = sp.predict_layers("tanh", "default", depth=3, width=n, input_second_moment=2.0)
    sigma_w2, sigma_b2 = 1 / 3, 1 / (3 * n)   # PyTorch's default: Var(W) = Var(b) = 1/(3n)
    assert table["q"].iloc[0] == pytest.approx(sigma_w2 * 2.0 + sigma_b2)
    q1 = table["q"].iloc[0]
    expected_q2 = sigma_w2 * _quad_reference(lambda u: np.tanh(u) ** 2, q1) + sigma_b2
    assert table["q"].iloc[1] == pytest.approx(expected_q2, rel=1e-9)


def test_predicted_signal_ratio_is_the_product_of_the_later_layers_factors():
    table = sp.predict_layers("gelu", "kaiming", depth=6, width=128)
    factors = table["backward_factor"].to_numpy()
    for layer in range(1, 7):
        assert table.loc[layer, "signal_ratio"] == pytest.approx(np.prod(factors[layer:]))
    assert sp.mean_backward_factor(table) == pytest.approx(np.prod(factors[1:]) ** (1 / 5))


def test_prediction_for_unequal_widths_uses_each_layers_fan_in():
    # the seed notebook's network: widths 3 -> ... -> 1; default init: sigma_w^2 = 1/3 per layer,
    # bias variance 1/(3 * 3) = 1/9 everywhere (every fan-in is 3)
    table = sp.predict_layers("gelu_tanh", "default", [3, 3, 3, 3, 3, 1],
                              input_second_moment=2 / 3)
    assert table["q"].iloc[0] == pytest.approx(1 / 3 * 2 / 3 + 1 / 9)
    assert len(table) == 5


def test_unknown_names_and_bad_variances_raise():
    with pytest.raises(ValueError, match="unknown activation 'elu'"):
        sp.backward_factor("elu", 1.0, 1.0)
    with pytest.raises(ValueError, match="unknown initialisation"):
        sp.predict_layers("relu", "lecun", depth=2, width=4)
    with pytest.raises(ValueError, match="q must be a finite variance"):
        sp.gaussian_expectation(np.square, -1.0)


def test_loss_shares_split_the_log_loss_into_initialisation_and_slope():
    # Closed forms: PyTorch's default sigma_w^2 = 1/3, GELU'(0) = 1/2 for every GELU form.
    shares = sp.loss_shares([0.25, 0.36], "gelu_tanh", "default", fan_in=3, fan_out=3)
    assert shares["ln_init"] == pytest.approx(math.log(math.sqrt(1 / 3)), rel=1e-12)
    assert shares["ln_slope"] == pytest.approx(math.log(0.5), rel=1e-12)
    assert shares["small"] == pytest.approx(0.5 / math.sqrt(3), rel=1e-12)
    assert shares["share_small"] == pytest.approx(math.log(2) / math.log(2 * math.sqrt(3)), rel=1e-12)
    assert shares["meas"] == pytest.approx(0.3, rel=1e-12)  # geometric mean of 0.25 and 0.36
    assert shares["ln_act"] == pytest.approx(math.log(0.3) - math.log(math.sqrt(1 / 3)), rel=1e-12)
    assert shares["share_meas"] == pytest.approx(1 - math.log(math.sqrt(1 / 3)) / math.log(0.3))


def test_loss_shares_reject_factors_that_are_not_positive():
    with pytest.raises(ValueError, match="positive finite numbers"):
        sp.loss_shares([0.3, 0.0], "gelu_tanh", "default")
    with pytest.raises(ValueError, match="positive finite numbers"):
        sp.loss_shares([], "gelu_tanh", "default")
