"""Two measurements at initialisation of the GPT chapter, kept as studies (``gradflow.studies``)
so that a build loads them: the last block's gradient against depth (``SCALING_STUDY``, below),
and the data of the chapter's explorable figure (``EXPLORER_STUDY``): per-block
gradient norms and token diversity of the probe model at initialisation, for every depth from 2 to
24 blocks, both LayerNorm placements, with and without shortcuts and with and without GPT-2's
scaled initialisation (96 models, one seed). Nothing is trained; the study only spares every build
the seconds these models take. Each unit is :func:`~.experiments.gradient_norms_by_depth` for one
depth, the call :func:`~.experiments.gradient_explorer` makes for it, so the kept numbers are the
ones it returns, digit for digit. Part of the chapter "Putting it together in a GPT block"
(``book/gpt_block.md``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

import pandas as pd

from ... import checks
from ...networks.gpt import LN_PLACEMENTS
from ...studies import Study
from .experiments import (
    EXPLORER_DEPTHS,
    PROBE_CONFIG,
    SCALING_DEPTHS,
    gradient_norms_by_depth,
    last_layer_gradient_scaling,
)

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


# --- The last block's gradient against depth (Xiong et al. 2020, Theorem 1) -----------------------

#: The init std of Xavier's initialisation at the probe model's width, 1/sqrt(d) = 0.125.
XAVIER_STD = 1 / math.sqrt(PROBE_CONFIG.n_embd)


def scaling_unit(init_std: float, depths: Sequence[int], seeds: Sequence[int]) -> list[dict]:
    """The rows of ``last_layer_gradient_scaling(depths, init_stds=(init_std,), seeds=seeds)``."""
    frame = last_layer_gradient_scaling(depths, init_stds=(init_std,), seeds=seeds)
    return [{"n_layer": int(r.n_layer), "placement": r.placement, "init_std": float(r.init_std),
             "seed": int(r.seed), "last_ffn_w2": float(r.last_ffn_w2)}
            for r in frame.itertuples()]


SCALING_STUDY = Study(
    "last_layer_scaling", __name__, scaling_unit,
    units=[{"init_std": 0.02, "depths": list(SCALING_DEPTHS), "seeds": [0, 1]},
           {"init_std": XAVIER_STD, "depths": list(SCALING_DEPTHS), "seeds": [0, 1]},
           {"init_std": XAVIER_STD, "depths": [max(SCALING_DEPTHS)], "seeds": list(range(2, 8))}],
    about="the last block's gradient of the GPT at initialisation against depth, 2-32 blocks")


def scaling_frame(rows: pd.DataFrame, init_stds: Sequence[float], seeds: Sequence[int]
                  ) -> pd.DataFrame:
    """The study's rows of ``init_stds`` and ``seeds`` as
    ``last_layer_gradient_scaling(init_stds=init_stds, seeds=seeds)`` orders them (depth, then
    placement, init std and seed)."""
    checks.columns(rows, ["n_layer", "placement", "init_std", "seed", "last_ffn_w2"],
                   "scaling_frame")
    stds, seeds = [float(s) for s in init_stds], [int(s) for s in seeds]
    chosen = rows[rows["init_std"].isin(stds) & rows["seed"].isin(seeds)]
    if chosen.empty:
        raise ValueError(f"the study has no rows for init_stds {stds} and seeds {seeds}")
    order = chosen.assign(
        _p=chosen["placement"].map(LN_PLACEMENTS.index), _s=chosen["init_std"].map(stds.index),
        _d=chosen["seed"].map(seeds.index)).sort_values(["n_layer", "_p", "_s", "_d"],
                                                        kind="stable")
    return order[["n_layer", "placement", "init_std", "seed", "last_ffn_w2"]].reset_index(drop=True)
