"""The small GPT of gradflow.networks.gpt (the GPT chapter's experiments: test_gpt_block.py).

References are independent of the code under test: PyTorch's own scaled_dot_product_attention and
tanh GELU, a parameter count written out layer by layer, brute-force enumeration, and the model
run on a truncated sequence.
"""

import math
from dataclasses import replace

import pytest
import torch
from torch.nn import functional as F

import gradflow
from gradflow.networks.gpt import GPT, CausalSelfAttention, FeedForward, GPTConfig, parameter_count

# Small tensors: one CPU thread is fast, and gives the same reductions on every run.
pytestmark = pytest.mark.usefixtures("one_torch_thread")

SMALL = GPTConfig(vocab_size=13, block_size=9, n_layer=3, n_head=2, n_embd=16)
VARIANTS = [(p, s) for p in ("pre", "post") for s in (True, False)]


def tokens(config, batch=4, seed=0):
    return torch.randint(0, config.vocab_size, (batch, config.block_size),
                         generator=torch.Generator().manual_seed(seed))


# --- Causality ------------------------------------------------------------------------------

@pytest.mark.parametrize(("placement", "shortcuts"), VARIANTS)
def test_changing_a_later_token_never_changes_earlier_outputs(placement, shortcuts):
    config = replace(SMALL, ln_placement=placement, shortcuts=shortcuts)
    model = GPT(config, seed=1)
    idx = tokens(config)
    with torch.no_grad():
        logits = model(idx)
        for t in range(config.block_size):
            changed = idx.clone()
            changed[:, t] = (changed[:, t] + 1) % config.vocab_size
            other = model(changed)
            assert torch.equal(other[:, :t], logits[:, :t]), f"position < {t} saw token {t}"
            assert not torch.equal(other[:, t], logits[:, t]), "the changed token had no effect"


@pytest.mark.parametrize(("placement", "shortcuts"), VARIANTS)
def test_outputs_on_a_prefix_equal_the_outputs_of_the_prefix_alone(placement, shortcuts):
    config = replace(SMALL, ln_placement=placement, shortcuts=shortcuts)
    model = GPT(config, seed=2)
    idx = tokens(config)
    with torch.no_grad():
        full = model(idx)
        for t in range(1, config.block_size + 1):
            torch.testing.assert_close(model(idx[:, :t]), full[:, :t], rtol=1e-5, atol=1e-6)


def test_attention_matches_pytorch_causal_scaled_dot_product_attention():
    config = replace(SMALL, n_embd=24, n_head=3)
    attention = CausalSelfAttention(config)
    x = torch.randn(2, config.block_size, config.n_embd, generator=torch.Generator().manual_seed(3))
    B, T, C = x.shape
    q, k, v = attention.c_attn(x).split(C, dim=2)
    q, k, v = (t.view(B, T, 3, C // 3).transpose(1, 2) for t in (q, k, v))
    heads = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    expected = attention.c_proj(heads.transpose(1, 2).reshape(B, T, C))
    torch.testing.assert_close(attention(x), expected, rtol=1e-5, atol=1e-6)


def test_feed_forward_expands_four_times_and_uses_the_tanh_gelu():
    ff = FeedForward(SMALL)
    assert ff.c_fc.weight.shape == (4 * SMALL.n_embd, SMALL.n_embd)
    assert ff.c_proj.weight.shape == (SMALL.n_embd, 4 * SMALL.n_embd)
    x = torch.randn(3, 5, SMALL.n_embd, generator=torch.Generator().manual_seed(4))
    expected = ff.c_proj(F.gelu(ff.c_fc(x), approximate="tanh"))
    torch.testing.assert_close(ff(x), expected, rtol=1e-5, atol=1e-6)


# --- The block's wiring ---------------------------------------------------------------------

def silence_branches(model):
    """Zero every residual projection, so that every branch outputs exactly zero."""
    with torch.no_grad():
        for projection in model.residual_projections():
            projection.weight.zero_()
            projection.bias.zero_()


@pytest.mark.parametrize("placement", ["pre", "post"])
def test_with_silent_branches_a_shortcut_block_passes_its_input_through(placement):
    config = replace(SMALL, ln_placement=placement, shortcuts=True)
    model = GPT(config, seed=5)
    silence_branches(model)
    x = torch.randn(2, 7, config.n_embd, generator=torch.Generator().manual_seed(6))
    block = model.blocks[0]
    with torch.no_grad():
        expected = x if placement == "pre" else F.layer_norm(F.layer_norm(x, (16,)), (16,))
        torch.testing.assert_close(block(x), expected, rtol=1e-5, atol=1e-5)


def test_with_silent_branches_a_plain_pre_ln_block_outputs_zero():
    model = GPT(replace(SMALL, shortcuts=False), seed=5)
    silence_branches(model)
    x = torch.randn(2, 7, SMALL.n_embd, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        assert torch.equal(model.blocks[0](x), torch.zeros_like(x))


def test_post_ln_blocks_end_normalised_and_only_pre_ln_has_a_final_layernorm():
    post = GPT(replace(SMALL, ln_placement="post"), seed=7)
    states = post.hidden_states(tokens(SMALL))
    for h in states[1:]:
        h = h.detach().double()
        torch.testing.assert_close(h.mean(-1), torch.zeros_like(h[..., 0]), atol=1e-6, rtol=0)
        torch.testing.assert_close(h.var(-1, unbiased=False), torch.ones_like(h[..., 0]),
                                   atol=1e-3, rtol=0)
    assert isinstance(post.ln_f, torch.nn.Identity)
    assert isinstance(GPT(SMALL).ln_f, torch.nn.LayerNorm)


# --- Shapes and parameter counts ------------------------------------------------------------

def count_by_hand(c: GPTConfig) -> int:
    """Every tensor of the model, listed layer by layer (the LM head is tied to the embedding)."""
    d = c.n_embd
    layernorm = d + d

    def linear(n_in, n_out):
        return n_in * n_out + n_out

    block = (layernorm + linear(d, 3 * d) + linear(d, d)
             + layernorm + linear(d, 4 * d) + linear(4 * d, d))
    final = layernorm if c.ln_placement == "pre" else 0
    return c.vocab_size * d + c.block_size * d + c.n_layer * block + final


def test_shapes_of_logits_loss_and_hidden_states():
    model = GPT(SMALL)
    idx = tokens(SMALL, batch=5)[:, :6]
    logits, loss = model(idx, idx)
    assert logits.shape == (5, 6, SMALL.vocab_size)
    assert loss.shape == ()
    states = model.hidden_states(idx)
    assert len(states) == SMALL.n_layer + 1
    assert all(h.shape == (5, 6, SMALL.n_embd) for h in states)


def test_loss_ignores_targets_of_minus_one_and_matches_cross_entropy():
    model = GPT(SMALL, seed=8)
    idx = tokens(SMALL)
    targets = tokens(SMALL, seed=9)
    targets[:, :4] = -1
    logits, loss = model(idx, targets)
    kept = targets != -1
    expected = F.cross_entropy(logits[kept], targets[kept])
    torch.testing.assert_close(loss, expected)


# --- Initialisation -------------------------------------------------------------------------

def pooled(weights):
    return torch.cat([w.detach().double().flatten() for w in weights])


@pytest.mark.parametrize("n_layer", [4, 12])
def test_scaled_init_gives_residual_projections_std_002_over_sqrt_2n(n_layer):
    config = replace(GPTConfig(), n_layer=n_layer)
    model = GPT(config, seed=10)
    values = pooled(p.weight for p in model.residual_projections())
    n, stated = values.numel(), 0.02 / math.sqrt(2 * n_layer)
    # The sample std of n normal draws has standard error std / sqrt(2n); allow five of them.
    assert abs(values.std().item() - stated) < 5 * stated / math.sqrt(2 * n)
    assert abs(values.mean().item()) < 5 * stated / math.sqrt(n)
    others = pooled([b.attn.c_attn.weight for b in model.blocks]
                    + [b.mlp.c_fc.weight for b in model.blocks])
    assert abs(others.std().item() - 0.02) < 5 * 0.02 / math.sqrt(2 * others.numel())


def test_without_scaled_init_residual_projections_have_std_002():
    model = GPT(replace(GPTConfig(), scaled_init=False), seed=11)
    values = pooled(p.weight for p in model.residual_projections())
    assert abs(values.std().item() - 0.02) < 5 * 0.02 / math.sqrt(2 * values.numel())


def test_initialisation_depends_on_the_seed_only():
    torch.manual_seed(0)
    a = GPT(SMALL, seed=3)
    torch.manual_seed(999)
    b = GPT(SMALL, seed=3)
    c = GPT(SMALL, seed=4)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.equal(a.wte.weight, c.wte.weight)


# --- Gradients and the residual stream at initialisation -----------------------------------


# --- The task and the training run ----------------------------------------------------------


# --- Errors at the boundary -----------------------------------------------------------------

@pytest.mark.parametrize(("changes", "message"), [
    ({"n_embd": 30, "n_head": 4}, "n_embd must be divisible by n_head"),
    ({"ln_placement": "sandwich"}, "ln_placement must be one of 'pre', 'post'"),
    ({"n_layer": 0}, "n_layer must be a positive integer"),
    ({"vocab_size": 2.5}, "vocab_size must be a positive integer"),
    ({"block_size": True}, "block_size must be a positive integer"),
    ({"init_std": 0.0}, "init_std must be a positive finite number"),
    ({"init_std": math.nan}, "init_std must be a positive finite number"),
])
def test_bad_configs_raise_clear_errors(changes, message):
    with pytest.raises(ValueError, match=message):
        replace(SMALL, **changes)


def test_a_non_boolean_switch_is_a_type_error():
    with pytest.raises(TypeError, match="shortcuts must be True or False"):
        replace(SMALL, shortcuts="yes")
    with pytest.raises(TypeError, match="config must be a GPTConfig"):
        GPT({"n_layer": 2})
    with pytest.raises(TypeError, match="idx must be a torch.Tensor"):
        GPT(SMALL)([[1, 2, 3]])


def test_bad_inputs_raise_clear_errors():
    model = GPT(SMALL)
    too_long = torch.zeros(1, SMALL.block_size + 1, dtype=torch.long)
    with pytest.raises(ValueError, match=r"sequence length 10 is outside 1..block_size=9"):
        model(too_long)
    with pytest.raises(ValueError, match="token ids must lie in 0..12"):
        model(torch.full((1, 3), 13))
    with pytest.raises(ValueError, match="must be a \\(batch, time\\) tensor of torch.long"):
        model(torch.zeros(1, 3))
    with pytest.raises(ValueError, match="targets must have the shape of idx"):
        model(torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 4, dtype=torch.long))


def test_public_names_are_exported():
    assert gradflow.GPT is GPT and gradflow.GPTConfig is GPTConfig
    assert gradflow.parameter_count is parameter_count


# --- The options of the chapter "After GPT-2": feed-forward, norm and residual kinds ----------

VARIANT_BASE = GPTConfig(vocab_size=13, block_size=9, n_layer=3, n_head=3, n_embd=30)
VARIANTS = [
    {"ffn": ffn, "norm": norm, **residual}
    for ffn in ("gelu", "swiglu", "geglu")
    for norm in ("layernorm", "rmsnorm")
    for residual in ({}, {"scaled_init": False}, {"residual": "rezero"},
                     {"residual": "rezero", "ln_placement": "post"},
                     {"ln_placement": "post", "scaled_init": False},
                     {"residual": "deepnorm", "ln_placement": "post", "scaled_init": False})
]


def _variant_id(changes):
    return "-".join(f"{v}" for v in changes.values())


@pytest.mark.parametrize("changes", VARIANTS, ids=_variant_id)
def test_every_variant_has_its_closed_form_parameter_count(changes):
    config = replace(VARIANT_BASE, **changes)
    model = GPT(config, seed=1)
    assert sum(p.numel() for p in model.parameters()) == parameter_count(config)
    # independently: d = 30, 3 divides 4d, so the gated width is 80 and the weights match
    ffn_weights = sum(m.weight.numel() for b in model.blocks for m in b.mlp.modules()
                      if isinstance(m, torch.nn.Linear))
    assert ffn_weights == config.n_layer * 8 * 30 * 30
    norm_type = torch.nn.RMSNorm if changes["norm"] == "rmsnorm" else torch.nn.LayerNorm
    assert isinstance(model.blocks[0].ln_1, norm_type) and isinstance(model.blocks[-1].ln_2, norm_type)


def _intended_stds(config):
    """What each role's weights should be drawn with, from the papers' formulas (not the code's
    properties): GPT-2's 0.02 / sqrt(2N) on the residual projections (scaled_init), DeepNorm's
    (8N)^(-1/4) on the feed-forward, V and output projections."""
    s, n = 0.02, config.n_layer
    if config.residual == "deepnorm":
        beta = math.pow(8.0 * n, -0.25)
        return {"qk": s, "v": s * beta, "attn_out": s * beta, "ffn_in": s * beta,
                "ffn_out": s * beta}
    out = s / math.sqrt(2 * n) if config.scaled_init else s
    return {"qk": s, "v": s, "attn_out": out, "ffn_in": s, "ffn_out": out}


@pytest.mark.parametrize("changes", [c for c in VARIANTS if c["norm"] == "layernorm"],
                         ids=_variant_id)
def test_every_projection_that_writes_into_the_stream_has_its_intended_std(changes):
    config = replace(VARIANT_BASE, n_embd=96, n_head=4, n_layer=4, **changes)
    model = GPT(config, seed=2)
    d = config.n_embd
    roles = {
        "qk": [b.attn.c_attn.weight[: 2 * d] for b in model.blocks],
        "v": [b.attn.c_attn.weight[2 * d:] for b in model.blocks],
        "attn_out": [b.attn.c_proj.weight for b in model.blocks],
        "ffn_in": [m.weight for b in model.blocks for name, m in b.mlp.named_children()
                   if name in ("c_fc", "c_up")],
        "ffn_out": [b.mlp.c_proj.weight for b in model.blocks],
    }
    for role, intended in _intended_stds(config).items():
        values = pooled(roles[role])
        assert abs(values.std().item() - intended) < 5 * intended / math.sqrt(2 * values.numel()), role
    # the residual projections GPT reports are exactly the ones that write into the stream
    assert [p.weight for p in model.residual_projections()] == [
        w for b in model.blocks for w in (b.attn.c_proj.weight, b.mlp.c_proj.weight)]


def test_gated_feed_forward_in_the_gpt_computes_shazeers_formula():
    config = replace(VARIANT_BASE, ffn="swiglu")
    block = GPT(config, seed=3).double().blocks[0]
    x = torch.randn(2, 5, 30, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    mlp = block.mlp
    expected = (F.silu(F.linear(x, mlp.c_fc.weight, mlp.c_fc.bias))
                * F.linear(x, mlp.c_up.weight, mlp.c_up.bias)) @ mlp.c_proj.weight.T + mlp.c_proj.bias
    torch.testing.assert_close(mlp(x), expected)
    geglu = GPT(replace(config, ffn="geglu"), seed=3).double().blocks[0].mlp
    expected = (F.gelu(F.linear(x, geglu.c_fc.weight, geglu.c_fc.bias))
                * F.linear(x, geglu.c_up.weight, geglu.c_up.bias)) @ geglu.c_proj.weight.T
    torch.testing.assert_close(geglu(x), expected + geglu.c_proj.bias)


def test_deepnorm_constants_and_block_follow_wang_et_al():
    for n in (1, 12, 1000):
        alpha, beta = gradflow.deepnorm_constants(n)
        assert alpha == pytest.approx(math.pow(2.0 * n, 0.25), rel=1e-14)
        assert beta == pytest.approx(1 / math.pow(8.0 * n, 0.25), rel=1e-14)
    config = replace(VARIANT_BASE, ln_placement="post", scaled_init=False, residual="deepnorm")
    block = GPT(config, seed=4).double().blocks[1]
    x = torch.randn(2, 5, 30, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    alpha = math.pow(2.0 * config.n_layer, 0.25)
    h = F.layer_norm(alpha * x + block.attn(x), (30,), block.ln_1.weight, block.ln_1.bias)
    expected = F.layer_norm(alpha * h + block.mlp(h), (30,), block.ln_2.weight, block.ln_2.bias)
    torch.testing.assert_close(block(x), expected)


@pytest.mark.parametrize("placement", ["pre", "post"])
def test_rezero_blocks_start_as_the_identity_and_their_gains_learn(placement):
    config = replace(VARIANT_BASE, residual="rezero", ln_placement=placement)
    model = GPT(config, seed=5)
    idx = torch.randint(0, 13, (2, 9), generator=torch.Generator().manual_seed(2))
    states = model.hidden_states(idx)
    if placement == "pre":
        assert all(torch.equal(s, states[0]) for s in states)
    else:   # Post-LN: each block only normalises its input
        torch.testing.assert_close(states[1], F.layer_norm(F.layer_norm(states[0], (30,)), (30,)))
    _, loss = model(idx, idx)
    loss.backward()
    assert all(b.rezero_1.grad.abs() > 0 and b.rezero_2.grad.abs() > 0 for b in model.blocks)


def test_rmsnorm_option_uses_torch_rmsnorm_with_unit_gain():
    model = GPT(replace(VARIANT_BASE, norm="rmsnorm"), seed=6)
    x = torch.randn(4, 30, generator=torch.Generator().manual_seed(3))
    eps = torch.finfo(x.dtype).eps
    with torch.no_grad():
        torch.testing.assert_close(model.ln_f(x), x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def test_the_default_options_build_the_gpt2_model():
    explicit = replace(VARIANT_BASE, ffn="gelu", norm="layernorm", residual="standard")
    a, b = GPT(VARIANT_BASE, seed=7), GPT(explicit, seed=7)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert isinstance(a.blocks[0].mlp, FeedForward) and a.blocks[0].rezero_1 is None


@pytest.mark.parametrize(("changes", "message"), [
    ({"ffn": "relu"}, ("unknown feed-forward kind 'relu'; valid feed-forward kinds are "
                       "'gelu', 'swiglu', 'geglu'")),
    ({"norm": "batchnorm"}, ("unknown norm kind 'batchnorm'; valid norm kinds are "
                             "'layernorm', 'rmsnorm'")),
    ({"residual": "fixup"}, "unknown residual kind 'fixup'"),
    ({"residual": "deepnorm"}, "DeepNorm is a Post-LN scheme"),
    ({"residual": "deepnorm", "ln_placement": "post"}, "scaled_init=False"),
    ({"residual": "rezero", "shortcuts": False}, "needs shortcuts=True"),
])
def test_bad_variant_configs_raise_clear_errors(changes, message):
    with pytest.raises(ValueError, match=message):
        replace(VARIANT_BASE, **changes)


def test_deepnorm_without_a_layer_count_is_refused():
    with pytest.raises(ValueError, match="DeepNorm needs the number of blocks N"):
        gradflow.deepnorm_constants(None)
    with pytest.raises(ValueError, match="n_layer must be a positive integer"):
        gradflow.deepnorm_constants(0)


def test_config_repr_shows_the_new_options_only_when_they_are_changed():
    default = repr(VARIANT_BASE)
    assert default.startswith("GPTConfig(vocab_size=13, ") and default.endswith("init_std=0.02)")
    assert "ffn=" not in default and "residual=" not in default
    changed = repr(replace(VARIANT_BASE, ffn="swiglu", norm="rmsnorm"))
    assert changed.endswith("init_std=0.02, ffn='swiglu', norm='rmsnorm')")


# --- The options of the chapter "Attention's own gradients": attn_scale and qk_norm ----------

def draws_in_gpt2_order(config, seed):
    """The default model's parameters drawn by hand, in the order the GPT drew them before
    attn_scale and qk_norm existed: embeddings, then each block's c_attn, attention c_proj, c_fc
    and feed-forward c_proj at 0.02, then every residual projection again at 0.02 / sqrt(2N)."""
    g = torch.Generator().manual_seed(seed)
    d, std = config.n_embd, config.init_std

    def draw(*shape, s=std):
        return torch.empty(*shape).normal_(0.0, s, generator=g)

    out = {"wte.weight": draw(config.vocab_size, d), "wpe.weight": draw(config.block_size, d)}
    for i in range(config.n_layer):
        for name, shape in (("attn.c_attn", (3 * d, d)), ("attn.c_proj", (d, d)),
                            ("mlp.c_fc", (4 * d, d)), ("mlp.c_proj", (d, 4 * d))):
            out[f"blocks.{i}.{name}.weight"] = draw(*shape)
    for i in range(config.n_layer):
        for name, shape in (("attn.c_proj", (d, d)), ("mlp.c_proj", (d, 4 * d))):
            out[f"blocks.{i}.{name}.weight"] = draw(*shape, s=std / math.sqrt(2 * config.n_layer))
    return out


@pytest.mark.parametrize("changes", [{}, {"attn_scale": False}, {"qk_norm": "layernorm"},
                                     {"qk_norm": "rmsnorm", "attn_scale": False}])
def test_attention_options_keep_every_draw_of_the_default_model(changes):
    config = replace(SMALL, **changes)
    state = GPT(config, seed=5).state_dict()
    reference = draws_in_gpt2_order(config, seed=5)
    for name, tensor in reference.items():
        assert torch.equal(state[name], tensor), name
    default_keys = set(GPT(SMALL).state_dict())
    new_keys = set(state) - default_keys
    assert default_keys <= set(state)
    if config.qk_norm is None:
        assert not new_keys
    else:  # the norms add gains (and shifts) of one and zero, and draw nothing
        assert new_keys and all(".attn.q_norm." in k or ".attn.k_norm." in k for k in new_keys)
        for k in new_keys:
            expected = torch.ones_like(state[k]) if k.endswith("weight") else torch.zeros_like(state[k])
            assert torch.equal(state[k], expected)


def _heads_by_hand(attention, x, n_head):
    B, T, C = x.shape
    q, k, v = attention.c_attn(x).split(C, dim=2)
    return [t.view(B, T, n_head, C // n_head).transpose(1, 2) for t in (q, k, v)]


@pytest.mark.parametrize("qk_norm", [None, "layernorm", "rmsnorm"])
@pytest.mark.parametrize("attn_scale", [True, False])
def test_attention_options_match_pytorch_attention_with_the_same_scale_and_norm(attn_scale, qk_norm):
    config = replace(SMALL, n_embd=24, n_head=3, attn_scale=attn_scale, qk_norm=qk_norm)
    torch.manual_seed(0)
    attention = CausalSelfAttention(config)
    if qk_norm is not None:  # non-trivial gains and shifts, to see that they are applied
        with torch.no_grad():
            for p in list(attention.q_norm.parameters()) + list(attention.k_norm.parameters()):
                p.uniform_(0.5, 1.5)
    x = torch.randn(2, config.block_size, config.n_embd, generator=torch.Generator().manual_seed(3))
    q, k, v = _heads_by_hand(attention, x, 3)
    d_k = 8
    if qk_norm == "layernorm":
        q = F.layer_norm(q, (d_k,), attention.q_norm.weight, attention.q_norm.bias, eps=1e-5)
        k = F.layer_norm(k, (d_k,), attention.k_norm.weight, attention.k_norm.bias, eps=1e-5)
    elif qk_norm == "rmsnorm":
        eps = torch.finfo(x.dtype).eps
        q = q / torch.sqrt(q.pow(2).mean(-1, keepdim=True) + eps) * attention.q_norm.weight
        k = k / torch.sqrt(k.pow(2).mean(-1, keepdim=True) + eps) * attention.k_norm.weight
    scale = 1 / math.sqrt(d_k) if attn_scale else 1.0
    heads = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=scale)
    expected = attention.c_proj(heads.transpose(1, 2).reshape(2, config.block_size, 24))
    torch.testing.assert_close(attention(x), expected, rtol=1e-5, atol=1e-5)
    # the logits method returns the unmasked scores that softmax turns into these weights
    logits = attention.logits(x)
    assert logits.shape == (2, 3, config.block_size, config.block_size)
    torch.testing.assert_close(logits, (q @ k.transpose(-2, -1)) * scale, rtol=1e-5, atol=1e-5)


def test_without_the_scale_the_logits_are_sqrt_dk_times_larger():
    config = replace(SMALL, n_embd=32, n_head=2)
    x = torch.randn(3, config.block_size, 32, generator=torch.Generator().manual_seed(1))
    scaled = GPT(config, seed=2).blocks[0].attn.logits(x)
    raw = GPT(replace(config, attn_scale=False), seed=2).blocks[0].attn.logits(x)
    torch.testing.assert_close(raw, scaled * 4.0, rtol=1e-5, atol=1e-6)


def count_qk_norm_by_hand(config):
    """count_by_hand plus two norms over the head dimension per block, listed tensor by tensor."""
    d_k = config.n_embd // config.n_head
    per_norm = {None: 0, "layernorm": d_k + d_k, "rmsnorm": d_k}[config.qk_norm]
    return count_by_hand(config) + config.n_layer * 2 * per_norm


@pytest.mark.parametrize("qk_norm", [None, "layernorm", "rmsnorm"])
def test_qk_norm_has_its_closed_form_parameter_count(qk_norm):
    config = replace(SMALL, n_embd=24, n_head=3, qk_norm=qk_norm, attn_scale=False)
    model = GPT(config)
    assert sum(p.numel() for p in model.parameters()) == parameter_count(config)
    assert parameter_count(config) == count_qk_norm_by_hand(config)
    if qk_norm is not None:
        kind = torch.nn.RMSNorm if qk_norm == "rmsnorm" else torch.nn.LayerNorm
        assert isinstance(model.blocks[1].attn.q_norm, kind)
        assert model.blocks[1].attn.k_norm.weight.shape == (8,)


@pytest.mark.parametrize(("changes", "error", "message"), [
    ({"qk_norm": "batchnorm"}, ValueError,
     "unknown qk_norm kind 'batchnorm'; valid qk_norm kinds are None, 'layernorm', 'rmsnorm'"),
    ({"qk_norm": True}, ValueError, "unknown qk_norm kind True"),
    ({"attn_scale": "yes"}, TypeError, "attn_scale must be True or False"),
    ({"n_embd": 24, "n_head": 5, "qk_norm": "layernorm"}, ValueError,
     "n_embd must be divisible by n_head"),
])
def test_bad_attention_options_raise_clear_errors(changes, error, message):
    with pytest.raises(error, match=message):
        replace(SMALL, **changes)


def test_config_repr_shows_the_attention_options_only_when_they_are_changed():
    default = repr(SMALL)
    assert "attn_scale" not in default and "qk_norm" not in default
    assert default.endswith("init_std=0.02)")
    changed = repr(replace(SMALL, attn_scale=False, qk_norm="rmsnorm"))
    assert changed.endswith("init_std=0.02, attn_scale=False, qk_norm='rmsnorm')")
    assert replace(SMALL, n_embd=24, n_head=3).head_size == 8
