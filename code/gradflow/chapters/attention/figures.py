"""The figures of the chapter "Attention's own gradients" (``book/attention.md``).

Each function takes the data a function of ``gradflow.chapters.attention`` returned and gives
back a ``matplotlib.figure.Figure`` not registered with pyplot (or, for the explorable, a
``gradflow.explorables.Explorable``). Colours come from the book's colour-blind-safe palette.
"""

from __future__ import annotations

import math

import pandas as pd
from matplotlib.figure import Figure

from ... import checks
from ...plotting import PALETTE

ARM_COLOURS = {"GPT-2 attention": PALETTE["vermillion"], "QK-norm": PALETTE["blue"],
               "QK-norm, no 1/sqrt(d_k)": PALETTE["green"]}
ARM_LABELS = {"GPT-2 attention": "GPT-2 attention", "QK-norm": "QK-norm",
              "QK-norm, no 1/sqrt(d_k)": "QK-norm, no 1/√d_k"}
LR_COLOURS = (PALETTE["sky"], PALETTE["blue"], PALETTE["green"], PALETTE["orange"],
              PALETTE["vermillion"], PALETTE["purple"], PALETTE["black"])


def plot_jacobian(frame: pd.DataFrame, uniform: float) -> Figure:
    """The softmax Jacobian's Frobenius norm against the scale of the logits: the closed form
    (line) and autograd (markers), with the uniform row's value ``uniform`` dashed, and the
    entropy on a second panel."""
    checks.columns(frame, ["scale", "measured", "predicted", "entropy"], "plot_jacobian")
    fig = Figure(figsize=(8, 3.2), layout="constrained")
    left, right = fig.subplots(1, 2)
    x = frame["scale"].to_numpy(float)
    left.plot(x, frame["predicted"], color=PALETTE["blue"], label="closed form from p")
    left.plot(x, frame["measured"], "o", color=PALETTE["vermillion"], mfc="none",
              label="autograd")
    left.axhline(uniform, ls="--", color=PALETTE["black"], lw=0.8, label="uniform row √(T−1)/T")
    left.set(xlabel="scale s of the logits z = s·u", ylabel="mean ‖diag(p) − ppᵀ‖_F",
             title="What the softmax passes back")
    left.legend(fontsize=8)
    right.plot(x, frame["entropy"], color=PALETTE["green"], marker="s")
    right.set(xlabel="scale s of the logits z = s·u", ylabel="mean entropy (nats)",
              title="How spread the row is", ylim=(0, None))
    return fig


def plot_token_axis(frame: pd.DataFrame) -> Figure:
    """The gradient from the last output to the first input against T, log-log: a tanh RNN and
    one attention layer, with a 1/T guide through the attention's first point."""
    checks.columns(frame, ["T", "rnn", "attention"], "plot_token_axis")
    fig = Figure(figsize=(6, 3.6), layout="constrained")
    ax = fig.subplots()
    t = frame["T"].to_numpy(float)
    ax.loglog(t, frame["rnn"], "o-", color=PALETTE["vermillion"], label="tanh RNN")
    ax.loglog(t, frame["attention"], "s-", color=PALETTE["blue"], label="one attention layer")
    guide = frame["attention"].iloc[0] * t[0] / t
    ax.loglog(t, guide, ls=":", color=PALETTE["black"], label="∝ 1/T")
    ax.set(xlabel="sequence length T", ylabel="‖∂y_T / ∂x_1‖_F (log scale)",
           title="From the last position back to the first")
    ax.legend(fontsize=8)
    return fig


def plot_growth(curves: pd.DataFrame, lrs, arms=("GPT-2 attention", "QK-norm")) -> Figure:
    """Largest attention logit (top, log scale) and attention entropy (bottom) over training,
    one line per learning rate (mean over seeds), one column per arm."""
    checks.columns(curves, ["arm", "lr", "seed", "step", "max_logit", "entropy"], "plot_growth")
    fig = Figure(figsize=(8, 5.4), layout="constrained")
    axes = fig.subplots(2, len(arms), sharex=True, sharey="row", squeeze=False)
    mean = curves.groupby(["arm", "lr", "step"])[["max_logit", "entropy"]].mean()
    for j, arm in enumerate(arms):
        for i, lr in enumerate(lrs):
            part = mean.loc[(arm, lr)]
            style = {"color": LR_COLOURS[i % len(LR_COLOURS)], "label": f"lr {lr:g}"}
            axes[0, j].semilogy(part.index, part["max_logit"], **style)
            axes[1, j].plot(part.index, part["entropy"], **style)
        axes[0, j].set_title(ARM_LABELS[arm])
        axes[1, j].set_xlabel("training step")
    axes[0, 0].set_ylabel("largest |logit| (log scale)")
    axes[1, 0].set_ylabel("mean attention entropy (nats)")
    axes[0, -1].legend(fontsize=8)
    return fig


def plot_loss_vs_lr(table: pd.DataFrame) -> Figure:
    """Final loss against learning rate for each arm: the mean over seeds and a band from the
    smallest to the largest seed."""
    checks.columns(table, ["mean", "low", "high"], "plot_loss_vs_lr")
    fig = Figure(figsize=(6, 3.6), layout="constrained")
    ax = fig.subplots()
    for arm, part in table.groupby(level="arm", sort=False):
        part = part.droplevel("arm").sort_index()
        lr = part.index.to_numpy(float)
        ax.plot(lr, part["mean"], "o-", color=ARM_COLOURS[arm], label=ARM_LABELS[arm])
        ax.fill_between(lr, part["low"], part["high"], color=ARM_COLOURS[arm], alpha=0.2, lw=0)
    ax.set_xscale("log")
    ax.set(xlabel="learning rate (log scale)", ylabel="final training loss",
           title="Final loss against learning rate")
    ax.legend(fontsize=8)
    return fig


def explorable_saturation(sweep: pd.DataFrame, *, start: tuple[int, float] = (64, 1.0)):
    """The chapter's explorable: the attention entropy and the softmax's gradient factor
    ||diag(p) - pp^T||_F against the head size d_k, with and without 1/sqrt(d_k), for the
    standard deviation of the entries of q and k that a slider chooses; a second slider picks
    the d_k whose values are written above. Returns a ``gradflow.explorables.Explorable``."""
    import altair as alt

    from ...explorables import explorable, matches, readout, rounded, slider, title

    checks.columns(sweep, ["head_size", "std", "scaled", "entropy", "grad"], "explorable")
    rows = [{"lg": round(math.log2(r.head_size)), "d": int(r.head_size), "s": float(r.std),
             "sc": "with 1/√d_k" if r.scaled else "without",
             "e": rounded([r.entropy], 4)[0], "g": rounded([r.grad], 4)[0]}
            for r in sweep.itertuples()]
    logs = sorted({row["lg"] for row in rows})
    stds = sorted({row["s"] for row in rows})
    controls = [slider("a_logdk", "log2 of the head size d_k", logs, round(math.log2(start[0]))),
                slider("a_std", "std of the entries of q and k", stds, start[1])]
    base = alt.Chart(alt.Data(name="saturation")).transform_filter(matches("s", "a_std"))
    colour = alt.Color("sc:N", title=None, legend=alt.Legend(orient="bottom"),
                       scale=alt.Scale(domain=["with 1/√d_k", "without"],
                                       range=[PALETTE["blue"], PALETTE["vermillion"]]))
    x = alt.X("d:Q", scale=alt.Scale(type="log", base=2), title="head size d_k (log scale)")
    chosen = base.transform_filter(matches("lg", "a_logdk"))

    def view(field: str, axis: str, heading: str, text: str):
        lines = base.mark_line(point=True).encode(x=x, y=alt.Y(f"{field}:Q", title=axis),
                                                  color=colour)
        dots = chosen.mark_point(size=120, filled=False, color=PALETTE["black"]).encode(
            x=x, y=f"{field}:Q")
        pair = chosen.transform_pivot("sc", value=field, groupby=["d", "s"])
        words = readout(pair, text)
        return alt.layer(lines, dots, words).properties(width=230, height=220,
                                                        title=title(heading))

    entropy = view("e", "mean attention entropy (nats)", "Attention entropy",
                   "'d_k = ' + datum.d + ', std ' + datum.s + ': entropy '"
                   " + format(datum['with 1/√d_k'], '.3~g') + '\\nwith 1/√d_k, '"
                   " + format(datum.without, '.3~g') + ' without'")
    grad = view("g", "mean ‖diag(p) − ppᵀ‖_F", "Gradient factor to the scores",
                "'gradient factor ' + format(datum['with 1/√d_k'], '.3~g')"
                " + '\\nwith 1/√d_k, ' + format(datum.without, '.3~g') + ' without'")
    chart = alt.hconcat(entropy, grad).add_params(*controls)
    return explorable(
        chart, "attention-saturation", datasets={"saturation": rows},
        alt=("Two charts against the head size d_k on a log scale, each with two lines, with and "
             "without the division by the square root of d_k: left, the mean entropy of "
             "attention rows over 16 keys; right, the mean Frobenius norm of the softmax's "
             "Jacobian, the factor by which a gradient reaches the scores. A slider sets the "
             "standard deviation of the entries of q and k, another picks the d_k whose values "
             "are written above the charts. Without the division both fall as d_k grows; with "
             "it they stay level."))


__all__ = ["explorable_saturation", "plot_growth", "plot_jacobian", "plot_loss_vs_lr",
           "plot_token_axis"]
