"""The figures of the chapter "Shortcut connections" (``book/shortcut_connections.md``), drawn from
the data its experiments (``gradflow.chapters.shortcut_connections``) return.

Every function takes that data and returns a ``matplotlib.figure.Figure`` that is not registered
with pyplot, in the book's style and colour-blind-safe palette (``gradflow.plotting``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ... import checks
from ...plotting import PALETTE, ROLE_COLOURS

#: Colours and line styles for the networks the chapter compares.
NETWORK_STYLES = {
    "plain": {"color": ROLE_COLOURS["plain"], "linestyle": "-", "marker": "o"},
    "seed's shortcuts": {"color": ROLE_COLOURS["shortcut"], "linestyle": "-", "marker": "s"},
    "projection shortcuts": {"color": PALETTE["green"], "linestyle": "--", "marker": "D"},
}
KIND_STYLES = {
    "plain": {"color": ROLE_COLOURS["plain"], "linestyle": "-", "label": "plain"},
    "residual": {"color": ROLE_COLOURS["shortcut"], "linestyle": "-", "label": "residual"},
    "plain_bn": {"color": PALETTE["orange"], "linestyle": "--", "label": "plain + BatchNorm"},
    "residual_bn": {"color": PALETTE["sky"], "linestyle": "--", "label": "residual + BatchNorm"},
}
SCALING_STYLES = {
    "none": {"color": ROLE_COLOURS["plain"], "label": "unscaled"},
    "gpt2": {"color": PALETTE["green"], "label": "last layer × 1/√N (GPT-2)"},
    "rezero": {"color": ROLE_COLOURS["shortcut"], "label": "ReZero, α = 0"},
}
LAMBDA_COLOURS = [PALETTE["vermillion"], PALETTE["orange"], PALETTE["blue"], PALETTE["purple"]]


def plot_ratio_distribution(frame: pd.DataFrame, seed: int) -> Figure:
    """Histograms of the first-layer gradient ratio over seeds, raw and divided by |dL/dy|.

    ``frame`` is ``many_seed_comparison``'s; the seed ``seed`` is marked on both.
    """
    checks.columns(frame, ["ratio_raw", "ratio_normalised"], "plot_ratio_distribution")
    if seed not in frame.index:
        raise ValueError(f"seed {seed} is not in the frame")
    values = frame[["ratio_raw", "ratio_normalised"]].to_numpy(dtype=float)
    low, high = np.log10(values.min()), np.log10(values.max())
    bins = np.logspace(np.floor(low), np.ceil(high), 61)
    fig = Figure(figsize=(6.4, 4.8))
    axes = fig.subplots(2, 1, sharex=True)
    titles = {
        "ratio_raw": "raw: first-layer gradient, shortcut / plain",
        "ratio_normalised": "each divided by its |∂L/∂y| first",
    }
    colours = {"ratio_raw": PALETTE["orange"], "ratio_normalised": PALETTE["green"]}
    for ax, column in zip(axes, titles):
        data = frame[column].to_numpy(dtype=float)
        ax.hist(data, bins=bins, color=colours[column], alpha=0.8, label=f"{len(data)} seeds")
        ax.axvline(float(np.median(data)), color=PALETTE["black"], linestyle="--",
                   label="median")
        ax.axvline(float(frame.loc[seed, column]), color=PALETTE["purple"], linewidth=2,
                   label=f"seed {seed}")
        ax.axvline(1.0, color="grey", linestyle=":", label="ratio 1")
        ax.set_xscale("log")
        ax.set_ylabel("number of seeds")
        ax.set_title(titles[column], fontsize=10)
        ax.legend(fontsize=8, loc="upper left")
    axes[-1].set_xlabel("ratio of first-layer mean |∂L/∂W|, shortcut / plain (log scale)")
    fig.tight_layout()
    return fig


def plot_projection_gradients(panels: Mapping[str, pd.DataFrame]) -> Figure:
    """Per-layer mean |dL/dW| / |dL/dy| of the plain, seed-shortcut and projection networks.

    ``panels`` maps a title (such as ``"[3, 4, 4, 4, 4, 1]"``) to a
    ``projection_comparison`` frame. Hollow markers: layers without any shortcut.
    """
    fig = Figure(figsize=(6.4, 3.6))
    axes = fig.subplots(1, len(panels), sharey=True, squeeze=False)[0]
    for ax, (title, frame) in zip(axes, panels.items()):
        checks.columns(frame, ["network", "layer", "shortcut", "grad_over_dldy"],
                 "plot_projection_gradients")
        for network, group in frame.groupby("network", sort=False):
            style = NETWORK_STYLES.get(network, {"color": PALETTE["black"], "linestyle": "-",
                                                  "marker": "o"})
            ax.plot(group["layer"], group["grad_over_dldy"], color=style["color"],
                    linestyle=style["linestyle"], label=network)
            none = group["shortcut"] == "none"
            ax.scatter(group["layer"][~none], group["grad_over_dldy"][~none],
                       color=style["color"], marker=style["marker"], zorder=3)
            ax.scatter(group["layer"][none], group["grad_over_dldy"][none],
                       facecolors="white", edgecolors=style["color"], marker=style["marker"],
                       zorder=3)
        ax.set_yscale("log")
        ax.set_xticks(sorted(frame["layer"].unique()))
        ax.set_xlabel("layer (1 = nearest the input)")
        ax.set_title(title, fontsize=10)
    axes[0].set_ylabel("mean |∂L/∂W| / |∂L/∂y| (log scale)")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_lambda_scaling(frame: pd.DataFrame) -> Figure:
    """||dL/dh_l|| / ||dL/dh_L|| against layer for each lambda (geometric mean over seeds, band:
    min to max), with lambda^(L-l) dashed; one panel per branch gain.

    ``frame`` is ``lambda_scaling``'s.
    """
    checks.columns(frame, ["gain", "lambda", "seed", "layer", "ratio_to_top", "identity_prediction"],
             "plot_lambda_scaling")
    gains = sorted(frame["gain"].unique())
    fig = Figure(figsize=(6.4, 3.8))
    axes = fig.subplots(1, len(gains), sharey=True, squeeze=False)[0]
    for ax, gain in zip(axes, gains):
        sub = frame[frame["gain"] == gain]
        for i, (lam, group) in enumerate(sub.groupby("lambda")):
            colour = LAMBDA_COLOURS[i % len(LAMBDA_COLOURS)]
            stats = group.groupby("layer")["ratio_to_top"]
            mean = np.exp(stats.apply(lambda s: np.log(s).mean()))
            ax.fill_between(mean.index, stats.min(), stats.max(), color=colour, alpha=0.2,
                            linewidth=0)
            ax.plot(mean.index, mean, color=colour, label=f"λ = {lam:g}")
            prediction = group.groupby("layer")["identity_prediction"].first()
            ax.plot(prediction.index, prediction, color=colour, linestyle="--", linewidth=1)
        ax.set_yscale("log")
        ax.set_xlabel("layer l (0 = input)")
        ax.set_title(f"branch weights × {gain:g}", fontsize=10)
    axes[0].set_ylabel("‖∂L/∂h_l‖ / ‖∂L/∂h_L‖ (log scale)")
    axes[0].legend(fontsize=8, title="solid: measured\ndashed: λ^(L−l)", title_fontsize=8)
    fig.tight_layout()
    return fig


def plot_path_lengths(
    small: pd.DataFrame, large: pd.DataFrame, magnitudes: pd.DataFrame | None = None,
    band: tuple[int, int] = (5, 17),
) -> Figure:
    """Path-length distributions (Veit et al. 2016, Fig. 6a) for a small and a large number of
    blocks, and optionally the gradient share per path length (their Fig. 6c).

    ``small`` and ``large`` are ``path_length_distribution`` frames; ``magnitudes`` a
    ``path_gradient_magnitudes`` frame. ``band`` is shaded on the large panels.
    """
    for frame in (small, large):
        checks.columns(frame, ["n_paths", "share"], "plot_path_lengths")
    n_panels = 2 if magnitudes is None else 3
    fig = Figure(figsize=(6.4, 2.6 * n_panels))
    axes = fig.subplots(n_panels, 1)
    n_small, n_large = len(small) - 1, len(large) - 1
    axes[0].bar(small.index, small["n_paths"].astype(float), color=PALETTE["blue"])
    for k, count in zip(small.index, small["n_paths"]):
        axes[0].annotate(str(count), (k, float(count)), ha="center", va="bottom", fontsize=9)
    axes[0].set_xticks(list(small.index))
    axes[0].set_xlabel("path length k (branches taken)")
    axes[0].set_ylabel("number of paths")
    axes[0].set_title(f"{n_small} blocks: {2 ** n_small} paths", fontsize=10)
    axes[0].set_ylim(0, float(max(small["n_paths"])) * 1.25)
    axes[1].bar(large.index, 100 * large["share"], color=PALETTE["blue"], label="share of paths")
    axes[1].set_ylabel("share of all paths (%)")
    axes[1].set_title(f"{n_large} blocks: 2^{n_large} paths", fontsize=10)
    if magnitudes is not None:
        checks.columns(magnitudes, ["share_of_total"], "plot_path_lengths")
        axes[2].bar(magnitudes.index, 100 * magnitudes["share_of_total"],
                    color=PALETTE["vermillion"], label="share of gradient magnitude")
        axes[2].set_ylabel("share of gradient (%)")
        axes[2].set_title(f"{n_large} blocks: gradient carried by paths of each length",
                          fontsize=10)
    for ax in axes[1:]:
        ax.axvspan(band[0] - 0.5, band[1] + 0.5, color=PALETTE["green"], alpha=0.15,
                   label=f"lengths {band[0]}–{band[1]}", zorder=0)
        ax.set_xlim(-0.5, n_large + 0.5)
        ax.set_xlabel("path length k (branches taken)")
        ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    return fig


def plot_stream_growth(frame: pd.DataFrame) -> Figure:
    """Variance of the residual stream against depth for each scaling, one panel per norm
    placement (``residual_stream_growth``'s frame; geometric mean over seeds). The
    panel without normalisation has a log scale, the Pre-LN panel a linear one."""
    checks.columns(frame, ["norm", "scaling", "seed", "layer", "variance"], "plot_stream_growth")
    titles = {"none": "no normalisation", "pre_ln": "LayerNorm before each branch (Pre-LN)"}
    norms = list(dict.fromkeys(frame["norm"]))
    fig = Figure(figsize=(6.4, 3.6))
    axes = fig.subplots(1, len(norms), squeeze=False)[0]
    for ax, norm in zip(axes, norms):
        sub = frame[frame["norm"] == norm]
        for scaling, group in sub.groupby("scaling", sort=False):
            style = SCALING_STYLES.get(scaling, {"color": PALETTE["black"], "label": scaling})
            mean = np.exp(group.groupby("layer")["variance"].apply(lambda s: np.log(s).mean()))
            ax.plot(mean.index, mean, color=style["color"], label=style["label"])
        # Without normalisation the growth is exponential (log scale); with Pre-LN it is linear.
        ax.set_yscale("log" if norm == "none" else "linear")
        ax.set_xlabel("block l (0 = input)")
        ax.set_ylabel("Var(h_l)" + (" (log scale)" if norm == "none" else ""))
        ax.set_title(titles.get(norm, norm), fontsize=10)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_training_curves(curves: pd.DataFrame, kinds: Sequence[str] | None = None) -> Figure:
    """Training loss against step, one panel per depth, one line per kind of network (median
    over seeds; band: min to max). ``curves`` is ``TrainingComparison.curves``."""
    checks.columns(curves, ["depth", "kind", "seed", "step", "loss"], "plot_training_curves")
    depths = sorted(curves["depth"].unique())
    kinds = list(dict.fromkeys(curves["kind"])) if kinds is None else list(kinds)
    fig = Figure(figsize=(6.4, 3.9))
    axes = fig.subplots(1, len(depths), sharey=True, squeeze=False)[0]
    for ax, depth in zip(axes, depths):
        sub = curves[curves["depth"] == depth]
        for kind in kinds:
            group = sub[sub["kind"] == kind]
            if group.empty:
                continue
            style = KIND_STYLES.get(kind, {"color": PALETTE["black"], "linestyle": "-",
                                           "label": kind})
            stats = group.groupby("step")["loss"]
            ax.fill_between(stats.min().index, stats.min(), stats.max(), color=style["color"],
                            alpha=0.2, linewidth=0)
            ax.plot(stats.median().index, stats.median(), color=style["color"],
                    linestyle=style["linestyle"], label=style["label"])
        ax.set_yscale("log")
        ax.set_xlabel("training step")
        ax.set_title(f"{depth} layers", fontsize=10)
    axes[0].set_ylabel("training loss (MSE, log scale)")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    return fig


def explorable_shortcuts(lambdas: pd.DataFrame, paths: Mapping[int, pd.DataFrame], *,
                         start_lambda: float = 0.9, start_blocks: int = 54):
    """The chapter's explorable figure. Top: ``lambda_explorer``'s data, ||dL/dh_l|| / ||dL/dh_L||
    against l for the shortcut scale lambda, the branch gain and shortcuts on or off (off is
    lambda = 0) that the controls choose, beside the identity term lambda^(L-l). Bottom: the
    share of paths of each length through n blocks (``paths[n]``, from
    ``path_length_distribution``) for the n a slider chooses. Returns a
    ``gradflow.explorables.Explorable``."""
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
        toggle,
    )

    depth = int(lambdas["layer"].max())
    profiles = []
    for (gain, lam), group in lambdas.groupby(["gain", "lambda"], sort=True):
        group = group.sort_values("layer")
        first = group.iloc[0]
        profiles.append({
            "g": float(gain), "lam": float(lam),
            "m": deltas(np.log10(group["ratio"])), "lo": deltas(np.log10(group["ratio_min"])),
            "hi": deltas(np.log10(group["ratio_max"])),
            "r0": rounded([first["ratio"]], 3)[0], "p0": rounded([first["identity_prediction"]], 3)[0],
        })
    blocks = sorted(paths)
    shares = [{"n": n, "s": rounded(paths[n]["share"], 3),
               "mode": int(paths[n]["share"].idxmax()), "top": rounded([paths[n]["share"].max()], 3)[0],
               "total": float(paths[n]["n_paths"].sum())} for n in blocks]
    gains = sorted(set(lambdas["gain"]))
    controls = [
        slider("s_lambda", "shortcut scale λ", sorted(set(lambdas["lambda"])), start_lambda),
        choice("s_gain", "branch weights", {g: f"{g:g} × PyTorch's default" for g in gains},
               max(gains)),
        toggle("s_on", "shortcuts", True),
        slider("s_blocks", "blocks n (paths)", blocks, start_blocks),
    ]
    effective = "(s_on ? s_lambda : 0)"
    here = matches("g", "s_gain") + " && " + matches("lam", effective)
    x = alt.X("l:Q", title="layer l", scale=alt.Scale(domain=[0, depth], nice=False))
    y_title = "‖∂L/∂h_l‖ / ‖∂L/∂h_L‖ (log scale)"
    y = alt.Y("r:Q", scale=alt.Scale(type="log"), title=y_title)
    chosen = (alt.Chart(alt.Data(name="profiles")).transform_filter(here)
              .transform_flatten(["m", "lo", "hi"]).transform_window(i="row_number()")
              .transform_calculate(l="datum.i - 1"))
    base = (running_sums(chosen, {"cm": "m", "clo": "lo", "chi": "hi"}, "l")
            .transform_calculate(r="pow(10, datum.cm)", rlo="pow(10, datum.clo)",
                                 rhi="pow(10, datum.chi)"))
    band = base.mark_area(opacity=0.25, color=ROLE_COLOURS["shortcut"]).encode(
        x=x, y=alt.Y("rlo:Q", scale=alt.Scale(type="log"), title=y_title), y2="rhi:Q")
    line = base.mark_line(color=ROLE_COLOURS["shortcut"], strokeWidth=2).encode(x=x, y=y)
    identity = (base.transform_calculate(p=f"pow({effective}, {depth} - datum.l)")
                .transform_filter("datum.p > 0")
                .mark_line(color=PALETTE["black"], strokeDash=[5, 4], strokeWidth=1.5)
                .encode(x=x, y="p:Q"))
    text = readout(
        alt.Chart(alt.Data(name="profiles")).transform_filter(here),
        "(s_on ? 'λ = ' + format(s_lambda, '.2f') : 'no shortcuts (λ = 0)') + ': layer 0 gets '"
        " + format(datum.r0, '.3~g') + ' of the last layer\\'s gradient;\\nthe identity term '"
        " + format(datum.p0, '.3~g')")
    top = alt.layer(band, line, identity, text).properties(
        width=480, height=260,
        title=title(f"Gradient through {depth} layers with shortcuts scaled by λ"))
    chosen = alt.Chart(alt.Data(name="paths")).transform_filter(matches("n", "s_blocks"))
    bars = (chosen.transform_flatten(["s"]).transform_window(i="row_number()")
            .transform_calculate(k="datum.i - 1")
            .mark_bar(color=PALETTE["sky"])
            .encode(x=alt.X("k:Q", title="path length k (branches taken)",
                            scale=alt.Scale(domain=[0, max(blocks)], nice=False)),
                    y=alt.Y("s:Q", title="share of the 2ⁿ paths")))
    path_text = readout(chosen, (
        "'n = ' + s_blocks + ' blocks: ' + format(datum.total, '.3~g') + ' paths;\\nthe most "
        "common length, ' + datum.mode + ', holds ' + format(datum.top, '.1%')"))
    bottom = alt.layer(bars, path_text).properties(
        width=480, height=200, title=title("Paths through n residual blocks, by length"))
    chart = alt.vconcat(top, bottom).resolve_scale(x="independent", y="independent")
    return explorable(
        chart.add_params(*controls), "shortcut-connections",
        datasets={"profiles": profiles, "paths": shares},
        alt=("Two charts. Top: on a log scale, the back-propagated gradient norm at each of "
             f"{depth} layers divided by its value at the last layer, for the shortcut scale "
             "lambda, the branch weights and shortcuts on or off that controls choose (the "
             "geometric mean of the seeds as a line, their range as a band), beside the "
             "identity term lambda to the power of the distance to the last layer (dashed); the "
             "ratio at layer 0 is written above. Bottom: bars of the share of paths of each "
             "length through the number of blocks a slider chooses, with the number of paths "
             "and the most common length written above."),
    )
