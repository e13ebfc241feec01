"""The three normalisers against PyTorch's, and LayerNorm's Jacobian and scale invariance: part of
the chapter "Normalisation" (``book/normalisation.md``). Every function returns plain data."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import pandas as pd
import torch
from torch import nn

from ... import checks
from ... import normalisation as norm
from ...networks.gpt import GPT, GPTConfig

DTYPES = {"float32": torch.float32, "float64": torch.float64}


def _draw(shape: Sequence[int], seed: int, dtype: torch.dtype, offset: float = 2.0,
          scale: float = 3.0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return (offset + scale * torch.randn(*shape, generator=generator, dtype=torch.float64)).to(dtype)


def _max_difference(ours: torch.Tensor, theirs: torch.Tensor) -> float:
    return float((ours.detach().double() - theirs.detach().double()).abs().max())


def pytorch_agreement(batch: int = 16, features: int = 32, mean: float = 2.0, std: float = 3.0,
                      seed: int = 0) -> pd.DataFrame:
    """Each from-scratch normaliser against its PyTorch module, in float32 and float64.

    Inputs ``(batch, features)`` drawn with ``mean`` and ``std`` (a mean away from 0, so that the
    centring matters); gamma and beta
    drawn away from 1 and 0; one random upstream gradient. Returns one row per (normaliser,
    dtype) with the largest absolute difference of the output, of the gradient with respect to
    the input, and of the gradients with respect to the affine parameters.
    """
    checks.positive_int("batch", batch)
    checks.positive_int("features", features)
    rows = []
    for dtype_name, dtype in DTYPES.items():
        x = _draw((batch, features), seed, dtype, mean, std)
        upstream = _draw((batch, features), seed + 1, dtype, 0.0, 1.0)
        gamma = _draw((features,), seed + 2, dtype, 1.0, 0.3)
        beta = _draw((features,), seed + 3, dtype, 0.0, 0.3)
        modules = {
            "LayerNorm": (nn.LayerNorm(features, dtype=dtype),
                          lambda t, p: norm.layer_norm(t, features, *p)),
            "RMSNorm": (nn.RMSNorm(features, dtype=dtype),
                        lambda t, p: norm.rms_norm(t, features, *p)),
            "BatchNorm": (nn.BatchNorm1d(features, dtype=dtype).train(),
                          lambda t, p: norm.batch_norm(t, *p)),
        }
        for name, (module, ours) in modules.items():
            params = [gamma, beta][: len(list(module.parameters()))]
            with torch.no_grad():
                for p, value in zip(module.parameters(), params):
                    p.copy_(value)
            x1, x2 = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
            mine = [p.clone().requires_grad_(True) for p in params]
            y1, y2 = ours(x1, mine), module(x2)
            g1 = torch.autograd.grad(y1, [x1, *mine], upstream)
            g2 = torch.autograd.grad(y2, [x2, *module.parameters()], upstream)
            rows.append({
                "normaliser": name, "dtype": dtype_name,
                "output": _max_difference(y1, y2),
                "input gradient": _max_difference(g1[0], g2[0]),
                "parameter gradients": max(_max_difference(a, b) for a, b in zip(g1[1:], g2[1:])),
            })
    return pd.DataFrame(rows)


def what_each_removes(batch: int = 16, features: int = 32, mean: float = 2.0, std: float = 3.0,
                      seed: int = 0) -> pd.DataFrame:
    """Measured on one input (drawn with ``mean`` and ``std``; no affine parameters, float64): after each
    normaliser, the largest |mean| and the largest |mean square - 1| over the examples (rows)
    and over the features (columns). Zero where the normaliser fixes that statistic."""
    x = _draw((batch, features), seed, torch.float64, mean, std)
    outputs = {"LayerNorm": norm.layer_norm(x, features, eps=1e-12),
               "RMSNorm": norm.rms_norm(x, features, eps=1e-12),
               "BatchNorm": norm.batch_norm(x, eps=1e-12)}
    rows = []
    for name, y in outputs.items():
        row = {"normaliser": name, "averages over": norm.AVERAGED_OVER[
            {"LayerNorm": "layer", "RMSNorm": "rms", "BatchNorm": "batch"}[name]]}
        for axis, label in ((1, "per example"), (0, "per feature")):
            row[f"max |mean| {label}"] = float(y.mean(dim=axis).abs().max())
            row[f"max |mean square - 1| {label}"] = float((y.pow(2).mean(dim=axis) - 1).abs().max())
        rows.append(row)
    return pd.DataFrame(rows).set_index("normaliser")


#: The relative tolerance of ``jacobian_check``'s ``rank``: singular values below this fraction of
#: the largest are not counted.
RANK_RTOL = 1e-6


def jacobian_check(features: int = 16, seed: int = 0, eps: float = 1e-5) -> dict[str, float]:
    """LayerNorm's closed-form Jacobian against autograd at one vector (float64, random gamma).

    Returns the largest absolute difference; the Jacobian's rank counting only singular values
    above ``RANK_RTOL`` of the largest (``rank``, with that tolerance as ``rank_rtol``) and
    counting every one above float64 rounding
    (``rank_strict``: with eps > 0 the input's own direction keeps a gain of about
    eps / (var(x) + eps), which only the first count drops); and the size of J 1 and of
    J (x - mean(x)) relative to |J| |v| (the two directions the Jacobian removes).
    """
    x = _draw((features,), seed, torch.float64)
    gamma = _draw((features,), seed + 1, torch.float64, 1.0, 0.3)
    closed = norm.layer_norm_jacobian(x, gamma, eps=eps)
    auto = torch.autograd.functional.jacobian(
        lambda t: nn.functional.layer_norm(t, (features,), gamma, None, eps=eps), x)
    size = float(torch.linalg.matrix_norm(closed, ord=2))

    def removed(v: torch.Tensor) -> float:
        return float((closed @ v).norm() / (size * v.norm()))

    return {
        "max_difference": float((closed - auto).abs().max()),
        "rank": int(torch.linalg.matrix_rank(closed, rtol=RANK_RTOL)),
        "rank_rtol": RANK_RTOL,
        "rank_strict": int(torch.linalg.matrix_rank(closed)),
        "features": features,
        "mean_direction": removed(torch.ones(features, dtype=torch.float64)),
        "input_direction": removed(x - x.mean()),
    }


def scale_invariance(scales: Sequence[float] = tuple(np.logspace(-1, 3, 9)), features: int = 64,
                     seed: int = 0, eps: float = 1e-5) -> pd.DataFrame:
    """LN(c x) against LN(x), and the gradient into LayerNorm at c x against that at x.

    For each scale c: the largest |LN(c x) - LN(x)|, and ||J(c x)^T g|| / ||J(x)^T g|| for one
    random upstream gradient g (float64), beside the prediction 1 / c; ``input variance`` is
    the biased variance of x (the same in every row).
    """
    x = _draw((features,), seed, torch.float64, 0.5, 1.0)
    g = _draw((features,), seed + 1, torch.float64, 0.0, 1.0)
    base_out = norm.layer_norm(x, features, eps=eps)
    base_grad = (norm.layer_norm_jacobian(x, eps=eps).T @ g).norm()
    rows = []
    for c in scales:
        c = checks.positive_number("every scale", float(c))
        rows.append({
            "scale": c,
            "output change": float((norm.layer_norm(c * x, features, eps=eps) - base_out).abs().max()),
            "gradient ratio": float((norm.layer_norm_jacobian(c * x, eps=eps).T @ g).norm() / base_grad),
            "predicted 1/c": 1.0 / c,
            "input variance": float(x.var(unbiased=False)),
        })
    return pd.DataFrame(rows)


#: The Pre-LN stack of the GPT chapter's probes, every block initialised alike (GPT-2's std 0.02).
PRE_LN_CONFIG = GPTConfig(vocab_size=16, block_size=16, n_layer=24, n_head=4, n_embd=64,
                          scaled_init=False)


def pre_ln_gradients(config: GPTConfig = PRE_LN_CONFIG, scaled_init: Sequence[bool] = (False, True),
                     seed: int = 0, batch_size: int = 8) -> pd.DataFrame:
    """What reaches each Pre-LN block through its first LayerNorm, against the stream it reads.

    For every block l of ``GPT(config, seed)`` (with and without GPT-2's scaled residual
    projections) and a batch of random tokens with random next-token targets (drawn, as the GPT
    chapter's probes draw them, from a generator seeded with ``seed``): the std sigma_l of
    the stream x_l that ``ln_1`` reads (per token over features, root-mean-square over tokens),
    the norm of the gradient at ``ln_1``'s output, and the norm of the part of dL/dx_l that comes
    back through ``ln_1`` (the shortcut's part left out). LayerNorm's Jacobian predicts
    through / at output = |gamma| / sigma_l * sqrt((d - 2) / d) for a gradient with no preferred
    direction (gamma = 1 at initialisation); the column ``predicted`` holds it.
    """
    rows = []
    for scaled in scaled_init:
        cfg = replace(config, ln_placement="pre", shortcuts=True, scaled_init=bool(scaled))
        model = GPT(cfg, seed=seed)
        captured: list[tuple[torch.Tensor, torch.Tensor]] = []

        def keep(module, args, out, captured=captured):
            captured.append((args[0], out))

        hooks = [block.ln_1.register_forward_hook(keep) for block in model.blocks]
        generator = torch.Generator().manual_seed(int(seed))   # as the GPT chapter's probes draw
        shape = (batch_size, cfg.block_size)
        idx = torch.randint(0, cfg.vocab_size, shape, generator=generator)
        targets = torch.randint(0, cfg.vocab_size, shape, generator=generator)
        _, loss = model(idx, targets)
        for hook in hooks:
            hook.remove()
        outs = [out for _, out in captured]
        at_output = torch.autograd.grad(loss, outs, retain_graph=True)
        d = cfg.n_embd
        for layer, ((inp, out), g_out) in enumerate(zip(captured, at_output), start=1):
            through = torch.autograd.grad(out, inp, g_out, retain_graph=True)[0]
            sigma = inp.detach().double().var(dim=-1, unbiased=False).mean().sqrt().item()
            rows.append({
                "scaled_init": bool(scaled), "layer": layer, "stream_std": sigma,
                "at_output": g_out.double().norm().item(),
                "through_ln": through.double().norm().item(),
                "ratio": through.double().norm().item() / g_out.double().norm().item(),
                "predicted": float(np.sqrt((d - 2) / d) / sigma),
            })
    return pd.DataFrame(rows)
