"""Filter-normalised loss-landscape slices (Li et al. 2018) around the trained plain and residual
networks of ``training``. Part of the chapter "What shortcuts fix when gradients do not vanish"
(``book/what_shortcuts_fix.md``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from ... import checks
from ...landscapes import filter_normalised_direction, local_minima, loss_slice
from ...networks.stacked import stacked_forward
from ...studies import Study
from ...tasks.regression import make_regression_task
from .training import COMPARISON_TASK, Training, train_plain_and_residual


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


# --- The study: the slices, kept with their code ---------------------------------------------------

#: The slices the chapter shows: plain and residual ReLU networks with BatchNorm, seed 0, trained
#: as in the training study for 100 steps, on a 15 x 15 grid.
SLICE_PARAMS = {"kinds": ["relu_bn", "residual_bn"], "seed": 0, "direction_seed": 0,
                "points": 15, "width": 32, "steps": 100, "lr": 1e-3, **COMPARISON_TASK}


def slice_unit(depth: int, *, kinds: Sequence[str], seed: int, direction_seed: int, points: int,
               width: int, steps: int, lr: float, n_samples: int, dim: int,
               task_seed: int) -> list[dict]:
    """Train ``kinds`` at ``depth`` from ``seed`` (:func:`train_plain_and_residual`) and slice
    the loss around each (:func:`landscape_slices`). One row per kind: ``depth, kind``, the
    summary's columns, and ``surface`` (the grid's losses, a list of rows)."""
    task = make_regression_task(n_samples=n_samples, dim=dim, seed=task_seed)
    run = train_plain_and_residual(depths=(depth,), kinds=kinds, seeds=(seed,), width=width,
                                   steps=steps, lr=lr, task=task)
    slices = landscape_slices(run, kinds, (depth,), seed=seed, direction_seed=direction_seed,
                              points=points)
    return [{"depth": depth, "kind": kind, "centre": float(row["centre"]),
             "edge_median": float(row["edge_median"]), "local_minima": int(row["local_minima"]),
             "surface": slices.surfaces[depth, kind].tolist()}
            for (_, kind), row in slices.summary.iterrows()]


SLICE_STUDY = Study("landscape_slices", __name__, slice_unit,
                    units=[{"depth": 10}, {"depth": 50}], params=SLICE_PARAMS,
                    about="filter-normalised loss slices around trained BatchNorm networks")


def slices_from(frame: pd.DataFrame) -> Slices:
    """The study's rows as :class:`Slices` (what ``plot_landscapes`` draws)."""
    checks.columns(frame, ["depth", "kind", "surface", "centre", "edge_median", "local_minima"],
                   "slices_from")
    surfaces = {(int(r.depth), r.kind): np.array(r.surface) for r in frame.itertuples()}
    points = len(next(iter(surfaces.values())))
    summary = frame.set_index(["depth", "kind"])[["centre", "edge_median", "local_minima"]]
    return Slices(surfaces, np.linspace(-1.0, 1.0, points), summary)
