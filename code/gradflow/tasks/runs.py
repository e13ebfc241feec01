"""What every paired training study on the regression task (``gradflow.tasks.regression``)
shares: its arguments, checked once (a depth, the seeds, the number of steps and the steps at
which the loss is kept), the widths of an MLP of that depth on the task, and the loop that trains
each arm of the comparison from the same seeds (``train_arms``), and the paired summary of two
arms (``paired_log10``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from .. import checks
from ..networks.stacked import StackedMLP
from ..studies import paired_summary
from .regression import make_regression_task, train_full_batch

#: The regression task the training studies use: the shortcut chapter's 64 inputs in eight
#: dimensions, from task seed 0 (``make_regression_task(n_samples, dim, seed=task_seed)``).
STUDY_TASK = {"n_samples": 64, "dim": 8, "task_seed": 0}


def check_run(depth: int, seeds: Sequence[int], steps: int, windows: Sequence[int], *,
              min_depth: int = 2) -> tuple[int, list[int], int, list[int]]:
    """``(depth, seeds, steps, windows)`` checked: ``depth >= min_depth``, the seeds, a positive
    number of steps and windows within 1..steps. Raises a ValueError naming the argument."""
    depth = checks.positive_int("depth", depth)
    if depth < min_depth:
        raise ValueError(f"depth must be at least {min_depth}, got {depth}")
    seeds = checks.seeds(seeds)
    steps = checks.positive_int("steps", steps)
    windows = [checks.positive_int("window", t) for t in windows]
    if not windows or max(windows) > steps:
        raise ValueError(f"windows must lie in 1..steps={steps}, got {windows}")
    return depth, seeds, steps, windows


def mlp_widths(dim: int, width: int, depth: int, outputs: int = 1) -> list[int]:
    """``[dim] + [width] * (depth - 1) + [outputs]``: a ``depth``-layer MLP of hidden ``width``."""
    return ([checks.positive_int("dim", dim)] + [checks.positive_int("width", width)] * (depth - 1)
            + [checks.positive_int("outputs", outputs)])


def loss_rows(history: np.ndarray, seeds: Sequence[int], windows: Sequence[int],
              **labels: object) -> list[dict]:
    """One row per seed (member m of a trained stack): ``labels``, ``seed`` and ``loss_<t>``,
    the loss after t steps (``history[t, m]``, as ``train_full_batch`` returns it)."""
    return [{**labels, "seed": int(seed), **{f"loss_{t}": float(history[t, m]) for t in windows}}
            for m, seed in enumerate(seeds)]


def train_arms(arm_column: str, arms: Sequence[str],
               model_for: Callable[[str, list[int], list[int]], StackedMLP], *, depth: int,
               seeds: Sequence[int], width: int, steps: int, windows: Sequence[int], lr: float,
               n_samples: int, dim: int, task_seed: int, min_depth: int = 2,
               **labels: object) -> list[dict]:
    """Train ``model_for(arm, widths, seeds)`` for each arm on ``make_regression_task(n_samples,
    dim, seed=task_seed)`` with full-batch Adam (``train_full_batch``), widths ``mlp_widths(dim,
    width, depth)``. One row per (arm, seed): ``labels``, ``depth``, ``<arm_column>``, ``seed``,
    ``loss_<t>`` for t in ``windows`` and ``first_over_last``, the first layer's mean |dL/dW|
    over the last layer's at initialisation."""
    depth, seeds, steps, windows = check_run(depth, seeds, steps, windows, min_depth=min_depth)
    lr = checks.positive_number("lr", lr)
    task = make_regression_task(n_samples=n_samples, dim=dim, seed=task_seed)
    widths = mlp_widths(dim, width, depth)
    rows = []
    for arm in arms:
        history, (first, last) = train_full_batch(model_for(arm, widths, seeds), task, steps, lr)
        runs = loss_rows(history, seeds, windows, **labels, depth=depth, **{arm_column: arm})
        rows += [{**row, "first_over_last": float(f / g)} for row, f, g in zip(runs, first, last)]
    return rows


def paired_log10(frame: pd.DataFrame, *, arms: str, arm: str, against: str, value: str,
                 by: str | Sequence[str]) -> pd.DataFrame:
    """``arm`` against ``against`` in each group of ``by``, paired by ``seed``: one row per group
    with the mean of log10(value of arm / value of against) and its 95 % t-interval (``mean,
    low, high``; negative: ``arm`` lower), ``wins`` (seeds where ``arm``'s value is lower) of
    ``n`` and ``detectable``, all from ``gradflow.studies.paired_summary``, and the
    medians ``<arm>_loss`` and ``<against>_loss``. ``arms`` names the column that holds the
    arm."""
    groups = [by] if isinstance(by, str) else list(by)
    missing = [c for c in [*groups, arms, "seed", value] if c not in frame.columns]
    if missing:
        raise ValueError(f"paired_log10 needs the columns {missing}; the frame has "
                         f"{list(frame.columns)}")
    rows = []
    for key, group in frame.groupby(groups, sort=False):
        wide = group.pivot(index="seed", columns=arms, values=value)
        for name in (arm, against):
            if name not in wide:
                raise ValueError(f"{arms} {name!r} is not in the group {key}")
        log_ratio = list(np.log10(wide[arm] / wide[against]))
        rows.append({**dict(zip(groups, key)), **paired_summary(log_ratio),
                     f"{arm}_loss": float(wide[arm].median()),
                     f"{against}_loss": float(wide[against].median())})
    return pd.DataFrame(rows).set_index(groups)
