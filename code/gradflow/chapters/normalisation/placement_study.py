"""BatchNorm before or after the ReLU, trained: plain MLPs of both placements from the same
weights on the shortcut chapter's regression task, paired by seed. Part of the chapter
"Normalisation" (``book/normalisation.md``); the measurement at initialisation is in
``practice``."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import torch

from ... import checks
from ...networks.stacked import StackedMLP
from ...studies import Study
from ...tasks.runs import STUDY_TASK, paired_log10, train_arms
from .practice import PLACEMENTS, batch_norm_after_forward


class BatchNormAfterMLP(StackedMLP):
    """M plain MLPs whose hidden layers compute h = BN(relu(W h + b)) (BatchNorm after the
    activation) and whose last layer is linear: ``StackedMLP``'s parameters and draws, its
    forward replaced."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            x = x.expand(len(self.seeds), *x.shape)
        weights, biases = list(self.weights), list(self.biases)
        h = batch_norm_after_forward(x, weights[:-1], biases[:-1])[0][-1]
        return torch.baddbmm(biases[-1].unsqueeze(1), h, weights[-1].transpose(1, 2))


def placement_model(placement: str, widths: Sequence[int], seeds: Sequence[int]) -> StackedMLP:
    """The trainable plain ReLU network with BatchNorm ``placement`` (Kaiming's initialisation;
    both placements draw the same weights for a seed)."""
    checks.one_of("placement", placement, PLACEMENTS, what="placement")
    kind = StackedMLP if placement == "before" else BatchNormAfterMLP
    return kind(widths, seeds, shortcut=[False] * len(seeds), batch_norm=True, activation="relu",
                init="kaiming")


#: The study: two depths, 24 seeds in chunks of 12, 100 steps, the loss kept after 30 and 100.
PLACEMENT_DEPTHS = (10, 30)
PLACEMENT_SEEDS = tuple(range(24))
PLACEMENT_CHUNK = 12
PLACEMENT_STEPS = 100
PLACEMENT_WINDOWS = (30, 100)


def placement_unit(depth: int, seeds: Sequence[int], **run: object) -> list[dict]:
    """Train both placements at ``depth`` from each seed (``gradflow.tasks.runs.train_arms``:
    full-batch Adam on the regression task). One row per run: ``placement, depth, seed``,
    ``loss_<t>`` (the MSE after t steps) and ``first_over_last``."""
    return train_arms("placement", PLACEMENTS, placement_model, depth=depth, seeds=seeds, **run)


PLACEMENT_STUDY = Study(
    "batch_norm_placement", __name__, placement_unit,
    units=[{"depth": depth, "seeds": list(PLACEMENT_SEEDS[i:i + PLACEMENT_CHUNK])}
           for depth in PLACEMENT_DEPTHS
           for i in range(0, len(PLACEMENT_SEEDS), PLACEMENT_CHUNK)],
    params={"width": 32, "steps": PLACEMENT_STEPS, "windows": list(PLACEMENT_WINDOWS), "lr": 1e-3,
            **STUDY_TASK},
    about="BatchNorm before against after the ReLU in plain MLPs, 2 depths, 24 paired seeds")


def paired_placements(frame: pd.DataFrame, column: str = f"loss_{PLACEMENT_STEPS}") -> pd.DataFrame:
    """After against before per depth, paired by seed (``gradflow.tasks.runs.paired_log10``):
    ``wins`` (seeds where BatchNorm after the ReLU ends lower) of ``n``, the mean
    log10(loss after / loss before) with its 95 % interval (``mean, low, high``; negative: after
    lower), ``detectable``, and the medians ``after_loss`` and ``before_loss``."""
    return paired_log10(frame, arms="placement", arm="after", against="before", value=column,
                        by="depth")
