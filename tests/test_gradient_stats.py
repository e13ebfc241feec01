"""Per-layer gradient statistics and sweeps (gradflow.gradient_stats): against a backward pass
written out by hand, torch's autograd, the seed notebook's own code, and mean-field predictions."""

from __future__ import annotations

import copy
import math

import numpy as np
import pandas as pd
import pytest
import torch

from gradflow import gradient_stats as gs
from gradflow import signal_propagation as sp
from gradflow.mlp import ACTIVATION_NAMES, DeepMLP
from seed_reference import LAYER_SIZES, SAMPLE_INPUT, SEED, ExampleDeepNeuralNetwork, seed_gradients


@pytest.fixture(autouse=True)
def one_thread():
    """Small batched products: one thread is fast and deterministic on a shared machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


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
    batched = gs.batched_profiles([width] * (depth + 1), seeds=[4, 9], batch=batch,
                                  probe_depths=probes, **kwargs)
    for seed in (4, 9):
        model, x, (r3, r6) = _model_and_draws(depth, width, batch, seed, **kwargs)
        short = copy.deepcopy(model)
        short.blocks = short.blocks[:3]   # the first 3 layers are a 3-layer network
        for net, readout, d in [(model, r6, 6), (short, r3, 3)]:
            expected = gs.gradient_profile(net, x, readout=readout)
            got = batched[(batched.seed == seed) & (batched.depth == d)].set_index("layer")
            for column in expected.columns:
                np.testing.assert_allclose(got[column], expected[column], rtol=1e-10)


def test_batched_mse_profile_of_seed_123_is_the_seed_notebooks_network():
    frame = gs.batched_profiles(LAYER_SIZES, "gelu_tanh", "default", [SEED],
                                inputs=torch.tensor(SAMPLE_INPUT), loss="mse")
    torch.manual_seed(SEED)
    reference = seed_gradients(ExampleDeepNeuralNetwork(LAYER_SIZES, use_shortcut=False),
                               torch.tensor(SAMPLE_INPUT))
    np.testing.assert_allclose(frame["weight_grad_mean_abs"], list(reference.values()), rtol=1e-6)


def test_float64_statistics_stay_positive_where_a_float32_norm_underflows_to_zero():
    tiny = torch.full((256,), 1e-23)
    assert torch.linalg.vector_norm(tiny).item() == 0.0   # float32: (1e-23)^2 underflows
    # a 30-layer sigmoid network at PyTorch's default init loses ~0.14 per layer
    model = DeepMLP(depth=30, width=256, activation="sigmoid", seed=0)
    generator = torch.Generator().manual_seed(1)
    x, r = torch.randn(4, 256, generator=generator), torch.randn(4, 256, generator=generator)
    table = gs.norm_underflow(model, x, r)
    assert table.loc[1, "float32_norm"] == 0.0
    assert table.loc[1, "float32_max_abs"] > 0.0
    assert table.loc[1, "float64_norm"] > 0.0
    profile = gs.gradient_profile(model, x, readout=r)
    assert (profile["signal_norm"] > 0).all() and (profile["weight_grad_mean_abs"] > 0).all()
    np.testing.assert_allclose(profile["signal_norm"], table["float64_norm"], rtol=1e-12)


# Stated tolerance: on 128-wide, 20-deep networks, the measured mean per-layer factor of each of
# three seeds is within 4 % of the mean-field prediction at PyTorch's default initialisation.
FACTOR_TOLERANCE = 0.04


@pytest.mark.parametrize("activation", ACTIVATION_NAMES)
def test_measured_factor_matches_prediction_at_default_init_on_wide_networks(activation):
    width, depth, seeds = 128, 20, [0, 1, 2]
    sweep = gs.gradient_sweep([activation], ["default"], [depth], seeds, width=width, batch=4,
                              weight_stats=False)
    per_seed = gs.end_to_end_log_ratio(sweep)
    predicted = sp.mean_backward_factor(
        sp.predict_layers(activation, "default", depth=depth, width=width))
    assert len(per_seed) == len(seeds)
    for factor in per_seed["mean_factor"]:
        assert factor == pytest.approx(predicted, rel=FACTOR_TOLERANCE)


def test_relu_kaiming_gain_sweep_grows_like_gain_to_the_depth():
    grid = gs.depth_gain_grid("relu", "kaiming", [0.5, 1.0, 2.0], [5, 20], seeds=range(2),
                              width=128, batch=4)
    for row in grid.itertuples():
        exact = (row.depth - 1) * math.log10(row.gain)   # factor = gain exactly for ReLU
        assert row.predicted == pytest.approx(exact, abs=1e-9)
        assert row.measured == pytest.approx(exact, abs=0.1 * row.depth ** 0.5 + 0.05)


def test_sweep_is_tidy_and_covers_every_combination():
    sweep = gs.gradient_sweep(["relu", "tanh"], ["default", "he"], [2, 4], [0, 1], width=8,
                              gains=[1.0, 2.0], batch=2)
    assert list(sweep.columns[:6]) == ["activation", "init", "gain", "seed", "depth", "layer"]
    networks = sweep.groupby(["activation", "init", "gain", "seed", "depth"]).size()
    assert len(networks) == 2 * 2 * 2 * 2 * 2
    assert (networks == networks.index.get_level_values("depth")).all()   # one row per layer
    assert set(sweep["init"]) == {"default", "kaiming"}


def test_summaries_recover_a_known_geometric_profile():
    depth, factor = 5, 0.5
    layers = np.arange(1, depth + 1)
    sweep = pd.DataFrame({
        "activation": "relu", "init": "default", "gain": 1.0, "seed": 0, "depth": depth,
        "layer": layers, "signal_norm": factor ** (depth - layers),
        "weight_grad_mean_abs": 1.0,
    })
    per_net = gs.end_to_end_log_ratio(sweep)
    assert per_net["mean_factor"].iloc[0] == pytest.approx(factor)
    assert per_net["log_ratio"].iloc[0] == pytest.approx((depth - 1) * math.log(factor))
    profile = gs.layer_profiles(sweep)
    np.testing.assert_allclose(profile["ratio"], factor ** (depth - layers))


def test_narrow_network_factors_use_the_seed_notebooks_network_for_its_seed():
    x = torch.tensor(SAMPLE_INPUT)
    table = gs.narrow_network_factors(LAYER_SIZES, "gelu_tanh", "default", x, range(50), SEED)
    torch.manual_seed(SEED)
    reference = list(seed_gradients(ExampleDeepNeuralNetwork(LAYER_SIZES, use_shortcut=False),
                                    x).values())
    expected = np.array(reference[:-1]) / np.array(reference[1:])
    np.testing.assert_allclose(table["weight_seed"], expected, rtol=1e-5)
    np.testing.assert_allclose(table["small_signal"], 0.5 / math.sqrt(3), rtol=1e-12)


def test_seed_comparison_of_a_network_with_itself_never_prefers_either():
    x = torch.tensor(SAMPLE_INPUT)
    same = gs.seed_comparison(LAYER_SIZES, ("tanh", "default"), ("tanh", "default"), x, range(20))
    assert same["raw_first_larger"] == 0.0 and same["normalised_first_larger"] == 0.0


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
        gs.batched_profiles(**{**args, **kwargs})


def test_gradient_profile_rejects_models_without_blocks():
    with pytest.raises(TypeError, match="needs a model with .blocks"):
        gs.gradient_profile(torch.nn.Linear(2, 2), torch.zeros(1, 2))
