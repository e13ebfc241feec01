"""The stability study of the chapter "After GPT-2": final loss against learning rate for four
ways of joining the branches to the residual stream, with and without warm-up, over seeds, and
the two explanations of warm-up tested against each other on Post-LN.

The design follows Wortsman et al. 2023 ("Small-scale proxies for large-scale Transformer
training instabilities", arXiv:2309.14322): train small models over a range of learning rates
spanning orders of magnitude, plot the final loss against the learning rate, and summarise each
curve by its *LR sensitivity* (:func:`lr_sensitivity`). Every run trains the book's GPT on the
GPT chapter's sorting task with :func:`training.train_copies` (the copies of one unit are
trained together and see the same batches).

The warm-up comparison sets two explanations side by side. Xiong et al. 2020 ("On Layer
Normalization in the Transformer Architecture") trace Post-LN's need for warm-up to large
gradients near its output at initialisation; Liu et al. 2020 ("On the Variance of the Adaptive
Learning Rate and Beyond") to the large variance of Adam's adaptive learning rate in the first
steps, which their RAdam rectifies without any warm-up. So Post-LN (and Pre-LN) are trained with
Adam without warm-up, with a linear warm-up, and with RAdam without warm-up, from the same seeds.

The study is too costly for every build of the book: its rows are computed once by the study
machinery, which calls :func:`stability_unit` once for each entry of :data:`STABILITY_UNITS`
with the shared keywords :data:`STABILITY_PARAMS`, keeps the rows in the repository, and the
chapter loads them; the summaries below take those rows as a DataFrame. Every function returns
plain data and never prints.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace

import numpy as np
import pandas as pd
import torch

from ... import checks
from ...networks.gpt import GPTConfig
from ...studies import Study, paired
from ...tasks.sequence import TRAIN_TASK
from .studies import MAP_VARIANTS, classify
from .training import OPTIMIZERS, final_loss, train_copies

#: Seven learning rates, half a decade apart, over three decades [3e-4, 3e-1].
STUDY_LRS = (3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1)
#: The seeds of the initialisations; every run of every unit sees the same batches.
STUDY_SEEDS = (0, 1, 2, 3, 4)
#: Linear warm-up over the first 50 of the 200 steps (a quarter of the run).
STUDY_WARMUP = 50
#: A second warm-up for Post-LN, over 2 / (1 - beta2) = 100 steps: the length Ma & Yarats
#: (2021, "On the adequacy of untuned warmup for adaptive optimization") propose as a rule of
#: thumb and argue matches RAdam's own rectification. RAdam's rectification factor is 0.62 at
#: step 50 and 0.82 at step 100 (beta2 = 0.98), so against the 50-step warm-up alone RAdam would
#: also be a gentler start; this arm tells the two apart.
STUDY_LONG_WARMUP = 100

#: The keywords every unit shares (JSON-able). The model: 6 blocks of width 32 (4 heads), every
#: weight drawn with std 1/sqrt(32), the scale Xavier's rule gives a square d x d matrix (the
#: scale Xiong et al. and Wang et al. analyse), plus each variant's own rule for its residual
#: projections (:data:`studies.MAP_VARIANTS`: GPT-2's 1/sqrt(2N) for Pre-LN, DeepNorm's beta).
#: Adam's beta2 = 0.98 is the Transformer's (Vaswani et al. 2017, section 5.3). Training: 200
#: steps of 32 fresh sequences; the final loss is the mean training loss over the last 20 steps.
STABILITY_PARAMS: dict = {
    "n_layer": 6,
    "n_embd": 32,
    "n_head": 4,
    "init_std": 1 / math.sqrt(32),
    "steps": 200,
    "batch_size": 32,
    "lrs": list(STUDY_LRS),
    "beta1": 0.9,
    "beta2": 0.98,
    "data_seed": 1,
    "last": 20,
    "update_steps": [1, 10, STUDY_WARMUP],
    "grad_norm_steps": 10,
    "curve_every": 20,
    "eval_size": 200,
}

#: One unit per variant, optimiser and seed. Adam: the four variants, each learning rate without
#: and with the 50-step warm-up (14 copies); RAdam: Post-LN and Pre-LN, each learning rate
#: without warm-up (7 copies); Adam with the 100-step warm-up: Post-LN (7 copies).
STABILITY_UNITS: list[dict] = (
    [{"variant": v, "optimizer": "adamw", "warmups": [0, STUDY_WARMUP], "seeds": [s]}
     for v in MAP_VARIANTS for s in STUDY_SEEDS]
    + [{"variant": v, "optimizer": "radam", "warmups": [0], "seeds": [s]}
       for v in ("Post-LN", "Pre-LN") for s in STUDY_SEEDS]
    + [{"variant": "Post-LN", "optimizer": "adamw", "warmups": [STUDY_LONG_WARMUP], "seeds": [s]}
       for s in STUDY_SEEDS]
)

#: The range of learning rates over which :func:`lr_sensitivity` averages (every rate of the study).
LR_RANGE = (3e-4, 3e-1)


@contextmanager
def single_thread() -> Iterator[None]:
    """Run the body with one torch thread, restoring the caller's number of threads after."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def study_config(variant: str, n_layer: int, n_embd: int, n_head: int,
                 init_std: float | None = None) -> GPTConfig:
    """The ``variant`` of :data:`studies.MAP_VARIANTS` at another depth and width, every weight
    drawn with ``init_std`` (default 1/sqrt(n_embd))."""
    checks.one_of("variant", variant, tuple(MAP_VARIANTS), what="variant")
    std = 1 / math.sqrt(checks.positive_int("n_embd", n_embd)) if init_std is None else init_std
    return replace(MAP_VARIANTS[variant], n_layer=checks.positive_int("n_layer", n_layer),
                   n_embd=n_embd, n_head=checks.positive_int("n_head", n_head),
                   init_std=checks.positive_number("init_std", std))


def stability_unit(*, variant: str, optimizer: str = "adamw", warmups: Sequence[int] = (0,),
                   seeds: Sequence[int] = (0,), lrs: Sequence[float] = STUDY_LRS,
                   n_layer: int = 6, n_embd: int = 32, n_head: int = 4,
                   init_std: float | None = None, steps: int = 200, batch_size: int = 32,
                   beta1: float = 0.9, beta2: float = 0.98, data_seed: int = 1, last: int = 20,
                   update_steps: Sequence[int] = (1,), grad_norm_steps: int = 0,
                   curve_every: int = 0, eval_size: int = 200) -> list[dict]:
    """Train ``variant`` (a key of :data:`studies.MAP_VARIANTS`, at ``n_layer`` blocks of width
    ``n_embd``) with ``optimizer`` ("adamw" or "radam", betas (beta1, beta2), no weight decay)
    from every seed at every learning rate and warm-up length, all as copies of one batched run
    on one thread, and return one JSON-able row per run.

    Columns: ``variant, optimizer, beta2, warmup`` (steps; 0 for none), ``lr, seed,
    n_layer, n_embd, steps, batch_size``; ``start_loss`` (the first step's loss, at
    initialisation), ``final_loss`` (mean of the last ``last`` steps; NaN if the run diverged to
    a non-finite loss), ``accuracy`` (on ``eval_size`` fresh sequences), ``outcome``
    (:func:`studies.classify`), ``diverged`` (outcome "diverged"); ``grad_norm_init`` (norm
    of the whole gradient at step 1), ``max_grad_norm_early`` (its largest value over steps
    1..``grad_norm_steps``, when that is > 0), ``grad_norm_first_block`` and
    ``grad_norm_last_block`` (the gradient of the first and last block's parameters at
    step 1); ``update_<t>`` for t in ``update_steps`` (relative change of the logits on a fixed
    batch after t steps); with ``curve_every`` c > 0, ``loss_<t>`` for t = c, 2c, ..., the mean
    training loss over steps t-c+1..t.
    """
    checks.one_of("optimizer", optimizer, OPTIMIZERS)
    config = study_config(variant, n_layer, n_embd, n_head, init_std)
    lrs = [checks.positive_number("lr", lr) for lr in lrs]
    if not lrs:
        raise ValueError("lrs must list at least one learning rate")
    warmups = [int(checks.non_negative_number("warmup", w)) for w in warmups]
    if not warmups or len(set(warmups)) != len(warmups):
        raise ValueError(f"warmups must be a non-empty list of distinct step counts, got {warmups}")
    if any(w >= steps for w in warmups):
        raise ValueError(f"every warm-up must be shorter than the run ({steps} steps), got {warmups}")
    seeds = checks.seeds(seeds)
    checks.positive_int("last", last)
    if last > steps:
        raise ValueError(f"last must lie in 1..steps={steps}, got {last}")
    curve_every = int(checks.non_negative_number("curve_every", curve_every))
    if curve_every and steps % curve_every:
        raise ValueError(f"curve_every must divide steps={steps}, got {curve_every}")
    grid = [(s, lr, w) for s in seeds for w in warmups for lr in lrs]
    with single_thread():
        run = train_copies(config, seeds=[g[0] for g in grid], lrs=[g[1] for g in grid],
                           warmups=[g[2] for g in grid], steps=steps, batch_size=batch_size,
                           data_seed=data_seed, update_steps=update_steps, eval_size=eval_size,
                           optimizer=optimizer, betas=(beta1, beta2),
                           grad_norm_steps=max(grad_norm_steps, 1))
    finals = final_loss(run, last=last)
    rows = []
    for i, (seed, lr, warmup) in enumerate(grid):
        start = float(run.losses[0, i])
        row = {"variant": variant, "optimizer": optimizer, "beta2": float(beta2),
               "warmup": warmup, "lr": lr, "seed": seed, "n_layer": n_layer, "n_embd": n_embd,
               "steps": steps, "batch_size": batch_size, "start_loss": start,
               "final_loss": float(finals[i]), "accuracy": float(run.accuracy[i])}
        row["outcome"] = classify(row["final_loss"], start, TRAIN_TASK)
        row["diverged"] = row["outcome"] == "diverged"
        row["grad_norm_init"] = float(run.grad_norms[0, i])
        row["max_grad_norm_early"] = (float(np.max(run.grad_norms[:, i])) if grad_norm_steps
                                      else None)
        row["grad_norm_first_block"] = float(run.block_grad_norms[0, i])
        row["grad_norm_last_block"] = float(run.block_grad_norms[-1, i])
        for t in sorted(run.updates):
            row[f"update_{t}"] = float(run.updates[t][i])
        if curve_every:
            for t in range(curve_every, steps + 1, curve_every):
                window = run.losses[t - curve_every:t, i]
                row[f"loss_{t}"] = float(window.mean()) if np.isfinite(window).all() else math.nan
        rows.append(row)
    return rows


def run_study(units: Sequence[dict] = STABILITY_UNITS, params: dict = STABILITY_PARAMS
              ) -> pd.DataFrame:
    """Every unit in turn, in this process (the study machinery runs them in parallel instead)."""
    return pd.DataFrame([row for unit in units for row in stability_unit(**params, **unit)])


#: The study, kept with its code (``python -m gradflow.studies stability``); the suite recomputes
#: one RAdam unit (7 copies, the cheapest) and compares it with the kept rows.
STABILITY_STUDY = Study(
    "stability", __name__, stability_unit, units=STABILITY_UNITS, params=STABILITY_PARAMS,
    sample=next(i for i, u in enumerate(STABILITY_UNITS) if u["optimizer"] == "radam"),
    about="Post-LN, Pre-LN, DeepNorm, ReZero: final loss against 7 learning rates, warm-up, RAdam")


# --- Summaries of the rows ------------------------------------------------------------------

_KEYS = ["variant", "optimizer", "warmup"]


def capped_loss(frame: pd.DataFrame) -> pd.Series:
    """Each run's final loss capped at its loss at initialisation, a diverged (NaN) run counting
    as that loss: min(l(eta), l_0), the quantity :func:`lr_sensitivity` averages."""
    checks.columns(frame, ["final_loss", "start_loss"], "capped_loss")
    final = frame["final_loss"].where(np.isfinite(frame["final_loss"]), np.inf)
    return np.minimum(final, frame["start_loss"])


def loss_vs_lr(frame: pd.DataFrame) -> pd.DataFrame:
    """Final loss against learning rate for each variant, optimiser and warm-up: over seeds, the
    ``mean``, ``low`` and ``high`` (the band: smallest and largest seed), ``sd`` (sample) of the
    capped final loss (:func:`capped_loss`), ``n`` seeds, and the number of seeds whose run
    ``learned`` or ``diverged`` (:func:`studies.classify`)."""
    checks.columns(frame, [*_KEYS, "lr", "seed", "final_loss", "start_loss", "outcome"],
                   "loss_vs_lr")
    data = frame.assign(capped=capped_loss(frame),
                        learned=frame["outcome"] == "learned",
                        diverged=frame["outcome"] == "diverged")
    grouped = data.groupby([*_KEYS, "lr"], sort=False)
    return pd.DataFrame({
        "mean": grouped["capped"].mean(), "low": grouped["capped"].min(),
        "high": grouped["capped"].max(), "sd": grouped["capped"].std(ddof=1),
        "n": grouped["capped"].size(), "learned": grouped["learned"].sum(),
        "diverged": grouped["diverged"].sum(),
    })


def _sensitivity(curve: pd.Series) -> float:
    """E over the curve's learning rates of (capped loss - the curve's best capped loss)."""
    return float((curve - curve.min()).mean())


def lr_sensitivity(frame: pd.DataFrame, lr_range: tuple[float, float] = LR_RANGE
                   ) -> pd.DataFrame:
    """The LR sensitivity of each variant, optimiser and warm-up, in the spirit of Wortsman et
    al. (their exact formula not checked against a stored copy; the chapter says so):
    E_eta[min(l(eta), l_0) - min_eta l(eta)], the mean over the learning rates in ``lr_range``
    (inclusive; the grid is log-spaced, so this is their expectation over a log-uniform grid) of
    how far the final loss lies above the best one, with a diverged run counting as its loss at
    initialisation l_0. Computed per seed (each seed's curve against its own best) and reported
    as the ``mean``, ``sd``, ``low`` and ``high`` over seeds, with ``of_mean_curve`` (the same
    quantity on the curve of seed means), the learning rate of that curve's minimum
    ``best_lr`` and its loss ``best_loss``."""
    checks.columns(frame, [*_KEYS, "lr", "seed", "final_loss", "start_loss"], "lr_sensitivity")
    low, high = (checks.positive_number("lr_range", v) for v in lr_range)
    data = frame.assign(capped=capped_loss(frame))
    data = data[(data["lr"] >= low * (1 - 1e-9)) & (data["lr"] <= high * (1 + 1e-9))]
    if data.empty:
        raise ValueError(f"no runs have a learning rate in {lr_range}")
    per_seed = (data.groupby([*_KEYS, "seed"], sort=False)
                .apply(lambda g: _sensitivity(g.set_index("lr")["capped"]), include_groups=False)
                .rename("sensitivity"))
    grouped = per_seed.groupby(level=_KEYS, sort=False)
    mean_curve = data.groupby([*_KEYS, "lr"], sort=False)["capped"].mean()
    curves = mean_curve.groupby(level=_KEYS, sort=False)
    return pd.DataFrame({
        "mean": grouped.mean(), "sd": grouped.std(ddof=1), "low": grouped.min(),
        "high": grouped.max(), "n": grouped.size(),
        "of_mean_curve": curves.apply(lambda c: _sensitivity(c.droplevel(_KEYS))),
        "best_lr": curves.apply(lambda c: float(c.droplevel(_KEYS).idxmin())),
        "best_loss": curves.min(),
    })


def _arm_name(optimizer: str, warmup: int) -> str:
    name = "Adam" if optimizer == "adamw" else "RAdam"
    return f"{name}, no warm-up" if warmup == 0 else f"{name}, warm-up {warmup}"


def warmup_comparison(frame: pd.DataFrame, variant: str = "Post-LN",
                      lr_range: tuple[float, float] = LR_RANGE) -> pd.DataFrame:
    """The two explanations of warm-up side by side for ``variant``, paired over seeds (the runs
    of one seed share initialisation and batches). The arms are Adam without warm-up, Adam with
    each warm-up length in the rows ("Adam, warm-up 50"), and RAdam without warm-up; the
    comparisons are each warm-up and RAdam against no warm-up, then RAdam against each
    warm-up. "A vs B" is A's capped final loss (:func:`capped_loss`) minus B's (negative: A
    lower), at every learning rate (``measure`` "final loss") and for the per-seed LR
    sensitivity over ``lr_range`` (``measure`` "LR sensitivity", ``lr`` NaN). Columns:
    ``comparison, measure, lr`` and those of :func:`gradflow.studies.paired` (``wins``: seeds
    on which A was lower)."""
    checks.columns(frame, [*_KEYS, "lr", "seed", "final_loss", "start_loss"],
                   "warmup_comparison")
    data = frame[frame["variant"] == variant]
    if data.empty:
        raise ValueError(f"no runs of variant {variant!r}; the rows have "
                         f"{sorted(frame['variant'].unique())}")
    data = data.assign(capped=capped_loss(data))
    in_range = data[(data["lr"] >= lr_range[0] * (1 - 1e-9))
                    & (data["lr"] <= lr_range[1] * (1 + 1e-9))]
    curves, sensitivities = {}, {}
    for (optimizer, warmup), runs in data.groupby(["optimizer", "warmup"]):
        if optimizer == "radam" and warmup > 0:
            continue   # RAdam is compared on its own, without warm-up
        name = _arm_name(optimizer, int(warmup))
        curves[name] = runs.pivot_table(index="seed", columns="lr", values="capped")
        chosen = in_range[(in_range["optimizer"] == optimizer) & (in_range["warmup"] == warmup)]
        sensitivities[name] = chosen.groupby("seed").apply(
            lambda g: _sensitivity(g.set_index("lr")["capped"]), include_groups=False)
    warm = sorted((n for n in curves if n.startswith("Adam, warm-up")),
                  key=lambda n: int(n.rsplit(" ", 1)[1]))   # by length: 50 before 100
    for needed in ("Adam, no warm-up", "RAdam, no warm-up"):
        if needed not in curves:
            raise ValueError(f"no runs of {variant} for the arm {needed!r}")
    if not warm:
        raise ValueError(f"no runs of {variant} for an arm 'Adam, warm-up ...'")
    pairs = ([(w, "Adam, no warm-up") for w in warm] + [("RAdam, no warm-up", "Adam, no warm-up")]
             + [("RAdam, no warm-up", w) for w in warm])
    rows = []
    for a, b in pairs:
        seeds = curves[a].index.intersection(curves[b].index)
        for lr in curves[a].columns.intersection(curves[b].columns):
            rows.append({"comparison": f"{a} vs {b}", "measure": "final loss", "lr": float(lr),
                         **paired(curves[a].loc[seeds, lr], curves[b].loc[seeds, lr])})
        common = sensitivities[a].index.intersection(sensitivities[b].index)
        rows.append({"comparison": f"{a} vs {b}", "measure": "LR sensitivity", "lr": math.nan,
                     **paired(sensitivities[a].loc[common], sensitivities[b].loc[common])})
    return pd.DataFrame(rows)


__all__ = ["LR_RANGE", "STABILITY_PARAMS", "STABILITY_UNITS", "STUDY_LONG_WARMUP", "STUDY_LRS",
           "STUDY_SEEDS", "STUDY_WARMUP", "capped_loss", "loss_vs_lr", "lr_sensitivity",
           "paired", "run_study", "single_thread", "stability_unit", "study_config",
           "warmup_comparison"]
