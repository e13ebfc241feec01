"""Mean-field predictions for a feed-forward layer at initialisation, GELU or gated
(``gradflow.gated``): how much it scales a random backward signal, and the variance of its
output. The expectations over a Gaussian pre-activation are computed by the quadrature of
``gradflow.signal_propagation``. (A module of its own, so that the GPT, which imports
``gradflow.gated``, does not depend on the mean-field machinery.)
"""

from __future__ import annotations

import numpy as np

from . import activations as act
from .checks import positive_int
from .gated import gate_activation
from .signal_propagation import gaussian_expectation


def ffn_jacobian_gain(kind: str, n_embd: int, hidden: int, std_in: float, std_out: float,
                      std_up: float | None = None) -> float:
    """Mean-field prediction of ||J||_F^2 / d for a feed-forward layer at initialisation.

    J is the layer's d x d input-output Jacobian at one position; the input is a LayerNorm
    output (each coordinate of mean square 1), the weights are independent with standard
    deviations ``std_in`` (the first projection, or the gate projection W), ``std_up`` (the
    value projection V, gated kinds only) and ``std_out`` (W2), and biases are zero. Then the
    pre-activations are close to N(0, q) with q = d std_in^2 (and N(0, q_up), q_up = d std_up^2,
    independent of them), and

        "gelu" (GPT-2's tanh form):  d h std_in^2 std_out^2 E[phi'(a)^2]
        gated kinds:  d h std_out^2 (std_in^2 q_up E[gate'(a)^2] + std_up^2 E[gate(a)^2])

    the two terms being the paths through W (the gate's slope times the value) and through V
    (the gate's value). E[v^T J^T J v] = ||J||_F^2 for v ~ N(0, I), so this is the mean square
    by which the layer multiplies a random backward signal, per coordinate. Float64 quadrature
    (``gradflow.signal_propagation.gaussian_expectation``).
    """
    d, h = positive_int("n_embd", n_embd), positive_int("hidden", hidden)
    q = d * std_in**2
    if kind == "gelu":
        df = act.spec("gelu_tanh").np_derivative
        return d * h * std_in**2 * std_out**2 * gaussian_expectation(lambda u: df(u) ** 2, q)
    spec = gate_activation(kind)
    if std_up is None:
        raise ValueError(f"a gated layer ({kind!r}) needs std_up, the value projection's std")
    q_up = d * std_up**2
    slope = gaussian_expectation(lambda u: spec.np_derivative(u) ** 2, q)
    value = gaussian_expectation(lambda u: np.square(spec.np_fn(u)), q)
    return d * h * std_out**2 * (std_in**2 * q_up * slope + std_up**2 * value)


def ffn_output_variance(kind: str, n_embd: int, hidden: int, std_in: float, std_out: float,
                        std_up: float | None = None) -> float:
    """Mean-field prediction of the per-coordinate variance of the layer's output at
    initialisation, under the assumptions of :func:`ffn_jacobian_gain`:
    h std_out^2 E[phi(a)^2] for "gelu", h std_out^2 E[gate(a)^2] q_up for a gated kind. The
    gated output is a product of the W and V paths: it depends on std_up and std_out only
    through std_up * std_out."""
    d, h = positive_int("n_embd", n_embd), positive_int("hidden", hidden)
    q = d * std_in**2
    if kind == "gelu":
        f = act.spec("gelu_tanh").np_fn
        return h * std_out**2 * gaussian_expectation(lambda u: f(u) ** 2, q)
    if std_up is None:
        raise ValueError(f"a gated layer ({kind!r}) needs std_up, the value projection's std")
    f = gate_activation(kind).np_fn
    return h * std_out**2 * gaussian_expectation(lambda u: f(u) ** 2, q) * d * std_up**2


__all__ = ["ffn_jacobian_gain", "ffn_output_variance"]
