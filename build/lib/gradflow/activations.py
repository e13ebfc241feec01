"""Every activation of the book, defined once: GELU in its exact form and its two approximations,
and the registry (``REGISTRY``) that maps each activation's name to its function and derivative.

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

The registry ``REGISTRY`` (names in ``NAMES``: sigmoid, tanh, relu, gelu, gelu_tanh,
gelu_sigmoid, silu) gives, per activation, the torch function the networks compute, its
closed-form derivative, the same pair in float64 numpy (for the mean-field quadrature of
``gradflow.signal_propagation``) and the names the book shows (``title``, ``label``,
``formula``). ``DeepMLP``, the batched networks, the mean-field predictions and the chapters all
read from it, and the constants below are the only place the numbers 0.044715, 1.702 and
sqrt(2/pi) are written: change one here and every result that uses it changes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np
import torch
from scipy.special import expit, ndtr
from torch import nn

from .checks import one_of, positive_number

# Every constant of the module is written here once. Functions read them when they are called,
# so a change here (or a monkeypatch of the module attribute) reaches every form below: the torch
# functions the networks use, the closed-form derivatives, and the numpy forms of the quadrature.

#: Cubic coefficient of the tanh approximation (Hendrycks & Gimpel 2016, section 2).
TANH_CUBIC_COEFFICIENT = 0.044715
#: Slope of the sigmoid approximation x * sigmoid(1.702 x) (Hendrycks & Gimpel 2016, section 2).
SIGMOID_SLOPE = 1.702
#: 2 / pi, whose square root scales the tanh approximation's argument (it matches Phi'(0)).
TWO_OVER_PI = 2.0 / math.pi
SQRT_2_OVER_PI = math.sqrt(TWO_OVER_PI)
INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)

APPROXIMATIONS = ("none", "tanh", "sigmoid")


def _check_approximate(approximate: str) -> None:
    one_of("approximate", approximate, APPROXIMATIONS)


def _check_tensor(x: torch.Tensor, name: str) -> None:
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise TypeError(f"{name} expects a floating-point torch.Tensor, got {type(x).__name__}")


def gelu_tanh(x: torch.Tensor) -> torch.Tensor:
    """The tanh approximation 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).

    The operations are the seed notebook's, in the same order, so that a float32 input gives the
    seed's float32 output bit for bit; sqrt(2/pi) is computed in the input's own dtype.
    """
    sqrt_2_over_pi = torch.sqrt(torch.tensor(TWO_OVER_PI, dtype=x.dtype, device=x.device))
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
    return INV_SQRT_2PI * torch.exp(-0.5 * x * x)


def gelu_gate(x: torch.Tensor, approximate: str = "none") -> torch.Tensor:
    """The gate g(x) in GELU(x) = x * g(x): Phi(x) or one of its approximations.

    ``"none"``: Phi(x); ``"tanh"``: 0.5 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)));
    ``"sigmoid"``: sigmoid(1.702 x) (Hendrycks & Gimpel 2016, section 2). Each approximate gate
    g satisfies g(-x) = 1 - g(x), like Phi, so its error against Phi is odd in x.
    """
    _check_approximate(approximate)
    _check_tensor(x, "gelu_gate")
    if approximate == "tanh":
        return 0.5 * (1.0 + torch.tanh(SQRT_2_OVER_PI * (x + TANH_CUBIC_COEFFICIENT * x**3)))
    if approximate == "sigmoid":
        return torch.sigmoid(SIGMOID_SLOPE * x)
    return standard_normal_cdf(x)


# --- Closed-form derivatives ------------------------------------------------------------------


def _tanh_parts(x: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """u = a (x + c x^3), u' = a (1 + 3 c x^2), u'' = 6 a c x, t = tanh(u), sech^2(u) = 1 - t^2."""
    a, c = SQRT_2_OVER_PI, TANH_CUBIC_COEFFICIENT
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
    positive_number("beta", beta)


def swish(x: torch.Tensor, beta: float = 1.0) -> torch.Tensor:
    """Swish(x) = x * sigmoid(beta x) (Ramachandran et al. 2017); beta = 1 is SiLU, named in
    Hendrycks & Gimpel (2016, section 2: "what we call the Sigmoid Linear Unit"; their section 4
    finds it worse than GELU but usually better than ReLU and ELU) and proposed independently by
    Elfwing et al. (2017); beta = 1.702 is GELU's sigmoid approximation (same operations as
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


# --- The same forms in float64 numpy, for quadrature and root finding --------------------------
# scipy's optimisers and numpy's quadrature call these millions of times on small arrays, where
# numpy is much faster than torch. Each is the closed form of the torch function above, with the
# constants read from this module; ``tests/test_activations.py`` checks each against its torch twin.


def np_normal_pdf(x: np.ndarray) -> np.ndarray:
    """phi(x) = exp(-x^2 / 2) / sqrt(2 pi) in numpy."""
    return INV_SQRT_2PI * np.exp(-0.5 * x * x)


def np_normal_cdf(x: np.ndarray) -> np.ndarray:
    """Phi(x) in numpy (``scipy.special.ndtr``, accurate in the negative tail)."""
    return ndtr(x)


def np_tanh_gate(x: np.ndarray, c: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The tanh gate 0.5 (1 + tanh(sqrt(2/pi) (x + c x^3))) and its x-derivative; ``c`` defaults
    to ``TANH_CUBIC_COEFFICIENT`` (a free ``c`` lets ``fit_constant`` vary it)."""
    c = TANH_CUBIC_COEFFICIENT if c is None else c
    t = np.tanh(SQRT_2_OVER_PI * (x + c * x**3))
    return 0.5 * (1.0 + t), 0.5 * (1.0 - t * t) * SQRT_2_OVER_PI * (1.0 + 3.0 * c * x * x)


def np_sigmoid_gate(x: np.ndarray, k: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The sigmoid gate sigmoid(k x) and its x-derivative; ``k`` defaults to ``SIGMOID_SLOPE``."""
    k = SIGMOID_SLOPE if k is None else k
    s = expit(k * x)
    return s, k * s * (1.0 - s)


def _np_gated(gate: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]):
    """x * g(x) and its derivative g(x) + x g'(x) from a gate g and its derivative."""

    def value(x: np.ndarray) -> np.ndarray:
        return x * gate(x)[0]

    def derivative(x: np.ndarray) -> np.ndarray:
        g, dg = gate(x)
        return g + x * dg

    return value, derivative


def _np_exact_gate(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np_normal_cdf(x), np_normal_pdf(x)


def _np_silu_gate(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np_sigmoid_gate(x, 1.0)


def _np_sigmoid(x: np.ndarray) -> np.ndarray:
    return expit(x)


def _np_sigmoid_derivative(x: np.ndarray) -> np.ndarray:
    s = expit(x)
    return s * (1.0 - s)


def _np_tanh_derivative(x: np.ndarray) -> np.ndarray:
    return 1.0 - np.tanh(x) ** 2


def _np_relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0.0)


def _np_relu_derivative(x: np.ndarray) -> np.ndarray:
    return (x > 0).astype(float)   # 0 at x = 0, as torch's relu backward


# --- Derivatives of the plain activations, in torch ----------------------------------------


def sigmoid_derivative(x: torch.Tensor) -> torch.Tensor:
    """sigmoid'(x) = s (1 - s), s = sigmoid(x)."""
    s = torch.sigmoid(x)
    return s * (1.0 - s)


def tanh_derivative(x: torch.Tensor) -> torch.Tensor:
    """tanh'(x) = 1 - tanh(x)^2."""
    return 1.0 - torch.tanh(x) ** 2


def relu_derivative(x: torch.Tensor) -> torch.Tensor:
    """ReLU'(x) = 1 for x > 0, else 0 (0 at x = 0, as torch's relu backward)."""
    return (x > 0).to(x.dtype)


# --- The registry: every activation of the book, by name --------------------------------------


@dataclass(frozen=True)
class ActivationSpec:
    """One activation: its torch function and closed-form derivative, the same pair in float64
    numpy, and how the book names it.

    Attributes:
        name: the key everything uses (``DeepMLP(activation=...)``, the mean-field theory).
        title: the name in titles and tables, e.g. ``"GELU (tanh approximation)"``.
        label: a short legend label, e.g. ``"GELU (tanh approx.)"``.
        formula: the name with its formula, e.g. ``"GELU, tanh approximation"``.
        fn, derivative: the torch function (what networks compute) and its closed-form derivative.
        np_fn, np_derivative: the same in float64 numpy.
    """

    name: str
    title: str
    label: str
    formula: str
    fn: Callable[[torch.Tensor], torch.Tensor]
    derivative: Callable[[torch.Tensor], torch.Tensor]
    np_fn: Callable[[np.ndarray], np.ndarray]
    np_derivative: Callable[[np.ndarray], np.ndarray]


def _spec(name, title, label, formula, fn, derivative, np_pair) -> ActivationSpec:
    return ActivationSpec(name, title, label, formula, fn, derivative, *np_pair)


#: Every activation, by name. ``gelu`` is the exact erf form, ``gelu_tanh`` the tanh approximation
#: used by GPT-2 and the seed notebook, ``gelu_sigmoid`` x sigmoid(1.702 x) (Hendrycks & Gimpel
#: 2016, section 2), ``silu`` x sigmoid(x) (named by Hendrycks & Gimpel 2016, section 2; also
#: Elfwing et al. 2017).
REGISTRY: dict[str, ActivationSpec] = {
    spec.name: spec
    for spec in (
        _spec("sigmoid", "sigmoid", "sigmoid", "sigmoid, 1/(1 + e^(−x))", torch.sigmoid,
              sigmoid_derivative, (_np_sigmoid, _np_sigmoid_derivative)),
        _spec("tanh", "tanh", "tanh", "tanh", torch.tanh, tanh_derivative,
              (np.tanh, _np_tanh_derivative)),
        _spec("relu", "ReLU", "ReLU", "ReLU, max(x, 0)", torch.relu, relu_derivative,
              (_np_relu, _np_relu_derivative)),
        _spec("gelu", "GELU (exact)", "GELU (exact)", "GELU, exact x·Φ(x)",
              partial(gelu, approximate="none"), partial(gelu_derivative, approximate="none"),
              _np_gated(_np_exact_gate)),
        _spec("gelu_tanh", "GELU (tanh approximation)", "GELU (tanh approx.)",
              "GELU, tanh approximation", partial(gelu, approximate="tanh"),
              partial(gelu_derivative, approximate="tanh"), _np_gated(np_tanh_gate)),
        _spec("gelu_sigmoid", f"GELU (x·σ({SIGMOID_SLOPE:g}x))", f"x·σ({SIGMOID_SLOPE:g}x)",
              f"GELU, x·σ({SIGMOID_SLOPE:g}x)", partial(gelu, approximate="sigmoid"),
              partial(gelu_derivative, approximate="sigmoid"), _np_gated(np_sigmoid_gate)),
        _spec("silu", "SiLU", "SiLU", "SiLU, x·σ(x)", nn.functional.silu, swish_derivative,
              _np_gated(_np_silu_gate)),
    )
}
#: The names, in the registry's order.
NAMES = tuple(REGISTRY)
#: GELU's ``approximate`` argument -> the registry name of that form.
GELU_FORMS = {"none": "gelu", "tanh": "gelu_tanh", "sigmoid": "gelu_sigmoid"}


def check_activation(name: str) -> str:
    """Return ``name`` if it is a registered activation, else raise a ValueError listing them."""
    return one_of("activation", name, NAMES, what="activation")


def spec(name: str) -> ActivationSpec:
    """The registry entry of ``name`` (checked)."""
    return REGISTRY[check_activation(name)]


def autograd_derivative(name: str, z: torch.Tensor) -> torch.Tensor:
    """phi'(z) elementwise, by autograd through the very function the networks use (so it
    agrees with a network's backward pass to the last bit, which a closed form need not)."""
    fn = spec(name).fn
    with torch.enable_grad():
        leaf = z.detach().requires_grad_(True)
        out = fn(leaf)
        (d,) = torch.autograd.grad(out, leaf, torch.ones_like(out))
    return d


def _fused_gelu_tanh_is_ours() -> bool:
    """Whether PyTorch's fused tanh-GELU kernel computes our tanh form: it has its own copy of
    the constants, so after an edit of ``TANH_CUBIC_COEFFICIENT`` it no longer does."""
    x = torch.tensor([0.5, 1.5, -2.5], dtype=torch.float64)
    fused = nn.functional.gelu(x, approximate="tanh")
    return bool(torch.allclose(fused, gelu_tanh(x), rtol=0.0, atol=1e-12))


def fast_fn(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """The activation as one fused PyTorch op where PyTorch has one computing the same formula
    (fewer kernel calls for the batched networks; equal to ``spec(name).fn`` to float rounding),
    else ``spec(name).fn`` itself."""
    if name == "gelu":
        return nn.functional.gelu
    if name == "gelu_tanh" and _fused_gelu_tanh_is_ours():
        return partial(nn.functional.gelu, approximate="tanh")
    return spec(name).fn
