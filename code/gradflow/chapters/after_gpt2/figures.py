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


def explorable_map(frame: pd.DataFrame):
    """The stability map as an explorable: the training loss of each learning rate against
    the step, for the variant and warm-up setting the controls choose, with the final losses
    written above."""
    import altair as alt

    from ...explorables import choice, explorable, readout, rounded, title, toggle

    checks.columns(frame, ["variant", "lr", "warmup", "losses", "final_loss"], "explorable_map")
    rows = []
    for _, row in frame.iterrows():
        rows.append({"v": row["variant"], "w": bool(row["warmup"]), "lr": f"{row['lr']:g}",
                     "f": rounded([row["final_loss"]], 3)[0],
                     "l": rounded(row["losses"], 3)})
    variants = list(dict.fromkeys(frame["variant"]))
    controls = [choice("m_variant", "variant", {v: v for v in variants}, variants[0]),
                toggle("m_warmup", "warm-up", False)]
    chosen = alt.Chart(alt.Data(name="runs")).transform_filter(
        "datum.v == m_variant && datum.w == m_warmup")
    lrs = list(dict.fromkeys(f"{lr:g}" for lr in frame["lr"]))
    colours = [PALETTE["blue"], PALETTE["vermillion"], PALETTE["green"], PALETTE["orange"]]
    lines = (chosen.transform_flatten(["l"], as_=["loss"])
             .transform_window(step="row_number()", groupby=["lr"])
             .mark_line(point=False)
             .encode(x=alt.X("step:Q", title="training step"),
                     y=alt.Y("loss:Q", title="training loss (nats per output symbol)",
                             scale=alt.Scale(zero=False)),
                     color=alt.Color("lr:N", title="learning rate", sort=lrs,
                                     scale=alt.Scale(domain=lrs, range=colours[: len(lrs)]),
                                     legend=alt.Legend(orient="bottom"))))
    text = readout(
        chosen.transform_aggregate(text="values(datum)")
        .transform_calculate(label="join(pluck(datum.text, 'lr'), ', ')"),
        "'final loss, mean of the last 5 steps, at lr\\n' + join(pluck(datum.text, 'lr'), ', ') "
        "+ ': ' + join(pluck(datum.text, 'f'), ', ')")
    chart = alt.layer(lines, text).properties(
        width=480, height=260, title=title("Training loss of a 12-block stack")).add_params(*controls)
    return explorable(
        chart, "after-gpt2-stability", datasets={"runs": rows},
        alt=("Line chart of training loss against step for three learning rates, for the "
             "variant (Post-LN, Pre-LN, DeepNorm or ReZero) and warm-up setting chosen with the "
             "controls below it; the final losses are written above the chart."))


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
