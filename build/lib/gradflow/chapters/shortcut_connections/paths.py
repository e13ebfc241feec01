"""Residual networks as ensembles of paths (Veit et al. 2016): how many paths of each length, and
how much gradient each length carries. Part of the chapter "Shortcut connections"
(``book/shortcut_connections.md``)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from ... import checks
from ...activations import autograd_derivative
from ...networks.mlp import DeepMLP, make_generator
from ...tutorial import SEED_ACTIVATION


def path_length_distribution(n_blocks: int) -> pd.DataFrame:
    """The lengths of the 2^n paths through n residual blocks (Veit et al. 2016).

    Unrolling x_{i+1} = x_i + F_i(x_i) gives one path per subset of blocks whose branch it
    takes; C(n, k) paths take k branches. Returns one row per length k = 0..n with the exact
    integer ``n_paths`` = C(n, k) and ``share`` = C(n, k) / 2^n.
    """
    n = checks.positive_int("n_blocks", n_blocks)
    counts = [math.comb(n, k) for k in range(n + 1)]
    total = 2 ** n
    return pd.DataFrame({
        "length": range(n + 1),
        "n_paths": pd.array(counts, dtype=object),
        "share": [c / total for c in counts],
    }).set_index("length")


#: The explorable's numbers of blocks: 1 to 60 (Veit et al.'s ResNet-110 has 54).
EXPLORER_BLOCKS = tuple(range(1, 61))


def path_length_explorer(blocks: Sequence[int] = EXPLORER_BLOCKS) -> dict[int, pd.DataFrame]:
    """``path_length_distribution(n)`` for every n of ``blocks``, keyed by n."""
    return {n: path_length_distribution(n) for n in checks.positive_ints("blocks", blocks)}


def path_length_share(n_blocks: int, low: int, high: int) -> float:
    """The share of the 2^n paths whose length k satisfies low <= k <= high (exact, then float)."""
    n = checks.positive_int("n_blocks", n_blocks)
    if not 0 <= low <= high <= n:
        raise ValueError(f"need 0 <= low <= high <= n_blocks = {n}, got low={low}, high={high}")
    return sum(math.comb(n, k) for k in range(low, high + 1)) / 2 ** n


def _check_residual_chain(model: DeepMLP) -> None:
    if not isinstance(model, DeepMLP):
        raise TypeError(f"needs a gradflow.DeepMLP, got {type(model).__name__}")
    for i, block in enumerate(model.blocks, start=1):
        if block.shortcut_kind != "identity" or block.shortcut_scale != 1.0:
            raise ValueError(
                f"every block needs an identity shortcut with scale 1 for the path view; "
                f"block {i} has shortcut={block.shortcut_kind}, scale={block.shortcut_scale:g}"
            )
        if not (isinstance(block.branch_scale, float) and block.branch_scale == 1.0):
            raise ValueError(f"block {i} has a branch scale; the path view needs 1")


def _branch_factors(model: DeepMLP, x: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per block, (phi'(z), W): the branch Jacobian at each input row is diag(phi'(z)) W."""
    factors = []
    h = x.detach()
    with torch.no_grad():
        for block in model.blocks:
            z = block.linear(h)
            factors.append((autograd_derivative(block.activation.name, z), block.linear.weight))
            h = block(h)
    return factors


def _propagate_paths(
    top: torch.Tensor, factors: list[tuple[torch.Tensor, torch.Tensor]], masks: torch.Tensor
) -> torch.Tensor:
    """Back-propagate ``top`` (B, w) along the paths given by ``masks`` (P, n blocks, bool):
    through block k's branch where the mask is true, through its shortcut where it is false.
    Returns the gradients at the input, shape (P, B, w)."""
    v = top.unsqueeze(0).expand(masks.shape[0], *top.shape).clone()
    for k in range(len(factors) - 1, -1, -1):
        slope, weight = factors[k]
        branch = (v * slope) @ weight
        v = torch.where(masks[:, k].reshape(-1, 1, 1), branch, v)
    return v


def path_gradient(
    model: DeepMLP, x: torch.Tensor, readout: torch.Tensor, blocks: Sequence[int]
) -> torch.Tensor:
    """The part of dL/dx (L = sum(readout * model(x))) carried by one path: the path through
    the branches of ``blocks`` (0-based) and the shortcuts of all other blocks.

    Summed over all 2^n subsets this is the whole gradient dL/dx (the chain rule through
    prod_k (I + J_k) expanded: Veit et al. 2016's unraveled view).
    """
    _check_residual_chain(model)
    n = len(model.blocks)
    chosen = set(blocks)
    if not chosen <= set(range(n)):
        raise ValueError(f"blocks must be indices 0..{n - 1}, got {sorted(chosen)}")
    mask = torch.tensor([[k in chosen for k in range(n)]])
    return _propagate_paths(readout, _branch_factors(model, x), mask)[0]


def path_gradient_magnitudes(
    model: DeepMLP, x: torch.Tensor, readout: torch.Tensor, n_samples: int = 64, seed: int = 0
) -> pd.DataFrame:
    """Veit et al. (2016), Fig. 6: how much gradient paths of each length carry.

    For each length k = 0..n, ``n_samples`` paths of length k are drawn uniformly (a random
    k-subset of the blocks, from a generator seeded with ``seed``), and for each the gradient
    that reaches the input along that path alone is measured (Frobenius norm over the batch).
    ``magnitude`` is its mean over the samples; ``total`` = C(n, k) * magnitude is the gradient
    magnitude all paths of length k contribute together; ``share_of_total`` normalises it.
    """
    _check_residual_chain(model)
    n_samples = checks.positive_int("n_samples", n_samples)
    n = len(model.blocks)
    generator = make_generator(seed)
    lengths = torch.arange(n + 1).repeat_interleave(n_samples)
    ranks = torch.rand(len(lengths), n, generator=generator).argsort(dim=1).argsort(dim=1)
    masks = ranks < lengths.unsqueeze(1)
    factors = _branch_factors(model, x)
    with torch.no_grad():
        grads = _propagate_paths(readout.detach(), factors, masks)
    norms = grads.double().flatten(1).norm(dim=1).reshape(n + 1, n_samples)
    magnitude = norms.mean(dim=1).numpy()
    counts = np.array([float(math.comb(n, k)) for k in range(n + 1)])
    total = counts * magnitude
    return pd.DataFrame({
        "length": range(n + 1),
        "magnitude": magnitude,
        "n_paths": counts,
        "total": total,
        "share_of_total": total / total.sum(),
    }).set_index("length")


def path_experiment(
    n_blocks: int = 54, width: int = 32, batch: int = 16, n_samples: int = 32, seed: int = 0
) -> pd.DataFrame:
    """``path_gradient_magnitudes`` on ``DeepMLP(depth=n_blocks, width=width, activation=
    "gelu_tanh", shortcut=True, seed=seed)`` at initialisation: every layer is a residual block
    with the seed's GELU and PyTorch's default initialisation. The input and the readout are
    standard normal, drawn from a generator seeded with ``seed + 10_000``."""
    model = DeepMLP(depth=n_blocks, width=width, activation=SEED_ACTIVATION, shortcut=True,
                    seed=seed)
    generator = make_generator(seed + 10_000)
    x = torch.randn(batch, width, generator=generator)
    readout = torch.randn(batch, width, generator=generator)
    return path_gradient_magnitudes(model, x, readout, n_samples=n_samples, seed=seed)
