"""The whole input-output Jacobian of a network, and how the gradient changes with the input.

Three measurements of a network at initialisation, beyond the size of its gradient:

- **The input-output Jacobian and its spectrum.** J = dh_L/dh_0 for one input (``input_output_
  jacobian``, by autograd); its singular values s_i (``singular_values``, float64). The vanishing-
  gradient chapter predicts the *mean* of the squared singular values, tr(J J^T)/N =
  prod_l sigma_w^2 E[phi'(a_l)^2]; Pennington, Schoenholz & Ganguli (2017, arXiv 1711.04735)
  predict their *spread* with free probability. With D_l = diag(phi'(a_l)) and W_l free, the
  normalised variance Var(lambda)/E[lambda]^2 of lambda = s^2 adds over the layers of a product
  (for free a, b: Var(ab)/E[ab]^2 = Var(a)/E[a]^2 + Var(b)/E[b]^2), and one layer D W W^T D
  contributes mu_2/mu_1^2 - 1 (the slopes, mu_k = E[phi'(a)^(2k)]) plus the normalised variance
  of W W^T: 1 for Gaussian weights (Marchenko-Pastur), 0 for orthogonal ones (at a fixed point
  q*, L (mu_2/mu_1^2 - 1 + v_W) after L layers). ``predicted_spectrum`` sums
  mu_2/mu_1^2 - 1 + v_W along the mean-field trajectory q_l of ``gradflow.signal_propagation``. Dynamical isometry (Saxe et al. 2014; Pennington et
  al. 2017) is a spectrum concentrated around 1: the sum stays near 0.
- **Shattered gradients** (Balduzzi et al. 2017, arXiv 1702.08591). For a network with one input
  and one output, ``input_gradients`` gives dy/dx at every point of a grid, and
  ``neighbour_correlation`` the Pearson correlation between the gradients at grid points ``lag``
  apart. ``balduzzi_correlation`` gives the rates of a model in the spirit of their analysis
  (derived here, not taken from their theorems), in which the two inputs' rectifier patterns are
  independent: 2^-L for a plain ReLU network, prod (1 + b_l/2)/(1 + b_l)
  for a residual one whose branch l adds b_l times the stream's variance (b_l = 1 without
  normalisation: (3/4)^L; b_l = 1/l with BatchNorm in the branch: about 1/sqrt(L)).
- **BatchNorm at evaluation time** is an affine map per unit: ``fold_batch_norm`` folds the
  statistics of one batch into each layer's weights and biases, so that the per-point derivative
  dy_i/dx_i of a BatchNorm network is defined (in training mode every output depends on the
  whole batch).

Loss-landscape slices (Li et al. 2018) are in ``gradflow.landscapes``.

Every statistic is computed in float64.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import torch

from . import activations as act
from . import checks
from .networks.stacked import stacked_forward
from .signal_propagation import gaussian_expectation, phi_prime, second_moment

WEIGHT_KINDS = {"gaussian": 1.0, "orthogonal": 0.0}   # normalised variance of W W^T


def input_output_jacobian(
    fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor
) -> torch.Tensor:
    """The Jacobian dy/dx of ``fn`` at one input per member.

    ``fn`` maps a tensor of shape ``(M, B, n)`` to ``(M, B, m)`` (M independent networks, B rows;
    ``stacked_forward`` is such a map) and is called once with B = 1; ``x`` has shape ``(M, n)``.
    Returns J of shape ``(M, m, n)`` with J[k, i, j] = dy_i/dx_j for member k, from m backward
    passes batched with ``is_grads_batched``.
    """
    if not isinstance(x, torch.Tensor) or x.dim() != 2:
        raise ValueError(f"x must be a tensor of shape (members, n), got {getattr(x, 'shape', x)}")
    point = x.detach().unsqueeze(1).clone().requires_grad_(True)
    y = fn(point)
    if y.dim() != 3 or y.shape[:2] != point.shape[:2]:
        raise ValueError(f"fn must map (M, 1, n) to (M, 1, m), got output shape {tuple(y.shape)}")
    m = y.shape[2]
    basis = torch.eye(m, dtype=y.dtype).reshape(m, 1, 1, m).expand(m, *y.shape)
    (rows,) = torch.autograd.grad(y, point, basis, is_grads_batched=True)
    return rows[:, :, 0, :].permute(1, 0, 2)


def jacobian_product(
    x: torch.Tensor,
    weights: Sequence[torch.Tensor],
    biases: Sequence[torch.Tensor],
    shortcut: float,
    *,
    activation: str,
    depths: Sequence[int] | None = None,
) -> dict[int, torch.Tensor]:
    """dh_L/dh_0 of ``stacked_forward`` networks of square layers with an activation after every
    layer (no BatchNorm), multiplied out layer by layer: J_l = (shortcut I + D_l W_l) J_{l-1},
    D_l = diag(phi'(a_l)), from the pre-activations of one forward pass at ``x`` of shape
    ``(M, n)``. One pass gives every depth in ``depths`` (default: the full depth); returns
    {depth: J of shape (M, n, n)} in ``x``'s dtype. ``input_output_jacobian`` (autograd) is the
    general tool; this is the fast one for the engine's MLPs, and the tests check the two agree.
    """
    n_layers = len(weights)
    wanted = set(checks.positive_ints("depths", depths or [n_layers]))
    if max(wanted) > n_layers:
        raise ValueError(f"depths must be <= the number of layers {n_layers}, got {sorted(wanted)}")
    if any(w.shape[1] != w.shape[2] for w in weights):
        raise ValueError("jacobian_product needs square layers")
    derivative = act.spec(activation).derivative
    with torch.no_grad():
        _, preacts = stacked_forward(x.unsqueeze(1), weights, biases, float(shortcut),
                                     activation=activation, final_activation=True,
                                     return_preacts=True)
        eye = torch.eye(x.shape[1], dtype=x.dtype)
        jac, out = eye.expand(x.shape[0], -1, -1), {}
        for layer, (w, a) in enumerate(zip(weights, preacts), start=1):
            jac = (derivative(a[:, 0, :]).unsqueeze(2) * w) @ jac + float(shortcut) * jac
            if layer in wanted:
                out[layer] = jac
            if layer == max(wanted):
                break
    return out


def critical_point(activation: str, sigma_w2: float) -> tuple[float, float]:
    """The point (q*, sigma_b^2) on the critical line of ``activation`` with this sigma_w^2: the
    fixed point q* of the length map q = sigma_w^2 E[phi(sqrt(q) z)^2] + sigma_b^2 at which
    chi = sigma_w^2 E[phi'(sqrt(q*) z)^2] = 1 (Schoenholz et al. 2017; Pennington et al. 2017
    study tanh along this line). Found by bisection for activations whose E[phi'^2] falls with q
    (tanh); needs sigma_w^2 > 1/phi'(0)^2."""
    checks.positive_number("sigma_w2", sigma_w2)
    slope = phi_prime(activation)

    def chi(q: float) -> float:
        return sigma_w2 * gaussian_expectation(lambda u: slope(u) ** 2, q)

    lo, hi = 1e-12, 1e3
    if not chi(lo) > 1.0 > chi(hi):
        raise ValueError(f"{activation} with sigma_w2={sigma_w2} has no critical point with "
                         "q* > 0 (chi must fall through 1 as q grows)")
    for _ in range(200):
        mid = math.sqrt(lo * hi)
        lo, hi = (mid, hi) if chi(mid) > 1.0 else (lo, mid)
    q_star = math.sqrt(lo * hi)
    return q_star, q_star - sigma_w2 * second_moment(activation, q_star)


def singular_values(jacobian: torch.Tensor) -> np.ndarray:
    """The singular values of each member's Jacobian, in float64, largest first: shape
    ``(M, min(m, n))``."""
    return torch.linalg.svdvals(jacobian.detach().double()).numpy()


def spectrum_moments(singular: np.ndarray) -> pd.DataFrame:
    """Per member: the mean of lambda = s^2 (tr(J J^T)/n) and its normalised variance
    Var(lambda)/E[lambda]^2, the spread that dynamical isometry keeps near 0."""
    lam = np.asarray(singular, dtype=np.float64) ** 2
    mean = lam.mean(axis=-1)
    return pd.DataFrame({"mean_sq": mean, "spread": lam.var(axis=-1) / mean**2})


def predicted_spectrum(
    activation: str,
    depth: int,
    sigma_w2: float,
    *,
    weights: str = "gaussian",
    sigma_b2: float = 0.0,
    input_second_moment: float = 1.0,
) -> pd.DataFrame:
    """Mean-field and free-probability prediction for the Jacobian of a plain network of
    ``depth`` square layers (see the module docstring).

    Returns one row per depth L = 1..depth: ``q`` (pre-activation variance of layer L),
    ``mean_sq`` (predicted E[s^2] = prod_l sigma_w^2 mu_1(q_l)) and ``spread`` (predicted
    Var(s^2)/E[s^2]^2 = sum_l mu_2(q_l)/mu_1(q_l)^2 - 1 + v_W), in float64.
    """
    act.check_activation(activation)
    checks.positive_int("depth", depth)
    checks.positive_number("sigma_w2", sigma_w2)
    checks.non_negative_number("sigma_b2", sigma_b2)
    v_w = WEIGHT_KINDS[checks.one_of("weights", weights, tuple(WEIGHT_KINDS))]
    slope = phi_prime(activation)
    rows, q, log_mean, spread = [], None, 0.0, 0.0
    for layer in range(1, depth + 1):
        previous = input_second_moment if q is None else second_moment(activation, q)
        q = sigma_w2 * previous + sigma_b2
        mu1 = gaussian_expectation(lambda u: slope(u) ** 2, q)
        mu2 = gaussian_expectation(lambda u: slope(u) ** 4, q)
        log_mean += math.log(sigma_w2 * mu1)
        spread += mu2 / mu1**2 - 1.0 + v_w
        rows.append({"depth": layer, "q": q, "mean_sq": math.exp(log_mean), "spread": spread})
    return pd.DataFrame(rows)


# --- Shattered gradients ------------------------------------------------------------------------


def fold_batch_norm(
    x: torch.Tensor,
    weights: Sequence[torch.Tensor],
    biases: Sequence[torch.Tensor],
    shortcut: torch.Tensor | float,
    *,
    activation: str,
    normalise_last: bool = False,
    eps: float = 1e-5,
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Weights and biases in which the batch ``x``'s BatchNorm statistics are folded.

    ``stacked_forward(x, W', b', shortcut, batch_norm=False)`` with the returned W', b' gives
    the same output on ``x`` as ``stacked_forward(x, weights, biases, shortcut,
    batch_norm=True)``: layer l's pre-activation a = W h + b, normalised with its mean mu and
    variance v over the B rows, is (W/sqrt(v + eps)) h + (b - mu)/sqrt(v + eps). With the
    statistics held fixed, each row's output depends on that row alone (BatchNorm at evaluation
    time), so dy_i/dx_i is defined. The last layer is not normalised, as in ``stacked_forward``,
    unless ``normalise_last`` (for a stack of hidden layers whose readout comes after it; then
    every layer also has its activation, as ``stacked_forward(..., final_activation=True)``).
    """
    if x.dim() != 3:
        raise ValueError(f"x must have shape (members, batch, in), got {tuple(x.shape)}")
    if x.shape[1] < 2:
        raise ValueError("BatchNorm statistics need a batch of at least 2 rows")
    folded_w, folded_b = [], []
    h = x.detach()
    with torch.no_grad():
        for i, (w, b) in enumerate(zip(weights, biases)):
            last = i == len(weights) - 1 and not normalise_last
            if not last:
                a = torch.baddbmm(b.unsqueeze(2), w, h.transpose(1, 2))   # (M, out, B)
                scale = torch.rsqrt(a.var(dim=2, unbiased=False) + eps)
                w, b = w * scale.unsqueeze(2), (b - a.mean(dim=2)) * scale
            folded_w.append(w)
            folded_b.append(b)
            h = stacked_forward(h, [w], [b], shortcut, activation=activation,
                                final_activation=not last)
    return folded_w, folded_b


def input_gradients(
    fn: Callable[[torch.Tensor], torch.Tensor | Sequence[torch.Tensor]], grid: torch.Tensor,
    members: int,
) -> np.ndarray:
    """dy/dx at every point of a 1-D ``grid`` for ``members`` networks with one input.

    ``fn`` maps x of shape ``(members, len(grid), 1)`` to outputs of shape ``(members,
    len(grid), 1)`` in which each row depends on its own input only (no training-mode
    BatchNorm: fold it first), or to a list of such outputs (one per probe depth; one backward
    pass each). Returns float64 gradients of shape ``(members, len(grid))``, or
    ``(outputs, members, len(grid))`` for a list.
    """
    if grid.dim() != 1 or len(grid) < 3:
        raise ValueError(f"grid must be 1-D with at least 3 points, got shape {tuple(grid.shape)}")
    checks.positive_int("members", members)
    x = grid.double().reshape(1, -1, 1).expand(members, -1, 1).clone().requires_grad_(True)
    out = fn(x)
    outputs = [out] if isinstance(out, torch.Tensor) else list(out)
    grads = []
    for k, y in enumerate(outputs):
        if y.shape != x.shape:
            raise ValueError(f"fn must return shape {tuple(x.shape)}, got {tuple(y.shape)}")
        (g,) = torch.autograd.grad(y.sum(), x, retain_graph=k < len(outputs) - 1)
        grads.append(g[..., 0].double().numpy())
    return grads[0] if isinstance(out, torch.Tensor) else np.stack(grads)


def neighbour_correlation(gradients: np.ndarray, lag: int = 1) -> np.ndarray:
    """Pearson correlation between g(x_i) and g(x_{i+lag}) over a grid, along the last axis.

    ``gradients`` has the grid last (any leading shape). For n points there are n - lag pairs,
    and at least 3 are needed (``lag <= n - 3``). Computed in float64; NaN where either
    sequence is constant (the correlation is undefined there).
    """
    g = np.asarray(gradients, dtype=np.float64)
    if g.ndim == 0:
        raise ValueError("gradients must have a grid axis")
    n = g.shape[-1]
    if isinstance(lag, bool) or not isinstance(lag, (int, np.integer)) or lag < 1:
        raise ValueError(f"lag must be a positive integer, got {lag!r}")
    if lag > n - 3:
        raise ValueError(f"lag {lag} is too long for a grid of {n} points: at most {n - 3} "
                         "(the correlation needs at least 3 pairs)")
    a, b = g[..., :-lag], g[..., lag:]
    a = a - a.mean(axis=-1, keepdims=True)
    b = b - b.mean(axis=-1, keepdims=True)
    denominator = np.sqrt((a * a).sum(axis=-1) * (b * b).sum(axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, (a * b).sum(axis=-1) / denominator, np.nan)


def balduzzi_correlation(depth: int | Sequence[int], kind: str) -> np.ndarray:
    """The gradient correlation after ``depth`` layers or blocks in a model in the spirit of
    Balduzzi et al. 2017 (this function's derivation, not their theorems).

    Two inputs whose rectifier patterns are independent (each unit on with probability 1/2 for
    each, so on for both with probability 1/4): the gradients' covariance then gains a factor
    1/4 per layer where each variance gains 1/2, so ``"plain"``: 2^-L. A residual block adds a
    branch with b_l times the stream's variance: variance x (1 + b_l), covariance
    x (1 + b_l/2), so prod_{l<=L} (1 + b_l/2)/(1 + b_l); ``"residual"``: b_l = 1, (3/4)^L;
    ``"residual_bn"``: BatchNorm makes every branch's variance 1 while the stream's grows
    linearly, b_l = 1/l, and the product is Gamma(L + 3/2)/(Gamma(3/2) Gamma(L + 2)), about
    1/sqrt(L) up to a constant.
    """
    depths = np.atleast_1d(np.asarray(depth))
    if depths.dtype.kind not in "iu" or (depths < 0).any():
        raise ValueError(f"depth must be non-negative integers, got {depth!r}")
    checks.one_of("kind", kind, ("plain", "residual", "residual_bn"), what="network kind")
    if kind == "plain":
        values = 0.5 ** depths.astype(np.float64)
    elif kind == "residual":
        values = 0.75 ** depths.astype(np.float64)
    else:
        values = np.array([math.exp(math.lgamma(d + 1.5) - math.lgamma(1.5) - math.lgamma(d + 2))
                           for d in depths])
    return values if np.ndim(depth) else values[0]
