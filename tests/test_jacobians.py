"""gradflow.jacobians and the orthogonal initialisation, against independent references:
``torch.autograd.functional.jacobian``, finite differences, ``numpy.corrcoef``, closed forms and
``scipy.integrate.quad``. Settings the chapter does not use (other widths, depths, activations)."""

import math

import numpy as np
import pytest
import torch
from scipy import integrate

from gradflow import jacobians
from gradflow.networks.mlp import DeepMLP, initialise_linear_, weight_variance
from gradflow.networks.stacked import draw_stacked_weights, stacked_forward

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _stack(widths, seeds, init="kaiming", gain=1.0, bias=0.3):
    w, b = draw_stacked_weights(widths, seeds, init, gain, bias)
    return [x.double() for x in w], [x.double() for x in b]


# --- orthogonal initialisation --------------------------------------------------------------------


@pytest.mark.parametrize("n", [3, 17])
def test_orthogonal_init_gives_an_orthogonal_matrix(n):
    w = torch.empty(n, n)
    initialise_linear_(w, None, "orthogonal", generator=torch.Generator().manual_seed(5))
    w = w.double()
    assert torch.allclose(w @ w.T, torch.eye(n, dtype=torch.float64), atol=1e-5)
    assert torch.allclose(w.T @ w, torch.eye(n, dtype=torch.float64), atol=1e-5)


def test_orthogonal_init_with_gain_scales_every_singular_value():
    net = DeepMLP(depth=3, width=6, init="orthogonal", gain=1.7, seed=2)
    for block in net.blocks:
        s = torch.linalg.svdvals(block.linear.weight.double())
        assert torch.allclose(s, torch.full_like(s, 1.7), atol=1e-5)
        assert torch.all(block.linear.bias == 0)   # biases follow the weights: zeros


@pytest.mark.parametrize("fan_in, fan_out", [(9, 4), (4, 9)])
def test_semi_orthogonal_has_orthonormal_rows_or_scaled_columns(fan_in, fan_out):
    w = torch.empty(fan_out, fan_in)
    initialise_linear_(w, None, "semi_orthogonal", generator=torch.Generator().manual_seed(1))
    w = w.double()
    if fan_out <= fan_in:
        assert torch.allclose(w @ w.T, torch.eye(fan_out, dtype=torch.float64), atol=1e-5)
    else:   # columns orthogonal with squared norm fan_out / fan_in, so Var(W) = 1 / fan_in
        expected = torch.eye(fan_in, dtype=torch.float64) * fan_out / fan_in
        assert torch.allclose(w.T @ w, expected, atol=1e-5)
    assert (w**2).sum().item() / w.numel() == pytest.approx(1 / fan_in, rel=1e-5)
    assert weight_variance("semi_orthogonal", fan_in, fan_out) == pytest.approx(1 / fan_in)


def test_orthogonal_init_of_a_square_layer_is_the_semi_orthogonal_draw():
    a, b = torch.empty(5, 5), torch.empty(5, 5)
    initialise_linear_(a, None, "orthogonal", generator=torch.Generator().manual_seed(3))
    initialise_linear_(b, None, "semi_orthogonal", generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_orthogonal_init_of_a_non_square_layer_raises_and_names_the_way_out():
    with pytest.raises(ValueError, match="needs a square layer.*semi_orthogonal"):
        DeepMLP([3, 5, 5, 1], init="orthogonal", seed=0)
    with pytest.raises(ValueError, match="needs a square layer"):
        weight_variance("orthogonal", 4, 2)


def test_default_draws_are_unchanged_by_the_new_schemes():
    torch.manual_seed(11)
    reference = torch.nn.Linear(4, 3)
    net = DeepMLP([4, 3], init="default", seed=11)
    assert torch.equal(net.blocks[0].linear.weight, reference.weight)
    assert torch.equal(net.blocks[0].linear.bias, reference.bias)


# --- the Jacobian ---------------------------------------------------------------------------------


@pytest.mark.parametrize("activation, shortcut", [("gelu", 0.0), ("silu", 1.0), ("tanh", 1.0)])
def test_jacobian_matches_torch_autograd_functional(activation, shortcut):
    weights, biases = _stack([7] * 4, [3, 8])
    x = torch.randn(2, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(0))

    def forward(h):
        return stacked_forward(h, weights, biases, shortcut, activation=activation)

    by_autograd = jacobians.input_output_jacobian(forward, x)
    by_product = jacobians.jacobian_product(x, weights, biases, shortcut, activation=activation)[3]
    for m in range(2):
        def one(v, m=m):
            return stacked_forward(v.reshape(1, 1, 7), [w[m:m + 1] for w in weights],
                                   [b[m:m + 1] for b in biases], shortcut,
                                   activation=activation).reshape(7)
        reference = torch.autograd.functional.jacobian(one, x[m])
        assert torch.allclose(by_autograd[m], reference, atol=1e-12)
        assert torch.allclose(by_product[m], reference, atol=1e-12)


def test_jacobian_product_gives_every_probe_depth():
    weights, biases = _stack([5] * 6, [1])
    x = torch.randn(1, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    many = jacobians.jacobian_product(x, weights, biases, 0.0, activation="relu", depths=[2, 5])
    two = jacobians.jacobian_product(x, weights[:2], biases[:2], 0.0, activation="relu")
    assert torch.allclose(many[2], two[2])
    with pytest.raises(ValueError, match="depths must be <="):
        jacobians.jacobian_product(x, weights, biases, 0.0, activation="relu", depths=[9])


def test_one_orthogonal_relu_layer_has_the_closed_form_spread():
    # J = D W with W = sqrt(2) Q: J J^T has eigenvalue 2 on the active units and 0 elsewhere, so
    # with a share p of active units Var(lambda)/E[lambda]^2 = (1 - p) / p exactly.
    n = 40
    weights, biases = _stack([n, n], [6], init="orthogonal", gain=math.sqrt(2), bias=0.0)
    x = torch.randn(1, n, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    jac = jacobians.jacobian_product(x, weights, biases, 0.0, activation="relu")[1]
    p = ((weights[0][0] @ x[0]) > 0).double().mean().item()
    moments = jacobians.spectrum_moments(jacobians.singular_values(jac))
    # (the orthogonal draw is float32: exact to about 1e-7)
    assert moments["spread"].iloc[0] == pytest.approx((1 - p) / p, rel=1e-6)
    assert moments["mean_sq"].iloc[0] == pytest.approx(2 * p, rel=1e-6)


def test_predicted_spectrum_closed_forms_for_relu():
    for weights, per_layer in (("gaussian", 2.0), ("orthogonal", 1.0)):
        table = jacobians.predicted_spectrum("relu", 7, 2.0, weights=weights)
        assert np.allclose(table["mean_sq"], 1.0)
        assert np.allclose(table["spread"], per_layer * np.arange(1, 8))
    with pytest.raises(ValueError, match="weights"):
        jacobians.predicted_spectrum("relu", 3, 2.0, weights="uniform")


def test_critical_point_is_a_fixed_point_with_chi_one():
    sigma_w2 = 1.2
    q, sigma_b2 = jacobians.critical_point("tanh", sigma_w2)

    def gauss(f):
        return integrate.quad(lambda z: f(z) * math.exp(-z * z / 2) / math.sqrt(2 * math.pi),
                              -12, 12, limit=200)[0]

    chi = sigma_w2 * gauss(lambda z: (1 - math.tanh(math.sqrt(q) * z) ** 2) ** 2)
    assert chi == pytest.approx(1.0, abs=1e-9)
    assert sigma_w2 * gauss(lambda z: math.tanh(math.sqrt(q) * z) ** 2) + sigma_b2 == \
        pytest.approx(q, rel=1e-9)
    with pytest.raises(ValueError, match="no critical point"):
        jacobians.critical_point("tanh", 0.9)


# --- shattered gradients --------------------------------------------------------------------------


def test_neighbour_correlation_on_sequences_with_known_answers():
    n = 50
    assert jacobians.neighbour_correlation(np.linspace(-3, 5, n)) == pytest.approx(1.0)
    alternating = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
    assert jacobians.neighbour_correlation(alternating) == pytest.approx(-1.0)
    assert jacobians.neighbour_correlation(alternating, lag=2) == pytest.approx(1.0)
    rng = np.random.default_rng(0)
    noise = rng.normal(size=(3, 40))
    for lag in (1, 4):
        expected = [np.corrcoef(row[:-lag], row[lag:])[0, 1] for row in noise]
        assert np.allclose(jacobians.neighbour_correlation(noise, lag), expected)
    assert np.isnan(jacobians.neighbour_correlation(np.ones(10)))


def test_a_too_long_lag_raises():
    with pytest.raises(ValueError, match="too long for a grid of 10 points"):
        jacobians.neighbour_correlation(np.arange(10.0), lag=8)
    with pytest.raises(ValueError, match="lag must be a positive integer"):
        jacobians.neighbour_correlation(np.arange(10.0), lag=0)
    jacobians.neighbour_correlation(np.arange(10.0), lag=7)   # 3 pairs: allowed


def test_balduzzi_rates_from_their_products():
    depths = np.arange(0, 30)
    assert np.allclose(jacobians.balduzzi_correlation(depths, "plain"), 2.0 ** -depths)
    assert np.allclose(jacobians.balduzzi_correlation(depths, "residual"), 0.75 ** depths)
    product = [np.prod([(1 + 1 / (2 * k)) / (1 + 1 / k) for k in range(1, d + 1)]) for d in depths]
    assert np.allclose(jacobians.balduzzi_correlation(depths, "residual_bn"), product)
    # about 1/sqrt(L): quadrupling the depth halves it
    big = jacobians.balduzzi_correlation(np.array([1000, 4000]), "residual_bn")
    assert big[1] / big[0] == pytest.approx(0.5, rel=1e-3)
    with pytest.raises(ValueError, match="network kind"):
        jacobians.balduzzi_correlation(3, "dense")


def test_folded_batch_norm_reproduces_the_batch_norm_forward_pass():
    weights, biases = _stack([2, 6, 6, 6, 1], [4, 9])
    x = torch.randn(2, 11, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    for shortcut in (0.0, 1.0):
        bn = stacked_forward(x, weights, biases, shortcut, activation="tanh", batch_norm=True,
                             final_activation=False)
        fw, fb = jacobians.fold_batch_norm(x, weights, biases, shortcut, activation="tanh")
        folded = stacked_forward(x, fw, fb, shortcut, activation="tanh", final_activation=False)
        assert torch.allclose(bn, folded, atol=1e-10)
    # and PyTorch's own BatchNorm (training mode, no affine) on the first layer
    first = torch.baddbmm(biases[0].unsqueeze(2), weights[0], x.transpose(1, 2))
    ref = torch.nn.functional.batch_norm(first[0].T, None, None, training=True)
    fw, fb = jacobians.fold_batch_norm(x, weights, biases, 0.0, activation="tanh")
    mine = (x[0] @ fw[0][0].T + fb[0][0])
    assert torch.allclose(mine, ref, atol=1e-10)


def test_folding_every_layer_reproduces_batch_norm_before_a_readout():
    weights, biases = _stack([1, 5, 5, 5, 1], [2], bias=0.1)
    x = torch.linspace(-1, 1, 9, dtype=torch.float64).reshape(1, -1, 1)
    bn = stacked_forward(x, weights, biases, 1.0, activation="relu", batch_norm=True,
                         final_activation=False)
    fw, fb = jacobians.fold_batch_norm(x, weights[:-1], biases[:-1], 1.0, activation="relu",
                                       normalise_last=True)
    hidden = stacked_forward(x, fw, fb, 1.0, activation="relu", final_activation=True)
    readout = hidden @ weights[-1].transpose(1, 2) + biases[-1].unsqueeze(1)
    assert torch.allclose(bn, readout, atol=1e-10)


def test_input_gradients_match_finite_differences():
    weights, biases = _stack([1, 8, 8, 1], [2, 5], bias=0.5)
    grid = torch.linspace(-1.5, 1.5, 31, dtype=torch.float64)

    def forward(x):
        return stacked_forward(x, weights, biases, 1.0, activation="gelu", final_activation=False)

    grads = jacobians.input_gradients(forward, grid, 2)
    h = 1e-6
    up = forward((grid + h).reshape(1, -1, 1).expand(2, -1, 1))[..., 0]
    down = forward((grid - h).reshape(1, -1, 1).expand(2, -1, 1))[..., 0]
    assert np.allclose(grads, ((up - down) / (2 * h)).numpy(), atol=1e-7)
    with pytest.raises(ValueError, match="grid must be 1-D"):
        jacobians.input_gradients(forward, grid[:2], 2)


def test_bias_free_relu_network_gradient_takes_two_values():
    weights, biases = _stack([1, 9, 9, 9, 9, 1], [0, 1], bias=0.0)
    grid = torch.linspace(-1.0, 1.0, 40, dtype=torch.float64)

    def forward(x):
        return stacked_forward(x, weights, biases, 0.0, activation="relu", final_activation=False)

    for row in jacobians.input_gradients(forward, grid, 2):
        assert len(np.unique(np.round(row, 12))) <= 2
