"""The experiments of the chapter "What shortcuts fix when gradients do not vanish", on settings
the chapter does not use, against independent references: DeepMLP and autograd for the
shattering networks, traces for the spectrum's moments, the weights the training claims."""

import math

import numpy as np
import pandas as pd
import pytest
import torch

from gradflow.chapters import what_shortcuts_fix as fix
from gradflow.chapters.what_shortcuts_fix.training import _model
from gradflow.networks.mlp import DeepMLP

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_plain_shattering_network_is_deep_mlp_with_a_readout():
    # seed 5, depth 3, width 12: DeepMLP draws the hidden layers from the same generator, the
    # readout follows; dy/dx by autograd through DeepMLP must equal the experiment's gradients.
    result = fix.shattering(kinds=["plain"], depths=[3], seeds=[5], width=12, n_points=21,
                            bias_std=0.4, curve_depths=[3])
    generator = torch.Generator().manual_seed(5)
    net = DeepMLP([1, 12, 12, 12], activation="relu", init="kaiming", bias_init=0.4,
                  seed=generator).double()
    readout = (torch.randn(3, 12, generator=generator) / math.sqrt(12)).double()[2]
    x = torch.tensor(result.grid).reshape(-1, 1).requires_grad_(True)
    (net(x) @ readout).sum().backward()
    assert np.allclose(result.curves["gradient"], x.grad[:, 0].numpy(), atol=1e-12)


def test_bias_free_network_gradient_is_two_valued_at_every_depth():
    result = fix.shattering(kinds=["plain_bias_free"], depths=[2, 7], seeds=[1, 2], width=9,
                            n_points=30, curve_depths=[2, 7])
    for depth in (2, 7):
        curve = result.curves[result.curves["depth"] == depth]["gradient"]
        assert fix.two_values(curve) == 2
    # a step in the middle of 30 points: 28 of 29 neighbour pairs equal, same at both depths
    corr = result.correlations["correlation"]
    assert np.allclose(corr, corr.iloc[0])


def test_batch_norm_gradient_is_pytorch_batch_norm_in_eval_mode_with_the_grids_statistics():
    # Reference: a layer loop with torch's batch_norm in evaluation mode whose running statistics
    # are the grid's (biased variance, as training-mode BatchNorm normalises with), then autograd.
    result = fix.shattering(kinds=["plain_bn", "residual_bn"], depths=[3], seeds=[6], width=7,
                            n_points=15, bias_std=0.2, curve_depths=[3])
    generator = torch.Generator().manual_seed(6)
    net = DeepMLP([1, 7, 7, 7], activation="relu", init="kaiming", bias_init=0.2,
                  seed=generator).double()
    readout = (torch.randn(3, 7, generator=generator) / math.sqrt(7)).double()[2]
    grid = torch.tensor(result.grid).reshape(-1, 1)
    for kind, shortcut in (("plain_bn", False), ("residual_bn", True)):
        with torch.no_grad():   # the statistics of each layer on the grid
            h, stats = grid, []
            for block in net.blocks:
                a = block.linear(h)
                stats.append((a.mean(0), a.var(0, unbiased=False)))
                out = torch.relu(torch.nn.functional.batch_norm(a, *stats[-1], training=False))
                h = out + h if shortcut and h.shape == out.shape else out
        x = grid.clone().requires_grad_(True)
        h = x
        for block, (mean, var) in zip(net.blocks, stats):
            out = torch.relu(torch.nn.functional.batch_norm(block.linear(h), mean, var,
                                                            training=False))
            h = out + h if shortcut and h.shape == out.shape else out
        (h @ readout).sum().backward()
        curve = result.curves[result.curves["kind"] == kind]["gradient"]
        assert np.allclose(curve, x.grad[:, 0].numpy(), atol=1e-9)


def test_shattering_rejects_unknown_kinds():
    with pytest.raises(ValueError, match="kinds must be a non-empty list"):
        fix.shattering(kinds=["dense"], depths=[2], seeds=[0])


def test_spectrum_moments_are_the_traces_of_the_jacobian():
    config = fix.SpectrumConfig("tanh test", "tanh", "orthogonal", 1.2)
    result = fix.jacobian_spectra([config], depths=[2, 4], seeds=[7], width=10)
    values = result.singular
    for depth in (2, 4):
        s = values[values["depth"] == depth]["singular_value"].to_numpy()
        row = result.moments[result.moments["depth"] == depth].iloc[0]
        assert row["mean_sq"] == pytest.approx(np.sum(s**2) / 10)
        assert row["spread"] == pytest.approx(np.var(s**2) / np.mean(s**2) ** 2)
        assert np.isfinite(row["predicted_spread"])
    residual = fix.SpectrumConfig("res", "relu", "gaussian", 2.0, residual=True)
    moments = fix.jacobian_spectra([residual], depths=[3], seeds=[0], width=6).moments
    assert moments["predicted_spread"].isna().all()


def test_training_members_have_the_weights_their_kind_claims():
    widths = [4, 6, 6, 6, 1]
    model = _model(widths, ["tanh_gaussian", "tanh_orthogonal"], [3], "tanh", False)
    gauss, orth = model.weights[1][0].double(), model.weights[1][1].double()
    reference = DeepMLP(widths, activation="tanh", init="kaiming", seed=3)
    assert torch.allclose(gauss, reference.blocks[1].linear.weight.double()
                          * math.sqrt(fix.spectra.TANH_SIGMA_W2 / 2))
    eye = torch.eye(6, dtype=torch.float64) * fix.spectra.TANH_SIGMA_W2
    assert torch.allclose(orth @ orth.T, eye, atol=1e-5)


def test_training_returns_every_kind_and_depth():
    task = fix.training.make_regression_task(n_samples=16, dim=3, seed=4)
    result = fix.train_plain_and_residual(depths=[4], seeds=[0, 1], width=6, steps=3, task=task)
    assert set(result.curves["kind"]) == set(fix.TRAINING_KINDS)
    assert (result.curves.groupby(["kind", "seed"]).size() == 4).all()
    assert np.isfinite(result.curves["loss"]).all()
    with pytest.raises(ValueError, match="depths must be at least 3"):
        fix.train_plain_and_residual(depths=[2], steps=1, task=task)


def test_landscape_centre_is_the_trained_networks_final_loss():
    task = fix.training.make_regression_task(n_samples=12, dim=3, seed=2)
    trained = fix.train_plain_and_residual(depths=[4], kinds=["relu_bn", "residual"],
                                           seeds=[1], width=5, steps=4, task=task)
    slices = fix.landscape_slices(trained, kinds=("relu_bn", "residual"), depths=(4,), seed=1,
                                  points=5)
    last = trained.curves[trained.curves["step"] == trained.curves["step"].max()]
    final = last.set_index(["depth", "kind"])["loss"]
    for kind in ("relu_bn", "residual"):
        assert slices.summary.loc[(4, kind), "centre"] == pytest.approx(final.loc[(4, kind)],
                                                                         rel=1e-5)


def test_the_study_unit_keeps_the_runs_losses_and_curves():
    task_args = {"n_samples": 12, "dim": 3, "task_seed": 2}
    rows = fix.training.comparison_unit(4, [1, 2], kinds=["relu", "residual_bn"], width=5,
                                        steps=6, windows=[3, 6], lr=1e-3, curve_every=2,
                                        **task_args)
    task = fix.training.make_regression_task(n_samples=12, dim=3, seed=2)
    direct = fix.train_plain_and_residual(depths=[4], kinds=["relu", "residual_bn"], seeds=[1, 2],
                                          width=5, steps=6, lr=1e-3, task=task).curves
    assert [(r["kind"], r["seed"]) for r in rows] == [("relu", 1), ("relu", 2),
                                                      ("residual_bn", 1), ("residual_bn", 2)]
    for row in rows:
        run = direct[(direct["kind"] == row["kind"]) & (direct["seed"] == row["seed"])]
        loss = run.set_index("step")["loss"]
        assert row["loss_3"] == loss[3] and row["loss_6"] == loss[6]
        assert row["curve"] == pytest.approx([loss[0], loss[2], loss[4], loss[6]], rel=1e-3)
    frame = pd.DataFrame(rows)
    curves = fix.study_curves(frame, curve_every=2)
    assert list(curves[curves["seed"] == 1]["step"].unique()) == [0, 2, 4, 6]
    with pytest.raises(ValueError, match="windows must lie in 1..steps=6"):
        fix.training.comparison_unit(4, [1], kinds=["relu"], width=5, steps=6, windows=[9],
                                     lr=1e-3, curve_every=2, **task_args)


def test_paired_comparison_counts_wins_and_gives_the_t_interval_of_log_ratios():
    from scipy import stats

    frame = pd.DataFrame({"depth": 5, "kind": ["a"] * 3 + ["b"] * 3, "seed": [0, 1, 2] * 2,
                          "loss": [1e-3, 1e-2, 1e-4, 1e-2, 1e-2, 1e-2]})
    result = fix.paired_comparison(frame, "loss", "a", "b", depth=5)
    ratios = np.array([-1.0, 0.0, -2.0])
    low, high = stats.t.interval(0.95, 2, loc=ratios.mean(), scale=stats.sem(ratios))
    assert result["wins"] == 2 and result["n"] == 3
    assert (result["mean"], result["low"], result["high"]) == pytest.approx((-1.0, low, high))
    with pytest.raises(ValueError, match="kind 'c' is not in the study at depth 5"):
        fix.paired_comparison(frame, "loss", "a", "c", depth=5)


def test_slices_from_the_kept_rows_are_the_slices():
    task = fix.training.make_regression_task(n_samples=12, dim=3, seed=2)
    trained = fix.train_plain_and_residual(depths=[4], kinds=["relu_bn", "residual_bn"],
                                           seeds=[0], width=5, steps=3, task=task)
    direct = fix.landscape_slices(trained, kinds=("relu_bn", "residual_bn"), depths=(4,), seed=0,
                                  points=5)
    rows = fix.landscape.slice_unit(4, kinds=["relu_bn", "residual_bn"], seed=0, direction_seed=0,
                                    points=5, width=5, steps=3, lr=1e-3, n_samples=12, dim=3,
                                    task_seed=2)
    kept = fix.slices_from(pd.DataFrame(rows))
    assert np.array_equal(kept.coordinates, direct.coordinates)
    for key, surface in direct.surfaces.items():
        assert np.allclose(kept.surfaces[key], surface, rtol=1e-12)
    pd.testing.assert_frame_equal(kept.summary, direct.summary, check_dtype=False)


def test_explorable_readouts_are_the_median_correlations():
    from gradflow.chapters.what_shortcuts_fix import figures

    result = fix.shattering(kinds=["plain", "residual_bn"], depths=[1, 3, 5], seeds=[0, 1, 2],
                            width=8, n_points=20, curve_depths=[1, 3, 5])
    figure = figures.explorable_shattering(result, ["plain", "residual_bn"], start=(3, "plain"))
    rows = figure.spec["datasets"]["shattering"]
    medians = result.correlations.groupby(["kind", "depth"])["correlation"].median()
    for row in rows:
        assert row["c"] == pytest.approx(medians.loc[(row["k"], row["d"])], abs=5e-4)
        assert len(row["g"]) == 20 and max(abs(v) for v in row["g"]) == pytest.approx(1.0)
