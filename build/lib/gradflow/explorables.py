"""Explorable figures: a chart whose controls redraw it in the page, with no kernel.

A chapter computes a sweep over a parameter grid at build time, ships the results with the page,
and lets the reader's browser redraw them. The chart is a Vega-Lite specification (built with
Altair); its controls are Vega-Lite parameters bound to form elements (a slider, radio buttons, a
checkbox, a drop-down), which the browser makes keyboard-operable and labels with the binding's
``name``. ``explorable`` checks the specification and renders its default setting to a static SVG
with ``vl_convert``, the image shown where JavaScript is off, in print and in the reader
notebooks. The page's copy of Vega, Vega-Lite and vega-embed is served from the site itself
(``_ext/explorables.py``); nothing is loaded from another host.

A chapter glues the result like any figure::

    glue("explorable_gelu", explorable(chart, "gelu-constants", alt="..."), display=False)

and places it with ``{glue:figure}``, which numbers and captions it.
"""

from __future__ import annotations

import base64
import html
import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

#: The Vega-Lite version the specifications target and the static images are rendered with.
VEGA_LITE_VERSION = "6.4"
#: Names become element ids (``explorable-<name>``) and image file names.
NAME = re.compile(r"^[a-z][a-z0-9-]*$")
#: What a binding may be: the form elements Vega renders (and labels with the binding's name).
INPUTS = ("range", "radio", "checkbox", "select")


def rounded(values: Iterable[float], digits: int = 4) -> list[float]:
    """``values`` as floats with ``digits`` significant digits: the data a page ships is text,
    and a fourth digit is finer than any chart shows. Non-finite values raise a ValueError (JSON
    has no NaN)."""
    out = []
    for value in values:
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"explorable data must be finite numbers, got {value!r}")
        out.append(float(f"{value:.{digits}g}"))
    return out


def deltas(values: Iterable[float], decimals: int = 2) -> list[int]:
    """``values`` rounded to ``decimals`` decimals, as integers in units of 10^-decimals: the
    first, then each one's difference from the one before. A smooth curve's differences are
    short numbers, so the page ships fewer bytes; the chart restores the values exactly with a
    running sum (``window`` ``sum``, frame [null, 0]) divided by 10^decimals."""
    steps = [round(float(v) * 10 ** decimals) for v in values]
    return [b - a for a, b in zip([0, *steps], steps)]


def running_sums(chart: Any, fields: dict[str, str], order: str, decimals: int = 2):
    """Undo :func:`deltas` in the chart: for each ``new: field`` of ``fields``, a field ``new``
    holding the running sum of ``field`` over the rows in ``order``, divided by 10^decimals."""
    import altair as alt

    sums = {f"{new}_sum": f"sum({field})" for new, field in fields.items()}
    values = {new: f"datum['{new}_sum'] / {10 ** decimals}" for new in fields}
    return (chart.transform_window(**sums, sort=[alt.SortField(order)], frame=[None, 0])
            .transform_calculate(**values))


def _walk(node: Any, path: str = "spec"):
    """Every (path, dict) in a JSON-like tree."""
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            yield from _walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk(value, f"{path}[{i}]")


def check_spec(spec: dict) -> dict:
    """The checks a page's specification must pass; returns ``spec``.

    Every parameter bound to a control has a visible label (``bind.name``) and one of the inputs
    in ``INPUTS``; no data is loaded from a URL (the page must work offline and stay the same
    from build to build); the specification names no schema URL and holds only JSON values.
    """
    if not isinstance(spec, dict):
        raise TypeError(f"an explorable needs a Vega-Lite specification (a dict), got {type(spec).__name__}")
    if "$schema" in spec:
        raise ValueError("remove '$schema' from the specification: the page names no remote URL")
    bound = 0
    for path, node in _walk(spec):
        data = node.get("data")
        if isinstance(data, dict) and "url" in data:
            raise ValueError(f"{path}.data loads {data['url']!r}: an explorable ships its data inline")
        bind = node.get("bind")
        if isinstance(bind, dict) and "input" in bind:
            bound += 1
            if bind["input"] not in INPUTS:
                raise ValueError(f"{path}.bind: input must be one of {INPUTS}, got {bind['input']!r}")
            if not str(bind.get("name", "")).strip():
                raise ValueError(f"{path}.bind has no 'name': every control needs a visible label")
    if not bound:
        raise ValueError("the specification binds no parameter to a control: nothing to explore")
    json.dumps(spec, allow_nan=False)   # raises on NaN, infinities and non-JSON values
    return spec


def grid_step(values: Iterable[float], name: str = "values") -> tuple[float, float, float]:
    """(first, last, step) of an evenly spaced, increasing grid: what a slider needs to step
    through exactly these values. A ValueError names the grid when it is not one."""
    grid = [float(v) for v in values]
    if len(grid) < 2:
        raise ValueError(f"{name} needs at least two values for a slider, got {grid!r}")
    step = (grid[-1] - grid[0]) / (len(grid) - 1)
    if not step > 0 or any(abs(b - a - step) > 1e-9 * max(1.0, abs(step))
                           for a, b in pairwise(grid)):
        raise ValueError(f"{name} must be evenly spaced and increasing for a slider, got {grid!r}")
    return grid[0], grid[-1], round(step, 12)


def slider(name: str, label: str, values: Iterable[float], value: float):
    """An Altair parameter bound to a slider that steps through ``values`` (evenly spaced),
    starting at ``value`` (one of them), labelled ``label``."""
    import altair as alt

    first, last, step = grid_step(values, name)
    if not any(abs(float(value) - v) < 1e-9 for v in values):
        raise ValueError(f"{name}: the starting value {value!r} is not one of the slider's values")
    return alt.param(name=name, value=value,
                     bind=alt.binding_range(min=first, max=last, step=step, name=label))


def choice(name: str, label: str, options: dict[str, str], value: str, input: str = "radio"):
    """An Altair parameter bound to radio buttons (or a drop-down, ``input="select"``):
    ``options`` maps each value to the label the reader sees."""
    import altair as alt

    if value not in options:
        raise ValueError(f"{name}: the starting value {value!r} is not one of {list(options)}")
    binding = alt.binding_radio if input == "radio" else alt.binding_select
    return alt.param(name=name, value=value, bind=binding(
        options=list(options), labels=list(options.values()), name=label))


def toggle(name: str, label: str, value: bool):
    """An Altair parameter bound to a checkbox."""
    import altair as alt

    return alt.param(name=name, value=bool(value), bind=alt.binding_checkbox(name=label))


def matches(field: str, param: str) -> str:
    """A filter expression: the row whose number ``field`` is the parameter's value (a slider's
    value is computed in the browser, so equality is up to a tolerance)."""
    return f"abs(datum['{field}'] - {param}) < 1e-9 * max(1, abs({param}))"


def readout(chart: Any, label: str):
    """The text above a view that states the chosen setting's values: ``chart`` (an Altair chart
    already filtered to the setting's row) with the Vega expression ``label``; a ``\\n`` in
    the text starts a second line, so the readout also fits a phone's screen; screen readers get
    the same text as the mark's label. Give the view a ``title`` made by :func:`title`, which
    leaves room for two lines."""
    return (chart.transform_calculate(label=label)
            .mark_text(align="left", baseline="top", dy=-34, lineBreak="\n", aria=True)
            .encode(x={"value": 0}, y={"value": 0}, text="label:N", description="label:N"))


def title(text: str):
    """A view's title, set high enough above the view for a two-line :func:`readout`."""
    import altair as alt

    return alt.Title(text, offset=38)


#: The charts' look: the book's text size, no border around views.
CONFIG = {
    "view": {"stroke": None},
    "axis": {"labelFontSize": 11, "titleFontSize": 12, "titleFontWeight": "normal"},
    "title": {"fontSize": 13, "fontWeight": "normal", "anchor": "start"},
    "text": {"fontSize": 12},
}


def quiet_marks(spec: dict) -> dict:
    """Leave only the text marks (the readouts, the labels) to screen readers, each described by
    its own text: by default Vega labels every mark with its datum's fields ("x: -4; e: -0.0043",
    "p: 1.702; label: published 1.702"), which says less than the text and the alt text. Axes
    keep their own descriptions. A mark that sets ``aria`` or a description itself keeps it.
    Returns ``spec``, changed in place."""
    for path, node in _walk(spec):
        if path.startswith("spec.config"):
            continue
        mark = node.get("mark")
        if isinstance(mark, str):
            mark = node["mark"] = {"type": mark}
        if not isinstance(mark, dict):
            continue
        if mark.get("type") != "text":
            mark.setdefault("aria", False)
        elif "text" in node.get("encoding", {}):
            node["encoding"].setdefault("description", node["encoding"]["text"])
    return spec


@dataclass(frozen=True)
class Explorable:
    """A checked Vega-Lite specification, its name and alt text, and its default setting as SVG.

    In a notebook (and so in a glued output) it offers two representations: ``text/html``, the
    live chart the site shows, and ``image/svg+xml``, the static image a reader notebook shows.
    """

    name: str
    spec: dict = field(repr=False)
    alt: str
    svg: str = field(repr=False)

    def html(self) -> str:
        """The figure's HTML: the static image, the element the chart is drawn into, and the
        specification as JSON (``_ext/static/explorables.js`` draws it). The image is inlined
        here; the build moves it into a file of its own (``_ext/explorables.py``)."""
        spec = json.dumps(self.spec, sort_keys=True, separators=(",", ":"), allow_nan=False)
        spec = spec.replace("</", "<\\/")   # a "</script>" in a string must not end the script
        image = base64.b64encode(self.svg.encode()).decode()
        alt = html.escape(self.alt)
        return (
            f'<div class="gradflow-explorable" id="explorable-{self.name}" '
            f'data-vega-lite="{VEGA_LITE_VERSION}">\n'
            f'<img class="gradflow-explorable-fallback" alt="{alt}" '
            f'src="data:image/svg+xml;base64,{image}">\n'
            f'<div class="gradflow-explorable-chart" role="group" aria-label="{alt}"></div>\n'
            f'<script type="application/json" class="gradflow-explorable-spec">{spec}</script>\n'
            f"</div>"
        )

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict[str, str]:
        return {
            "text/html": self.html(),
            "image/svg+xml": self.svg,
            "text/plain": f"<explorable figure {self.name!r}>",
        }


def explorable(chart: Any, name: str, alt: str, datasets: dict[str, list] | None = None
               ) -> Explorable:
    """An explorable figure from an Altair chart (or a Vega-Lite specification as a dict).

    ``name`` ([a-z][a-z0-9-]*) names the figure's element and image; ``alt`` says what the
    figure shows, for the static image and screen readers (it also becomes the chart's
    ``description``). ``datasets`` are the named data sets the layers read with
    ``alt.Data(name=...)``: each is shipped once however many layers read it. Raises
    ValueError for a bad name, empty alt text, or a specification that fails :func:`check_spec`.
    """
    if not isinstance(name, str) or not NAME.match(name):
        raise ValueError(f"name must match {NAME.pattern} (it becomes an element id), got {name!r}")
    if not isinstance(alt, str) or not alt.strip():
        raise ValueError("alt must be a text that says what the figure shows")
    alt = " ".join(alt.split())
    spec = chart.to_dict() if hasattr(chart, "to_dict") else dict(chart)
    spec.pop("$schema", None)
    if datasets:
        spec.setdefault("datasets", {}).update(datasets)
    spec.setdefault("config", {})
    for key, value in CONFIG.items():
        spec["config"].setdefault(key, value)
    spec["description"] = alt
    check_spec(spec)
    quiet_marks(spec)
    import vl_convert

    svg = vl_convert.vegalite_to_svg(spec, vl_version=VEGA_LITE_VERSION)
    # The image names what it shows wherever it goes (a reader notebook, a file on its own).
    described = html.escape(alt)
    svg, found = re.subn(r"^<svg ([^>]*)>", lambda m: (
        f'<svg role="img" aria-label="{described}" {m[1]}><title>{described}</title>'), svg, count=1)
    if not found:
        raise RuntimeError("vl_convert returned no <svg> element")
    return Explorable(name=name, spec=spec, alt=alt, svg=svg)
