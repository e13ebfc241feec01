"""gradflow.normalisation: the three normalisers against PyTorch's own modules (outputs and
gradients, float32 and float64), the closed-form Jacobians against autograd, the growth laws
against their closed forms and against networks built on configurations the chapter does not use,
and the errors at the boundary."""

import math

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import integrate, stats
from torch import nn

import gradflow
from gradflow import normalisation as norm
from gradflow.networks import stacked

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TOL = {torch.float32: {"rtol": 1e-5, "atol": 1e-5}, torch.float64: {"rtol": 1e-12, "atol": 1e-12}}


def _affine(shape, dtype, seed):
    g = torch.Generator().manual_seed(seed)
    return (1 + 0.3 * torch.randn(shape, generator=g, dtype=dtype),
            0.2 * torch.randn(shape, generator=g, dtype=dtype))


def _compare(ours, module, x, dtype, params):
    """Outputs, input gradients and parameter gradients of ``ours(x)`` and ``module(x)``."""
    upstream = torch.randn(x.shape, dtype=dtype, generator=torch.Generator().manual_seed(9))
    x1 = x.clone().requires_grad_(True)
    x2 = x.clone().requires_grad_(True)
    mine = [p.clone().requires_grad_(True) for p in params]
    y1, y2 = ours(x1, *mine), module(x2)
    torch.testing.assert_close(y1, y2, **TOL[dtype])
    g1 = torch.autograd.grad(y1, [x1, *mine], upstream)
    theirs = [p for p in module.parameters()]
    g2 = torch.autograd.grad(y2, [x2, *theirs], upstream)
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b, **TOL[dtype])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", [(3, 7), (2, 5, 6)])
def test_layer_norm_equals_torch_layer_norm_outputs_and_gradients(dtype, shape):
    x = 3 + 2 * torch.randn(shape, dtype=dtype, generator=torch.Generator().manual_seed(1))
    d = shape[-1]
    module = nn.LayerNorm(d, eps=1e-3, dtype=dtype)
    weight, bias = _affine(d, dtype, 2)
    with torch.no_grad():
        module.weight.copy_(weight)
        module.bias.copy_(bias)
    _compare(lambda t, w, b: norm.layer_norm(t, d, w, b, eps=1e-3), module, x, dtype,
             [weight, bias])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_layer_norm_over_two_trailing_dimensions_equals_torch(dtype):
    x = torch.randn(4, 3, 5, dtype=dtype, generator=torch.Generator().manual_seed(3))
    expected = nn.functional.layer_norm(x, (3, 5))
    torch.testing.assert_close(gradflow.layer_norm(x, (3, 5)), expected, **TOL[dtype])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("eps", [None, 1e-4])
def test_rms_norm_equals_torch_rms_norm_outputs_and_gradients(dtype, eps):
    x = 0.5 + torch.randn(6, 9, dtype=dtype, generator=torch.Generator().manual_seed(4))
    module = nn.RMSNorm(9, eps=eps, dtype=dtype)
    weight, _ = _affine(9, dtype, 5)
    with torch.no_grad():
        module.weight.copy_(weight)
    _compare(lambda t, w: norm.rms_norm(t, 9, w, eps=eps), module, x, dtype, [weight])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("batch", [2, 13])
def test_batch_norm_equals_torch_batch_norm_1d_in_training_mode(dtype, batch):
    x = -1 + 4 * torch.randn(batch, 5, dtype=dtype, generator=torch.Generator().manual_seed(6))
    module = nn.BatchNorm1d(5, eps=1e-4, dtype=dtype).train()
    weight, bias = _affine(5, dtype, 7)
    with torch.no_grad():
        module.weight.copy_(weight)
        module.bias.copy_(bias)
    _compare(lambda t, w, b: norm.batch_norm(t, w, b, eps=1e-4), module, x, dtype, [weight, bias])


def test_layer_norm_uses_the_biased_variance_and_rms_norm_equals_it_at_zero_mean():
    x = torch.tensor([[1.0, 2.0, 4.0, 9.0]], dtype=torch.float64)
    y = norm.layer_norm(x, 4, eps=1e-12)
    # biased: the output's mean square is exactly 1 (an unbiased divisor would give 3/4)
    assert abs(y.pow(2).mean().item() - 1) < 1e-9
    centred = x - x.mean()
    torch.testing.assert_close(norm.rms_norm(centred, 4, eps=1e-12), y)
    assert not torch.allclose(norm.rms_norm(x, 4, eps=1e-12), y)


@pytest.mark.parametrize("d, seed", [(5, 0), (12, 1)])
def test_layer_norm_jacobian_equals_autograd(d, seed):
    g = torch.Generator().manual_seed(seed)
    x = 2 + 3 * torch.randn(d, dtype=torch.float64, generator=g)
    gamma = 1 + torch.randn(d, dtype=torch.float64, generator=g)
    beta = torch.randn(d, dtype=torch.float64, generator=g)
    expected = torch.autograd.functional.jacobian(
        lambda t: nn.functional.layer_norm(t, (d,), gamma, beta, eps=1e-2), x)
    torch.testing.assert_close(gradflow.layer_norm_jacobian(x, gamma, eps=1e-2), expected,
                               rtol=1e-12, atol=1e-12)


def test_rms_norm_jacobian_equals_autograd():
    x = torch.randn(7, dtype=torch.float64, generator=torch.Generator().manual_seed(2)) + 1
    gamma = torch.linspace(0.5, 1.5, 7, dtype=torch.float64)
    expected = torch.autograd.functional.jacobian(
        lambda t: nn.functional.rms_norm(t, (7,), gamma, eps=1e-3), x)
    torch.testing.assert_close(norm.rms_norm_jacobian(x, gamma, eps=1e-3), expected,
                               rtol=1e-12, atol=1e-12)


def test_layer_norm_jacobian_removes_the_mean_and_the_input_direction_and_scales_as_one_over_c():
    x = torch.randn(10, dtype=torch.float64, generator=torch.Generator().manual_seed(8)) * 2 + 1
    jac = norm.layer_norm_jacobian(x, eps=1e-12)
    ones, centred = torch.ones(10, dtype=torch.float64), x - x.mean()
    assert jac.matmul(ones).abs().max() < 1e-10 and jac.matmul(centred).abs().max() < 1e-9
    assert torch.linalg.matrix_rank(jac, rtol=1e-9).item() == 10 - 2
    for c in (0.3, 7.0, 250.0):
        torch.testing.assert_close(norm.layer_norm_jacobian(c * x, eps=1e-12), jac / c,
                                   rtol=1e-8, atol=1e-12)


def test_batch_norm_gradient_growth_is_its_closed_form():
    assert norm.batch_norm_gradient_growth("relu") == pytest.approx(math.pi / (math.pi - 1), 1e-9)
    assert norm.batch_norm_gradient_growth("identity") == 1.0
    # tanh by scipy quadrature, independently of the package's Gauss-Hermite rule
    pdf = stats.norm.pdf
    num = integrate.quad(lambda z: (1 - np.tanh(z) ** 2) ** 2 * pdf(z), -12, 12)[0]
    var = integrate.quad(lambda z: np.tanh(z) ** 2 * pdf(z), -12, 12)[0]
    assert norm.batch_norm_gradient_growth("tanh") == pytest.approx(num / var, rel=1e-9)


def _bn_plain_growth(width, batch, depth, seeds):
    """Measured per-layer growth of the squared gradient towards the input, median over seeds,
    in a plain ReLU network with BatchNorm (StackedMLP's batch_norm network, float64)."""
    weights, biases = stacked.draw_stacked_weights([width] * (depth + 1), seeds, init="kaiming",
                                                   dtype=torch.float64)
    g = torch.Generator().manual_seed(99)
    x = torch.randn(len(seeds), batch, width, dtype=torch.float64, generator=g).requires_grad_()
    # every layer batch-normalised: one extra, unread layer makes the last one "not last"
    states = stacked.stacked_forward(x, weights + [weights[-1]], biases + [biases[-1]], 0.0,
                                     activation="relu", batch_norm=True, return_states=True)
    top = torch.randn(states[depth].shape, dtype=torch.float64, generator=g)
    grads = torch.autograd.grad(states[depth], states[:depth], top)
    sq = torch.stack([gr.pow(2).sum(dim=(1, 2)) for gr in grads], 1).log()
    slope = np.polyfit(np.arange(depth), sq.T.numpy(), 1)[0]   # log per layer, per seed
    return float(np.exp(-np.median(slope)))


def test_bn_relu_network_growth_approaches_pi_over_pi_minus_one_when_wide_and_large_batch():
    measured = _bn_plain_growth(width=200, batch=200, depth=12, seeds=[0, 1, 2])
    assert measured == pytest.approx(math.pi / (math.pi - 1), rel=0.05)
    assert measured > 1.3


def test_stream_variance_laws_match_residual_networks_the_chapter_does_not_build():
    depth, width, batch = 9, 300, 256
    for bn, branch in ((False, "none"), (True, "batch")):
        weights, biases = stacked.draw_stacked_weights([40] + [width] * depth, range(3),
                                                       init="kaiming", dtype=torch.float64)
        x = torch.randn(3, batch, 40, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
        with torch.no_grad():
            states = stacked.stacked_forward(x, weights, biases, 1.0, activation="relu",
                                             batch_norm=bn, preactivation=True,
                                             final_activation=False, return_states=True)
        variance = np.array([s.var(dim=(1, 2)).mean().item() for s in states[1:]])
        predicted = norm.stream_variance_law(np.arange(1, depth + 1), variance[0], branch)
        np.testing.assert_allclose(variance, predicted, rtol=0.15)
    np.testing.assert_allclose(norm.stream_variance_law([1, 4], 2.0, "none"), [2.0, 16.0])
    np.testing.assert_allclose(norm.stream_variance_law([1, 4], 2.0, "batch"), [2.0, 5.0])


@pytest.mark.parametrize("call, match", [
    (lambda: norm.layer_norm(torch.zeros(3, 4), 5), r"normalized_shape \(5,\) must equal"),
    (lambda: norm.rms_norm(torch.zeros(3, 4), (2, 4)), "must equal the last 2"),
    (lambda: norm.layer_norm(torch.zeros(3, 4), 4, weight=torch.ones(3)), "weight must have"),
    (lambda: norm.batch_norm(torch.zeros(1, 4)), "batch of at least 2 examples"),
    (lambda: norm.batch_norm(torch.zeros(2, 4, 3)), r"\(batch, features\)"),
    (lambda: norm.layer_norm(torch.zeros(3, 4), 4, eps=0.0), "eps must be a positive"),
    (lambda: norm.rms_norm(torch.zeros(3, 4), 4, eps=-1e-6), "eps must be a positive"),
    (lambda: norm.batch_norm(torch.zeros(3, 4), eps=float("nan")), "eps must be a positive"),
    (lambda: norm.layer_norm(torch.zeros(3, 4, dtype=torch.long), 4), "floating-point"),
    (lambda: norm.layer_norm_jacobian(torch.zeros(2, 3)), "one vector"),
    (lambda: norm.stream_variance_law([0, 1], 1.0, "none"), "layer indices >= 1"),
    (lambda: norm.stream_variance_law([1], 1.0, "layer"), "'none' or 'batch'"),
])
def test_bad_input_gets_a_clear_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_rms_layer_norm_gap_is_the_distance_it_claims():
    g = torch.Generator().manual_seed(11)
    for m in (0.0, 0.05, 0.7, 3.0):
        z = torch.randn(400, dtype=torch.float64, generator=g)
        z = (z - z.mean()) / z.var(unbiased=False).sqrt()   # mean 0, std 1 exactly
        x = 2.5 * (z + m)                                    # mean / std = m
        ln = nn.functional.layer_norm(x, (400,), eps=0.0)
        rms = nn.functional.rms_norm(x, (400,), eps=0.0)
        measured = ((rms - ln).norm() / ln.norm()).item()
        assert norm.rms_layer_norm_gap(m) == pytest.approx(measured, abs=1e-12)


# --- The chapter's experiments (gradflow.chapters.normalisation), on configurations it does not use


from gradflow.chapters import normalisation as chapter
from gradflow.chapters.normalisation import explorer


def test_pytorch_agreement_on_another_shape_is_rounding():
    table = chapter.pytorch_agreement(batch=5, features=7, seed=3).set_index("dtype")
    numbers = ["output", "input gradient", "parameter gradients"]
    assert table.loc["float32", numbers].to_numpy().max() < 1e-5
    assert table.loc["float64", numbers].to_numpy().max() < 1e-13
    assert len(table) == 6


def test_explorer_pre_batch_norm_block_is_the_stacked_preactivation_block():
    weights, biases = stacked.draw_stacked_weights([12] * 5, [4], init="kaiming",
                                                   dtype=torch.float64)
    x = torch.randn(9, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    ours = explorer.residual_states(x, [w[0] for w in weights[1:]], "batch", "pre")[-1]
    # stacked: the stem is a residual layer too (widths agree); a branch scale of 0 makes h_1 = x
    scales = [torch.zeros(1, dtype=torch.float64)] + [torch.ones(1, dtype=torch.float64)] * 3
    theirs = stacked.stacked_forward(x.unsqueeze(0), weights, biases, 1.0, activation="relu",
                                     batch_norm=True, preactivation=True, final_activation=False,
                                     branch_scale=scales)[0]
    torch.testing.assert_close(ours, theirs)


@pytest.mark.parametrize("normaliser, torch_norm", [
    ("layer", lambda h: nn.functional.layer_norm(h, h.shape[-1:])),
    ("rms", lambda h: nn.functional.rms_norm(h, h.shape[-1:], eps=1e-5)),
    ("batch", lambda h: nn.functional.batch_norm(h, None, None, training=True)),
])
def test_explorer_post_and_branch_placements_use_the_normaliser_where_they_say(normaliser,
                                                                                torch_norm):
    g = torch.Generator().manual_seed(5)
    ws = [torch.randn(6, 6, dtype=torch.float64, generator=g) for _ in range(3)]
    x = torch.randn(7, 6, dtype=torch.float64, generator=g)
    post, branch = x, x
    for w in ws:
        post = torch_norm(post + torch.relu(post) @ w.T)
        branch = branch + torch_norm(torch.relu(branch) @ w.T)
    torch.testing.assert_close(explorer.residual_states(x, ws, normaliser, "post")[-1], post)
    torch.testing.assert_close(explorer.residual_states(x, ws, normaliser, "branch")[-1], branch)


def test_squared_gradient_norms_are_autograd_through_torch_batch_norm_modules():
    depth, width, batch, seed = 4, 6, 5, 8
    got = chapter.squared_gradient_norms("tanh", depth=depth, width=width, batch=batch,
                                         seeds=[seed])[0]
    generator = torch.Generator().manual_seed(seed)
    layers = []
    for _ in range(depth + 1):   # the measured layers and one unread readout layer
        linear = nn.Linear(width, width, dtype=torch.float64)
        w = torch.empty(width, width)
        nn.init.kaiming_normal_(w, nonlinearity="relu", generator=generator)
        with torch.no_grad():
            linear.weight.copy_(w)
            linear.bias.zero_()
        layers.append(linear)
    x = torch.randn(batch, width, generator=generator).double().requires_grad_(True)
    readout = torch.randn(batch, width, generator=generator).double()
    states, h = [x], x
    for linear in layers[:depth]:
        h = torch.tanh(nn.BatchNorm1d(width, affine=False, dtype=torch.float64).train()(linear(h)))
        states.append(h)
    grads = torch.autograd.grad((states[-1] * readout).sum(), states[:depth])
    expected = [gr.pow(2).sum().item() for gr in grads]
    np.testing.assert_allclose(got, expected, rtol=1e-10)


def test_squared_gradient_norms_without_batch_norm_are_autograd_through_torch_linear_layers():
    depth, width, batch, seed = 5, 7, 4, 3
    got = chapter.squared_gradient_norms("relu", depth=depth, width=width, batch=batch,
                                         seeds=[seed], batch_norm=False)[0]
    generator = torch.Generator().manual_seed(seed)
    layers = []
    for _ in range(depth + 1):   # the measured layers and one unread readout layer
        linear = nn.Linear(width, width, dtype=torch.float64)
        w = torch.empty(width, width)
        nn.init.kaiming_normal_(w, nonlinearity="relu", generator=generator)
        with torch.no_grad():
            linear.weight.copy_(w)
            linear.bias.zero_()
        layers.append(linear)
    x = torch.randn(batch, width, generator=generator).double().requires_grad_(True)
    readout = torch.randn(batch, width, generator=generator).double()
    states, h = [x], x
    for linear in layers[:depth]:
        h = torch.relu(linear(h))
        states.append(h)
    grads = torch.autograd.grad((states[-1] * readout).sum(), states[:depth])
    np.testing.assert_allclose(got, [gr.pow(2).sum().item() for gr in grads], rtol=1e-10)


def test_batch_norm_replaces_a_level_or_a_vanishing_gradient_with_the_same_explosion():
    table = chapter.with_and_without_batch_norm(("kaiming", "xavier"), depth=16, width=200,
                                                batch=96, seeds=(4, 5))
    table = table.set_index(["init", "batch_norm"])
    # predictions: sigma_w^2 / 2 without BatchNorm (Kaiming 2, Xavier 1 on a square layer),
    # pi / (pi - 1) with it, whatever the initialisation
    assert table.loc[("kaiming", False), "predicted"] == pytest.approx(1.0)
    assert table.loc[("xavier", False), "predicted"] == pytest.approx(0.5)
    for init in ("kaiming", "xavier"):
        assert table.loc[(init, True), "predicted"] == pytest.approx(math.pi / (math.pi - 1))
    relative = (table["measured"] / table["predicted"] - 1).abs()
    assert relative.max() < 0.08
    assert table.loc[("xavier", False), "measured"] < 0.6    # vanishing without BatchNorm
    assert table.loc[("xavier", True), "measured"] > 1.3     # exploding with it


def test_layer_norm_jacobian_check_counts_the_eps_direction_only_in_its_strict_rank():
    check = chapter.jacobian_check(features=12, seed=5)
    assert check["rank"] == 12 - 2 and check["rank_strict"] == 12 - 1
    assert 0 < check["input_direction"] < 1e-5 and check["mean_direction"] < 1e-12


def test_growth_rate_recovers_a_geometric_profile_and_skips_the_top():
    layers = np.arange(20)
    profile = 3.0 * 1.7 ** (-layers)
    profile[-3:] = 1e9            # a transient near the readout, left out
    assert chapter.growth_rate(np.vstack([profile, profile * 2]), skip_top=3) == pytest.approx(1.7)


def test_pre_ln_gradient_through_layer_norm_is_the_closed_form_jacobian_applied_per_token():
    from dataclasses import replace

    config = replace(chapter.PRE_LN_CONFIG, n_layer=2, n_embd=16, n_head=2, block_size=6)
    table = chapter.pre_ln_gradients(config, scaled_init=(False,), seed=4, batch_size=3)
    assert list(table["layer"]) == [1, 2]
    assert (table["ratio"] > 0).all()
    # the ratio is |J^T g| / |g| with J LayerNorm's Jacobian at each token: check block 1 by hand
    from gradflow.networks.gpt import GPT

    model = GPT(replace(config, scaled_init=False), seed=4)
    generator = torch.Generator().manual_seed(4)
    idx = torch.randint(0, config.vocab_size, (3, 6), generator=generator)
    targets = torch.randint(0, config.vocab_size, (3, 6), generator=generator)
    x0 = model.wte(idx) + model.wpe(torch.arange(idx.shape[1]))
    u = model.blocks[0].ln_1(x0)
    u.retain_grad()
    h = x0 + model.blocks[0].attn(u)
    h = h + model.blocks[0].mlp(model.blocks[0].ln_2(h))
    h = model.blocks[1](h)
    loss = nn.functional.cross_entropy(model.lm_head(model.ln_f(h)).flatten(0, 1),
                                       targets.flatten())
    loss.backward()
    g = u.grad.double().reshape(-1, 16)
    tokens = x0.detach().double().reshape(-1, 16)
    through = torch.stack([norm.layer_norm_jacobian(t).T @ gt for t, gt in zip(tokens, g)])
    assert table["ratio"].iloc[0] == pytest.approx((through.norm() / g.norm()).item(), rel=1e-6)


def test_stream_growth_laws_hold_on_another_configuration():
    table = chapter.stream_growth(depth=12, width=160, batch=96, input_width=10, seeds=(5, 6))
    plain, bn = (table[table.branch == b] for b in ("none", "batch"))
    doubling = np.exp(np.polyfit(plain["layer"], np.log(plain["variance"]), 1)[0])
    assert doubling == pytest.approx(2.0, rel=0.06)
    np.testing.assert_allclose(bn["variance"], bn["predicted"], rtol=0.1)
    previous = bn.set_index("layer")["variance"]
    blocks = bn[bn.layer >= 2]
    np.testing.assert_allclose(blocks["branch_ratio"],
                               1 / np.sqrt(previous.loc[blocks["layer"] - 1].to_numpy()), rtol=0.1)


def test_train_branch_scalars_starts_skipinit_at_the_stem_and_readout_alone():
    from gradflow.tasks.regression import make_regression_task

    task = make_regression_task(n_samples=12, dim=3, seed=2)
    run = chapter.train_branch_scalars(depth=5, width=8, steps=2, seeds=(1,), task=task)
    start = run.curves[run.curves.step == 0].set_index("kind")["loss"]
    weights, biases = stacked.draw_stacked_weights([3, 8, 8, 8, 8, 1], [1], init="kaiming")
    stem = task.x @ weights[0][0].T + biases[0][0]
    readout = torch.relu(stem) @ weights[-1][0].T + biases[-1][0]
    expected = (readout - task.y).pow(2).mean().item()
    assert start["SkipInit/ReZero: alpha = 0, learnable"] == pytest.approx(expected, rel=1e-5)
    assert len(run.curves) == 3 * 3


@pytest.mark.parametrize("call, match", [
    (lambda: chapter.squared_gradient_norms("relu", depth=3, width=4, batch=1, seeds=[0]),
     "batch must be at least 2"),
    (lambda: explorer.residual_states(torch.zeros(2, 3), [], "layer", "middle"), "placement"),
    (lambda: explorer.residual_states(torch.zeros(2, 3), [], "group", "pre"), "normaliser"),
    (lambda: chapter.train_branch_scalars(depth=2), "depth must be at least 3"),
])
def test_chapter_experiments_reject_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# --- The chapter's questions (gradflow.chapters.normalisation.practice) -------------------------

from gradflow.chapters.normalisation import practice
from gradflow.networks.probing import weights_and_probe_data


def test_batch_norm_placement_matches_pytorch_batch_norm_layers_built_by_hand():
    depth, width, batch = 4, 8, 6
    frame = practice.batch_norm_placement(depth=depth, width=width, batch=batch, seeds=[3])
    weights, biases, x, readout = weights_and_probe_data([width] * (depth + 2), [3], "kaiming",
                                                         batch)
    for placement in practice.PLACEMENTS:
        h = x[0].clone().requires_grad_(True)
        states = [h]
        for w, b in zip(weights[:depth], biases[:depth]):
            a = h @ w[0].T + b[0]
            if placement == "before":
                h = torch.relu(nn.functional.batch_norm(a, None, None, training=True, eps=1e-5))
            else:
                h = nn.functional.batch_norm(torch.relu(a), None, None, training=True, eps=1e-5)
            states.append(h)
        grads = torch.autograd.grad((states[-1] * readout[0]).sum(), states[:-1])
        measured = frame[frame.placement == placement].sort_values("layer")["grad_sq"].to_numpy()
        expected = np.array([g.pow(2).sum().item() for g in grads])
        np.testing.assert_allclose(measured, expected, rtol=1e-9)


def test_batch_norm_before_relu_hands_each_unit_mean_zero_and_variance_one():
    frame = practice.batch_norm_placement(depth=3, width=16, batch=32, seeds=[0, 1])
    before = frame[frame.placement == "before"]
    assert before["relu_input_mean"].abs().max() < 1e-12
    np.testing.assert_allclose(before["relu_input_var"], 1.0, atol=1e-4)   # eps = 1e-5


def test_batch_norm_placement_refuses_a_batch_of_one():
    with pytest.raises(ValueError, match="batch"):
        practice.batch_norm_placement(depth=3, width=4, batch=1, seeds=[0])


def test_padding_changes_pytorch_batch_norm_but_not_layer_norm():
    length, padded_length, channels = 3, 6, 5
    result = practice.padding_and_causality(length, padded_length, channels, seed=4)
    g = torch.Generator().manual_seed(4)
    first = torch.randn(length, channels, generator=g, dtype=torch.float64)
    second = torch.randn(padded_length, channels, generator=g, dtype=torch.float64)
    bn = nn.BatchNorm1d(channels, affine=False, dtype=torch.float64).train()
    ln = nn.LayerNorm(channels, elementwise_affine=False, dtype=torch.float64)
    padded = torch.cat([first, torch.zeros(padded_length - length, channels, dtype=torch.float64),
                        second])
    expected = (bn(padded)[:length] - bn(first)).abs().max().item()
    assert result["batchnorm_padded"] == pytest.approx(expected, rel=1e-9)
    expected_masked = (bn(torch.cat([first, second]))[:length] - bn(first)).abs().max().item()
    assert result["batchnorm_masked"] == pytest.approx(expected_masked, rel=1e-9)
    assert result["layernorm"] == 0.0 == result["layernorm_future"]
    assert (ln(first) - ln(torch.cat([first, second]))[:length]).abs().max().item() == 0.0
    assert result["batchnorm_future"] > 0


def test_padding_and_causality_names_a_bad_length():
    with pytest.raises(ValueError, match="length"):
        practice.padding_and_causality(length=8, padded_length=8)


def test_decay_on_a_scale_invariant_weight_is_a_learning_rate_against_torch_sgd():
    # PyTorch's SGD with weight_decay = decay / lr shrinks W by (1 - decay) each step before the
    # gradient step, so on nn.Linear -> nn.LayerNorm it must follow the function's decayed run,
    # whose outputs the function shows equal to an undecayed run with a growing learning rate.
    result = practice.decay_is_a_learning_rate(scale=2.0, lr=0.1, decay=0.05, steps=10,
                                               features=6, batch=9, seed=2, eps=1e-14)
    assert result["gradient_ratio"] == pytest.approx(2.0, rel=1e-12)
    assert result["decay_output_change"] < 1e-12 < result["no_decay_change"]
    assert result["lr_growth"] == pytest.approx(1 / 0.95 ** 19)
    g = torch.Generator().manual_seed(2)
    w0 = torch.randn(6, 6, generator=g, dtype=torch.float64)
    x = torch.randn(9, 6, generator=g, dtype=torch.float64)
    target = torch.randn(9, 6, generator=g, dtype=torch.float64)
    linear = nn.Linear(6, 6, bias=False, dtype=torch.float64)
    ln = nn.LayerNorm(6, elementwise_affine=False, eps=1e-14, dtype=torch.float64)
    with torch.no_grad():
        linear.weight.copy_(w0)
    sgd = torch.optim.SGD(linear.parameters(), lr=0.1, weight_decay=0.05 / 0.1)
    rescaled = w0.clone()
    for t in range(10):
        sgd.zero_grad()
        (ln(linear(x)) - target).pow(2).mean().backward()
        sgd.step()
        w = rescaled.clone().requires_grad_(True)
        loss = (ln(x @ w.T) - target).pow(2).mean()
        rescaled = rescaled - 0.1 / 0.95 ** (2 * t + 1) * torch.autograd.grad(loss, w)[0]
        torch.testing.assert_close(linear.weight.detach(), 0.95 ** (t + 1) * rescaled,
                                   rtol=1e-9, atol=1e-12)


def test_decay_is_a_learning_rate_refuses_a_decay_of_one():
    with pytest.raises(ValueError, match="decay"):
        practice.decay_is_a_learning_rate(decay=1.0)


def test_layer_norm_axes_gamma_and_beta_have_one_entry_per_channel():
    result = practice.layer_norm_axes(batch=3, tokens=5, channels=7, seed=1)
    assert result["weight_shape"] == result["bias_shape"] == (7,)
    assert result["pytorch_difference"] < 1e-12
    x = torch.randn(3, 5, 7, dtype=torch.float64)
    y = nn.functional.layer_norm(x, (7,))
    torch.testing.assert_close(y.mean(-1), torch.zeros(3, 5, dtype=torch.float64), atol=1e-12,
                               rtol=0)
    assert result["token_mean"] < 1e-12 < result["position_mean"]


def test_layer_norm_axes_names_a_bad_size():
    with pytest.raises(ValueError, match="channels"):
        practice.layer_norm_axes(channels=0)


# --- the studies ----------------------------------------------------------------------------------

def test_a_branch_unit_keeps_the_training_runs_losses():
    from gradflow.chapters import normalisation as ne
    from gradflow.tasks.regression import make_regression_task

    rows = ne.residual.branch_unit([0, 1], depth=4, width=8, steps=5, lr=1e-2, n_samples=16,
                                   dim=4, task_seed=2)
    run = ne.train_branch_scalars(depth=4, width=8, steps=5, lr=1e-2, seeds=(0, 1),
                                  task=make_regression_task(n_samples=16, dim=4, seed=2))
    assert len(rows) == len(ne.KINDS) * 2
    for row in rows:
        curve = run.curves[(run.curves.kind == row["kind"]) & (run.curves.seed == row["seed"])]
        assert row["first_loss"] == curve["loss"].iloc[0]
        assert row["final_loss"] == curve["loss"].iloc[-1]
        assert row["curve"] == pytest.approx(curve["loss"].tolist(), rel=5e-4)
    import pandas as pd
    long = ne.branch_curves(pd.DataFrame(rows))
    assert sorted(long["step"].unique()) == list(range(6))
    kinds = list(ne.KINDS)
    result = ne.branch_log_ratio(pd.DataFrame(rows), "final_loss", kinds[1], kinds[0])
    table = pd.DataFrame(rows).pivot(index="seed", columns="kind", values="final_loss")
    logs = np.log10(table[kinds[1]] / table[kinds[0]])
    assert result["mean"] == pytest.approx(logs.mean()) and result["n"] == 2
    with pytest.raises(ValueError, match="kind 'none'"):
        ne.branch_log_ratio(pd.DataFrame(rows), "final_loss", "none", kinds[0])


def test_an_rms_unit_is_the_stream_gaps_before_and_after_training():
    from gradflow.chapters import normalisation as ne

    rows = ne.rms.rms_unit(1, steps=2, batch_size=8)
    comparison = ne.before_and_after_training(steps=2, batch_size=8, seed=1)
    before = [r for r in rows if r["when"] == "before"]
    after = [r for r in rows if r["when"] == "after"]
    assert [r["measured_gap"] for r in before] == comparison.before["measured_gap"].tolist()
    assert [r["measured_gap"] for r in after] == comparison.after["measured_gap"].tolist()
    assert {r["seed"] for r in rows} == {1}


def test_placement_growth_is_the_chapter_estimator_per_seed_and_ignores_the_input_layer():
    # a geometric profile of factor 1.5 per layer whose input layer (layer 1) and top five
    # layers are off the line: the estimator must return 1.5 exactly, as explosion.growth_rate
    layers = np.arange(1, 21)
    rows = []
    for seed, factor in ((0, 1.5), (1, 1.2)):
        sq = 7.0 * factor ** (20 - layers)
        sq[0] *= 0.5                  # the input layer's factor differs
        sq[-5:] = 1e6                 # a transient near the readout
        rows += [{"placement": "before", "seed": seed, "layer": int(l), "grad_sq": float(v)}
                 for l, v in zip(layers, sq)]
    frame = pd.DataFrame(rows).sample(frac=1.0, random_state=0)   # order must not matter
    growth = practice.placement_growth(frame).set_index("seed")["growth"]
    assert growth.loc[0] == pytest.approx(1.5, rel=1e-12)
    assert growth.loc[1] == pytest.approx(1.2, rel=1e-12)
    with pytest.raises(ValueError, match="grad_sq"):
        practice.placement_growth(frame.drop(columns="grad_sq"))
