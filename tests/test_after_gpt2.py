"""Tests of the chapter "After GPT-2"'s experiments (gradflow.chapters.after_gpt2), on
configurations the chapter does not use, against independent references: torch.optim.AdamW on
the model itself, autograd, closed forms and hand-computed tables."""

import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from gradflow.chapters.after_gpt2 import experiments, studies, training
from gradflow.chapters.gpt_block import SequenceTask
from gradflow.networks.gpt import GPT, GPTConfig

TASK = SequenceTask(kind="copy", n_items=3, n_symbols=5)
TINY = GPTConfig(vocab_size=TASK.vocab_size, block_size=TASK.block_size, n_layer=2, n_head=2,
                 n_embd=12)


def _reference_run(config, seed, lr, warmup, steps, batch_size, data_seed):
    """The same training with torch.optim.AdamW and LambdaLR on the model itself."""
    model = GPT(config, seed=seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda i: 1.0 if warmup == 0 else min(1.0, (i + 1) / warmup))
    generator = torch.Generator().manual_seed(data_seed)
    probe, _ = TASK.sample(64, torch.Generator().manual_seed(data_seed + 10_000))
    with torch.no_grad():
        start = model(probe).double()
    losses, changes = [], {}
    for t in range(1, steps + 1):
        idx, targets = TASK.sample(batch_size, generator)
        _, loss = model(idx, targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
        with torch.no_grad():
            changes[t] = float((model(probe).double() - start).norm() / start.norm())
    return np.array(losses), changes


@pytest.mark.parametrize("warmup", [0, 3])
def test_one_copy_trains_like_torch_adamw(warmup):
    config = replace(TINY, ffn="swiglu")
    run = training.train_copies(config, seeds=[5], lrs=[3e-3], warmups=[warmup], task=TASK,
                                steps=8, batch_size=6, data_seed=4, update_steps=(1, 8),
                                eval_size=20)
    losses, changes = _reference_run(config, 5, 3e-3, warmup, 8, 6, 4)
    np.testing.assert_allclose(run.losses[:, 0], losses, rtol=2e-4, atol=2e-5)
    for t in (1, 8):
        assert run.updates[t][0] == pytest.approx(changes[t], rel=2e-3)


def test_copies_are_independent_of_each_other():
    together = training.train_copies(TINY, seeds=[1, 2], lrs=[1e-2, 1e-3], warmups=[0, 2],
                                     task=TASK, steps=5, batch_size=4, eval_size=10)
    for i, (seed, lr, w) in enumerate([(1, 1e-2, 0), (2, 1e-3, 2)]):
        alone = training.train_copies(TINY, seeds=[seed], lrs=[lr], warmups=[w], task=TASK,
                                      steps=5, batch_size=4, eval_size=10)
        np.testing.assert_allclose(together.losses[:, i], alone.losses[:, 0], rtol=1e-5)


def test_warmup_factor_is_linear_then_one():
    assert [training.warmup_factor(t, 4) for t in range(1, 7)] == [0.25, 0.5, 0.75, 1, 1, 1]
    assert training.warmup_factor(1, 0) == 1.0


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"seeds": [0, 1], "lrs": [1e-3, 1e-3, 1e-3]}, "needs one value per copy"),
    ({"lrs": 0.0}, "lr must be a positive number"),
    ({"steps": 3, "update_steps": (5,)}, "update_steps must lie in 1..steps=3"),
    ({"steps": 0}, "steps must be a positive integer"),
])
def test_bad_training_arguments_raise_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        training.train_copies(TINY, task=TASK, **kwargs)


def test_classify_uses_the_input_blind_baselines():
    task = SequenceTask()
    blind = task.input_blind_losses()
    assert studies.classify(math.nan, 2.4) == "diverged"
    assert studies.classify(2.5, 2.4) == "diverged"
    assert studies.classify(math.log(10) - 0.01, 2.4) == "stuck"
    assert studies.classify(blind["position only"] - 0.01, 2.4) == "learned"
    assert studies.classify(2.0, 2.4) == "partial"


def test_ffn_paired_pairs_the_seeds_and_gives_the_t_interval():
    from scipy import stats

    frame = pd.DataFrame({"ffn": ["gelu"] * 3 + ["swiglu"] * 3, "seed": [0, 1, 2] * 2,
                          "loss_50": [1.0, 1.2, 1.4, 0.9, 1.2, 1.25]})
    summary = studies.ffn_paired(frame, "loss_50")
    differences = np.array([-0.1, 0.0, -0.15])
    low, high = stats.t.interval(0.95, 2, loc=differences.mean(), scale=stats.sem(differences))
    assert summary.loc["swiglu", "difference"] == pytest.approx(differences.mean())
    assert (summary.loc["swiglu", "low"], summary.loc["swiglu", "high"]) == pytest.approx((low, high))
    assert summary.loc["swiglu", "wins"] == 2 and summary.loc["swiglu", "n"] == 3
    assert summary.loc["gelu", "sd"] == pytest.approx(0.2)
    with pytest.raises(ValueError, match="reference 'relu'"):
        studies.ffn_paired(frame, "loss_50", reference="relu")


def test_ffn_unit_windows_are_the_mean_losses_of_the_run():
    config = replace(studies.FFN_CONFIG, n_layer=1, n_embd=12)
    rows = studies.ffn_unit("swiglu", [3], n_layer=1, n_embd=12, steps=20, windows=[10, 20],
                            lr=1e-3, batch_size=4, data_seed=2)
    run = training.train_copies(replace(config, ffn="swiglu"), seeds=[3], lrs=1e-3, steps=20,
                                batch_size=4, data_seed=2, eval_size=200)
    assert rows[0]["loss_10"] == pytest.approx(run.losses[:10, 0].mean())
    assert rows[0]["loss_20"] == pytest.approx(training.final_loss(run)[0])
    assert rows[0]["params"] == sum(p.numel() for p in GPT(replace(config, ffn="swiglu")).parameters())
    with pytest.raises(ValueError, match="windows must lie in 10..steps=20"):
        studies.ffn_unit("gelu", [0], n_layer=1, n_embd=12, steps=20, windows=[30], lr=1e-3,
                         batch_size=4, data_seed=2)


# --- Probes at initialisation --------------------------------------------------------------

PROBE = GPTConfig(vocab_size=10, block_size=12, n_layer=3, n_head=3, n_embd=36)


@pytest.mark.parametrize("ffn", ["gelu", "swiglu", "geglu"])
def test_ffn_gains_match_the_mean_field_prediction(ffn):
    gains = experiments.ffn_gains(replace(PROBE, ffn=ffn), seed=2, draws=6)
    assert len(gains) == PROBE.n_layer
    ratio = gains["measured"] / gains["predicted"]
    assert ratio.between(0.75, 1.25).all()


def test_ffn_gain_is_the_jacobians_frobenius_norm():
    """The vector-Jacobian estimate against the full Jacobian from autograd, one block."""
    config = replace(PROBE, ffn="swiglu", n_layer=1)
    model = GPT(config, seed=0).double()
    u = torch.randn(36, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    jacobian = torch.autograd.functional.jacobian(model.blocks[0].mlp, u)
    exact = float((jacobian**2).sum()) / 36
    generator = torch.Generator().manual_seed(2)
    estimates = []
    for _ in range(4000):
        g = torch.randn(36, dtype=torch.float64, generator=generator)
        estimates.append(float((jacobian.T @ g).pow(2).sum()) / 36)
    assert np.mean(estimates) == pytest.approx(exact, rel=0.05)


def test_name_rules_match_the_weights_their_bugs_describe():
    config = replace(PROBE, ffn="swiglu", n_layer=4, n_embd=48, n_head=4)
    small = 0.02 / math.sqrt(8)
    model, matched = experiments.init_by_name_rule(config, "exact name")
    assert matched == 0
    assert abs(model.blocks[0].mlp.c_proj.weight.std().item() - 0.02) < 0.002
    model, matched = experiments.init_by_name_rule(config, "up projection")
    assert matched == 2 * config.n_layer
    for block in model.blocks:
        assert abs(block.mlp.c_up.weight.std().item() - small) < 0.1 * small
        assert abs(block.mlp.c_proj.weight.std().item() - 0.02) < 0.002
        assert abs(block.attn.c_proj.weight.std().item() - small) < 0.15 * small
    model, matched = experiments.init_by_name_rule(config, "endswith")
    assert matched == 2 * config.n_layer
    assert abs(model.blocks[0].mlp.c_proj.weight.std().item() - small) < 0.1 * small
    with pytest.raises(ValueError, match="unknown name rule"):
        experiments.init_by_name_rule(config, "startswith")


def test_scaling_w3_instead_of_w2_leaves_the_stream_variance_alone():
    config = replace(PROBE, ffn="geglu", n_layer=6, n_embd=48, n_head=4)
    variance = experiments.stream_variance_by_rule(config, seeds=(3, 4))
    last = variance[variance.layer == 6].set_index("rule")["variance"]
    assert last["up projection"] == pytest.approx(last["endswith"], rel=0.03)
    assert last["exact name"] > 1.5 * last["endswith"]


def test_projection_stds_report_each_role():
    stds = experiments.projection_stds(GPT(replace(PROBE, ffn="swiglu"), seed=1))["std"]
    assert set(stds.index) == {"attention Q, K", "attention V", "attention output c_proj",
                               "feed-forward c_fc", "feed-forward c_up",
                               "feed-forward output c_proj"}
    assert stds["feed-forward output c_proj"] == pytest.approx(0.02 / math.sqrt(6), rel=0.1)


def test_rezero_makes_the_smallest_first_update():
    # A ReZero model starts as the identity on the stream, so its first step moves the logits
    # least (the relative change ``update_1`` that the stability study records).
    first = {}
    for name, config in {"Pre": replace(TINY, n_layer=2), "ReZero": replace(TINY, residual="rezero")}.items():
        run = training.train_copies(config, seeds=0, lrs=[1e-3], steps=3, batch_size=4,
                                    update_steps=(1,), eval_size=100, task=TASK)
        first[name] = float(run.updates[1][0])
    assert 0 < first["ReZero"] < first["Pre"]


def test_the_two_chapters_rules_for_stuck_agree_on_the_gpt_chapters_kept_runs():
    # The after-GPT-2 chapter counts a run as stuck by its own rule (studies.classify: within 0.05
    # below ln 10 or anywhere above it, short of diverging), the GPT chapter by |loss - ln 10| <=
    # 0.05 (gpt_block.training.is_stuck). On the GPT chapter's kept training runs, both label
    # every run alike (the GPT chapter's prose says so): every plain run stuck, no shortcut run.
    from gradflow.chapters.gpt_block import training as gpt_training

    runs = gpt_training.TRAINING_STUDY.load()
    for variant in ("pre_plain", "pre_sc"):
        final = gpt_training.per_seed(runs, variant, "final_loss")
        starts = gpt_training.per_seed(runs, variant, "curve").map(lambda curve: curve[0])
        labels = [studies.classify(loss, start) == "stuck" for loss, start in zip(final, starts)]
        assert labels == list(gpt_training.is_stuck(final)), variant
        assert all(labels) if variant == "pre_plain" else not any(labels)
