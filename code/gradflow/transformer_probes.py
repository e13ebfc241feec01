"""Probes of a freshly initialised GPT (``gradflow.networks.gpt``): a batch of random token ids with
random next-token targets (so the loss is cross-entropy against targets the model cannot know),
one backward pass, and per-block statistics taken in float64; and the attention logits of each
block, with their largest value and their entropy. Used by the chapters "Putting it together in a
GPT block", "Attention's own gradients" and "After GPT-2"."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from . import checks, softmax
from .networks.gpt import GPT, GPTConfig

#: The batch size of the probes unless told otherwise.
PROBE_BATCH = 8


def probe_batch(config: GPTConfig, batch_size: int = PROBE_BATCH, seed: int = 0
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Random token ids ``(batch_size, block_size)`` and random next-token targets of that shape."""
    checks.positive_int("batch_size", batch_size)
    generator = torch.Generator().manual_seed(int(seed))
    shape = (batch_size, config.block_size)
    idx = torch.randint(0, config.vocab_size, shape, generator=generator)
    targets = torch.randint(0, config.vocab_size, shape, generator=generator)
    return idx, targets


def token_diversity(x: torch.Tensor) -> float:
    """How far the tokens of each sequence are from all being the same vector, in [0, 1].

    ``||X - 1 xbar^T||_F / ||X||_F`` over the whole batch, where ``xbar`` is each sequence's mean
    token: the relative distance of the ``(T, d)`` representation from the nearest rank-1 matrix
    of identical rows (the "residual" of Dong et al. 2021, measured in the Frobenius norm).
    0 means every position carries the same vector: the input has been forgotten.
    """
    x = x.detach().double()
    return float((x - x.mean(dim=1, keepdim=True)).norm() / x.norm())


def layer_gradient_norms(config: GPTConfig, seed: int = 0, batch_size: int = PROBE_BATCH
                         ) -> pd.DataFrame:
    """Per-block gradient norms of a freshly initialised model, one row per block.

    Columns:
        layer: block index l = 1..N (1 is nearest the input).
        ffn_w2: ||dL/dW^{2,l}||_F, the feed-forward branch's output projection (the quantity of
            Xiong et al. 2020, Theorem 1 and Fig. 3).
        attn_qk: ||dL/d[W_Q; W_K]||_F, the attention's query and key weights, which decide where
            each position looks (Noci et al. 2022 show these vanish when tokens collapse).
        token_diversity: :func:`token_diversity` of the block's output.

    The model is ``GPT(config, seed)``; the batch is ``probe_batch(config, batch_size, seed)``.
    """
    model = GPT(config, seed=seed)
    idx, targets = probe_batch(config, batch_size, seed)
    states = model.hidden_states(idx)
    logits = model.lm_head(model.ln_f(states[-1]))
    loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten())
    w2 = [block.mlp.c_proj.weight for block in model.blocks]
    qkv = [block.attn.c_attn.weight for block in model.blocks]
    grads = torch.autograd.grad(loss, w2 + qkv)
    d, n = config.n_embd, config.n_layer
    return pd.DataFrame({
        "layer": np.arange(1, n + 1),
        "ffn_w2": [g.double().norm().item() for g in grads[:n]],
        "attn_qk": [g[: 2 * d].double().norm().item() for g in grads[n:]],  # rows: Q, K, then V
        "token_diversity": [token_diversity(h) for h in states[1:]],
    })


def attention_logits(model: GPT, idx: torch.Tensor) -> list[torch.Tensor]:
    """Each block's attention logits for the token ids ``idx``: a list of ``n_layer`` tensors
    (B, n_head, T, T), before the causal mask, from the block's attention input (after ``ln_1``
    in Pre-LN, the stream itself in Post-LN), by ``CausalSelfAttention.logits``."""
    if not isinstance(model, GPT):
        raise TypeError(f"model must be a GPT, got {type(model).__name__}")
    states = model.hidden_states(idx)
    return [block.attn.logits(block.ln_1(x) if block.pre_ln else x)
            for block, x in zip(model.blocks, states[:-1])]


def causal_rows(logits: torch.Tensor) -> torch.Tensor:
    """The logits (..., T, T) with the entries above the diagonal set to -inf (float64): what
    each position's softmax sees."""
    t = logits.size(-1)
    mask = torch.tril(torch.ones(t, t, dtype=torch.bool, device=logits.device))
    return logits.double().masked_fill(~mask, float("-inf"))


def attention_statistics(model: GPT, idx: torch.Tensor) -> dict[str, float]:
    """Summary of every block's attention on ``idx``: ``max_logit``, the largest |logit| among
    the entries a position may attend to (on and below the diagonal); ``entropy``, the mean
    entropy (nats) of the attention rows of positions 1..T-1 (position 0 sees one key, entropy
    0) over blocks, heads and the batch; ``uniform_entropy``, the same mean for uniform rows,
    the mean of ln(t + 1); ``jacobian_norm``, the mean Frobenius norm of those rows' softmax
    Jacobians (``gradflow.softmax.jacobian_norm``)."""
    t = idx.size(1)
    if t < 2:
        raise ValueError(f"attention statistics need at least two positions, got T={t}")
    with torch.no_grad():
        logits = attention_logits(model, idx)
    allowed = torch.tril(torch.ones(t, t, dtype=torch.bool))
    largest = max(float(z.double()[..., allowed].abs().max()) for z in logits)
    rows = [causal_rows(z)[..., 1:, :] for z in logits]
    entropy = torch.stack([softmax.entropy(r) for r in rows]).mean()
    norms = torch.stack([softmax.jacobian_norm(torch.softmax(r, -1)) for r in rows]).mean()
    return {"max_logit": largest, "entropy": float(entropy),
            "uniform_entropy": float(np.log(np.arange(2, t + 1)).mean()),
            "jacobian_norm": float(norms)}
