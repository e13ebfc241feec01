"""The seed notebook's deep network, made general and safe to call.

Raschka (2024), *Build a Large Language Model (From Scratch)*, chapter 4, builds a five-layer MLP
whose layers are ``Linear -> GELU`` and adds each layer's input to its output ("shortcut") wherever
the two have the same shape. ``ExampleDeepNeuralNetwork`` here is a drop-in for that class.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .activations import GELU


def check_layer_sizes(layer_sizes: Sequence[int]) -> list[int]:
    """Return ``layer_sizes`` as a list of ints, or raise an error that names the problem."""
    if isinstance(layer_sizes, (str, bytes)) or not isinstance(layer_sizes, Sequence):
        raise TypeError(
            f"layer_sizes must be a sequence of positive integers, got {layer_sizes!r}"
        )
    sizes = list(layer_sizes)
    if len(sizes) < 2:
        raise ValueError(
            f"layer_sizes needs at least two entries (input and output width), got {sizes}"
        )
    for i, size in enumerate(sizes):
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(
                f"layer_sizes[{i}] must be a positive integer, got {size!r} in {sizes}"
            )
    return sizes


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
