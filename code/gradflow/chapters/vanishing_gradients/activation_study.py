"""GELU against ReLU, trained: the same small networks with either activation, paired by seed, on
the shortcut chapter's regression task (``gradflow.tasks.regression``). Part of the chapter
"Vanishing and exploding gradients" (``book/vanishing_gradients.md``).

Two kinds of network, each at two depths: ``"plain"``, a plain MLP with Kaiming's initialisation
(where the chapter's depth sweep shows ReLU keeping its gradient level and GELU losing it), and
``"residual"``, the tutorial's residual MLP with PyTorch's default initialisation (identity
shortcuts wherever the width is unchanged: the network does not rely on its initialisation for
depth). The two activations of one seed start from the same weights (the draws do not depend on
the activation), so each seed gives one paired difference.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ... import checks
from ...networks.stacked import StackedMLP
from ...studies import Study, detectable, interval
from ...tasks.regression import make_regression_task, train_full_batch

#: kind: (initialisation, identity shortcuts)
KINDS = {"plain": ("kaiming", False), "residual": ("default", True)}
#: The two activations compared: exact GELU (PyTorch's ``nn.GELU()``) and ReLU.
ACTIVATIONS = ("gelu", "relu")
STUDY_DEPTHS = (10, 30)
STUDY_SEEDS = tuple(range(24))
STUDY_CHUNK = 12
STUDY_STEPS = 300
STUDY_WINDOWS = (100, 300)
STUDY_TASK = {"n_samples": 64, "dim": 8, "task_seed": 0}


def activation_unit(kind: str, depth: int, seeds: Sequence[int], *, width: int, steps: int,
                    windows: Sequence[int], lr: float, n_samples: int, dim: int,
                    task_seed: int) -> list[dict]:
    """Train the ``kind`` network of ``depth`` layers (widths [dim] + [width] * (depth - 1) +
    [1], linear output) with each activation of ``ACTIVATIONS`` from each seed, with full-batch
    Adam (``train_full_batch``). One row per run: ``kind, depth, activation, seed``, ``loss_<t>``
    (the training MSE after t updates, for t in ``windows``) and ``first_over_last`` (the first
    layer's mean |dL/dW| over the last layer's at initialisation)."""
    checks.one_of("kind", kind, list(KINDS), what="kind")
    depth = checks.positive_int("depth", depth)
    if depth < 2:
        raise ValueError(f"depth must be at least 2 (one hidden layer), got {depth}")
    seeds = checks.seeds(seeds)
    steps = checks.positive_int("steps", steps)
    windows = [checks.positive_int("window", t) for t in windows]
    if max(windows) > steps:
        raise ValueError(f"windows must lie in 1..steps={steps}, got {windows}")
    task = make_regression_task(n_samples=n_samples, dim=dim, seed=task_seed)
    init, shortcut = KINDS[kind]
    widths = [task.x.shape[1]] + [checks.positive_int("width", width)] * (depth - 1) + [1]
    rows = []
    for activation in ACTIVATIONS:
        model = StackedMLP(widths, seeds, shortcut=[shortcut] * len(seeds),
                           activation=activation, init=init)
        history, (first, last) = train_full_batch(model, task, steps, checks.positive_number("lr", lr))
        for m, seed in enumerate(seeds):
            rows.append({"kind": kind, "depth": depth, "activation": activation, "seed": seed,
                         **{f"loss_{t}": float(history[t, m]) for t in windows},
                         "first_over_last": float(first[m] / last[m])})
    return rows


ACTIVATION_STUDY = Study(
    "gelu_against_relu", __name__, activation_unit,
    units=[{"kind": kind, "depth": depth, "seeds": list(STUDY_SEEDS[i:i + STUDY_CHUNK])}
           for kind in KINDS for depth in STUDY_DEPTHS
           for i in range(0, len(STUDY_SEEDS), STUDY_CHUNK)],
    params={"width": 32, "steps": STUDY_STEPS, "windows": list(STUDY_WINDOWS), "lr": 1e-3,
            **STUDY_TASK},
    about="GELU against ReLU on plain (Kaiming) and residual (default init) MLPs, 24 paired seeds")


def paired_activations(frame: pd.DataFrame, column: str = f"loss_{STUDY_STEPS}") -> pd.DataFrame:
    """GELU against ReLU per (kind, depth), paired by seed: ``gelu_wins`` (seeds where GELU ends
    lower) of ``n``, the mean of log10(loss GELU / loss ReLU) with its 95 % interval (``mean,
    low, high``; negative: GELU lower), ``detectable`` (the smallest true mean these seeds would
    detect four times in five), and the medians of each activation's loss and of its
    ``first_over_last`` gradient ratio at initialisation."""
    checks.columns(frame, ["kind", "depth", "activation", "seed", column, "first_over_last"],
                   "paired_activations")
    rows = []
    for (kind, depth), group in frame.groupby(["kind", "depth"], sort=False):
        wide = group.pivot(index="seed", columns="activation", values=column)
        ratio = group.pivot(index="seed", columns="activation", values="first_over_last")
        log_ratio = list(np.log10(wide["gelu"] / wide["relu"]))
        mean, low, high = interval(log_ratio)
        rows.append({"kind": kind, "depth": int(depth),
                     "gelu_wins": int(sum(d < 0 for d in log_ratio)), "n": len(log_ratio),
                     "mean": mean, "low": low, "high": high,
                     "detectable": detectable(log_ratio),
                     "gelu_loss": float(wide["gelu"].median()),
                     "relu_loss": float(wide["relu"].median()),
                     "gelu_first_over_last": float(ratio["gelu"].median()),
                     "relu_first_over_last": float(ratio["relu"].median())})
    return pd.DataFrame(rows).set_index(["kind", "depth"])
