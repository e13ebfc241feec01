"""The GPT-block chapter's experiments (gradflow.chapters.gpt_block), on the small GPT: gradient
norms at initialisation, depth scaling, the residual stream and the training task."""

import itertools
import math
from collections import Counter
from dataclasses import replace

import pytest
import torch
from test_gpt import SMALL, count_by_hand

from gradflow.chapters import gpt_block as ge
from gradflow.networks.gpt import GPT, GPTConfig, parameter_count

# Small tensors: one CPU thread is fast, and gives the same reductions on every run.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("config", [
    SMALL,
    replace(SMALL, ln_placement="post"),
    GPTConfig(),
    GPTConfig(vocab_size=50, block_size=32, n_layer=2, n_head=8, n_embd=48, ln_placement="post"),
    ge.TRAIN_CONFIG,
])
def test_parameter_count_matches_the_closed_form(config):
    model = GPT(config)
    counted = sum(p.numel() for p in model.parameters())
    assert counted == count_by_hand(config) == parameter_count(config)
    assert model.lm_head.weight is model.wte.weight


@pytest.fixture(scope="module")
def gradients_6_and_24():
    return ge.gradient_norms_by_depth(depths=(6, 24), seed=0)


def test_without_shortcuts_all_positions_collapse_to_one_vector(gradients_6_and_24):
    last = gradients_6_and_24[gradients_6_and_24.n_layer == 24].groupby(
        ["placement", "shortcuts"])["token_diversity"].last()
    assert (last.xs(False, level="shortcuts") < 1e-3).all()
    assert (last.xs(True, level="shortcuts") > 0.5).all()


def test_without_shortcuts_attention_gradients_fall_over_1000_fold_from_6_to_24_blocks(
        gradients_6_and_24):
    attenuation = ge.depth_attenuation(gradients_6_and_24, "attn_qk")
    assert (attenuation["without shortcuts"] < 1e-3).all()


def test_with_pre_ln_shortcuts_attention_gradients_stay_within_tenfold(gradients_6_and_24):
    attenuation = ge.depth_attenuation(gradients_6_and_24, "attn_qk")
    assert 0.1 < attenuation.loc["pre", "with shortcuts"] < 10


def test_without_shortcuts_feed_forward_gradients_do_not_vanish(gradients_6_and_24):
    """The chapter's correction: LayerNorm keeps these at scale; what collapses is the input."""
    attenuation = ge.depth_attenuation(gradients_6_and_24, "ffn_w2")
    assert (attenuation > 0.1).all().all()


def test_token_diversity_is_zero_for_identical_rows_and_matches_its_definition():
    # identical rows: zero up to the rounding of their mean (five copies of a float64 need not
    # average to it exactly, so an unseeded draw made an exact comparison fail now and then)
    row = torch.randn(1, 1, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    assert ge.token_diversity(row.expand(2, 5, 6)) == pytest.approx(0.0, abs=1e-15)
    assert ge.token_diversity(torch.full((2, 5, 6), 0.5, dtype=torch.float64)) == 0.0
    x = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])  # mean row (0.5, 0.5); residual norm 1, norm sqrt 2
    assert ge.token_diversity(x) == pytest.approx(1 / math.sqrt(2), rel=1e-12)


def test_pre_ln_last_layer_gradient_shrinks_with_depth_and_post_ln_does_not():
    scaling = ge.last_layer_gradient_scaling(depths=(2, 8, 32), seeds=(0,))
    exponents = ge.fit_depth_exponents(scaling).set_index("placement")["exponent"]
    assert -0.75 < exponents["pre"] < -0.25
    assert abs(exponents["post"]) < 0.15


def test_scaled_init_keeps_the_residual_stream_variance_from_growing_with_depth():
    variance = ge.residual_stream_variance(n_layer=16, seeds=(0,))
    growth = variance.groupby("scaled_init")["variance"].agg(lambda v: v.iloc[-1] / v.iloc[0])
    assert growth[False] > 8
    assert growth[True] < 2


@pytest.mark.parametrize(("n_items", "n_symbols"), [(3, 4), (5, 10)])
def test_position_only_baseline_matches_brute_force_enumeration(n_items, n_symbols):
    task = ge.SequenceTask("sort", n_items, n_symbols)
    total = n_symbols ** n_items
    counts = [Counter() for _ in range(n_items)]
    for digits in itertools.product(range(n_symbols), repeat=n_items):
        for j, b in enumerate(sorted(digits)):
            counts[j][b] += 1
    entropies = [-sum(c / total * math.log(c / total) for c in cj.values()) for cj in counts]
    baselines = task.input_blind_losses()
    assert baselines["position only"] == pytest.approx(sum(entropies) / n_items, rel=1e-12)
    assert baselines["same at every position"] == pytest.approx(math.log(n_symbols), rel=1e-15)


def test_sorting_task_batches_are_sorted_copies_scored_only_on_the_output():
    task = ge.SequenceTask()
    idx, targets = task.sample(64, torch.Generator().manual_seed(0))
    k = task.n_items
    assert idx.shape == targets.shape == (64, 2 * k)
    assert (idx[:, k] == task.n_symbols).all()
    assert (targets[:, :k] == -1).all()
    assert torch.equal(targets[:, k:], torch.sort(idx[:, :k], dim=1).values)
    assert torch.equal(idx[:, k + 1:], targets[:, k:-1])


def test_training_with_shortcuts_gets_below_the_position_only_baseline_in_120_steps():
    """The chapter's run (same function, seed, data and learning rate) on half its budget."""
    run = ge.train_sequence_task(ge.TRAIN_CONFIG, steps=120, batch_size=32, lr=1e-3, seed=0)
    final = sum(run.losses[-10:]) / 10
    assert final < 1.2  # below the position-only baseline of about 1.80, and ln 10 = 2.30
    assert run.losses[0] > 2.0  # it started from chance


def test_bad_experiment_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="kind must be one of"):
        ge.SequenceTask(kind="reverse")
    with pytest.raises(ValueError, match="the task needs vocab_size >= 11"):
        ge.train_sequence_task(replace(ge.TRAIN_CONFIG, vocab_size=5), steps=1)
    with pytest.raises(ValueError, match="placements must be a non-empty list"):
        ge.gradient_norms_by_depth(depths=(2,), placements=("middle",))
    with pytest.raises(ValueError, match="depths must be a non-empty list"):
        ge.gradient_norms_by_depth(depths=(0,))
    with pytest.raises(ValueError, match="steps must be a positive integer"):
        ge.train_sequence_task(steps=0)


def test_inspecting_a_run_sees_the_models_it_trains_and_leaves_the_run_unchanged():
    """The inspection hook sees the model at step 0 (the seed's initial model) and every k steps
    after; the losses are those of a run without it (the batches are the same)."""
    config = replace(SMALL, vocab_size=11, block_size=10)
    plain = ge.train_sequence_task(config, steps=6, lr=1e-2, seed=3)
    looked = ge.train_sequence_task(config, steps=6, lr=1e-2, seed=3,
                                    inspect=lambda m: m.wte.weight.clone(), inspect_every=3)
    assert looked.losses == plain.losses
    assert [step for step, _ in looked.inspections] == [0, 3, 6]
    assert torch.equal(looked.inspections[0][1], GPT(config, seed=3).wte.weight)
    assert torch.equal(looked.inspections[-1][1], plain.model.wte.weight)
    assert plain.inspections == []
    with pytest.raises(TypeError, match="inspect must be callable"):
        ge.train_sequence_task(config, steps=1, inspect="entropy", inspect_every=1)
    with pytest.raises(ValueError, match="inspect_every must be a positive integer"):
        ge.train_sequence_task(config, steps=1, inspect=len, inspect_every=0)


# --- the training study ---------------------------------------------------------------------------

def test_a_training_unit_is_the_chapter_s_training_run_summarised(monkeypatch):
    from gradflow.chapters.gpt_block import training

    monkeypatch.setitem(training.VARIANTS, "tiny", ("post", True, 1e-3, 6))   # a short run
    (row,) = training.training_unit("tiny", 1, batch_size=4, final_window=3)
    run = ge.train_sequence_task(replace(ge.TRAIN_CONFIG, ln_placement="post", shortcuts=True),
                                 steps=6, batch_size=4, lr=1e-3, seed=1)
    assert row["variant"] == "tiny" and row["seed"] == 1 and row["steps"] == 6
    assert row["final_loss"] == pytest.approx(sum(run.losses[-3:]) / 3, rel=1e-12)
    assert row["accuracy"] == run.accuracy
    assert row["curve"] == pytest.approx(run.losses, rel=5e-4)   # four significant digits


def test_training_unit_refuses_an_unknown_variant_or_a_window_longer_than_the_run():
    from gradflow.chapters.gpt_block import training

    with pytest.raises(ValueError, match="variant"):
        training.training_unit("sideways", 0, batch_size=8, final_window=5)
    with pytest.raises(ValueError, match="final_window"):
        training.training_unit("post_sc", 0, batch_size=8, final_window=61)


def test_stuck_means_within_the_tolerance_of_ln_10_and_curves_are_read_by_step():
    import pandas as pd

    from gradflow.chapters.gpt_block import training

    ln10 = math.log(10)
    tol = training.STUCK_TOLERANCE
    assert list(training.is_stuck([ln10, ln10 + 0.9 * tol, ln10 - 1.1 * tol, 0.5])) == \
        [True, True, False, False]
    frame = pd.DataFrame([{"variant": "a", "seed": 1, "curve": [3.0, 2.0, 1.0]},
                          {"variant": "a", "seed": 0, "curve": [3.5, 2.5, 1.5]}])
    assert training.loss_at(frame, "a", 2).to_dict() == {1: 2.0, 0: 2.5}
    with pytest.raises(ValueError, match="step"):
        training.loss_at(frame, "a", 4)
    with pytest.raises(ValueError, match="variant"):
        training.curves(frame, "b")
    a, b = pd.Series([1.0, 2.0], index=[0, 1]), pd.Series([2.0, 2.5], index=[0, 1])
    assert training.paired_difference(a, b)["wins"] == 2
    with pytest.raises(ValueError, match="same seeds"):
        training.paired_difference(a, b.iloc[::-1])


def test_the_kept_explorer_reads_back_as_the_gradient_explorer_it_measured():
    import pandas as pd

    from gradflow.chapters.gpt_block import explorer

    rows = pd.DataFrame([row for scaled in (True, False)
                         for row in explorer.explorer_unit(scaled, 2, seed=1)])
    direct = ge.gradient_explorer(depths=(2,), seed=1)
    pd.testing.assert_frame_equal(explorer.explorer_frame(rows), direct, check_exact=True)
    with pytest.raises(ValueError, match="explorer_frame"):
        explorer.explorer_frame(rows.drop(columns="attn_qk"))


def test_the_kept_scaling_reads_back_as_last_layer_gradient_scaling_orders_it():
    import pandas as pd

    from gradflow.chapters.gpt_block import explorer

    rows = pd.DataFrame(explorer.scaling_unit(0.02, [2, 4], [0, 1])
                        + explorer.scaling_unit(0.125, [2, 4], [0, 1]))
    direct = ge.last_layer_gradient_scaling(depths=(2, 4), init_stds=(0.02, 0.125))
    pd.testing.assert_frame_equal(explorer.scaling_frame(rows, (0.02, 0.125), (0, 1)), direct,
                                  check_exact=True)
    assert explorer.XAVIER_STD == 1 / math.sqrt(ge.PROBE_CONFIG.n_embd)
    with pytest.raises(ValueError, match="no rows"):
        explorer.scaling_frame(rows, (0.5,), (0,))


