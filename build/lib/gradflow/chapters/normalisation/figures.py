"""The figures of the chapter "Normalisation" (``book/normalisation.md``). Each function takes the
data an experiment of ``gradflow.chapters.normalisation`` returned and gives back a matplotlib
``Figure`` not registered with pyplot (or, for the explorable, a ``gradflow.explorables``
figure). Measurements are solid lines with markers; predictions are dashed black lines."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ...plotting import PALETTE, ROLE_COLOURS

PREDICTION = {"color": PALETTE["black"], "linestyle": "--", "linewidth": 1.2}
ACTIVATION_COLOURS = {"relu": PALETTE["blue"], "tanh": PALETTE["green"],
                      "identity": PALETTE["vermillion"]}
ACTIVATION_LABELS = {"relu": "ReLU", "tanh": "tanh", "identity": "linear"}


def plot_scale_invariance(table: pd.DataFrame) -> Figure:
    """The gradient into LayerNorm at c x relative to that at x, against c, with 1 / c."""
    fig = Figure(figsize=(5.6, 3.4))
    ax = fig.add_subplot()
    ax.plot(table["scale"], table["gradient ratio"], "o", color=PALETTE["blue"], label="measured")
    ax.plot(table["scale"], table["predicted 1/c"], label="prediction 1/c", **PREDICTION)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("scale c of the input (log scale)")
    ax.set_ylabel("‖gradient at c·x‖ / ‖gradient at x‖")
    ax.legend()
    return fig


def plot_pre_ln_gradients(table: pd.DataFrame) -> Figure:
    """Left: the stream's std per block; right: the gradient through each block's LayerNorm
    over the gradient at its output, against the prediction 1 / sigma (scaled and unscaled)."""
    fig = Figure(figsize=(9.0, 3.4))
    left, right = fig.subplots(1, 2)
    styles = {False: (PALETTE["purple"], "all weights std 0.02"),
              True: (PALETTE["black"], "GPT-2's scaled residual projections")}
    for scaled, group in table.groupby("scaled_init"):
        colour, label = styles[bool(scaled)]
        left.plot(group["layer"], group["stream_std"], marker="o", ms=3, color=colour, label=label)
        right.plot(group["layer"], group["ratio"], marker="o", ms=3, color=colour, label=label)
        right.plot(group["layer"], group["predicted"], **{**PREDICTION, "color": colour})
    left.set_xlabel("block l")
    left.set_ylabel("std of the stream x_l")
    right.set_xlabel("block l")
    right.set_ylabel("‖through LayerNorm‖ / ‖at its output‖")
    right.plot([], [], label="prediction √((d−2)/d) / std", **PREDICTION)
    left.legend(fontsize=8)
    right.legend(fontsize=8)
    return fig


def plot_explosion(profiles: pd.DataFrame, rates: pd.DataFrame, sweep: pd.DataFrame) -> Figure:
    """Left: the squared gradient norm per layer (median over seeds) for each activation, with
    the predicted slope through layer 1's value; right: the measured growth rate of the
    ReLU network against the batch size for each width, with the large-batch prediction."""
    fig = Figure(figsize=(9.4, 3.6))
    left, right = fig.subplots(1, 2)
    for activation, group in profiles.groupby("activation", sort=False):
        median = group.groupby("layer")["squared_norm"].median()
        colour = ACTIVATION_COLOURS[activation]
        left.plot(median.index, median.to_numpy(), color=colour, marker="o", ms=2.5,
                  label=f"{ACTIVATION_LABELS[activation]}: measured ×{rates.loc[activation, 'measured']:.3f}")
        layers = median.index.to_numpy()[1:]    # anchored at layer 1: the fit leaves out layer 0
        predicted = median.iloc[1] * rates.loc[activation, "predicted"] ** (1 - layers)
        left.plot(layers, predicted, **{**PREDICTION, "color": colour, "linewidth": 0.9})
    left.plot([], [], label="predictions (dashed)", **PREDICTION)
    left.set_yscale("log")
    left.set_xlabel("layer l (0 = the input)")
    left.set_ylabel("‖∂L/∂h_l‖² (log scale)")
    left.legend(fontsize=8)
    markers = "osD^v"
    for i, (width, group) in enumerate(sweep.groupby("width")):
        right.plot(group["batch"], group["measured"], marker=markers[i % 5],
                   color=list(PALETTE.values())[i], label=f"width {width}")
    right.axhline(sweep["predicted"].iloc[0], label="prediction π/(π−1)", **PREDICTION)
    right.set_xscale("log", base=2)
    right.set_xlabel("batch size B (log scale)")
    right.set_ylabel("growth of ‖∂L/∂h‖² per layer")
    right.legend(fontsize=8)
    return fig


def plot_stream_growth(table: pd.DataFrame) -> Figure:
    """Left: the stream's variance per layer (log scale), no normalisation and BatchNorm in the
    branch, with the doubling and linear laws; right: the branch's std over the stream's with
    BatchNorm, against 1 / sqrt(predicted variance)."""
    fig = Figure(figsize=(9.4, 3.5))
    left, right = fig.subplots(1, 2)
    labels = {"none": ("no normalisation", ROLE_COLOURS["plain"]),
              "batch": ("BatchNorm in the branch", ROLE_COLOURS["shortcut"])}
    for branch, group in table.groupby("branch", sort=False):
        label, colour = labels[branch]
        left.plot(group["layer"], group["variance"], marker="o", ms=3, color=colour, label=label)
        left.plot(group["layer"], group["predicted"], **{**PREDICTION, "color": colour})
    left.plot([], [], label="laws: ×2 per block, +1 per block", **PREDICTION)
    left.set_yscale("log")
    left.set_xlabel("layer l (1 = the stem)")
    left.set_ylabel("variance of the stream h_l (log scale)")
    left.legend(fontsize=8)
    bn = table[(table.branch == "batch") & (table.layer >= 2)]
    right.plot(bn["layer"], bn["branch_ratio"], marker="o", ms=3, color=ROLE_COLOURS["shortcut"],
               label="measured, BatchNorm in the branch")
    right.plot(bn["layer"], 1 / np.sqrt(bn["predicted"].shift(1).fillna(bn["predicted"].iloc[0] - 1)),
               label="prediction 1/√(variance of the stream)", **PREDICTION)
    right.set_xlabel("block l")
    right.set_ylabel("std of branch / std of stream")
    right.legend(fontsize=8)
    return fig


def plot_branch_training(curves: pd.DataFrame) -> Figure:
    """Training loss (log scale) against step for each kind of network: median over seeds
    (bold) and each seed (faint)."""
    fig = Figure(figsize=(6.4, 3.6))
    ax = fig.add_subplot()
    colours = [ROLE_COLOURS["plain"], PALETTE["green"], ROLE_COLOURS["shortcut"]]
    for colour, (kind, group) in zip(colours, curves.groupby("kind", sort=False)):
        for _, seed_curve in group.groupby("seed"):
            ax.plot(seed_curve["step"], seed_curve["loss"], color=colour, alpha=0.25, linewidth=0.8)
        median = group.groupby("step")["loss"].median()
        ax.plot(median.index, median.to_numpy(), color=colour, linewidth=2, label=kind)
    ax.set_yscale("log")
    ax.set_xlabel("training step (full-batch Adam)")
    ax.set_ylabel("training MSE (log scale)")
    ax.legend(fontsize=8)
    return fig


def plot_rms_gaps(before: pd.DataFrame, after: pd.DataFrame) -> Figure:
    """The relative gap between RMSNorm and LayerNorm on each block's input stream, before and
    after training, with the gap predicted from each token's mean / std."""
    fig = Figure(figsize=(6.0, 3.4))
    ax = fig.add_subplot()
    for table, colour, label in ((before, PALETTE["orange"], "at initialisation"),
                                 (after, PALETTE["blue"], "after training")):
        ax.plot(table["layer"], table["measured_gap"], marker="o", color=colour,
                label=f"measured, {label}")
        ax.plot(table["layer"], table["predicted_gap"], **{**PREDICTION, "color": colour})
    ax.plot([], [], label="predicted from mean/std per token", **PREDICTION)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("block l (its input stream)")
    ax.set_ylabel("‖RMSNorm(x) − LayerNorm(x)‖ / ‖LayerNorm(x)‖")
    ax.legend(fontsize=8)
    return fig


def explorable_normalisers(table: pd.DataFrame, *, start: tuple[int, str, str] = (12, "layer", "pre")):
    """The chapter's explorable figure of ``normaliser_explorer``'s table: the stream's variance
    after each block and the gradient norm at each block's input, for the depth, normaliser and
    placement the controls choose, with the first and last block's values written above."""
    import altair as alt

    from ...explorables import choice, explorable, matches, readout, rounded, slider, title

    rows = []
    for (depth, normaliser, placement), group in table.groupby(
            ["depth", "normaliser", "placement"], sort=True):
        group = group.sort_values("layer")
        rows.append({"n": int(depth), "nm": normaliser, "pl": placement,
                     "v": rounded(group["variance"], 3), "g": rounded(group["gradient"], 3)})
    depths = sorted(set(table["depth"]))
    controls = [
        slider("n_depth", "blocks", depths, start[0]),
        choice("n_norm", "normaliser", {"none": "none", "batch": "BatchNorm",
                                        "layer": "LayerNorm", "rms": "RMSNorm"}, start[1]),
        choice("n_place", "placement", {"pre": "Pre (branch input)", "post": "Post (on the stream)",
                                        "branch": "end of the branch"}, start[2]),
    ]
    here = "datum.nm == n_norm && datum.pl == n_place && " + matches("n", "n_depth")
    names = {"v": "variance of the stream after block l", "g": "gradient norm at the input of block l"}
    chosen = alt.Chart(alt.Data(name="normalisers")).transform_filter(here)
    long = (chosen.transform_flatten(["v", "g"]).transform_window(block="row_number()")
            .transform_fold(["v", "g"], as_=["which", "value"])
            .transform_calculate(quantity=f"datum.which == 'v' ? '{names['v']}' : '{names['g']}'"))
    lines = long.mark_line(point=True).encode(
        x=alt.X("block:Q", title="block l", scale=alt.Scale(domain=[1, max(depths)], nice=False)),
        y=alt.Y("value:Q", scale=alt.Scale(type="log"), title="value (log scale)"),
        color=alt.Color("quantity:N", title=None, legend=alt.Legend(orient="bottom", direction="vertical", labelLimit=300),
                        scale=alt.Scale(domain=list(names.values()),
                                        range=[PALETTE["blue"], PALETTE["vermillion"]])))
    text = readout(chosen, (
        "'variance ' + format(datum.v[0], '.3~g') + ' after block 1, ' + format(peek(datum.v), "
        "'.3~g') + ' after block ' + datum.n + ';\\ngradient ' + format(datum.g[0], '.3~g') + "
        "' at block 1, ' + format(peek(datum.g), '.3~g') + ' at block ' + datum.n"))
    chart = alt.layer(lines, text).properties(
        width=480, height=280, title=title("A residual MLP at initialisation"),
    ).add_params(*controls)
    return explorable(
        chart, "normalisation-placement", datasets={"normalisers": rows},
        alt=("A log-scale chart against the block index of the residual stream's variance after "
             "each block and the gradient norm at each block's input, at initialisation, for the "
             "number of blocks, the normaliser (none, BatchNorm, LayerNorm, RMSNorm) and its "
             "placement (Pre, Post, or at the end of the branch) that three controls choose; the "
             "first and last block's values are written above the chart."),
    )
