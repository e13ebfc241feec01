"""The figures of the chapter "GELU" (``book/gelu.md``). Each function takes data from the
chapter's experiments (``gradflow.chapters.gelu``) and returns a
``matplotlib.figure.Figure`` that is not registered with pyplot.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from ...activations import REGISTRY
from ...plotting import PALETTE
from .approximations import (
    ActivationCurves,
    ApproximationError,
    ConstantSweep,
    Extremum,
    form_functions,
)
from .stochastic import MonteCarloGELU, MonteCarloPath

#: One colour and line style per activation, the same in every figure of the chapter.
_LABELS = {name: spec.label for name, spec in REGISTRY.items()}
CURVE_STYLES = {
    _LABELS["relu"]: {"color": PALETTE["black"], "linestyle": ":", "linewidth": 1.2},
    _LABELS["gelu"]: {"color": PALETTE["blue"], "linestyle": "-", "linewidth": 2.2},
    _LABELS["gelu_tanh"]: {"color": PALETTE["orange"], "linestyle": "--", "linewidth": 1.6},
    _LABELS["silu"]: {"color": PALETTE["vermillion"], "linestyle": "-.", "linewidth": 1.4},
    _LABELS["tanh"]: {"color": PALETTE["green"], "linestyle": "-", "linewidth": 1.0},
    _LABELS["sigmoid"]: {"color": PALETTE["purple"], "linestyle": "-", "linewidth": 1.0},
}
#: Colours of the approximations in the error figure.
FORM_COLOURS = {"tanh": PALETTE["orange"], "sigmoid": PALETTE["purple"],
                "silu": PALETTE["vermillion"]}
#: At most about this many points per line, so that the SVG figures stay small.
MAX_POINTS = 2000
#: The forms' names in the error figure: the GELU forms by their approximation, SiLU by name.
FORM_NAMES = {"tanh": "tanh approximation", "sigmoid": _LABELS["gelu_sigmoid"],
              "silu": _LABELS["silu"]}


def _style(name: str) -> dict:
    return CURVE_STYLES.get(name, {"color": PALETTE["sky"]})


def _plot_curves(ax, frame, names: Sequence[str]) -> None:
    for name in names:
        ax.plot(frame.index, frame[name], label=name, **_style(name))


def plot_activation_values(curves: ActivationCurves, minimum: Extremum) -> Figure:
    """Figure (a): the activations' values, in full and zoomed on GELU's negative dip.

    Args:
        curves: from ``activation_curves``.
        minimum: GELU's minimum (``shape_facts("none").minimum``), marked in the zoom.
    """
    fig = Figure(figsize=(9.6, 3.9), layout="constrained")
    full, zoom = fig.subplots(1, 2)
    names = list(curves.values.columns)
    _plot_curves(full, curves.values, names)
    full.set_ylim(-1.2, 3.0)
    full.set_title("values")
    zoom_frame = curves.values.loc[-3.5:1.0]
    saturating = (_LABELS["tanh"], _LABELS["sigmoid"])
    _plot_curves(zoom, zoom_frame, [n for n in names if n not in saturating])
    zoom.plot([minimum.x], [minimum.value], "o", color=PALETTE["blue"], markersize=6,
              label="GELU's minimum")
    zoom.set_ylim(-0.32, 0.6)
    zoom.set_title("zoom on x < 1: GELU dips below zero")
    for ax in (full, zoom):
        ax.axhline(0, color="grey", linewidth=0.6)
        ax.axvline(0, color="grey", linewidth=0.6)
        ax.set_xlabel("input x (linear scale)")
        ax.set_ylabel("activation f(x) (linear scale)")
    full.legend(loc="upper left", fontsize=8)
    zoom.legend(loc="upper left", fontsize=8)
    return fig


def plot_activation_derivatives(
    curves: ActivationCurves, derivative_max: Extremum, derivative_min: Extremum
) -> Figure:
    """Figure (b): the activations' derivatives, with GELU's largest and smallest slope marked.

    Args:
        curves: from ``activation_curves``.
        derivative_max, derivative_min: the extrema of GELU' (``shape_facts("none")``).
    """
    fig = Figure(figsize=(7.2, 4.2), layout="constrained")
    ax = fig.add_subplot()
    _plot_curves(ax, curves.derivatives, list(curves.derivatives.columns))
    for point, label in ((derivative_max, "GELU′ largest"), (derivative_min, "GELU′ smallest")):
        ax.plot([point.x], [point.value], "o", color=PALETTE["blue"], markersize=6)
        ax.annotate(f"{label}\nx = {point.x:.3f}, f′ = {point.value:.3f}", (point.x, point.value),
                    textcoords="offset points", xytext=(8, 6 if point.value > 0.5 else -26),
                    fontsize=8)
    ax.axhline(1.0, color="grey", linewidth=0.6, linestyle="--")
    ax.axhline(0.0, color="grey", linewidth=0.6)
    ax.set_ylim(-0.3, 1.3)
    ax.set_xlabel("input x (linear scale)")
    ax.set_ylabel("derivative f′(x) (linear scale)")
    ax.legend(loc="upper left", fontsize=8)
    return fig


def plot_approximation_errors(
    errors: Mapping[str, ApproximationError], tail: tuple[float, float] = (-10.0, -0.5)
) -> Figure:
    """Figure (c): signed error of each approximation, and |relative error| in the negative tail.

    Top row: form(x) - GELU(x) for each entry of ``errors``, one panel each (their sizes differ
    too much to share a linear axis), with the largest |error| marked at +-x_max. Bottom:
    |form(x) - GELU(x)| / |GELU(x)| on a log scale for x in ``tail``, all forms together.
    """
    fig = Figure(figsize=(9.6, 6.6), layout="constrained")
    grid = fig.add_gridspec(2, len(errors))
    relative = fig.add_subplot(grid[1, :])
    for i, (form, err) in enumerate(errors.items()):
        colour = FORM_COLOURS.get(form, PALETTE["sky"])
        name = FORM_NAMES.get(form, form)
        signed = fig.add_subplot(grid[0, i])
        inside = np.flatnonzero(np.abs(err.x) <= 6)
        inside = inside[:: max(1, len(inside) // MAX_POINTS)]  # thin the line, keep the shape
        signed.plot(err.x[inside], err.error[inside], color=colour, label=name)
        signed.plot([-err.x_max, err.x_max], [err.error_at_max] * 2, "o", color=colour,
                    markersize=5)
        signed.axhline(0, color="grey", linewidth=0.6)
        signed.ticklabel_format(axis="y", style="sci", scilimits=(-2, 2))
        signed.set_xlabel("input x (linear scale)")
        signed.set_ylabel("form(x) − GELU(x) (linear scale)")
        signed.set_title(f"{name}: signed error\nlargest |error| {err.max_abs_error:.2e} "
                         f"at x = ±{err.x_max:.2f} (dots)", fontsize=9)
        in_tail = np.flatnonzero((err.x >= tail[0]) & (err.x <= tail[1]))
        in_tail = in_tail[:: max(1, len(in_tail) // MAX_POINTS)]
        relative.plot(err.x[in_tail], np.abs(err.relative_error[in_tail]), color=colour,
                      label=name)
    relative.set_yscale("log")
    relative.axhline(1.0, color="grey", linewidth=0.8, linestyle="--", label="100 % error")
    relative.set_xlabel("input x (linear scale)")
    relative.set_ylabel("|error| / |GELU(x)| (log scale)")
    relative.set_title("relative error in the negative tail")
    relative.legend(fontsize=8, loc="upper right")
    return fig


def plot_monte_carlo(estimates: MonteCarloGELU, path: MonteCarloPath) -> Figure:
    """Figure (d): GELU as the average of x·m, m ~ Bernoulli(Φ(x)).

    Left: the Monte Carlo estimates with +-2 standard errors, over the exact curve. Right: the
    running mean at one input as the number of draws grows, with the +-2 standard error band
    around the exact value.
    """
    fig = Figure(figsize=(9.6, 3.9), layout="constrained")
    left, right = fig.subplots(1, 2)
    grid = np.linspace(estimates.x.min(), estimates.x.max(), 400)
    exact_curve = form_functions("none")[0](grid)
    left.plot(grid, exact_curve, color=PALETTE["blue"], label="GELU(x) = x·Φ(x)")
    left.plot(grid, np.maximum(grid, 0), color=PALETTE["black"], linestyle=":", linewidth=1.0,
              label="ReLU(x)")
    left.errorbar(estimates.x, estimates.estimate, yerr=2 * estimates.standard_error, fmt="o",
                  color=PALETTE["vermillion"], markersize=4, capsize=2,
                  label=f"mean of x·m, {estimates.n_samples} draws (±2 SE)")
    left.set_xlabel("input x (linear scale)")
    left.set_ylabel("value (linear scale)")
    left.set_title("estimates at many inputs")
    left.legend(fontsize=8, loc="upper left")
    right.fill_between(path.n, path.exact - 2 * path.standard_error,
                       path.exact + 2 * path.standard_error, color=PALETTE["sky"], alpha=0.35,
                       label="exact ± 2 standard errors")
    right.axhline(path.exact, color=PALETTE["blue"], label=f"GELU({path.x:g}) exact")
    right.plot(path.n, path.running_mean, color=PALETTE["vermillion"], label="running mean of x·m")
    right.set_xscale("log")
    spread = 4 * abs(path.x) * 0.5 / np.sqrt(30)
    right.set_ylim(path.exact - spread, path.exact + spread)
    right.set_xlabel("number of draws n (log scale)")
    right.set_ylabel(f"estimate of GELU({path.x:g}) (linear scale)")
    right.set_title(f"one input, x = {path.x:g}, as n grows")
    right.legend(fontsize=8, loc="lower right")
    return fig


#: The explorable's two rows, one per form: the constant's symbol, its slider's label, the row's
#: title, the name of the published constant in ``gradflow.activations``, and its format.
_SWEEP_ROWS = {
    "sigmoid": ("k", "slope k of x·σ(kx)", "sigmoid form x·σ(kx)", "SIGMOID_SLOPE", ".2f"),
    "tanh": ("c", "cubic coefficient c of the tanh form", "tanh form", "TANH_CUBIC_COEFFICIENT",
             ".3f"),
}


def explorable_constants(sweeps: Sequence[ConstantSweep]):
    """The explorable figure of the approximations' constants: for each sweep (a form), the GELU
    error over x at the slider's constant, and the largest error against the constant with the
    published constant marked. Returns a ``gradflow.explorables.Explorable``."""
    import altair as alt

    from ... import activations as act
    from ...explorables import explorable, matches, readout, rounded, slider, title

    rows, datasets = [], {}
    for sweep in sweeps:
        symbol, label, name, constant_name, form_format = _SWEEP_ROWS[sweep.form]
        published = getattr(act, constant_name)
        colour = FORM_COLOURS[sweep.form]
        constants = sweep.curves.index.to_numpy()
        start = float(constants[np.argmin(np.abs(constants - published))])
        param = f"gelu_{symbol}"
        control = slider(param, label, constants, start)
        # e is even: the page gets x >= 0 and mirrors it, with three digits (finer than a
        # chart shows); the readouts come from ``largest``, with four.
        x = sweep.curves.columns.to_numpy()
        half = x >= 0
        datasets[f"{sweep.form}_curves"] = [
            {"p": float(p), "e": rounded(row[half], 3)}
            for p, row in zip(constants, sweep.curves.to_numpy())]
        curves = alt.Data(name=f"{sweep.form}_curves")
        largest = alt.Data(name=f"{sweep.form}_largest")
        datasets[f"{sweep.form}_largest"] = [
            {"p": float(p), "m": m, "at": at, "s": s} for p, m, at, s in zip(
                constants, rounded(sweep.largest["max_abs_error"]),
                rounded(sweep.largest["at_abs_x"]), rounded(sweep.largest["error_at_max"]))]
        x0, dx = float(x[half][0]), float(x[1] - x[0])
        curve = (
            alt.Chart(curves).transform_filter(matches("p", param)).transform_flatten(["e"])
            .transform_window(i="row_number()")
            .transform_calculate(both=f"[{x0} + (datum.i - 1) * {dx}, -({x0} + (datum.i - 1) * {dx})]")
            .transform_flatten(["both"], as_=["x"])
            .mark_line(color=colour, strokeWidth=2)
            .encode(x=alt.X("x:Q", title="x"), y=alt.Y("e:Q", title="error"),
                    order="x:Q")
        )
        peaks = (
            alt.Chart(largest).transform_filter(matches("p", param))
            .transform_calculate(both="[datum.at, -datum.at]").transform_flatten(["both"])
            .mark_point(color=colour, filled=True, size=50).encode(x="both:Q", y="s:Q")
        )
        text = readout(
            alt.Chart(largest).transform_filter(matches("p", param)),
            f"'{symbol} = ' + format(datum.p, '{form_format}') + ': largest |error| ' "
            f"+ format(datum.m, '.3~g') + '\\nat x = ±' + format(datum.at, '.2f')")
        zero = alt.Chart(alt.Data(values=[{"y": 0}])).mark_rule(color="#999999").encode(y="y:Q")
        left = alt.layer(zero, curve, peaks, text).properties(
            width=300, height=180, title=title(f"Error against the exact GELU, {name}"))
        trade = alt.Chart(largest).mark_line(color=colour).encode(
            x=alt.X("p:Q", title=symbol, scale=alt.Scale(zero=False, nice=False)),
            y=alt.Y("m:Q", title="largest |error|", scale=alt.Scale(zero=False)))
        now = trade.transform_filter(matches("p", param)).mark_point(
            color=colour, filled=True, size=70)
        mark = alt.Chart(alt.Data(values=[{"p": published, "label": f"published {published:g}"}]))
        rule = mark.mark_rule(color="#444444", strokeDash=[4, 3]).encode(x="p:Q")
        marked = mark.mark_text(align="left", baseline="top", dx=3, dy=2, fontSize=11).encode(
            x="p:Q", y=alt.value(0), text="label:N")
        lowest = readout(
            alt.Chart(largest).transform_joinaggregate(lowest="min(m)")
            .transform_filter("datum.m == datum.lowest"),
            f"'lowest on the grid: {symbol} = ' + format(datum.p, '{form_format}') "
            f"+ ',\\nlargest |error| ' + format(datum.m, '.3~g')")
        right = alt.layer(trade, rule, marked, now, lowest).properties(
            width=200, height=180, title=title(f"Largest error against {symbol}"))
        rows.append(alt.hconcat(left, right).add_params(control))
    chart = alt.vconcat(*rows).resolve_scale(x="independent", y="independent")
    return explorable(
        chart, "gelu-constants", datasets=datasets,
        alt=("For each GELU approximation, two charts. Left: its error against the exact GELU for "
             "x from -4 to 4 at the constant a slider sets, with the largest error marked at "
             "plus and minus x and written above. Right: the largest error against the "
             "constant, with the published constant marked by a dashed line and the slider's "
             "constant by a dot."),
    )
