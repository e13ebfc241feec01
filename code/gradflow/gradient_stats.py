"""Per-layer gradient statistics from one backward pass, and batched sweeps over many networks.

Two statistics per layer l of an MLP with outputs h_l = phi(a_l), a_l = W_l h_{l-1} + b_l:

- the seed notebook's ``mean |dL/dW_l|``, the mean absolute entry of the weight gradient
  dL/dW_l = (phi'(a_l) * dL/dh_l) h_{l-1}^T (summed over the batch);
- the back-propagated signal ``||dL/dh_l||``, the gradient with respect to the layer's output,
  which the chain rule turns into dL/dh_{l-1} = W_l^T (phi'(a_l) * dL/dh_l).

Glorot & Bengio (2010) show why the two can disagree: the weight gradient
also carries the forward signal h_{l-1}, so the first can stay level across layers while the second
vanishes. All summaries are taken in float64, so that a tiny gradient is never rounded to zero
(in float32 the squares of entries below about 1e-23 underflow, and the norm with them).

``gradient_profile`` measures one model with forward hooks and ``torch.autograd.grad``.
``batched_profiles`` measures many seeds at once with batched matrix products and an explicit
backward pass, and ``gradient_sweep`` runs it over a grid of activations, initialisations, gains and
depths, returning one tidy DataFrame.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd
import torch
from torch import nn

from .mlp import ACTIVATIONS, check_activation, check_init, initialise_linear_, make_generator
from .signal_propagation import mean_backward_factor, predict_layers, small_signal_factor

LOSSES = ("readout", "mse")


def _loss_and_seed_gradient(
    output: torch.Tensor, target: torch.Tensor | None, readout: torch.Tensor | None
) -> torch.Tensor:
    if target is not None and readout is not None:
        raise ValueError("give a target (MSE loss) or a readout (linear loss), not both")
    if readout is not None:
        if readout.shape != output.shape:
            raise ValueError(
                f"readout shape {tuple(readout.shape)} does not match the output shape "
                f"{tuple(output.shape)}"
            )
        return (readout * output).sum()
    if target is None:
        target = torch.zeros_like(output)
    elif target.shape != output.shape:
        raise ValueError(
            f"target shape {tuple(target.shape)} does not match the output shape "
            f"{tuple(output.shape)}"
        )
    return nn.functional.mse_loss(output, target)


def gradient_profile(
    model: nn.Module,
    x: torch.Tensor,
    *,
    target: torch.Tensor | None = None,
    readout: torch.Tensor | None = None,
) -> pd.DataFrame:
    """Per-layer statistics of one forward and one backward pass of ``model`` on ``x``.

    ``model`` must have ``blocks`` (as ``gradflow.DeepMLP``): layer l's output is ``blocks[l]``'s
    output and its weight is ``blocks[l].linear.weight``. The loss is the MSE against ``target``
    (zeros by default, as in the seed notebook) or, with ``readout``, the linear loss
    ``(readout * model(x)).sum()``, whose gradient at the output is ``readout`` itself.

    Returns one row per layer (index ``layer`` = 1..L) with columns ``width``,
    ``weight_grad_mean_abs`` (mean |dL/dW_l|), ``signal_norm`` (||dL/dh_l||, Frobenius over the
    batch), ``preact_second_moment`` (mean a_l^2) and ``output_second_moment`` (mean h_l^2), all
    computed in float64.
    """
    blocks = getattr(model, "blocks", None)
    if blocks is None or not all(hasattr(b, "linear") for b in blocks):
        raise TypeError(
            "gradient_profile needs a model with .blocks whose items have .linear "
            f"(such as gradflow.DeepMLP), got {type(model).__name__}"
        )
    outputs: list[torch.Tensor] = []
    preacts: list[torch.Tensor] = []
    handles = []
    for block in blocks:
        handles.append(block.register_forward_hook(lambda m, i, o: outputs.append(o)))
        handles.append(block.linear.register_forward_hook(lambda m, i, o: preacts.append(o)))
    try:
        y = model(x)
    finally:
        for handle in handles:
            handle.remove()
    loss = _loss_and_seed_gradient(y, target, readout)
    weights = [block.linear.weight for block in blocks]
    grads = torch.autograd.grad(loss, outputs + weights)
    n = len(blocks)
    signal, weight_grads = grads[:n], grads[n:]
    rows = []
    for i in range(n):
        rows.append({
            "layer": i + 1,
            "width": int(outputs[i].shape[-1]),
            "weight_grad_mean_abs": weight_grads[i].detach().double().abs().mean().item(),
            "signal_norm": signal[i].detach().double().norm().item(),
            "preact_second_moment": preacts[i].detach().double().pow(2).mean().item(),
            "output_second_moment": outputs[i].detach().double().pow(2).mean().item(),
        })
    return pd.DataFrame(rows).set_index("layer")


def _derivative(name: str, a: torch.Tensor) -> torch.Tensor:
    """phi'(a) elementwise, by autograd through the same function the models use."""
    with torch.enable_grad():
        leaf = a.detach().requires_grad_(True)
        out = ACTIVATIONS[name](leaf)
        (d,) = torch.autograd.grad(out, leaf, torch.ones_like(out))
    return d


def _check_positive_ints(values: Iterable[int], what: str) -> list[int]:
    out = list(values)
    if not out or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in out):
        raise ValueError(f"{what} must be a non-empty list of positive integers, got {out!r}")
    return out


@dataclass(frozen=True)
class _Draws:
    weights32: list[torch.Tensor]        # (S, out, in) per layer, float32 as drawn
    weights: list[torch.Tensor]          # the same, converted to the compute dtype
    biases: list[torch.Tensor]           # (S, 1, out) per layer
    inputs: torch.Tensor | None          # (S, batch, in)
    readouts: dict[int, torch.Tensor]    # probe depth -> (S, batch, width)


@lru_cache(maxsize=2)
def _draw(
    widths: tuple[int, ...], init: str, bias_init: str | float | None, seeds: tuple[int, ...],
    n_batch: int, draw_inputs: bool, readout_depths: tuple[int, ...], n_layers: int,
    dtype: torch.dtype,
) -> _Draws:
    """Every seed's parameters (at gain 1), inputs and readouts, in ``DeepMLP``'s order.

    Drawn in float32, as ``DeepMLP`` (and ``nn.Linear``) do by default, and converted to ``dtype``
    once. Cached: a sweep over activations and gains reuses the draws (do not modify them).
    """
    draw = torch.float32
    n_seeds, depth = len(seeds), len(widths) - 1
    W = [torch.empty(n_seeds, widths[i + 1], widths[i], dtype=draw) for i in range(n_layers)]
    B = [torch.empty(n_seeds, 1, widths[i + 1], dtype=draw) for i in range(n_layers)]
    x = torch.empty(n_seeds, n_batch, widths[0], dtype=draw) if draw_inputs else None
    readouts = {d: torch.empty(n_seeds, n_batch, widths[d], dtype=draw) for d in readout_depths}
    for s, seed in enumerate(seeds):
        generator = make_generator(seed)
        for layer in range(depth):
            if layer < n_layers:
                w, b = W[layer][s], B[layer][s, 0]
            else:   # layers no probe reaches: drawn all the same, to keep the generator's order
                w = torch.empty(widths[layer + 1], widths[layer], dtype=draw)
                b = torch.empty(widths[layer + 1], dtype=draw)
            initialise_linear_(w, b, init, 1.0, bias_init, generator)
        if draw_inputs:
            x[s] = torch.randn(n_batch, widths[0], generator=generator, dtype=draw)
        for d in readout_depths:
            readouts[d][s] = torch.randn(n_batch, widths[d], generator=generator, dtype=draw)
    return _Draws(
        weights32=W,
        weights=[w.to(dtype) for w in W],
        biases=[b.to(dtype) for b in B],
        inputs=None if x is None else x.to(dtype),
        readouts={d: r.to(dtype) for d, r in readouts.items()},
    )


def batched_profiles(
    widths: Sequence[int],
    activation: str,
    init: str,
    seeds: Sequence[int],
    *,
    gain: float = 1.0,
    bias_init: str | float | None = None,
    batch: int = 8,
    inputs: torch.Tensor | None = None,
    loss: str = "readout",
    probe_depths: Sequence[int] | None = None,
    weight_stats: bool = True,
    shortcut: bool = False,
    shortcut_scale: float = 1.0,
    dtype: torch.dtype = torch.float64,
) -> pd.DataFrame:
    """``gradient_profile`` for many seeds at once, batched over seeds with ``torch.bmm``.

    For seed s the network is exactly ``DeepMLP(widths, activation=..., init=..., gain=...,
    bias_init=..., shortcut=..., shortcut_scale=..., seed=s)`` with its default float32
    parameters, converted to ``dtype`` (float64) for the computation: a generator seeded with s
    draws each layer's W then b, then (unless ``inputs`` is given, shared by all seeds) the inputs
    ``randn(batch, widths[0])``, then one readout ``randn(batch, widths[D])`` per probe depth D in
    increasing order, all in float32. Identity shortcuts only (where widths agree). So seed 123
    on the seed notebook's widths is the seed notebook's network.

    ``probe_depths`` (default: the full depth) measures several depths in one pass: the first D
    layers of the network are a D-layer network, so a probe that starts the backward pass at layer
    D (with its own readout, or the MSE gradient of h_D) gives that network's profile. The
    backward pass is explicit: g_{l-1} = shortcut_scale * g_l + W_l^T (phi'(a_l) * g_l).

    Returns a tidy DataFrame with one row per (seed, depth, layer <= depth) and the columns of
    ``gradient_profile`` (``weight_grad_mean_abs`` is NaN when ``weight_stats`` is False).
    """
    check_activation(activation)
    init = check_init(init)
    widths = _check_positive_ints(widths, "widths")
    if len(widths) < 2:
        raise ValueError(f"widths needs at least two entries (input and output), got {widths}")
    seeds = list(seeds)
    if not seeds or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) for v in seeds):
        raise ValueError(f"seeds must be a non-empty list of ints, got {seeds!r}")
    seeds = [int(v) for v in seeds]
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct, got {seeds!r}")
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; valid losses are {', '.join(map(repr, LOSSES))}")
    depth = len(widths) - 1
    probes = sorted(set(_check_positive_ints(probe_depths or [depth], "probe_depths")))
    if probes[-1] > depth:
        raise ValueError(f"probe depths must be <= the depth {depth}, got {probes}")

    if inputs is not None and (inputs.dim() != 2 or inputs.shape[1] != widths[0]):
        raise ValueError(f"inputs must have shape (batch, {widths[0]}), got {tuple(inputs.shape)}")
    n_batch = batch if inputs is None else inputs.shape[0]

    n_layers = probes[-1]
    draws = _draw(
        tuple(widths), init, bias_init, tuple(seeds), n_batch, inputs is None,
        tuple(probes) if loss == "readout" else (), n_layers, dtype,
    )
    if gain == 1.0:
        W = draws.weights
    else:   # as DeepMLP: the float32 draw times gain, in float32, then converted
        W = [(w * gain).to(dtype) for w in draws.weights32]
    B, readouts = draws.biases, draws.readouts
    h = draws.inputs if inputs is None else inputs.to(dtype).expand(len(seeds), *inputs.shape)
    n_seeds = len(seeds)
    has_skip = [shortcut and widths[i] == widths[i + 1] for i in range(n_layers)]

    # --- forward, keeping pre-activations and outputs
    hs, preacts = [h], []
    for layer in range(n_layers):
        a = torch.baddbmm(B[layer], hs[-1], W[layer].transpose(1, 2))
        out = ACTIVATIONS[activation](a)
        if has_skip[layer]:
            out = shortcut_scale * hs[-1] + out
        preacts.append(a)
        hs.append(out)

    # --- backward for all probes at once: G has shape (S, P, batch, width)
    signal = np.full((n_seeds, len(probes), n_layers), np.nan)
    wgrad = np.full_like(signal, np.nan)
    G = torch.empty(n_seeds, 0, n_batch, widths[n_layers], dtype=dtype)
    for layer in range(n_layers - 1, -1, -1):
        d = layer + 1
        if d in probes:
            if loss == "readout":
                top = readouts[d]
            else:   # MSE against zeros: d mean(h^2) / dh = 2 h / numel
                top = 2.0 * hs[d] / (n_batch * widths[d])
            G = torch.cat([top.unsqueeze(1), G], dim=1)   # active probes in increasing depth
        first = len(probes) - G.shape[1]      # probes active here: the deepest G.shape[1] ones
        signal[:, first:, layer] = G.double().pow(2).sum(dim=(2, 3)).sqrt().numpy()
        delta = G * _derivative(activation, preacts[layer]).unsqueeze(1)
        if weight_stats:
            dw = torch.einsum("spbi,sbj->spij", delta, hs[layer])
            wgrad[:, first:, layer] = dw.double().abs().mean(dim=(2, 3)).numpy()
        P = G.shape[1]
        back = torch.bmm(delta.reshape(n_seeds, P * n_batch, -1), W[layer])
        back = back.reshape(n_seeds, P, n_batch, widths[layer])
        G = shortcut_scale * G + back if has_skip[layer] else back

    q = np.stack([a.double().pow(2).mean(dim=(1, 2)).numpy() for a in preacts], axis=1)
    m = np.stack([o.double().pow(2).mean(dim=(1, 2)).numpy() for o in hs[1:]], axis=1)
    frames = []
    for p, d in enumerate(probes):
        layers = np.arange(1, d + 1)
        frames.append(pd.DataFrame({
            "seed": np.repeat(seeds, d),
            "depth": d,
            "layer": np.tile(layers, n_seeds),
            "width": np.tile(np.asarray(widths[1:d + 1]), n_seeds),
            "weight_grad_mean_abs": wgrad[:, p, :d].ravel(),
            "signal_norm": signal[:, p, :d].ravel(),
            "preact_second_moment": q[:, :d].ravel(),
            "output_second_moment": m[:, :d].ravel(),
        }))
    return pd.concat(frames, ignore_index=True)


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

    For each (activation, init, gain) one batched pass measures every seed and, through probes,
    every depth (see ``batched_profiles``; the input and readout are standard normal). Returns a
    tidy DataFrame: columns ``activation, init, gain, seed, depth, layer`` and the statistics.
    """
    activations = [check_activation(a) for a in activations]
    inits = [check_init(i) for i in inits]
    depths = _check_positive_ints(depths, "depths")
    frames = []
    for init in inits:   # init outermost: the random draws are shared by activations and gains
        for activation in activations:
            for gain in gains:
                frame = batched_profiles(
                    [width] * (max(depths) + 1), activation, init, seeds, gain=gain,
                    bias_init=bias_init, batch=batch, probe_depths=depths,
                    weight_stats=weight_stats,
                )
                frame.insert(0, "gain", float(gain))
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
    if statistic not in ("signal_norm", "weight_grad_mean_abs"):
        raise ValueError(
            f"statistic must be 'signal_norm' or 'weight_grad_mean_abs', got {statistic!r}"
        )
    keys = [c for c in ("activation", "init", "gain", "seed", "depth") if c in sweep.columns]
    top = sweep[sweep["layer"] == sweep["depth"]].set_index(keys)[statistic].rename("top")
    frame = sweep.join(top, on=keys)
    frame = frame.assign(log_ratio=np.log(frame[statistic]) - np.log(frame["top"]))
    group_keys = [k for k in keys if k != "seed"] + ["layer"]
    summary = frame.groupby(group_keys, sort=False)["log_ratio"].agg(["mean", "min", "max"])
    summary = np.exp(summary).rename(columns={"mean": "ratio", "min": "ratio_min",
                                              "max": "ratio_max"})
    return summary.reset_index()


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


def narrow_network_factors(
    widths: Sequence[int],
    activation: str,
    init: str,
    inputs: torch.Tensor,
    seeds: Sequence[int],
    highlight_seed: int,
) -> pd.DataFrame:
    """Per-layer backward factors of a small network (such as the seed's), predicted and measured.

    The loss is the seed notebook's (MSE against zeros, float64). For each layer l = 2..L the
    factor is ||dL/dh_{l-1}|| / ||dL/dh_l||, the effect of layer l's Jacobian. Columns:
    ``small_signal`` (|phi'(0)| sqrt(sigma_w^2)), ``predicted`` (mean-field, at the layer's
    predicted q_l, with the inputs' mean square), ``seed`` (the factor in ``highlight_seed``'s
    network), ``rms`` (root mean square over ``seeds``: mean-field predicts mean squares),
    ``median`` (over seeds), and the seed notebook's statistic: ``weight_seed`` and
    ``weight_median``, the ratio mean|dL/dW_{l-1}| / mean|dL/dW_l|. Networks whose gradient is
    exactly zero (every unit of some layer dead) are left out; ``dead`` counts them.
    """
    all_seeds = list(dict.fromkeys([*seeds, highlight_seed]))
    frame = batched_profiles(widths, activation, init, all_seeds, inputs=inputs, loss="mse")
    signal = frame.pivot(index="seed", columns="layer", values="signal_norm")
    weight = frame.pivot(index="seed", columns="layer", values="weight_grad_mean_abs")
    alive = (signal > 0).all(axis=1) & (weight > 0).all(axis=1)
    population = alive.loc[list(seeds)]
    s = signal.loc[population[population].index].to_numpy()
    w = weight.loc[population[population].index].to_numpy()
    s_ratio, w_ratio = s[:, :-1] / s[:, 1:], w[:, :-1] / w[:, 1:]
    hs, hw = signal.loc[highlight_seed].to_numpy(), weight.loc[highlight_seed].to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        seed_s, seed_w = hs[:-1] / hs[1:], hw[:-1] / hw[1:]
    second = float(inputs.double().pow(2).mean())
    prediction = predict_layers(activation, init, widths, input_second_moment=second)
    n_layers = len(widths) - 1
    small = [small_signal_factor(activation, init, fan_in=widths[i], fan_out=widths[i + 1])
             for i in range(n_layers)]
    table = pd.DataFrame({
        "layer": np.arange(2, n_layers + 1),
        "small_signal": small[1:],
        "predicted": prediction["backward_factor"].to_numpy()[1:],
        "seed": seed_s,
        "rms": np.sqrt(np.mean(s_ratio**2, axis=0)),
        "median": np.median(s_ratio, axis=0),
        "weight_seed": seed_w,
        "weight_median": np.median(w_ratio, axis=0),
    }).set_index("layer")
    table.attrs["dead"] = int((~population).sum())
    table.attrs["seeds"] = len(population)
    return table


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
    ``torch.linalg.vector_norm`` of the float32 tensor (its squares underflow below about 1e-23),
    ``float64_norm`` the norm of the same numbers converted to float64 first, and
    ``float32_max_abs`` the largest entry, which shows the gradient itself is not zero.
    """
    blocks = getattr(model, "blocks", None)
    if blocks is None:
        raise TypeError(f"norm_underflow needs a model with .blocks, got {type(model).__name__}")
    outputs: list[torch.Tensor] = []
    handles = [b.register_forward_hook(lambda m, i, o: outputs.append(o)) for b in blocks]
    try:
        y = model(x)
    finally:
        for handle in handles:
            handle.remove()
    grads = torch.autograd.grad(_loss_and_seed_gradient(y, None, readout), outputs)
    return pd.DataFrame({
        "layer": np.arange(1, len(grads) + 1),
        "float32_max_abs": [g.abs().max().item() for g in grads],
        "float32_norm": [torch.linalg.vector_norm(g).item() for g in grads],
        "float64_norm": [g.double().norm().item() for g in grads],
    }).set_index("layer")
