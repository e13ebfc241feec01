"""gradflow.networks.mlp.DeepMLP: initialisation by name against the papers' formulas and PyTorch itself,
activations against torch built-ins, shortcuts against hand computation, and clear errors."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from gradflow.networks.mlp import ACTIVATION_NAMES, DeepMLP
from seed_reference import LAYER_SIZES, SAMPLE_INPUT, SEED, ExampleDeepNeuralNetwork

# Var(W) as the papers state it: Glorot & Bengio 2010 Eq. 1 (U(+-1/sqrt(n)), PyTorch's default)
# and Eq. 16 (normalised), He et al. 2015 Eq. 10.
PAPER_VARIANCE = {
    "default": lambda n_in, n_out: 1.0 / (3.0 * n_in),
    "xavier": lambda n_in, n_out: 2.0 / (n_in + n_out),
    "kaiming": lambda n_in, n_out: 2.0 / n_in,
}


def test_default_init_reproduces_the_seed_network_bit_for_bit():
    torch.manual_seed(SEED)
    reference = ExampleDeepNeuralNetwork(LAYER_SIZES, use_shortcut=True)
    model = DeepMLP(LAYER_SIZES, activation="gelu_tanh", init="default", shortcut=True, seed=SEED)
    for ours, theirs in zip(model.parameters(), reference.parameters(), strict=True):
        assert torch.equal(ours, theirs)
    x = torch.tensor(SAMPLE_INPUT)
    assert torch.equal(model(x), reference(x))


def test_building_a_model_leaves_the_global_generator_alone():
    torch.manual_seed(0)
    state = torch.random.get_rng_state()
    DeepMLP(depth=3, width=8, init="kaiming", seed=1)
    assert torch.equal(torch.random.get_rng_state(), state)


def test_same_seed_gives_same_weights_and_generator_is_accepted():
    a = DeepMLP(depth=3, width=8, seed=5)
    b = DeepMLP(depth=3, width=8, seed=torch.Generator().manual_seed(5))
    c = DeepMLP(depth=3, width=8, seed=6)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    assert not torch.equal(a.blocks[0].linear.weight, c.blocks[0].linear.weight)


@pytest.mark.parametrize("init", ["default", "xavier", "kaiming"])
def test_weight_variance_matches_the_papers_formula(init):
    n_in, n_out = 400, 200
    model = DeepMLP([n_in, n_out], init=init, seed=0)
    weight = model.blocks[0].linear.weight.double()
    expected = PAPER_VARIANCE[init](n_in, n_out)
    # 80 000 draws: the sample variance is within a few percent of the true one
    assert weight.var().item() == pytest.approx(expected, rel=0.03)
    assert abs(weight.mean().item()) < 0.02 * math.sqrt(expected)


def test_init_distributions_are_uniform_for_default_and_xavier_and_normal_for_kaiming():
    n = 300
    for init, bound in [("default", 1 / math.sqrt(n)), ("xavier", math.sqrt(6 / (2 * n)))]:
        w = DeepMLP([n, n], init=init, seed=0).blocks[0].linear.weight
        assert w.abs().max().item() <= bound
        assert w.abs().max().item() > 0.99 * bound
    w = DeepMLP([n, n], init="kaiming", seed=0).blocks[0].linear.weight.double()
    kurtosis = ((w - w.mean()) ** 4).mean() / w.var() ** 2
    assert kurtosis.item() == pytest.approx(3.0, abs=0.1)   # normal; a uniform has 1.8


def test_biases_follow_pytorch_default_or_zeros():
    n = 400
    default = DeepMLP([n, 2000], init="default", seed=0).blocks[0].linear.bias
    assert default.double().var().item() == pytest.approx(1 / (3 * n), rel=0.1)
    assert default.abs().max().item() <= 1 / math.sqrt(n)
    for init in ("xavier", "kaiming"):
        assert torch.count_nonzero(DeepMLP([n, 50], init=init, seed=0).blocks[0].linear.bias) == 0
    normal = DeepMLP([n, 4000], init="kaiming", bias_init=0.5, seed=0).blocks[0].linear.bias
    assert normal.double().std().item() == pytest.approx(0.5, rel=0.05)
    zeros = DeepMLP([n, 50], init="default", bias_init="zeros", seed=0).blocks[0].linear.bias
    assert torch.count_nonzero(zeros) == 0


def test_gain_multiplies_the_weights_and_not_the_biases():
    one = DeepMLP(depth=2, width=16, init="default", seed=3)
    two = DeepMLP(depth=2, width=16, init="default", gain=2.0, seed=3)
    for a, b in zip(one.blocks, two.blocks, strict=True):
        assert torch.equal(b.linear.weight, 2.0 * a.linear.weight)
        assert torch.equal(b.linear.bias, a.linear.bias)


def test_init_aliases_are_the_same_scheme():
    for alias, name in [("glorot", "xavier"), ("he", "kaiming"), ("pytorch", "default")]:
        a = DeepMLP(depth=2, width=8, init=alias, seed=1)
        b = DeepMLP(depth=2, width=8, init=name, seed=1)
        assert a.config.init == name
        assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))


TORCH_ACTIVATIONS = {
    "sigmoid": nn.Sigmoid(),
    "tanh": nn.Tanh(),
    "relu": nn.ReLU(),
    "gelu": nn.GELU(),
    "gelu_tanh": nn.GELU(approximate="tanh"),
    "silu": nn.SiLU(),
    # PyTorch has no x·σ(1.702x): written out from Hendrycks & Gimpel (2016), section 2.
    "gelu_sigmoid": lambda x: x * torch.sigmoid(1.702 * x),
}


@pytest.mark.parametrize("name", ACTIVATION_NAMES)
def test_activation_by_name_is_the_torch_function(name):
    model = DeepMLP([1, 1], activation=name, seed=0)
    x = torch.linspace(-6, 6, 1001, dtype=torch.float64)
    ours = model.blocks[0].activation(x)
    torch.testing.assert_close(ours, TORCH_ACTIVATIONS[name](x), rtol=1e-12, atol=1e-12)


def test_unknown_activation_raises_and_lists_the_valid_names():
    with pytest.raises(ValueError, match="unknown activation 'swish'") as info:
        DeepMLP(depth=2, width=4, activation="swish", seed=0)
    for name in ACTIVATION_NAMES:
        assert repr(name) in str(info.value)


def test_unknown_init_raises_and_lists_the_valid_names():
    with pytest.raises(ValueError, match="unknown initialisation 'lecun'") as info:
        DeepMLP(depth=2, width=4, init="lecun", seed=0)
    for name in ("default", "xavier", "kaiming", "glorot", "he"):
        assert repr(name) in str(info.value)


@pytest.mark.parametrize("kwargs, match", [
    ({"bias_init": "ones"}, "unknown bias initialisation"),
    ({"bias_init": -1.0}, "bias_init must be"),
    ({"gain": 0.0}, "gain must be a positive number"),
    ({"widths": [3]}, "at least two entries"),
    ({"widths": [3, 0, 2]}, r"widths\[1\] must be a positive integer"),
    ({"depth": 0, "width": 3}, "depth must be a positive integer"),
    ({"widths": [3, 3], "depth": 2}, "not both"),
    ({}, "give widths"),
])
def test_bad_configuration_raises_a_clear_error(kwargs, match):
    if "widths" not in kwargs and "depth" not in kwargs and kwargs:
        kwargs = {"depth": 2, "width": 4, **kwargs}
    with pytest.raises(ValueError, match=match):
        DeepMLP(**kwargs, seed=0)


def test_seed_is_required_and_checked():
    with pytest.raises(TypeError):
        DeepMLP(depth=2, width=4)   # no hidden global randomness: seed is a required argument
    with pytest.raises(TypeError, match="seed must be an int or a torch.Generator"):
        DeepMLP(depth=2, width=4, seed=1.5)


def test_width_change_without_projection_is_visible_not_silent():
    model = DeepMLP([4, 4, 6, 6, 2], shortcut=True, seed=0)
    assert model.shortcut_kinds == ["identity", "none", "identity", "none"]
    text = repr(model)
    assert "no shortcut at layer(s) [2, 4]" in text
    assert "width changes 4->6" in text and "width changes 6->2" in text
    notes = model.describe()["note"]
    assert notes.loc[2].startswith("width changes 4->6") and notes.loc[1] == ""


def test_projection_shortcut_is_a_bias_free_linear_where_widths_change():
    model = DeepMLP([4, 4, 6], shortcut=True, projection=True, seed=0, dtype=torch.float64)
    assert model.shortcut_kinds == ["identity", "projection"]
    assert "WARNING" not in repr(model)
    projection = model.blocks[1].shortcut
    assert isinstance(projection, nn.Linear) and projection.bias is None
    x = torch.randn(5, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    b1, b2 = model.blocks
    h1 = x + torch.relu(x @ b1.linear.weight.T + b1.linear.bias)
    h2 = h1 @ projection.weight.T + torch.relu(h1 @ b2.linear.weight.T + b2.linear.bias)
    torch.testing.assert_close(model(x), h2)


def test_shortcut_scale_multiplies_the_identity_path():
    model = DeepMLP(depth=1, width=3, activation="tanh", shortcut=True, shortcut_scale=0.5,
                    seed=2, dtype=torch.float64)
    x = torch.tensor([[0.3, -1.0, 2.0]], dtype=torch.float64)
    block = model.blocks[0]
    expected = 0.5 * x + torch.tanh(x @ block.linear.weight.T + block.linear.bias)
    torch.testing.assert_close(model(x), expected)
    assert "shortcut_scale=0.5" in repr(model)


def test_branch_scale_can_become_a_learnable_parameter_rezero_style():
    model = DeepMLP(depth=3, width=5, shortcut=True, seed=0)
    for block in model.blocks:
        block.branch_scale = nn.Parameter(torch.zeros(()))
    x = torch.randn(2, 5, generator=torch.Generator().manual_seed(1))
    assert torch.equal(model(x), x)   # alpha = 0: every block is the identity
    names = [name for name, _ in model.named_parameters()]
    assert "blocks.0.branch_scale" in names


def test_final_activation_can_be_switched_off():
    model = DeepMLP([3, 3, 2], activation="relu", final_activation=False, seed=0,
                    dtype=torch.float64)
    assert model.blocks[-1].activation.name == "identity"
    x = torch.randn(4, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    last = model.blocks[-1].linear
    expected = torch.relu(model.blocks[0].linear(x)) @ last.weight.T + last.bias
    torch.testing.assert_close(model(x), expected)


def test_forward_rejects_wrong_input_width():
    model = DeepMLP([3, 2], seed=0)
    with pytest.raises(ValueError, match="widths\\[0\\] = 3"):
        model(torch.zeros(1, 4))
