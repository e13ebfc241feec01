"""A tiny sequence task for the small GPT, and a short training run: read a few digits and a
separator, then write them back sorted (or copied). Used by the chapters "Putting it together in a
GPT block" and "Normalisation". Every function returns plain data and never prints."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .. import checks
from ..networks.gpt import GPT, GPTConfig

TASKS = ("sort", "copy")


@dataclass(frozen=True)
class SequenceTask:
    """Read ``n_items`` symbols, a separator, then write them back sorted (or copied).

    A sequence is ``a_1 .. a_k SEP b_1 .. b_k`` with symbols 0..n_symbols-1 and SEP = n_symbols;
    b is a sorted (``"sort"``) or unchanged (``"copy"``) copy of a. The model reads all but the
    last token and is scored (cross-entropy) only where it must produce b_1..b_k; other targets
    are -1 (ignored). Sorting cannot be done without looking back at the whole input: a model
    that ignores its input can at best learn the average sorted sequence.
    """

    kind: str = "sort"
    n_items: int = 5
    n_symbols: int = 10

    def __post_init__(self) -> None:
        checks.one_of("kind", self.kind, TASKS)
        for name in ("n_items", "n_symbols"):
            checks.positive_int(name, getattr(self, name))

    @property
    def vocab_size(self) -> int:
        return self.n_symbols + 1

    @property
    def block_size(self) -> int:
        return 2 * self.n_items

    def sample(self, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """A batch ``(idx, targets)``, both ``(batch_size, 2 * n_items)`` of torch.long."""
        a = torch.randint(0, self.n_symbols, (batch_size, self.n_items), generator=generator)
        b = torch.sort(a, dim=1).values if self.kind == "sort" else a
        sep = torch.full((batch_size, 1), self.n_symbols)
        sequence = torch.cat([a, sep, b], dim=1)
        idx, targets = sequence[:, :-1].clone(), sequence[:, 1:].clone()
        targets[:, : self.n_items] = -1  # nothing to predict while the input is being read
        return idx, targets


    def input_blind_losses(self) -> dict[str, float]:
        """The lowest expected loss (nats per output symbol) of two models that ignore the input.

        ``"same at every position"``: one distribution for every output position; the best is
        the pooled distribution of the outputs, uniform over the symbols for both tasks (sorting
        keeps the multiset), so the loss is ln(n_symbols).

        ``"position only"``: a distribution per output position j; the best is the marginal of
        b_j, so the loss is the mean entropy of the b_j. For copying that is ln(n_symbols) again;
        for sorting b_j is the j-th order statistic of k uniform draws from m symbols, with
        P(b_j <= x) = sum_{i=j}^{k} C(k, i) p^i (1 - p)^(k - i), p = (x + 1) / m.
        """
        m, k = self.n_symbols, self.n_items
        uniform = math.log(m)
        if self.kind == "copy":
            return {"same at every position": uniform, "position only": uniform}
        entropies = []
        for j in range(1, k + 1):
            cdf = [sum(math.comb(k, i) * ((x + 1) / m) ** i * (1 - (x + 1) / m) ** (k - i)
                       for i in range(j, k + 1)) for x in range(m)]
            pmf = np.diff([0.0, *cdf])
            pmf = pmf[pmf > 0]
            entropies.append(float(-(pmf * np.log(pmf)).sum()))
        return {"same at every position": uniform, "position only": float(np.mean(entropies))}


#: The chapter's training setup: 12 blocks of width 32 on sorting five digits.
TRAIN_TASK = SequenceTask()
TRAIN_CONFIG = GPTConfig(vocab_size=TRAIN_TASK.vocab_size, block_size=TRAIN_TASK.block_size,
                         n_layer=12, n_head=4, n_embd=32)


@dataclass
class TrainingRun:
    """One training run: the loss after every step, its wall-clock time and final accuracy.

    ``accuracy`` is the fraction of output symbols b_i predicted exactly (arg-max) on a fresh
    batch of 1,000 sequences after training; ``model`` is the trained model; ``inspections``
    lists ``(step, inspect(model))`` at step 0 and every ``inspect_every`` steps (empty without
    ``inspect``).
    """

    config: GPTConfig
    losses: list[float] = field(repr=False)
    seconds: float
    accuracy: float
    model: GPT | None = field(default=None, repr=False, compare=False)
    inspections: list[tuple[int, Any]] = field(default_factory=list, repr=False)


def train_sequence_task(
    config: GPTConfig = TRAIN_CONFIG,
    task: SequenceTask = TRAIN_TASK,
    steps: int = 250,
    batch_size: int = 32,
    lr: float = 1e-3,
    seed: int = 0,
    inspect: Callable[[GPT], Any] | None = None,
    inspect_every: int = 0,
) -> TrainingRun:
    """Train ``GPT(config, seed)`` on ``task`` with AdamW (no warm-up, no weight decay).

    Every step draws a fresh batch (from a generator seeded with ``seed + 1``), so the loss curve
    is also a test-loss curve. With ``inspect``, ``inspect(model)`` is called (under no_grad) on
    the model at initialisation and after every ``inspect_every`` steps, and its results are kept
    in ``inspections``; it must not draw from the task's generator (the batches stay the same).
    Returns a :class:`TrainingRun`.
    """
    for name, value in (("steps", steps), ("batch_size", batch_size)):
        checks.positive_int(name, value)
    if inspect is not None:
        if not callable(inspect):
            raise TypeError(f"inspect must be callable, got {type(inspect).__name__}")
        checks.positive_int("inspect_every", inspect_every)
    if not 0 < lr < math.inf:
        raise ValueError(f"lr must be a positive finite number, got {lr!r}")
    if config.vocab_size < task.vocab_size or config.block_size < task.block_size:
        raise ValueError(
            f"the task needs vocab_size >= {task.vocab_size} and block_size >= {task.block_size}, "
            f"the config has {config.vocab_size} and {config.block_size}"
        )
    model = GPT(config, seed=seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0, foreach=True)
    generator = torch.Generator().manual_seed(int(seed) + 1)
    losses = []
    inspections = []

    def look(step: int) -> None:
        if inspect is not None and step % inspect_every == 0:
            with torch.no_grad():
                inspections.append((step, inspect(model)))

    start = time.perf_counter()
    look(0)
    for step in range(1, steps + 1):
        idx, targets = task.sample(batch_size, generator)
        _, loss = model(idx, targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        look(step)
    seconds = time.perf_counter() - start
    with torch.no_grad():
        idx, targets = task.sample(1000, generator)
        predicted = model(idx).argmax(dim=-1)
        scored = targets != -1
        accuracy = (predicted[scored] == targets[scored]).double().mean().item()
    return TrainingRun(config, losses, seconds, accuracy, model, inspections)
