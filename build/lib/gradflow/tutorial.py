"""The tutorial's experiment, reproduced: everything that pins the book to its starting point.

Raschka (2024), *Build a Large Language Model (From Scratch)*, chapter 4, builds a five-layer MLP
whose layers are ``Linear -> GELU`` and adds each layer's input to its output ("shortcut") wherever
the two have the same shape, then prints the mean absolute weight gradient per layer with and
without shortcuts for seed 123 and the input ``[[1., 0., -1.]]``. This module holds that seed,
those widths and that input, ``ExampleDeepNeuralNetwork`` (a drop-in for the tutorial's class),
``compare_shortcuts`` (its experiment for any seed) and the ten numbers of the seed notebook's
printout of it (``SEED_PUBLISHED``). That printout agrees with the tutorial notebook's first edition
(commit 557ddfc, 2024-02-15) in nine numbers and with its second (3829ccd, 2024-04-03) in the
tenth; ``gradflow.tutorial_editions`` holds both editions and explains why they differ.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from .activations import GELU
from .checks import widths
from .probes import layer_gradient_means

#: The seed notebook's network widths, input and random seed.
SEED_LAYER_SIZES = (3, 3, 3, 3, 3, 1)
SEED_INPUT = ((1.0, 0.0, -1.0),)
SEED = 123
#: The seed notebook's activation (GELU, tanh form) and initialisation (PyTorch's default), by
#: their names in ``gradflow.activations`` and ``gradflow.networks.mlp``.
SEED_ACTIVATION = "gelu_tanh"
SEED_INIT = "default"

#: How the book prints a gradient statistic: four significant digits.
GRADIENT_FORMAT = ".4g"

PLAIN, SHORTCUT = "without shortcut", "with shortcut"


def check_layer_sizes(layer_sizes: Sequence[int]) -> list[int]:
    """Return ``layer_sizes`` as a list of ints, or raise an error that names the problem."""
    return widths(layer_sizes, "layer_sizes")


def default_input(x: torch.Tensor | None, width: int) -> torch.Tensor:
    """``x``, or the seed's input ``[[1., 0., -1.]]`` when ``x`` is None and the width is 3."""
    if x is not None:
        return x
    if width != len(SEED_INPUT[0]):
        raise ValueError(
            f"the default input {list(SEED_INPUT)} has width {len(SEED_INPUT[0])}, but "
            f"layer_sizes[0] is {width}: pass an input x of shape (1, {width})"
        )
    return torch.tensor(SEED_INPUT)


class ExampleDeepNeuralNetwork(nn.Module):
    """An MLP of ``Linear -> GELU`` layers with optional shortcut connections.

    Layer ``i`` maps width ``layer_sizes[i]`` to ``layer_sizes[i + 1]``. With ``use_shortcut``, a
    layer's input is added to its output where the two widths agree, exactly where the seed's check
    ``x.shape == layer_output.shape`` holds; where the width changes the layer has no shortcut.
    ``shortcut_applied`` lists, per layer, whether it gets one.

    The layers are created in the seed's order with the seed's module structure, so after the same
    ``torch.manual_seed`` the weights, parameter names (``layers.0.0.weight``, ...) and gradients
    are the seed's.

    Shape: input ``(..., layer_sizes[0])``, output ``(..., layer_sizes[-1])``.
    """

    def __init__(self, layer_sizes: Sequence[int], use_shortcut: bool):
        super().__init__()
        self.layer_sizes = check_layer_sizes(layer_sizes)
        self.use_shortcut = bool(use_shortcut)
        widths = list(zip(self.layer_sizes[:-1], self.layer_sizes[1:]))
        self.layers = nn.ModuleList(
            [nn.Sequential(nn.Linear(n_in, n_out), GELU()) for n_in, n_out in widths]
        )
        self.shortcut_applied = [self.use_shortcut and n_in == n_out for n_in, n_out in widths]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"input must be a torch.Tensor, got {type(x).__name__}")
        if x.dim() == 0 or x.shape[-1] != self.layer_sizes[0]:
            raise ValueError(
                f"input's last dimension must be layer_sizes[0] = {self.layer_sizes[0]}, "
                f"got input of shape {tuple(x.shape)}"
            )
        for layer, shortcut in zip(self.layers, self.shortcut_applied):
            layer_output = layer(x)
            x = x + layer_output if shortcut else layer_output
        return x

    def extra_repr(self) -> str:
        marks = ["+" if s else "-" for s in self.shortcut_applied]
        return (
            f"layer_sizes={self.layer_sizes}, use_shortcut={self.use_shortcut}, "
            f"shortcut per layer: {' '.join(marks)}"
        )


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
    x = default_input(x, check_layer_sizes(layer_sizes)[0])
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


#: The ten numbers the seed notebook printed (float32 means), quoted as reference data: the
#: tutorial notebook's 557ddfc edition but for the shortcut network's layers.1.0.weight, which is
#: the 3829ccd edition's (see ``gradflow.tutorial_editions``).
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


def float32_ulps_apart(a: float, b: float) -> int:
    """How many float32 numbers lie between ``a`` and ``b`` once both are rounded to float32
    (0: the same float32 number). Both must be finite and of the same sign."""
    if not (math.isfinite(a) and math.isfinite(b)) or (a < 0) != (b < 0):
        raise ValueError(f"need two finite numbers of the same sign, got {a!r} and {b!r}")
    bits = np.array([a, b], dtype=np.float32).view(np.int32).astype(np.int64)
    return int(abs(bits[0] - bits[1]))


def published_agreement(gradients: pd.DataFrame) -> dict[str, float]:
    """How far ``gradients`` (a :func:`compare_shortcuts` table) is from the seed notebook's
    printout (``SEED_PUBLISHED``): the largest relative gap, and the largest distance in float32 units in the last
    place (ulps) after rounding both to float32."""
    rows = list(SEED_PUBLISHED[PLAIN])
    if list(gradients.index) != rows or set(gradients.columns) != {PLAIN, SHORTCUT}:
        raise ValueError(f"gradients must be a compare_shortcuts table with rows {rows}")
    gaps, ulps = [], []
    for column in (PLAIN, SHORTCUT):
        for name in rows:
            ours, theirs = float(gradients.loc[name, column]), SEED_PUBLISHED[column][name]
            gaps.append(abs(ours - theirs) / theirs)
            ulps.append(float32_ulps_apart(ours, theirs))
    return {"max_relative_gap": max(gaps), "max_ulps": max(ulps)}
