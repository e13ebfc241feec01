"""Where two of PyTorch's initialisation constants come from, and what they do: ``nn.Linear``'s
default ``kaiming_uniform_(a=sqrt(5))`` and ``calculate_gain("tanh") = 5/3``. Part of the chapter
"Vanishing and exploding gradients" (``book/vanishing_gradients.md``).

``kaiming_uniform_(w, a)`` draws W ~ U(-bound, bound) with bound = sqrt(3) * gain / sqrt(fan_in)
and gain = sqrt(2 / (1 + a^2)), the leaky-ReLU gain of He et al. (2015, "Delving deep into
rectifiers", their Eq. 15 with negative slope a). With a = sqrt(5) the gain is sqrt(1/3), the
bound 1/sqrt(fan_in) and Var(W) = bound^2 / 3 = 1/(3 fan_in): PyTorch's default, the
``"default"`` initialisation of ``gradflow.networks.mlp``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.optimize import brentq

from ... import checks
from ...activations import check_activation
from ...signal_propagation import mean_backward_factor, predict_layers, second_moment

#: The negative slope ``nn.Linear.reset_parameters`` passes to ``kaiming_uniform_``.
LINEAR_DEFAULT_SLOPE = math.sqrt(5.0)
#: ``torch.nn.init.calculate_gain("tanh")``: PyTorch's recommended gain for tanh.
TANH_GAIN = 5.0 / 3.0


def leaky_relu_gain(negative_slope: float) -> float:
    """sqrt(2 / (1 + a^2)): the gain He et al. (2015) derive for a leaky ReLU of slope a."""
    a = checks.non_negative_number("negative_slope", negative_slope)
    return math.sqrt(2.0 / (1.0 + a * a))


def kaiming_uniform_bound(fan_in: int, negative_slope: float) -> float:
    """The bound of ``kaiming_uniform_(w, a=negative_slope)`` (fan-in mode): sqrt(3) * gain /
    sqrt(fan_in), so that U(-bound, bound) has the variance gain^2 / fan_in."""
    fan_in = checks.positive_int("fan_in", fan_in)
    return math.sqrt(3.0) * leaky_relu_gain(negative_slope) / math.sqrt(fan_in)


def kaiming_uniform_variance(fan_in: int, negative_slope: float) -> float:
    """Var(W) under ``kaiming_uniform_(w, a=negative_slope)``: bound^2 / 3 = gain^2 / fan_in."""
    return kaiming_uniform_bound(fan_in, negative_slope) ** 2 / 3.0


def fixed_point_gain(activation: str, q: float = 1.0) -> float:
    """The gain g of a square Xavier layer with zero biases (sigma_w^2 = g^2) whose length map
    has the fixed point q: q = g^2 E[phi(sqrt(q) z)^2], so g = sqrt(q / E[phi(sqrt(q) z)^2])."""
    check_activation(activation)
    q = checks.positive_number("q", q)
    return math.sqrt(q / second_moment(activation, q))


def gain_scan(activation: str, gains: Sequence[float], *, depth: int = 50,
              width: int = 256) -> pd.DataFrame:
    """The length map's prediction for a square Xavier network (zero biases) at each gain: one
    row per gain with the pre-activation variance ``q_last`` and the output's standard deviation
    ``output_std`` at the last layer, the ``mean_factor`` per layer (``mean_backward_factor``)
    and ``log10_growth``, the decades the gradient changes by from the last layer to the first."""
    check_activation(activation)
    depth = checks.positive_int("depth", depth)
    if depth < 2:
        raise ValueError(f"depth must be at least 2 for a mean factor, got {depth}")
    rows = []
    for gain in gains:
        gain = checks.positive_number("every gain", gain)
        predicted = predict_layers(activation, "xavier", depth=depth, width=width, gain=gain)
        factor = mean_backward_factor(predicted)
        rows.append({"gain": gain, "q_last": float(predicted["q"].iloc[-1]),
                     "output_std": math.sqrt(predicted["output_second_moment"].iloc[-1]),
                     "mean_factor": factor, "log10_growth": (depth - 1) * math.log10(factor)})
    return pd.DataFrame(rows)


def critical_gain(activation: str, *, depth: int = 50, width: int = 256,
                  bracket: tuple[float, float] = (0.5, 4.0)) -> float:
    """The gain at which the predicted mean factor of a square Xavier network is exactly 1."""
    def excess(gain: float) -> float:
        return float(gain_scan(activation, [gain], depth=depth, width=width)["mean_factor"].iloc[0]) - 1
    return float(brentq(excess, *bracket, xtol=1e-6))


def layer_variances(sweep: pd.DataFrame) -> pd.DataFrame:
    """The measured pre-activation second moment per (gain, layer), geometric mean over the
    sweep's seeds (a ``gradient_sweep`` frame), beside nothing else: the length map's q."""
    checks.columns(sweep, ["gain", "layer", "preact_second_moment"], "layer_variances")
    logs = np.log(sweep["preact_second_moment"])
    return np.exp(logs.groupby([sweep["gain"], sweep["layer"]]).mean()).rename("q").reset_index()
