"""The chapter's explorable sweep: a residual MLP with a normaliser placed before the branch
(Pre), after the addition (Post) or at the end of the branch, for every depth. Part of the
chapter "Normalisation" (``book/normalisation.md``).

Block l of width n computes, with F(h) = W_l relu(h) (Kaiming W_l, no bias) and N a normaliser:

    none:    h + F(h)              pre:    h + F(N(h))
    post:    N(h + F(h))           branch: h + N(F(h))

The normalisers are ``gradflow.normalisation``'s, without affine parameters. The loss is a fixed
random readout of the last block's output; the statistics are the stream's variance after each
block and the norm of the gradient at each block's input, in float64.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from ... import checks
from ... import normalisation as norm
from ...networks.stacked import draw_stacked_weights

NORMALISERS = ("none", "batch", "layer", "rms")
PLACEMENTS = ("pre", "post", "branch")
EXPLORER_DEPTHS = tuple(range(2, 25, 2))


def _normaliser(name: str):
    if name == "batch":
        return norm.batch_norm
    if name == "layer":
        return lambda h: norm.layer_norm(h, h.shape[-1])
    if name == "rms":
        return lambda h: norm.rms_norm(h, h.shape[-1], eps=1e-5)
    return lambda h: h


def residual_states(x: torch.Tensor, weights: Sequence[torch.Tensor], normaliser: str,
                    placement: str) -> list[torch.Tensor]:
    """The stream [h_0 = x, h_1, ..., h_D] of one network: ``x`` of shape ``(B, n)``,
    ``weights`` one ``(n, n)`` matrix per block."""
    checks.one_of("normaliser", normaliser, NORMALISERS)
    checks.one_of("placement", placement, PLACEMENTS)
    n_fn = _normaliser(normaliser)
    states = [x]
    for w in weights:
        h = states[-1]
        if placement == "pre":
            h = h + torch.relu(n_fn(h)) @ w.T
        elif placement == "post":
            h = n_fn(h + torch.relu(h) @ w.T)
        else:
            h = h + n_fn(torch.relu(h) @ w.T)
        states.append(h)
    return states


def normaliser_explorer(depths: Sequence[int] = EXPLORER_DEPTHS, width: int = 64,
                        batch: int = 64, seeds: Sequence[int] = (0, 1)) -> pd.DataFrame:
    """Every (normaliser, placement, depth D) of the explorable: one row per block l = 1..D with
    ``variance`` (of h_l over batch and features) and ``gradient`` (||dL/dh_{l-1}||, the gradient
    at block l's input, for the loss read out at block D), each the median over ``seeds``.
    With no normaliser the placement changes nothing; its rows are repeated for each placement."""
    depths = sorted(checks.positive_ints("depths", depths))
    seeds = checks.seeds(seeds)
    deepest = depths[-1]
    weights, _ = draw_stacked_weights([width] * (deepest + 1), seeds, "kaiming",
                                      dtype=torch.float64)
    generator = torch.Generator().manual_seed(seeds[0] + 500)
    x = torch.randn(batch, width, generator=generator, dtype=torch.float64)
    readout = torch.randn(batch, width, generator=generator, dtype=torch.float64)
    frames = []
    for normaliser in NORMALISERS:
        for placement in PLACEMENTS if normaliser != "none" else ("pre",):
            variance = np.empty((len(seeds), deepest))
            gradient = {d: np.empty((len(seeds), d)) for d in depths}
            for s in range(len(seeds)):
                start = x.clone().requires_grad_(True)
                states = residual_states(start, [w[s] for w in weights], normaliser, placement)
                variance[s] = [h.detach().var().item() for h in states[1:]]
                for d in depths:
                    grads = torch.autograd.grad(states[d], states[:d], readout, retain_graph=True)
                    gradient[d][s] = [g.norm().item() for g in grads]
            for d in depths:
                frames.append(pd.DataFrame({
                    "normaliser": normaliser, "placement": placement, "depth": d,
                    "layer": np.arange(1, d + 1),
                    "variance": np.median(variance[:, :d], axis=0),
                    "gradient": np.median(gradient[d], axis=0)}))
    table = pd.concat(frames, ignore_index=True)
    none = table[table.normaliser == "none"]
    copies = [none.assign(placement=p) for p in PLACEMENTS[1:]]
    return pd.concat([table, *copies], ignore_index=True)
