"""Filter-normalised loss-landscape slices (Li et al. 2018) around the trained plain and residual
networks of ``training``. Part of the chapter "What shortcuts fix when gradients do not vanish"
(``book/what_shortcuts_fix.md``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from ...landscapes import filter_normalised_direction, local_minima, loss_slice
from ...networks.stacked import stacked_forward
from .training import Training


@dataclass(frozen=True)
class Slices:
    """``surfaces``: {(depth, kind): the loss on the grid, indexed [b, a]}; ``coordinates``;
    ``summary``: one row per (depth, kind) with the loss at the centre, the median loss on the
    grid's edge (distance 1 along a direction) and the number of grid-local minima."""

    surfaces: dict
    coordinates: np.ndarray
    summary: pd.DataFrame


def landscape_slices(
    training: Training,
    kinds: Sequence[str] = ("relu_bn", "residual_bn"),
    depths: Sequence[int] = (10, 50),
    *,
    seed: int = 0,
    direction_seed: int = 0,
    points: int = 21,
) -> Slices:
    """The slice L(theta + a d1 + b d2), a, b in [-1, 1] on ``points`` x ``points``, around the
    trained network ``(depth, kind, seed)`` of ``training``, with two filter-normalised
    directions drawn from a generator seeded with ``direction_seed``. The loss is the training
    MSE on the whole task (BatchNorm with the task's batch statistics, as in training)."""
    coordinates = np.linspace(-1.0, 1.0, points)
    task = training.task
    surfaces, rows = {}, []
    for depth in depths:
        for kind in kinds:
            model, m = training.models[depth, kind, seed]
            weights = [w[m].detach().double() for w in model.weights]
            biases = [b[m].detach().double() for b in model.biases]
            generator = torch.Generator().manual_seed(direction_seed)
            d1 = filter_normalised_direction(weights, generator)
            d2 = filter_normalised_direction(weights, generator)
            gate = float(model.shortcut[m])

            def loss(moved, biases=biases, gate=gate, model=model):
                g = moved[0].shape[0]
                x = task.x.double().expand(g, *task.x.shape)
                out = stacked_forward(x, moved, [b.expand(g, -1) for b in biases], gate,
                                      activation=model.activation, batch_norm=model.batch_norm,
                                      final_activation=model.final_activation)
                return (out - task.y.double()).pow(2).mean(dim=(1, 2))

            surface = loss_slice(loss, weights, (d1, d2), coordinates)
            surfaces[depth, kind] = surface
            edge = np.concatenate([surface[0], surface[-1], surface[1:-1, 0], surface[1:-1, -1]])
            rows.append({"depth": depth, "kind": kind,
                         "centre": surface[points // 2, points // 2],
                         "edge_median": float(np.median(edge)),
                         "local_minima": local_minima(surface)})
    return Slices(surfaces, coordinates, pd.DataFrame(rows).set_index(["depth", "kind"]))
