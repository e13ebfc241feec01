"""gradflow: GELU, shortcut connections and vanishing gradients, measured.

The package behind the executable book. Chapters, tests and readers' notebooks import these names.
"""

from .activations import GELU, gelu, gelu_derivative, gelu_gate, gelu_second_derivative
from .experiments import ShortcutComparison, compare_shortcuts, format_gradient
from .gelu_analysis import approximation_error, monte_carlo_gelu, shape_facts
from .gradients import layer_gradient_means
from .models import ExampleDeepNeuralNetwork

__all__ = [
    "GELU",
    "ExampleDeepNeuralNetwork",
    "ShortcutComparison",
    "approximation_error",
    "compare_shortcuts",
    "format_gradient",
    "gelu",
    "gelu_derivative",
    "gelu_gate",
    "gelu_second_derivative",
    "layer_gradient_means",
    "monte_carlo_gelu",
    "shape_facts",
]
__version__ = "0.1.0"
