"""How the book shows a table: a caption, a header cell for every column, and a scroll box.

pandas' own HTML for a DataFrame leaves header cells empty (the corner above the index, and a
second header row that holds only the index's names), which screen readers announce as blank and
accessibility checkers report. It has no caption, and a wide table makes a phone's page scroll
sideways. :func:`table_html` renders the same cells with pandas' number formatting, one header row
whose first cells name the index levels, an optional ``<caption>``, and a wrapper that scrolls on
its own, named for screen readers, and focusable from the keyboard when it overflows (the theme's
script makes ``pst-scrollable-table-container`` boxes focusable exactly then).

:func:`use_book_tables` makes IPython show every DataFrame this way; the caption comes from
``frame.attrs["caption"]``, or use :class:`Table` to give a caption and column formats directly.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import pandas as pd

#: The wrapper the theme's CSS and script treat as a horizontally scrolling table box.
SCROLL_BOX = '<div class="pst-scrollable-table-container book-table" role="region" tabindex="0" ' \
             'aria-label="{label}">'
_THEAD = re.compile(r"<thead>.*?</thead>", re.DOTALL)


def _label(value) -> str:
    if isinstance(value, tuple):
        return " / ".join(str(part) for part in value if str(part))
    return str(value)


def _header(frame: pd.DataFrame, show_index: bool) -> str:
    cells = []
    if show_index:
        names = list(frame.index.names)
        if frame.columns.name is not None:  # a pivot's column variable shares the corner
            last = names[-1]
            names[-1] = f"{last} \\ {frame.columns.name}" if last is not None else frame.columns.name
        for name in names:
            # A nameless index gets a data cell, not an empty header cell.
            cells.append(f'<th scope="col">{html.escape(_label(name))}</th>' if name is not None
                         else "<td></td>")
    cells += [f'<th scope="col">{html.escape(_label(c))}</th>' for c in frame.columns]
    return "<thead>\n    <tr>\n      " + "\n      ".join(cells) + "\n    </tr>\n  </thead>"


def table_html(frame: pd.DataFrame, caption: str | None = None,
               formats: Mapping[str, str] | None = None) -> str:
    """``frame`` as the book shows tables (see the module's docstring).

    ``caption`` defaults to ``frame.attrs["caption"]``; ``formats`` maps column names to format
    strings such as ``"{:.4g}"`` (other columns keep pandas' formatting). An unnamed
    ``RangeIndex`` (row numbers) is left out.
    """
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"table_html needs a pandas DataFrame, got {type(frame).__name__}")
    formats = dict(formats or {})
    unknown = sorted(set(formats) - set(frame.columns))
    if unknown:
        raise ValueError(f"formats names columns the table does not have: {unknown}")
    caption = caption if caption is not None else frame.attrs.get("caption")
    shown = frame.copy()
    for column, spec in formats.items():
        shown[column] = [spec.format(value) for value in frame[column]]
    show_index = not (isinstance(frame.index, pd.RangeIndex) and frame.index.name is None)
    body = shown.to_html(index=show_index, index_names=False, border=1)
    body = _THEAD.sub(lambda _: _header(frame, show_index), body, count=1)
    if caption:
        body = body.replace(">", f">\n  <caption>{html.escape(caption)}</caption>", 1)
    label = caption or "Table: " + ", ".join(_label(c) for c in frame.columns[:4])
    return SCROLL_BOX.format(label=html.escape(label, quote=True)) + "\n" + body + "\n</div>"


@dataclass
class Table:
    """A DataFrame with a caption and column formats, shown by IPython (and ``glue``) as
    :func:`table_html` renders it."""

    frame: pd.DataFrame
    caption: str | None = None
    formats: Mapping[str, str] = field(default_factory=dict)

    def _repr_html_(self) -> str:
        return table_html(self.frame, self.caption, self.formats)

    def __repr__(self) -> str:  # plain-text renderings: the caption, then pandas' own text
        return f"{self.caption}\n{self.frame!r}" if self.caption else repr(self.frame)


def use_book_tables() -> None:
    """Inside IPython, show every DataFrame with :func:`table_html`; elsewhere do nothing."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is not None:
        shell.display_formatter.formatters["text/html"].for_type(pd.DataFrame, table_html)
