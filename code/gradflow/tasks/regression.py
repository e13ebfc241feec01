"""A small regression task for MLPs: inputs x ~ N(0, I) and targets from a random
one-hidden-layer tanh teacher, standardised. Used by the chapters "Shortcut connections" and
"Normalisation"."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .. import checks
from ..networks.mlp import make_generator


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
