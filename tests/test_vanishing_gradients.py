"""The vanishing-gradients chapter's sweeps (gradflow.chapters.vanishing_gradients): against
the mean-field predictions, closed forms and the seed notebook's own code."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from gradflow import signal_propagation as sp
from gradflow.chapters import vanishing_gradients as gs
from gradflow.chapters.vanishing_gradients import ACTIVATIONS as ACTIVATION_NAMES
from gradflow.networks.mlp import DeepMLP
from seed_reference import LAYER_SIZES, SAMPLE_INPUT, SEED, ExampleDeepNeuralNetwork, seed_gradients

# Small tensors: one CPU thread is fast, and gives the same reductions on every run.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


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


def test_gain_response_matches_a_direct_computation_on_a_two_layer_network():
    # Closed form for two tanh layers with zero biases: J v = D2 W2 D1 W1 v with D = diag(tanh').
    gain, width, seed = 3.0, 8, 5
    row = gs.gain_response("tanh", [gain], [seed], depth=2, width=width, batch=3,
                           saturation=1.5).iloc[0]
    net = DeepMLP(depth=2, width=width, activation="tanh", init="kaiming", gain=gain,
                  bias_init="zeros", seed=seed, dtype=torch.float64)
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(3, width, generator=generator, dtype=torch.float64)
    v = torch.randn(3, width, generator=generator, dtype=torch.float64)
    w1, w2 = (block.linear.weight.detach() for block in net.blocks)
    a1 = x @ w1.T
    a2 = torch.tanh(a1) @ w2.T
    jv = (1 - torch.tanh(a2) ** 2) * (((1 - torch.tanh(a1) ** 2) * (v @ w1.T)) @ w2.T)
    expected = math.exp(torch.log(jv.norm(dim=1) / v.norm(dim=1)).mean().item())
    assert row["sensitivity"] == pytest.approx(expected, rel=1e-12)
    assert row["output_spread"] == pytest.approx(torch.tanh(a2).std(dim=0).mean().item(), rel=1e-12)
    counts = [(a.abs() > 1.5).double().mean().item() for a in (a1, a2)]
    assert row["saturated"] == pytest.approx(np.mean(counts), rel=1e-12)


def test_gain_response_of_a_linear_regime_is_the_gain_power():
    # A ReLU network with zero biases is linear along a ray, so ||J v|| / ||v|| fluctuates around
    # the gain^depth; at small gain it must fall geometrically with depth.
    shallow = gs.gain_response("relu", [0.5], [0, 1], depth=2, width=64)["sensitivity"].item()
    deep = gs.gain_response("relu", [0.5], [0, 1], depth=6, width=64)["sensitivity"].item()
    assert deep / shallow == pytest.approx(0.5 ** 4, rel=0.3)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"activation": "sigmoidd"}, "activation"),
    ({"gains": [0.0]}, "gain"),
    ({"seeds": []}, "seeds"),
    ({"saturation": -1.0}, "saturation"),
])
def test_gain_response_rejects_bad_input(kwargs, message):
    arguments = {"activation": "sigmoid", "gains": [1.0], "seeds": [0], "depth": 2, "width": 4}
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=message):
        gs.gain_response(**arguments)


# --- PyTorch's constants (gains) and GELU against ReLU trained (activation_study) -----------------

from scipy import integrate

from gradflow.chapters.vanishing_gradients import activation_study, gains


@pytest.mark.parametrize("slope", [0.0, 0.01, 0.2, 1.0, math.sqrt(5.0)])
def test_leaky_relu_gain_is_pytorchs_calculate_gain(slope):
    assert gains.leaky_relu_gain(slope) == pytest.approx(
        torch.nn.init.calculate_gain("leaky_relu", slope), rel=1e-15)


def test_linear_default_slope_gives_the_gain_sqrt_one_third():
    assert torch.nn.init.calculate_gain("leaky_relu", gains.LINEAR_DEFAULT_SLOPE) == pytest.approx(
        math.sqrt(1 / 3), rel=1e-15)
    assert gains.leaky_relu_gain(gains.LINEAR_DEFAULT_SLOPE) == pytest.approx(math.sqrt(1 / 3))


def test_kaiming_uniform_variance_matches_a_real_nn_linear():
    torch.manual_seed(7)
    fan_in = 300
    weight = torch.nn.Linear(fan_in, 500).weight.detach().double()
    bound = gains.kaiming_uniform_bound(fan_in, gains.LINEAR_DEFAULT_SLOPE)
    assert bound == pytest.approx(1 / math.sqrt(fan_in), rel=1e-14)
    assert weight.abs().max().item() <= bound
    assert weight.abs().max().item() > 0.99 * bound
    # 150,000 draws: the sample variance is within 1 % of 1 / (3 fan_in)
    assert weight.var().item() == pytest.approx(1 / (3 * fan_in), rel=0.01)
    assert gains.kaiming_uniform_variance(fan_in, gains.LINEAR_DEFAULT_SLOPE) == pytest.approx(
        1 / (3 * fan_in), rel=1e-14)


def test_kaiming_uniform_bound_matches_pytorchs_kaiming_uniform_for_relu():
    torch.manual_seed(3)
    w = torch.empty(400, 200)
    torch.nn.init.kaiming_uniform_(w, a=0.0, nonlinearity="leaky_relu")
    assert w.abs().max().item() <= gains.kaiming_uniform_bound(200, 0.0)
    assert w.abs().max().item() > 0.99 * gains.kaiming_uniform_bound(200, 0.0)


def test_tanh_gain_is_pytorchs():
    assert gains.TANH_GAIN == torch.nn.init.calculate_gain("tanh")


def test_fixed_point_gain_solves_the_length_map_by_direct_integration():
    g = gains.fixed_point_gain("tanh", 1.0)
    second, _ = integrate.quad(lambda z: math.tanh(z) ** 2 * math.exp(-z * z / 2)
                               / math.sqrt(2 * math.pi), -12, 12)
    assert g == pytest.approx(1 / math.sqrt(second), rel=1e-8)


def test_gain_scan_at_relu_kaiming_gain_predicts_a_factor_of_one():
    # ReLU with Xavier on a square layer times sqrt(2) is Kaiming: a factor of exactly 1.
    scan = gains.gain_scan("relu", [math.sqrt(2.0)], depth=20, width=64)
    assert scan["mean_factor"].iloc[0] == pytest.approx(1.0, rel=1e-9)
    assert scan["log10_growth"].iloc[0] == pytest.approx(0.0, abs=1e-8)


def test_gain_scan_names_a_bad_gain_and_depth():
    with pytest.raises(ValueError, match="gain"):
        gains.gain_scan("tanh", [0.0])
    with pytest.raises(ValueError, match="depth"):
        gains.gain_scan("tanh", [1.0], depth=1)


def test_leaky_relu_gain_refuses_a_negative_slope():
    with pytest.raises(ValueError, match="negative_slope"):
        gains.leaky_relu_gain(-1.0)


def test_activation_unit_pairs_gelu_and_relu_from_the_same_weights_against_plain_torch():
    # A 3-layer plain network trained 2 steps: the unit's losses equal a hand-written nn loop
    # with torch's own GELU and ReLU on the same initial weights.
    rows = activation_study.activation_unit("plain", 3, [5], width=4, steps=2, windows=[1, 2],
                                            lr=1e-2, n_samples=6, dim=3, task_seed=1)
    from gradflow.networks.stacked import draw_stacked_weights
    from gradflow.tasks.regression import make_regression_task

    task = make_regression_task(n_samples=6, dim=3, seed=1)
    weights, biases = draw_stacked_weights([3, 4, 4, 1], [5], "kaiming")
    for name, fn in (("gelu", torch.nn.functional.gelu), ("relu", torch.relu)):
        params = [p[0].clone().requires_grad_(True) for p in (*weights, *biases)]
        ws, bs = params[:3], params[3:]
        opt = torch.optim.Adam(params, lr=1e-2)
        losses = []
        for _ in range(3):
            h = task.x
            for i, (w, b) in enumerate(zip(ws, bs)):
                h = h @ w.T + b
                if i < 2:
                    h = fn(h)
            loss = (h - task.y).pow(2).mean()
            losses.append(loss.item())
            opt.zero_grad()
            loss.backward()
            opt.step()
        row = next(r for r in rows if r["activation"] == name)
        assert row["loss_1"] == pytest.approx(losses[1], rel=1e-5)
        assert row["loss_2"] == pytest.approx(losses[2], rel=1e-5)


def test_paired_activations_counts_wins_and_intervals():
    frame = pd.DataFrame([
        {"kind": "plain", "depth": 3, "activation": a, "seed": s, "loss_1": loss,
         "first_over_last": 1.0}
        for s, (g, r) in enumerate([(1.0, 10.0), (1.0, 100.0), (10.0, 1.0)])
        for a, loss in (("gelu", g), ("relu", r))])
    row = activation_study.paired_activations(frame, "loss_1").loc[("plain", 3)]
    assert row["wins"] == 2 and row["n"] == 3
    assert row["mean"] == pytest.approx((-1 - 2 + 1) / 3)


def test_activation_unit_names_a_bad_kind():
    with pytest.raises(ValueError, match="kind"):
        activation_study.activation_unit("dense", 3, [0], width=4, steps=1, windows=[1], lr=1e-3,
                                         n_samples=4, dim=2, task_seed=0)


def test_the_kept_sweep_reads_back_as_the_sweep_it_measured():
    from gradflow.chapters.vanishing_gradients import sweeps

    rows = pd.DataFrame([row for activation in ("tanh", "relu") for row in sweeps.sweep_unit(
        activation, "xavier", depth=5, seeds=[0, 2], width=8, batch=3)])
    kept = sweeps.sweep_frame(rows, depth=5, width=8)
    direct = gs.gradient_sweep(["tanh", "relu"], ["xavier"], [5], [0, 2], width=8, batch=3,
                               weight_stats=False)
    pd.testing.assert_frame_equal(kept, direct[list(kept.columns)], check_exact=True)
    with pytest.raises(ValueError, match="signal norms"):
        sweeps.sweep_frame(rows, depth=6, width=8)


def test_the_kept_grid_reads_back_as_the_grid_it_measured():
    from gradflow.chapters.vanishing_gradients import sweeps

    rows = pd.DataFrame(sweeps.grid_unit("relu", "kaiming", gains=[0.5, 2.0], depths=[2, 6],
                                         seeds=[0, 1], width=8))
    direct = gs.depth_gain_grid("relu", "kaiming", [0.5, 2.0], [2, 6], [0, 1], width=8)
    pd.testing.assert_frame_equal(sweeps.grid_frame(rows, "relu", "kaiming"), direct,
                                  check_exact=True)
    with pytest.raises(ValueError, match="no grid"):
        sweeps.grid_frame(rows, "tanh", "xavier")
