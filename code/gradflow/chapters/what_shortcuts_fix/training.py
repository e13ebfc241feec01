"""Well-initialised plain networks against residual ones, trained (He et al. 2016, Fig. 1 in
miniature), on the shortcut chapter's regression task and with its training loop (``gradflow.tasks.regression``). Part of the
chapter "What shortcuts fix when gradients do not vanish" (``book/what_shortcuts_fix.md``)."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from ... import checks
from ...networks.stacked import StackedMLP, draw_stacked_weights
from ...studies import Study, paired
from ...tasks.regression import (
    RegressionTask,
    make_regression_task,
    torch_threads,
    train_full_batch,
)
from .spectra import TANH_SIGMA_W2

#: kind: (activation, weights, shortcut, BatchNorm). ReLU with Kaiming's init; tanh with
#: sigma_w^2 = TANH_SIGMA_W2 (near its critical point) from Gaussian or semi-orthogonal draws.
KINDS = {
    "relu": ("relu", "gaussian", False, False),
    "tanh_gaussian": ("tanh", "gaussian", False, False),
    "tanh_orthogonal": ("tanh", "orthogonal", False, False),
    "residual": ("relu", "gaussian", True, False),
    "relu_bn": ("relu", "gaussian", False, True),
    "tanh_gaussian_bn": ("tanh", "gaussian", False, True),
    "tanh_orthogonal_bn": ("tanh", "orthogonal", False, True),
    "residual_bn": ("relu", "gaussian", True, True),
}

#: The kinds without shortcuts.
PLAIN_KINDS = tuple(k for k, (_, _, shortcut, _) in KINDS.items() if not shortcut)

#: How the prose names each kind.
KIND_LABELS = {
    "relu": "ReLU with Kaiming's initialisation",
    "tanh_gaussian": "tanh with Gaussian weights",
    "tanh_orthogonal": "tanh with orthogonal weights",
    "residual": "residual ReLU",
    "relu_bn": "ReLU with BatchNorm",
    "tanh_gaussian_bn": "tanh with Gaussian weights and BatchNorm",
    "tanh_orthogonal_bn": "tanh with orthogonal weights and BatchNorm",
    "residual_bn": "residual ReLU with BatchNorm",
}


@dataclass(frozen=True)
class Training:
    """``curves``: one row per (depth, kind, seed, step) with the training loss before that
    step's update (the last step: after the final update); ``seconds``: wall-clock time;
    ``models``: the trained models, {(depth, kind, seed): (model, member index)}; ``task``."""

    curves: pd.DataFrame
    seconds: float
    models: dict = field(repr=False)
    task: RegressionTask = field(repr=False)


def _model(widths: list[int], kinds: list[str], seeds: list[int], activation: str,
           batch_norm: bool) -> StackedMLP:
    """One StackedMLP for every (kind, seed) member sharing an activation and BatchNorm: drawn
    with Kaiming's init, then tanh members rescaled to sigma_w^2 = TANH_SIGMA_W2 and the
    orthogonal ones replaced by semi-orthogonal draws from the same seed."""
    member_kinds = [k for k in kinds for _ in seeds]
    member_seeds = [s for _ in kinds for s in seeds]
    model = StackedMLP(widths, member_seeds, shortcut=[KINDS[k][2] for k in member_kinds],
                       batch_norm=batch_norm, activation=activation, init="kaiming")
    if activation == "relu":
        return model
    orthogonal, _ = draw_stacked_weights(widths, seeds, "semi_orthogonal")
    with torch.no_grad():
        for m, (kind, seed) in enumerate(zip(member_kinds, member_seeds)):
            for layer, w in enumerate(model.weights):
                if KINDS[kind][1] == "orthogonal":
                    w[m] = orthogonal[layer][seeds.index(seed)] * math.sqrt(TANH_SIGMA_W2)
                else:
                    w[m] *= math.sqrt(TANH_SIGMA_W2 / 2.0)
    return model


def train_plain_and_residual(
    depths: Sequence[int] = (10, 30, 50),
    kinds: Sequence[str] = tuple(KINDS),
    seeds: Sequence[int] = (0, 1, 2),
    *,
    width: int = 32,
    steps: int = 200,
    lr: float = 1e-3,
    task: RegressionTask | None = None,
    threads: int = 1,
) -> Training:
    """Train every (kind, seed) network of each depth with full-batch Adam for ``steps`` steps.

    A network of depth D has widths ``[dim] + [width] * (D - 1) + [1]`` and a linear output;
    residual kinds have identity shortcuts on the D - 2 layers whose width is unchanged;
    BatchNorm kinds normalise every hidden pre-activation (``stacked_forward``). All members that
    share an activation and BatchNorm train at once, as one batched model.
    """
    depths = [checks.positive_int("depth", d) for d in depths]
    if min(depths) < 3:
        raise ValueError(f"depths must be at least 3, got {depths}")
    kinds = checks.some_of("kinds", kinds, tuple(KINDS))
    seeds = checks.seeds(seeds)
    steps = checks.positive_int("steps", steps)
    task = make_regression_task() if task is None else task
    start = time.perf_counter()
    curves, models = [], {}
    with torch_threads(checks.positive_int("threads", threads)):
        for depth in depths:
            widths = [task.x.shape[1]] + [width] * (depth - 1) + [task.y.shape[1]]
            groups: dict[tuple[str, bool], list[str]] = {}
            for kind in kinds:
                groups.setdefault((KINDS[kind][0], KINDS[kind][3]), []).append(kind)
            for (activation, batch_norm), group in groups.items():
                model = _model(widths, group, seeds, activation, batch_norm)
                history, _ = train_full_batch(model, task, steps, lr)
                for m, (kind, seed) in enumerate((k, s) for k in group for s in seeds):
                    models[depth, kind, seed] = (model, m)
                    curves.append(pd.DataFrame({"depth": depth, "kind": kind, "seed": seed,
                                                "step": np.arange(steps + 1),
                                                "loss": history[:, m]}))
    order = {k: i for i, k in enumerate(kinds)}
    frame = pd.concat(curves, ignore_index=True).sort_values(
        ["depth", "kind", "seed", "step"], key=lambda c: c.map(order) if c.name == "kind" else c,
        kind="stable").reset_index(drop=True)
    return Training(frame, time.perf_counter() - start, models, task)


# --- The study: every kind, 24 paired seeds, kept with its code ----------------------------------

#: The study's depths, seeds (trained in chunks of ``COMPARISON_CHUNK``) and length; the chapter
#: reports the loss after 100 and after 300 steps of the same runs (Adam's learning rate is
#: constant, so a run's first 100 steps are a 100-step run).
COMPARISON_DEPTHS = (10, 30, 50)
COMPARISON_SEEDS = tuple(range(24))
COMPARISON_CHUNK = 6
COMPARISON_STEPS = 300
COMPARISON_WINDOWS = (100, 300)
#: The task: the shortcut chapter's regression task, 64 inputs in eight dimensions.
COMPARISON_TASK = {"n_samples": 64, "dim": 8, "task_seed": 0}
#: The training curves keep the loss every ``CURVE_EVERY`` steps, to four significant digits
#: (what a figure on a log scale can show; the final losses keep every digit).
CURVE_EVERY = 25


def comparison_unit(depth: int, seeds: Sequence[int], *, kinds: Sequence[str], width: int,
                    steps: int, windows: Sequence[int], lr: float, n_samples: int, dim: int,
                    task_seed: int, curve_every: int) -> list[dict]:
    """Train every kind of ``kinds`` at ``depth`` from each seed (:func:`train_plain_and_residual`)
    on ``make_regression_task(n_samples, dim, seed=task_seed)``. One row per run: ``depth, kind,
    seed``, ``loss_<t>`` for each t of ``windows`` (the training loss after t updates) and
    ``curve`` (the loss after 0, curve_every, 2 curve_every, ... updates, to four significant
    digits)."""
    windows = [checks.positive_int("window", t) for t in windows]
    if max(windows) > steps:
        raise ValueError(f"windows must lie in 1..steps={steps}, got {windows}")
    task = make_regression_task(n_samples=n_samples, dim=dim, seed=task_seed)
    run = train_plain_and_residual(depths=(depth,), kinds=kinds, seeds=seeds, width=width,
                                   steps=steps, lr=lr, task=task)
    rows = []
    for (kind, seed), curve in run.curves.groupby(["kind", "seed"], sort=False):
        loss = curve.set_index("step")["loss"]
        rows.append({"depth": depth, "kind": kind, "seed": int(seed),
                     **{f"loss_{t}": float(loss[t]) for t in windows},
                     "curve": [float(f"{v:.4g}") for v in loss.iloc[::checks.positive_int(
                         "curve_every", curve_every)]]})
    return rows


COMPARISON_STUDY = Study(
    "plain_and_residual", __name__, comparison_unit,
    units=[{"depth": depth, "seeds": list(COMPARISON_SEEDS[i:i + COMPARISON_CHUNK])}
           for depth in COMPARISON_DEPTHS
           for i in range(0, len(COMPARISON_SEEDS), COMPARISON_CHUNK)],
    params={"kinds": list(KINDS), "width": 32, "steps": COMPARISON_STEPS,
            "windows": list(COMPARISON_WINDOWS), "lr": 1e-3, **COMPARISON_TASK,
            "curve_every": CURVE_EVERY},
    about="well-initialised plain and residual MLPs, 8 kinds, 3 depths, 24 paired seeds")


def study_curves(frame: pd.DataFrame, curve_every: int = CURVE_EVERY,
                 last: int | None = None) -> pd.DataFrame:
    """The study's rows as training curves, one row per (depth, kind, seed, step) with the loss
    (``plot_training``'s input), up to step ``last``."""
    checks.columns(frame, ["depth", "kind", "seed", "curve"], "study_curves")
    long = frame[["depth", "kind", "seed", "curve"]].explode("curve", ignore_index=True)
    long["step"] = long.groupby(["depth", "kind", "seed"]).cumcount() * curve_every
    long = long.rename(columns={"curve": "loss"}).astype({"loss": float})
    return long if last is None else long[long["step"] <= last].reset_index(drop=True)


def paired_comparison(frame: pd.DataFrame, column: str, kind: str, against: str,
                      depth: int) -> dict[str, float]:
    """``kind`` against ``against`` at ``depth``, paired by seed (the runs of a seed share the
    task and, where the kinds allow, the weights' draws): the number of seeds where ``kind``
    ends lower (``wins``) out of ``n``, and the mean of log10(loss of kind / loss of against)
    with its 95 % t-interval (``mean, low, high``; negative: ``kind`` lower), and the smallest
    true mean log ratio these seeds would detect four times in five (``detectable``)."""
    checks.columns(frame, ["depth", "kind", "seed", column], "paired_comparison")
    at = frame[frame["depth"] == depth].pivot(index="seed", columns="kind", values=column)
    for name in (kind, against):
        if name not in at:
            raise ValueError(f"kind {name!r} is not in the study at depth {depth}")
    return paired(np.log10(at[kind]), np.log10(at[against]))


def study_finals(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """The study's loss ``column`` per (depth, kind): median, min and max over seeds."""
    checks.columns(frame, ["depth", "kind", column], "study_finals")
    return frame.groupby(["depth", "kind"], sort=False)[column].agg(["median", "min", "max"])


def residual_against_plain(frame: pd.DataFrame, column: str, residual: str = "residual_bn",
                           plain: Sequence[str] = PLAIN_KINDS) -> pd.DataFrame:
    """:func:`paired_comparison` of ``residual`` against every plain kind at every depth of
    the study: one row per (depth, plain kind) with ``wins`` (seeds where the residual network
    ends lower), ``n``, and the mean log10 ratio with its 95 % interval."""
    rows = {(depth, kind): paired_comparison(frame, column, residual, kind, depth)
            for depth in sorted(frame["depth"].unique()) for kind in plain}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis(["depth", "kind"])
