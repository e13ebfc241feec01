"""gradflow.networks.stacked: many MLPs at once. Each member's weights, forward pass and gradient
statistics against the single network it claims to be (``DeepMLP``, the seed notebook's network
after ``torch.manual_seed``), autograd on that network, and PyTorch's own BatchNorm."""

import copy

import numpy as np
import pytest
import torch
from torch import nn

import gradflow
from gradflow import probes as gradient_probes
from gradflow.networks import stacked
from gradflow.networks.mlp import DeepMLP
from seed_reference import LAYER_SIZES, SAMPLE_INPUT, SEED, ExampleDeepNeuralNetwork, seed_gradients

# Small tensors: one CPU thread is fast, and gives the same reductions on every run.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def seed_network(sizes, seed, use_shortcut):
    """The seed notebook's network (any widths) after ``torch.manual_seed(seed)``; on the seed's
    widths ``tests/test_tutorial.py`` checks it against the seed's own code."""
    torch.manual_seed(seed)
    return gradflow.ExampleDeepNeuralNetwork(list(sizes), use_shortcut=use_shortcut)


def _model_and_draws(depth, width, batch, seed, **kwargs):
    """The network batched_profiles builds for ``seed``, and its inputs and readouts."""
    generator = torch.Generator().manual_seed(seed)
    model = DeepMLP(depth=depth, width=width, seed=generator, **kwargs)
    x = torch.randn(batch, width, generator=generator)
    readouts = [torch.randn(batch, width, generator=generator) for _ in range(2)]
    return model.double(), x.double(), [r.double() for r in readouts]


@pytest.mark.parametrize("kwargs", [
    {"activation": "gelu", "init": "default"},
    {"activation": "silu", "init": "kaiming", "gain": 1.3},
    {"activation": "tanh", "init": "xavier", "shortcut": True, "shortcut_scale": 0.7},
])
def test_batched_profiles_equal_autograd_on_each_seeds_deepmlp(kwargs):
    depth, width, batch, probes = 6, 16, 3, [3, 6]
    batched = stacked.batched_profiles([width] * (depth + 1), seeds=[4, 9], batch=batch,
                                  probe_depths=probes, **kwargs)
    for seed in (4, 9):
        model, x, (r3, r6) = _model_and_draws(depth, width, batch, seed, **kwargs)
        short = copy.deepcopy(model)
        short.blocks = short.blocks[:3]   # the first 3 layers are a 3-layer network
        for net, readout, d in [(model, r6, 6), (short, r3, 3)]:
            expected = gradient_probes.gradient_profile(net, x, readout=readout)
            got = batched[(batched.seed == seed) & (batched.depth == d)].set_index("layer")
            for column in expected.columns:
                np.testing.assert_allclose(got[column], expected[column], rtol=1e-10)


def test_batched_mse_profile_of_seed_123_is_the_seed_notebooks_network():
    frame = stacked.batched_profiles(LAYER_SIZES, "gelu_tanh", "default", [SEED],
                                inputs=torch.tensor(SAMPLE_INPUT), loss="mse")
    torch.manual_seed(SEED)
    reference = seed_gradients(ExampleDeepNeuralNetwork(LAYER_SIZES, use_shortcut=False),
                               torch.tensor(SAMPLE_INPUT))
    np.testing.assert_allclose(frame["weight_grad_mean_abs"], list(reference.values()), rtol=1e-6)


@pytest.mark.parametrize("kwargs, match", [
    ({"loss": "hinge"}, "unknown loss 'hinge'"),
    ({"seeds": [1, 1]}, "seeds must be distinct"),
    ({"probe_depths": [9]}, "probe depths must be <= the depth 3"),
    ({"activation": "elu"}, "unknown activation"),
    ({"inputs": torch.zeros(2, 5)}, "inputs must have shape"),
])
def test_batched_profiles_reject_bad_arguments(kwargs, match):
    args = {"widths": [4, 4, 4, 4], "activation": "relu", "init": "default", "seeds": [0]}
    with pytest.raises(ValueError, match=match):
        stacked.batched_profiles(**{**args, **kwargs})


def test_stacked_weights_are_the_weights_manual_seed_gives_the_seed_network():
    weights, biases = stacked.draw_stacked_weights([3, 4, 4, 1], seeds=[5, 123])
    for s, seed in enumerate([5, 123]):
        model = seed_network([3, 4, 4, 1], seed, use_shortcut=True)
        for layer, (w, b) in enumerate(zip(weights, biases)):
            assert torch.equal(w[s], model.layers[layer][0].weight)
            assert torch.equal(b[s], model.layers[layer][0].bias)


def test_stacked_members_are_the_deep_mlps_they_claim_to_be():
    widths = [8, 6, 6, 6, 1]
    stack = stacked.StackedMLP(widths, seeds=[1, 2, 1], shortcut=[False, True, True])
    x = torch.randn(7, 8)
    out = stack(x)
    for m, (seed, shortcut) in enumerate([(1, False), (2, True), (1, True)]):
        model = DeepMLP(widths, activation="gelu_tanh", shortcut=shortcut,
                        final_activation=False, seed=seed)
        torch.testing.assert_close(out[m], model(x), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(stack.member(m)(x), model(x))


def test_stacked_batch_norm_is_torch_batch_norm_in_training_mode():
    widths = [3, 5, 5, 1]
    stack = stacked.StackedMLP(widths, seeds=[0, 1], shortcut=[False, True], batch_norm=True)
    x = torch.randn(9, 3)
    out = stack(x)
    for m, shortcut in enumerate([False, True]):
        h = x
        for i, (w, b) in enumerate(zip(stack.weights, stack.biases)):
            a = h @ w[m].T + b[m]
            if i < len(widths) - 2:
                a = nn.functional.batch_norm(a, None, None, training=True, eps=1e-5)
                a = nn.functional.gelu(a, approximate="tanh")
            h = h + a if (shortcut and w.shape[1] == w.shape[2]) else a
        torch.testing.assert_close(out[m], h, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("batch_norm", [False, True])
def test_stacked_preactivation_blocks_are_full_preactivation_resnet_blocks(batch_norm):
    widths = [4, 6, 6, 6, 2]
    stack = stacked.StackedMLP(widths, seeds=[3, 8], shortcut=[True, False], init="kaiming",
                               activation="relu", batch_norm=batch_norm, preactivation=True)
    x = torch.randn(11, 4, dtype=torch.float32)
    out = stack(x)
    for m, shortcut in enumerate([True, False]):
        h = x @ stack.weights[0][m].T + stack.biases[0][m]   # the stem reads x as it is
        for w, b in zip(list(stack.weights)[1:], list(stack.biases)[1:]):
            r = h
            if batch_norm:
                r = nn.functional.batch_norm(r, None, None, training=True, eps=1e-5)
            a = torch.relu(r) @ w[m].T + b[m]
            h = h + a if (shortcut and w.shape[1] == w.shape[2]) else a
        torch.testing.assert_close(out[m], h, rtol=1e-5, atol=1e-5)


def test_branch_alpha_at_zero_makes_every_block_the_identity_and_is_learnable():
    widths = [5, 7, 7, 7, 1]
    stack = stacked.StackedMLP(widths, seeds=[0, 4], shortcut=[True, True], init="kaiming",
                               activation="relu", preactivation=True, branch_alpha=0.0)
    x = torch.randn(6, 5)
    out = stack(x)
    for m in range(2):   # identity blocks: the readout sees the stem's output
        stem = x @ stack.weights[0][m].T + stack.biases[0][m]
        expected = torch.relu(stem) @ stack.weights[-1][m].T + stack.biases[-1][m]
        torch.testing.assert_close(out[m], expected)
    out.pow(2).sum().backward()
    grads = stack.alphas.grad
    assert grads.shape == (4, 2)
    assert (grads[1:3] != 0).all()          # the residual layers' alphas get a gradient
    assert (grads[[0, 3]] == 0).all()       # the stem's and readout's rows are unused


def test_branch_alpha_scales_the_branch_as_a_fixed_scale_would():
    widths = [6, 6, 6]
    stack = stacked.StackedMLP(widths, seeds=[2], shortcut=[True], activation="tanh",
                               branch_alpha=0.3)
    x = torch.randn(4, 6)
    h = x
    for i, (w, b) in enumerate(zip(stack.weights, stack.biases)):
        a = h @ w[0].T + b[0]
        h = h + 0.3 * (torch.tanh(a) if i == 0 else a)   # no activation after the last layer
    torch.testing.assert_close(stack(x)[0], h)


def test_preactivation_rejects_a_final_activation_and_is_not_a_deep_mlp():
    with pytest.raises(ValueError, match="pass final_activation=False"):
        stacked.StackedMLP([3, 3, 1], seeds=[0], shortcut=[True], preactivation=True,
                           final_activation=True)
    with pytest.raises(ValueError, match="branch_scale needs one tensor per layer"):
        stacked.stacked_forward(torch.zeros(1, 2, 3), [torch.zeros(1, 3, 3)],
                                [torch.zeros(1, 3)], 1.0, branch_scale=[])
    stack = stacked.StackedMLP([3, 3, 1], seeds=[0], shortcut=[True], branch_alpha=0.0)
    with pytest.raises(ValueError, match="DeepMLP does not have"):
        stack.member(0)


def test_identity_activation_makes_a_linear_batch_norm_network():
    weights, biases = stacked.draw_stacked_weights([5, 5, 5, 5], seeds=[1], init="kaiming")
    x = torch.randn(1, 10, 5)
    out = stacked.stacked_forward(x, weights, biases, 0.0, activation="identity",
                                  batch_norm=True)
    h = x[0]
    for i, (w, b) in enumerate(zip(weights, biases)):
        h = h @ w[0].T + b[0]
        if i < 2:
            h = nn.functional.batch_norm(h, None, None, training=True, eps=1e-5)
    torch.testing.assert_close(out[0], h)
