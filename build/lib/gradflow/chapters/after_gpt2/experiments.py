"""The experiments at initialisation of the chapter "After GPT-2" (``book/after_gpt2.md``): the
gated feed-forward layer's backward factor, the standard deviations the GPT draws, and what the
two real bugs of the scaled initialisation do to the residual stream. Training experiments are in
``training`` and ``stability``. Every function returns plain data and never prints.

The probes reuse the GPT chapter's recipe (``gradflow.transformer_probes``): a model built from
a config and a seed, a batch of random tokens with random targets (``probe_batch``), one
backward pass, statistics in float64.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import pandas as pd
import torch

from ... import checks
from ...gated_mean_field import ffn_jacobian_gain, ffn_output_variance
from ...networks.gpt import FFN_KINDS, GPT, GPTConfig
from ...transformer_probes import layer_gradient_norms, probe_batch

#: The probes' model: 12 Pre-LN blocks of width 48 (3 divides 4d = 192, so the gated layers'
#: hidden width 8d/3 = 128 matches the GELU layer's weights exactly), 4 heads, GPT-2's init.
PROBE_CONFIG = GPTConfig(vocab_size=16, block_size=16, n_layer=12, n_head=4, n_embd=48)


def _ffn_inputs(model: GPT, idx: torch.Tensor) -> list[torch.Tensor]:
    """What each block's feed-forward layer reads (the output of its ``ln_2`` in Pre-LN), one
    tensor per block, captured by forward hooks during one forward pass."""
    captured: list[torch.Tensor] = []
    hooks = [block.mlp.register_forward_hook(lambda _m, args, _out: captured.append(args[0]))
             for block in model.blocks]
    try:
        with torch.no_grad():
            model.hidden_states(idx)
    finally:
        for hook in hooks:
            hook.remove()
    return captured


def ffn_gains(config: GPTConfig = PROBE_CONFIG, seed: int = 0, draws: int = 4) -> pd.DataFrame:
    """The feed-forward branch's backward factor in every block, measured and predicted.

    For block l, with u the branch's actual input and J(u) its d x d Jacobian at each position:
    ``measured`` is ||J||_F^2 / d averaged over positions, estimated as E||J^T g||^2 / d with
    ``draws`` random g ~ N(0, I) per position (one vector-Jacobian product each, autograd, in
    float64); ``predicted`` is :func:`gradflow.gated_mean_field.ffn_jacobian_gain` for the
    stds the model was drawn with. Returns columns ``ffn, layer, measured, predicted`` and the square roots
    ``factor_measured, factor_predicted``, the factor by which the branch scales a random
    backward signal's norm.
    """
    checks.positive_int("draws", draws)
    model = GPT(config, seed=seed).double()
    idx, _ = probe_batch(config, seed=seed)
    generator = torch.Generator().manual_seed(int(seed) + 7)
    rows = []
    std_out = config.residual_std
    predicted = ffn_jacobian_gain(config.ffn, config.n_embd, config.ffn_hidden, config.init_std,
                                  std_out, config.init_std)
    for layer, (block, u) in enumerate(zip(model.blocks, _ffn_inputs(model, idx)), start=1):
        u = u.detach().requires_grad_(True)
        y = block.mlp(u)
        total = 0.0
        for _ in range(draws):
            g = torch.randn(y.shape, generator=generator, dtype=y.dtype)
            (grad,) = torch.autograd.grad(y, u, g, retain_graph=True)
            total += float(grad.pow(2).sum()) / (u.shape[0] * u.shape[1] * config.n_embd)
        rows.append({"ffn": config.ffn, "layer": layer, "measured": total / draws,
                     "predicted": predicted})
    frame = pd.DataFrame(rows)
    frame["factor_measured"] = np.sqrt(frame["measured"])
    frame["factor_predicted"] = np.sqrt(frame["predicted"])
    return frame


def ffn_gains_by_kind(kinds: Sequence[str] = FFN_KINDS, config: GPTConfig = PROBE_CONFIG,
                      seed: int = 0) -> pd.DataFrame:
    """:func:`ffn_gains` for each feed-forward kind, in one long table."""
    kinds = checks.some_of("kinds", kinds, FFN_KINDS)
    return pd.concat([ffn_gains(replace(config, ffn=k), seed) for k in kinds], ignore_index=True)


def predicted_branch_variance(config: GPTConfig) -> float:
    """Mean-field variance of one feed-forward branch's output at initialisation
    (:func:`gradflow.gated_mean_field.ffn_output_variance` with the config's stds)."""
    return ffn_output_variance(config.ffn, config.n_embd, config.ffn_hidden, config.init_std,
                               config.residual_std, config.init_std)


def stream_gradients(config: GPTConfig = PROBE_CONFIG, seed: int = 0) -> pd.DataFrame:
    """||dL/dx_l|| of the residual stream x_l (0 = embeddings, l = output of block l), in
    float64, for ``GPT(config, seed)`` on ``probe_batch``. Columns ``ffn, layer, grad_norm``."""
    model = GPT(config, seed=seed)
    idx, targets = probe_batch(config, seed=seed)
    states = model.hidden_states(idx)
    logits = model.lm_head(model.ln_f(states[-1]))
    loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten())
    grads = torch.autograd.grad(loss, states)
    return pd.DataFrame({"ffn": config.ffn, "layer": np.arange(len(states)),
                         "grad_norm": [g.double().norm().item() for g in grads]})


# --- Which weight gets the scaled initialisation -------------------------------------------

#: Three ways code selects the residual projections by name after drawing every weight with
#: std 0.02, as nanoGPT-style code does (``for name, p in model.named_parameters(): if ...``):
#: ``"endswith"`` is nanoGPT's rule (every ``...c_proj.weight``); ``"exact name"`` compares the
#: *full* name with ``"c_proj.weight"`` and so matches nothing (Hugging Face transformers issue
#: 47458, GPT-2, and pull request 47478, CLVP); ``"up projection"`` scales the SwiGLU layer's
#: value projection (our ``c_up``, LLaMA's ``w3``) and the attention's output projection instead
#: of the feed-forward output projection (``c_proj``, ``w2``) (karpathy/llama2.c issue 579,
#: jingyaogong/minimind pull request 136, datawhalechina/happy-llm issue 200).
NAME_RULES = {
    "endswith": lambda name: name.endswith("c_proj.weight"),
    "exact name": lambda name: name == "c_proj.weight",
    "up projection": lambda name: name.endswith(("c_up.weight", "attn.c_proj.weight")),
}


def init_by_name_rule(config: GPTConfig, rule: str, seed: int = 0) -> tuple[GPT, int]:
    """``GPT(config, seed)`` drawn without the scaled initialisation, then re-drawn by a name
    rule of :data:`NAME_RULES` with std 0.02 / sqrt(2N), as code in the wild does it. Returns
    the model and how many weight tensors the rule matched."""
    checks.one_of("rule", rule, tuple(NAME_RULES), what="name rule")
    config = replace(config, scaled_init=False)
    model = GPT(config, seed=seed)
    std = config.init_std / math.sqrt(2 * config.n_layer)
    generator = torch.Generator().manual_seed(int(seed) + 99)
    matched = 0
    with torch.no_grad():
        for name, p in model.named_parameters():
            if NAME_RULES[rule](name):
                torch.nn.init.normal_(p, 0.0, std, generator=generator)
                matched += 1
    return model, matched


def stream_variance_by_rule(config: GPTConfig, rules: Sequence[str] = tuple(NAME_RULES),
                            seeds: Sequence[int] = (0, 1)) -> pd.DataFrame:
    """The residual stream's variance after each block (0 = embeddings) for each name rule,
    mean over ``seeds``, in float64. Columns ``rule, layer, variance, matched``."""
    rows = []
    for rule in rules:
        per_seed, matched = [], 0
        for seed in checks.seeds(seeds):
            model, matched = init_by_name_rule(config, rule, seed)
            idx, _ = probe_batch(config, seed=seed)
            with torch.no_grad():
                per_seed.append([h.double().var().item() for h in model.hidden_states(idx)])
        for layer, variance in enumerate(np.mean(per_seed, axis=0)):
            rows.append({"rule": rule, "layer": layer, "variance": float(variance),
                         "matched": matched})
    return pd.DataFrame(rows)


def projection_gradients_by_rule(config: GPTConfig, rules: Sequence[str] = ("endswith", "up projection"),
                                 seed: int = 0) -> pd.DataFrame:
    """Median over blocks of ||dL/dW|| for the gated layer's value projection ``c_up`` (w3) and
    output projection ``c_proj`` (w2), one row per name rule, at initialisation (float64)."""
    rows = []
    for rule in rules:
        model, _ = init_by_name_rule(config, rule, seed)
        idx, targets = probe_batch(config, seed=seed)
        _, loss = model(idx, targets)
        ups = [b.mlp.c_up.weight for b in model.blocks]
        outs = [b.mlp.c_proj.weight for b in model.blocks]
        grads = torch.autograd.grad(loss, ups + outs)
        n = len(ups)
        rows.append({"rule": rule,
                     "c_up (w3)": float(np.median([g.double().norm() for g in grads[:n]])),
                     "c_proj (w2)": float(np.median([g.double().norm() for g in grads[n:]]))})
    return pd.DataFrame(rows).set_index("rule")


def projection_stds(model: GPT) -> pd.DataFrame:
    """The standard deviation of every weight matrix that writes into the residual stream, and
    of the others, by role, pooled over blocks (float64). Index: role; column ``std``."""
    pools: dict[str, list[torch.Tensor]] = {}
    d = model.config.n_embd
    for block in model.blocks:
        w = block.attn.c_attn.weight.detach().double()
        pools.setdefault("attention Q, K", []).append(w[: 2 * d].flatten())
        pools.setdefault("attention V", []).append(w[2 * d:].flatten())
        pools.setdefault("attention output c_proj", []).append(block.attn.c_proj.weight.flatten())
        for name in ("c_fc", "c_up", "c_proj"):
            if hasattr(block.mlp, name):
                label = {"c_fc": "feed-forward c_fc", "c_up": "feed-forward c_up",
                         "c_proj": "feed-forward output c_proj"}[name]
                pools.setdefault(label, []).append(getattr(block.mlp, name).weight.flatten())
    return pd.DataFrame({"std": {k: float(torch.cat([t.detach().double() for t in v]).std())
                                 for k, v in pools.items()}})


def last_layer_gradient_ratio(post: GPTConfig, pre: GPTConfig, seeds: Sequence[int] = (0, 1)
                              ) -> float:
    """Xiong et al. 2020's quantity for two configs: the mean over ``seeds`` of the last block's
    ||dL/dW^{2,L}|| in ``post`` divided by that in ``pre`` (``transformer_probes.layer_gradient_norms``)."""
    def last(config):
        return np.mean([layer_gradient_norms(config, seed=s)["ffn_w2"].iloc[-1]
                        for s in checks.seeds(seeds)])
    return float(last(post) / last(pre))
