"""The figures of the chapter "After GPT-2" (``book/after_gpt2.md``).

Each function takes the data a function of ``gradflow.chapters.after_gpt2`` returned and gives
back a ``matplotlib.figure.Figure`` not registered with pyplot, or (the explorable) a
``gradflow.explorables.Explorable``.
"""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from ... import checks
from ...plotting import PALETTE
from .stability import _arm_name

FFN_COLOURS = {"gelu": PALETTE["blue"], "swiglu": PALETTE["vermillion"],
               "geglu": PALETTE["green"]}
FFN_LABELS = {"gelu": "GELU (GPT-2)", "swiglu": "SwiGLU", "geglu": "GEGLU"}
RULE_COLOURS = {"endswith": PALETTE["black"], "exact name": PALETTE["vermillion"],
                "up projection": PALETTE["sky"]}
RULE_LABELS = {"endswith": "scaled c_proj (w2), as intended",
               "exact name": "scaling missing (name never matches)",
               "up projection": "scaling on c_up (w3) instead of w2"}
RULE_STYLES = {"endswith": "-", "exact name": "-", "up projection": "--"}


def plot_ffn_gains(gains: pd.DataFrame) -> Figure:
    """The feed-forward branch's backward factor per block: measured (markers) and predicted
    (lines), one colour per kind, log scale."""
    checks.columns(gains, ["ffn", "layer", "factor_measured", "factor_predicted"], "plot_ffn_gains")
    fig = Figure(figsize=(6.4, 3.6), layout="constrained")
    ax = fig.add_subplot()
    for kind, group in gains.groupby("ffn", sort=False):
        colour = FFN_COLOURS.get(kind, PALETTE["black"])
        ax.plot(group["layer"], group["factor_measured"], "o", color=colour,
                label=f"{FFN_LABELS.get(kind, kind)}: measured")
        ax.plot(group["layer"], group["factor_predicted"], "-", color=colour, linewidth=1.2,
                label=f"{FFN_LABELS.get(kind, kind)}: predicted")
    ax.set_yscale("log")
    ax.set_xlabel("block l")
    ax.set_ylabel("‖J‖_F / √d of the feed-forward branch (log scale)")
    ax.legend(fontsize=8, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.2))
    return fig


def plot_rule_variance(variance: pd.DataFrame) -> Figure:
    """The residual stream's variance (relative to the embeddings') after each block, one line
    per name rule of ``experiments.NAME_RULES``."""
    checks.columns(variance, ["rule", "layer", "variance"], "plot_rule_variance")
    fig = Figure(figsize=(6.4, 3.6), layout="constrained")
    ax = fig.add_subplot()
    for rule, group in variance.groupby("rule", sort=False):
        relative = group["variance"] / group["variance"].iloc[0]
        ax.plot(group["layer"], relative, RULE_STYLES.get(rule, "-"),
                color=RULE_COLOURS.get(rule, PALETTE["black"]), linewidth=2,
                label=RULE_LABELS.get(rule, rule))
    ax.set_xlabel("block (0 = embeddings)")
    ax.set_ylabel("stream variance / embeddings' variance")
    ax.legend(loc="upper left")
    return fig


SETTING_COLOURS = {"Adam, no warm-up": PALETTE["vermillion"], "Adam, warm-up 50": PALETTE["blue"],
                   "Adam, warm-up 100": PALETTE["sky"], "RAdam, no warm-up": PALETTE["green"]}


def setting_name(optimizer: str, warmup: int) -> str:
    """How the chapter names an optimiser and warm-up: "Adam, warm-up 50", "RAdam, no warm-up",
    the names the study's warm-up comparison gives its arms."""
    return _arm_name(optimizer, int(warmup))


def explorable_stability(curves: pd.DataFrame, sensitivity: pd.DataFrame):
    """The stability study as an explorable: for the variant the control chooses, the final
    loss against the learning rate of each optimiser and warm-up setting (mean over seeds, band
    from the lowest to the highest seed), with each setting's LR sensitivity written above.
    ``curves`` and ``sensitivity`` are ``stability.loss_vs_lr`` and ``stability.lr_sensitivity``."""
    import altair as alt

    from ...explorables import choice, explorable, readout, rounded, title

    checks.columns(curves.reset_index(), ["variant", "optimizer", "warmup", "lr", "mean", "low",
                                          "high"], "explorable_stability")
    points = [{"v": v, "s": setting_name(o, w), "lr": float(lr),
               **dict(zip("mab", rounded([r["mean"], r["low"], r["high"]], 3)))}
              for (v, o, w, lr), r in curves.iterrows()]
    short = {"Adam, no warm-up": "none", "RAdam, no warm-up": "RAdam"}
    summary = [{"v": v, "t": f"{short.get(setting_name(o, w), setting_name(o, w).removeprefix('Adam, '))} "
                             f"{r['mean']:.2f}"}
               for (v, o, w), r in sensitivity.iterrows()]
    variants = list(dict.fromkeys(p["v"] for p in points))
    settings = [s for s in SETTING_COLOURS if any(p["s"] == s for p in points)]
    control = choice("st_variant", "variant", {v: v for v in variants}, variants[0])
    colour = alt.Color("s:N", title="optimiser and warm-up", sort=settings,
                       scale=alt.Scale(domain=settings,
                                       range=[SETTING_COLOURS[s] for s in settings]),
                       legend=alt.Legend(orient="bottom", columns=2))
    x = alt.X("lr:Q", title="learning rate (log scale)", scale=alt.Scale(type="log"))
    chosen = alt.Chart(alt.Data(name="points")).transform_filter("datum.v == st_variant")
    band = chosen.mark_area(opacity=0.15).encode(x=x, y=alt.Y("a:Q"), y2="b:Q", color=colour)
    lines = chosen.mark_line(point=True).encode(
        x=x, y=alt.Y("m:Q", title="final training loss (nats per output symbol)"), color=colour)
    text = readout(
        alt.Chart(alt.Data(name="sensitivity")).transform_filter("datum.v == st_variant")
        .transform_aggregate(rows="values(datum)"),
        "'LR sensitivity (mean over seeds)\\n' + join(pluck(datum.rows, 't'), '; ')")
    chart = alt.layer(band, lines, text).properties(
        width=480, height=260, title=title("Final loss against learning rate")).add_params(control)
    return explorable(
        chart, "after-gpt2-stability", datasets={"points": points, "sensitivity": summary},
        alt=("Line chart of the final training loss against the learning rate, on a log scale "
             "from 0.0003 to 0.3, for the variant (Post-LN, Pre-LN, DeepNorm or ReZero) chosen "
             "with the control below it: one line per optimiser and warm-up setting, the mean "
             "over seeds with a band from the lowest to the highest seed; each setting's LR "
             "sensitivity is written above the chart."))


def ffn_table(paired: dict[int, pd.DataFrame]) -> pd.DataFrame:
    """The feed-forward study as text: per kind and per length t (``{t: studies.ffn_paired(...)}``),
    the mean training loss, the paired difference from the reference with its 95 % interval, and
    the seeds where the kind ended lower."""
    columns = {}
    for t, table in paired.items():
        checks.columns(table, ["mean", "difference", "low", "high", "wins", "n", "reference"],
                       "ffn_table")
        reference = table.index[table["reference"]]
        columns[f"after {t} steps: mean"] = [f"{v:.3f}" for v in table["mean"]]
        columns[f"after {t} steps: difference (95 % interval)"] = [
            "—" if kind in reference else f"{r.difference:+.3f} ({r.low:+.3f} to {r.high:+.3f})"
            for kind, r in table.iterrows()]
        columns[f"after {t} steps: lower in"] = [
            "—" if kind in reference else f"{r.wins} of {r.n}" for kind, r in table.iterrows()]
    first = next(iter(paired.values()))
    return pd.DataFrame(columns, index=pd.Index([FFN_LABELS.get(k, k) for k in first.index],
                                                name="feed-forward"))
