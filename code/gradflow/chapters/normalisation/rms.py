"""RMSNorm against LayerNorm on real activations: the residual stream of the GPT chapter's model,
before and after training. Part of the chapter "Normalisation" (``book/normalisation.md``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from ... import normalisation as norm
from ...networks.gpt import GPT
from ...studies import Study
from ...tasks.sequence import TRAIN_TASK, SequenceTask, TrainingRun, train_sequence_task


def stream_gaps(model: GPT, task: SequenceTask = TRAIN_TASK, batch_size: int = 64, seed: int = 7
                ) -> pd.DataFrame:
    """For the stream x_l that each block's first LayerNorm reads (l = 1..N), on a batch of the
    task's sequences: the per-token ratio m = mean / std (its root mean square over tokens), the
    measured relative gap ||RMSNorm(x) - LayerNorm(x)|| / ||LayerNorm(x)|| over all tokens, and
    the gap ``rms_layer_norm_gap`` predicts from each token's m (combined the same way). No
    affine parameters, eps = 1e-5 for both, float64."""
    generator = torch.Generator().manual_seed(seed)
    idx, _ = task.sample(batch_size, generator)
    with torch.no_grad():
        states = model.hidden_states(idx)[:-1]   # the inputs of the N blocks
    d, rows = model.config.n_embd, []
    for layer, x in enumerate(states, start=1):
        x = x.double()
        ln, rms = norm.layer_norm(x, d), norm.rms_norm(x, d, eps=1e-5)
        m = x.mean(dim=-1) / x.var(dim=-1, unbiased=False).sqrt()
        per_token = norm.rms_layer_norm_gap(m.numpy())
        rows.append({
            "layer": layer,
            "mean_over_std": float(np.sqrt((m**2).mean())),
            "measured_gap": float((rms - ln).norm() / ln.norm()),
            "predicted_gap": float(np.sqrt((per_token**2).mean())),
        })
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class RMSComparison:
    """``stream_gaps`` of the GPT before (``before``) and after (``after``) a training run."""

    before: pd.DataFrame
    after: pd.DataFrame
    run: TrainingRun


def before_and_after_training(steps: int = 100, batch_size: int = 64, seed: int = 0
                              ) -> RMSComparison:
    """Train the GPT chapter's model (``gradflow.tasks.sequence.train_sequence_task``, its
    defaults but ``steps``) and measure ``stream_gaps`` on ``batch_size`` sequences at its initial
    weights and after training."""
    run = train_sequence_task(steps=steps, seed=seed)
    initial = GPT(run.config, seed=seed)
    return RMSComparison(stream_gaps(initial, batch_size=batch_size),
                         stream_gaps(run.model, batch_size=batch_size), run)


# --- The study: before and after training, 12 seeds, kept with its code --------------------------

#: The study's seeds (each sets the GPT's weights and its training batches).
RMS_SEEDS = tuple(range(12))


def rms_unit(seed: int, *, steps: int, batch_size: int) -> list[dict]:
    """:func:`before_and_after_training` from ``seed``: one row per (``when``, ``layer``), with
    ``when`` "before" or "after" and the columns of :func:`stream_gaps`."""
    comparison = before_and_after_training(steps=steps, batch_size=batch_size, seed=seed)
    return [{"seed": int(seed), "when": when, **{k: (int(v) if k == "layer" else float(v))
                                                  for k, v in row.items()}}
            for when, table in (("before", comparison.before), ("after", comparison.after))
            for row in table.to_dict("records")]


RMS_STUDY = Study(
    "rms_gaps", __name__, rms_unit, units=[{"seed": s} for s in RMS_SEEDS],
    params={"steps": 40, "batch_size": 64},
    about="RMSNorm against LayerNorm on the GPT's stream, before and after 40 steps, 12 seeds")
