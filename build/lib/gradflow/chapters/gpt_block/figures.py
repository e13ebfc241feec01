"""The figures of the chapter "Putting it together in a GPT block" (``book/gpt_block.md``).

Each function takes the data a function in ``gradflow.chapters.gpt_block`` returned (or nothing, for
the diagram) and gives back a ``matplotlib.figure.Figure`` not registered with pyplot. Shortcut
and plain models keep the book's fixed colours (``ROLE_COLOURS``); Pre-LN and Post-LN get two more.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch

from ... import checks
from ...plotting import PALETTE, ROLE_COLOURS

PLACEMENT_COLOURS = {"pre": PALETTE["green"], "post": PALETTE["orange"]}
PLACEMENT_TITLES = {"pre": "Pre-LN (GPT-2)", "post": "Post-LN (Vaswani et al. 2017)"}
SHORTCUT_LABELS = {True: "with shortcuts", False: "without shortcuts"}
DEPTH_MARKERS = ("o", "s", "D", "^", "v")
DEPTH_STYLES = ("-", "--", ":", "-.")

FFN_LABEL = "feed-forward: Linear d→4d,\nGELU (tanh), Linear 4d→d"
TOP = 1.04  # height of the diagram's output box
BOX_COLOURS = {"ln": "#D9ECF7", "attn": "#FBE3CF", "ffn": "#D5F0E6", "io": "#EEEEEE"}


# --- The block diagram ----------------------------------------------------------------------

def _box(ax, x: float, y: float, text: str, kind: str, width: float = 0.5, height: float = 0.075):
    ax.add_patch(FancyBboxPatch((x - width / 2, y - height / 2), width, height,
                                boxstyle="round,pad=0.008,rounding_size=0.015",
                                facecolor=BOX_COLOURS[kind], edgecolor=PALETTE["black"],
                                linewidth=0.9))
    ax.text(x, y, text, ha="center", va="center", fontsize=8)


def _add(ax, x: float, y: float, r: float = 0.022):
    ax.add_patch(Circle((x, y), r, facecolor="white", edgecolor=PALETTE["black"], linewidth=1.0))
    ax.plot([x - r * 0.6, x + r * 0.6], [y, y], color=PALETTE["black"], linewidth=1.0)
    ax.plot([x, x], [y - r * 0.6, y + r * 0.6], color=PALETTE["black"], linewidth=1.0)


def _arrow(ax, points: Sequence[tuple[float, float]], colour: str = PALETTE["black"],
           width: float = 1.1, style: str = "-"):
    """A poly-line through ``points`` with an arrow head at the last point."""
    for (x0, y0), (x1, y1) in itertools.pairwise(points[:-1]):
        ax.plot([x0, x1], [y0, y1], color=colour, linewidth=width, linestyle=style)
    ax.add_patch(FancyArrowPatch(points[-2], points[-1], arrowstyle="-|>", mutation_scale=9,
                                 color=colour, linewidth=width, linestyle=style,
                                 shrinkA=0, shrinkB=0))


def _draw_block(ax, placement: str) -> None:
    """One block, bottom (input) to top (output), the residual stream on the left."""
    s, b = 0.22, 0.7  # x of the residual stream and of the branches
    shortcut = ROLE_COLOURS["shortcut"]
    r = 0.022
    _box(ax, s, 0.04, "x  (residual stream in)", "io", width=0.42)
    _box(ax, s, TOP, "x  (residual stream out)", "io", width=0.42)
    if placement == "pre":
        y_add1, y_add2 = 0.48, 0.90
        for y0, y_add, ln, branch, kind in ((0.10, y_add1, "LayerNorm  (ln_1)",
                                             "causal self-attention\n(4 heads, masked)", "attn"),
                                            (0.52, y_add2, "LayerNorm  (ln_2)",
                                             FFN_LABEL, "ffn")):
            y_split = y0 + 0.04
            _box(ax, b, y0 + 0.12, ln, "ln")
            _box(ax, b, y0 + 0.26, branch, kind, height=0.1)
            _arrow(ax, [(s, y_split), (b, y_split), (b, y0 + 0.12 - 0.0375)])
            _arrow(ax, [(b, y0 + 0.12 + 0.0375), (b, y0 + 0.26 - 0.05)])
            _arrow(ax, [(b, y0 + 0.26 + 0.05), (b, y_add), (s + r, y_add)])
            _add(ax, s, y_add)
        _arrow(ax, [(s, 0.04 + 0.0375), (s, y_add1 - r)], colour=shortcut, width=2.0)
        _arrow(ax, [(s, y_add1 + r), (s, y_add2 - r)], colour=shortcut, width=2.0)
        _arrow(ax, [(s, y_add2 + r), (s, TOP - 0.0375)])
        ax.text(s - 0.03, 0.30, "shortcut", rotation=90, color=shortcut, ha="right", va="center",
                fontsize=8)
    else:
        y_add1, y_ln1, y_add2, y_ln2 = 0.36, 0.47, 0.80, 0.91
        for y0, y_add, branch, kind in ((0.10, y_add1, "causal self-attention\n(4 heads, masked)",
                                         "attn"),
                                        (0.51, y_add2, FFN_LABEL, "ffn")):
            y_split = y0 + 0.04
            _box(ax, b, y0 + 0.15, branch, kind, height=0.1)
            _arrow(ax, [(s, y_split), (b, y_split), (b, y0 + 0.15 - 0.05)])
            _arrow(ax, [(b, y0 + 0.15 + 0.05), (b, y_add), (s + r, y_add)])
            _add(ax, s, y_add)
        for y_ln, label in ((y_ln1, "LayerNorm (ln_1)"), (y_ln2, "LayerNorm (ln_2)")):
            _box(ax, s, y_ln, label, "ln", width=0.34, height=0.06)
        _arrow(ax, [(s, 0.04 + 0.0375), (s, y_add1 - r)], colour=shortcut, width=2.0)
        _arrow(ax, [(s, y_add1 + r), (s, y_ln1 - 0.03)])
        _arrow(ax, [(s, y_ln1 + 0.03), (s, y_add2 - r)], colour=shortcut, width=2.0)
        _arrow(ax, [(s, y_add2 + r), (s, y_ln2 - 0.03)])
        _arrow(ax, [(s, y_ln2 + 0.03), (s, TOP - 0.0375)])
        ax.text(s - 0.03, 0.24, "shortcut", rotation=90, color=shortcut, ha="right", va="center",
                fontsize=8)
    ax.set_xlim(-0.02, 0.97)
    ax.set_ylim(-0.01, TOP + 0.05)
    ax.set_axis_off()
    ax.set_title(PLACEMENT_TITLES[placement], fontsize=10)


def plot_block_diagram(placements: Sequence[str] = ("pre", "post")) -> Figure:
    """The transformer block drawn as boxes and arrows, one panel per LayerNorm placement.

    Pre-LN: LayerNorm -> attention -> add, LayerNorm -> feed-forward (GELU) -> add, the shortcut
    (thick, in the shortcut colour) carrying x past each branch. Post-LN: attention -> add ->
    LayerNorm, feed-forward -> add -> LayerNorm, so the LayerNorms sit on the shortcut path.
    """
    placements = list(placements)
    if not placements or any(p not in PLACEMENT_TITLES for p in placements):
        raise ValueError(f"placements must be drawn from {tuple(PLACEMENT_TITLES)}, got {placements}")
    fig = Figure(figsize=(3.6 * len(placements), 5.0), layout="constrained")
    axes = fig.subplots(1, len(placements), squeeze=False).ravel()
    for ax, placement in zip(axes, placements):
        _draw_block(ax, placement)
    return fig


# --- Gradients and the residual stream at initialisation -----------------------------------

def plot_layer_gradient_norms(table: pd.DataFrame) -> Figure:
    """Per-block gradient norms and token diversity against block index, for every stack.

    Rows: ||dL/dW^{2,l}|| (feed-forward output projection), ||dL/dW_QK|| (attention queries and
    keys), both on log scales, and token diversity. Columns: LayerNorm placement. Colour: with or
    without shortcuts; marker and line style: depth. ``table`` comes from
    ``gradient_norms_by_depth``.
    """
    columns = ["n_layer", "placement", "shortcuts", "layer", "ffn_w2", "attn_qk",
               "token_diversity"]
    checks.columns(table, columns, "table")
    placements = [p for p in PLACEMENT_TITLES if p in set(table["placement"])]
    depths = sorted(table["n_layer"].unique())
    rows = (("ffn_w2", r"$\Vert\partial L/\partial W^{2,l}\Vert_F$" + "\n(feed-forward, log)"),
            ("attn_qk", r"$\Vert\partial L/\partial W_{QK}^{l}\Vert_F$" + "\n(queries, keys; log)"),
            ("token_diversity", "token diversity\n(0 = all tokens equal)"))
    fig = Figure(figsize=(7.4, 8.2), layout="constrained")
    axes = fig.subplots(len(rows), len(placements), sharex=True, sharey="row", squeeze=False)
    for j, placement in enumerate(placements):
        for i, (column, label) in enumerate(rows):
            ax = axes[i, j]
            for shortcut in (True, False):
                for k, depth in enumerate(depths):
                    data = table[(table["placement"] == placement)
                                 & (table["shortcuts"] == shortcut) & (table["n_layer"] == depth)]
                    ax.plot(data["layer"], data[column], color=ROLE_COLOURS[
                        "shortcut" if shortcut else "plain"], marker=DEPTH_MARKERS[k % 5],
                        markersize=3, linestyle=DEPTH_STYLES[k % 4], linewidth=1.2)
            if column != "token_diversity":
                ax.set_yscale("log")
            else:
                ax.set_ylim(-0.03, 1.03)
            if j == 0:
                ax.set_ylabel(label)
        axes[0, j].set_title(PLACEMENT_TITLES[placement])
        axes[-1, j].set_xlabel("block l (1 = nearest the input)")
    handles = [axes[0, 0].plot([], [], color=ROLE_COLOURS["shortcut" if s else "plain"],
                               linewidth=2, label=SHORTCUT_LABELS[s])[0] for s in (True, False)]
    handles += [axes[0, 0].plot([], [], color=PALETTE["black"], marker=DEPTH_MARKERS[k % 5],
                                markersize=3, linestyle=DEPTH_STYLES[k % 4],
                                label=f"{d} blocks")[0] for k, d in enumerate(depths)]
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles))
    return fig


def plot_last_layer_scaling(scaling: pd.DataFrame) -> Figure:
    """||dL/dW^{2,L}|| of the last block against depth L on log-log axes (Xiong et al. 2020).

    One line per placement (colour) and init std (line style), through the geometric mean over
    seeds, with every seed as a faint dot; dotted grey guides show slopes 0 and -1/2 through the
    first point of each line. ``scaling`` comes from ``last_layer_gradient_scaling``.
    """
    checks.columns(scaling, ["n_layer", "placement", "init_std", "last_ffn_w2"], "scaling")
    fig = Figure(figsize=(6.4, 4.6), layout="constrained")
    ax = fig.add_subplot()
    stds = sorted(scaling["init_std"].unique())
    for placement in [p for p in PLACEMENT_TITLES if p in set(scaling["placement"])]:
        for k, std in enumerate(stds):
            data = scaling[(scaling["placement"] == placement) & (scaling["init_std"] == std)]
            mean = data.groupby("n_layer")["last_ffn_w2"].apply(lambda s: np.exp(np.log(s).mean()))
            depths = mean.index.to_numpy(float)
            colour = PLACEMENT_COLOURS[placement]
            ax.scatter(data["n_layer"], data["last_ffn_w2"], color=colour, alpha=0.3, s=10)
            ax.plot(depths, mean.to_numpy(), color=colour, linestyle=DEPTH_STYLES[k % 4],
                    marker="o", markersize=4, label=f"{PLACEMENT_TITLES[placement]}, std {std:.3g}")
            slope = -0.5 if placement == "pre" else 0.0
            ax.plot(depths, mean.iloc[0] * (depths / depths[0]) ** slope, color="0.55",
                    linestyle=":", linewidth=1.0)
    ax.plot([], [], color="0.55", linestyle=":", label=r"guides: $\propto L^{-1/2}$ (Pre-LN), flat (Post-LN)")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    depths = sorted(scaling["n_layer"].unique())
    ax.set_xticks(depths, [str(d) for d in depths])
    ax.minorticks_off()
    ax.set_xlabel("number of blocks L (log scale)")
    ax.set_ylabel(r"last block's $\Vert\partial L/\partial W^{2,L}\Vert_F$ (log scale)")
    fig.legend(loc="outside lower center", ncol=2, fontsize=8)
    return fig


def plot_residual_variance(variance: pd.DataFrame) -> Figure:
    """Variance of the residual stream after each block, relative to the embeddings' variance.

    One line per ``scaled_init`` setting; ``variance`` comes from
    ``residual_stream_variance``.
    """
    checks.columns(variance, ["scaled_init", "layer", "variance"], "variance")
    fig = Figure(figsize=(6.4, 3.6), layout="constrained")
    ax = fig.add_subplot()
    styles = {False: (PALETTE["purple"], "o", "all weights std 0.02"),
              True: (PALETTE["black"], "s", r"residual projections std $0.02/\sqrt{2N}$ (GPT-2)")}
    for scaled, (colour, marker, label) in styles.items():
        data = variance[variance["scaled_init"] == scaled]
        if data.empty:
            continue
        ax.plot(data["layer"], data["variance"] / data["variance"].iloc[0], color=colour,
                marker=marker, markersize=3, label=label)
    ax.set_xlabel("block l (0 = the embeddings)")
    ax.set_ylabel(r"Var$(x_l)$ / Var$(x_0)$")
    ax.legend()
    return fig


def plot_training_curves(losses: pd.DataFrame, baselines: Mapping[str, float] | None = None,
                         window: int = 10) -> Figure:
    """Training loss against step, one colour per run, with input-blind baselines as guides.

    Each run is drawn faintly step by step and boldly as a running mean over ``window`` steps.
    ``losses`` comes from ``loss_table``; ``baselines`` from
    ``SequenceTask.input_blind_losses``.
    """
    if losses.empty:
        raise ValueError("losses is empty: there is no training run to plot")
    fig = Figure(figsize=(6.4, 3.8), layout="constrained")
    ax = fig.add_subplot()
    colours = {"with shortcuts": ROLE_COLOURS["shortcut"],
               "without shortcuts": ROLE_COLOURS["plain"]}
    for i, column in enumerate(losses.columns):
        colour = colours.get(column, list(PALETTE.values())[i % len(PALETTE)])
        ax.plot(losses.index, losses[column], color=colour, alpha=0.3, linewidth=0.8)
        smooth = losses[column].rolling(window, min_periods=1).mean()
        ax.plot(losses.index, smooth, color=colour, linewidth=2.0, label=column)
    for k, (label, value) in enumerate((baselines or {}).items()):
        ax.axhline(value, color="0.4", linestyle=DEPTH_STYLES[(k + 1) % 4], linewidth=1.0)
        ax.annotate(f"input-blind best: {label}", (losses.index[-1], value), xytext=(0, 3),
                    textcoords="offset points", ha="right", va="bottom", fontsize=8, color="0.3")
    ax.set_xlabel("training step")
    ax.set_ylabel("cross-entropy loss (nats per output symbol)")
    ax.set_ylim(bottom=0)
    ax.legend(loc="lower left")
    return fig


def explorable_gradients(table: pd.DataFrame, *, start: tuple[int, str] = (12, "pre")):
    """The chapter's explorable figure of ``gradient_explorer``'s table: the gradient norm of each
    block's feed-forward output projection W2 and attention query-key weights against the block,
    for the depth, LayerNorm placement, shortcuts and initialisation the controls choose, with
    the first and last block's values written above. Returns a
    ``gradflow.explorables.Explorable``; it opens at ``start`` (depth, placement), shortcuts on
    and GPT-2's scaled initialisation on."""
    import altair as alt

    from ...explorables import choice, explorable, matches, readout, rounded, slider, title, toggle

    keys = ["n_layer", "placement", "shortcuts", "scaled_init"]
    rows = []
    for (n, placement, shortcuts, scaled), group in table.groupby(keys, sort=True):
        group = group.sort_values("layer")
        ffn, qk = rounded(group["ffn_w2"], 3), rounded(group["attn_qk"], 3)
        rows.append({"n": int(n), "pl": placement, "sc": bool(shortcuts), "si": bool(scaled),
                     "f": ffn, "q": qk})
    depths = sorted(set(table["n_layer"]))
    controls = [
        slider("g_depth", "blocks N", depths, start[0]),
        choice("g_ln", "LayerNorm", {"pre": "Pre-LN", "post": "Post-LN"}, start[1]),
        toggle("g_shortcuts", "shortcuts", True),
        toggle("g_scaled", "GPT-2's scaled initialisation", True),
    ]
    here = ("datum.pl == g_ln && datum.sc == g_shortcuts && datum.si == g_scaled && "
            + matches("n", "g_depth"))
    names = {"f": "feed-forward W2", "q": "attention W_Q, W_K"}
    colours = {"f": PALETTE["vermillion"], "q": PALETTE["blue"]}
    chosen = alt.Chart(alt.Data(name="gradients")).transform_filter(here)
    long = (chosen.transform_flatten(["f", "q"]).transform_window(block="row_number()")
            .transform_fold(["f", "q"], as_=["which", "norm"])
            .transform_calculate(weights=f"datum.which == 'f' ? '{names['f']}' : '{names['q']}'"))
    lines = long.mark_line(point=True).encode(
        x=alt.X("block:Q", title="block l", scale=alt.Scale(domain=[1, max(depths)], nice=False)),
        y=alt.Y("norm:Q", scale=alt.Scale(type="log"), title="gradient norm ‖∂L/∂W‖ (log scale)"),
        color=alt.Color("weights:N", title=None, legend=alt.Legend(orient="bottom"),
                        scale=alt.Scale(domain=list(names.values()),
                                        range=[colours["f"], colours["q"]])))
    text = readout(chosen, (
        "'N = ' + datum.n + ': W2 ' + format(datum.f[0], '.3~g') + ' at block 1, ' "
        "+ format(peek(datum.f), '.3~g') + ' at block N;\\nW_Q, W_K ' + format(datum.q[0], "
        "'.3~g') + ' and ' + format(peek(datum.q), '.3~g')"))
    chart = alt.layer(lines, text).properties(
        width=480, height=280,
        title=title("Gradient norms per block at initialisation"),
    ).add_params(*controls)
    return explorable(
        chart, "gpt-block-gradients", datasets={"gradients": rows},
        alt=("A log-scale chart of the gradient norm of each block's feed-forward output "
             "projection and attention query-key weights against the block index, at "
             "initialisation, for the number of blocks, the LayerNorm placement, shortcuts on or "
             "off and GPT-2's scaled initialisation on or off that four controls choose; the "
             "first and last block's values are written above the chart."),
    )
