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

import pandas as pd

from ... import checks
from ...networks.stacked import StackedMLP
from ...studies import Study
from ...tasks.runs import STUDY_TASK, paired_log10, train_arms

#: kind: (initialisation, identity shortcuts)
KINDS = {"plain": ("kaiming", False), "residual": ("default", True)}
#: The two activations compared: exact GELU (PyTorch's ``nn.GELU()``) and ReLU.
ACTIVATIONS = ("gelu", "relu")
#: The study: two depths per kind, 24 seeds in chunks of 12, 300 Adam steps, the loss kept
#: after 100 and 300.
STUDY_DEPTHS = (10, 30)
STUDY_SEEDS = tuple(range(24))
STUDY_CHUNK = 12
STUDY_STEPS = 300
STUDY_WINDOWS = (100, 300)


def activation_unit(kind: str, depth: int, seeds: Sequence[int], **run: object) -> list[dict]:
    """Train the ``kind`` network of ``depth`` layers (widths [dim] + [width] * (depth - 1) +
    [1], linear output) with each activation of ``ACTIVATIONS`` from each seed
    (``gradflow.tasks.runs.train_arms``: full-batch Adam on the regression task). One row per
    run: ``kind, depth, activation, seed``, ``loss_<t>`` (the training MSE after t updates) and
    ``first_over_last`` (the first layer's mean |dL/dW| over the last layer's at
    initialisation)."""
    checks.one_of("kind", kind, list(KINDS), what="kind")
    init, shortcut = KINDS[kind]

    def model_for(activation: str, widths: list[int], members: list[int]) -> StackedMLP:
        return StackedMLP(widths, members, shortcut=[shortcut] * len(members),
                          activation=activation, init=init)

    return train_arms("activation", ACTIVATIONS, model_for, depth=depth, seeds=seeds, kind=kind,
                      **run)


ACTIVATION_STUDY = Study(
    "gelu_against_relu", __name__, activation_unit,
    units=[{"kind": kind, "depth": depth, "seeds": list(STUDY_SEEDS[i:i + STUDY_CHUNK])}
           for kind in KINDS for depth in STUDY_DEPTHS
           for i in range(0, len(STUDY_SEEDS), STUDY_CHUNK)],
    params={"width": 32, "steps": STUDY_STEPS, "windows": list(STUDY_WINDOWS), "lr": 1e-3,
            **STUDY_TASK},
    about="GELU against ReLU on plain (Kaiming) and residual (default init) MLPs, 24 paired seeds")


def paired_activations(frame: pd.DataFrame, column: str = f"loss_{STUDY_STEPS}") -> pd.DataFrame:
    """GELU against ReLU per (kind, depth), paired by seed (``gradflow.tasks.runs.paired_log10``):
    ``wins`` (seeds where GELU ends lower) of ``n``, the mean of log10(loss GELU / loss
    ReLU) with its 95 % interval (``mean, low, high``; negative: GELU lower), ``detectable``,
    and the medians ``gelu_loss`` and ``relu_loss``."""
    return paired_log10(frame, arms="activation", arm="gelu", against="relu", value=column,
                        by=["kind", "depth"])
