"""The experiments of the chapter "Vanishing and exploding gradients"
(``book/vanishing_gradients.md``), in ``experiments``; its figures are in ``figures``. The
gradient probes the chapter uses on single networks are ``gradflow.probes``'s, named here too."""

from ...networks.stacked import batched_profiles
from ...probes import gradient_profile
from .experiments import (
    ACTIVATIONS,
    depth_gain_grid,
    end_to_end_log_ratio,
    factor_table,
    gradient_sweep,
    layer_profiles,
    narrow_network_factors,
    norm_underflow,
    seed_comparison,
)

__all__ = [
    "ACTIVATIONS",
    "batched_profiles",
    "depth_gain_grid",
    "end_to_end_log_ratio",
    "factor_table",
    "gradient_profile",
    "gradient_sweep",
    "layer_profiles",
    "narrow_network_factors",
    "norm_underflow",
    "seed_comparison",
]
