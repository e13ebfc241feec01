"""The figures of the chapter "What shortcuts fix when gradients do not vanish"
(``book/what_shortcuts_fix.md``), drawn from the data its experiments return. Each function
returns a ``matplotlib.figure.Figure`` not registered with pyplot, in the book's palette."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ... import checks
from ...jacobians import balduzzi_correlation
from ...plotting import PALETTE

SHATTER_STYLES = {
    "plain_bias_free": {"color": PALETTE["black"], "linestyle": ":", "label": "plain, no biases"},
    "plain": {"color": PALETTE["vermillion"], "linestyle": "-", "label": "plain"},
    "plain_bn": {"color": PALETTE["orange"], "linestyle": "--", "label": "plain + BatchNorm"},
    "residual": {"color": PALETTE["blue"], "linestyle": "-", "label": "residual"},
    "residual_bn": {"color": PALETTE["sky"], "linestyle": "--", "label": "residual + BatchNorm"},
    "prince": {"color": PALETTE["purple"], "linestyle": "-.", "label": "Prince's set-up"},
}
RATE_STYLES = {
    "plain": {"color": PALETTE["vermillion"], "label": "model: plain, $2^{-L}$"},
    "residual": {"color": PALETTE["blue"], "label": "model: residual, $(3/4)^L$"},
    "residual_bn": {"color": PALETTE["sky"], "label": r"model: residual + BN, $\sim 1/\sqrt{L}$"},
}
TRAIN_STYLES = {
    "relu": (PALETTE["vermillion"], "ReLU, Kaiming"),
    "tanh_gaussian": (PALETTE["orange"], "tanh, Gaussian"),
    "tanh_orthogonal": (PALETTE["green"], "tanh, orthogonal"),
    "residual": (PALETTE["blue"], "residual ReLU"),
}
SPECTRUM_COLOURS = [PALETTE["vermillion"], PALETTE["orange"], PALETTE["purple"], PALETTE["green"],
                    PALETTE["blue"], PALETTE["sky"]]


def plot_gradient_curves(curves: pd.DataFrame, kinds: Sequence[str]) -> Figure:
    """dy/dx against x, one row per kind, one column per depth (``ShatteringResult.curves``)."""
    checks.columns(curves, ["kind", "depth", "x", "gradient"], "plot_gradient_curves")
    depths = sorted(curves["depth"].unique())
    fig = Figure(figsize=(6.4, 1.45 * len(kinds) + 0.6))
    axes = fig.subplots(len(kinds), len(depths), sharex=True, squeeze=False)
    for row, kind in zip(axes, kinds):
        for ax, depth in zip(row, depths):
            sub = curves[(curves["kind"] == kind) & (curves["depth"] == depth)]
            style = SHATTER_STYLES[kind]
            ax.plot(sub["x"], sub["gradient"], color=style["color"], linewidth=0.9)
            ax.set_title(f"{style['label']}, {depth} layer{'s' if depth > 1 else ''}", fontsize=8)
            ax.tick_params(labelsize=7)
        row[0].set_ylabel("dy/dx", fontsize=8)
    for ax in axes[-1]:
        ax.set_xlabel("input x")
    fig.tight_layout()
    return fig


def plot_correlation_decay(summary: pd.DataFrame, kinds: Sequence[str]) -> Figure:
    """Lag-1 gradient correlation against depth (median over seeds, band: quartiles), beside the
    rates of the model in the spirit of Balduzzi et al. (thin lines). ``summary`` is
    ``correlation_summary``'s."""
    fig = Figure(figsize=(6.4, 4.0))
    ax = fig.subplots()
    for kind in kinds:
        sub = summary.loc[kind]
        style = SHATTER_STYLES[kind]
        ax.fill_between(sub.index, sub["q1"], sub["q3"], color=style["color"], alpha=0.15,
                        linewidth=0)
        ax.plot(sub.index, sub["median"], marker="o", markersize=3, color=style["color"],
                linestyle=style["linestyle"], label=style["label"])
    depths = np.arange(1, int(summary.index.get_level_values("depth").max()) + 1)
    for kind, style in RATE_STYLES.items():
        ax.plot(depths, balduzzi_correlation(depths, kind), color=style["color"], linewidth=0.8,
                alpha=0.8, linestyle=(0, (1, 1)), label=style["label"])
    ax.set_xscale("log")
    ax.set_ylim(-0.1, 1.05)
    ax.set_xlabel("depth L (hidden layers, log scale)")
    ax.set_ylabel("correlation of neighbouring gradients")
    ax.legend(fontsize=7, loc="lower left", ncol=2)
    fig.tight_layout()
    return fig


def plot_spectra(singular: pd.DataFrame, moments: pd.DataFrame, depth: int) -> Figure:
    """Left: the distribution of log10 singular values at ``depth`` for every configuration
    (all seeds). Right: the spread Var(s^2)/E[s^2]^2 against depth, measured (median over
    seeds, markers) and predicted (lines)."""
    configs = list(dict.fromkeys(singular["config"]))
    fig = Figure(figsize=(6.8, 3.8))
    left, right = fig.subplots(1, 2)
    sub = singular[singular["depth"] == depth]
    logs = np.log10(np.clip(sub["singular_value"].to_numpy(), 1e-12, None))
    bins = np.linspace(max(logs.min(), -6.0), logs.max(), 60)
    for config, colour in zip(configs, SPECTRUM_COLOURS):
        values = np.log10(np.clip(sub.loc[sub["config"] == config, "singular_value"], 1e-12, None))
        left.hist(np.clip(values, bins[0], None), bins=bins, histtype="step", color=colour,
                  label=config, density=True)
    left.set_xlabel(f"log10 singular value, {depth} layers")
    left.set_ylabel("density")
    medians = moments.drop(columns="seed").groupby(["config", "depth"], sort=False).median()
    for config, colour in zip(configs, SPECTRUM_COLOURS):
        m = medians.loc[config]
        right.plot(m.index, m["spread"], marker="o", markersize=3, linestyle="none", color=colour)
        if m["predicted_spread"].notna().all():
            right.plot(m.index, m["predicted_spread"], color=colour, linewidth=1)
    right.set_yscale("log")
    right.set_xlabel("depth L")
    right.set_ylabel("spread Var(s²)/E[s²]²")
    handles, labels = left.get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=7)
    fig.tight_layout(rect=(0, 0.14, 1, 1))
    return fig


def plot_training(curves: pd.DataFrame) -> Figure:
    """Training loss against step, one panel per depth; colour: network, dashed: with
    BatchNorm; median over seeds with the range as a band."""
    checks.columns(curves, ["depth", "kind", "seed", "step", "loss"], "plot_training")
    depths = sorted(curves["depth"].unique())
    fig = Figure(figsize=(6.8, 3.9))
    axes = fig.subplots(1, len(depths), sharey=True, squeeze=False)[0]
    for ax, depth in zip(axes, depths):
        sub = curves[curves["depth"] == depth]
        for kind in dict.fromkeys(sub["kind"]):
            base, bn = kind.removesuffix("_bn"), kind.endswith("_bn")
            colour, label = TRAIN_STYLES[base]
            stats = sub[sub["kind"] == kind].groupby("step")["loss"]
            ax.fill_between(stats.min().index, stats.min(), stats.max(), color=colour,
                            alpha=0.12, linewidth=0)
            ax.plot(stats.median().index, stats.median(), color=colour,
                    linestyle="--" if bn else "-", label=label + (" + BN" if bn else ""))
        ax.set_yscale("log")
        ax.set_ylim(1e-15, 1e3)
        ax.set_xlabel("training step")
        ax.set_title(f"{depth} layers", fontsize=10)
    axes[0].set_ylabel("training loss (MSE, log scale)")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=7)
    fig.tight_layout(rect=(0, 0.13, 1, 1))
    return fig


def explorable_shattering(result, kinds: Sequence[str], *, start: tuple[int, str] = (50, "plain_bn")):
    """The chapter's explorable figure: dy/dx against x (first seed, divided by its largest
    |value|) for the depth and network kind the controls choose, with the median lag-1
    correlation over seeds and the rate of the model in the spirit of Balduzzi et al. for that
    kind written above.
    ``result`` is a ``ShatteringResult`` whose ``curve_depths`` are evenly spaced. Returns a
    ``gradflow.explorables.Explorable``."""
    import altair as alt

    from ...explorables import choice, explorable, matches, readout, rounded, slider, title

    curves = result.curves
    depths = sorted(set(curves["depth"]))
    corr = result.correlations.groupby(["kind", "depth"])["correlation"].median()
    model = {"plain": "plain", "plain_bn": "plain", "residual": "residual",
             "residual_bn": "residual_bn"}
    rows = []
    for kind in kinds:
        for depth in depths:
            g = curves[(curves["kind"] == kind) & (curves["depth"] == depth)]["gradient"]
            g = g.to_numpy() / np.abs(g.to_numpy()).max()
            rate = (float(balduzzi_correlation(depth, model[kind])) if kind in model
                    else float("nan"))
            rows.append({"k": kind, "d": int(depth), "g": rounded(g, 3),
                         "c": round(float(corr.loc[(kind, depth)]), 3),
                         "r": -1.0 if np.isnan(rate) else float(f"{rate:.3g}")})
    n = len(result.grid)
    x0, x1 = float(result.grid[0]), float(result.grid[-1])
    controls = [
        slider("s_depth", "hidden layers L", depths, start[0]),
        choice("s_kind", "network", {k: SHATTER_STYLES[k]["label"] for k in kinds}, start[1]),
    ]
    chosen = alt.Chart(alt.Data(name="shattering")).transform_filter(
        "datum.k == s_kind && " + matches("d", "s_depth"))
    long = (chosen.transform_flatten(["g"]).transform_window(i="row_number()")
            .transform_calculate(x=f"{x0} + ({x1} - {x0}) * (datum.i - 1) / {n - 1}"))
    line = long.mark_line(color=PALETTE["blue"], strokeWidth=1).encode(
        x=alt.X("x:Q", title="input x"),
        y=alt.Y("g:Q", title="dy/dx ÷ its largest |value|", scale=alt.Scale(domain=[-1, 1])))
    text = readout(chosen, (
        "'L = ' + datum.d + ': neighbour correlation ' + format(datum.c, '.3f') + "
        "(datum.r >= 0 ? ';\\nmodel in the spirit of Balduzzi et al.: ' + format(datum.r, '.3~g') : "
        "';\\nno model rate for this network')"))
    chart = alt.layer(line, text).properties(
        width=480, height=240, title=title("The gradient against the input, one seed"),
    ).add_params(*controls)
    return explorable(
        chart, "shattered-gradients", datasets={"shattering": rows},
        alt=("A line chart of the gradient dy/dx, divided by its largest absolute value, against "
             "the input x from -2 to 2, for one seed of the network kind and number of hidden "
             "layers that two controls choose; the median correlation between neighbouring "
             "gradients over eight seeds and the rate of the model in the spirit of Balduzzi "
             "et al. are written above the chart."),
    )


def plot_landscapes(slices) -> Figure:
    """Contours of log10 loss on each slice (``landscape_slices``'s), one panel per (kind,
    depth): rows are kinds, columns depths; the trained network at the centre."""
    keys = list(slices.surfaces)
    depths = sorted({d for d, _ in keys})
    kinds = list(dict.fromkeys(k for _, k in keys))
    fig = Figure(figsize=(6.4, 3.0 * len(kinds)))
    axes = fig.subplots(len(kinds), len(depths), squeeze=False, sharex=True, sharey=True)
    c = slices.coordinates
    levels = np.arange(-6.0, 4.5, 0.5)
    for row, kind in zip(axes, kinds):
        for ax, depth in zip(row, depths):
            z = np.log10(np.clip(slices.surfaces[depth, kind], 1e-6, 10**4))
            contour = ax.contour(c, c, z, levels=levels, cmap="viridis", linewidths=0.8)
            ax.plot([0], [0], marker="+", color=PALETTE["vermillion"], markersize=8)
            label = TRAIN_STYLES[kind.removesuffix("_bn")][1] + (" + BN" if kind.endswith("_bn")
                                                                 else "")
            ax.set_title(f"{label}, {depth} layers", fontsize=9)
            ax.set_aspect("equal")
        row[0].set_ylabel("direction 2")
    for ax in axes[-1]:
        ax.set_xlabel("direction 1")
    fig.colorbar(contour, ax=axes, label="log10 training loss", shrink=0.8)
    return fig


def paired_table(paired: dict[int, pd.DataFrame], labels: dict[str, str]) -> pd.DataFrame:
    """The residual network against each plain one as text: per (depth, plain kind) and per
    length t (``{t: residual_against_plain(...)}``), the seeds where the residual network ended
    lower and the mean log10 ratio of the losses with its 95 % interval."""
    columns = {}
    for t, table in paired.items():
        checks.columns(table, ["wins", "n", "mean", "low", "high"], "paired_table")
        columns[f"after {t} steps: residual lower in"] = [
            f"{r.wins} of {r.n}" for r in table.itertuples()]
        columns[f"after {t} steps: log10 ratio (95 % interval)"] = [
            f"{r.mean:+.2f} ({r.low:+.2f} to {r.high:+.2f})" for r in table.itertuples()]
    first = next(iter(paired.values()))
    index = pd.MultiIndex.from_tuples([(d, labels.get(k, k)) for d, k in first.index],
                                      names=["layers", "plain network"])
    return pd.DataFrame(columns, index=index)
