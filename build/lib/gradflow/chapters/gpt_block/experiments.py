"""The experiments of the chapter "Putting it together in a GPT block" (``book/gpt_block.md``), on
the small GPT of ``gradflow.networks.gpt``: gradients at initialisation, the residual
stream, and a short training run. Every function returns plain data and never prints.

The probes at initialisation all use the same recipe: a model built from a config and a seed, a
batch of random token ids with random next-token targets (so the loss is cross-entropy against
targets the model cannot know), one backward pass, and statistics taken in float64.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace

import numpy as np
import pandas as pd
import torch

from ... import checks
from ...networks.gpt import GPT, LN_PLACEMENTS, GPTConfig

# The sequence task and its training loop live in ``gradflow.tasks.sequence`` (the normalisation
# chapter trains the same model); this chapter's package re-exports them.
from ...tasks.sequence import (  # noqa: F401
    TASKS,
    TRAIN_CONFIG,
    TRAIN_TASK,
    SequenceTask,
    TrainingRun,
    train_sequence_task,
)

# The probes at initialisation live in ``gradflow.transformer_probes`` (the chapter "After GPT-2"
# measures its variants with them too); this chapter's package re-exports them.
from ...transformer_probes import (  # noqa: F401
    PROBE_BATCH,
    layer_gradient_norms,
    probe_batch,
    token_diversity,
)

#: The model the initialisation probes use unless told otherwise: d = 64, 4 heads, 16 tokens.
PROBE_CONFIG = GPTConfig(vocab_size=16, block_size=16, n_layer=12, n_head=4, n_embd=64)
GRADIENT_DEPTHS = (6, 12, 24)
SCALING_DEPTHS = (2, 4, 8, 16, 32)


def _check_depths(depths: Iterable[int]) -> list[int]:
    return checks.positive_ints("depths", depths)


def _check_placements(placements: Iterable[str]) -> list[str]:
    return checks.some_of("placements", placements, LN_PLACEMENTS)


def gradient_norms_by_depth(
    depths: Sequence[int] = GRADIENT_DEPTHS,
    placements: Sequence[str] = LN_PLACEMENTS,
    shortcuts: Sequence[bool] = (True, False),
    seed: int = 0,
    base: GPTConfig = PROBE_CONFIG,
) -> pd.DataFrame:
    """:func:`layer_gradient_norms` for every depth, LayerNorm placement and shortcut setting.

    Returns a long table with columns ``n_layer, placement, shortcuts`` and those of
    :func:`layer_gradient_norms`. Every model uses ``base`` (nanoGPT's GPT-2-style initialisation, scaled
    residual projections included) with only those three fields changed, and the same seed.
    """
    frames = []
    for n_layer in _check_depths(depths):
        for placement in _check_placements(placements):
            for shortcut in shortcuts:
                config = replace(base, n_layer=n_layer, ln_placement=placement,
                                 shortcuts=bool(shortcut))
                frame = layer_gradient_norms(config, seed=seed)
                frame.insert(0, "shortcuts", bool(shortcut))
                frame.insert(0, "placement", placement)
                frame.insert(0, "n_layer", n_layer)
                frames.append(frame)
    return pd.concat(frames, ignore_index=True)


#: The explorable's depths: 2 to 24 blocks in steps of 2.
EXPLORER_DEPTHS = tuple(range(2, 25, 2))


def gradient_explorer(depths: Sequence[int] = EXPLORER_DEPTHS, seed: int = 0,
                      base: GPTConfig = PROBE_CONFIG) -> pd.DataFrame:
    """:func:`gradient_norms_by_depth` with and without GPT-2's scaled initialisation of the
    residual projections, in one table with a ``scaled_init`` column: every depth, LayerNorm
    placement and shortcut setting of the chapter's explorable figure."""
    frames = []
    for scaled in (True, False):
        frame = gradient_norms_by_depth(depths, seed=seed, base=replace(base, scaled_init=scaled))
        frame.insert(0, "scaled_init", scaled)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def summarise_gradient_norms(table: pd.DataFrame) -> pd.DataFrame:
    """One row per stack of a :func:`gradient_norms_by_depth` table.

    Columns: the median over blocks of ``ffn_w2`` and of ``attn_qk``, and the token diversity
    after the last block, indexed by ``placement, shortcuts, n_layer``.
    """
    grouped = table.groupby(["placement", "shortcuts", "n_layer"], sort=False)
    summary = pd.DataFrame({
        "median ffn_w2": grouped["ffn_w2"].median(),
        "median attn_qk": grouped["attn_qk"].median(),
        "diversity after last block": grouped["token_diversity"].last(),
    })
    return summary.sort_index(ascending=[False, False, True])


def depth_attenuation(table: pd.DataFrame, column: str = "attn_qk", shallow: int | None = None,
                      deep: int | None = None) -> pd.DataFrame:
    """How much a per-block gradient shrinks when the stack gets deeper.

    For each placement and shortcut setting: the median over blocks of ``column`` in the
    ``deep``-block stack divided by that in the ``shallow``-block stack (default: the smallest and
    largest depth in ``table``, a table from :func:`gradient_norms_by_depth`). Returns a table
    indexed by placement with one column per shortcut setting.
    """
    if column not in ("ffn_w2", "attn_qk"):
        raise ValueError(f"column must be 'ffn_w2' or 'attn_qk', got {column!r}")
    shallow = int(table["n_layer"].min()) if shallow is None else shallow
    deep = int(table["n_layer"].max()) if deep is None else deep
    medians = table.groupby(["n_layer", "placement", "shortcuts"])[column].median()
    ratio = (medians.loc[deep] / medians.loc[shallow]).unstack("shortcuts")
    return ratio.rename(columns={True: "with shortcuts", False: "without shortcuts"})


def last_layer_gradient_scaling(
    depths: Sequence[int] = SCALING_DEPTHS,
    placements: Sequence[str] = LN_PLACEMENTS,
    init_stds: Sequence[float] = (0.02,),
    seeds: Sequence[int] = (0, 1),
    base: GPTConfig = PROBE_CONFIG,
) -> pd.DataFrame:
    """||dL/dW^{2,L}||_F of the *last* block against depth L (Xiong et al. 2020, Theorem 1).

    Xiong et al.'s theorem takes every layer initialised alike, so the residual projections are
    *not* scaled here (``scaled_init=False``); shortcuts are on. Returns one row per depth,
    placement, init std and seed with the column ``last_ffn_w2``.
    """
    rows = []
    for n_layer in _check_depths(depths):
        for placement in _check_placements(placements):
            for std in init_stds:
                config = replace(base, n_layer=n_layer, ln_placement=placement, shortcuts=True,
                                 scaled_init=False, init_std=float(std))
                for seed in seeds:
                    norms = layer_gradient_norms(config, seed=seed)
                    rows.append({"n_layer": n_layer, "placement": placement, "init_std": float(std),
                                 "seed": int(seed), "last_ffn_w2": norms["ffn_w2"].iloc[-1]})
    return pd.DataFrame(rows)


def fit_depth_exponents(scaling: pd.DataFrame) -> pd.DataFrame:
    """Least-squares slope of log(gradient) against log(L), per placement and init std.

    Uses the geometric mean over seeds at each depth. A slope of 0 means independent of depth
    (Xiong et al.'s Post-LN bound), -1/2 means proportional to sqrt(1/L) (their Pre-LN bound).
    Returns columns ``placement, init_std, exponent``.
    """
    rows = []
    for (placement, std), group in scaling.groupby(["placement", "init_std"], sort=False):
        per_depth = group.groupby("n_layer")["last_ffn_w2"].apply(lambda s: np.exp(np.log(s).mean()))
        slope = np.polyfit(np.log(per_depth.index.to_numpy(float)), np.log(per_depth.to_numpy()), 1)[0]
        rows.append({"placement": placement, "init_std": float(std), "exponent": float(slope)})
    return pd.DataFrame(rows)


def residual_stream_variance(
    n_layer: int = 24,
    scaled_init: Sequence[bool] = (False, True),
    seeds: Sequence[int] = (0, 1),
    base: GPTConfig = PROBE_CONFIG,
) -> pd.DataFrame:
    """Variance of the residual stream after the embeddings and after each block (Pre-LN).

    The stream x_l = x_0 + sum of 2l branch outputs; if the branches are roughly uncorrelated its
    variance grows by about the branches' variance at every block. The scaled initialisation of
    GPT-2's paper (Radford et al. 2019, section 2.3), as nanoGPT and Hugging Face implement it,
    divides every residual projection's std by sqrt(2N), so the
    2N branch outputs add up to about one unscaled branch's variance however deep the stack.

    Returns columns ``scaled_init, layer`` (0 = embeddings), ``variance`` (mean over seeds of the
    per-coordinate variance over batch, positions and features, in float64).
    """
    _check_depths([n_layer])
    rows = []
    for scaled in scaled_init:
        config = replace(base, n_layer=n_layer, ln_placement="pre", shortcuts=True,
                         scaled_init=bool(scaled))
        per_seed = []
        for seed in seeds:
            idx, _ = probe_batch(config, seed=seed)
            with torch.no_grad():
                states = GPT(config, seed=seed).hidden_states(idx)
            per_seed.append([h.double().var().item() for h in states])
        for layer, variance in enumerate(np.mean(per_seed, axis=0)):
            rows.append({"scaled_init": bool(scaled), "layer": layer, "variance": float(variance)})
    return pd.DataFrame(rows)


def compare_shortcut_training(
    config: GPTConfig = TRAIN_CONFIG,
    task: SequenceTask = TRAIN_TASK,
    steps: int = 250,
    batch_size: int = 32,
    lr: float = 1e-3,
    seed: int = 0,
) -> dict[str, TrainingRun]:
    """:func:`train_sequence_task` for ``config`` with and without shortcuts, same seed and data.

    Returns ``{"with shortcuts": run, "without shortcuts": run}``.
    """
    return {
        label: train_sequence_task(replace(config, shortcuts=flag), task, steps, batch_size, lr,
                                   seed)
        for label, flag in (("with shortcuts", True), ("without shortcuts", False))
    }


def loss_table(runs: dict[str, TrainingRun]) -> pd.DataFrame:
    """The runs' loss curves side by side: index ``step`` (1-based), one column per run."""
    table = pd.DataFrame({label: run.losses for label, run in runs.items()})
    table.index = pd.RangeIndex(1, len(table) + 1, name="step")
    return table
