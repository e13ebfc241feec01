"""The singular values of the input-output Jacobian at initialisation (Pennington, Schoenholz &
Ganguli 2017): ReLU and tanh, Gaussian and orthogonal weights, plain and residual. Part of the
chapter "What shortcuts fix when gradients do not vanish" (``book/what_shortcuts_fix.md``)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from ... import checks
from ...jacobians import critical_point, jacobian_product, predicted_spectrum, singular_values
from ...networks.stacked import draw_stacked_weights
from ...signal_propagation import second_moment

#: tanh's sigma_w^2 on the critical line: q* about 0.026, sigma_b^2 about 2e-5.
TANH_SIGMA_W2 = 1.05


@dataclass(frozen=True)
class SpectrumConfig:
    """One network family: activation, weight distribution and sigma_w^2, shortcuts."""

    label: str
    activation: str
    weights: str          # "gaussian" or "orthogonal"
    sigma_w2: float
    residual: bool = False

    @property
    def bias_and_input(self) -> tuple[float, float]:
        """sigma_b^2 and the input's mean square: for tanh the critical point with this
        sigma_w^2 and its fixed point's E[phi^2] (so every layer sits at q*); for ReLU (critical
        at sigma_w^2 = 2 for every q) no bias and a standard normal input."""
        if self.activation == "relu":
            return 0.0, 1.0
        q_star, sigma_b2 = critical_point(self.activation, self.sigma_w2)
        return sigma_b2, second_moment(self.activation, q_star)

    @property
    def init_and_gain(self) -> tuple[str, float]:
        """The engine's initialisation and gain that give this sigma_w^2 (zero biases)."""
        if self.weights == "orthogonal":
            return "orthogonal", math.sqrt(self.sigma_w2)
        return "kaiming", math.sqrt(self.sigma_w2 / 2.0)   # Kaiming's N(0, 2/fan_in) rescaled


#: The families the chapter compares: each at a critical point (chi = sigma_w^2 E[phi'^2] = 1 at
#: the fixed point q* for tanh, at every q for ReLU), and the residual ReLU network as Kaiming
#: draws it.
CONFIGS = (
    SpectrumConfig("ReLU, Gaussian", "relu", "gaussian", 2.0),
    SpectrumConfig("ReLU, orthogonal", "relu", "orthogonal", 2.0),
    SpectrumConfig("tanh, Gaussian", "tanh", "gaussian", TANH_SIGMA_W2),
    SpectrumConfig("tanh, orthogonal", "tanh", "orthogonal", TANH_SIGMA_W2),
    SpectrumConfig("residual ReLU, Gaussian", "relu", "gaussian", 2.0, residual=True),
    SpectrumConfig("residual ReLU, branch / sqrt(50)", "relu", "gaussian", 2.0 / 50,
                   residual=True),
)


@dataclass(frozen=True)
class SpectrumResult:
    """``moments``: one row per (config, depth, seed) with ``mean_sq`` (E[s^2]) and ``spread``
    (Var(s^2)/E[s^2]^2), beside the prediction (``predicted_mean_sq``, ``predicted_spread``; NaN
    for residual networks, which the free-probability formula does not cover);
    ``singular``: every singular value, one row per (config, depth, seed, index)."""

    moments: pd.DataFrame
    singular: pd.DataFrame


def jacobian_spectra(
    configs: Sequence[SpectrumConfig] = CONFIGS,
    depths: Sequence[int] = (5, 10, 25, 50),
    seeds: Sequence[int] = (0, 1, 2, 3),
    *,
    width: int = 128,
) -> SpectrumResult:
    """Singular values of J = dh_L/dh_0 for networks of ``depth`` square layers of ``width``
    units (biases from ``bias_and_input``, activation after every layer, h_l = h_{l-1} +
    phi(W h_{l-1} + b) for the residual ones) at one input x ~ N(0, m_0 I) per seed (drawn after
    the weights, from the seed's generator), in float64; one pass gives every depth."""
    depths = sorted(set(checks.positive_ints("depths", depths)))
    seeds = checks.seeds(seeds)
    width = checks.positive_int("width", width)
    rows, values = [], []
    for config in configs:
        init, gain = config.init_and_gain
        sigma_b2, m0 = config.bias_and_input
        x = torch.empty(len(seeds), width)

        def draw_input(s: int, generator: torch.Generator, x: torch.Tensor = x) -> None:
            x[s] = torch.randn(width, generator=generator)

        weights, biases = draw_stacked_weights([width] * (depths[-1] + 1), seeds, init, gain,
                                               math.sqrt(sigma_b2), then=draw_input)
        weights, biases = [w.double() for w in weights], [b.double() for b in biases]
        prediction = None if config.residual else predicted_spectrum(
            config.activation, depths[-1], config.sigma_w2, weights=config.weights,
            sigma_b2=sigma_b2, input_second_moment=m0,
        ).set_index("depth")
        jacobians = jacobian_product(x.double() * math.sqrt(m0), weights, biases,
                                     float(config.residual), activation=config.activation,
                                     depths=depths)
        for depth in depths:
            s = singular_values(jacobians[depth])
            lam = s**2
            mean = lam.mean(axis=1)
            rows.append(pd.DataFrame({
                "config": config.label, "depth": depth, "seed": seeds, "mean_sq": mean,
                "spread": lam.var(axis=1) / mean**2,
                "predicted_mean_sq": np.nan if prediction is None
                else prediction.loc[depth, "mean_sq"],
                "predicted_spread": np.nan if prediction is None
                else prediction.loc[depth, "spread"],
            }))
            values.append(pd.DataFrame({
                "config": config.label, "depth": depth,
                "seed": np.repeat(seeds, s.shape[1]), "singular_value": s.ravel(),
            }))
    return SpectrumResult(pd.concat(rows, ignore_index=True), pd.concat(values, ignore_index=True))


def moments_summary(moments: pd.DataFrame) -> pd.DataFrame:
    """Median over seeds of every column, per (config, depth)."""
    return moments.drop(columns="seed").groupby(["config", "depth"], sort=False).median()
