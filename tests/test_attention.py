"""The chapter "Attention's own gradients": gradflow.softmax, the attention probes of
gradflow.transformer_probes, and gradflow.chapters.attention.

References are independent of the code under test: torch.autograd.functional.jacobian, torch's
Categorical entropy, math.sin written out, closed forms (the uniform row, Var(q.k) = d_k, the norm
of a sinusoidal code), scipy's paired t-test, and train_sequence_task called directly.
"""

import math

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

from gradflow import softmax
from gradflow.chapters.attention import experiments as ex
from gradflow.chapters.attention import studies as st
from gradflow.networks.gpt import GPT, GPTConfig
from gradflow.tasks.sequence import train_sequence_task
from gradflow.transformer_probes import attention_logits, attention_statistics, probe_batch

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# --- gradflow.softmax -----------------------------------------------------------------------

def test_the_softmax_jacobian_is_diag_p_minus_ppt_as_autograd_finds():
    z = torch.randn(3, 7, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 3
    for row, jac in zip(z, softmax.jacobian(z)):
        expected = torch.autograd.functional.jacobian(lambda x: torch.softmax(x, -1), row)
        torch.testing.assert_close(jac, expected)
        assert torch.allclose(jac.sum(-1), torch.zeros(7, dtype=torch.float64), atol=1e-12)
        torch.testing.assert_close(softmax.jacobian_norm(torch.softmax(row, -1)), expected.norm())


def test_the_jacobian_norm_is_sqrt_t_minus_1_over_t_uniform_zero_one_hot_and_at_most_one_half():
    for t in (1, 2, 5, 16):
        uniform = torch.full((t,), 1 / t, dtype=torch.float64)
        assert softmax.jacobian_norm(uniform).item() == pytest.approx(math.sqrt(t - 1) / t)
        assert softmax.uniform_jacobian_norm(t) == pytest.approx(math.sqrt(t - 1) / t)
    assert softmax.jacobian_norm(torch.tensor([0.0, 1.0, 0.0])).item() == pytest.approx(0.0)
    assert softmax.jacobian_norm(torch.tensor([0.5, 0.5, 0.0])).item() == pytest.approx(0.5)
    p = torch.distributions.Dirichlet(torch.full((6,), 0.3)).sample((2000,))
    assert (softmax.jacobian_norm(p) <= 0.5 + 1e-9).all()


def test_entropy_matches_torch_categorical_and_counts_minus_inf_as_zero_probability():
    z = torch.randn(4, 9, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    torch.testing.assert_close(softmax.entropy(z), torch.distributions.Categorical(logits=z).entropy())
    masked = torch.tensor([0.0, 0.0, float("-inf")])
    assert softmax.entropy(masked).item() == pytest.approx(math.log(2))


def test_softmax_helpers_reject_bad_input():
    with pytest.raises(TypeError, match="logits must be a torch.Tensor"):
        softmax.entropy([1.0, 2.0])
    with pytest.raises(ValueError, match="p must hold probabilities"):
        softmax.jacobian_norm(torch.tensor([0.5, 0.7]))
    with pytest.raises(ValueError, match="t must be a positive integer"):
        softmax.uniform_jacobian_norm(0)


# --- attention probes -----------------------------------------------------------------------

CONFIG = GPTConfig(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=16)


@pytest.mark.parametrize("placement", ["pre", "post"])
def test_attention_logits_are_each_blocks_q_dot_k_over_sqrt_dk(placement):
    config = GPTConfig(**{**CONFIG.__dict__, "ln_placement": placement, "scaled_init": True})
    model = GPT(config, seed=2)
    idx, _ = probe_batch(config, 3)
    logits = attention_logits(model, idx)
    x = model.wte(idx) + model.wpe(torch.arange(8))
    for block, got in zip(model.blocks, logits):
        inp = block.ln_1(x) if placement == "pre" else x
        q, k, _ = block.attn.c_attn(inp).split(16, dim=2)
        q, k = (t.view(3, 8, 2, 8).transpose(1, 2) for t in (q, k))
        torch.testing.assert_close(got, q @ k.transpose(-2, -1) / math.sqrt(8))
        x = block(x)


def test_attention_statistics_of_zero_scores_are_the_uniform_rows():
    model = GPT(CONFIG, seed=0)
    with torch.no_grad():
        for block in model.blocks:
            block.attn.c_attn.weight[: 2 * 16].zero_()   # q = k = 0: every score is zero
    idx, _ = probe_batch(CONFIG, 4)
    got = attention_statistics(model, idx)
    uniform = np.mean([math.log(t) for t in range(2, 9)])
    assert got["entropy"] == pytest.approx(uniform) and got["uniform_entropy"] == pytest.approx(uniform)
    assert got["max_logit"] == 0.0
    assert got["jacobian_norm"] == pytest.approx(np.mean([math.sqrt(t - 1) / t for t in range(2, 9)]))
    with pytest.raises(ValueError, match="at least two positions"):
        attention_statistics(model, idx[:, :1])


# --- the chapter's measurements -------------------------------------------------------------

def test_jacobian_against_scale_agrees_with_autograd_and_starts_uniform():
    frame = ex.jacobian_against_scale([0.0, 1.0, 30.0], t=5, rows=16)
    torch.testing.assert_close(torch.tensor(frame["measured"].to_numpy()),
                               torch.tensor(frame["predicted"].to_numpy()))
    assert frame["measured"].iloc[0] == pytest.approx(math.sqrt(4) / 5)
    assert frame["entropy"].iloc[0] == pytest.approx(math.log(5))
    assert frame["measured"].iloc[-1] < frame["measured"].iloc[0] / 2


def test_dot_product_variance_is_dk_and_one_after_the_scaling():
    frame = ex.dot_product_variance((4, 64), samples=20_000)
    assert np.allclose(frame["measured"], [4, 64], rtol=0.06)
    assert np.allclose(frame["scaled"], 1.0, rtol=0.06)


def test_init_table_covers_every_setting_and_scaling():
    frame = ex.init_table((8, 16))
    assert len(frame) == 2 * 3 * 2
    uniform = np.mean([math.log(t) for t in range(2, 17)])
    assert np.allclose(frame["uniform_entropy"], uniform)
    # without the scaling every logit is sqrt(d_k) times larger (same weights, same batch)
    for (setting, d), g in frame.groupby(["setting", "head_size"]):
        if setting != "QK-norm":
            by_scale = g.set_index("attn_scale")["max_logit"]
            with_, without = by_scale.loc[True], by_scale.loc[False]
            assert without == pytest.approx(with_ * math.sqrt(d), rel=1e-5)


def test_a_huge_logit_is_finite_in_torch_softmax_and_passes_no_gradient():
    got = ex.overflow_demo(1000.0)
    assert not got["naive_finite"] and got["softmax_finite"]
    assert got["softmax_max"] == 1.0 and got["grad_norm"] == 0.0


def test_token_axis_gradients_match_full_jacobians_and_decay_rates_recover_known_curves():
    frame = ex.token_axis([3, 5], width=8, batch=2, seed=1)
    rnn = ex._rnn(8, 1)
    x = torch.randn(2, 3, 8, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    # the function draws the attention's weights first from the same generator; check the RNN
    # through its own Jacobian on fresh inputs instead
    jac = torch.autograd.functional.jacobian(lambda s: rnn(s)[0][0, -1], x[:1])
    first, _ = ex._last_to_first(lambda s: rnn(s)[0], x)
    assert first[0].item() == pytest.approx(jac[:, 0, 0].norm().item())
    assert (frame[["rnn", "attention"]] > 0).all().all()
    t = np.array([2, 4, 8, 16, 32])
    synthetic = pd.DataFrame({"T": t, "rnn": 3 * 0.5 ** t, "attention": 0.2 / t})
    rates = ex.decay_rates(synthetic)
    assert rates["rnn_factor"] == pytest.approx(0.5) and rates["attention_exponent"] == pytest.approx(-1)


def test_sinusoidal_positions_follow_vaswani_and_have_norm_sqrt_d_over_2():
    code = ex.sinusoidal_positions(5, 8)
    for pos in range(5):
        for i in range(4):
            angle = pos / 10_000 ** (2 * i / 8)
            assert code[pos, 2 * i].item() == pytest.approx(math.sin(angle))
            assert code[pos, 2 * i + 1].item() == pytest.approx(math.cos(angle))
    assert torch.allclose(code.norm(dim=1), torch.full((5,), 2.0, dtype=torch.float64))
    with pytest.raises(ValueError, match="d must be even"):
        ex.sinusoidal_positions(4, 7)


def test_embedding_ratios_follow_the_closed_forms():
    frame = ex.embedding_ratios(d_model=256, vocab_size=4000, t=64).set_index(["embedding", "factor"])
    # ||e|| ~ std sqrt(d), ||PE|| = sqrt(d / 2)
    assert frame.loc[("own, N(0, 1)", False), "ratio"] == pytest.approx(math.sqrt(2), rel=0.02)
    assert frame.loc[("tied, std 1/sqrt(d)", True), "ratio"] == pytest.approx(math.sqrt(2), rel=0.02)
    assert frame.loc[("tied, std 1/sqrt(d)", False), "ratio"] == pytest.approx(math.sqrt(2 / 256), rel=0.02)
    assert frame.loc[("GPT-2, std 0.02", False), "ratio"] == pytest.approx(1.0, rel=0.03)


def test_explorer_sweep_matches_categorical_entropy_for_one_setting():
    frame = ex.explorer_sweep(head_sizes=(4,), stds=(1.0,), t=6, rows=32, seed=3)
    g = torch.Generator().manual_seed(3)
    q = torch.randn(32, 1, 4, generator=g, dtype=torch.float64)
    k = torch.randn(32, 6, 4, generator=g, dtype=torch.float64)
    z = (q * k).sum(-1)
    scaled = frame.set_index("scaled")
    expected = torch.distributions.Categorical(logits=z / 2).entropy().mean().item()
    assert scaled.loc[True, "entropy"] == pytest.approx(expected)
    expected = torch.distributions.Categorical(logits=z).entropy().mean().item()
    assert scaled.loc[False, "entropy"] == pytest.approx(expected)


# --- the studies ----------------------------------------------------------------------------

def test_a_scaling_unit_is_train_sequence_task_on_the_arms_config():
    rows = st.scaling_unit(head_size=16, attn_scale=False, seeds=[4], steps=3)
    config = GPTConfig(**{**st.STUDY_CONFIG.__dict__, "n_head": 4, "attn_scale": False})
    run = train_sequence_task(config, steps=3, batch_size=st.STUDY_BATCH, lr=st.SCALING_LR, seed=4)
    assert rows[0]["head_size"] == 16 and rows[0]["attn_scale"] is False
    assert rows[0]["final_loss"] == pytest.approx(np.mean(run.losses[-st.STUDY_LAST:]))


def test_a_growth_unit_inspects_the_attention_at_every_step_it_names():
    rows = st.growth_unit(arm="QK-norm", lr=1e-2, seeds=[0], steps=4, inspect_every=2)
    assert {"max_logit_0", "max_logit_2", "max_logit_4", "entropy_4"} <= set(rows[0])
    assert st.inspected_steps(pd.DataFrame(rows)) == [0, 2, 4]


def test_study_arguments_are_checked():
    with pytest.raises(ValueError, match="unknown arm 'qknorm'"):
        st.arm_config("qknorm")
    with pytest.raises(ValueError, match="head_size must divide n_embd=64"):
        st.arm_config("QK-norm", head_size=24)
    with pytest.raises(TypeError, match="attn_scale must be True or False"):
        st.scaling_unit(head_size=16, attn_scale="no", seeds=[0], steps=1)


def test_scaling_comparison_is_scipys_paired_interval():
    rng = np.random.default_rng(0)
    a, b = rng.normal(1, 0.1, 12), rng.normal(1.05, 0.1, 12)
    frame = pd.DataFrame({"head_size": 16, "seed": list(range(12)) * 2,
                          "attn_scale": [True] * 12 + [False] * 12, "final_loss": [*a, *b]})
    got = st.scaling_comparison(frame).loc[16]
    diff = b - a
    low, high = stats.t.interval(0.95, 11, loc=diff.mean(), scale=stats.sem(diff))
    assert got["mean"] == pytest.approx(diff.mean())
    assert (got["low"], got["high"]) == pytest.approx((low, high))
    assert got["wins"] == int((diff < 0).sum()) and got["n"] == 12


def test_loss_against_lr_counts_a_diverged_run_as_its_start():
    frame = pd.DataFrame({"arm": "QK-norm", "lr": [0.1, 0.1], "seed": [0, 1],
                          "start_loss": [2.4, 2.5], "final_loss": [math.nan, 1.0],
                          "max_logit_0": [1.0, 2.0], "entropy_0": [1.5, 1.4]})
    got = st.loss_against_lr(frame).loc[("QK-norm", 0.1)]
    assert got["mean"] == pytest.approx(1.7) and got["high"] == 2.4 and got["low"] == 1.0
