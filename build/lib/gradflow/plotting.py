"""One house style for every figure in the book, and the figures the chapters share.

Plot functions take the data an experiment returned and give back a ``matplotlib.figure.Figure``
that is not registered with pyplot, so a chapter decides whether to show it or to ``glue`` it.
"""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib as mpl
from matplotlib.figure import Figure

#: Okabe & Ito's colour-blind-safe palette (yellow left out: too faint on white for lines).
PALETTE = {
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "green": "#009E73",
    "orange": "#E69F00",
    "sky": "#56B4E9",
    "purple": "#CC79A7",
    "black": "#000000",
}
#: Colours with a fixed meaning across the book.
ROLE_COLOURS = {"plain": PALETTE["vermillion"], "shortcut": PALETTE["blue"]}

STYLE = {
    "axes.prop_cycle": mpl.cycler(color=list(PALETTE.values())),
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "font.size": 10,
    "legend.frameon": False,
    "figure.dpi": 100,
    "savefig.bbox": "tight",
    "svg.fonttype": "path",
    # Fixed ids inside SVG files, so that two builds write byte-identical figures.
    "svg.hashsalt": "gradflow",
}


def use_book_style(figure_format: str = "svg") -> None:
    """Apply the book's matplotlib style and, inside IPython, show figures as ``figure_format``
    and DataFrames as the book's tables (:func:`gradflow.tables.use_book_tables`).

    SVG output carries no creation date, so a rebuilt figure is byte-identical to the last one.
    """
    from .tables import use_book_tables

    mpl.rcParams.update(STYLE)
    use_book_tables()
    try:
        from IPython import get_ipython
        from matplotlib_inline.backend_inline import set_matplotlib_formats
    except ImportError:  # plain Python: nothing to configure for display
        return
    if get_ipython() is not None:
        metadata = {"Date": None} if figure_format == "svg" else {}
        set_matplotlib_formats(figure_format, metadata=metadata)


def as_png(fig: Figure, dpi: int = 96):
    """``fig`` as a PNG image for display or ``glue``, for figures whose SVG would be heavy (many
    points or filled bands). The PNG carries no software or date stamp, so rebuilds are identical."""
    import io

    from IPython.display import Image

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
    return Image(buffer.getvalue(), format="png")


def plot_layer_gradients(
    series: Mapping[str, Mapping[str, float]],
    colours: Mapping[str, str] | None = None,
    title: str | None = None,
) -> Figure:
    """Mean |dL/dW| per layer on a log scale, one line per entry of ``series``.

    Args:
        series: ``{label: {parameter name: value}}``, for instance the results of
            ``layer_gradient_means`` for the plain and the shortcut network.
        colours: an optional colour per label (default: the palette in order).
        title: an optional axes title.
    """
    colours = dict(colours or {})
    fig = Figure(figsize=(6.4, 3.6))
    ax = fig.add_subplot()
    markers = "osD^v"
    for i, (label, values) in enumerate(series.items()):
        layers = list(range(1, len(values) + 1))
        colour = colours.get(label, list(PALETTE.values())[i % len(PALETTE)])
        ax.plot(layers, list(values.values()), marker=markers[i % len(markers)], color=colour,
                label=label)
        ax.set_xticks(layers)
    ax.set_yscale("log")
    ax.set_xlabel("layer (1 = nearest the input)")
    ax.set_ylabel("mean |∂L/∂W| (log scale)")
    if title:
        ax.set_title(title)
    ax.legend()
    return fig
