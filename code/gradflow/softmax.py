"""The softmax, its Jacobian and its entropy: what an attention row passes back to its scores.

For logits z in R^T and p = softmax(z), p_i = exp(z_i) / sum_j exp(z_j), the derivative is
dp_i/dz_j = p_i (delta_ij - p_j), so the Jacobian is J = diag(p) - p p^T (``jacobian``). It is
symmetric, sends the all-ones vector to zero (adding a constant to every logit changes nothing),
and depends on the logits only through p. Its squared Frobenius norm is

    ||J||_F^2 = sum_i p_i^2 (1 - p_i)^2 + sum_{i != j} p_i^2 p_j^2
              = sum_i p_i^2 - 2 sum_i p_i^3 + (sum_i p_i^2)^2        (``jacobian_norm``),

(T - 1) / T^2 for the uniform p, 1/4 for two entries of 1/2 (the largest it gets), and 0 when
p is one-hot: a saturated softmax passes no gradient back to its logits. As one entry takes
nearly all the mass, p_max = 1 - e, the norm falls with e, the mass left to the other entries. The entropy H(p) = -sum p_i ln p_i (``entropy``,
in nats) runs from ln T (uniform) to 0 (one-hot).

Every function works on the last dimension of its argument and computes in float64.
"""

from __future__ import annotations

import math

import torch


def _as_double(name: str, value: torch.Tensor) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if value.dim() < 1 or value.size(-1) < 1:
        raise ValueError(f"{name} needs a last dimension of at least one entry, got shape "
                         f"{tuple(value.shape)}")
    return value.double()


def jacobian(logits: torch.Tensor) -> torch.Tensor:
    """dp/dz = diag(p) - p p^T of p = softmax(``logits``) over the last dimension: shape
    (..., T, T) for logits (..., T)."""
    p = torch.softmax(_as_double("logits", logits), dim=-1)
    return torch.diag_embed(p) - p.unsqueeze(-1) * p.unsqueeze(-2)


def jacobian_norm(p: torch.Tensor) -> torch.Tensor:
    """||diag(p) - p p^T||_F from the probabilities ``p`` alone (the closed form above); the
    entries of ``p`` must be >= 0 and sum to one over the last dimension."""
    p = _as_double("p", p)
    if (p < 0).any() or not torch.allclose(p.sum(-1), torch.ones((), dtype=p.dtype), atol=1e-6):
        raise ValueError("p must hold probabilities: entries >= 0 that sum to 1 over the last "
                         "dimension")
    s2, s3 = p.pow(2).sum(-1), p.pow(3).sum(-1)
    return (s2 - 2 * s3 + s2.pow(2)).clamp_min(0).sqrt()


def uniform_jacobian_norm(t: int) -> float:
    """||J||_F for the uniform distribution over ``t`` entries: sqrt(t - 1) / t."""
    if isinstance(t, bool) or not isinstance(t, int) or t < 1:
        raise ValueError(f"t must be a positive integer, got {t!r}")
    return math.sqrt(t - 1) / t


def entropy(logits: torch.Tensor) -> torch.Tensor:
    """H(softmax(``logits``)) in nats over the last dimension (entries of -inf count as p = 0)."""
    z = _as_double("logits", logits)
    log_p = torch.log_softmax(z, dim=-1)
    p = log_p.exp()
    return -(p * torch.where(p > 0, log_p, torch.zeros_like(log_p))).sum(-1)


__all__ = ["entropy", "jacobian", "jacobian_norm", "uniform_jacobian_norm"]
