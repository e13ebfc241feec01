"""The experiments of the chapter "GELU" (``book/gelu.md``); its figures are in ``figures``.

- ``approximations``: the approximations' errors, GELU's shape facts, where the constants come from;
- ``stochastic``: GELU as E[x m], m ~ Bernoulli(Phi(x)), by Monte Carlo;
- ``pytorch``: PyTorch's GELUs against the tutorial's, float32 zeros, the exact GELU in the
  tutorial's network.
"""

from .approximations import (
    CURVES,
    DEFAULT_GRID_POINTS,
    DEFAULT_RANGE,
    FORM_LABELS,
    FORMS,
    SWEEP_CONSTANTS,
    SWEEP_DENSE_POINTS,
    ActivationCurves,
    ApproximationError,
    ConstantFit,
    ConstantSweep,
    Extremum,
    ShapeFacts,
    activation_curves,
    approximation_error,
    constant_sweep,
    exact_gelu,
    fit_constant,
    form_functions,
    max_gate_error,
    refine_extrema,
    relative_error_at,
    shape_facts,
    shape_table,
    silu_gelu_gap,
)
from .pytorch import (
    FLOAT32_FUNCTIONS,
    TorchGeluComparison,
    compare_torch_gelu,
    float32_zero_thresholds,
    seed_gradients_exact_vs_tanh,
)
from .stochastic import MonteCarloGELU, MonteCarloPath, monte_carlo_gelu, monte_carlo_path

__all__ = [
    "CURVES",
    "DEFAULT_GRID_POINTS",
    "DEFAULT_RANGE",
    "FLOAT32_FUNCTIONS",
    "FORMS",
    "FORM_LABELS",
    "SWEEP_CONSTANTS",
    "SWEEP_DENSE_POINTS",
    "ActivationCurves",
    "ApproximationError",
    "ConstantFit",
    "ConstantSweep",
    "Extremum",
    "MonteCarloGELU",
    "MonteCarloPath",
    "ShapeFacts",
    "TorchGeluComparison",
    "activation_curves",
    "approximation_error",
    "compare_torch_gelu",
    "constant_sweep",
    "exact_gelu",
    "fit_constant",
    "float32_zero_thresholds",
    "form_functions",
    "max_gate_error",
    "monte_carlo_gelu",
    "monte_carlo_path",
    "refine_extrema",
    "relative_error_at",
    "seed_gradients_exact_vs_tanh",
    "shape_facts",
    "shape_table",
    "silu_gelu_gap",
]
