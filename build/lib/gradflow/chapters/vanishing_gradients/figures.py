"""The figures of the chapter "Vanishing and exploding gradients" (``book/vanishing_gradients.md``).

Each function takes the data an experiment in ``gradflow.chapters.vanishing_gradients`` or
``gradflow.signal_propagation`` returned and gives back a ``matplotlib.figure.Figure`` (not
registered with pyplot). Colours come from the book's palette; one colour per initialisation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure

from ... import checks
from ...activations import REGISTRY
from ...plotting import PALETTE

#: One colour per initialisation, the same in every figure of the chapter.
INIT_COLOURS = {"default": PALETTE["orange"], "xavier": PALETTE["purple"],
                "kaiming": PALETTE["green"]}
INIT_LABELS = {"default": "PyTorch default", "xavier": "Xavier/Glorot", "kaiming": "Kaiming/He"}
ACTIVATION_TITLES = {name: spec.title for name, spec in REGISTRY.items()}
PREDICTION_STYLE = {"color": PALETTE["black"], "linestyle": "--", "linewidth": 1.0}
SIGNAL_LABEL = r"$\Vert\partial L/\partial h_l\Vert$"


def plot_layer_profiles(
    profiles: pd.DataFrame,
    predictions: Mapping[tuple[str, str], pd.DataFrame],
    panels: Mapping[str, Sequence[str]],
    ncols: int = 3,
) -> Figure:
    """||dL/dh_l|| / ||dL/dh_L|| against layer l on a log scale, one panel per activation.

    Args:
        profiles: ``gradient_stats.layer_profiles`` output (columns activation, init, layer,
            ratio, ratio_min, ratio_max).
        predictions: ``{(activation, init): signal_propagation.predict_layers(...)}``; each is
            drawn as a dashed black line.
        panels: ``{activation: [init, ...]}``, the panels in order and the inits in each.
        ncols: panels per row.
    """
    checks.columns(profiles, ["activation", "init", "layer", "ratio", "ratio_min", "ratio_max"],
                   "profiles")
    nrows = -(-len(panels) // ncols)
    fig = Figure(figsize=(3.2 * ncols, 2.6 * nrows + 0.6), layout="constrained")
    axes = fig.subplots(nrows, ncols, sharex=True, sharey=True, squeeze=False).ravel()
    for ax, (activation, inits) in zip(axes, panels.items()):
        for init in inits:
            data = profiles[(profiles["activation"] == activation) & (profiles["init"] == init)]
            if data.empty:
                raise ValueError(f"no profile for activation {activation!r}, init {init!r}")
            colour = INIT_COLOURS[init]
            ax.fill_between(data["layer"], data["ratio_min"], data["ratio_max"], color=colour,
                            alpha=0.25, linewidth=0)
            ax.plot(data["layer"], data["ratio"], color=colour, linewidth=1.8,
                    label=f"{INIT_LABELS[init]}, measured")
            prediction = predictions.get((activation, init))
            if prediction is not None:
                ax.plot(prediction.index, prediction["signal_ratio"], **PREDICTION_STYLE)
        ax.set_yscale("log")
        ax.set_title(ACTIVATION_TITLES.get(activation, activation))
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    for ax in axes[::ncols]:
        ax.set_ylabel(r"$\Vert\partial L/\partial h_l\Vert\,/\,\Vert\partial L/\partial h_L\Vert$ (log)")
    for ax in axes[-ncols:]:
        ax.set_xlabel("layer l (1 = nearest the input)")
    handles = [
        axes[0].plot([], [], color=INIT_COLOURS[i], linewidth=1.8, label=INIT_LABELS[i])[0]
        for i in INIT_COLOURS
        if any(i in inits for inits in panels.values())
    ]
    handles.append(axes[0].plot([], [], label="mean-field prediction", **PREDICTION_STYLE)[0])
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles))
    return fig


def plot_depth_gain_heatmaps(
    grids: Mapping[str, pd.DataFrame], limit: float = 10.0, band: float = 1.0
) -> Figure:
    """Heatmaps of measured log10(||dL/dh_1|| / ||dL/dh_D||) over gain (x, log) and depth D (y).

    Args:
        grids: ``{panel title: gradient_stats.depth_gain_grid(...)}``.
        limit: the colour scale spans [-limit, limit] decades (values beyond are clipped).
        band: the predicted +-``band`` decade contours are drawn (solid: 0, dashed: +-band),
            marking the stable band between vanishing (blue) and exploding (red).
    """
    fig = Figure(figsize=(3.4 * len(grids) + 0.8, 3.4), layout="constrained")
    axes = fig.subplots(1, len(grids), sharey=True, squeeze=False).ravel()
    norm = TwoSlopeNorm(vcenter=0.0, vmin=-limit, vmax=limit)
    mesh = None
    for ax, (title, grid) in zip(axes, grids.items()):
        checks.columns(grid, ["gain", "depth", "measured", "predicted"], f"grid {title!r}")
        measured = grid.pivot(index="depth", columns="gain", values="measured")
        predicted = grid.pivot(index="depth", columns="gain", values="predicted")
        gains, depths = measured.columns.to_numpy(), measured.index.to_numpy()
        mesh = ax.pcolormesh(gains, depths, np.clip(measured.to_numpy(), -limit, limit),
                             cmap="RdBu_r", norm=norm, shading="nearest")
        ax.contour(gains, depths, predicted.to_numpy(), levels=[-band, 0.0, band],
                   colors=PALETTE["black"], linestyles=["--", "-", "--"], linewidths=1.0)
        ax.set_xscale("log")
        ax.minorticks_off()
        ax.set_xticks([0.25, 0.5, 1, 2, 4], labels=["0.25", "0.5", "1", "2", "4"])
        ax.set_xlabel("initialisation gain (log scale)")
        ax.set_title(title)
        ax.grid(False)
    axes[0].set_ylabel("depth D (layers)")
    colourbar = fig.colorbar(mesh, ax=list(axes), shrink=0.9)
    colourbar.set_label(
        r"$\log_{10}(\Vert\partial L/\partial h_1\Vert\,/\,\Vert\partial L/\partial h_D\Vert)$"
    )
    return fig


def plot_weight_vs_signal(panels: Mapping[str, pd.DataFrame]) -> Figure:
    """Both gradient statistics per layer, relative to the last layer, one panel per network.

    Args:
        panels: ``{title: frame}``, each frame with columns ``layer``, ``signal`` and ``weight``
            (``layer_profiles`` ratios of ``signal_norm`` and ``weight_grad_mean_abs``).
    """
    fig = Figure(figsize=(3.4 * len(panels), 3.2), layout="constrained")
    axes = fig.subplots(1, len(panels), sharey=True, squeeze=False).ravel()
    for ax, (title, frame) in zip(axes, panels.items()):
        checks.columns(frame, ["layer", "signal", "weight"], f"panel {title!r}")
        ax.plot(frame["layer"], frame["signal"], color=PALETTE["blue"], linewidth=1.8,
                label=r"back-propagated signal $\Vert\partial L/\partial h_l\Vert$")
        ax.plot(frame["layer"], frame["weight"], color=PALETTE["vermillion"], linewidth=1.8,
                linestyle="-.", label=r"weight gradient mean$\,|\partial L/\partial W_l|$")
        ax.set_yscale("log")
        ax.set_title(title)
        ax.set_xlabel("layer l (1 = nearest the input)")
    axes[0].set_ylabel("value / value at the last layer (log)")
    axes[0].legend(loc="lower right")
    return fig


def explorable_profiles(measured: pd.DataFrame, predicted: pd.DataFrame, *,
                        start: tuple[str, str, float, int] = ("sigmoid", "default", 1.0, 50)):
    """The explorable figure of ``profile_explorer``'s data: ||dL/dh_l|| / ||dL/dh_D|| against l
    for the activation, initialisation, gain and depth the controls choose, measured (geometric
    mean over seeds) beside the mean-field prediction, with layer 1's values written above.
    Returns a ``gradflow.explorables.Explorable``; ``start`` is the setting it opens with."""
    import altair as alt

    from ...explorables import (
        choice,
        deltas,
        explorable,
        matches,
        readout,
        rounded,
        running_sums,
        slider,
        title,
    )
    from .experiments import predicted_profile

    keys = ["activation", "init", "gain", "depth"]
    # each configuration's factors once: predicted_profile then reads 50 rows, not all of them
    by_config = dict(iter(predicted.groupby(["activation", "init", "gain"], sort=True)))
    rows = []
    for (a, i, g, d), group in measured.groupby(keys, sort=True):
        group = group.sort_values("layer")
        first = group.iloc[0]
        rows.append({
            "a": a, "i": i, "g": float(g), "d": int(d),
            "m": deltas(np.log10(group["ratio"].to_numpy())),   # log10, in hundredths
            "lo": rounded([first["ratio_min"]], 3)[0], "hi": rounded([first["ratio_max"]], 3)[0],
            "m1": rounded([first["ratio"]], 3)[0],
            "p1": rounded([predicted_profile(by_config[(a, i, g)], a, i, g, int(d))[0]], 3)[0],
        })
    factors = [
        {"a": a, "i": i, "g": float(g),
         "f": [round(v, 4) for v in np.log10(group.sort_values("layer")["backward_factor"])]}
        for (a, i, g), group in by_config.items()
    ]
    activations = list(dict.fromkeys(measured["activation"]))
    inits = list(dict.fromkeys(measured["init"]))
    gains = sorted(set(measured["gain"]))
    depths = sorted(set(measured["depth"]))
    controls = [
        choice("v_act", "activation", {a: ACTIVATION_TITLES[a] for a in activations}, start[0],
               input="select"),
        choice("v_init", "initialisation", {i: INIT_LABELS[i] for i in inits}, start[1]),
        slider("v_gain", "gain (× the initialisation's std)", gains, start[2]),
        slider("v_depth", "depth D", depths, start[3]),
    ]
    config = "datum.a == v_act && datum.i == v_init && " + matches("g", "v_gain")
    here = config + " && " + matches("d", "v_depth")
    x = alt.X("l:Q", title="layer l", scale=alt.Scale(domain=[1, max(depths)], nice=False))
    y_title = "‖∂L/∂h_l‖ / ‖∂L/∂h_D‖ (log scale)"
    chosen = (alt.Chart(alt.Data(name="profiles")).transform_filter(here)
              .transform_flatten(["m"]).transform_window(l="row_number()"))
    measured_line = (
        running_sums(chosen, {"c": "m"}, "l").transform_calculate(r="pow(10, datum.c)")
        .mark_line(point=True, color=PALETTE["blue"])
        .encode(x=x, y=alt.Y("r:Q", scale=alt.Scale(type="log"), title=y_title))
    )
    predicted_line = (
        alt.Chart(alt.Data(name="factors")).transform_filter(config).transform_flatten(["f"])
        .transform_window(l="row_number()").transform_filter("datum.l <= v_depth")
        .transform_joinaggregate(total="sum(f)")        # log10 of prod_{j <= D} factor_j
        .transform_window(upto="sum(f)", sort=[alt.SortField("l")], frame=[None, 0])
        .transform_calculate(r="pow(10, datum.total - datum.upto)")   # prod_{l < j <= D}
        .mark_line(color=PALETTE["black"], strokeDash=[5, 4], strokeWidth=1.5)
        .encode(x=x, y="r:Q")
    )
    text = readout(
        alt.Chart(alt.Data(name="profiles")).transform_filter(here),
        "'layer 1: measured ' + format(datum.m1, '.3~g') + ', predicted ' + format(datum.p1, "
        "'.3~g') + '\\n(seeds: ' + format(datum.lo, '.2~g') + ' to ' + format(datum.hi, '.2~g') "
        "+ ')'")
    keys = [("measured: geometric mean of the seeds", PALETTE["blue"], 8),
            ("mean-field prediction (dashed)", PALETTE["black"], 24)]
    legend = [alt.Chart(alt.Data(values=[{"k": label}])).mark_text(
        align="left", baseline="top", fontSize=11, color=colour).encode(
        x=alt.value(8), y=alt.value(top), text="k:N") for label, colour, top in keys]
    chart = alt.layer(predicted_line, measured_line, text, *legend).properties(
        width=480, height=300,
        title=title("Gradient norm per layer, relative to the last layer"),
    ).add_params(*controls)
    return explorable(
        chart, "vanishing-profiles", datasets={"profiles": rows, "factors": factors},
        alt=("A log-scale chart of the back-propagated gradient norm at each layer divided by "
             "its value at the last layer, measured (a line with dots, the geometric mean of "
             "several seeds) and predicted by mean-field theory (dashed), for the activation, "
             "initialisation, gain and depth that four controls choose; layer 1's measured and "
             "predicted values are written above the chart. It opens on the sigmoid at "
             "PyTorch's default initialisation, gain 1, depth 50, where the measured and the "
             "predicted line fall together towards layer 1."),
    )
