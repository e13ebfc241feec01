"""The chapter's two largest sweeps at initialisation, kept as studies (``gradflow.studies``) so
that a build loads them instead of measuring them again: the back-propagated signal through
depth-50 MLPs of width 256, for every activation and initialisation and four seeds, and the
depth-by-gain grid of the heatmaps (``GRID_STUDY``). Nothing is trained. Each unit of the first
is :func:`~.experiments.gradient_sweep` for one activation and one initialisation, exactly the call
the whole sweep makes for that pair (its random draws depend on the initialisation and the seed
only), so the kept signal norms are the ones the chapter measured before, digit for digit. Part of
the chapter "Vanishing and exploding gradients" (``book/vanishing_gradients.md``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ... import checks
from ...studies import Study
from .experiments import ACTIVATIONS, depth_gain_grid, gradient_sweep

#: The sweep's initialisations (every activation of ``ACTIVATIONS`` with each).
SWEEP_INITS = ("default", "xavier", "kaiming")


def sweep_unit(activation: str, init: str, *, depth: int, seeds: Sequence[int], width: int,
               batch: int) -> list[dict]:
    """``gradient_sweep([activation], [init], [depth], seeds, width=width, batch=batch,
    weight_stats=False)``, kept compact: one row per seed with ``signal_norm``, the list of
    ||dL/dh_l|| for l = 1..depth (every digit)."""
    frame = gradient_sweep([activation], [init], [depth], seeds, width=width, batch=batch,
                           weight_stats=False)
    return [{"activation": activation, "init": init, "seed": int(seed),
             "signal_norm": group.sort_values("layer")["signal_norm"].tolist()}
            for seed, group in frame.groupby("seed", sort=False)]


SWEEP_STUDY = Study(
    "gradient_sweep", __name__, sweep_unit,
    units=[{"activation": a, "init": i} for i in SWEEP_INITS for a in ACTIVATIONS],
    params={"depth": 50, "seeds": list(range(4)), "width": 256, "batch": 4},
    about="the signal through depth-50 MLPs at initialisation, 6 activations x 3 inits, 4 seeds")


def sweep_frame(rows: pd.DataFrame, depth: int = SWEEP_STUDY.params["depth"],
                width: int = SWEEP_STUDY.params["width"]) -> pd.DataFrame:
    """The rows of :func:`sweep_unit` (of ``depth`` and ``width``: by default the study's) as
    the tidy table ``gradient_sweep`` returns, for the columns they keep: ``activation, init,
    gain, seed, depth, layer, width, signal_norm``, one row per seed and layer, in
    ``gradient_sweep``'s order."""
    checks.columns(rows, ["activation", "init", "seed", "signal_norm"], "sweep_frame")
    depth, width = checks.positive_int("depth", depth), checks.positive_int("width", width)
    long = rows[["activation", "init", "seed", "signal_norm"]].explode("signal_norm",
                                                                       ignore_index=True)
    if len(long) != depth * len(rows):
        raise ValueError(f"every row must hold {depth} signal norms")
    long.insert(2, "gain", 1.0)
    long.insert(4, "depth", depth)
    long.insert(5, "layer", np.tile(np.arange(1, depth + 1), len(rows)))
    long.insert(6, "width", width)
    return long.astype({"seed": int, "signal_norm": float})


#: The heatmaps' (activation, initialisation) pairs, gains and depths.
GRID_CONFIGS = (("tanh", "xavier"), ("relu", "kaiming"), ("gelu", "kaiming"))
GRID_GAINS = tuple(float(g) for g in np.geomspace(0.25, 4.0, 13))
GRID_DEPTHS = tuple(range(2, 51, 4))


def grid_unit(activation: str, init: str, *, gains: Sequence[float], depths: Sequence[int],
              seeds: Sequence[int], width: int) -> list[dict]:
    """The rows of :func:`~.experiments.depth_gain_grid` for one activation and initialisation,
    with ``activation`` and ``init`` added."""
    grid = depth_gain_grid(activation, init, gains, depths, seeds, width=width)
    return [{"activation": activation, "init": init, "gain": float(row.gain),
             "depth": int(row.depth), **{c: float(getattr(row, c)) for c in
                                         ("measured", "measured_min", "measured_max", "predicted")}}
            for row in grid.itertuples()]


GRID_STUDY = Study(
    "depth_gain_grid", __name__, grid_unit,
    units=[{"activation": a, "init": i} for a, i in GRID_CONFIGS],
    params={"gains": list(GRID_GAINS), "depths": list(GRID_DEPTHS), "seeds": [0, 1, 2],
            "width": 128},
    about="log10 first-to-last gradient ratio over depth x gain at initialisation, 3 seeds")


def grid_frame(rows: pd.DataFrame, activation: str, init: str) -> pd.DataFrame:
    """The study's grid of one (activation, init) as ``depth_gain_grid`` returns it."""
    checks.columns(rows, ["activation", "init", "gain", "depth"], "grid_frame")
    grid = rows[(rows["activation"] == activation) & (rows["init"] == init)]
    if grid.empty:
        raise ValueError(f"the study has no grid for {activation!r} with {init!r}")
    return grid[["gain", "depth", "measured", "measured_min", "measured_max",
                 "predicted"]].reset_index(drop=True)
