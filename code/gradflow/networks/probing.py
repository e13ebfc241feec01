"""Many stacked MLPs with the data of a gradient probe: each seed's weights, then its inputs and
readout drawn from the same generator. The chapters that measure gradients at initialisation
with a readout loss <r, h_D> (the normalisation chapter's BatchNorm placements, the shortcut
chapter's block forms) draw their networks here, so that one seed always means the same network
and the same data."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .. import checks
from .stacked import draw_stacked_weights


def weights_and_probe_data(
    widths: Sequence[int], seeds: Sequence[int], init: str, batch: int,
    dtype: torch.dtype = torch.float64,
) -> tuple[list[torch.Tensor], list[torch.Tensor], torch.Tensor, torch.Tensor]:
    """``draw_stacked_weights(widths, seeds, init)`` and, after each seed's weights, from the same
    generator, its inputs ``randn(batch, widths[0])`` and readout ``randn(batch, widths[-1])``.

    Returns ``(weights, biases, x, readout)``: per layer ``(S, out, in)`` and ``(S, out)``
    tensors, then ``x`` of shape ``(S, batch, widths[0])`` and ``readout`` of shape
    ``(S, batch, widths[-1])``, all in ``dtype`` (drawn in float32, as PyTorch draws).
    """
    widths = checks.widths(widths)
    seeds = checks.seeds(seeds)
    batch = checks.positive_int("batch", batch)
    x = torch.empty(len(seeds), batch, widths[0])
    readout = torch.empty(len(seeds), batch, widths[-1])

    def draw_data(s: int, generator: torch.Generator) -> None:
        x[s] = torch.randn(batch, widths[0], generator=generator)
        readout[s] = torch.randn(batch, widths[-1], generator=generator)

    weights, biases = draw_stacked_weights(widths, seeds, init, then=draw_data, dtype=dtype)
    return weights, biases, x.to(dtype), readout.to(dtype)
