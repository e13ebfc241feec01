"""The experiments of the chapter "Vanishing and exploding gradients"
(``book/vanishing_gradients.md``), in ``experiments``; its figures are in ``figures``. The
gradient probes the chapter uses on single networks are ``gradflow.probes``'s, and the predicted and
measured factors of a small network ``gradflow.signal_propagation``'s, named here too."""

from ...networks.stacked import batched_profiles
from ...probes import gradient_profile
from ...signal_propagation import narrow_network_factors
from .experiments import (
    ACTIVATIONS,
    EXPLORER_DEPTHS,
    EXPLORER_GAINS,
    EXPLORER_INITS,
    EXPLORER_SEEDS,
    EXPLORER_WIDTH,
    depth_gain_grid,
    end_to_end_log_ratio,
    factor_table,
    gain_response,
    gradient_sweep,
    layer_profiles,
    norm_underflow,
    predicted_profile,
    profile_explorer,
    seed_comparison,
)
from .sweeps import GRID_STUDY, SWEEP_STUDY, grid_frame, sweep_frame

__all__ = [
    "ACTIVATIONS",
    "EXPLORER_DEPTHS",
    "EXPLORER_GAINS",
    "EXPLORER_INITS",
    "EXPLORER_SEEDS",
    "EXPLORER_WIDTH",
    "GRID_STUDY",
    "SWEEP_STUDY",
    "batched_profiles",
    "depth_gain_grid",
    "end_to_end_log_ratio",
    "factor_table",
    "gain_response",
    "gradient_profile",
    "gradient_sweep",
    "grid_frame",
    "layer_profiles",
    "narrow_network_factors",
    "norm_underflow",
    "predicted_profile",
    "profile_explorer",
    "seed_comparison",
    "sweep_frame",
]
