"""Training many copies of the book's GPT at once, for the chapter "After GPT-2".

The GPT chapter trains one model at a time (``gradflow.tasks.sequence.train_sequence_task``).
This chapter needs dozens of short runs (seeds, learning rates, warm-up or not), and on a CPU a
model this small spends most of its time in per-operation overhead, not arithmetic. So
:func:`train_copies` stacks K copies of one ``GPT`` (``torch.func.stack_module_state``), runs
their forward and backward passes as one (``torch.func.vmap`` over ``functional_call``), and
steps all of them with AdamW written out on the stacked tensors, each copy with its own learning
rate and warm-up. The copies see the same batches (from the task of the GPT chapter), so they
differ only in what the caller varies: the seed of the initialisation, the learning rate, the
warm-up. ``tests/test_after_gpt2.py`` checks one copy against ``torch.optim.AdamW`` on the model
itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.func import functional_call, stack_module_state, vmap

from ... import checks
from ...networks.gpt import GPT, GPTConfig
from ...tasks.sequence import TRAIN_TASK, SequenceTask

#: AdamW's defaults in PyTorch (Loshchilov & Hutter 2019), without weight decay.
BETAS = (0.9, 0.999)
EPS = 1e-8


@dataclass
class CopiesRun:
    """K copies trained side by side.

    Attributes:
        config: the architecture all copies share.
        seeds, lrs, warmups: per copy, the initialisation seed, peak learning rate and number of
            linear warm-up steps (0: none).
        losses: ``(steps, K)`` training loss at every step (NaN once a copy has diverged).
        accuracy: ``(K,)`` fraction of output symbols predicted exactly on fresh sequences
            after training (NaN for a diverged copy).
        updates: ``{step: (K,)}`` relative change of the logits on a fixed probe batch after that
            many steps, ||f(theta_t) - f(theta_0)|| / ||f(theta_0)|| in float64 (the model update
            DeepNet bounds; Wang et al. 2022, section 3).
    """

    config: GPTConfig
    seeds: list[int]
    lrs: list[float]
    warmups: list[int]
    losses: np.ndarray = field(repr=False)
    accuracy: np.ndarray = field(repr=False)
    updates: dict[int, np.ndarray] = field(repr=False)


def _per_copy(name: str, values, k: int) -> list:
    values = list(values) if isinstance(values, Sequence) else [values] * k
    if len(values) != k:
        raise ValueError(f"{name} needs one value per copy ({k}), got {len(values)}")
    return values


def warmup_factor(step: int, warmup: int) -> float:
    """The learning-rate multiplier at ``step`` (1-based) of a linear warm-up over ``warmup``
    steps: step / warmup until it reaches 1; always 1 without warm-up."""
    return 1.0 if warmup <= 0 else min(1.0, step / warmup)


def train_copies(
    config: GPTConfig,
    seeds: Sequence[int] | int = 0,
    lrs: Sequence[float] | float = 1e-3,
    warmups: Sequence[int] | int = 0,
    *,
    task: SequenceTask = TRAIN_TASK,
    steps: int = 100,
    batch_size: int = 32,
    data_seed: int = 1,
    update_steps: Sequence[int] = (),
    eval_size: int = 1000,
) -> CopiesRun:
    """Train copies of ``GPT(config, seed)`` with AdamW (no weight decay) on ``task``.

    Give ``seeds``, ``lrs`` and ``warmups`` as lists of one length K (one entry per copy) or
    as single values shared by all copies. Every step draws one fresh batch from a generator
    seeded with ``data_seed`` and gives it to every copy. ``update_steps`` lists the steps after
    which to record each copy's relative output change (see :class:`CopiesRun`); the accuracy
    is measured on ``eval_size`` fresh sequences.
    """
    lengths = [len(v) for v in (seeds, lrs, warmups) if isinstance(v, Sequence)]
    k = max(lengths, default=1)
    seeds = [checks.seed(s) for s in _per_copy("seeds", seeds, k)]
    lrs = [checks.positive_number("lr", lr) for lr in _per_copy("lrs", lrs, k)]
    warmups = [int(checks.non_negative_number("warmup", w)) for w in _per_copy("warmups", warmups, k)]
    for name, value in (("steps", steps), ("batch_size", batch_size), ("eval_size", eval_size)):
        checks.positive_int(name, value)
    if config.vocab_size < task.vocab_size or config.block_size < task.block_size:
        raise ValueError(f"the task needs vocab_size >= {task.vocab_size} and block_size >= "
                         f"{task.block_size}, the config has {config.vocab_size} and "
                         f"{config.block_size}")
    update_steps = sorted({checks.positive_int("update step", s) for s in update_steps})
    if update_steps and update_steps[-1] > steps:
        raise ValueError(f"update_steps must lie in 1..steps={steps}, got {update_steps}")

    models = [GPT(config, seed=s) for s in seeds]
    params, buffers = stack_module_state(models)   # leaves (K, ...) that require grad
    base = models[0]   # only its structure is used: functional_call swaps the tensors in

    def loss_of(p, b, idx, targets):
        return functional_call(base, (p, b), (idx, targets))[1]

    def logits_of(p, b, idx):
        return functional_call(base, (p, b), (idx,))

    # Plain autograd through vmap: the sum of the copies' losses has each copy's own gradient
    # in its slice, as the copies share no parameters.
    batched_loss = vmap(loss_of, in_dims=(0, 0, None, None))
    batched_logits = vmap(logits_of, in_dims=(0, 0, None))

    generator = torch.Generator().manual_seed(int(data_seed))
    probe, _ = task.sample(64, torch.Generator().manual_seed(int(data_seed) + 10_000))
    with torch.no_grad():
        start = batched_logits(params, buffers, probe).double()
    m = {n: torch.zeros_like(p) for n, p in params.items()}
    v = {n: torch.zeros_like(p) for n, p in params.items()}
    peak = torch.tensor(lrs, dtype=torch.float32)
    losses = np.empty((steps, k))
    updates = {}
    (b1, b2) = BETAS
    for t in range(1, steps + 1):
        idx, targets = task.sample(batch_size, generator)
        loss = batched_loss(params, buffers, idx, targets)
        loss.sum().backward()
        losses[t - 1] = loss.detach().numpy()
        lr = peak * torch.tensor([warmup_factor(t, w) for w in warmups])
        with torch.no_grad():
            for n, p in params.items():
                g = p.grad
                m[n].mul_(b1).add_(g, alpha=1 - b1)
                v[n].mul_(b2).addcmul_(g, g, value=1 - b2)
                denom = (v[n] / (1 - b2**t)).sqrt_().add_(EPS)
                step = (lr / (1 - b1**t)).view(-1, *([1] * (p.dim() - 1)))
                p.sub_(step * m[n] / denom)
                p.grad = None
            if t in update_steps:
                now = batched_logits(params, buffers, probe).double()
                change = (now - start).flatten(1).norm(dim=1) / start.flatten(1).norm(dim=1)
                updates[t] = change.numpy()
    with torch.no_grad():
        idx, targets = task.sample(eval_size, generator)
        predicted = batched_logits(params, buffers, idx).argmax(dim=-1)
        scored = targets != -1
        accuracy = (predicted[:, scored] == targets[scored]).double().mean(dim=1).numpy()
    accuracy = np.where(np.isfinite(losses[-1]), accuracy, np.nan)
    return CopiesRun(config, seeds, lrs, warmups, losses, accuracy, updates)


def final_loss(run: CopiesRun, last: int = 10) -> np.ndarray:
    """Each copy's mean training loss over the ``last`` steps (NaN if it diverged)."""
    checks.positive_int("last", last)
    tail = run.losses[-last:]
    with np.errstate(invalid="ignore"):
        return np.where(np.isfinite(tail).all(axis=0), tail.mean(axis=0), np.nan)


__all__ = ["BETAS", "EPS", "CopiesRun", "final_loss", "train_copies", "warmup_factor"]
