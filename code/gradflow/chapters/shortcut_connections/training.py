"""Training, not one gradient snapshot: plain and residual MLPs, with and without BatchNorm, trained
on a small regression task (He et al. 2016, "Deep residual learning", Fig. 1 in miniature). Part
of the chapter "Shortcut connections" (``book/shortcut_connections.md``)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ... import checks
from ...networks.stacked import StackedMLP
from ...studies import Study, paired_summary

# The regression task and the training loop live in ``gradflow.tasks.regression`` (the
# normalisation chapter and "What shortcuts fix" train on them too); this package re-exports them.
from ...tasks.regression import (
    RegressionTask,
    make_regression_task,
    torch_threads,
    train_full_batch,
)
from ...tutorial import SEED_ACTIVATION

#: The networks ``train_depth_comparison`` trains: (shortcut, BatchNorm) per kind.
KINDS = {
    "plain": (False, False),
    "residual": (True, False),
    "plain_bn": (False, True),
    "residual_bn": (True, True),
}


@dataclass(frozen=True)
class TrainingComparison:
    """Loss curves of plain and residual MLPs, with and without BatchNorm, of several depths.

    Attributes:
        curves: one row per (depth, kind, seed, step) with the training ``loss`` (MSE) of the
            parameters *before* that step's update; the last step (= ``steps``) is the loss
            after the final update.
        initial_gradients: one row per (depth, kind, seed): mean |dL/dW| of the first and the
            last layer at initialisation and their ratio ``first_over_last``.
        seconds: wall-clock time of the whole comparison.
    """

    curves: pd.DataFrame
    initial_gradients: pd.DataFrame
    seconds: float


def train_depth_comparison(
    depths: Sequence[int] = (8, 20, 50),
    kinds: Sequence[str] = tuple(KINDS),
    seeds: Sequence[int] = (0, 1, 2),
    *,
    width: int = 32,
    steps: int = 300,
    lr: float = 1e-3,
    activation: str = SEED_ACTIVATION,
    task: RegressionTask | None = None,
    threads: int = 1,
) -> TrainingComparison:
    """Train every (kind, seed) network of each depth with full-batch Adam for ``steps`` steps.

    A network of depth D has widths ``[dim] + [width] * (D - 1) + [1]``, the seed's GELU (tanh
    form), PyTorch's default initialisation and a linear output. ``"plain"``: no shortcuts;
    ``"residual"``: identity shortcuts on the D - 2 layers whose width is unchanged (the seed's
    rule); ``"plain_bn"`` and ``"residual_bn"``: the same with BatchNorm before each hidden
    activation, as in He et al. (2016). Networks with the same seed start from the same
    weights. He et al. 2016, Fig. 1 in miniature: the question is the training loss.
    """
    depths = [checks.positive_int("depth", d) for d in depths]
    if min(depths) < 2:
        raise ValueError(f"depths must be at least 2 (one hidden layer), got {depths}")
    kinds = list(kinds)
    if not kinds or any(k not in KINDS for k in kinds):
        raise ValueError(f"kinds must be some of {', '.join(map(repr, KINDS))}, got {kinds!r}")
    seeds = checks.seeds(seeds)
    steps = checks.positive_int("steps", steps)
    width = checks.positive_int("width", width)
    checks.positive_number("lr", lr)
    task = make_regression_task() if task is None else task
    start = time.perf_counter()
    curves, initial = [], []
    with torch_threads(checks.positive_int("threads", threads)):
        for depth in depths:
            widths = [task.x.shape[1]] + [width] * (depth - 1) + [task.y.shape[1]]
            for norm in (False, True):
                members = [(k, s) for k in kinds if KINDS[k][1] == norm for s in seeds]
                if not members:
                    continue
                model = StackedMLP(widths, [s for _, s in members],
                                   shortcut=[KINDS[k][0] for k, _ in members], batch_norm=norm,
                                   activation=activation)
                history, grads = train_full_batch(model, task, steps, lr)
                for m, (kind, seed) in enumerate(members):
                    curves.append(pd.DataFrame({"depth": depth, "kind": kind, "seed": seed,
                                                "step": np.arange(steps + 1),
                                                "loss": history[:, m]}))
                    first, last = grads[0][m], grads[1][m]
                    initial.append({"depth": depth, "kind": kind, "seed": seed, "first": first,
                                    "last": last, "first_over_last": first / last})
    order = {k: i for i, k in enumerate(kinds)}
    curves_frame = pd.concat(curves, ignore_index=True)
    curves_frame = curves_frame.sort_values(
        ["depth", "kind", "seed", "step"], key=lambda c: c.map(order) if c.name == "kind" else c,
        kind="stable",
    ).reset_index(drop=True)
    return TrainingComparison(
        curves=curves_frame,
        initial_gradients=pd.DataFrame(initial),
        seconds=time.perf_counter() - start,
    )


def final_losses(curves: pd.DataFrame) -> pd.DataFrame:
    """The final training loss per (depth, kind): median, min and max over seeds."""
    last = curves[curves["step"] == curves["step"].max()]
    return last.groupby(["depth", "kind"], sort=False)["loss"].agg(["median", "min", "max"])


# --- The study: every kind and depth, 12 paired seeds, kept with its code ------------------------

#: The study's depths and seeds (trained in chunks of ``COMPARISON_CHUNK``, as one batched model
#: per depth and normalisation), and its task: 64 inputs in eight dimensions.
COMPARISON_DEPTHS = (8, 20, 50)
COMPARISON_SEEDS = tuple(range(12))
COMPARISON_CHUNK = 3
COMPARISON_TASK = {"n_samples": 64, "dim": 8, "task_seed": 0}
#: The training curves keep the loss every ``CURVE_EVERY`` steps, to four significant digits
#: (what a figure on a log scale can show; the first and final losses keep every digit).
CURVE_EVERY = 10


def comparison_unit(depth: int, seeds: Sequence[int], *, width: int, steps: int, lr: float,
                    n_samples: int, dim: int, task_seed: int, curve_every: int) -> list[dict]:
    """:func:`train_depth_comparison` of every kind at ``depth`` from each of ``seeds``, on
    ``make_regression_task(n_samples, dim, seed=task_seed)``. One row per run: ``depth, kind,
    seed``, ``first_loss`` and ``final_loss`` (before the first and after the last update),
    ``first_over_last`` (the first layer's mean |dL/dW| over the last layer's, at
    initialisation) and ``curve`` (the loss every ``curve_every`` steps, four significant
    digits)."""
    curve_every = checks.positive_int("curve_every", curve_every)
    task = make_regression_task(n_samples=n_samples, dim=dim, seed=task_seed)
    run = train_depth_comparison(depths=(depth,), seeds=seeds, width=width, steps=steps, lr=lr,
                                 task=task)
    ratios = run.initial_gradients.set_index(["kind", "seed"])["first_over_last"]
    rows = []
    for (kind, seed), curve in run.curves.groupby(["kind", "seed"], sort=False):
        loss = curve.set_index("step")["loss"]
        rows.append({"depth": depth, "kind": kind, "seed": int(seed),
                     "first_loss": float(loss.iloc[0]), "final_loss": float(loss.iloc[-1]),
                     "first_over_last": float(ratios[kind, seed]),
                     "curve": [float(f"{v:.4g}") for v in loss.iloc[::curve_every]]})
    return rows


COMPARISON_STUDY = Study(
    "shortcut_training", __name__, comparison_unit,
    units=[{"depth": depth, "seeds": list(COMPARISON_SEEDS[i:i + COMPARISON_CHUNK])}
           for depth in COMPARISON_DEPTHS
           for i in range(0, len(COMPARISON_SEEDS), COMPARISON_CHUNK)],
    params={"width": 32, "steps": 300, "lr": 1e-3, **COMPARISON_TASK,
            "curve_every": CURVE_EVERY},
    about="plain and residual GELU MLPs with and without BatchNorm, 3 depths, 12 paired seeds")


def study_curves(frame: pd.DataFrame, curve_every: int = CURVE_EVERY) -> pd.DataFrame:
    """The study's rows as training curves, one row per (depth, kind, seed, step) with the loss
    (``plot_training_curves``' input)."""
    checks.columns(frame, ["depth", "kind", "seed", "curve"], "study_curves")
    long = frame[["depth", "kind", "seed", "curve"]].explode("curve", ignore_index=True)
    long["step"] = long.groupby(["depth", "kind", "seed"]).cumcount() * curve_every
    return long.rename(columns={"curve": "loss"}).astype({"loss": float})


def log_ratio_comparison(frame: pd.DataFrame, column: str, kind: str, against: str,
                         depth: int) -> dict[str, float]:
    """``kind`` against ``against`` at ``depth``, paired by seed (the runs of a seed start from
    the same weights): the seeds where ``kind``'s ``column`` is the smaller (``wins``) of ``n``,
    and the mean of log10(kind / against) with its 95 % t-interval (``mean, low, high``;
    negative: ``kind`` smaller) and the smallest true mean these seeds would detect four times
    in five (``detectable``)."""
    checks.columns(frame, ["depth", "kind", "seed", column], "log_ratio_comparison")
    at = frame[frame["depth"] == depth].pivot(index="seed", columns="kind", values=column)
    for name in (kind, against):
        if name not in at:
            raise ValueError(f"kind {name!r} is not in the study at depth {depth}")
    return paired_summary(np.log10(at[kind] / at[against]))
