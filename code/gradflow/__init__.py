"""gradflow: GELU, shortcut connections and vanishing gradients, measured.

The package behind the executable book. Chapters, tests and readers' notebooks import these names.
"""

from .activations import GELU, gelu
from .experiments import ShortcutComparison, compare_shortcuts, format_gradient
from .gradients import layer_gradient_means
from .models import ExampleDeepNeuralNetwork

__all__ = [
    "GELU",
    "ExampleDeepNeuralNetwork",
    "ShortcutComparison",
    "compare_shortcuts",
    "format_gradient",
    "gelu",
    "layer_gradient_means",
]
__version__ = "0.1.0"
