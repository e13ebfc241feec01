"""Normalisation inside a residual branch: the stream's variance with and without BatchNorm in
the branch (De & Smith 2020), and SkipInit/ReZero's branch scalar started at zero, trained.
Part of the chapter "Normalisation" (``book/normalisation.md``).

The networks are ``gradflow.networks.stacked``'s full pre-activation residual MLPs: a linear stem
h_1 = W_1 x + b_1, then blocks h_{l+1} = h_l + alpha_l (W_{l+1} relu(N(h_l)) + b_{l+1}) with N
BatchNorm or nothing, Kaiming initialisation (zero biases) and, for training, a linear readout.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from ... import checks
from ...networks.stacked import StackedMLP, draw_stacked_weights, stacked_forward
from ...normalisation import stream_variance_law
from ...studies import Study, paired_summary
from ...tasks.regression import RegressionTask, make_regression_task

BRANCHES = {"none": False, "batch": True}


def stream_growth(depth: int = 32, width: int = 256, batch: int = 128, input_width: int = 16,
                  seeds: Sequence[int] = (0, 1, 2)) -> pd.DataFrame:
    """The residual stream's variance after each layer, with and without BatchNorm in the branch.

    One row per (branch, layer l = 1..depth): ``variance`` (over batch and features, mean over
    seeds, float64), ``predicted`` (``stream_variance_law`` from the measured variance after the
    stem) and, for l >= 2, ``branch_ratio``: the std of block l's branch output over the std of
    the stream it is added to (De & Smith's down-weighting; about 1 / sqrt(l) with BatchNorm).
    """
    depth = checks.positive_int("depth", depth)
    seeds = checks.seeds(seeds)
    widths = [input_width] + [width] * depth
    generator = torch.Generator().manual_seed(1000 + seeds[0])
    x = torch.randn(len(seeds), batch, input_width, generator=generator, dtype=torch.float64)
    weights, biases = draw_stacked_weights(widths, seeds, "kaiming", dtype=torch.float64)
    rows = []
    for branch, bn in BRANCHES.items():
        with torch.no_grad():
            states = stacked_forward(x, weights, biases, 1.0, activation="relu", batch_norm=bn,
                                     preactivation=True, final_activation=False,
                                     return_states=True)
        variance = np.array([s.var(dim=(1, 2)).mean().item() for s in states[1:]])
        predicted = stream_variance_law(np.arange(1, depth + 1), variance[0], branch)
        for layer in range(1, depth + 1):
            ratio = np.nan
            if layer >= 2:
                added = (states[layer] - states[layer - 1]).std(dim=(1, 2))
                ratio = float((added / states[layer - 1].std(dim=(1, 2))).mean())
            rows.append({"branch": branch, "layer": layer, "variance": variance[layer - 1],
                         "predicted": predicted[layer - 1], "branch_ratio": ratio})
    return pd.DataFrame(rows)


#: The kinds of network ``train_branch_scalars`` trains: (BatchNorm in the branch, alpha start).
KINDS = {
    "alpha = 1, no normalisation": (False, None),
    "SkipInit/ReZero: alpha = 0, learnable": (False, 0.0),
    "BatchNorm in the branch": (True, None),
}


@dataclass(frozen=True)
class BranchTraining:
    """Loss curves (one row per kind, seed and step: the training MSE before that step's update,
    the last step after the final one), the wall-clock seconds of all runs, and the task."""

    curves: pd.DataFrame
    seconds: float
    task: RegressionTask


def train_branch_scalars(depth: int = 50, width: int = 32, steps: int = 200, lr: float = 1e-3,
                         seeds: Sequence[int] = (0, 1, 2), task: RegressionTask | None = None
                         ) -> BranchTraining:
    """Train deep pre-activation residual MLPs of each kind in ``KINDS`` on the regression task of
    ``gradflow.tasks.regression`` (the shortcut chapter's), full-batch Adam, the same seeds (so the same initial weights) for each kind.

    A network has widths ``[dim] + [width] * (depth - 1) + [1]``: a stem, depth - 2 residual
    blocks and a linear readout W relu(N(h)) + b.
    """
    depth, width, steps = (checks.positive_int(n, v) for n, v in
                           (("depth", depth), ("width", width), ("steps", steps)))
    if depth < 3:
        raise ValueError(f"depth must be at least 3 (stem, one block, readout), got {depth}")
    seeds = checks.seeds(seeds)
    task = make_regression_task() if task is None else task
    widths = [task.x.shape[1]] + [width] * (depth - 1) + [task.y.shape[1]]
    frames, start = [], time.perf_counter()
    for kind, (bn, alpha) in KINDS.items():
        model = StackedMLP(widths, seeds, shortcut=[True] * len(seeds), batch_norm=bn,
                           activation="relu", init="kaiming", preactivation=True,
                           branch_alpha=alpha)
        optimiser = torch.optim.Adam(model.parameters(), lr=checks.positive_number("lr", lr),
                                     fused=True)
        history = np.empty((steps + 1, len(seeds)))
        for step in range(steps + 1):
            per_member = (model(task.x) - task.y).pow(2).mean(dim=(1, 2))
            history[step] = per_member.detach().double().numpy()
            if step == steps:
                break
            optimiser.zero_grad()
            per_member.sum().backward()
            optimiser.step()
        for m, seed in enumerate(seeds):
            frames.append(pd.DataFrame({"kind": kind, "seed": seed, "step": np.arange(steps + 1),
                                        "loss": history[:, m]}))
    return BranchTraining(pd.concat(frames, ignore_index=True), time.perf_counter() - start, task)


# --- The study: the three kinds, 12 paired seeds, kept with its code -----------------------------

#: The study's seeds, trained in chunks of ``BRANCH_CHUNK`` (one batched model per kind), and
#: its task: the shortcut chapter's, 64 inputs in eight dimensions.
BRANCH_SEEDS = tuple(range(12))
BRANCH_CHUNK = 3
BRANCH_TASK = {"n_samples": 64, "dim": 8, "task_seed": 0}


def branch_unit(seeds: Sequence[int], *, depth: int, width: int, steps: int, lr: float,
                n_samples: int, dim: int, task_seed: int) -> list[dict]:
    """:func:`train_branch_scalars` from each of ``seeds`` on ``make_regression_task(n_samples,
    dim, seed=task_seed)``. One row per (kind, seed) with ``curve``, the training MSE at every
    step (four significant digits), and ``first_loss`` and ``final_loss`` (every digit)."""
    task = make_regression_task(n_samples=n_samples, dim=dim, seed=task_seed)
    run = train_branch_scalars(depth=depth, width=width, steps=steps, lr=lr, seeds=seeds,
                               task=task)
    rows = []
    for (kind, seed), curve in run.curves.groupby(["kind", "seed"], sort=False):
        loss = curve["loss"].to_numpy()
        rows.append({"kind": kind, "seed": int(seed), "first_loss": float(loss[0]),
                     "final_loss": float(loss[-1]), "curve": [float(f"{v:.4g}") for v in loss]})
    return rows


BRANCH_STUDY = Study(
    "branch_scalars", __name__, branch_unit,
    units=[{"seeds": list(BRANCH_SEEDS[i:i + BRANCH_CHUNK])}
           for i in range(0, len(BRANCH_SEEDS), BRANCH_CHUNK)],
    params={"depth": 24, "width": 32, "steps": 100, "lr": 3e-3, **BRANCH_TASK},
    about="24-layer residual MLPs: alpha = 1, SkipInit (alpha = 0) and BatchNorm, 12 seeds")


def branch_curves(frame: pd.DataFrame) -> pd.DataFrame:
    """The study's rows as training curves, one row per (kind, seed, step) with the ``loss``
    (``plot_branch_training``'s input)."""
    checks.columns(frame, ["kind", "seed", "curve"], "branch_curves")
    long = frame[["kind", "seed", "curve"]].explode("curve", ignore_index=True)
    long["step"] = long.groupby(["kind", "seed"]).cumcount()
    return long.rename(columns={"curve": "loss"}).astype({"loss": float})


def branch_log_ratio(frame: pd.DataFrame, column: str, kind: str, against: str
                     ) -> dict[str, float]:
    """log10(``kind`` / ``against``) of ``column``, paired by seed (the kinds of a seed share
    their initial weights), summarised by :func:`gradflow.studies.paired_summary`."""
    checks.columns(frame, ["kind", "seed", column], "branch_log_ratio")
    table = frame.pivot(index="seed", columns="kind", values=column)
    for name in (kind, against):
        if name not in table:
            raise ValueError(f"kind {name!r} is not in the study")
    return paired_summary(np.log10(table[kind] / table[against]))
