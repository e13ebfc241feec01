"""The experiments of the chapter "Vanishing and exploding gradients"
(``book/vanishing_gradients.md``).

Sweeps of deep MLPs over depth, activation, initialisation and gain, measured many seeds at a
time (``gradflow.networks.stacked.batched_profiles``) and set beside the mean-field predictions of
``gradflow.signal_propagation``. Every function returns a tidy pandas DataFrame and never prints;
``figures.py`` beside this module draws them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from ... import checks
from ...networks.mlp import DeepMLP, check_activation, check_init
from ...networks.stacked import batched_profiles
from ...probes import block_states, over_seeds, seed_loss
from ...signal_propagation import mean_backward_factor, predict_layers

#: The activations the chapter sweeps (every one of the registry but GELU's sigmoid form).
ACTIVATIONS = ("sigmoid", "tanh", "relu", "gelu", "gelu_tanh", "silu")

def gradient_sweep(
    activations: Sequence[str],
    inits: Sequence[str],
    depths: Sequence[int],
    seeds: Sequence[int],
    *,
    width: int = 256,
    gains: Sequence[float] = (1.0,),
    batch: int = 8,
    bias_init: str | float | None = None,
    weight_stats: bool = True,
) -> pd.DataFrame:
    """Sweep depth x activation x initialisation x gain x seed on square networks of ``width``.

    For each (activation, init) one batched pass measures every gain and seed and, through probes,
    every depth (see ``batched_profiles``; the input and readout are standard normal). Returns a
    tidy DataFrame: columns ``activation, init, gain, seed, depth, layer`` and the statistics.
    """
    activations = [check_activation(a) for a in activations]
    inits = [check_init(i) for i in inits]
    depths = checks.positive_ints("depths", depths)
    frames = []
    for init in inits:   # init outermost: the random draws are shared by activations and gains
        for activation in activations:
            frame = batched_profiles(
                [width] * (max(depths) + 1), activation, init, seeds, gains=gains,
                bias_init=bias_init, batch=batch, probe_depths=depths, weight_stats=weight_stats,
            )
            frame.insert(0, "init", init)
            frame.insert(0, "activation", activation)
            frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def end_to_end_log_ratio(sweep: pd.DataFrame) -> pd.DataFrame:
    """log(||dL/dh_1|| / ||dL/dh_D||) per network (natural log), from a tidy sweep.

    Returns one row per network (all columns of the sweep that identify it) with ``log_ratio``
    and ``mean_factor`` = exp(log_ratio / (D - 1)), the measured mean per-layer factor.
    """
    keys = [c for c in ("activation", "init", "gain", "seed", "depth") if c in sweep.columns]
    first = sweep[sweep["layer"] == 1].set_index(keys)["signal_norm"]
    last = sweep[sweep["layer"] == sweep["depth"]].set_index(keys)["signal_norm"]
    out = pd.DataFrame({"log_ratio": np.log(first) - np.log(last)})
    span = out.index.get_level_values("depth").to_numpy() - 1
    with np.errstate(divide="ignore", invalid="ignore"):
        out["mean_factor"] = np.where(span > 0, np.exp(out["log_ratio"] / np.maximum(span, 1)),
                                      np.nan)
    return out.reset_index()


def factor_table(sweep: pd.DataFrame, width: int, bias_init: str | float | None = None
                 ) -> pd.DataFrame:
    """Predicted vs measured mean per-layer backward factor for each network configuration.

    Measured: per seed, (||dL/dh_1|| / ||dL/dh_D||) ** (1 / (D - 1)); reported as the geometric
    mean over seeds with the smallest and largest seed. Predicted: ``mean_backward_factor`` of
    ``predict_layers`` for the same activation, init, gain, depth and width, with standard-normal
    inputs (mean square 1). ``relative_error`` = measured / predicted - 1.
    """
    per_net = end_to_end_log_ratio(sweep)
    keys = [c for c in ("activation", "init", "gain", "depth") if c in per_net.columns]
    rows = []
    for key, group in per_net.groupby(keys, sort=False):
        config = dict(zip(keys, key))
        prediction = predict_layers(config["activation"], config["init"],
                                    depth=int(config["depth"]), width=width,
                                    gain=config.get("gain", 1.0), bias_init=bias_init)
        predicted = mean_backward_factor(prediction)
        factors = group["mean_factor"].to_numpy()
        measured = float(np.exp(np.mean(np.log(factors))))
        rows.append({**config, "predicted": predicted, "measured": measured,
                     "measured_min": float(factors.min()), "measured_max": float(factors.max()),
                     "relative_error": measured / predicted - 1.0, "seeds": len(factors)})
    return pd.DataFrame(rows)


def layer_profiles(sweep: pd.DataFrame, statistic: str = "signal_norm") -> pd.DataFrame:
    """Each network's ``statistic`` per layer relative to its last layer, summarised over seeds.

    Returns one row per (activation, init, gain, depth, layer) with ``ratio`` (geometric mean over
    seeds of statistic_l / statistic_D), ``ratio_min`` and ``ratio_max`` (over seeds).
    """
    checks.one_of("statistic", statistic, ("signal_norm", "weight_grad_mean_abs"))
    keys = [c for c in ("activation", "init", "gain", "seed", "depth") if c in sweep.columns]
    top = sweep[sweep["layer"] == sweep["depth"]].set_index(keys)[statistic].rename("top")
    frame = sweep.join(top, on=keys)
    frame = frame.assign(log_ratio=np.log(frame[statistic]) - np.log(frame["top"]))
    return over_seeds(frame, [k for k in keys if k != "seed"] + ["layer"], sort=False)


def depth_gain_grid(
    activation: str,
    init: str,
    gains: Sequence[float],
    depths: Sequence[int],
    seeds: Sequence[int],
    *,
    width: int = 128,
    batch: int = 2,
) -> pd.DataFrame:
    """log10(||dL/dh_1|| / ||dL/dh_D||) over depth D x initialisation gain, measured and predicted.

    Measured: the mean over seeds of each network's log10 ratio (``gradient_sweep`` with probes at
    ``depths``). Predicted: sum over l = 2..D of log10 of the mean-field backward factor, for the
    same activation, init, gain and width. Negative values mean vanishing, positive exploding.
    Returns one row per (gain, depth) with ``measured``, ``measured_min``, ``measured_max`` and
    ``predicted``.
    """
    sweep = gradient_sweep([activation], [init], depths, seeds, width=width, gains=gains,
                           batch=batch, weight_stats=False)
    per_net = end_to_end_log_ratio(sweep)
    per_net["log10_ratio"] = per_net["log_ratio"] / np.log(10.0)
    grid = per_net.groupby(["gain", "depth"])["log10_ratio"].agg(["mean", "min", "max"])
    grid = grid.rename(columns={"mean": "measured", "min": "measured_min", "max": "measured_max"})
    predicted = {}
    for gain in gains:
        table = predict_layers(activation, init, depth=max(depths), width=width, gain=gain)
        cumulative = np.concatenate([[0.0], np.cumsum(np.log10(table["backward_factor"])[1:])])
        for d in depths:
            predicted[(float(gain), d)] = float(cumulative[d - 1])
    grid["predicted"] = [predicted[key] for key in grid.index]
    return grid.reset_index()


def seed_comparison(
    widths: Sequence[int],
    first: tuple[str, str],
    second: tuple[str, str],
    inputs: torch.Tensor,
    seeds: Sequence[int],
) -> dict[str, float]:
    """How often one seed orders two networks' first-layer gradients the wrong way.

    ``first`` and ``second`` are (activation, init) pairs on the same widths, each drawn from
    the same seeds. For every seed, compares the seed notebook's statistic mean|dL/dW_1| raw, and
    normalised by the network's own last layer (mean|dL/dW_1| / mean|dL/dW_L|, which divides out
    dL/dy). Returns the fraction of seeds in which ``first`` has the larger value, raw and
    normalised, the medians over seeds and the 5th and 95th percentiles of the raw statistic.
    """
    stats = []
    for activation, init in (first, second):
        frame = batched_profiles(widths, activation, init, seeds, inputs=inputs, loss="mse")
        w = frame.pivot(index="seed", columns="layer", values="weight_grad_mean_abs")
        stats.append((w.iloc[:, 0].to_numpy(), w.iloc[:, -1].to_numpy()))
    (a1, aL), (b1, bL) = stats
    ok = (a1 > 0) & (aL > 0) & (b1 > 0) & (bL > 0)
    a1, aL, b1, bL = a1[ok], aL[ok], b1[ok], bL[ok]
    return {
        "seeds": int(ok.sum()),
        "raw_first_larger": float(np.mean(a1 > b1)),
        "normalised_first_larger": float(np.mean(a1 / aL > b1 / bL)),
        "raw_median_first": float(np.median(a1)),
        "raw_median_second": float(np.median(b1)),
        "normalised_median_first": float(np.median(a1 / aL)),
        "normalised_median_second": float(np.median(b1 / bL)),
        "raw_p05_first": float(np.percentile(a1, 5)),
        "raw_p95_first": float(np.percentile(a1, 95)),
    }


def norm_underflow(
    model: nn.Module, x: torch.Tensor, readout: torch.Tensor
) -> pd.DataFrame:
    """||dL/dh_l|| per layer computed in the model's float32 and in float64, side by side.

    The gradients come from one float32 backward pass; ``float32_norm`` is
    ``torch.linalg.vector_norm`` of the float32 tensor (its squares underflow below about 2.6e-23),
    ``float64_norm`` the norm of the same numbers converted to float64 first, and
    ``float32_max_abs`` the largest entry, which shows the gradient itself is not zero.
    """
    if getattr(model, "blocks", None) is None:
        raise TypeError(f"norm_underflow needs a model with .blocks, got {type(model).__name__}")
    outputs = block_states(model, x)[1:]
    grads = torch.autograd.grad(seed_loss(outputs[-1], readout=readout), outputs)
    return pd.DataFrame({
        "layer": np.arange(1, len(grads) + 1),
        "float32_max_abs": [g.abs().max().item() for g in grads],
        "float32_norm": [torch.linalg.vector_norm(g).item() for g in grads],
        "float64_norm": [g.double().norm().item() for g in grads],
    }).set_index("layer")


def gain_response(
    activation: str,
    gains: Sequence[float],
    seeds: Sequence[int],
    *,
    depth: int = 50,
    width: int = 256,
    batch: int = 16,
    saturation: float = 5.0,
) -> pd.DataFrame:
    """How much a deep network still responds to its input, and how many units are saturated.

    For each gain and seed, a ``DeepMLP(depth, width, activation, init="kaiming", gain,
    bias_init="zeros")`` in float64 is fed a standard-normal batch x and a standard-normal
    direction v per row. Returns one row per gain with ``sensitivity``, the geometric mean over
    seeds of mean_rows ||J v|| / ||v|| (J = dh_L/dx, the output's response to an infinitesimal
    input change, by forward-mode differentiation), ``sensitivity_min`` and ``_max`` over seeds;
    ``output_spread``, the output units' standard deviation across the batch (mean over units
    and seeds): how different the outputs of different inputs are; and ``saturated``, the share
    of pre-activations a_l (all layers, rows and seeds) with |a_l| > ``saturation``.
    """
    activation = check_activation(activation)
    gains = [checks.positive_number("gain", g) for g in gains]
    seeds = checks.seeds(seeds)
    saturation = checks.positive_number("saturation", saturation)
    rows = []
    for gain in gains:
        logs, spreads, saturated = [], [], []
        for seed in seeds:
            net = DeepMLP(depth=depth, width=width, activation=activation, init="kaiming",
                          gain=gain, bias_init="zeros", seed=seed, dtype=torch.float64)
            generator = torch.Generator().manual_seed(seed)
            x = torch.randn(batch, width, generator=generator, dtype=torch.float64)
            v = torch.randn(batch, width, generator=generator, dtype=torch.float64)
            with torch.no_grad():
                y, jv = torch.func.jvp(net, (x,), (v,))
                logs.append(torch.log(jv.norm(dim=1) / v.norm(dim=1)).mean().item())
                spreads.append(y.std(dim=0).mean().item())
                h, counts = x, []
                for block in net.blocks:
                    counts.append((block.linear(h).abs() > saturation).double().mean().item())
                    h = block(h)
                saturated.append(float(np.mean(counts)))
        rows.append({"gain": float(gain), "sensitivity": float(np.exp(np.mean(logs))),
                     "sensitivity_min": float(np.exp(min(logs))),
                     "sensitivity_max": float(np.exp(max(logs))),
                     "output_spread": float(np.mean(spreads)),
                     "saturated": float(np.mean(saturated))})
    return pd.DataFrame(rows)


# --- The explorable figure: the profile for any activation, initialisation, gain and depth ----

#: The explorable's grid: every activation and initialisation, these gains and depths.
EXPLORER_INITS = ("default", "xavier", "kaiming")
EXPLORER_GAINS = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0)
EXPLORER_DEPTHS = (10, 20, 30, 40, 50)
#: ... measured on these seeds, at this width (narrower than the chapter's 256: one batched pass
#: per activation and initialisation then takes a fraction of a second).
EXPLORER_SEEDS = tuple(range(4))
EXPLORER_WIDTH = 64


def profile_explorer(
    seeds: Sequence[int] = EXPLORER_SEEDS,
    *,
    width: int = EXPLORER_WIDTH,
    batch: int = 4,
    activations: Sequence[str] = ACTIVATIONS,
    inits: Sequence[str] = EXPLORER_INITS,
    gains: Sequence[float] = EXPLORER_GAINS,
    depths: Sequence[int] = EXPLORER_DEPTHS,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The data of the chapter's explorable figure: measured and predicted gradient profiles.

    ``measured`` is ``layer_profiles`` of ``gradient_sweep`` over the whole grid (one batched
    pass per activation and initialisation measures every gain, seed and depth): one row per
    (activation, init, gain, depth, layer) with ``ratio`` = ||dL/dh_l|| / ||dL/dh_D||
    (geometric mean over seeds), ``ratio_min`` and ``ratio_max``. ``predicted`` has the
    mean-field ``backward_factor`` of every layer l = 1..max(depths) per (activation, init,
    gain) (``predict_layers``, standard-normal inputs): the prediction for depth D at layer l
    is the product of the factors of layers l + 1..D.
    """
    sweep = gradient_sweep(activations, inits, depths, seeds, width=width, gains=gains,
                           batch=batch, weight_stats=False)
    measured = layer_profiles(sweep)
    rows = []
    for activation in activations:
        for init in inits:
            for gain in gains:
                table = predict_layers(activation, init, depth=max(depths), width=width, gain=gain)
                rows.append(pd.DataFrame({
                    "activation": activation, "init": init, "gain": float(gain),
                    "layer": np.arange(1, max(depths) + 1),
                    "backward_factor": table["backward_factor"].to_numpy(),
                }))
    return measured, pd.concat(rows, ignore_index=True)


def predicted_profile(predicted: pd.DataFrame, activation: str, init: str, gain: float,
                      depth: int) -> np.ndarray:
    """The mean-field ||dL/dh_l|| / ||dL/dh_D|| for l = 1..depth from ``profile_explorer``'s
    factors: the product of the factors of layers l + 1..D."""
    rows = predicted[(predicted.activation == activation) & (predicted.init == init)
                     & np.isclose(predicted.gain, gain) & (predicted.layer <= depth)]
    if len(rows) != depth:
        raise ValueError(f"no prediction for {activation}, {init}, gain {gain}, depth {depth}")
    logs = np.log(rows.sort_values("layer")["backward_factor"].to_numpy())
    after = np.concatenate([np.cumsum(logs[::-1])[::-1][1:], [0.0]])   # sum over j > l
    return np.exp(after)
