"""A small regression task for MLPs: inputs x ~ N(0, I) and targets from a random
one-hidden-layer tanh teacher, standardised; and the full-batch loop that trains many MLPs on it at
once (a ``StackedMLP``). Used by the chapters "Shortcut connections", "Normalisation" and "What
shortcuts fix when gradients do not vanish"."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .. import checks
from ..networks.mlp import make_generator
from ..networks.stacked import StackedMLP


@dataclass(frozen=True)
class RegressionTask:
    """Inputs x ~ N(0, I) and targets y = tanh(x U) v from a random teacher, standardised to mean
    0 and variance 1 (so predicting the mean gives a loss of about 1)."""

    x: torch.Tensor
    y: torch.Tensor
    seed: int


def make_regression_task(
    n_samples: int = 64, dim: int = 8, teacher_width: int = 64, seed: int = 0
) -> RegressionTask:
    """A small synthetic regression task: a random one-hidden-layer tanh teacher.

    U ~ N(0, 4 / dim) (so tanh works in its non-linear range), v ~ N(0, 1), all drawn from a
    generator seeded with ``seed``; y is standardised over the sample.
    """
    for name, value in (("n_samples", n_samples), ("dim", dim), ("teacher_width", teacher_width)):
        checks.positive_int(name, value)
    if n_samples < 2:
        raise ValueError(f"n_samples must be at least 2 (y is standardised), got {n_samples}")
    generator = make_generator(seed)
    x = torch.randn(n_samples, dim, generator=generator)
    u = torch.randn(dim, teacher_width, generator=generator) * (2.0 / math.sqrt(dim))
    v = torch.randn(teacher_width, 1, generator=generator)
    y = torch.tanh(x @ u) @ v
    y = (y - y.mean()) / y.std()
    return RegressionTask(x, y, seed)


class torch_threads:
    """Run a block with ``n`` torch threads, then restore the previous setting. Small batched
    ops gain nothing from a second thread, and on a busy machine threads wait for each other."""

    def __init__(self, n: int):
        self.n, self.before = n, torch.get_num_threads()

    def __enter__(self) -> None:
        torch.set_num_threads(self.n)

    def __exit__(self, *exc: object) -> None:
        torch.set_num_threads(self.before)



def train_full_batch(
    model: StackedMLP, task: RegressionTask, steps: int, lr: float
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """Full-batch Adam; returns the per-member loss before each step (and after the last) and
    the first and last layer's mean |dL/dW| at initialisation."""
    optimiser = torch.optim.Adam(model.parameters(), lr=lr, fused=True)
    history = np.empty((steps + 1, len(model.seeds)))
    initial = (np.empty(0), np.empty(0))
    for step in range(steps + 1):
        per_member = (model(task.x) - task.y).pow(2).mean(dim=(1, 2))
        history[step] = per_member.detach().numpy()
        if step == steps:
            break
        optimiser.zero_grad()
        per_member.sum().backward()
        if step == 0:
            initial = tuple(
                w.grad.double().abs().mean(dim=(1, 2)).numpy()
                for w in (model.weights[0], model.weights[-1])
            )
        optimiser.step()
    return history, initial
