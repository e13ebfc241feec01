"""The feed-forward study of the chapter "After GPT-2" (run with :func:`training.train_copies`
on the GPT chapter's sorting task), and the four stacks and the outcome classes that the
stability study (``stability.py``) trains and reports. Every function returns plain data and
never prints.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import pandas as pd

from ... import checks
from ...networks.gpt import FFN_KINDS, parameter_count
from ...studies import Study, paired
from ...tasks.sequence import TRAIN_CONFIG, TRAIN_TASK, SequenceTask
from .training import train_copies

# --- The feed-forward comparison -------------------------------------------------------------

#: The comparison's model: the GPT chapter's training model made smaller for the time budget
#: (4 blocks instead of 12) and of width 24, so that 3 divides 4d and the gated layers' weights
#: match the GELU layer's exactly (8d/3 = 64 hidden units against 4d = 96).
FFN_CONFIG = replace(TRAIN_CONFIG, n_layer=4, n_embd=24)

#: Shazeer (2020), "GLU Variants Improve Transformer", Table 1: held-out log-perplexity of T5-base
#: sized models (lower is better) after 65,536 training steps (mean of four runs, and their
#: standard deviation) and after 524,288 steps (one run), for the feed-forward kinds this chapter
#: trains and the paper's baseline, ReLU. Copied from the paper, not computed.
SHAZEER_TABLE1 = {
    "relu": {"65k": 1.997, "65k_sd": 0.005, "524k": 1.677},
    "gelu": {"65k": 1.983, "65k_sd": 0.005, "524k": 1.679},
    "geglu": {"65k": 1.942, "65k_sd": 0.004, "524k": 1.633},
    "swiglu": {"65k": 1.944, "65k_sd": 0.010, "524k": 1.636},
}


#: The study's length, the windows it reports (each the mean training loss over the 10 steps that
#: end there; a run is the same up to any step, as the learning rate is constant), its seeds, and
#: the seeds trained together in one unit.
FFN_STEPS = 200
FFN_WINDOWS = (50, 200)
FFN_SEEDS = tuple(range(48))
FFN_CHUNK = 8


def ffn_unit(kind: str, seeds: Sequence[int], *, n_layer: int, n_embd: int, steps: int,
             windows: Sequence[int], lr: float, batch_size: int, data_seed: int) -> list[dict]:
    """Train ``FFN_CONFIG``'s architecture (``n_layer`` blocks of width ``n_embd``) with the
    feed-forward ``kind`` from each seed, the copies together (every run sees the same batches).
    One row per run: ``ffn, seed, params``, ``loss_<t>`` for each t of ``windows`` (mean training
    loss over steps t-9..t) and ``accuracy`` (on 200 fresh sequences after ``steps``)."""
    kind = checks.one_of("kind", kind, FFN_KINDS)
    seeds = checks.seeds(seeds)
    windows = [checks.positive_int("window", t) for t in windows]
    if max(windows) > steps or min(windows) < 10:
        raise ValueError(f"windows must lie in 10..steps={steps}, got {windows}")
    config = replace(TRAIN_CONFIG, n_layer=n_layer, n_embd=n_embd, ffn=kind)
    run = train_copies(config, seeds=seeds, lrs=lr, steps=steps, batch_size=batch_size,
                       data_seed=data_seed, eval_size=200)
    rows = []
    for i, seed in enumerate(seeds):
        row = {"ffn": kind, "seed": seed, "params": parameter_count(config)}
        for t in windows:
            window = run.losses[t - 10:t, i]
            row[f"loss_{t}"] = float(window.mean()) if np.isfinite(window).all() else math.nan
        row["accuracy"] = float(run.accuracy[i])
        rows.append(row)
    return rows


FFN_STUDY = Study(
    "ffn_comparison", __name__, ffn_unit,
    units=[{"kind": kind, "seeds": list(FFN_SEEDS[i:i + FFN_CHUNK])}
           for kind in FFN_KINDS for i in range(0, len(FFN_SEEDS), FFN_CHUNK)],
    params={"n_layer": FFN_CONFIG.n_layer, "n_embd": FFN_CONFIG.n_embd, "steps": FFN_STEPS,
            "windows": list(FFN_WINDOWS), "lr": 3e-3, "batch_size": 16, "data_seed": 1},
    about="GELU, SwiGLU and GEGLU feed-forward layers, 48 paired seeds, 200 steps")


def ffn_paired(frame: pd.DataFrame, column: str, reference: str = "gelu",
               level: float = 0.95) -> pd.DataFrame:
    """Per kind: the mean of ``column`` over seeds and, paired by seed (the runs of one seed see
    the same batches), the mean difference from ``reference`` with its ``level`` t-interval
    (:func:`gradflow.studies.paired`), the number of seeds where the kind is lower (``wins``),
    the number of pairs ``n``, and ``reference`` (true on the reference's own row, whose
    difference is NaN)."""
    checks.columns(frame, ["ffn", "seed", column], "ffn_paired")
    wide = frame.pivot(index="seed", columns="ffn", values=column)
    if reference not in wide:
        raise ValueError(f"reference {reference!r} is not among the kinds {list(wide.columns)}")
    rows = {}
    for kind in dict.fromkeys(frame["ffn"]):
        pairs = wide[[kind, reference]].dropna()
        if kind == reference:
            compared = {"mean": math.nan, "low": math.nan, "high": math.nan, "wins": 0,
                        "n": len(pairs)}
        else:
            compared = paired(pairs[kind], pairs[reference], level)
        rows[kind] = {"mean": wide[kind].mean(), "sd": wide[kind].std(ddof=1),
                      "difference": compared["mean"], "low": compared["low"],
                      "high": compared["high"], "wins": compared["wins"], "n": compared["n"],
                      "reference": kind == reference}
    return pd.DataFrame.from_dict(rows, orient="index")


# --- The stacks of the stability study (stability.py) -----------------------------------------

#: The stability study's stack before it sets depth and width: 12 blocks of width 16 (4 heads), every weight drawn with std 1/sqrt(16), the
#: scale of the Xavier-type initialisations that Xiong et al. 2020 and Wang et al. 2022 analyse.
MAP_BASE = replace(TRAIN_CONFIG, n_layer=12, n_embd=16, init_std=1 / math.sqrt(16))
#: The four ways of joining the branches to the stream that the stability study compares.
MAP_VARIANTS = {
    "Post-LN": replace(MAP_BASE, ln_placement="post", scaled_init=False),
    "Pre-LN": replace(MAP_BASE, ln_placement="pre", scaled_init=True),
    "DeepNorm": replace(MAP_BASE, ln_placement="post", scaled_init=False, residual="deepnorm"),
    "ReZero": replace(MAP_BASE, ln_placement="pre", scaled_init=False, residual="rezero"),
}


def classify(loss: float, start: float, task: SequenceTask = TRAIN_TASK) -> str:
    """A run's outcome from its final loss: ``"diverged"`` (not finite, or above the loss it
    started from), ``"stuck"`` (within 0.05 of ln(n_symbols), the best loss of a model that
    ignores its input and its position), ``"learned"`` (below the best loss of a model that
    knows only the position), else ``"partial"``."""
    blind = task.input_blind_losses()
    if not math.isfinite(loss) or loss > start:
        return "diverged"
    if loss > blind["same at every position"] - 0.05:
        return "stuck"
    if loss < blind["position only"]:
        return "learned"
    return "partial"
