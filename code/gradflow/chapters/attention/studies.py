"""The trained comparisons of the chapter "Attention's own gradients", kept as studies.

Every run trains the book's GPT (``gradflow.networks.gpt``) on the GPT chapter's sorting task
with ``gradflow.tasks.sequence.train_sequence_task`` (AdamW, no warm-up, no weight decay, a fresh
batch each step drawn from a generator seeded by the run's seed, so two arms of one seed see the
same batches and start from the same weights: their difference is paired).

- :data:`SCALING_STUDY`: with and without the 1/sqrt(d_k) of the attention scores, at two head
  sizes, over :data:`SCALING_SEEDS`; the final loss of each run.
- :data:`GROWTH_STUDY`: the largest attention logit and the attention entropy over training, at
  five learning rates two orders of magnitude apart, for GPT-2's attention, for QK-norm
  (LayerNorm on q and k; Dehghani et al. 2023, Wortsman et al. 2023) and for QK-norm without
  the 1/sqrt(d_k); the final loss against the learning rate.

A unit trains a few seeds of one setting and returns one row per run. Every function returns
plain data and never prints.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import pandas as pd
import torch

from ... import checks
from ...networks.gpt import GPTConfig
from ...studies import Study, detectable, interval
from ...tasks.sequence import TRAIN_TASK, train_sequence_task
from ...transformer_probes import attention_statistics

#: The studies' model: two blocks of width 64 on the GPT chapter's task, GPT-2's initialisation.
STUDY_CONFIG = GPTConfig(vocab_size=TRAIN_TASK.vocab_size, block_size=TRAIN_TASK.block_size,
                         n_layer=2, n_head=2, n_embd=64)
#: Steps of every run, the batch size, and the steps whose mean loss is the final loss.
STUDY_STEPS = 200
STUDY_BATCH = 32
STUDY_LAST = 20
#: The attention is inspected every this many steps (and at initialisation).
INSPECT_EVERY = 20
#: The fixed batch on which the attention is inspected (its own generator: the training batches
#: are untouched).
PROBE_SIZE = 64
PROBE_SEED = 12_345

#: The scaling comparison: head sizes d_k (n_embd / n_head), seeds, and its learning rate.
SCALING_HEAD_SIZES = (16, 64)
SCALING_SEEDS = tuple(range(12))
SCALING_LR = 3e-3
#: The growth study: learning rates two orders of magnitude apart, seeds, and its arms.
GROWTH_LRS = (1e-3, 3e-3, 1e-2, 3e-2, 1e-1)
GROWTH_SEEDS = (0, 1, 2)
ARMS = {
    "GPT-2 attention": {},
    "QK-norm": {"qk_norm": "layernorm"},
    "QK-norm, no 1/sqrt(d_k)": {"qk_norm": "layernorm", "attn_scale": False},
}


def probe_tokens() -> torch.Tensor:
    """The fixed batch of task inputs on which every run's attention is inspected."""
    idx, _ = TRAIN_TASK.sample(PROBE_SIZE, torch.Generator().manual_seed(PROBE_SEED))
    return idx


def arm_config(arm: str, head_size: int | None = None, config: GPTConfig = STUDY_CONFIG
               ) -> GPTConfig:
    """``config`` with the attention options of ``arm`` (a key of :data:`ARMS`), and with
    ``head_size`` d_k (one head per d_k of the width) if given."""
    checks.one_of("arm", arm, tuple(ARMS), what="arm")
    if head_size is not None:
        checks.positive_int("head_size", head_size)
        if config.n_embd % head_size:
            raise ValueError(f"head_size must divide n_embd={config.n_embd}, got {head_size}")
        config = replace(config, n_head=config.n_embd // head_size)
    return replace(config, **ARMS[arm])


def _runs(config: GPTConfig, lr: float, seeds: Sequence[int], steps: int,
          inspect_every: int | None) -> list[dict]:
    probe = probe_tokens()
    rows = []
    for seed in checks.seeds(seeds):
        run = train_sequence_task(
            config, steps=steps, batch_size=STUDY_BATCH, lr=lr, seed=seed,
            inspect=(lambda m: attention_statistics(m, probe)) if inspect_every else None,
            inspect_every=inspect_every or 0)
        tail = np.asarray(run.losses[-STUDY_LAST:])
        row = {"seed": seed, "lr": lr, "head_size": config.head_size,
               "start_loss": run.losses[0],
               "final_loss": float(tail.mean()) if np.isfinite(tail).all() else math.nan,
               "accuracy": run.accuracy if np.isfinite(tail).all() else math.nan}
        for step, stats in run.inspections:
            row[f"max_logit_{step}"] = stats["max_logit"]
            row[f"entropy_{step}"] = stats["entropy"]
        if run.inspections:
            row["uniform_entropy"] = run.inspections[0][1]["uniform_entropy"]
        rows.append(row)
    return rows


def scaling_unit(*, head_size: int, attn_scale: bool, seeds: Sequence[int],
                 lr: float = SCALING_LR, steps: int = STUDY_STEPS) -> list[dict]:
    """Train the study's model with head size ``head_size``, with (``attn_scale``) or without the
    1/sqrt(d_k), from each seed; one row per run: ``attn_scale, head_size, seed, lr,
    start_loss, final_loss`` (mean of the last :data:`STUDY_LAST` steps; NaN if it diverged),
    ``accuracy``."""
    if not isinstance(attn_scale, bool):
        raise TypeError(f"attn_scale must be True or False, got {attn_scale!r}")
    config = replace(arm_config("GPT-2 attention", head_size), attn_scale=attn_scale)
    return [{"attn_scale": attn_scale, **row}
            for row in _runs(config, checks.positive_number("lr", lr), seeds, steps, None)]


def growth_unit(*, arm: str, lr: float, seeds: Sequence[int] = GROWTH_SEEDS,
                steps: int = STUDY_STEPS, inspect_every: int = INSPECT_EVERY) -> list[dict]:
    """Train ``arm`` (a key of :data:`ARMS`) at learning rate ``lr`` from each seed, inspecting
    the attention on :func:`probe_tokens` at step 0 and every ``inspect_every`` steps; one row
    per run: ``arm, seed, lr, head_size, start_loss, final_loss, accuracy``, and for each
    inspected step t ``max_logit_<t>`` and ``entropy_<t>``
    (``gradflow.transformer_probes.attention_statistics``), with ``uniform_entropy``."""
    config = arm_config(arm)
    checks.positive_int("inspect_every", inspect_every)
    return [{"arm": arm, **row}
            for row in _runs(config, checks.positive_number("lr", lr), seeds, steps,
                             inspect_every)]


def _chunks(seeds: Sequence[int], size: int) -> list[list[int]]:
    return [list(seeds[i:i + size]) for i in range(0, len(seeds), size)]


SCALING_STUDY = Study(
    "attention_scaling", __name__, scaling_unit,
    units=[{"head_size": d, "attn_scale": s, "seeds": chunk}
           for d in SCALING_HEAD_SIZES for s in (True, False)
           for chunk in _chunks(SCALING_SEEDS, 6)],
    about="with and without 1/sqrt(d_k), d_k = 16 and 64, 12 paired seeds, 200 steps")

GROWTH_STUDY = Study(
    "attention_growth", __name__, growth_unit,
    units=[{"arm": arm, "lr": lr} for arm in ARMS for lr in GROWTH_LRS],
    about="largest attention logit and entropy over training, 5 learning rates, QK-norm or not")


# --- Summaries of the rows ------------------------------------------------------------------

def scaling_comparison(frame: pd.DataFrame) -> pd.DataFrame:
    """Per head size, the paired difference of the final loss without minus with the
    1/sqrt(d_k) over seeds: ``mean``, 95 % interval ``low``, ``high``, ``n`` pairs, ``wins``
    (seeds where the run without the scaling ended lower), ``detectable`` (the smallest true
    difference these seeds would detect with probability 0.8, ``gradflow.studies.detectable``),
    and the mean final loss ``with`` and ``without``."""
    checks.columns(frame, ["head_size", "attn_scale", "seed", "final_loss"], "scaling_comparison")
    rows = []
    for d, group in frame.groupby("head_size"):
        table = group.pivot(index="seed", columns="attn_scale", values="final_loss").dropna()
        diff = list(table[False] - table[True])
        mean, low, high = interval(diff)
        rows.append({"head_size": int(d), "mean": mean, "low": low, "high": high,
                     "n": len(diff), "wins": int(sum(x < 0 for x in diff)),
                     "detectable": detectable(diff), "with": float(table[True].mean()),
                     "without": float(table[False].mean())})
    return pd.DataFrame(rows).set_index("head_size")


def inspected_steps(frame: pd.DataFrame) -> list[int]:
    """The steps at which the growth study inspected the attention, in order."""
    return sorted(int(c.rsplit("_", 1)[1]) for c in frame.columns if c.startswith("max_logit_"))


def growth_curves(frame: pd.DataFrame) -> pd.DataFrame:
    """The growth study's curves in long form: one row per arm, learning rate, seed and
    inspected step, with ``max_logit`` and ``entropy``."""
    checks.columns(frame, ["arm", "lr", "seed"], "growth_curves")
    steps = inspected_steps(frame)
    if not steps:
        raise ValueError("the rows hold no inspected steps (columns max_logit_<t>)")
    parts = [frame[["arm", "lr", "seed"]].assign(step=t, max_logit=frame[f"max_logit_{t}"],
                                                  entropy=frame[f"entropy_{t}"])
             for t in steps]
    return pd.concat(parts, ignore_index=True)


def loss_against_lr(frame: pd.DataFrame) -> pd.DataFrame:
    """Per arm and learning rate, over seeds: the final loss's ``mean``, ``low`` and ``high`` (the
    band: the smallest and largest seed; a diverged run counts as its loss at initialisation),
    the last inspection's largest logit (``max_logit``, mean over seeds; ``max_logit_high``, the
    largest seed) and entropy (``entropy``, mean over seeds), and ``n`` seeds."""
    checks.columns(frame, ["arm", "lr", "seed", "final_loss", "start_loss"], "loss_against_lr")
    last = inspected_steps(frame)[-1]
    data = frame.assign(loss=frame["final_loss"].where(np.isfinite(frame["final_loss"]),
                                                       frame["start_loss"]))
    grouped = data.groupby(["arm", "lr"], sort=False)
    return pd.DataFrame({
        "mean": grouped["loss"].mean(), "low": grouped["loss"].min(),
        "high": grouped["loss"].max(), "max_logit": grouped[f"max_logit_{last}"].mean(),
        "max_logit_high": grouped[f"max_logit_{last}"].max(),
        "entropy": grouped[f"entropy_{last}"].mean(), "n": grouped["loss"].size(),
    })


__all__ = ["ARMS", "GROWTH_LRS", "GROWTH_SEEDS", "GROWTH_STUDY", "INSPECT_EVERY", "SCALING_HEAD_SIZES",
           "SCALING_LR", "SCALING_SEEDS", "SCALING_STUDY", "STUDY_BATCH", "STUDY_CONFIG",
           "STUDY_LAST", "STUDY_STEPS", "arm_config", "growth_curves", "growth_unit",
           "inspected_steps", "loss_against_lr", "probe_tokens", "scaling_comparison",
           "scaling_unit"]
