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

Instead of AdamW the copies can be stepped with RAdam (Liu et al. 2020, "On the Variance of the
Adaptive Learning Rate and Beyond"), also written out on the stacked tensors as
``torch.optim.RAdam`` computes it (``tests/test_after_gpt2_stability.py`` checks one copy against
it), and Adam's beta2 can be changed (``betas``).
"""

from __future__ import annotations

import math
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
#: The optimisers :func:`train_copies` writes out: AdamW (no weight decay, so Adam) and RAdam.
OPTIMIZERS = ("adamw", "radam")


def radam_rectification(step: int, beta2: float) -> float | None:
    """RAdam's variance rectification r_t at ``step`` t (1-based) for ``beta2``, or None where
    the approximated variance is intractable (rho_t <= 5) and RAdam takes an un-adapted
    momentum-SGD step instead (Liu et al. 2020, Algorithm 2, with the threshold 5 that
    ``torch.optim.RAdam`` uses): rho_inf = 2 / (1 - beta2) - 1,
    rho_t = rho_inf - 2 t beta2^t / (1 - beta2^t), and
    r_t = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))."""
    rho_inf = 2 / (1 - beta2) - 1
    rho_t = rho_inf - 2 * step * beta2**step / (1 - beta2**step)
    if rho_t <= 5:
        return None
    return math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t))


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
        optimizer, betas: the update rule all copies used (:data:`OPTIMIZERS`) and its betas.
        grad_norms: ``(n, K)`` the norm of each copy's whole gradient at steps 1..n, for the n
            steps asked for with ``grad_norm_steps`` (empty without).
        block_grad_norms: ``(n_layer, K)`` the norm of the gradient of each block's parameters
            at the first step, at initialisation (block 1 nearest the input).
    """

    config: GPTConfig
    seeds: list[int]
    lrs: list[float]
    warmups: list[int]
    losses: np.ndarray = field(repr=False)
    accuracy: np.ndarray = field(repr=False)
    updates: dict[int, np.ndarray] = field(repr=False)
    optimizer: str = "adamw"
    betas: tuple[float, float] = BETAS
    grad_norms: np.ndarray = field(default_factory=lambda: np.empty((0, 0)), repr=False)
    block_grad_norms: np.ndarray = field(default_factory=lambda: np.empty((0, 0)), repr=False)


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
    optimizer: str = "adamw",
    betas: tuple[float, float] = BETAS,
    grad_norm_steps: int = 0,
) -> CopiesRun:
    """Train copies of ``GPT(config, seed)`` with AdamW (no weight decay) on ``task``.

    Give ``seeds``, ``lrs`` and ``warmups`` as lists of one length K (one entry per copy) or
    as single values shared by all copies. Every step draws one fresh batch from a generator
    seeded with ``data_seed`` and gives it to every copy. ``update_steps`` lists the steps after
    which to record each copy's relative output change (see :class:`CopiesRun`); the accuracy
    is measured on ``eval_size`` fresh sequences.

    ``optimizer="radam"`` steps every copy with RAdam instead (no weight decay; the warm-up
    factors still multiply the learning rate, so give ``warmups=0`` for RAdam on its own);
    ``betas`` are Adam's (beta1, beta2) for either. ``grad_norm_steps`` n records the norm of each
    copy's gradient at steps 1..n (before the update).
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
    checks.one_of("optimizer", optimizer, OPTIMIZERS)
    if (not isinstance(betas, Sequence) or len(betas) != 2
            or not all(isinstance(b, (int, float)) and not isinstance(b, bool) and 0 <= b < 1
                       for b in betas)):
        raise ValueError(f"betas must be two numbers in [0, 1), got {betas!r}")
    betas = (float(betas[0]), float(betas[1]))
    grad_norm_steps = int(checks.non_negative_number("grad_norm_steps", grad_norm_steps))
    if grad_norm_steps > steps:
        raise ValueError(f"grad_norm_steps must lie in 0..steps={steps}, got {grad_norm_steps}")
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
    grad_norms = np.empty((grad_norm_steps, k))
    block_grad_norms = np.empty((config.n_layer, k))
    (b1, b2) = betas
    for t in range(1, steps + 1):
        idx, targets = task.sample(batch_size, generator)
        loss = batched_loss(params, buffers, idx, targets)
        loss.sum().backward()
        losses[t - 1] = loss.detach().numpy()
        lr = peak * torch.tensor([warmup_factor(t, w) for w in warmups])
        with torch.no_grad():
            if t <= grad_norm_steps:
                squares = sum(p.grad.double().pow(2).reshape(k, -1).sum(dim=1) for p in params.values())
                grad_norms[t - 1] = squares.sqrt().numpy()
            if t == 1:
                for layer in range(config.n_layer):
                    squares = sum(p.grad.double().pow(2).reshape(k, -1).sum(dim=1)
                                  for n, p in params.items() if n.startswith(f"blocks.{layer}."))
                    block_grad_norms[layer] = squares.sqrt().numpy()
            rect = radam_rectification(t, b2) if optimizer == "radam" else 1.0
            for n, p in params.items():
                g = p.grad
                m[n].mul_(b1).add_(g, alpha=1 - b1)
                v[n].mul_(b2).addcmul_(g, g, value=1 - b2)
                step = (lr / (1 - b1**t)).view(-1, *([1] * (p.dim() - 1)))
                if optimizer == "adamw":
                    denom = (v[n] / (1 - b2**t)).sqrt_().add_(EPS)
                    p.sub_(step * m[n] / denom)
                elif rect is None:   # RAdam's first steps: momentum SGD, no adaptive rate
                    p.sub_(step * m[n])
                else:                # torch.optim.RAdam: sqrt(1 - b2^t) / (sqrt(v) + eps)
                    adaptive = math.sqrt(1 - b2**t) / v[n].sqrt().add_(EPS)
                    p.sub_(step * m[n] * adaptive * rect)
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
    return CopiesRun(config, seeds, lrs, warmups, losses, accuracy, updates, optimizer, betas,
                     grad_norms, block_grad_norms)


def final_loss(run: CopiesRun, last: int = 10) -> np.ndarray:
    """Each copy's mean training loss over the ``last`` steps (NaN if it diverged)."""
    checks.positive_int("last", last)
    tail = run.losses[-last:]
    with np.errstate(invalid="ignore"):
        return np.where(np.isfinite(tail).all(axis=0), tail.mean(axis=0), np.nan)


__all__ = ["BETAS", "EPS", "OPTIMIZERS", "CopiesRun", "final_loss", "radam_rectification",
           "train_copies", "warmup_factor"]
