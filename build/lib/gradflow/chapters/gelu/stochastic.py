"""GELU's stochastic view, measured: GELU(x) = E[x m] with m ~ Bernoulli(Phi(x)) (Hendrycks &
Gimpel 2016, section 2), estimated by Monte Carlo. Part of the GELU chapter (``book/gelu.md``)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ... import activations as act
from ... import checks
from .approximations import exact_gelu


@dataclass(frozen=True)
class MonteCarloGELU:
    """Monte Carlo estimates of GELU(x) = E[x m], m ~ Bernoulli(Phi(x)).

    Attributes:
        x: the inputs.
        n_samples: draws of m per input.
        seed: the seed of the generator that drew them.
        estimate: the sample mean of x m per input.
        standard_error: the sample standard deviation of x m over sqrt(n_samples), per input.
        exact: x Phi(x) per input.
    """

    x: np.ndarray
    n_samples: int
    seed: int
    estimate: np.ndarray
    standard_error: np.ndarray
    exact: np.ndarray


def _check_samples(n_samples: int, seed: int) -> None:
    if checks.positive_int("n_samples", n_samples) < 2:
        raise ValueError(f"n_samples must be an integer >= 2, got {n_samples!r}")
    checks.seed(seed)


def monte_carlo_gelu(x: Sequence[float], n_samples: int, seed: int) -> MonteCarloGELU:
    """Estimate GELU at each x by averaging x m over ``n_samples`` draws of m ~ Bernoulli(Phi(x)).

    Hendrycks & Gimpel (2016, section 2) motivate GELU as the expectation of this stochastic
    gate: the input is kept (m = 1) with probability Phi(x) and zeroed otherwise, so
    E[x m] = x Phi(x). The draws use a ``torch.Generator`` seeded with ``seed``, in float64.
    """
    _check_samples(n_samples, seed)
    xs = torch.as_tensor(np.asarray(x, dtype=np.float64)).reshape(-1)
    if xs.numel() == 0 or not torch.isfinite(xs).all():
        raise ValueError("x must be a non-empty sequence of finite numbers")
    generator = torch.Generator().manual_seed(seed)
    p = act.standard_normal_cdf(xs)
    m = torch.bernoulli(p.expand(n_samples, -1), generator=generator)
    samples = xs * m
    return MonteCarloGELU(
        x=xs.numpy(), n_samples=n_samples, seed=seed,
        estimate=samples.mean(dim=0).numpy(),
        standard_error=(samples.std(dim=0) / math.sqrt(n_samples)).numpy(),
        exact=exact_gelu(xs).numpy(),
    )


@dataclass(frozen=True)
class MonteCarloPath:
    """The running mean of x m, m ~ Bernoulli(Phi(x)), as the number of draws grows.

    Attributes:
        x: the input.
        seed: the generator's seed.
        n: the numbers of draws at which the running mean is recorded.
        running_mean: the mean of the first n draws of x m.
        standard_error: the theoretical standard error |x| sqrt(Phi(x)(1 - Phi(x)) / n).
        exact: x Phi(x).
    """

    x: float
    seed: int
    n: np.ndarray
    running_mean: np.ndarray
    standard_error: np.ndarray
    exact: float


def monte_carlo_path(x: float, n_samples: int, seed: int, n_points: int = 200) -> MonteCarloPath:
    """One sequence of ``n_samples`` draws; its running mean at ~``n_points`` log-spaced n."""
    _check_samples(n_samples, seed)
    if not math.isfinite(x):
        raise ValueError(f"x must be finite, got {x!r}")
    generator = torch.Generator().manual_seed(seed)
    xt = torch.tensor(float(x), dtype=torch.float64)
    p = act.standard_normal_cdf(xt)
    draws = xt * torch.bernoulli(p.expand(n_samples), generator=generator)
    running = torch.cumsum(draws, 0) / torch.arange(1, n_samples + 1, dtype=torch.float64)
    n = np.unique(np.geomspace(1, n_samples, n_points).round().astype(int))
    se = abs(float(x)) * np.sqrt(float(p * (1 - p)) / n)
    return MonteCarloPath(
        x=float(x), seed=seed, n=n, running_mean=running.numpy()[n - 1], standard_error=se,
        exact=float(exact_gelu(xt)),
    )
