"""The data of the chapter's explorable figure, kept as a study (``gradflow.studies``): per-block
gradient norms and token diversity of the probe model at initialisation, for every depth from 2 to
24 blocks, both LayerNorm placements, with and without shortcuts and with and without GPT-2's
scaled initialisation (96 models, one seed). Nothing is trained; the study only spares every build
the seconds these models take. Each unit is :func:`~.experiments.gradient_norms_by_depth` for one
depth, the call :func:`~.experiments.gradient_explorer` makes for it, so the kept numbers are the
ones it returns, digit for digit. Part of the chapter "Putting it together in a GPT block"
(``book/gpt_block.md``).
"""

from __future__ import annotations

from dataclasses import replace

import pandas as pd

from ... import checks
from ...studies import Study
from .experiments import EXPLORER_DEPTHS, PROBE_CONFIG, gradient_norms_by_depth

#: The per-block statistics of ``layer_gradient_norms`` the study keeps.
STATISTICS = ("ffn_w2", "attn_qk", "token_diversity")


def explorer_unit(scaled_init: bool, n_layer: int, *, seed: int) -> list[dict]:
    """``gradient_norms_by_depth((n_layer,), seed=seed)`` on the probe model with or without the
    scaled initialisation: one row per (placement, shortcuts) with each statistic of
    ``STATISTICS`` as the list of its values for blocks 1..n_layer."""
    frame = gradient_norms_by_depth((n_layer,), seed=seed,
                                    base=replace(PROBE_CONFIG, scaled_init=scaled_init))
    return [{"scaled_init": bool(scaled_init), "n_layer": int(n_layer), "placement": placement,
             "shortcuts": bool(shortcuts),
             **{s: group.sort_values("layer")[s].tolist() for s in STATISTICS}}
            for (placement, shortcuts), group in frame.groupby(["placement", "shortcuts"],
                                                                sort=False)]


EXPLORER_STUDY = Study(
    "gpt_gradient_explorer", __name__, explorer_unit,
    units=[{"scaled_init": scaled, "n_layer": n} for scaled in (True, False)
           for n in EXPLORER_DEPTHS],
    params={"seed": 0},
    about="per-block gradient norms of the GPT at initialisation, 2-24 blocks, 8 variants")


def explorer_frame(rows: pd.DataFrame) -> pd.DataFrame:
    """The study's rows as :func:`~.experiments.gradient_explorer` returns them: one row per
    block with ``scaled_init, n_layer, placement, shortcuts, layer`` and the statistics."""
    checks.columns(rows, ["scaled_init", "n_layer", "placement", "shortcuts", *STATISTICS],
                   "explorer_frame")
    long = rows[["scaled_init", "n_layer", "placement", "shortcuts", *STATISTICS]].explode(
        list(STATISTICS), ignore_index=True)
    keys = ["scaled_init", "n_layer", "placement", "shortcuts"]
    long.insert(4, "layer", long.groupby(keys, sort=False).cumcount() + 1)
    return long.astype({s: float for s in STATISTICS} | {"n_layer": int, "layer": int})
