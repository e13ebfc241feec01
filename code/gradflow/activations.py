"""GELU, the Gaussian Error Linear Unit, in its exact form and its two approximations.

Hendrycks & Gimpel (2016), "Gaussian Error Linear Units (GELUs)", arXiv:1606.08415, section 2:

    GELU(x) = x * Phi(x) = 0.5 * x * (1 + erf(x / sqrt(2)))                      exact
            ~ 0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x**3)))         "tanh" (GPT-2)
            ~ x * sigmoid(1.702 * x)                                             "sigmoid"

Phi is the standard normal cumulative distribution function.
"""

from __future__ import annotations

import math

import torch
from torch import nn

#: Cubic coefficient of the tanh approximation (Hendrycks & Gimpel 2016, section 2).
TANH_CUBIC_COEFFICIENT = 0.044715
#: Slope of the sigmoid approximation x * sigmoid(1.702 x) (Hendrycks & Gimpel 2016, section 2).
SIGMOID_SLOPE = 1.702

APPROXIMATIONS = ("none", "tanh", "sigmoid")


def _check_approximate(approximate: str) -> None:
    if approximate not in APPROXIMATIONS:
        allowed = ", ".join(repr(a) for a in APPROXIMATIONS)
        raise ValueError(f"approximate must be one of {allowed}, got {approximate!r}")


def gelu_tanh(x: torch.Tensor) -> torch.Tensor:
    """The tanh approximation 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).

    The operations are the seed notebook's, in the same order, so that a float32 input gives the
    seed's float32 output bit for bit; sqrt(2/pi) is computed in the input's own dtype.
    """
    sqrt_2_over_pi = torch.sqrt(torch.tensor(2.0 / torch.pi, dtype=x.dtype, device=x.device))
    return 0.5 * x * (1 + torch.tanh(sqrt_2_over_pi * (x + TANH_CUBIC_COEFFICIENT * torch.pow(x, 3))))


def gelu(x: torch.Tensor, approximate: str = "none") -> torch.Tensor:
    """GELU(x) = x * Phi(x), elementwise.

    Args:
        x: a floating-point tensor of any shape.
        approximate: ``"none"`` for the exact erf form (PyTorch's ``nn.GELU()`` default),
            ``"tanh"`` for the tanh approximation used by GPT-2 and the seed notebook, or
            ``"sigmoid"`` for x * sigmoid(1.702 x).

    Returns:
        A tensor of the same shape and dtype as ``x``.
    """
    _check_approximate(approximate)
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise TypeError(f"gelu expects a floating-point torch.Tensor, got {type(x).__name__}")
    if approximate == "tanh":
        return gelu_tanh(x)
    if approximate == "sigmoid":
        return x * torch.sigmoid(SIGMOID_SLOPE * x)
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


class GELU(nn.Module):
    """The seed notebook's GELU module: the tanh approximation, as GPT-2 uses it.

    Shape: any input shape; the output has the same shape. For the exact form use
    ``gelu(x)`` or ``torch.nn.GELU()``.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return gelu_tanh(x)
