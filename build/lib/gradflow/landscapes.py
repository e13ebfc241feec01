"""Two-dimensional slices of a loss landscape with filter-normalised directions (Li et al. 2018,
"Visualizing the Loss Landscape of Neural Nets", arXiv 1712.09913).

Around trained parameters theta the slice is L(theta + a d1 + b d2) on a grid of (a, b). Each
direction is a Gaussian draw rescaled *per filter*: for a weight matrix of shape (out, in), every
row (one unit's incoming weights, the fully connected analogue of a convolution filter) gets the
norm of the same row of theta, so that a step of a = 1 moves every unit by its own size and the
scale-invariance that ReLU and BatchNorm give a unit does not distort the picture. Biases are not
moved (their direction is zero) here.

The grid's points are evaluated as the members of one stacked network (``stacked_forward``), one
batched pass for the whole slice.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from . import checks


def filter_normalised_direction(
    weights: Sequence[torch.Tensor], generator: torch.Generator
) -> list[torch.Tensor]:
    """A random direction for each weight matrix (shape ``(out, in)``): d ~ N(0, 1) drawn from
    ``generator``, each row rescaled to the norm of the same row of the weights. A zero row of
    the weights gives a zero row of the direction."""
    directions = []
    for w in weights:
        if w.dim() != 2:
            raise ValueError(f"each weight must be a matrix (out, in), got shape {tuple(w.shape)}")
        d = torch.randn(w.shape, generator=generator, dtype=torch.float64)
        d_norm = d.norm(dim=1, keepdim=True)
        w_norm = w.detach().double().norm(dim=1, keepdim=True)
        directions.append(d * (w_norm / d_norm))
    return directions


def loss_slice(
    loss: Callable[[list[torch.Tensor]], torch.Tensor],
    weights: Sequence[torch.Tensor],
    directions: tuple[Sequence[torch.Tensor], Sequence[torch.Tensor]],
    coordinates: Sequence[float],
) -> np.ndarray:
    """L(theta + a d1 + b d2) for every (a, b) in ``coordinates`` x ``coordinates``.

    ``loss`` takes a list of stacked weight tensors (one per layer, shape ``(G, out, in)`` for G
    grid points) and returns the G losses. Returns a float64 array of shape ``(len(coordinates),
    len(coordinates))`` indexed ``[b, a]`` (rows: the second direction).
    """
    grid = np.asarray(coordinates, dtype=np.float64)
    if grid.ndim != 1 or len(grid) < 2:
        raise ValueError(f"coordinates must be a 1-D sequence of at least 2 numbers, got {grid!r}")
    d1, d2 = directions
    if not len(d1) == len(d2) == len(weights):
        raise ValueError("each direction needs one tensor per weight matrix")
    a, b = np.meshgrid(grid, grid)   # [b, a] layout
    a_t = torch.tensor(a.ravel()).reshape(-1, 1, 1)
    b_t = torch.tensor(b.ravel()).reshape(-1, 1, 1)
    moved = [w.detach().double().unsqueeze(0) + a_t * u.unsqueeze(0) + b_t * v.unsqueeze(0)
             for w, u, v in zip(weights, d1, d2)]
    with torch.no_grad():
        values = loss(moved).double().numpy()
    return values.reshape(a.shape)


def local_minima(surface: np.ndarray) -> int:
    """How many interior grid points are lower than all eight neighbours: one for a convex bowl,
    more for a landscape with several basins."""
    z = np.asarray(surface, dtype=np.float64)
    checks.positive_int("rows", z.shape[0])
    centre = z[1:-1, 1:-1]
    lower = np.ones_like(centre, dtype=bool)
    for di in (-1, 0, 1):
        for dj in (-1, 0, 1):
            if di == dj == 0:
                continue
            lower &= centre < z[1 + di:z.shape[0] - 1 + di, 1 + dj:z.shape[1] - 1 + dj]
    return int(lower.sum())
