"""Tests of the stability study of the chapter "After GPT-2" (gradflow.chapters.after_gpt2.
stability and the RAdam option of training.train_copies), against independent references:
torch.optim.RAdam and torch.optim.Adam on the model itself, scipy's t-interval written out by
hand, and hand-computed LR sensitivities; on configurations the study does not use."""

import json
import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from gradflow.chapters.after_gpt2 import stability, training
from gradflow.networks.gpt import GPT, GPTConfig
from gradflow.tasks.sequence import SequenceTask

TASK = SequenceTask(kind="copy", n_items=3, n_symbols=5)
TINY = GPTConfig(vocab_size=TASK.vocab_size, block_size=TASK.block_size, n_layer=2, n_head=2,
                 n_embd=12, ln_placement="post", scaled_init=False)


def _reference_losses(config, optimizer, seed, lr, betas, steps, batch_size, data_seed):
    """The same training with a torch optimiser on the model itself, no warm-up."""
    model = GPT(config, seed=seed)
    opt = optimizer(model.parameters(), lr=lr, betas=betas)
    generator = torch.Generator().manual_seed(data_seed)
    losses = []
    for _ in range(steps):
        idx, targets = TASK.sample(batch_size, generator)
        _, loss = model(idx, targets)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return np.array(losses)


@pytest.mark.parametrize("beta2", [0.98, 0.9])
def test_one_copy_trains_like_torch_radam(beta2):
    # 12 steps: with beta2 = 0.9 rho_t passes 5 at step 6, so both of RAdam's branches run.
    run = training.train_copies(TINY, seeds=[3], lrs=[5e-3], task=TASK, steps=12, batch_size=6,
                                data_seed=4, eval_size=20, optimizer="radam",
                                betas=(0.9, beta2))
    reference = _reference_losses(TINY, torch.optim.RAdam, 3, 5e-3, (0.9, beta2), 12, 6, 4)
    np.testing.assert_allclose(run.losses[:, 0], reference, rtol=2e-4, atol=2e-5)


def test_adam_beta2_option_trains_like_torch_adam():
    run = training.train_copies(replace(TINY, ln_placement="pre"), seeds=[1], lrs=[3e-3],
                                task=TASK, steps=8, batch_size=6, data_seed=2, eval_size=20,
                                betas=(0.8, 0.95))
    reference = _reference_losses(replace(TINY, ln_placement="pre"), torch.optim.Adam, 1, 3e-3,
                                  (0.8, 0.95), 8, 6, 2)
    np.testing.assert_allclose(run.losses[:, 0], reference, rtol=2e-4, atol=2e-5)


def test_radam_rectification_matches_the_paper_formula():
    # rho_inf = 2 / (1 - 0.9) - 1 = 19; at t = 10, rho_t = 19 - 20 * 0.9^10 / (1 - 0.9^10).
    rho_t = 19 - 20 * 0.9**10 / (1 - 0.9**10)
    expected = math.sqrt((rho_t - 4) * (rho_t - 2) * 19 / (15 * 17 * rho_t))
    assert training.radam_rectification(10, 0.9) == pytest.approx(expected, rel=1e-12)
    assert training.radam_rectification(1, 0.98) is None   # rho_1 = 1: no adaptive step yet
    assert training.radam_rectification(10_000, 0.98) == pytest.approx(1.0, abs=1e-6)


def test_gradient_norms_are_those_of_autograd():
    run = training.train_copies(TINY, seeds=[7], lrs=[1e-3], task=TASK, steps=2, batch_size=5,
                                data_seed=3, eval_size=10, grad_norm_steps=1)
    model = GPT(TINY, seed=7)
    idx, targets = TASK.sample(5, torch.Generator().manual_seed(3))
    _, loss = model(idx, targets)
    loss.backward()
    whole = math.sqrt(sum(float(p.grad.double().pow(2).sum()) for p in model.parameters()))
    last = math.sqrt(sum(float(p.grad.double().pow(2).sum())
                         for p in model.blocks[-1].parameters()))
    assert run.grad_norms[0, 0] == pytest.approx(whole, rel=1e-5)
    assert run.block_grad_norms[-1, 0] == pytest.approx(last, rel=1e-5)


SMALL = dict(stability.STABILITY_PARAMS, n_layer=2, n_embd=8, n_head=2, steps=6, batch_size=4,
             lrs=[1e-3, 1e-1], update_steps=[1, 3], grad_norm_steps=3, curve_every=3, last=2,
             eval_size=10)


def test_a_unit_reproduces_and_its_rows_are_json():
    unit = {"variant": "ReZero", "optimizer": "adamw", "warmups": [0, 2], "seeds": [0, 1]}
    threads = torch.get_num_threads()
    rows = stability.stability_unit(**SMALL, **unit)
    assert torch.get_num_threads() == threads      # the single thread is given back
    assert len(rows) == 2 * 2 * 2
    again = stability.stability_unit(**SMALL, **unit)
    assert json.dumps(rows) == json.dumps(again)
    for row in rows:
        assert all(v is None or isinstance(v, (str, int, float, bool)) for v in row.values())
        assert row["max_grad_norm_early"] >= row["grad_norm_init"] > 0
        assert {"update_1", "update_3", "loss_3", "loss_6", "outcome"} <= set(row)
    # A run does not depend on the other copies it was trained with.
    alone = stability.stability_unit(**dict(SMALL, lrs=[1e-1]),
                                     **dict(unit, warmups=[2], seeds=[1]))
    twin = next(r for r in rows if r["seed"] == 1 and r["warmup"] == 2 and r["lr"] == 1e-1)
    assert alone[0]["final_loss"] == pytest.approx(twin["final_loss"], rel=1e-5)


def test_the_study_declaration_is_json_and_complete():
    json.dumps(stability.STABILITY_PARAMS)
    json.dumps(stability.STABILITY_UNITS)
    lrs = stability.STABILITY_PARAMS["lrs"]
    assert len(lrs) >= 6 and max(lrs) / min(lrs) >= 100
    adam = [u for u in stability.STABILITY_UNITS if u["optimizer"] == "adamw"]
    assert {u["variant"] for u in adam} == {"Post-LN", "Pre-LN", "DeepNorm", "ReZero"}
    for variant in ("Post-LN", "Pre-LN", "DeepNorm", "ReZero"):
        seeds = [s for u in adam if u["variant"] == variant for s in u["seeds"]]
        assert len(set(seeds)) >= 3
    assert any(u["optimizer"] == "radam" and u["variant"] == "Post-LN"
               for u in stability.STABILITY_UNITS)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"variant": "Mid-LN"}, "unknown variant 'Mid-LN'"),
    ({"variant": "Pre-LN", "optimizer": "sgd"}, "optimizer must be one of"),
    ({"variant": "Pre-LN", "lrs": [1e-3, -1.0]}, "lr must be a positive number"),
    ({"variant": "Pre-LN", "warmups": [0, 0]}, "distinct step counts"),
    ({"variant": "Pre-LN", "warmups": [6]}, "shorter than the run"),
    ({"variant": "Pre-LN", "beta2": 1.0}, "betas must be two numbers in"),
    ({"variant": "Pre-LN", "curve_every": 4}, "curve_every must divide steps=6"),
    ({"variant": "Pre-LN", "seeds": [1, 1]}, "seeds must be distinct"),
])
def test_bad_unit_arguments_raise_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        stability.stability_unit(**{**SMALL, **kwargs})


def _rows(curves, start=2.5, variant="Post-LN"):
    """Rows from {(optimizer, warmup): {seed: [final loss per lr]}} at lrs 1e-3, 1e-2, 1e-1."""
    rows = []
    for (optimizer, warmup), seeds in curves.items():
        for seed, losses in seeds.items():
            for lr, loss in zip((1e-3, 1e-2, 1e-1), losses):
                rows.append({"variant": variant, "optimizer": optimizer, "warmup": warmup,
                             "lr": lr, "seed": seed, "start_loss": start, "final_loss": loss,
                             "outcome": "learned" if loss < 1.7 else "stuck"})
    return pd.DataFrame(rows)


def test_lr_sensitivity_by_hand():
    # Seed 0: capped losses 1.0, 0.5, 2.5 (NaN: diverged, counts as l_0 = 2.5); best 0.5, so
    # (0.5 + 0 + 2.0) / 3. Seed 1: 1.0, 0.7, 2.5 (3.0 is above l_0, capped), (0.3 + 0 + 1.8) / 3.
    frame = _rows({("adamw", 0): {0: [1.0, 0.5, math.nan], 1: [1.0, 0.7, 3.0]}})
    table = stability.lr_sensitivity(frame, lr_range=(1e-3, 1e-1)).iloc[0]
    assert table["low"] == pytest.approx(2.1 / 3) and table["high"] == pytest.approx(2.5 / 3)
    assert table["mean"] == pytest.approx(2.3 / 3)
    # the mean curve is 1.0, 0.6, 2.5: (0.4 + 0 + 1.9) / 3
    assert table["of_mean_curve"] == pytest.approx(2.3 / 3)
    assert table["best_lr"] == 1e-2 and table["best_loss"] == pytest.approx(0.6)
    narrow = stability.lr_sensitivity(frame, lr_range=(1e-3, 1e-2)).iloc[0]
    assert narrow["mean"] == pytest.approx((0.25 + 0.15) / 2)
    band = stability.loss_vs_lr(frame).loc[("Post-LN", "adamw", 0, 1e-1)]
    assert band["mean"] == 2.5 and band["learned"] == 0
    with pytest.raises(ValueError, match="no runs have a learning rate in"):
        stability.lr_sensitivity(frame, lr_range=(1.0, 2.0))


def test_warmup_comparison_pairs_seeds():
    frame = _rows({("adamw", 0): {0: [1.0, 2.3, 2.3], 1: [1.1, 2.3, 2.3]},
                   ("adamw", 5): {0: [1.2, 0.9, 2.3], 1: [1.2, 1.0, 2.3]},
                   ("adamw", 9): {0: [1.2, 0.7, 2.3], 1: [1.3, 0.7, 2.2]},
                   ("radam", 0): {0: [1.3, 0.8, 2.0], 1: [1.4, 0.9, 2.1]}})
    table = stability.warmup_comparison(frame).set_index(["comparison", "measure", "lr"])
    assert len(table) == 5 * 4   # 2 warm-ups and RAdam against none, RAdam against 2 warm-ups
    row = table.loc[("RAdam, no warm-up vs Adam, warm-up 5", "final loss", 1e-2)]
    assert row["mean"] == pytest.approx(-0.1) and row["wins"] == 2
    row = table.loc[("RAdam, no warm-up vs Adam, warm-up 9", "final loss", 1e-2)]
    assert row["mean"] == pytest.approx(0.15) and row["wins"] == 0
    row = table.loc[("Adam, warm-up 5 vs Adam, no warm-up", "final loss", 1e-3)]
    assert row["mean"] == pytest.approx(0.15) and row["wins"] == 0
    # LR sensitivity per seed: no warm-up (0 + 1.3 + 1.3) / 3 and (0 + 1.2 + 1.2) / 3;
    # RAdam (0.5 + 0 + 1.2) / 3 and (0.5 + 0 + 1.2) / 3
    flat = table.reset_index()
    row = flat[(flat["comparison"] == "RAdam, no warm-up vs Adam, no warm-up")
               & (flat["measure"] == "LR sensitivity")].iloc[0]
    assert row["mean"] == pytest.approx((1.7 - 2.6 + 1.7 - 2.4) / 6)
    with pytest.raises(ValueError, match="no runs of variant 'Pre-LN'"):
        stability.warmup_comparison(frame, variant="Pre-LN")
    with pytest.raises(ValueError, match="arm 'RAdam, no warm-up'"):
        stability.warmup_comparison(frame[frame["optimizer"] == "adamw"])
    with pytest.raises(ValueError, match="an arm 'Adam, warm-up"):
        stability.warmup_comparison(frame[frame["warmup"] == 0])
    with pytest.raises(ValueError, match="needs the columns"):
        stability.loss_vs_lr(frame.drop(columns="start_loss"))
