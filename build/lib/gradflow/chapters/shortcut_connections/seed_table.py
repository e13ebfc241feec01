"""The tutorial's table over many seeds: the seed notebook's experiment for a thousand seeds in
one batched pass, and what its first-layer ratio looks like raw and divided by |dL/dy|. Part of the
chapter "Shortcut connections" (``book/shortcut_connections.md``)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from ... import checks
from ...networks.stacked import draw_stacked_weights, stacked_forward
from ...tutorial import SEED, SEED_LAYER_SIZES, check_layer_sizes, default_input


def many_seed_comparison(
    seeds: Sequence[int] = range(1000),
    layer_sizes: Sequence[int] = SEED_LAYER_SIZES,
    x: torch.Tensor | None = None,
) -> pd.DataFrame:
    """The seed notebook's experiment for every seed in ``seeds``, in one batched pass.

    For each seed: the seed's network without and with shortcuts (same weights, as after
    ``torch.manual_seed(seed)``), input ``x`` (default ``[[1., 0., -1.]]``), MSE loss against a
    zero target, mean |dL/dW| of the first and last layer. Computed in float64 from the float32
    weights, so it agrees with ``compare_shortcuts(seed)`` up to float32 rounding.

    With one output, L = y^2 and dL/dy = 2y, and every gradient is dL/dy times the corresponding
    gradient of y. So ``ratio_raw = first_shortcut / first_plain`` mixes two effects, while
    ``ratio_normalised = (first_shortcut / |dL/dy_shortcut|) / (first_plain / |dL/dy_plain|)``
    compares only how the gradient travels from y to the first layer.

    Returns one row per seed (index ``seed``) with columns ``y_plain, y_shortcut, loss_plain,
    loss_shortcut, dldy_plain, dldy_shortcut, first_plain, last_plain, first_shortcut,
    last_shortcut, ratio_raw, ratio_normalised``. A ratio is NaN where it is 0/0: in deep
    networks the last GELU can saturate so that y = 0 and every gradient is exactly zero.
    """
    sizes = check_layer_sizes(list(layer_sizes))
    if sizes[-1] != 1:
        raise ValueError(f"many_seed_comparison needs one output (layer_sizes[-1] == 1), got {sizes}")
    seeds = checks.seeds(seeds)
    x = default_input(x, sizes[0])
    if x.shape != (1, sizes[0]):
        raise ValueError(f"x must be one input row of shape (1, {sizes[0]}), got {tuple(x.shape)}")
    n = len(seeds)
    w32, b32 = draw_stacked_weights(sizes, seeds)
    # Members 0..n-1 are the plain networks, n..2n-1 the shortcut networks, with the same weights.
    weights = [torch.cat([w, w]).double().requires_grad_(True) for w in w32]
    biases = [torch.cat([b, b]).double() for b in b32]
    gate = torch.cat([torch.zeros(n), torch.ones(n)])
    xs = x.double().expand(2 * n, *x.shape)
    y = stacked_forward(xs, weights, biases, gate)
    loss = y.pow(2).mean(dim=(1, 2))           # nn.MSELoss against zeros, per member
    grads = torch.autograd.grad(loss.sum(), [weights[0], weights[-1]])
    first, last = (g.abs().mean(dim=(1, 2)) for g in grads)
    y_mean = y.detach().reshape(-1)
    dldy = 2.0 * y_mean
    frame = pd.DataFrame({
        "seed": seeds,
        "y_plain": y_mean[:n].numpy(),
        "y_shortcut": y_mean[n:].numpy(),
        "loss_plain": loss.detach()[:n].numpy(),
        "loss_shortcut": loss.detach()[n:].numpy(),
        "dldy_plain": dldy[:n].numpy(),
        "dldy_shortcut": dldy[n:].numpy(),
        "first_plain": first[:n].numpy(),
        "last_plain": last[:n].numpy(),
        "first_shortcut": first[n:].numpy(),
        "last_shortcut": last[n:].numpy(),
    }).set_index("seed")
    frame["ratio_raw"] = frame["first_shortcut"] / frame["first_plain"]
    frame["ratio_normalised"] = (
        (frame["first_shortcut"] / frame["dldy_shortcut"].abs())
        / (frame["first_plain"] / frame["dldy_plain"].abs())
    )
    return frame


def ratio_summary(frame: pd.DataFrame, seed: int = SEED) -> pd.DataFrame:
    """Median, quartiles and share above one of ``ratio_raw`` and ``ratio_normalised``.

    Also where ``seed`` falls: its value and its percentile (the share of seeds with a smaller
    ratio, in percent). Seeds whose ratio is undefined (NaN, see ``many_seed_comparison``) are
    left out and counted in ``n_undefined``. Returns one row per ratio.
    """
    if seed not in frame.index:
        raise ValueError(f"seed {seed} is not among the {len(frame)} seeds of the comparison")
    rows = {}
    for column in ("ratio_raw", "ratio_normalised"):
        values = frame[column].to_numpy(dtype=float)
        defined = values[~np.isnan(values)]
        at_seed = float(frame.loc[seed, column])
        rows[column] = {
            "median": float(np.median(defined)),
            "q1": float(np.quantile(defined, 0.25)),
            "q3": float(np.quantile(defined, 0.75)),
            "share_above_one": float(np.mean(defined > 1.0)),
            "seed_value": at_seed,
            "seed_percentile": float(100.0 * np.mean(defined < at_seed)),
            "n_undefined": int(len(values) - len(defined)),
        }
    return pd.DataFrame(rows).T
