"""The GPT chapter's training, kept as a study (``gradflow.studies``): the 12-block model of
``gradflow.tasks.sequence`` trained on the sorting task with and without shortcuts, Pre-LN and
Post-LN, from many seeds. Part of the chapter "Putting it together in a GPT block"
(``book/gpt_block.md``).

Each unit is one run of :func:`gradflow.tasks.sequence.train_sequence_task`; its learning rate is
constant (AdamW without warm-up) and every step draws a fresh batch, so the first ``t`` steps of a
run are a ``t``-step run, and the loss curve is also a test-loss curve.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import pandas as pd

from ... import checks
from ...studies import Study, paired
from ...tasks.sequence import TRAIN_CONFIG, train_sequence_task

#: variant: (LayerNorm placement, shortcuts, learning rate, steps). The chapter's two runs, and
#: the exercise's two 60-step runs: Post-LN with shortcuts, the plain model at a smaller rate.
VARIANTS = {
    "pre_sc": ("pre", True, 1e-3, 250),
    "pre_plain": ("pre", False, 1e-3, 250),
    "post_sc": ("post", True, 1e-3, 60),
    "pre_plain_slow": ("pre", False, 3e-4, 60),
}
#: The study's seeds: each seed sets the weights and the batches, the same for every variant.
TRAINING_SEEDS = tuple(range(12))
#: The final loss of a run is its mean training loss over its last ``FINAL_WINDOW`` steps.
FINAL_WINDOW = 20
#: A run is *stuck* when its final loss lies within this distance of ln 10, the loss of a model
#: that predicts the same distribution over the ten digits at every position.
STUCK_TOLERANCE = 0.05


def training_unit(variant: str, seed: int, *, batch_size: int, final_window: int) -> list[dict]:
    """Train ``TRAIN_CONFIG`` as ``VARIANTS[variant]`` sets it, from ``seed``. One row:
    ``variant, seed, steps, lr``, ``curve`` (the training loss at every step, four significant
    digits), ``final_loss`` (mean over the last ``final_window`` steps, every digit) and
    ``accuracy`` (on 1,000 fresh sequences)."""
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {sorted(VARIANTS)}, got {variant!r}")
    placement, shortcuts, lr, steps = VARIANTS[variant]
    final_window = checks.positive_int("final_window", final_window)
    if final_window > steps:
        raise ValueError(f"final_window must be at most the run's {steps} steps, got {final_window}")
    config = replace(TRAIN_CONFIG, ln_placement=placement, shortcuts=shortcuts)
    run = train_sequence_task(config, steps=steps, batch_size=batch_size, lr=lr, seed=seed)
    return [{"variant": variant, "seed": int(seed), "steps": steps, "lr": lr,
             "curve": [float(f"{v:.4g}") for v in run.losses],
             "final_loss": math.fsum(run.losses[-final_window:]) / final_window,
             "accuracy": run.accuracy}]


TRAINING_STUDY = Study(
    "gpt_training", __name__, training_unit,
    units=[{"variant": v, "seed": s} for v in VARIANTS for s in TRAINING_SEEDS],
    params={"batch_size": 32, "final_window": FINAL_WINDOW},
    sample=3 * len(TRAINING_SEEDS),   # a 60-step run: one of the cheapest units
    about="12-block GPT on sorting, with and without shortcuts, Pre-LN and Post-LN, 12 seeds")


def curves(frame: pd.DataFrame, variant: str) -> pd.DataFrame:
    """The training curves of ``variant``: index ``step`` (1-based), one column per seed."""
    checks.columns(frame, ["variant", "seed", "curve"], "curves")
    runs = frame[frame["variant"] == variant]
    if runs.empty:
        raise ValueError(f"variant {variant!r} is not in the study")
    table = pd.DataFrame({int(r.seed): r.curve for r in runs.itertuples()})
    table.index = pd.RangeIndex(1, len(table) + 1, name="step")
    return table


def loss_at(frame: pd.DataFrame, variant: str, step: int) -> pd.Series:
    """The training loss of ``variant`` at ``step`` (1-based), one value per seed."""
    table = curves(frame, variant)
    if not 1 <= step <= len(table):
        raise ValueError(f"step must lie in 1..{len(table)}, got {step}")
    return table.loc[step]


def paired_difference(a: pd.Series, b: pd.Series) -> dict[str, float]:
    """``a - b`` paired by seed (the index), summarised by :func:`gradflow.studies.paired`
    (the mean with its 95 % interval, wins of ``a`` in ``n`` seeds, the detectable size)."""
    if not a.index.equals(b.index):
        raise ValueError("a and b must hold the same seeds in the same order")
    return paired(a, b)


def per_seed(frame: pd.DataFrame, variant: str, column: str) -> pd.Series:
    """``column`` of ``variant``'s runs, indexed by seed."""
    checks.columns(frame, ["variant", "seed", column], "per_seed")
    runs = frame[frame["variant"] == variant]
    if runs.empty:
        raise ValueError(f"variant {variant!r} is not in the study")
    return runs.set_index("seed")[column].sort_index()


def is_stuck(losses: pd.Series | Sequence[float]) -> np.ndarray:
    """Whether each loss lies within ``STUCK_TOLERANCE`` of ln 10 (``|loss - ln 10| <= 0.05``)."""
    return np.abs(np.asarray(losses, dtype=float) - math.log(10)) <= STUCK_TOLERANCE
