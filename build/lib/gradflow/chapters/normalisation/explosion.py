"""BatchNorm in a deep plain network: the gradient explodes towards the input at initialisation
(Yang et al. 2019). Part of the chapter "Normalisation" (``book/normalisation.md``).

The networks are ``gradflow.networks.stacked``'s batched MLPs with ``batch_norm``: layer l computes
h_l = phi(BN(W_l h_{l-1} + b_l)), training-mode BatchNorm without affine parameters, for many
seeds at once. The loss is a fixed random readout of the last hidden layer, <r, h_D>, so that
the gradient's size at the top does not depend on the network; the statistic is the squared
norm of dL/dh_l over the whole batch, in float64.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from ... import checks
from ...networks.mlp import sigma_w2
from ...networks.stacked import draw_stacked_weights, stacked_forward
from ...normalisation import batch_norm_gradient_growth
from ...signal_propagation import backward_factor

#: The activations of the measurement: ReLU, tanh and a linear network.
ACTIVATIONS = ("relu", "tanh", "identity")


def squared_gradient_norms(activation: str, *, depth: int, width: int, batch: int,
                           seeds: Sequence[int], init: str = "kaiming", gain: float = 1.0,
                           batch_norm: bool = True) -> np.ndarray:
    """||dL/dh_l||^2 for l = 0 (the input) .. depth - 1, one row per seed: shape (seeds, depth).

    The network has ``depth`` BatchNorm layers of ``width`` units (with ``batch_norm=False``
    the same layers, weights and data without BatchNorm); the inputs are
    ``randn(batch, width)`` and the readout ``randn(batch, width)``, drawn after each seed's
    weights from the same generator.
    """
    depth, width, batch = (checks.positive_int(n, v) for n, v in
                           (("depth", depth), ("width", width), ("batch", batch)))
    if batch < 2:
        raise ValueError(f"batch must be at least 2 for BatchNorm's batch statistics, got {batch}")
    seeds = checks.seeds(seeds)
    x = torch.empty(len(seeds), batch, width)
    readout = torch.empty(len(seeds), batch, width)

    def draw_data(s: int, generator: torch.Generator) -> None:
        x[s] = torch.randn(batch, width, generator=generator)
        readout[s] = torch.randn(batch, width, generator=generator)

    # depth + 1 layers: stacked_forward leaves the last layer un-normalised (a linear readout);
    # the measured network is the first ``depth`` layers, every one with BatchNorm.
    weights, biases = draw_stacked_weights([width] * (depth + 2), seeds, init, gain,
                                           then=draw_data, dtype=torch.float64)
    inputs = x.double().requires_grad_(True)
    states = stacked_forward(inputs, weights, biases, 0.0, activation=activation,
                             batch_norm=bool(batch_norm), return_states=True)
    grads = torch.autograd.grad(states[depth], states[:depth], readout.double())
    return torch.stack([g.pow(2).sum(dim=(1, 2)) for g in grads], 1).numpy()


def growth_rate(squared_norms: np.ndarray, skip_top: int = 5, skip_bottom: int = 1) -> float:
    """The per-layer growth factor of the squared gradient norm towards the input: exp(-slope)
    of a least-squares line through the median over seeds of log ||dL/dh_l||^2 against l,
    leaving out the ``skip_top`` layers nearest the readout (a transient) and the
    ``skip_bottom`` nearest the input (the input x is not a normalised layer's output, so the
    first layer's factor differs)."""
    logs = np.median(np.log(squared_norms), axis=0)
    layers = np.arange(len(logs))
    keep = (layers < len(logs) - skip_top) & (layers >= skip_bottom)
    return float(np.exp(-np.polyfit(layers[keep], logs[keep], 1)[0]))


def explosion_by_activation(activations: Sequence[str] = ACTIVATIONS, *, depth: int = 40,
                            width: int = 256, batch: int = 256, seeds: Sequence[int] = (0, 1, 2)
                            ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The gradient profile and its growth rate for each activation, beside the large-width,
    large-batch prediction ``batch_norm_gradient_growth``.

    Returns ``(profiles, rates)``: profiles has one row per (activation, seed, layer) with
    ``squared_norm``; rates one row per activation with ``measured`` and ``predicted``.
    """
    frames, rows = [], []
    for activation in activations:
        sq = squared_gradient_norms(activation, depth=depth, width=width, batch=batch, seeds=seeds)
        frames.append(pd.DataFrame({
            "activation": activation, "seed": np.repeat(list(seeds), depth),
            "layer": np.tile(np.arange(depth), len(seeds)), "squared_norm": sq.ravel()}))
        rows.append({"activation": activation, "measured": growth_rate(sq),
                     "predicted": batch_norm_gradient_growth(activation)})
    return pd.concat(frames, ignore_index=True), pd.DataFrame(rows).set_index("activation")


def explosion_sweep(activation: str = "relu", *, batches: Sequence[int] = (4, 8, 16, 64, 256),
                    widths: Sequence[int] = (16, 64, 256), depth: int = 30,
                    seeds: Sequence[int] = (0, 1, 2)) -> pd.DataFrame:
    """The measured growth rate for every (batch size, width): one row each, with the
    large-width, large-batch prediction in ``predicted``."""
    rows = []
    for width in checks.positive_ints("widths", widths):
        for batch in checks.positive_ints("batches", batches):
            sq = squared_gradient_norms(activation, depth=depth, width=width, batch=batch,
                                        seeds=seeds)
            rows.append({"width": width, "batch": batch, "measured": growth_rate(sq),
                         "predicted": batch_norm_gradient_growth(activation)})
    return pd.DataFrame(rows)


def initialisation_independence(gains: Sequence[float] = (0.25, 1.0, 4.0), *, depth: int = 30,
                                width: int = 128, batch: int = 128,
                                seeds: Sequence[int] = (0, 1, 2)) -> pd.DataFrame:
    """The ReLU network's growth rate at PyTorch's default, Xavier and Kaiming initialisations,
    each scaled by every gain: BatchNorm divides out the weights' scale, so none changes it."""
    rows = []
    for init in ("default", "xavier", "kaiming"):
        for gain in gains:
            sq = squared_gradient_norms("relu", depth=depth, width=width, batch=batch,
                                        seeds=seeds, init=init, gain=gain)
            rows.append({"init": init, "gain": float(gain), "measured": growth_rate(sq)})
    return pd.DataFrame(rows)


def with_and_without_batch_norm(inits: Sequence[str] = ("kaiming", "default"), *, depth: int = 30,
                                width: int = 128, batch: int = 128,
                                seeds: Sequence[int] = (0, 1, 2)) -> pd.DataFrame:
    """The ReLU network's growth rate of ||dL/dh_l||^2 per layer without and with BatchNorm, for
    each initialisation: the same weights, inputs and readout, with BatchNorm switched off and on.

    One row per (``init``, ``batch_norm``) with ``measured`` and ``predicted``: without BatchNorm
    the mean-field factor sigma_w^2 E[relu'(z)^2] = sigma_w^2 / 2 (``backward_factor`` squared;
    for ReLU it does not depend on the pre-activations' variance), with it
    ``batch_norm_gradient_growth("relu")`` = pi / (pi - 1), which has no sigma_w in it.
    """
    rows = []
    for init in inits:
        for batch_norm in (False, True):
            sq = squared_gradient_norms("relu", depth=depth, width=width, batch=batch,
                                        seeds=seeds, init=init, batch_norm=batch_norm)
            predicted = (batch_norm_gradient_growth("relu") if batch_norm else
                         backward_factor("relu", 1.0, sigma_w2(init, width, width)) ** 2)
            rows.append({"init": init, "batch_norm": batch_norm, "measured": growth_rate(sq),
                         "predicted": predicted})
    return pd.DataFrame(rows)
