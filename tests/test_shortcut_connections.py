"""gradflow.chapters.shortcut_connections: the shortcut chapter's experiments, checked against independent references
(brute-force enumeration, closed forms, torch built-ins and the seed network run seed by seed)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
import torch
from matplotlib.figure import Figure
from torch import nn

import gradflow
from gradflow import probes
from gradflow.activations import gelu_derivative
from gradflow.chapters import shortcut_connections as residual
from gradflow.chapters.shortcut_connections import figures as residual_plots
from gradflow.networks.mlp import DeepMLP

SEED_X = torch.tensor([[1.0, 0.0, -1.0]])


def seed_network(sizes, seed, use_shortcut):
    torch.manual_seed(seed)
    return gradflow.ExampleDeepNeuralNetwork(list(sizes), use_shortcut=use_shortcut)


def input_gradient(model, x, readout):
    x = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad((readout * model(x)).sum(), x)
    return grad


# --- the seed's experiment over many seeds -------------------------------------------------------


@pytest.mark.parametrize("sizes", [[3, 3, 3, 3, 3, 1], [3, 4, 4, 4, 4, 1]])
def test_many_seed_statistics_agree_with_running_the_seeds_one_by_one(sizes):
    seeds = list(range(200))
    many = residual.many_seed_comparison(seeds=seeds, layer_sizes=sizes)
    for seed in (0, 17, 123, 199):
        one = gradflow.compare_shortcuts(seed=seed, layer_sizes=sizes)
        g = one.gradients
        for network, key in ((gradflow.tutorial.PLAIN, "plain"),
                             (gradflow.tutorial.SHORTCUT, "shortcut")):
            assert many.loc[seed, f"first_{key}"] == pytest.approx(g[network].iloc[0], rel=1e-5)
            assert many.loc[seed, f"last_{key}"] == pytest.approx(g[network].iloc[-1], rel=1e-5)
            assert many.loc[seed, f"y_{key}"] == pytest.approx(one.outputs[network], abs=1e-6)
            assert many.loc[seed, f"loss_{key}"] == pytest.approx(one.losses[network], rel=1e-5)
        raw = g[gradflow.tutorial.SHORTCUT].iloc[0] / g[gradflow.tutorial.PLAIN].iloc[0]
        assert many.loc[seed, "ratio_raw"] == pytest.approx(raw, rel=1e-5)


def test_normalised_ratio_divides_each_network_by_its_own_dl_dy():
    """dL/dy = 2y for L = y^2; check against autograd's gradient with respect to the output."""
    many = residual.many_seed_comparison(seeds=[3])
    for use_shortcut, key in ((False, "plain"), (True, "shortcut")):
        model = seed_network(gradflow.tutorial.SEED_LAYER_SIZES, 3, use_shortcut)
        y = model(SEED_X)
        (dldy,) = torch.autograd.grad(nn.functional.mse_loss(y, torch.zeros_like(y)), y)
        assert many.loc[3, f"dldy_{key}"] == pytest.approx(dldy.item(), rel=1e-5)
    row = many.loc[3]
    expected = (row.first_shortcut / abs(row.dldy_shortcut)) / (row.first_plain / abs(row.dldy_plain))
    assert row.ratio_normalised == pytest.approx(expected, rel=1e-12)


def test_many_seed_comparison_of_a_thousand_seeds_is_fast():
    import time

    start = time.perf_counter()
    frame = residual.many_seed_comparison(seeds=range(1000))
    assert len(frame) == 1000
    assert time.perf_counter() - start < 5.0


def test_ratio_summary_against_numpy_on_known_values():
    frame = pd.DataFrame(
        {"ratio_raw": [0.5, 2.0, 4.0, 8.0, 16.0], "ratio_normalised": [1.5, np.nan, 3, 0.1, 9]},
        index=pd.Index([10, 11, 12, 13, 14], name="seed"),
    )
    summary = residual.ratio_summary(frame, seed=12)
    assert summary.loc["ratio_raw", "median"] == 4.0
    assert summary.loc["ratio_raw", "q1"] == 2.0 and summary.loc["ratio_raw", "q3"] == 8.0
    assert summary.loc["ratio_raw", "share_above_one"] == 0.8
    assert summary.loc["ratio_raw", "seed_percentile"] == 40.0      # 0.5 and 2 are below 4
    assert summary.loc["ratio_normalised", "n_undefined"] == 1
    assert summary.loc["ratio_normalised", "median"] == 2.25          # of 0.1, 1.5, 3, 9
    with pytest.raises(ValueError, match="seed 99 is not among"):
        residual.ratio_summary(frame, seed=99)


def test_many_seed_comparison_rejects_bad_input():
    with pytest.raises(ValueError, match="one output"):
        residual.many_seed_comparison(seeds=[0], layer_sizes=[3, 3, 2])
    with pytest.raises(ValueError, match=r"one input row of shape \(1, 3\)"):
        residual.many_seed_comparison(seeds=[0], x=torch.zeros(2, 3))
    with pytest.raises(ValueError, match="distinct"):
        residual.many_seed_comparison(seeds=[1, 1])


# --- the shape check and projection shortcuts ------------------------------------------------------


@pytest.mark.parametrize("sizes", [[3, 3, 3, 3, 3, 1], [3, 4, 4, 4, 4, 1], [2, 5, 5, 3, 3, 1]])
def test_layout_reports_the_seed_check_and_projections_at_every_width_change(sizes):
    layout = residual.shortcut_layout(sizes)
    seed_model = gradflow.ExampleDeepNeuralNetwork(sizes, use_shortcut=True)
    assert [k == "shortcut" for k in layout["seed's check"]] == seed_model.shortcut_applied
    changes = [a != b for a, b in itertools.pairwise(sizes)]
    assert list(layout["with projections"]) == [
        "projection" if c else "identity" for c in changes
    ]


def test_projection_shortcut_keeps_a_shortcut_across_every_width_change_and_the_weights():
    model = DeepMLP([3, 4, 4, 2, 2, 1], activation="gelu_tanh", shortcut=True, seed=4)
    projected = residual.with_projections(model, seed=9)
    assert "none" not in projected.shortcut_kinds
    for block, original in zip(projected.blocks, model.blocks):
        assert torch.equal(block.linear.weight, original.linear.weight)
        if original.shortcut is None:
            n_in, n_out = original.linear.in_features, original.linear.out_features
            assert block.shortcut.weight.shape == (n_out, n_in)
            x = torch.randn(5, n_in)
            # y = F(x) + W_s x, He et al. 2015 Eq. 2, written out.
            expected = block.activation(block.linear(x)) + x @ block.shortcut.weight.T
            assert torch.allclose(block(x), expected)
    assert model.shortcut_kinds[0] == "none"                      # the original is untouched


def test_projection_network_equals_the_identity_shortcut_network_where_widths_agree():
    """No width change: nothing to project, so the two networks are the same function."""
    model = DeepMLP([4, 4, 4, 4], activation="gelu_tanh", shortcut=True, seed=2)
    projected = residual.with_projections(model, seed=3)
    x = torch.randn(6, 4)
    readout = torch.randn(6, 4)
    assert projected.shortcut_kinds == ["identity"] * 3
    assert torch.equal(input_gradient(projected, x, readout), input_gradient(model, x, readout))


def test_projection_shortcuts_set_to_the_identity_give_the_identity_shortcuts_gradients():
    """He et al.'s option C (every shortcut a projection) with W_s = I is option A."""
    model = DeepMLP([5, 5, 5, 5, 5], activation="gelu_tanh", shortcut=True, seed=6)
    projected = residual.with_projections(model, seed=1, all_layers=True)
    assert projected.shortcut_kinds == ["projection"] * 4
    with torch.no_grad():
        for block in projected.blocks:
            block.shortcut.weight.copy_(torch.eye(5))
    x = torch.randn(3, 5)
    grads, _ = probes.block_weight_gradients(projected, x)
    expected, _ = probes.block_weight_gradients(model, x)
    assert grads == pytest.approx(expected, rel=1e-6)
    torch.testing.assert_close(projected(x), model(x))


def test_projection_comparison_uses_the_seed_networks_weights_for_plain_and_shortcut():
    table = residual.projection_comparison([3, 4, 4, 4, 4, 1], seed=123)
    for network, use_shortcut in (("plain", False), ("seed's shortcuts", True)):
        model = seed_network([3, 4, 4, 4, 4, 1], 123, use_shortcut)
        expected = list(gradflow.layer_gradient_means(model, SEED_X).values())
        got = table[table["network"] == network].sort_values("layer")["grad"].tolist()
        assert got == pytest.approx(expected, rel=1e-6)
    projected = table[table["network"] == "projection shortcuts"]
    assert list(projected["shortcut"]) == ["projection"] + ["identity"] * 3 + ["projection"]


def test_default_input_needs_width_three():
    with pytest.raises(ValueError, match="pass an input x"):
        residual.projection_comparison([4, 4, 1])


# --- why it works: Eq. 5 of He et al. 2016, and lambda-scaled shortcuts ---------------------------


def test_identity_decomposition_jacobian_is_identity_plus_the_branch_jacobians():
    """The Jacobian of the run of shortcut blocks, from the closed-form GELU derivative:
    prod over blocks of (I + diag(GELU'(z_k)) W_k), applied to dL/dx_L."""
    table = residual.identity_decomposition(seed=123)
    model = DeepMLP([3, 3, 3, 3, 3, 1], activation="gelu_tanh", shortcut=True, seed=123).double()
    states = [SEED_X.double()]
    for block in model.blocks:
        states.append(block(states[-1]).detach())
    top = states[4].clone().requires_grad_(True)
    (g_top,) = torch.autograd.grad(model.blocks[4](top).pow(2).mean(), top)
    g_top = g_top[0]
    for block_index in range(4):
        jac = torch.eye(3, dtype=torch.float64)
        for k in range(block_index, 4):
            linear = model.blocks[k].linear
            z = linear(states[k])[0].detach()
            factor = torch.eye(3, dtype=torch.float64) + torch.diag(gelu_derivative(z, "tanh")) @ linear.weight.detach()
            jac = factor @ jac
        row = table.loc[block_index + 1]
        assert row["identity_term"] == pytest.approx(g_top.norm().item(), rel=1e-10)
        assert row["total"] == pytest.approx((g_top @ jac).norm().item(), rel=1e-10)
        residual_part = jac - torch.eye(3, dtype=torch.float64)
        assert row["branch_term"] == pytest.approx((g_top @ residual_part).norm().item(), rel=1e-10)


@pytest.mark.parametrize("lam", [0.5, 0.9, 1.0, 1.1])
def test_lambda_scaled_shortcut_gradient_ratio_is_lambda_to_the_depth_in_a_linear_regime(lam):
    """With branch weights scaled by 1e-3 the network is the linear map h -> lam * h up to
    O(1e-3) per layer; over 20 layers the ratio stays within 1% of lam**20."""
    depth = 20
    frame = residual.lambda_scaling(lambdas=(lam,), depth=depth, width=16, seeds=range(3),
                                    gains=(1e-3,))
    first = frame[frame["layer"] == 0]["ratio_to_top"].to_numpy()
    np.testing.assert_allclose(first, lam**depth, rtol=1e-2)


def test_lambda_scaling_matches_a_single_deep_mlp():
    frame = residual.lambda_scaling(lambdas=(0.9,), depth=12, width=8, seeds=[4], batch=5)
    model = DeepMLP(depth=12, width=8, activation="gelu_tanh", shortcut=True,
                    shortcut_scale=0.9, seed=4)
    generator = torch.Generator().manual_seed(10_004)
    x, readout = torch.randn(5, 8, generator=generator), torch.randn(5, 8, generator=generator)
    expected = probes.stream_gradient_norms(model, x, readout)
    np.testing.assert_allclose(frame["signal_norm"], expected, rtol=1e-5)


# --- paths -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 4, 7, 10])
def test_path_counts_are_binomial_sum_to_two_to_the_n_and_match_an_enumeration(n):
    table = residual.path_length_distribution(n)
    assert sum(table["n_paths"]) == 2**n
    assert table["share"].sum() == pytest.approx(1.0, rel=1e-12)
    enumerated = [0] * (n + 1)
    for path in itertools.product((0, 1), repeat=n):    # 1 = through the branch, 0 = the shortcut
        enumerated[sum(path)] += 1
    assert list(table["n_paths"]) == enumerated


def test_path_count_of_54_blocks_is_exact():
    table = residual.path_length_distribution(54)
    assert sum(table["n_paths"]) == 2**54
    assert table.loc[27, "n_paths"] == math.comb(54, 27)


def test_path_length_share_matches_counting_the_enumerated_paths():
    n = 12
    paths = list(itertools.product((0, 1), repeat=n))
    expected = sum(1 for p in paths if 3 <= sum(p) <= 5) / len(paths)
    assert residual.path_length_share(n, 3, 5) == pytest.approx(expected, rel=1e-12)
    with pytest.raises(ValueError, match="low <= high"):
        residual.path_length_share(n, 5, 3)


def test_the_gradients_of_all_paths_add_up_to_the_whole_gradient():
    model = DeepMLP(depth=4, width=5, activation="gelu_tanh", shortcut=True, seed=2)
    generator = torch.Generator().manual_seed(0)
    x, readout = torch.randn(3, 5, generator=generator), torch.randn(3, 5, generator=generator)
    total = sum(
        residual.path_gradient(model, x, readout, blocks)
        for k in range(5) for blocks in itertools.combinations(range(4), k)
    )
    torch.testing.assert_close(total, input_gradient(model, x, readout), rtol=1e-5, atol=1e-6)
    # The path through no branch carries the readout unchanged.
    torch.testing.assert_close(residual.path_gradient(model, x, readout, []), readout)


def test_path_gradient_magnitudes_total_is_count_times_mean_magnitude():
    model = DeepMLP(depth=6, width=4, activation="gelu_tanh", shortcut=True, seed=1)
    x, readout = torch.randn(2, 4), torch.randn(2, 4)
    table = residual.path_gradient_magnitudes(model, x, readout, n_samples=8, seed=0)
    assert list(table["n_paths"]) == [math.comb(6, k) for k in range(7)]
    np.testing.assert_allclose(table["total"], table["n_paths"] * table["magnitude"])
    assert table["share_of_total"].sum() == pytest.approx(1.0)
    assert table.loc[0, "magnitude"] == pytest.approx(readout.double().norm().item(), rel=1e-6)


def test_path_view_needs_identity_shortcuts_everywhere():
    model = DeepMLP([3, 4, 4], activation="gelu_tanh", shortcut=True, seed=0)
    with pytest.raises(ValueError, match="block 1 has shortcut=none"):
        residual.path_gradient(model, torch.zeros(1, 3), torch.zeros(1, 4), [])


# --- the residual stream, ReZero ----------------------------------------------------------------


def test_rezero_alpha_zero_gives_branch_weights_exactly_zero_gradient_but_alpha_a_gradient():
    model = residual.rezero_(DeepMLP([3, 6, 6, 6, 1], activation="gelu_tanh", shortcut=True,
                                     seed=5))
    x, target = torch.randn(4, 3), torch.randn(4, 1)
    loss = nn.functional.mse_loss(model(x), target)
    loss.backward()
    for block in model.blocks:
        if block.shortcut is None:          # layers without a shortcut keep a plain branch
            assert isinstance(block.branch_scale, float)
            assert block.linear.weight.grad.abs().sum() > 0
        else:
            assert torch.equal(block.linear.weight.grad, torch.zeros_like(block.linear.weight))
            assert torch.equal(block.linear.bias.grad, torch.zeros_like(block.linear.bias))
            assert block.branch_scale.grad.item() != 0.0
    # With alpha = 0 every residual block is the identity.
    plain_path = model.blocks[3](model.blocks[0](x))
    torch.testing.assert_close(model(x), plain_path)


def test_rezero_gradients_table_of_the_seed_network():
    table = residual.rezero_gradients(seed=123)
    residual_rows = table[table["shortcut"] == "identity"]
    assert (residual_rows["max_abs_weight_grad"] == 0.0).all()
    assert (residual_rows["dL_dalpha"].abs() > 0).all()
    assert table.loc[5, "max_abs_weight_grad"] > 0 and math.isnan(table.loc[5, "dL_dalpha"])


def test_residual_stack_rezero_branches_get_zero_gradient_and_the_stream_is_unchanged():
    stack = residual.ResidualStack(6, 8, scaling="rezero", seed=0)
    x = torch.randn(10, 8, dtype=torch.float64)
    states = stack.hidden_states(x)
    assert all(torch.equal(h, x) for h in states)
    (x.sum() + stack(x).pow(2).sum()).backward()
    assert all(torch.equal(w.grad, torch.zeros_like(w)) for w in [*stack.w1, *stack.w2])
    assert stack.alpha.grad.abs().min() > 0


def test_gpt2_scaling_divides_the_last_branch_layer_by_sqrt_n():
    plain = residual.ResidualStack(9, 4, scaling="none", seed=3)
    scaled = residual.ResidualStack(9, 4, scaling="gpt2", seed=3)
    for a, b in zip(plain.w1, scaled.w1):
        assert torch.equal(a, b)
    for a, b in zip(plain.w2, scaled.w2):
        torch.testing.assert_close(b, a / 3.0)


def test_stream_variance_explodes_unscaled_and_is_tamed_by_the_fixes():
    frame = residual.residual_stream_growth(n_blocks=30, width=32, batch=64, seeds=(0, 1))
    summary = residual.stream_summary(frame)
    assert summary.loc[("none", "none"), "variance_growth"] > 1e4      # about x2 per block
    assert summary.loc[("none", "gpt2"), "variance_growth"] < 5        # about e^1
    assert summary.loc[("none", "rezero"), "variance_growth"] == 1.0
    assert summary.loc[("pre_ln", "rezero"), "variance_growth"] == 1.0
    # Pre-LN: every branch adds about the same variance, so the growth is linear in depth.
    pre = frame[(frame["norm"] == "pre_ln") & (frame["scaling"] == "none")]
    mean = pre.groupby("layer")["variance"].mean()
    first_half, second_half = mean[15] - mean[0], mean[30] - mean[15]
    assert 0.5 < second_half / first_half < 2.0


def test_residual_stack_rejects_unknown_options():
    with pytest.raises(ValueError, match="unknown norm 'post'"):
        residual.ResidualStack(2, 2, norm="post", seed=0)
    with pytest.raises(ValueError, match="unknown scaling 'fixup'"):
        residual.ResidualStack(2, 2, scaling="fixup", seed=0)


# --- training -------------------------------------------------------------------------------------


def test_residual_network_trains_to_a_lower_loss_than_the_plain_one_at_depth_20():
    """The chapter's task and settings at depth 20: the plain network (vanishing gradients at
    PyTorch's default initialisation) stays at the loss of predicting the mean; the residual one
    ends at least 10 times lower, for every seed."""
    task = residual.make_regression_task(n_samples=64, dim=8, seed=0)
    run = residual.train_depth_comparison(depths=(20,), kinds=("plain", "residual"),
                                          seeds=(0, 1, 2), steps=300, task=task)
    last = run.curves[run.curves["step"] == 300].set_index(["kind", "seed"])["loss"]
    for seed in (0, 1, 2):
        assert last[("residual", seed)] * 10 < last[("plain", seed)]
    mean_loss = ((task.y - task.y.mean()) ** 2).mean().item()
    assert last.loc["plain"].to_numpy() == pytest.approx(mean_loss, rel=1e-3)


def test_training_is_deterministic():
    task = residual.make_regression_task(n_samples=16, dim=4, seed=1)
    runs = [residual.train_depth_comparison(depths=(6,), seeds=(0, 1), steps=15, width=8,
                                            task=task) for _ in range(2)]
    pd.testing.assert_frame_equal(runs[0].curves, runs[1].curves)
    pd.testing.assert_frame_equal(runs[0].initial_gradients, runs[1].initial_gradients)


def test_training_leaves_the_thread_setting_as_it_was():
    before = torch.get_num_threads()
    residual.train_depth_comparison(depths=(3,), kinds=("plain",), seeds=(0,), steps=2, width=4)
    assert torch.get_num_threads() == before


def test_regression_task_is_standardised():
    task = residual.make_regression_task(n_samples=50, dim=3, seed=2)
    assert task.x.shape == (50, 3) and task.y.shape == (50, 1)
    assert task.y.mean().item() == pytest.approx(0.0, abs=1e-6)
    assert task.y.std().item() == pytest.approx(1.0, rel=1e-5)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"kinds": ("resnet",)}, "kinds must be some of"), ({"depths": (1,)}, "at least 2"),
     ({"lr": 0.0}, "lr must be a positive number"), ({"steps": 0}, "steps must be a positive")],
)
def test_train_depth_comparison_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        residual.train_depth_comparison(**kwargs)


# --- figures --------------------------------------------------------------------------------------


def test_every_figure_is_a_figure_with_labelled_axes():
    many = residual.many_seed_comparison(seeds=range(50))
    projections = {"a": residual.projection_comparison([3, 3, 1])}
    scaled = residual.lambda_scaling(lambdas=(0.5, 1.0), depth=4, width=4, seeds=[0, 1])
    model = DeepMLP(depth=5, width=4, activation="gelu_tanh", shortcut=True, seed=0)
    magnitudes = residual.path_gradient_magnitudes(model, torch.randn(2, 4), torch.randn(2, 4),
                                                   n_samples=4)
    stream = residual.residual_stream_growth(n_blocks=4, width=4, batch=8, seeds=(0,))
    task = residual.make_regression_task(n_samples=8, dim=2)
    curves = residual.train_depth_comparison(depths=(3,), seeds=(0,), steps=3, width=4,
                                             task=task).curves
    figures = [
        residual_plots.plot_ratio_distribution(many, seed=0),
        residual_plots.plot_projection_gradients(projections),
        residual_plots.plot_lambda_scaling(scaled),
        residual_plots.plot_path_lengths(residual.path_length_distribution(4),
                                         residual.path_length_distribution(5), magnitudes),
        residual_plots.plot_stream_growth(stream),
        residual_plots.plot_training_curves(curves),
    ]
    for figure in figures:
        assert isinstance(figure, Figure)
        assert figure.axes
        assert any(ax.get_xlabel() for ax in figure.axes)
        assert any(ax.get_ylabel() for ax in figure.axes)


def test_plots_reject_frames_without_their_columns():
    with pytest.raises(ValueError, match="needs the columns"):
        residual_plots.plot_training_curves(pd.DataFrame({"depth": [1]}))


# --- ReLU after the addition against full pre-activation (block_forms) ----------------------------

from gradflow.chapters.shortcut_connections import block_forms
from gradflow.networks.probing import weights_and_probe_data


def _post_block_by_hand(x, w, b):
    """relu(x + BN(x W^T + b)) with torch's own batch_norm, for a (B, n) batch."""
    a = nn.functional.batch_norm(x @ w.T + b, None, None, training=True, eps=1e-5)
    return torch.relu(x + a)


def _pre_block_by_hand(x, w, b):
    """x + relu(BN(x)) W^T + b (He et al. 2016, Fig. 4e, one weight layer)."""
    read = torch.relu(nn.functional.batch_norm(x, None, None, training=True, eps=1e-5))
    return x + read @ w.T + b


def test_forms_at_initialisation_match_blocks_written_with_torch_batch_norm():
    depth, width, batch = 4, 6, 5
    frame = block_forms.forms_at_initialisation(depth=depth, width=width, batch=batch, seeds=[2])
    weights, biases, x, readout = weights_and_probe_data([width] * (depth + 1), [2], "kaiming",
                                                         batch)
    for form in block_forms.FORMS:
        h = x[0].clone().requires_grad_(True)
        states, kept = [h], []
        for layer, (w, b) in enumerate(zip(weights, biases)):
            if form == "post":
                a = nn.functional.batch_norm(h @ w[0].T + b[0], None, None, training=True, eps=1e-5)
                kept.append(((h + a) > 0).double().mean().item())
                h = _post_block_by_hand(h, w[0], b[0])
            elif layer == 0:   # the pre-activation network's stem reads its input directly
                h = h + h @ w[0].T + b[0]
            else:
                h = _pre_block_by_hand(h, w[0], b[0])
            states.append(h)
        grads = torch.autograd.grad((states[-1] * readout[0]).sum(), states[:-1])
        norms = np.array([g.norm().item() for g in grads])
        got = frame[frame.form == form].sort_values("layer")
        np.testing.assert_allclose(got["grad_norm"], norms / norms[-1], rtol=1e-9)
        np.testing.assert_allclose(got["stream_var"],
                                   [s.detach().var(unbiased=False).item() for s in states[1:]],
                                   rtol=1e-9)
        if form == "post":
            np.testing.assert_allclose(got["identity_kept"], kept)
        else:
            assert (got["identity_kept"] == 1).all()


@pytest.mark.parametrize("batch_norm", [True, False])
def test_preactivation_growth_is_autograd_through_blocks_written_by_hand(batch_norm):
    depth, width, batch, seeds = 5, 6, 7, [1, 3]
    got = block_forms.preactivation_growth(depth=depth, width=width, batch=batch, seeds=seeds,
                                           batch_norm=batch_norm)
    weights, biases, x, readout = weights_and_probe_data([width] * (depth + 1), seeds, "kaiming",
                                                         batch)
    for s, seed in enumerate(seeds):
        h = x[s].clone().requires_grad_(True)
        states = [h]
        for layer, (w, b) in enumerate(zip(weights, biases)):
            if layer == 0:
                h = h + h @ w[s].T + b[s]
            elif batch_norm:
                h = _pre_block_by_hand(h, w[s], b[s])
            else:                     # no normaliser: x + relu(x) W^T + b
                h = h + torch.relu(h) @ w[s].T + b[s]
            states.append(h)
        first, last = torch.autograd.grad((states[-1] * readout[s]).sum(), [states[0], states[-2]])
        assert got.loc[seed] == pytest.approx((first.norm() / last.norm()).item(), rel=1e-9)
    if batch_norm:                    # the same number as forms_at_initialisation's block 1
        frame = block_forms.forms_at_initialisation(depth=depth, width=width, batch=batch,
                                                    seeds=seeds)
        pre = frame[(frame.form == "pre") & (frame.layer == 1)].set_index("seed")["grad_norm"]
        np.testing.assert_allclose(got.loc[seeds], pre.loc[seeds], rtol=1e-12)
    with pytest.raises(ValueError, match="depth"):
        block_forms.preactivation_growth(depth=1, width=4, batch=4, seeds=[0])


def test_post_activation_mlp_has_a_linear_head_and_stem_that_reads_its_input():
    widths = [3, 5, 5, 1]
    model = block_forms.form_model("post", widths, [0, 1])
    x = torch.randn(7, 3, generator=torch.Generator().manual_seed(0))
    out = model(x)
    for m in range(2):
        w = [p[m].detach() for p in model.weights]
        b = [p[m].detach() for p in model.biases]
        h = torch.relu(nn.functional.batch_norm(x @ w[0].T + b[0], None, None, training=True,
                                                eps=1e-5))
        h = _post_block_by_hand(h, w[1], b[1])
        torch.testing.assert_close(out[m], h @ w[2].T + b[2], rtol=1e-5, atol=1e-6)


def test_forms_unit_gives_both_forms_for_every_seed():
    rows = block_forms.forms_unit(3, [0, 1], width=4, steps=2, windows=[1, 2], lr=1e-3,
                                  n_samples=8, dim=3, task_seed=0)
    assert sorted((r["form"], r["seed"]) for r in rows) == [
        ("post", 0), ("post", 1), ("pre", 0), ("pre", 1)]
    assert all(r["loss_2"] > 0 for r in rows)


def test_paired_forms_counts_pre_wins():
    frame = pd.DataFrame([{"form": f, "depth": 5, "seed": s, "loss_1": v}
                          for s, (pre, post) in enumerate([(1.0, 10.0), (10.0, 1.0), (1.0, 100.0)])
                          for f, v in (("pre", pre), ("post", post))])
    row = block_forms.paired_forms(frame, "loss_1").loc[5]
    assert row["wins"] == 2 and row["mean"] == pytest.approx((-1 + 1 - 2) / 3)


def test_block_forms_name_bad_arguments():
    with pytest.raises(ValueError, match="form"):
        block_forms.form_model("middle", [3, 4, 1], [0])
    with pytest.raises(ValueError, match="batch"):
        block_forms.forms_at_initialisation(depth=3, width=4, batch=1, seeds=[0])
    with pytest.raises(ValueError, match="depth"):
        block_forms.forms_unit(2, [0], width=4, steps=1, windows=[1], lr=1e-3, n_samples=4,
                               dim=2, task_seed=0)


# --- the training study ---------------------------------------------------------------------------

def test_a_comparison_unit_keeps_the_training_runs_first_and_final_losses():
    task = residual.make_regression_task(n_samples=16, dim=4, seed=3)
    rows = residual.training.comparison_unit(4, [0, 1], width=8, steps=6, lr=1e-2, n_samples=16,
                                             dim=4, task_seed=3, curve_every=3)
    run = residual.train_depth_comparison(depths=(4,), seeds=(0, 1), width=8, steps=6, lr=1e-2,
                                          task=task)
    assert len(rows) == len(residual.KINDS) * 2
    for row in rows:
        curve = run.curves[(run.curves.kind == row["kind"]) & (run.curves.seed == row["seed"])]
        assert row["first_loss"] == curve["loss"].iloc[0]
        assert row["final_loss"] == curve["loss"].iloc[-1]
        assert row["curve"] == pytest.approx(curve["loss"].iloc[::3].tolist(), rel=5e-4)
    frame = pd.DataFrame(rows)
    long = residual.study_curves(frame, curve_every=3)
    assert sorted(long["step"].unique()) == [0, 3, 6]


def test_the_log_ratio_comparison_is_a_t_interval_of_paired_log_ratios():
    from scipy import stats

    frame = pd.DataFrame({"depth": 8, "kind": ["a"] * 4 + ["b"] * 4, "seed": [0, 1, 2, 3] * 2,
                          "final_loss": [1e-3, 1e-2, 2e-3, 1e-1, 1.0, 0.5, 1.0, 0.2]})
    result = residual.log_ratio_comparison(frame, "final_loss", "a", "b", 8)
    logs = np.log10([1e-3 / 1.0, 1e-2 / 0.5, 2e-3 / 1.0, 1e-1 / 0.2])
    low, high = stats.ttest_1samp(logs, 0.0).confidence_interval(0.95)
    assert result["mean"] == pytest.approx(logs.mean())
    assert (result["low"], result["high"]) == pytest.approx((low, high))
    assert result["wins"] == 4 and result["n"] == 4
    with pytest.raises(ValueError, match="kind 'c'"):
        residual.log_ratio_comparison(frame, "final_loss", "c", "b", 8)
