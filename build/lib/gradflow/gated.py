"""Gated linear units and the gated feed-forward layers of today's transformers.

Dauphin et al. (2017) define the gated linear unit as the elementwise product of two linear
projections of the input, one of them passed through a sigmoid. Shazeer (2020), "GLU Variants
Improve Transformer", arXiv:2002.05202, writes it and its variants without biases as

    GLU(x, W, V)    = sigma(xW)  (x)  xV
    GEGLU(x, W, V)  = GELU(xW)   (x)  xV          GELU(a) = a Phi(a), the exact form
    SwiGLU(x, W, V) = Swish_1(xW) (x) xV          Swish_1(a) = a sigma(a) = SiLU(a)

and the feed-forward layer FFN_GEGLU(x, W, V, W2) = (GELU(xW) (x) xV) W2, and so on. So each
gated unit is ``gate(a) * b`` with a = xW (the *gate* projection, ``w1`` in LLaMA's code) and
b = xV (the *up* or value projection, ``w3``); W2 (``w2``) maps the hidden units back to the
model width. The gate functions are the activations of the book's
registry (``gradflow.activations``): sigmoid, the exact GELU and SiLU.

Derivatives (the product rule): d/da [gate(a) b] = gate'(a) b and d/db [gate(a) b] = gate(a).
A GELU unit has only the first kind of path, with b = 1.

Three weight matrices instead of two: to keep the parameter count of the 4d-wide GELU layer
(2 * d * 4d = 8 d^2 weights), the hidden width shrinks to 2/3 of 4d, h = 8d/3, since
3 * d * h = 8 d^2 (Shazeer 2020: d_ff 3072 -> 2048 for d_model 768). That width is
:func:`matched_hidden_width`, the only place the rule is written.
"""

from __future__ import annotations

import torch
from torch import nn

from . import activations as act
from .checks import one_of, positive_int

#: Each gated unit and the registry activation that forms its gate.
GATE_ACTIVATIONS = {"glu": "sigmoid", "geglu": "gelu", "swiglu": "silu"}
GATED_KINDS = tuple(GATE_ACTIVATIONS)
#: The hidden width of the GELU feed-forward layer, as a multiple of the model width
#: (Vaswani et al. 2017, section 3.3).
GELU_EXPANSION = 4


def check_kind(kind: str) -> str:
    """``kind`` if it names a gated unit, else a ValueError that lists them."""
    return one_of("kind", kind, GATED_KINDS, what="gated unit")


def gate_activation(kind: str) -> act.ActivationSpec:
    """The registry entry of the gate function of ``kind`` ("glu": sigmoid, "geglu": exact
    GELU, "swiglu": SiLU)."""
    return act.spec(GATE_ACTIVATIONS[check_kind(kind)])


def _check_pair(a: torch.Tensor, b: torch.Tensor) -> None:
    for name, t in (("a", a), ("b", b)):
        if not isinstance(t, torch.Tensor) or not t.is_floating_point():
            raise TypeError(f"{name} must be a floating-point torch.Tensor, got {type(t).__name__}")
    if a.shape != b.shape:
        raise ValueError(f"a (gate) and b (value) must have one shape, got {tuple(a.shape)} "
                         f"and {tuple(b.shape)}")


def gated_unit(kind: str, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The gated unit ``gate(a) * b`` elementwise, with a = xW the gate projection and b = xV
    the value projection (Shazeer 2020)."""
    _check_pair(a, b)
    return gate_activation(kind).fn(a) * b


def glu(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """GLU: sigma(a) * b (Dauphin et al. 2017)."""
    return gated_unit("glu", a, b)


def geglu(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """GEGLU: GELU(a) * b, with the exact GELU a Phi(a)."""
    return gated_unit("geglu", a, b)


def swiglu(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """SwiGLU: SiLU(a) * b = a sigma(a) b."""
    return gated_unit("swiglu", a, b)


def gated_derivatives(kind: str, a: torch.Tensor, b: torch.Tensor
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """The closed-form partial derivatives of ``gate(a) * b``: (gate'(a) b, gate(a))."""
    _check_pair(a, b)
    spec = gate_activation(kind)
    return spec.derivative(a) * b, spec.fn(a)


def matched_hidden_width(n_embd: int, expansion: int = GELU_EXPANSION) -> int:
    """The hidden width h of a gated feed-forward layer with the weight count of a GELU layer
    of hidden width ``expansion * n_embd``: 3 d h = 2 d (expansion d), so h = 2/3 * expansion * d
    (8d/3 for the usual 4d), rounded to the nearest integer. The weights match exactly when
    3 divides ``expansion * n_embd``."""
    d = positive_int("n_embd", n_embd)
    positive_int("expansion", expansion)
    return round(2 * expansion * d / 3)


def ffn_weight_count(n_embd: int, kind: str = "gelu") -> int:
    """Weights (biases not counted) of a feed-forward layer: 2 d (4d) for "gelu", 3 d h with
    h = :func:`matched_hidden_width` for a gated kind."""
    d = positive_int("n_embd", n_embd)
    if kind == "gelu":
        return 2 * d * GELU_EXPANSION * d
    check_kind(kind)
    return 3 * d * matched_hidden_width(d)


class GatedFeedForward(nn.Module):
    """Position-wise gated feed-forward layer: ``c_proj(gate(c_fc(x)) * c_up(x))``.

    ``c_fc`` is the gate projection W (LLaMA's ``w1``), ``c_up`` the value projection V
    (``w3``), and ``c_proj`` the output projection W2 (``w2``), the branch's residual
    projection: the only one of the three whose output is added to the residual stream. All
    three carry biases, like every linear layer of the book's GPT (Shazeer's and LLaMA's have
    none). Shape: ``(..., n_embd)`` in and out.
    """

    def __init__(self, n_embd: int, hidden: int, kind: str):
        super().__init__()
        self.kind = check_kind(kind)
        self.gate = gate_activation(kind).fn
        self.c_fc = nn.Linear(n_embd, hidden)     # gate projection W (w1)
        self.c_up = nn.Linear(n_embd, hidden)     # value ("up") projection V (w3)
        self.c_proj = nn.Linear(hidden, n_embd)   # output projection W2 (w2): residual projection

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c_proj(self.gate(self.c_fc(x)) * self.c_up(x))


__all__ = [
    "GATED_KINDS", "GATE_ACTIVATIONS", "GELU_EXPANSION", "GatedFeedForward", "ffn_weight_count",
    "gate_activation", "gated_derivatives", "gated_unit", "geglu", "glu", "matched_hidden_width",
    "swiglu",
]
