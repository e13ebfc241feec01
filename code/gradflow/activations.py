"""GELU, the Gaussian Error Linear Unit, in its exact form and its two approximations.

Hendrycks & Gimpel (2016), "Gaussian Error Linear Units (GELUs)", arXiv:1606.08415, section 2:

    GELU(x) = x * Phi(x) = 0.5 * x * (1 + erf(x / sqrt(2)))                      exact
            ~ 0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x**3)))         "tanh" (GPT-2)
            ~ x * sigmoid(1.702 * x)                                             "sigmoid"

Phi is the standard normal cumulative distribution function (CDF) and phi its density. Each form
is ``x * gate(x)``, where the gate is Phi or one of its two approximations (``gelu_gate``).

Besides the values, the module gives the closed-form first and second derivatives of each form
(``gelu_derivative``, ``gelu_second_derivative``) and of the Swish family x * sigmoid(beta x), of
which SiLU (beta = 1) and the sigmoid approximation (beta = 1.702) are members. All functions are
elementwise, accept float32 and float64 tensors of any shape and return the input's dtype.
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

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def _check_approximate(approximate: str) -> None:
    if approximate not in APPROXIMATIONS:
        allowed = ", ".join(repr(a) for a in APPROXIMATIONS)
        raise ValueError(f"approximate must be one of {allowed}, got {approximate!r}")


def _check_tensor(x: torch.Tensor, name: str) -> None:
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise TypeError(f"{name} expects a floating-point torch.Tensor, got {type(x).__name__}")


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


# --- The gate Phi and its approximations ------------------------------------------------------


def standard_normal_cdf(x: torch.Tensor) -> torch.Tensor:
    """Phi(x) = 0.5 * erfc(-x / sqrt(2)), accurate to relative precision in the negative tail.

    ``0.5 * (1 + erf(x / sqrt(2)))``, the form ``gelu`` and PyTorch use, loses all relative
    precision once erf(x / sqrt(2)) rounds to -1 (below about x = -8 in float64, x = -5.5 in
    float32); erfc keeps it until the result underflows.
    """
    _check_tensor(x, "standard_normal_cdf")
    return 0.5 * torch.erfc(-x / math.sqrt(2.0))


def standard_normal_pdf(x: torch.Tensor) -> torch.Tensor:
    """phi(x) = exp(-x^2 / 2) / sqrt(2 pi), the standard normal density."""
    _check_tensor(x, "standard_normal_pdf")
    return _INV_SQRT_2PI * torch.exp(-0.5 * x * x)


def gelu_gate(x: torch.Tensor, approximate: str = "none") -> torch.Tensor:
    """The gate g(x) in GELU(x) = x * g(x): Phi(x) or one of its approximations.

    ``"none"``: Phi(x); ``"tanh"``: 0.5 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)));
    ``"sigmoid"``: sigmoid(1.702 x) (Hendrycks & Gimpel 2016, section 2). Each approximate gate
    g satisfies g(-x) = 1 - g(x), like Phi, so its error against Phi is odd in x.
    """
    _check_approximate(approximate)
    _check_tensor(x, "gelu_gate")
    if approximate == "tanh":
        return 0.5 * (1.0 + torch.tanh(_SQRT_2_OVER_PI * (x + TANH_CUBIC_COEFFICIENT * x**3)))
    if approximate == "sigmoid":
        return torch.sigmoid(SIGMOID_SLOPE * x)
    return standard_normal_cdf(x)


# --- Closed-form derivatives ------------------------------------------------------------------


def _tanh_parts(x: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """u = a (x + c x^3), u' = a (1 + 3 c x^2), u'' = 6 a c x, t = tanh(u), sech^2(u) = 1 - t^2."""
    a, c = _SQRT_2_OVER_PI, TANH_CUBIC_COEFFICIENT
    t = torch.tanh(a * (x + c * x**3))
    return t, 1.0 - t * t, a * (1.0 + 3.0 * c * x * x), 6.0 * a * c * x


def gelu_derivative(x: torch.Tensor, approximate: str = "none") -> torch.Tensor:
    """d GELU / dx in closed form, elementwise.

    - ``"none"``: Phi(x) + x phi(x). It is 0.5 at x = 0 and satisfies GELU'(-x) = 1 - GELU'(x).
    - ``"tanh"``: 0.5 (1 + t) + 0.5 x sech^2(u) u', with u = sqrt(2/pi) (x + 0.044715 x^3),
      t = tanh(u) and u' = sqrt(2/pi) (1 + 3 * 0.044715 x^2).
    - ``"sigmoid"``: ``swish_derivative(x, 1.702)``, i.e. s + 1.702 x s (1 - s) with
      s = sigmoid(1.702 x).

    Returns:
        A tensor of the same shape and dtype as ``x``.
    """
    _check_approximate(approximate)
    _check_tensor(x, "gelu_derivative")
    if approximate == "tanh":
        t, sech2, du, _ = _tanh_parts(x)
        tail = torch.where(sech2 == 0, torch.zeros_like(x), 0.5 * x * sech2 * du)
        return 0.5 * (1.0 + t) + tail
    if approximate == "sigmoid":
        return swish_derivative(x, SIGMOID_SLOPE)
    return standard_normal_cdf(x) + x * standard_normal_pdf(x)


def gelu_second_derivative(x: torch.Tensor, approximate: str = "none") -> torch.Tensor:
    """d^2 GELU / dx^2 in closed form, elementwise.

    - ``"none"``: phi(x) (2 - x^2), so GELU' has its maximum at x = sqrt(2) and its minimum at
      x = -sqrt(2).
    - ``"tanh"``: sech^2(u) u' + 0.5 x sech^2(u) (u'' - 2 t u'^2), in the notation of
      ``gelu_derivative`` and u'' = 6 sqrt(2/pi) 0.044715 x.
    - ``"sigmoid"``: ``swish_second_derivative(x, 1.702)``.
    """
    _check_approximate(approximate)
    _check_tensor(x, "gelu_second_derivative")
    if approximate == "tanh":
        t, sech2, du, d2u = _tanh_parts(x)
        value = sech2 * du + 0.5 * x * sech2 * (d2u - 2.0 * t * du * du)
        return torch.where(sech2 == 0, torch.zeros_like(x), value)
    if approximate == "sigmoid":
        return swish_second_derivative(x, SIGMOID_SLOPE)
    pdf = standard_normal_pdf(x)
    return torch.where(pdf == 0, torch.zeros_like(x), pdf * (2.0 - x * x))


# --- The Swish family x * sigmoid(beta x): SiLU (beta = 1) and the sigmoid approximation -------


def _check_beta(beta: float) -> None:
    if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not beta > 0:
        raise ValueError(f"beta must be a positive number, got {beta!r}")


def swish(x: torch.Tensor, beta: float = 1.0) -> torch.Tensor:
    """Swish(x) = x * sigmoid(beta x) (Ramachandran et al. 2017); beta = 1 is SiLU (Elfwing et
    al. 2017), beta = 1.702 is GELU's sigmoid approximation (same operations as
    ``gelu(x, "sigmoid")``)."""
    _check_beta(beta)
    _check_tensor(x, "swish")
    return x * torch.sigmoid(beta * x)


def swish_derivative(x: torch.Tensor, beta: float = 1.0) -> torch.Tensor:
    """d/dx [x sigmoid(beta x)] = s + beta x s (1 - s), with s = sigmoid(beta x)."""
    _check_beta(beta)
    _check_tensor(x, "swish_derivative")
    s = torch.sigmoid(beta * x)
    return s + beta * x * s * (1.0 - s)


def swish_second_derivative(x: torch.Tensor, beta: float = 1.0) -> torch.Tensor:
    """d^2/dx^2 [x sigmoid(beta x)] = beta s (1 - s) (2 + beta x (1 - 2 s)), s = sigmoid(beta x)."""
    _check_beta(beta)
    _check_tensor(x, "swish_second_derivative")
    s = torch.sigmoid(beta * x)
    return beta * s * (1.0 - s) * (2.0 + beta * x * (1.0 - 2.0 * s))
