"""The three normalisers of deep networks, written from their definitions, and what they do to a
gradient.

For a vector x with d entries (the features of one example, or one feature over a batch):

- **LayerNorm** (Ba, Kiros & Hinton 2016, arXiv 1607.06450) averages over the *features*
  of one example: mu = mean(x), sigma^2 = mean((x - mu)^2) (the biased variance, divisor d),
  y = gamma * (x - mu) / sqrt(sigma^2 + eps) + beta.
- **RMSNorm** (Zhang & Sennrich 2019, arXiv 1910.07467) drops the centring:
  r^2 = mean(x^2), y = gamma * x / sqrt(r^2 + eps). It equals LayerNorm (without beta) exactly
  when mean(x) = 0.
- **BatchNorm** in training mode (Ioffe & Szegedy 2015, arXiv 1502.03167) averages
  each *feature* over the *batch*: for a batch X of shape (B, C), column c is normalised with
  its batch mean and biased batch variance. It needs B >= 2 (one example has no variance).

PyTorch's ``nn.LayerNorm``, ``nn.RMSNorm`` and ``nn.BatchNorm1d`` (training mode) compute the same
formulas; ``tests/test_normalisation.py`` checks it. PyTorch's RMSNorm takes eps = None to mean
``torch.finfo(x.dtype).eps``; so does :func:`rms_norm`.

**LayerNorm's Jacobian.** With x_hat = (x - mu) / sigma and sigma = sqrt(var + eps),

    d LN(x) / dx = diag(gamma) / sigma * (I - 1 1^T / d - x_hat x_hat^T / d).

The bracket removes two directions: the constant vector 1 (shifting x changes nothing) and,
within the centred space, x_hat itself (scaling x changes nothing when eps is negligible). So
LN(c x) = LN(x) for c > 0 and the Jacobian at c x is the Jacobian at x divided by c: the
gradient into a LayerNorm falls as 1/c. RMSNorm's Jacobian is diag(gamma) / r * (I - x_tilde
x_tilde^T / d) with x_tilde = x / r: it removes only the input's own direction.

The growth laws of the chapter "Normalisation" (``book/normalisation.md``) are here too, as
closed forms: BatchNorm's per-layer gradient growth in a deep plain network, and the residual
stream's variance with and without BatchNorm in the branch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

#: The normalisers by name, and the axis each averages over.
NORMALISERS = ("layer", "rms", "batch")
AVERAGED_OVER = {
    "layer": "the features of each example",
    "rms": "the features of each example (mean square only, no centring)",
    "batch": "the examples of the batch, for each feature",
}


def _check_tensor(x: object, name: str = "x") -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    return x


def _check_eps(eps: object) -> float:
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not 0 < eps < math.inf:
        raise ValueError(f"eps must be a positive finite number, got {eps!r}")
    return float(eps)


def _normalised_dims(x: torch.Tensor, normalized_shape: int | Sequence[int]) -> tuple[int, ...]:
    """The trailing dimensions that ``normalized_shape`` names, checked against ``x``."""
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if not shape or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in shape):
        raise ValueError(f"normalized_shape must be a positive int or a non-empty tuple of them, "
                         f"got {normalized_shape!r}")
    if x.dim() < len(shape) or tuple(x.shape[x.dim() - len(shape):]) != shape:
        raise ValueError(f"normalized_shape {shape} must equal the last {len(shape)} dimension(s) "
                         f"of the input, got an input of shape {tuple(x.shape)}")
    return tuple(range(-len(shape), 0))


def _check_affine(p: torch.Tensor | None, shape: Sequence[int], name: str) -> None:
    if p is not None and tuple(p.shape) != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {tuple(p.shape)}")


def layer_norm(
    x: torch.Tensor,
    normalized_shape: int | Sequence[int],
    weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    eps: float = 1e-5,
) -> torch.Tensor:
    """LayerNorm over the trailing ``normalized_shape`` dimensions: gamma (x - mu) / sqrt(var +
    eps) + beta, with the biased variance (divisor = the number of normalised entries).

    ``weight`` (gamma) and ``bias`` (beta) have shape ``normalized_shape``; None means 1 and 0.
    Shape: any ``(..., *normalized_shape)``, unchanged.
    """
    x = _check_tensor(x)
    dims = _normalised_dims(x, normalized_shape)
    eps = _check_eps(eps)
    shape = x.shape[x.dim() + dims[0]:]
    _check_affine(weight, shape, "weight")
    _check_affine(bias, shape, "bias")
    mu = x.mean(dim=dims, keepdim=True)
    var = (x - mu).pow(2).mean(dim=dims, keepdim=True)   # biased: divide by d, not d - 1
    y = (x - mu) / torch.sqrt(var + eps)
    if weight is not None:
        y = y * weight
    return y if bias is None else y + bias


def rms_norm(
    x: torch.Tensor,
    normalized_shape: int | Sequence[int],
    weight: torch.Tensor | None = None,
    eps: float | None = None,
) -> torch.Tensor:
    """RMSNorm over the trailing ``normalized_shape`` dimensions: gamma x / sqrt(mean(x^2) + eps).

    ``eps=None`` uses ``torch.finfo(x.dtype).eps``, as ``nn.RMSNorm`` does. No bias, no centring.
    """
    x = _check_tensor(x)
    dims = _normalised_dims(x, normalized_shape)
    eps = torch.finfo(x.dtype).eps if eps is None else _check_eps(eps)
    _check_affine(weight, x.shape[x.dim() + dims[0]:], "weight")
    y = x * torch.rsqrt(x.pow(2).mean(dim=dims, keepdim=True) + eps)
    return y if weight is None else y * weight


def batch_norm(
    x: torch.Tensor,
    weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    eps: float = 1e-5,
) -> torch.Tensor:
    """BatchNorm in training mode: each feature (column) of ``x`` of shape ``(B, C)`` normalised
    with its batch mean and biased batch variance, then gamma * . + beta (shape ``(C,)``).

    Raises a ValueError for a batch of one: its variance is zero and nothing is left to normalise.
    """
    x = _check_tensor(x)
    if x.dim() != 2:
        raise ValueError(f"batch_norm takes a (batch, features) tensor, got shape {tuple(x.shape)}")
    if x.shape[0] < 2:
        raise ValueError(f"batch_norm needs a batch of at least 2 examples to compute batch "
                         f"statistics, got a batch of {x.shape[0]}")
    eps = _check_eps(eps)
    _check_affine(weight, (x.shape[1],), "weight")
    _check_affine(bias, (x.shape[1],), "bias")
    mu = x.mean(dim=0, keepdim=True)
    var = (x - mu).pow(2).mean(dim=0, keepdim=True)
    y = (x - mu) / torch.sqrt(var + eps)
    if weight is not None:
        y = y * weight
    return y if bias is None else y + bias


def _vector(x: torch.Tensor, weight: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    x = _check_tensor(x)
    if x.dim() != 1 or x.numel() < 2:
        raise ValueError(f"the Jacobian takes one vector of at least 2 features, got shape "
                         f"{tuple(x.shape)}")
    _check_affine(weight, x.shape, "weight")
    gamma = torch.ones_like(x) if weight is None else weight.to(x.dtype)
    return x, gamma


def layer_norm_jacobian(x: torch.Tensor, weight: torch.Tensor | None = None, eps: float = 1e-5
                        ) -> torch.Tensor:
    """The Jacobian d LN(x) / dx of a vector ``x`` of shape ``(d,)``, in closed form:
    diag(gamma) / sigma (I - 1 1^T / d - x_hat x_hat^T / d). Returns a ``(d, d)`` tensor."""
    x, gamma = _vector(x, weight)
    eps = _check_eps(eps)
    d = x.numel()
    centred = x - x.mean()
    sigma = torch.sqrt(centred.pow(2).mean() + eps)
    x_hat = centred / sigma
    eye = torch.eye(d, dtype=x.dtype)
    projection = eye - torch.ones(d, d, dtype=x.dtype) / d - torch.outer(x_hat, x_hat) / d
    return gamma.unsqueeze(1) * projection / sigma


def rms_norm_jacobian(x: torch.Tensor, weight: torch.Tensor | None = None,
                      eps: float | None = None) -> torch.Tensor:
    """The Jacobian of RMSNorm at a vector ``x`` of shape ``(d,)``: diag(gamma) / r (I - x_tilde
    x_tilde^T / d), r = sqrt(mean(x^2) + eps), x_tilde = x / r."""
    x, gamma = _vector(x, weight)
    eps = torch.finfo(x.dtype).eps if eps is None else _check_eps(eps)
    r = torch.sqrt(x.pow(2).mean() + eps)
    x_tilde = x / r
    projection = torch.eye(x.numel(), dtype=x.dtype) - torch.outer(x_tilde, x_tilde) / x.numel()
    return gamma.unsqueeze(1) * projection / r


# --- Growth laws in closed form -------------------------------------------------------------------


def batch_norm_gradient_growth(activation: str) -> float:
    """The factor by which the squared gradient norm grows per layer, towards the input, in a
    deep plain network h_l = phi(BN(W_l h_{l-1})) at initialisation, in the limit of large width
    and large batch (mean-field, with the gradient-independence assumption):

        lambda = E[phi'(z)^2] / Var[phi(z)],     z ~ N(0, 1).

    Backwards, phi' multiplies the squared norm by E[phi'(z)^2]; W^T by sigma_w^2; BatchNorm
    divides by the variance of W h, sigma_w^2 Var[phi(z)] (so sigma_w^2 cancels: no
    initialisation scale changes lambda). For ReLU, (1/2) / ((pi - 1) / (2 pi)) = pi / (pi - 1);
    for a linear network (``"identity"``) 1. The limit ignores how BatchNorm couples the
    examples of a finite batch; small batches explode faster. ``activation``: a name of
    ``gradflow.activations``, or ``"identity"``.
    """
    if activation == "identity":
        return 1.0
    from . import signal_propagation as sp

    f, df = sp.phi(activation), sp.phi_prime(activation)

    def standard(g):   # E[g(z)], z ~ N(0, 1), written as E[g(u / 2)], u ~ N(0, 4): for a
        # variance above 2 the quadrature is composite with an edge at 0, where ReLU has its kink
        return sp.gaussian_expectation(lambda u: g(u / 2.0), 4.0)

    variance = standard(lambda z: f(z) ** 2) - standard(f) ** 2
    return standard(lambda z: df(z) ** 2) / variance


def stream_variance_law(depth: int | Sequence[int], first: float, branch: str) -> np.ndarray:
    """The predicted variance of a residual stream h_{l+1} = h_l + W_l relu(N(h_l)) after block l,
    from its variance ``first`` after the first layer (the stem), for Kaiming-initialised W
    (Var(W) = 2 / fan_in) in the large-width limit.

    ``branch="none"`` (N the identity): the branch's variance is 2 E[relu(h)^2] = Var(h_l) for a
    zero-mean symmetric h_l, so the variance doubles per block: first * 2^(l - 1).
    ``branch="batch"`` (N BatchNorm): the branch reads unit-variance inputs whatever the stream's
    size, so it adds 2 E[relu(z)^2] = 1 per block: first + (l - 1), linear growth, and the
    branch is down-weighted against the stream by about sqrt(l) (De & Smith 2020).
    ``depth``: one layer index l >= 1 or several.
    """
    layers = np.atleast_1d(np.asarray(depth))
    if layers.size == 0 or layers.min() < 1 or not np.issubdtype(layers.dtype, np.integer):
        raise ValueError(f"depth must be layer indices >= 1, got {depth!r}")
    if branch == "none":
        return float(first) * 2.0 ** (layers - 1)
    if branch == "batch":
        return float(first) + (layers - 1.0)
    raise ValueError(f"branch must be 'none' or 'batch', got {branch!r}")


def rms_layer_norm_gap(mean_over_std: float | np.ndarray) -> float | np.ndarray:
    """How far RMSNorm is from LayerNorm on a vector whose mean is m times its (biased) std, with
    eps negligible: ||RMS(x) - LN(x)|| / ||LN(x)|| = sqrt(2 - 2 / sqrt(1 + m^2)).

    RMS(x) = (x_hat + m) / sqrt(1 + m^2) with x_hat = LN(x) (mean 0, mean square 1), so the
    mean square of the difference is (1 - 1 / s)^2 + m^2 / s^2 = 2 - 2 / s, s = sqrt(1 + m^2).
    Zero at m = 0 (the two agree exactly on centred vectors), about |m| for small m, and
    towards sqrt(2) as |m| grows.
    """
    m = np.asarray(mean_over_std, dtype=float)
    gap = np.sqrt(2.0 - 2.0 / np.sqrt(1.0 + m**2))
    return float(gap) if gap.ndim == 0 else gap
