"""Mean-field predictions of how signals and gradients travel through a deep random MLP.

For a wide layer a_l = W_l h_{l-1} + b_l, h_l = phi(a_l), with independent weights of variance
Var(W) = sigma_w^2 / fan_in and biases of variance sigma_b^2, the pre-activations a_l are close to
N(0, q_l) across units, and their variance follows the forward "length map" of Poole et al. (2016,
section 2; also Schoenholz et al. 2017, section 2)

    q_l = sigma_w^2 * E[phi(sqrt(q_{l-1}) z)^2] + sigma_b^2,        z ~ N(0, 1),
    q_1 = sigma_w^2 * m_0 + sigma_b^2                                 (m_0: the input's mean square).

Back-propagation multiplies the gradient by J_l^T = W_l^T diag(phi'(a_l)) at each layer. With the
gradient-independence assumption of mean-field back-propagation (the backward pass's weights
treated as independent of the forward pass's; Schoenholz et al. 2017), its squared norm is
multiplied on average by chi_l = sigma_w^2 * E[phi'(sqrt(q_l) z)^2] (their chi_1 at q_l), so the
norm by

    backward factor_l = sqrt(sigma_w^2 * E[phi'(sqrt(q_l) z)^2]),

and ||dL/dh_1|| / ||dL/dh_L|| = prod_{l=2..L} factor_l. The expectations are computed by
Gauss-Hermite quadrature (``numpy.polynomial.hermite_e.hermegauss``), which is exact to about
1e-11 for q <= 2 with 256 nodes; for larger q the integrand phi(sqrt(q) z) has features narrower
than the nodes' spacing, so a composite Gauss-Legendre rule that resolves them is used instead.
Both are checked against ``scipy.integrate.quad`` and Monte Carlo in the tests.

At PyTorch's default initialisation Var(W) = 1/(3 fan_in), so sigma_w^2 = 1/3, and the bias
variance 1/(3 fan_in) is not zero (see ``gradflow.networks.mlp``). phi and phi' come from the
activation registry, ``gradflow.activations``, in their float64 numpy forms.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import cache
from itertools import pairwise

import numpy as np
import pandas as pd
import torch
from numpy.polynomial.hermite_e import hermegauss
from numpy.polynomial.legendre import leggauss

from . import activations as act
from .networks.mlp import bias_variance, check_init, resolve_widths, sigma_w2
from .networks.stacked import batched_profiles

#: Quadrature settings (see the module docstring).
HERMITE_NODES = 256
HERMITE_MAX_Q = 2.0
_LEGENDRE_NODES = 8
_Z_MAX = 10.0            # N(0, 1) mass beyond |z| = 10 is about 1.5e-23
_FINE_U = 20.0           # the activations' features lie within |u| < 20 ...
_FINE_PANEL_U = 0.5      # ... and are resolved by panels this wide in u
_COARSE_PANEL_Z = 0.25   # elsewhere panels this wide in z resolve the Gaussian



def phi(activation: str) -> Callable[[np.ndarray], np.ndarray]:
    """phi in float64 numpy, from the registry ``gradflow.activations``."""
    return act.spec(activation).np_fn


def phi_prime(activation: str) -> Callable[[np.ndarray], np.ndarray]:
    """phi' in float64 numpy (closed form), from the registry ``gradflow.activations``."""
    return act.spec(activation).np_derivative


@cache
def _hermite_rule() -> tuple[np.ndarray, np.ndarray]:
    nodes, weights = hermegauss(HERMITE_NODES)   # weight function exp(-z^2 / 2)
    return nodes, weights / math.sqrt(2.0 * math.pi)


@cache
def _legendre_rule() -> tuple[np.ndarray, np.ndarray]:
    return leggauss(_LEGENDRE_NODES)


@cache
def _panel_rule(q: float) -> tuple[np.ndarray, np.ndarray]:
    """Composite Gauss-Legendre nodes and weights for E over z ~ N(0, 1), density included."""
    s = math.sqrt(q)
    fine = min(_FINE_U / s, _Z_MAX)
    n_fine = max(1, math.ceil(fine * s / _FINE_PANEL_U))
    n_coarse = math.ceil((_Z_MAX - fine) / _COARSE_PANEL_Z)
    half = np.concatenate([np.linspace(0.0, fine, n_fine + 1), np.linspace(fine, _Z_MAX, n_coarse + 1)[1:]])
    edges = np.concatenate([-half[::-1], half[1:]])   # 0 is an edge: ReLU's kink falls between nodes
    x, w = _legendre_rule()
    left, right = edges[:-1, None], edges[1:, None]
    nodes = (0.5 * (right - left) * x + 0.5 * (right + left)).ravel()
    weights = (0.5 * (right - left) * w).ravel() * act.np_normal_pdf(nodes)
    return nodes, weights


def gaussian_expectation(f: Callable[[np.ndarray], np.ndarray], q: float) -> float:
    """E[f(sqrt(q) z)] for z ~ N(0, 1), by quadrature (Gauss-Hermite for q <= 2, else panels).

    ``f`` must accept and return float64 numpy arrays. ``q`` is a variance (>= 0).
    """
    q = float(q)
    if not q >= 0 or not math.isfinite(q):
        raise ValueError(f"q must be a finite variance >= 0, got {q!r}")
    if q <= HERMITE_MAX_Q:
        nodes, weights = _hermite_rule()
    else:
        nodes, weights = _panel_rule(q)
    return float(np.dot(weights, f(math.sqrt(q) * nodes)))


def second_moment(activation: str, q: float) -> float:
    """E[phi(a)^2] for a ~ N(0, q): the mean square of a layer's output."""
    f = phi(activation)
    return gaussian_expectation(lambda u: f(u) ** 2, q)


def derivative_second_moment(activation: str, q: float) -> float:
    """E[phi'(a)^2] for a ~ N(0, q)."""
    df = phi_prime(activation)
    return gaussian_expectation(lambda u: df(u) ** 2, q)


def variance_map(activation: str, q_prev: float, sigma_w2: float, sigma_b2: float) -> float:
    """q_l = sigma_w^2 E[phi(sqrt(q_{l-1}) z)^2] + sigma_b^2 (the length map of Poole et al. 2016)."""
    return sigma_w2 * second_moment(activation, q_prev) + sigma_b2


def backward_factor(activation: str, q: float, sigma_w2: float) -> float:
    """sqrt(sigma_w^2 E[phi'(sqrt(q) z)^2]): the expected shrink (< 1) or growth (> 1) of the
    back-propagated gradient's norm through one layer whose pre-activations have variance q
    (the square root of chi_1 of Schoenholz et al. 2017, evaluated at q)."""
    if not sigma_w2 >= 0:
        raise ValueError(f"sigma_w2 must be >= 0, got {sigma_w2!r}")
    return math.sqrt(sigma_w2 * derivative_second_moment(activation, q))


def predict_layers(
    activation: str,
    init: str,
    widths: Sequence[int] | None = None,
    *,
    depth: int | None = None,
    width: int | None = None,
    gain: float = 1.0,
    bias_init: str | float | None = None,
    input_second_moment: float = 1.0,
) -> pd.DataFrame:
    """Mean-field prediction, layer by layer, for the network ``DeepMLP`` builds with these args.

    ``widths`` (input first) or ``depth`` square layers of ``width`` units, as in ``DeepMLP``.
    Layer l has sigma_w^2 = fan_in Var(W_l) and sigma_b^2 = Var(b_l) of its own fan-in, and
    q_1 = sigma_w^2 * ``input_second_moment`` + sigma_b^2.

    Returns one row per layer l = 1..L with columns ``q`` (pre-activation variance q_l),
    ``output_second_moment`` (E[h_l^2]), ``backward_factor`` (sqrt(chi_l): the factor by which
    layer l's Jacobian scales ||dL/dh_l|| into ||dL/dh_{l-1}||) and ``signal_ratio`` (predicted
    ||dL/dh_l|| / ||dL/dh_L|| = prod_{k=l+1..L} backward_factor_k).
    """
    act.check_activation(activation)
    init = check_init(init)
    sizes = resolve_widths(widths, depth, width)
    q, rows = None, []
    for layer, (n_in, n_out) in enumerate(pairwise(sizes), start=1):
        sw2 = sigma_w2(init, n_in, n_out, gain)
        sb2 = bias_variance(bias_init, init, n_in)
        previous = float(input_second_moment) if q is None else second_moment(activation, q)
        q = sw2 * previous + sb2
        rows.append({
            "layer": layer,
            "q": q,
            "output_second_moment": second_moment(activation, q),
            "backward_factor": backward_factor(activation, q, sw2),
        })
    table = pd.DataFrame(rows).set_index("layer")
    log_factors = np.log(table["backward_factor"].to_numpy())
    # ratio at layer l: product of the factors of layers l+1..L
    table["signal_ratio"] = np.exp(np.concatenate([np.cumsum(log_factors[::-1])[::-1][1:], [0.0]]))
    return table


def mean_backward_factor(prediction: pd.DataFrame) -> float:
    """Geometric mean of the predicted factors of layers 2..depth: (||dL/dh_1|| / ||dL/dh_L||)
    ** (1 / (L - 1)), the number to compare with a measured mean per-layer factor."""
    factors = prediction["backward_factor"].to_numpy()[1:]
    if len(factors) == 0:
        raise ValueError("a mean factor needs at least two layers")
    return float(np.exp(np.mean(np.log(factors))))


def small_signal_factor(
    activation: str, init: str, gain: float = 1.0, *, fan_in: int = 1, fan_out: int = 1
) -> float:
    """|phi'(0)| * sqrt(sigma_w^2): the backward factor in the small-signal limit q -> 0.

    For a square layer (the default fans) sigma_w^2 is 1/3 at PyTorch's default init, 1 for
    Xavier and 2 for Kaiming, times gain^2.
    """
    dphi0 = float(phi_prime(activation)(np.array([0.0]))[0])
    return abs(dphi0) * math.sqrt(sigma_w2(init, fan_in, fan_out, gain))


def loss_shares(measured_factors: Sequence[float], activation: str, init: str, *,
                fan_in: int = 1, fan_out: int = 1) -> dict[str, float]:
    """Split the per-layer loss of a gradient into the initialisation's share and the activation's.

    On a log scale a layer's backward factor is ln(sigma_w) + ln(effective slope), with sigma_w the
    weights' scale (``sigma_w2``) and the effective slope sqrt(E[phi'(a)^2]). In the small-signal
    limit the slope is |phi'(0)| (``small_signal_factor``); measured, it is what is left of the
    geometric mean of ``measured_factors`` once ln(sigma_w) is taken out.

    Returns: ``small`` (the small-signal factor), ``ln_init`` = ln(sigma_w), ``ln_slope`` =
    ln|phi'(0)|, ``share_small`` (the slope's share of the small-signal log-loss), ``meas`` and
    ``ln_meas`` (the measured factor, geometric mean, and its log), ``ln_act`` = ln_meas - ln_init
    (the effective slope's log) and ``share_meas`` (the slope's share of the measured log-loss).
    """
    factors = np.asarray(measured_factors, dtype=float)
    if factors.size == 0 or not np.all(np.isfinite(factors) & (factors > 0)):
        raise ValueError(f"measured_factors must be positive finite numbers, got {factors[:5]}")
    ln_init = 0.5 * math.log(sigma_w2(init, fan_in, fan_out))
    small = small_signal_factor(activation, init, fan_in=fan_in, fan_out=fan_out)
    ln_slope = math.log(small) - ln_init
    ln_meas = float(np.mean(np.log(factors)))
    return {"small": small, "ln_slope": ln_slope, "ln_init": ln_init,
            "share_small": ln_slope / (ln_slope + ln_init), "meas": math.exp(ln_meas),
            "ln_meas": ln_meas, "ln_act": ln_meas - ln_init, "share_meas": 1 - ln_init / ln_meas}


def narrow_network_factors(
    widths: Sequence[int],
    activation: str,
    init: str,
    inputs: torch.Tensor,
    seeds: Sequence[int],
    highlight_seed: int,
) -> pd.DataFrame:
    """Per-layer backward factors of a small network (such as the seed's), predicted and measured.

    The loss is the seed notebook's (MSE against zeros, float64). For each layer l = 2..L the
    factor is ||dL/dh_{l-1}|| / ||dL/dh_l||, the effect of layer l's Jacobian. Columns:
    ``small_signal`` (|phi'(0)| sqrt(sigma_w^2)), ``predicted`` (mean-field, at the layer's
    predicted q_l, with the inputs' mean square), ``seed`` (the factor in ``highlight_seed``'s
    network), ``rms`` (root mean square over ``seeds``: mean-field predicts mean squares),
    ``median`` (over seeds), and the seed notebook's statistic: ``weight_seed`` and
    ``weight_median``, the ratio mean|dL/dW_{l-1}| / mean|dL/dW_l|. Networks whose gradient is
    exactly zero (every unit of some layer dead) are left out; ``dead`` counts them.
    """
    all_seeds = list(dict.fromkeys([*seeds, highlight_seed]))
    frame = batched_profiles(widths, activation, init, all_seeds, inputs=inputs, loss="mse")
    signal = frame.pivot(index="seed", columns="layer", values="signal_norm")
    weight = frame.pivot(index="seed", columns="layer", values="weight_grad_mean_abs")
    alive = (signal > 0).all(axis=1) & (weight > 0).all(axis=1)
    population = alive.loc[list(seeds)]
    s = signal.loc[population[population].index].to_numpy()
    w = weight.loc[population[population].index].to_numpy()
    s_ratio, w_ratio = s[:, :-1] / s[:, 1:], w[:, :-1] / w[:, 1:]
    hs, hw = signal.loc[highlight_seed].to_numpy(), weight.loc[highlight_seed].to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        seed_s, seed_w = hs[:-1] / hs[1:], hw[:-1] / hw[1:]
    second = float(inputs.double().pow(2).mean())
    prediction = predict_layers(activation, init, widths, input_second_moment=second)
    n_layers = len(widths) - 1
    small = [small_signal_factor(activation, init, fan_in=widths[i], fan_out=widths[i + 1])
             for i in range(n_layers)]
    table = pd.DataFrame({
        "layer": np.arange(2, n_layers + 1),
        "small_signal": small[1:],
        "predicted": prediction["backward_factor"].to_numpy()[1:],
        "seed": seed_s,
        "rms": np.sqrt(np.mean(s_ratio**2, axis=0)),
        "median": np.median(s_ratio, axis=0),
        "weight_seed": seed_w,
        "weight_median": np.median(w_ratio, axis=0),
    }).set_index("layer")
    table.attrs["dead"] = int((~population).sum())
    table.attrs["seeds"] = len(population)
    return table
