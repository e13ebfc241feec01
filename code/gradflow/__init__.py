"""gradflow: GELU, shortcut connections and vanishing gradients, measured.

The package behind the executable book. Chapters, tests and readers' notebooks import these names.
"""

from .activations import GELU, gelu, gelu_derivative, gelu_gate, gelu_second_derivative
from .experiments import ShortcutComparison, compare_shortcuts, format_gradient
from .gelu_analysis import approximation_error, monte_carlo_gelu, shape_facts
from .gpt import GPT, GPTConfig, parameter_count
from .gradient_stats import gradient_profile, gradient_sweep
from .gradients import layer_gradient_means
from .mlp import DeepMLP
from .models import ExampleDeepNeuralNetwork
from .residual import (
    many_seed_comparison,
    path_length_distribution,
    train_depth_comparison,
    with_projections,
)
from .signal_propagation import predict_layers

__all__ = [
    "GELU",
    "GPT",
    "DeepMLP",
    "ExampleDeepNeuralNetwork",
    "GPTConfig",
    "ShortcutComparison",
    "approximation_error",
    "compare_shortcuts",
    "format_gradient",
    "gelu",
    "gelu_derivative",
    "gelu_gate",
    "gelu_second_derivative",
    "gradient_profile",
    "gradient_sweep",
    "layer_gradient_means",
    "many_seed_comparison",
    "monte_carlo_gelu",
    "parameter_count",
    "path_length_distribution",
    "predict_layers",
    "shape_facts",
    "train_depth_comparison",
    "with_projections",
]
__version__ = "0.1.0"
