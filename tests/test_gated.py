"""Tests of gradflow.gated: the gated units against PyTorch's built-ins and a direct computation,
their derivatives against autograd, the matched width and the mean-field predictions against
Monte Carlo."""

import math

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from gradflow import gated, gated_mean_field


@pytest.fixture
def pair():
    generator = torch.Generator().manual_seed(11)
    a = 3 * torch.randn(7, 5, generator=generator, dtype=torch.float64)
    b = torch.randn(7, 5, generator=generator, dtype=torch.float64)
    return a, b


def test_glu_matches_torch_glu(pair):
    a, b = pair
    # F.glu(x) splits x into halves (u, v) and returns u * sigmoid(v)
    expected = F.glu(torch.cat([b, a], dim=-1), dim=-1)
    torch.testing.assert_close(gated.glu(a, b), expected, rtol=0, atol=1e-15)


def test_geglu_uses_the_exact_gelu(pair):
    a, b = pair
    torch.testing.assert_close(gated.geglu(a, b), F.gelu(a) * b, rtol=0, atol=1e-14)
    direct = 0.5 * a * (1 + torch.erf(a / math.sqrt(2))) * b
    torch.testing.assert_close(gated.geglu(a, b), direct, rtol=0, atol=1e-14)


def test_swiglu_is_silu_times_value(pair):
    a, b = pair
    torch.testing.assert_close(gated.swiglu(a, b), F.silu(a) * b, rtol=0, atol=1e-15)
    torch.testing.assert_close(gated.swiglu(a, b), a / (1 + torch.exp(-a)) * b, rtol=0,
                               atol=1e-14)


@pytest.mark.parametrize("kind", ["glu", "geglu", "swiglu"])
def test_closed_form_derivatives_match_autograd(kind, pair):
    a, b = (t.clone().requires_grad_(True) for t in pair)
    da, db = torch.autograd.grad(gated.gated_unit(kind, a, b).sum(), (a, b))
    closed_a, closed_b = gated.gated_derivatives(kind, a.detach(), b.detach())
    torch.testing.assert_close(closed_a, da, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(closed_b, db, rtol=1e-12, atol=1e-14)


def test_bad_input_is_refused(pair):
    a, b = pair
    with pytest.raises(ValueError, match="unknown gated unit 'reglu'"):
        gated.gated_unit("reglu", a, b)
    with pytest.raises(ValueError, match="one shape"):
        gated.swiglu(a, b[:, :3])
    with pytest.raises(TypeError):
        gated.glu(a.long(), b)
    with pytest.raises(ValueError, match="n_embd must be a positive integer"):
        gated.matched_hidden_width(0)


@pytest.mark.parametrize("d", [3, 24, 96, 300])
def test_matched_width_matches_the_weights_exactly_when_three_divides_4d(d):
    h = gated.matched_hidden_width(d)
    assert 3 * d * h == 2 * d * (4 * d)
    assert gated.ffn_weight_count(d, "swiglu") == gated.ffn_weight_count(d, "gelu") == 8 * d * d


@pytest.mark.parametrize("d", [4, 64, 100])
def test_matched_width_is_the_nearest_width_otherwise(d):
    h = gated.matched_hidden_width(d)
    assert abs(h - 8 * d / 3) <= 0.5
    assert all(abs(3 * d * h - 8 * d * d) <= abs(3 * d * k - 8 * d * d) for k in (h - 1, h + 1))


def test_module_counts_and_computes_its_formula():
    torch.manual_seed(0)
    layer = gated.GatedFeedForward(30, gated.matched_hidden_width(30), "swiglu").double()
    assert sum(p.numel() for p in layer.parameters()) == 3 * 30 * 80 + 2 * 80 + 30
    x = torch.randn(4, 30, dtype=torch.float64)
    direct = (F.silu(x @ layer.c_fc.weight.T + layer.c_fc.bias)
              * (x @ layer.c_up.weight.T + layer.c_up.bias)) @ layer.c_proj.weight.T
    torch.testing.assert_close(layer(x), direct + layer.c_proj.bias)


def _monte_carlo_gain(kind, d, h, std_in, std_out, std_up, draws=40, seed=0):
    """||J||_F^2 / d of random layers on LayerNorm-like inputs (unit mean square), by autograd."""
    generator = torch.Generator().manual_seed(seed)
    gains, variances = [], []
    for _ in range(draws):
        w1 = std_in * torch.randn(h, d, generator=generator, dtype=torch.float64)
        w2 = std_out * torch.randn(d, h, generator=generator, dtype=torch.float64)
        w3 = std_up * torch.randn(h, d, generator=generator, dtype=torch.float64)
        x = torch.randn(d, generator=generator, dtype=torch.float64)
        x = (x - x.mean()) / x.std(unbiased=False)
        if kind == "gelu":
            def f(v, w1=w1, w2=w2):
                return w2 @ F.gelu(w1 @ v, approximate="tanh")
        else:
            def f(v, w1=w1, w2=w2, w3=w3):
                return w2 @ gated.gated_unit(kind, w1 @ v, w3 @ v)
        jacobian = torch.autograd.functional.jacobian(f, x)
        gains.append(float((jacobian**2).sum()) / d)
        variances.append(float((f(x) ** 2).mean()))
    return np.mean(gains), np.mean(variances)


@pytest.mark.parametrize("kind,std_in", [("gelu", 0.3), ("swiglu", 0.3), ("geglu", 0.15),
                                         ("glu", 0.2)])
def test_mean_field_predictions_match_monte_carlo(kind, std_in):
    d, h, std_out, std_up = 40, 60, 0.1, 0.25
    gain, variance = _monte_carlo_gain(kind, d, h, std_in, std_out, std_up)
    predicted_gain = gated_mean_field.ffn_jacobian_gain(kind, d, h, std_in, std_out, std_up)
    predicted_var = gated_mean_field.ffn_output_variance(kind, d, h, std_in, std_out, std_up)
    assert gain == pytest.approx(predicted_gain, rel=0.1)
    assert variance == pytest.approx(predicted_var, rel=0.25)


def test_gated_output_depends_on_up_and_out_only_through_their_product():
    a = gated_mean_field.ffn_output_variance("swiglu", 48, 128, 0.02, 0.02 / 4, 0.02)
    b = gated_mean_field.ffn_output_variance("swiglu", 48, 128, 0.02, 0.02, 0.02 / 4)
    assert a == pytest.approx(b, rel=1e-12)
    with pytest.raises(ValueError, match="needs std_up"):
        gated_mean_field.ffn_jacobian_gain("swiglu", 48, 128, 0.02, 0.02)
