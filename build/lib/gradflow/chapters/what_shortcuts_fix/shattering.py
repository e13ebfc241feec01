"""Shattered gradients (Balduzzi et al. 2017): dy/dx of networks with one input over a grid, and
how the correlation between neighbouring gradients falls with depth. Part of the chapter "What
shortcuts fix when gradients do not vanish" (``book/what_shortcuts_fix.md``)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from ... import checks
from ...jacobians import fold_batch_norm, input_gradients, neighbour_correlation
from ...networks.stacked import draw_stacked_weights, stacked_forward

#: The networks: (shortcut, BatchNorm, bias standard deviation or None for the default, set-up).
#: ``"prince"`` is the set-up of Prince's notebook 11.1: every weight and bias ~ N(0, 1/width).
KINDS = {
    "plain_bias_free": (False, False),
    "plain": (False, False),
    "plain_bn": (False, True),
    "residual": (True, False),
    "residual_bn": (True, True),
    "prince": (False, False),
}


@dataclass(frozen=True)
class ShatteringResult:
    """``correlations``: one row per (kind, depth, seed) with the lag-1 ``correlation`` and the
    mean |dy/dx| (``mean_abs_gradient``); ``curves``: dy/dx over the grid for the first seed,
    one row per (kind, depth, x)."""

    correlations: pd.DataFrame
    curves: pd.DataFrame
    grid: np.ndarray


def _weights(kind: str, width: int, depth: int, seeds: Sequence[int], bias_std: float):
    """The hidden stack [1, width, ..., width] and one linear readout per probe depth, drawn
    from each seed's generator (hidden layers first, then the readouts)."""
    widths = [1] + [width] * depth
    readouts = torch.empty(len(seeds), depth, width)

    def draw_readouts(s: int, generator: torch.Generator) -> None:
        readouts[s] = torch.randn(depth, width, generator=generator) / math.sqrt(width)

    bias = 0.0 if kind == "plain_bias_free" else bias_std
    if kind == "prince":
        bias = 1.0 / math.sqrt(width)
    weights, biases = draw_stacked_weights(widths, seeds, "kaiming", 1.0, bias, then=draw_readouts)
    weights = [w.double() for w in weights]
    if kind == "prince":   # N(0, 1/width) everywhere: Kaiming's 2/fan_in rescaled
        weights = [w * math.sqrt(w.shape[2] / (2.0 * width)) for w in weights]
    return weights, [b.double() for b in biases], readouts.double()


def shattering(
    kinds: Sequence[str] = tuple(KINDS),
    depths: Sequence[int] = (1, 2, 4, 8, 16, 32, 50),
    seeds: Sequence[int] = tuple(range(8)),
    *,
    width: int = 128,
    n_points: int = 256,
    bias_std: float = 0.1,
    curve_depths: Sequence[int] = (),
) -> ShatteringResult:
    """dy/dx of ReLU networks with one input at ``n_points`` evenly spaced x in [-2, 2].

    A network of depth L has L hidden ReLU layers of ``width`` units (Kaiming's N(0, 2/fan_in)
    weights, biases ~ N(0, ``bias_std``^2), none for ``"plain_bias_free"``) and a linear readout
    y = r . h_L, r ~ N(0, 1/width). Residual kinds add each hidden layer's input to its output
    where the width is unchanged (every layer but the first). BatchNorm kinds normalise every
    hidden pre-activation with the statistics of the grid, held fixed when differentiating
    (``fold_batch_norm``). All depths come from one forward pass through the deepest network
    (the first L layers are the L-layer network), each with its own readout, all in float64.
    """
    kinds = checks.some_of("kinds", kinds, tuple(KINDS))
    depths = sorted(set(checks.positive_ints("depths", depths)))
    seeds = checks.seeds(seeds)
    width = checks.positive_int("width", width)
    n_points = checks.positive_int("n_points", n_points)
    checks.non_negative_number("bias_std", bias_std)
    grid = torch.linspace(-2.0, 2.0, n_points, dtype=torch.float64)
    rows, curves = [], []
    for kind in kinds:
        shortcut, batch_norm = KINDS[kind]
        layer_width = 200 if kind == "prince" else width
        weights, biases, readouts = _weights(kind, layer_width, depths[-1], seeds, bias_std)
        if batch_norm:
            x = grid.reshape(1, -1, 1).expand(len(seeds), -1, 1)
            weights, biases = fold_batch_norm(x, weights, biases, float(shortcut),
                                              activation="relu", normalise_last=True)

        def outputs(x, weights=weights, biases=biases, readouts=readouts, shortcut=shortcut):
            states = stacked_forward(x, weights, biases, float(shortcut), activation="relu",
                                     final_activation=True, return_states=True)
            return [states[d] @ readouts[:, d - 1, :, None] for d in depths]

        grads = input_gradients(outputs, grid, len(seeds))   # (depths, seeds, points)
        corr = neighbour_correlation(grads)
        for i, depth in enumerate(depths):
            rows.append(pd.DataFrame({
                "kind": kind, "depth": depth, "seed": seeds, "correlation": corr[i],
                "mean_abs_gradient": np.abs(grads[i]).mean(axis=-1),
            }))
            if depth in curve_depths:
                curves.append(pd.DataFrame({"kind": kind, "depth": depth,
                                            "x": grid.numpy(), "gradient": grads[i, 0]}))
    curve_frame = pd.concat(curves, ignore_index=True) if curves else pd.DataFrame(
        columns=["kind", "depth", "x", "gradient"])
    return ShatteringResult(pd.concat(rows, ignore_index=True), curve_frame, grid.numpy())


def correlation_summary(correlations: pd.DataFrame) -> pd.DataFrame:
    """Median and quartiles of the lag-1 correlation over seeds, per (kind, depth)."""
    grouped = correlations.groupby(["kind", "depth"], sort=False)["correlation"]
    return pd.DataFrame({
        "median": grouped.median(),
        "q1": grouped.quantile(0.25),
        "q3": grouped.quantile(0.75),
    })


def two_values(gradients: np.ndarray, decimals: int = 9) -> int:
    """How many distinct values (rounded to ``decimals``) a gradient takes over the grid."""
    return len(np.unique(np.round(np.asarray(gradients, dtype=np.float64), decimals)))
