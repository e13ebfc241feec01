"""Experiments the chapters run, returning plain data (dataclasses and pandas DataFrames)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
import torch

from .gradients import layer_gradient_means
from .models import ExampleDeepNeuralNetwork

#: The seed notebook's network widths, input and random seed.
SEED_LAYER_SIZES = (3, 3, 3, 3, 3, 1)
SEED_INPUT = ((1.0, 0.0, -1.0),)
SEED = 123

#: How the book prints a gradient statistic: four significant digits.
GRADIENT_FORMAT = ".4g"

PLAIN, SHORTCUT = "without shortcut", "with shortcut"


def format_gradient(value: float) -> str:
    """A gradient statistic as the book prints it, e.g. ``0.0002017``."""
    return format(value, GRADIENT_FORMAT)


@dataclass(frozen=True)
class ShortcutComparison:
    """The seed's experiment: the same network built twice, without and with shortcuts.

    Attributes:
        gradients: one row per weight (``layers.0.0.weight``, ...), one column per network,
            holding mean |dL/dW|.
        outputs: each network's output for the input, keyed by column name.
        losses: each network's MSE loss against the zero target, keyed by column name.
        shortcut_applied: per layer, whether the shortcut network adds the layer's input.
    """

    gradients: pd.DataFrame
    outputs: dict[str, float]
    losses: dict[str, float]
    shortcut_applied: list[bool]


def compare_shortcuts(
    seed: int = SEED,
    layer_sizes: Sequence[int] = SEED_LAYER_SIZES,
    x: torch.Tensor | None = None,
) -> ShortcutComparison:
    """Run the seed notebook's experiment for any seed and widths.

    For each of ``use_shortcut=False`` and ``True``: ``torch.manual_seed(seed)``, build
    ``ExampleDeepNeuralNetwork(layer_sizes, use_shortcut)``, and take ``layer_gradient_means`` for
    input ``x`` (default: the seed's ``[[1., 0., -1.]]``) against a zero target.
    """
    if x is None:
        x = torch.tensor(SEED_INPUT)
    columns, outputs, losses = {}, {}, {}
    for label, use_shortcut in ((PLAIN, False), (SHORTCUT, True)):
        torch.manual_seed(seed)
        model = ExampleDeepNeuralNetwork(layer_sizes, use_shortcut=use_shortcut)
        columns[label] = layer_gradient_means(model, x)
        with torch.no_grad():
            y = model(x)
        outputs[label] = y.double().mean().item()
        losses[label] = y.double().pow(2).mean().item()
    gradients = pd.DataFrame(columns)
    gradients.index.name = "weight"
    return ShortcutComparison(gradients, outputs, losses, model.shortcut_applied)


def seed_printout(gradients: dict[str, float]) -> str:
    """The seed's ``print_gradients`` lines for one network, for readers comparing with it."""
    return "\n".join(f"{name} has gradient mean of {value}" for name, value in gradients.items())


#: The ten numbers the seed notebook printed (float32 means, as published), quoted as reference data.
SEED_PUBLISHED = {
    PLAIN: {
        "layers.0.0.weight": 0.00020173587836325169,
        "layers.1.0.weight": 0.0001201116101583466,
        "layers.2.0.weight": 0.0007152041653171182,
        "layers.3.0.weight": 0.001398873864673078,
        "layers.4.0.weight": 0.005049646366387606,
    },
    SHORTCUT: {
        "layers.0.0.weight": 0.22169792652130127,
        "layers.1.0.weight": 0.20694106817245483,
        "layers.2.0.weight": 0.32896995544433594,
        "layers.3.0.weight": 0.2665732502937317,
        "layers.4.0.weight": 1.3258541822433472,
    },
}
