"""gradflow.probes: per-layer gradient statistics of one model (``layer_gradient_means``, the seed's
print_gradients as data; ``gradient_profile``) and of many seeds at once (``batched_profiles``),
checked against backward passes written out by hand, autograd and the seed notebook's own code."""

import math

import numpy as np
import pytest
import torch
from torch import nn

import gradflow
from gradflow import probes as gs
from gradflow.networks.mlp import DeepMLP
from seed_reference import LAYER_SIZES, SAMPLE_INPUT, SEED, ExampleDeepNeuralNetwork, seed_gradients

# Small tensors: one CPU thread is fast, and gives the same reductions on every run.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def make_model(use_shortcut=True, sizes=(3, 3, 3, 1), seed=0):
    torch.manual_seed(seed)
    return gradflow.ExampleDeepNeuralNetwork(list(sizes), use_shortcut=use_shortcut)


def test_matches_a_hand_written_backward_pass_on_a_one_layer_network():
    """One Linear(2->1) + tanh-GELU, MSE to target t: dL/dW = 2(y - t) GELU'(z) x, by hand."""
    torch.manual_seed(3)
    model = gradflow.ExampleDeepNeuralNetwork([2, 1], use_shortcut=False).double()
    x = torch.tensor([[0.5, -1.5]], dtype=torch.float64)
    t = torch.tensor([[0.25]], dtype=torch.float64)
    w, b = model.layers[0][0].weight.detach(), model.layers[0][0].bias.detach()
    z = (x @ w.T + b).item()
    c, k = math.sqrt(2 / math.pi), 0.044715
    tanh = math.tanh(c * (z + k * z**3))
    y = 0.5 * z * (1 + tanh)
    dgelu = 0.5 * (1 + tanh) + 0.5 * z * (1 - tanh**2) * c * (1 + 3 * k * z**2)
    expected = (abs(2 * (y - 0.25) * dgelu * 0.5) + abs(2 * (y - 0.25) * dgelu * -1.5)) / 2
    result = gradflow.layer_gradient_means(model, x, t)
    assert list(result) == ["layers.0.0.weight"]
    assert result["layers.0.0.weight"] == pytest.approx(expected, rel=1e-12)


def test_matches_autograd_for_every_weight():
    model = make_model()
    x = torch.randn(4, 3, generator=torch.Generator().manual_seed(1))
    target = torch.randn(4, 1, generator=torch.Generator().manual_seed(2))
    nn.functional.mse_loss(model(x), target).backward()
    expected = {n: p.grad.abs().double().mean().item() for n, p in model.named_parameters()
                if n.endswith("weight")}
    model.zero_grad()
    assert gradflow.layer_gradient_means(model, x, target) == pytest.approx(expected, rel=1e-12)


def test_default_target_is_zero():
    model = make_model()
    x = torch.ones(2, 3)
    assert gradflow.layer_gradient_means(model, x) == gradflow.layer_gradient_means(
        model, x, torch.zeros(2, 1)
    )


def test_repeated_calls_give_the_same_result_and_leave_grad_untouched():
    model = make_model()
    x = torch.tensor([[1.0, 0.0, -1.0]])
    first = gradflow.layer_gradient_means(model, x)
    second = gradflow.layer_gradient_means(model, x)
    assert first == second
    assert all(p.grad is None for p in model.parameters())


def test_only_weights_are_reported_in_parameter_order():
    model = make_model(sizes=(3, 4, 4, 2))
    names = list(gradflow.layer_gradient_means(model, torch.zeros(1, 3)))
    assert names == ["layers.0.0.weight", "layers.1.0.weight", "layers.2.0.weight"]


def test_tiny_gradients_do_not_round_to_zero():
    """Means are taken in float64. Here dL/dW = x = (2**-148, 0, 0, 0): a float32 mean would be
    2**-150, below the smallest float32 subnormal, and round to 0; the float64 mean does not."""
    model = nn.Sequential(nn.Linear(4, 1, bias=False))
    with torch.no_grad():
        model[0].weight.zero_()
    x = torch.tensor([[2.0**-148, 0.0, 0.0, 0.0]])
    target = torch.tensor([[-0.5]])
    grad = torch.autograd.grad(nn.functional.mse_loss(model(x), target), model[0].weight)[0]
    assert grad.abs().mean().item() == 0.0  # the float32 statistic underflows
    result = gradflow.layer_gradient_means(model, x, target)
    assert result["0.weight"] == 2.0**-150


@pytest.mark.parametrize("shape", [(1, 2), (2, 1), (1,)])
def test_target_shape_must_match_the_output(shape):
    model = make_model()
    with pytest.raises(ValueError, match=r"target shape .* does not match the model's output"):
        gradflow.layer_gradient_means(model, torch.zeros(1, 3), torch.zeros(shape))


def test_input_width_is_checked_before_anything_else():
    with pytest.raises(ValueError, match="last dimension"):
        gradflow.layer_gradient_means(make_model(), torch.zeros(1, 5))


def test_non_tensor_target_is_rejected():
    with pytest.raises(TypeError, match="target must be a torch.Tensor"):
        gradflow.layer_gradient_means(make_model(), torch.zeros(1, 3), [[0.0]])


def test_gradient_profile_matches_a_backward_pass_written_out_by_hand():
    # two tanh layers, 2 -> 3 -> 2, explicit float64 weights; loss = sum(readout * output)
    model = DeepMLP([2, 3, 2], activation="tanh", seed=0, dtype=torch.float64)
    W1 = np.array([[0.5, -1.0], [0.25, 0.75], [-0.5, 0.1]])
    b1 = np.array([0.1, -0.2, 0.0])
    W2 = np.array([[1.0, -0.5, 0.3], [0.2, 0.4, -1.2]])
    b2 = np.array([0.05, 0.0])
    with torch.no_grad():
        for block, (w, b) in zip(model.blocks, [(W1, b1), (W2, b2)], strict=True):
            block.linear.weight.copy_(torch.from_numpy(w))
            block.linear.bias.copy_(torch.from_numpy(b))
    x = np.array([[1.0, -2.0], [0.5, 0.25]])
    r = np.array([[1.0, 2.0], [-1.0, 0.5]])
    # forward
    a1 = x @ W1.T + b1
    h1 = np.tanh(a1)
    a2 = h1 @ W2.T + b2
    # backward: dL/dh2 = r; dL/da = (1 - tanh^2) * dL/dh; dL/dh1 = dL/da2 W2; dL/dW = dL/da^T h_in
    g2 = r
    d2 = (1 - np.tanh(a2) ** 2) * g2
    g1 = d2 @ W2
    d1 = (1 - np.tanh(a1) ** 2) * g1
    dW2, dW1 = d2.T @ h1, d1.T @ x
    profile = gs.gradient_profile(model, torch.from_numpy(x), readout=torch.from_numpy(r))
    np.testing.assert_allclose(profile["signal_norm"], [np.linalg.norm(g1), np.linalg.norm(g2)],
                               rtol=1e-12)
    np.testing.assert_allclose(profile["weight_grad_mean_abs"],
                               [np.abs(dW1).mean(), np.abs(dW2).mean()], rtol=1e-12)
    np.testing.assert_allclose(profile["preact_second_moment"],
                               [np.mean(a1**2), np.mean(a2**2)], rtol=1e-12)
    assert list(profile["width"]) == [3, 2]


def test_gradient_profile_weight_statistic_is_the_seed_notebooks():
    torch.manual_seed(SEED)
    reference = seed_gradients(ExampleDeepNeuralNetwork(LAYER_SIZES, use_shortcut=False),
                               torch.tensor(SAMPLE_INPUT))
    model = DeepMLP(LAYER_SIZES, activation="gelu_tanh", seed=SEED)
    profile = gs.gradient_profile(model, torch.tensor(SAMPLE_INPUT))
    np.testing.assert_allclose(profile["weight_grad_mean_abs"], list(reference.values()),
                               rtol=1e-6)


def test_gradient_profile_rejects_models_without_blocks():
    with pytest.raises(TypeError, match="needs a model with .blocks"):
        gs.gradient_profile(torch.nn.Linear(2, 2), torch.zeros(1, 2))


def test_input_dependence_of_a_linear_model_matches_its_closed_form():
    from gradflow.probes import input_dependence

    model = torch.nn.Linear(3, 1, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[0.5, -2.0, 1.0]]))
    x = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 1.0, 1.0]])
    target = torch.zeros(4, 1)
    found = input_dependence(model, x, target)
    y = np.array([0.5, -2.0, 1.0, -0.5])
    assert found["ystd"] == pytest.approx(y.std(ddof=1), rel=1e-12)
    assert found["dydx"] == pytest.approx(np.mean([0.5, 2.0, 1.0]), rel=1e-12)
    assert found["ystd32"] == pytest.approx(y.std(ddof=1), rel=1e-6)
    # dL/dW_j = 2 mean(y x_j) over the batch: 0 for j = 0 (0.5 and -0.5 cancel), -1.25, 0.25
    assert found["below_eps"] == pytest.approx(1 / 3)
    assert model.weight.dtype == torch.float32  # the caller's model is left as it was
    with pytest.raises(ValueError, match="at least two inputs"):
        input_dependence(model, x[:1], target[:1])


def test_over_seeds_is_the_geometric_mean_and_range_of_each_group():
    import pandas as pd

    frame = pd.DataFrame({"layer": [1, 1, 1, 2, 2], "ratio": [1.0, 4.0, 16.0, 2.0, 8.0]})
    summary = gs.over_seeds(frame.assign(log_ratio=np.log(frame["ratio"])), ["layer"])
    assert list(summary["layer"]) == [1, 2]
    np.testing.assert_allclose(summary["ratio"], [4.0, 4.0], rtol=1e-12)
    np.testing.assert_allclose(summary["ratio_min"], [1.0, 2.0], rtol=1e-12)
    np.testing.assert_allclose(summary["ratio_max"], [16.0, 8.0], rtol=1e-12)
