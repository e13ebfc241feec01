"""Why shortcuts work: the identity term of He et al. (2016, Eq. 5), measured, and what scaling the
shortcut by lambda does to it. Part of the chapter "Shortcut connections"
(``book/shortcut_connections.md``)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from ... import checks
from ...networks.mlp import DeepMLP, make_generator
from ...networks.stacked import draw_stacked_weights, stacked_forward
from ...probes import block_states, over_seeds, seed_loss
from ...tutorial import (
    SEED,
    SEED_ACTIVATION,
    SEED_INIT,
    SEED_LAYER_SIZES,
    check_layer_sizes,
    default_input,
)
from .projections import without_shortcuts


def identity_decomposition(
    seed: int = SEED, layer_sizes: Sequence[int] = SEED_LAYER_SIZES, x: torch.Tensor | None = None
) -> pd.DataFrame:
    """He et al. (2016) Eq. 5, measured on the seed's shortcut network.

    Take the run of consecutive identity-shortcut blocks that starts at the first one; call its
    output x_L. For the input x_l of each block l in the run, the Jacobian is
    dx_L/dx_l = I + R_l with R_l = d/dx_l sum_{i>=l} F(x_i), so (row-vector gradients)

        dL/dx_l = dL/dx_L + dL/dx_L R_l.

    Returns one row per block l of the run with the norms of the three terms (``identity_term``,
    ``branch_term``, ``total``), the spectral norm of R_l, ``total_over_top`` = ||dL/dx_l|| /
    ||dL/dx_L|| and ``plain_total_over_top``: the same ratio in the plain network with the same
    weights, whose Jacobian has no identity term.
    """
    sizes = check_layer_sizes(list(layer_sizes))
    x = default_input(x, sizes[0])
    if x.shape[0] != 1:
        raise ValueError(f"identity_decomposition needs a single input row, got {tuple(x.shape)}")
    model = DeepMLP(sizes, activation=SEED_ACTIVATION, init=SEED_INIT, shortcut=True, seed=seed)
    model = model.double()
    kinds = model.shortcut_kinds
    if "identity" not in kinds:
        raise ValueError(f"layer_sizes {sizes} give no layer with an identity shortcut")
    start = kinds.index("identity")
    stop = start
    while stop < len(kinds) and kinds[stop] == "identity":
        stop += 1
    plain = without_shortcuts(model)

    def gradients(net: DeepMLP) -> tuple[list[torch.Tensor], tuple[torch.Tensor, ...]]:
        """The states x_0 .. x_L of ``net`` and dL/dx for each, for the seed's loss."""
        states = block_states(net, x.double())
        return states, torch.autograd.grad(seed_loss(states[-1]), states)

    def run(h: torch.Tensor, first: int) -> torch.Tensor:
        for block in model.blocks[first:stop]:
            h = block(h)
        return h

    states, grads = gradients(model)
    _, plain_grads = gradients(plain)
    top = grads[stop][0]
    top_norm = top.norm().item()
    plain_top_norm = plain_grads[stop][0].norm().item()
    eye = torch.eye(top.shape[0], dtype=top.dtype)
    rows = []
    for layer in range(start, stop):
        jac = torch.autograd.functional.jacobian(
            lambda h, first=layer: run(h, first), states[layer].detach()[0]
        )
        residual_part = jac - eye
        total = grads[layer][0].norm().item()
        rows.append({
            "block": layer + 1,
            "identity_term": top_norm,
            "branch_term": (top @ residual_part).norm().item(),
            "total": total,
            "residual_spectral_norm": torch.linalg.matrix_norm(residual_part, 2).item(),
            "total_over_top": total / top_norm,
            "plain_total_over_top": plain_grads[layer][0].norm().item() / plain_top_norm,
        })
    return pd.DataFrame(rows).set_index("block")


def lambda_scaling(
    lambdas: Sequence[float] = (0.5, 0.9, 1.0),
    depth: int = 50,
    width: int = 32,
    seeds: Sequence[int] = range(5),
    batch: int = 16,
    gains: Sequence[float] = (1.0,),
    activation: str = SEED_ACTIVATION,
) -> pd.DataFrame:
    """||dL/dh_l|| through a deep network h_l = lambda h_{l-1} + phi(W_l h_{l-1} + b_l).

    He et al. (2016), section 3 (Eqs. 6 to 8): with h(x) = lambda x the identity term of Eq. 5 becomes the
    product of the lambdas, lambda^(L-l), which vanishes (lambda < 1) or explodes (lambda > 1)
    with depth; the branches add their own terms; lambda = 0 is the plain network. Member
    (seed, gain) is ``DeepMLP(depth=depth, width=width, activation=activation, gain=gain,
    shortcut=True, shortcut_scale=lambda, seed=seed)``, all seeds of one (lambda, gain)
    computed in one batched pass; ``gain`` scales the branch weights (small gains leave the
    identity term alone). The input and the readout r of the loss L = sum(r * y) are standard
    normal draws from a generator seeded with ``seed + 10_000``.

    Returns one row per (gain, lambda, seed, layer l = 0..depth) with ``signal_norm`` =
    ||dL/dh_l||, ``ratio_to_top`` = ||dL/dh_l|| / ||dL/dh_L|| and ``identity_prediction`` =
    lambda^(L-l).
    """
    depth = checks.positive_int("depth", depth)
    width = checks.positive_int("width", width)
    batch = checks.positive_int("batch", batch)
    seeds = checks.seeds(seeds)
    for lam in lambdas:   # lambda = 0 is the plain network h_l = phi(W_l h_{l-1} + b_l)
        checks.non_negative_number("every lambda", lam)
    inputs, readouts = [], []
    for seed in seeds:
        generator = make_generator(seed + 10_000)
        inputs.append(torch.randn(batch, width, generator=generator))
        readouts.append(torch.randn(batch, width, generator=generator))
    x, readout = torch.stack(inputs).double(), torch.stack(readouts).double()
    gate = torch.ones(len(seeds))
    rows = []
    for gain in gains:
        weights, biases = draw_stacked_weights([width] * (depth + 1), seeds, SEED_INIT, gain)
        weights = [w.double() for w in weights]
        biases = [b.double() for b in biases]
        for lam in lambdas:
            start = x.clone().requires_grad_(True)
            states = stacked_forward(start, weights, biases, gate, activation=activation,
                                     shortcut_scale=float(lam), return_states=True)
            grads = torch.autograd.grad(seed_loss(states[-1], readout=readout), states)
            norms = torch.stack([g.norm(dim=(1, 2)) for g in grads], dim=1)   # (S, L + 1)
            for s, seed in enumerate(seeds):
                for layer in range(depth + 1):
                    rows.append({
                        "gain": float(gain), "lambda": float(lam), "seed": seed, "layer": layer,
                        "signal_norm": norms[s, layer].item(),
                        "ratio_to_top": (norms[s, layer] / norms[s, -1]).item(),
                        "identity_prediction": float(lam) ** (depth - layer),
                    })
    return pd.DataFrame(rows)


def lambda_summary(frame: pd.DataFrame) -> pd.DataFrame:
    """Per (gain, lambda): the first/last ratio ||dL/dh_0|| / ||dL/dh_L|| (geometric mean over seeds),
    lambda^L, and the measured factor per layer, ratio^(1/L)."""
    depth = int(frame["layer"].max())
    first = frame[frame["layer"] == 0]
    rows = []
    for (gain, lam), group in first.groupby(["gain", "lambda"]):
        ratio = float(np.exp(np.log(group["ratio_to_top"]).mean()))
        rows.append({"gain": float(gain), "lambda": float(lam), "depth": depth,
                     "ratio_first_last": ratio, "lambda_power_depth": float(lam) ** depth,
                     "factor_per_layer": ratio ** (1.0 / depth)})
    return pd.DataFrame(rows).set_index(["gain", "lambda"])


#: The explorable's grid of shortcut scales, 0 (no shortcut) to 1 (the identity) in steps of 0.05.
EXPLORER_LAMBDAS = tuple(round(0.05 * i, 2) for i in range(21))


def lambda_explorer(
    lambdas: Sequence[float] = EXPLORER_LAMBDAS,
    gains: Sequence[float] = (0.3, 1.0),
    **kwargs,
) -> pd.DataFrame:
    """``lambda_scaling`` over the explorable's grid of lambdas and branch gains, summarised
    over seeds: one row per (gain, lambda, layer l = 0..depth) with ``ratio`` (geometric mean over
    seeds of ||dL/dh_l|| / ||dL/dh_L||), ``ratio_min``, ``ratio_max`` and ``identity_prediction``
    = lambda^(L-l). Other keyword arguments go to ``lambda_scaling`` (its defaults: depth 50,
    width 32, five seeds, as in the chapter's figure)."""
    frame = lambda_scaling(lambdas=lambdas, gains=gains, **kwargs)
    keys = ["gain", "lambda", "layer"]
    summary = over_seeds(frame.assign(log_ratio=np.log(frame["ratio_to_top"])), keys)
    prediction = frame.groupby(keys, sort=True)["identity_prediction"].first()
    return summary.join(prediction, on=keys)
