"""The fast measurements of the chapter "Attention's own gradients" (no training): the softmax's
Jacobian against the scale of the logits, the variance of q.k, the book's GPT at initialisation
over head sizes, what overflows and what does not, the gradient along the token axis in a tanh
RNN and in one attention layer, and the size of the token embedding against the sinusoidal
position code. Every function returns plain data and never prints; statistics are float64."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import pandas as pd
import torch

from ... import checks, softmax
from ...networks.gpt import GPT, CausalSelfAttention, GPTConfig
from ...transformer_probes import attention_statistics, layer_gradient_norms, probe_batch

#: Head sizes of the table at initialisation, 8 ... 512.
HEAD_SIZES = (8, 16, 32, 64, 128, 256, 512)
#: The model of that table: one block with one head of width d_k, GPT-2's initialisation.
INIT_CONFIG = GPTConfig(vocab_size=16, block_size=16, n_layer=1, n_head=1, n_embd=64)


def jacobian_against_scale(scales: Sequence[float], t: int = 16, rows: int = 128,
                           seed: int = 0) -> pd.DataFrame:
    """For logits z = s u with u ~ N(0, I_t) (``rows`` draws, one seed), at each scale s: the
    mean ``measured`` ||dp/dz||_F by autograd through torch.softmax (one backward pass per entry),
    the mean ``predicted`` one from the closed form of ``gradflow.softmax.jacobian_norm``
    (from p alone), the mean largest probability ``p_max`` and entropy ``entropy`` (nats)."""
    scales = [checks.positive_number("scale", s) if s != 0 else 0.0 for s in scales]
    checks.positive_int("t", t)
    checks.positive_int("rows", rows)
    u = torch.randn(rows, t, generator=torch.Generator().manual_seed(checks.seed(seed)),
                    dtype=torch.float64)
    out = []
    for s in scales:
        z = (s * u).requires_grad_(True)
        p = torch.softmax(z, -1)
        # autograd, one output entry i at a time: row i of each Jacobian is d p_i / d z
        squares = sum(torch.autograd.grad(p[:, i].sum(), z, retain_graph=True)[0].pow(2).sum(-1)
                      for i in range(t))
        measured = squares.sqrt()
        z, p = z.detach(), p.detach()
        out.append({"scale": s, "measured": float(measured.mean()),
                    "predicted": float(softmax.jacobian_norm(p).mean()),
                    "p_max": float(p.max(-1).values.mean()),
                    "entropy": float(softmax.entropy(z).mean())})
    return pd.DataFrame(out)


def dot_product_variance(head_sizes: Sequence[int] = HEAD_SIZES, samples: int = 10_000,
                         seed: int = 0) -> pd.DataFrame:
    """q.k for q, k with independent N(0, 1) entries: the ``measured`` variance over ``samples``
    pairs at each head size d_k, the closed form ``predicted`` d_k, and the variance after
    dividing by sqrt(d_k) (``scaled``, predicted 1)."""
    generator = torch.Generator().manual_seed(checks.seed(seed))
    rows = []
    for d in checks.positive_ints("head_sizes", head_sizes):
        q = torch.randn(samples, d, generator=generator, dtype=torch.float64)
        k = torch.randn(samples, d, generator=generator, dtype=torch.float64)
        dots = (q * k).sum(-1)
        rows.append({"head_size": d, "predicted": float(d), "measured": float(dots.var()),
                     "scaled": float((dots / math.sqrt(d)).var())})
    return pd.DataFrame(rows)


def init_table(head_sizes: Sequence[int] = HEAD_SIZES, seed: int = 0) -> pd.DataFrame:
    """The book's GPT at initialisation (:data:`INIT_CONFIG`, one head of width d_k, so
    n_embd = d_k) for each head size, with and without the 1/sqrt(d_k), in three settings
    (``setting``): ``"GPT-2"`` (every weight std 0.02), ``"unit variance"`` (std 1/sqrt(d), so
    that q and k have unit-variance entries, the assumption of Vaswani et al.'s footnote) and
    ``"QK-norm"`` (GPT-2's weights, LayerNorm on q and k). Columns: ``setting, head_size,
    attn_scale``, the block's ``max_logit``, ``entropy`` and ``uniform_entropy`` (nats) and
    ``jacobian_norm`` (the mean ||dp/dz||_F of its rows: the factor by which the softmax passes
    a gradient back to the scores), from ``transformer_probes.attention_statistics`` on the
    probe batch, and ``grad_qk``, the norm of the loss's gradient reaching the block's W_Q and
    W_K (``transformer_probes.layer_gradient_norms``, same model, same batch)."""
    rows = []
    for d in checks.positive_ints("head_sizes", head_sizes):
        base = replace(INIT_CONFIG, n_embd=d, n_head=1)
        settings = {"GPT-2": base, "unit variance": replace(base, init_std=1 / math.sqrt(d)),
                    "QK-norm": replace(base, qk_norm="layernorm")}
        for name, config in settings.items():
            for scale in (True, False):
                c = replace(config, attn_scale=scale)
                idx, _ = probe_batch(c, seed=seed)
                stats = attention_statistics(GPT(c, seed=seed), idx)
                grads = layer_gradient_norms(c, seed=seed)
                rows.append({"setting": name, "head_size": d, "attn_scale": scale,
                             "max_logit": stats["max_logit"], "entropy": stats["entropy"],
                             "uniform_entropy": stats["uniform_entropy"],
                             "jacobian_norm": stats["jacobian_norm"],
                             "grad_qk": float(grads["attn_qk"].iloc[0])})
    return pd.DataFrame(rows)


def overflow_demo(big: float = 1000.0) -> dict[str, float | bool]:
    """What a huge logit does in float32: ``naive_finite``, whether exp(z) / sum exp(z) written
    out stays finite (it overflows to inf / inf); ``softmax_finite``, whether torch.softmax
    (which subtracts the maximum first) does; ``softmax_max``, its largest probability; and
    ``grad_norm``, the norm of the gradient that reaches the logits z = (big, 0, -big) from
    the loss -p_1, which asks for more weight on the middle entry (it is exactly zero: what
    fails is the gradient, not the number)."""
    big = checks.positive_number("big", big)
    z = torch.tensor([big, 0.0, -big], requires_grad=True)
    naive = torch.exp(z) / torch.exp(z).sum()
    p = torch.softmax(z, -1)
    (-p[1]).backward()
    p = p.detach()
    return {"naive_finite": bool(torch.isfinite(naive).all()),
            "softmax_finite": bool(torch.isfinite(p).all()), "softmax_max": float(p.max()),
            "grad_norm": float(z.grad.norm())}


def _rnn(width: int, seed: int) -> torch.nn.RNN:
    torch.manual_seed(seed)   # nn.RNN draws its default initialisation from the global generator
    return torch.nn.RNN(width, width, nonlinearity="tanh", batch_first=True).double()


def _last_to_first(f, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """||d f(x)[:, -1] / d x[:, 0]||_F and ||d f(x)[:, -1] / d x[:, -1]||_F per sequence of the
    batch x (B, T, d), one backward pass per output unit (the sequences share none)."""
    x = x.detach().requires_grad_(True)
    y = f(x)[:, -1]
    first = torch.zeros(x.size(0), dtype=x.dtype)
    last = torch.zeros(x.size(0), dtype=x.dtype)
    for unit in range(y.size(-1)):
        (g,) = torch.autograd.grad(y[:, unit].sum(), x, retain_graph=True)
        first += g[:, 0].pow(2).sum(-1)
        last += g[:, -1].pow(2).sum(-1)
    return first.sqrt(), last.sqrt()


def token_axis(lengths: Sequence[int], width: int = 64, batch: int = 8, seed: int = 0
               ) -> pd.DataFrame:
    """The gradient from the last position's output to the first position's input against the
    sequence length T, ||d y_T / d x_1||_F averaged over ``batch`` sequences of N(0, 1) inputs:
    ``rnn``, a tanh RNN h_t = tanh(W_ih x_t + W_hh h_{t-1} + b) (``torch.nn.RNN`` at its default
    initialisation; Bengio et al. 1994), and ``attention``, one causal self-attention layer of
    the book's GPT (4 heads, GPT-2's initialisation); with ``attention_last``, the attention's
    gradient to the last position's own input (the path through a near-uniform weight of about
    1/T plus the query's path)."""
    lengths = checks.positive_ints("lengths", lengths)
    checks.positive_int("width", width)
    rnn = _rnn(width, checks.seed(seed))
    config = GPTConfig(vocab_size=2, block_size=max(lengths), n_layer=1, n_head=4, n_embd=width)
    attention = CausalSelfAttention(config).double()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in (attention.c_attn, attention.c_proj):
            layer.weight.normal_(0.0, config.init_std, generator=generator)
            layer.bias.zero_()
    rows = []
    for t in lengths:
        x = torch.randn(batch, t, width, generator=generator, dtype=torch.float64)
        norms = {}
        for name, f in (("rnn", lambda s: rnn(s)[0]), ("attention", attention)):
            first, last = _last_to_first(f, x)
            norms[name] = float(first.mean())
            norms[f"{name}_last"] = float(last.mean())
        rows.append({"T": t, "rnn": norms["rnn"], "attention": norms["attention"],
                     "attention_last": norms["attention_last"]})
    return pd.DataFrame(rows)


def decay_rates(frame: pd.DataFrame) -> dict[str, float]:
    """Least-squares fits to :func:`token_axis`: ``rnn_factor``, the RNN gradient's factor per
    extra step (exp of the slope of ln ||grad|| against T), and ``attention_exponent``, the
    slope of ln ||grad|| against ln T for attention (-1 for a 1/T fall)."""
    checks.columns(frame, ["T", "rnn", "attention"], "decay_rates")
    t = frame["T"].to_numpy(float)
    rnn_slope = np.polyfit(t, np.log(frame["rnn"].to_numpy(float)), 1)[0]
    att_slope = np.polyfit(np.log(t), np.log(frame["attention"].to_numpy(float)), 1)[0]
    return {"rnn_factor": float(np.exp(rnn_slope)), "attention_exponent": float(att_slope)}


def sinusoidal_positions(t: int, d: int) -> torch.Tensor:
    """Vaswani et al. 2017 section 3.5: PE(pos, 2i) = sin(pos / 10000^(2i/d)),
    PE(pos, 2i+1) = cos(pos / 10000^(2i/d)); shape (t, d), float64, d even."""
    checks.positive_int("t", t)
    if checks.positive_int("d", d) % 2:
        raise ValueError(f"d must be even (sines and cosines come in pairs), got {d}")
    pos = torch.arange(t, dtype=torch.float64).unsqueeze(1)
    rate = torch.pow(10_000.0, -torch.arange(0, d, 2, dtype=torch.float64) / d)
    code = torch.empty(t, d, dtype=torch.float64)
    code[:, 0::2], code[:, 1::2] = torch.sin(pos * rate), torch.cos(pos * rate)
    return code


def embedding_ratios(d_model: int = 512, vocab_size: int = 10_000, t: int = 512,
                     seed: int = 0) -> pd.DataFrame:
    """At initialisation, the mean norm of a token embedding over the mean norm of a position
    code, ``ratio``, with and without the factor sqrt(d_model) (``factor``), for three
    embeddings (``embedding``): ``"own, N(0, 1)"`` (``torch.nn.Embedding``'s default draw) and
    ``"tied, std 1/sqrt(d)"`` (shared with the output layer and drawn so that a unit-variance
    final state gives unit-variance output logits), both against the sinusoidal code; and
    ``"GPT-2, std 0.02"`` against learned positions drawn like it (std 0.02)."""
    d = checks.positive_int("d_model", d_model)
    generator = torch.Generator().manual_seed(checks.seed(seed))
    sinusoid = sinusoidal_positions(t, d).norm(dim=1).mean()
    draws = {"own, N(0, 1)": (1.0, sinusoid), "tied, std 1/sqrt(d)": (1 / math.sqrt(d), sinusoid),
             "GPT-2, std 0.02": (0.02, None)}
    rows = []
    for name, (std, positions) in draws.items():
        tokens = torch.randn(vocab_size, d, generator=generator, dtype=torch.float64) * std
        if positions is None:
            positions = (torch.randn(t, d, generator=generator, dtype=torch.float64) * 0.02
                         ).norm(dim=1).mean()
        for factor in (False, True):
            size = tokens.norm(dim=1).mean() * (math.sqrt(d) if factor else 1.0)
            rows.append({"embedding": name, "factor": factor, "ratio": float(size / positions)})
    return pd.DataFrame(rows)


def explorer_sweep(head_sizes: Sequence[int] = HEAD_SIZES,
                   stds: Sequence[float] = (0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0),
                   t: int = 16, rows: int = 256, seed: int = 0) -> pd.DataFrame:
    """The explorable's grid: attention rows over ``t`` keys, with queries and keys of ``rows``
    draws with independent N(0, std^2) entries of dimension d_k, logits q.k with and without the
    1/sqrt(d_k) (``scaled``); per setting the mean ``entropy`` (nats) and the mean
    ||dp/dz||_F (``grad``, the factor by which the softmax passes a gradient back to the
    scores; ``gradflow.softmax.jacobian_norm``), with the uniform row's values in
    ``entropy_max`` = ln t and ``grad_max``."""
    rows_out = []
    generator = torch.Generator().manual_seed(checks.seed(seed))
    for d in checks.positive_ints("head_sizes", head_sizes):
        base_q = torch.randn(rows, 1, d, generator=generator, dtype=torch.float64)
        base_k = torch.randn(rows, t, d, generator=generator, dtype=torch.float64)
        unit = (base_q * base_k).sum(-1)   # q.k for entries of std 1; std s scales it by s^2
        for std in stds:
            std = checks.positive_number("std", std)
            dots = std * std * unit
            for scaled in (True, False):
                z = dots / math.sqrt(d) if scaled else dots
                rows_out.append({
                    "head_size": d, "std": std, "scaled": scaled,
                    "entropy": float(softmax.entropy(z).mean()),
                    "grad": float(softmax.jacobian_norm(torch.softmax(z, -1)).mean()),
                    "entropy_max": math.log(t), "grad_max": softmax.uniform_jacobian_norm(t)})
    return pd.DataFrame(rows_out)


__all__ = ["HEAD_SIZES", "INIT_CONFIG", "decay_rates", "dot_product_variance",
           "embedding_ratios", "explorer_sweep", "init_table", "jacobian_against_scale",
           "overflow_demo", "sinusoidal_positions", "token_axis"]
