"""Sphinx extension: a chapter whose cell raises fails the build with a message naming the cell.

With ``execution.raise_on_error`` myst-nb stops the build with ``ExecutionError: <chapter path>``
chained to nbclient's error, and in a parallel build only that first line crosses from the
worker process: the reader learns which chapter failed, not which claim. Here the error is raised
again as ``ExecutionError: <path>:<line>: <exception type>: <message>``, where ``line`` is the
line of the chapter's source that raised (the failing cell's fence, from myst-nb's own source
map, plus the line IPython's traceback names inside the cell), and an exception without a message
(a bare ``assert``) is followed by that source line, so a failed claim names itself. The chained nbclient traceback is dropped (``from
None``); the cell's full traceback is still written to the log by myst-nb when
``execution_show_tb`` is on.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

from myst_nb.core.execute import ExecutionError
from myst_nb.core.execute.cache import NotebookClientCache
from sphinx.application import Sphinx


def failing_cell(notebook) -> int | None:
    """The index of the first cell whose outputs hold an error, None if there is none."""
    for index, cell in enumerate(notebook.cells):
        if any(output.get("output_type") == "error" for output in cell.get("outputs", [])):
            return index
    return None


def describe(cause: BaseException | None) -> str:
    """``"<type>: <message>"`` of the exception a cell raised (nbclient keeps both)."""
    if cause is None:
        return "the notebook failed"
    ename, evalue = getattr(cause, "ename", None), getattr(cause, "evalue", None)
    if ename:
        return f"{ename}: {evalue}" if evalue else ename
    return f"{type(cause).__name__}: {str(cause).strip().splitlines()[0] if str(cause).strip() else ''}"


ANSI = re.compile(r"\x1b\[[0-9;]*m")
CELL_LINE = re.compile(r"(?:Cell In\s*\[\d*\]|<ipython-input-[^>]*>), line (\d+)")


def line_in_cell(cause: BaseException | None) -> int | None:
    """The 1-based line of the cell that raised, from IPython's traceback (its last frame in
    the cell), None when the traceback does not say."""
    text = ANSI.sub("", str(getattr(cause, "traceback", "") or ""))
    found = CELL_LINE.findall(text)
    return int(found[-1]) if found else None


def source_line(source: Path, fence: int, offset: int) -> int:
    """The line of ``source`` holding line ``offset`` of the code cell whose fence is on line
    ``fence`` (1-based): past the fence and the cell's options (``:key: value`` lines and the
    blank line after them, or a ``---`` YAML block)."""
    lines = source.read_text(encoding="utf-8").splitlines()
    first = fence  # 0-based index of the line after the fence
    if first < len(lines) and lines[first].strip() == "---":
        first = next((i for i in range(first + 1, len(lines)) if lines[i].strip() == "---"),
                     first) + 1
    else:
        while first < len(lines) and re.match(r"^:[\w-]+:", lines[first]):
            first += 1
        if first > fence and first < len(lines) and not lines[first].strip():
            first += 1   # the blank line that ends ":key:" options is not the cell's
    return first + offset


def _naming_the_cell(start_client):
    @functools.wraps(start_client)
    def start(self):
        try:
            return start_client(self)
        except ExecutionError as error:
            cause, index = error.__cause__, failing_cell(self.notebook)
            what = describe(cause)
            if index is None:
                raise ExecutionError(f"{self.path}: {what}") from None
            fence = self.cell_line(index) - 1   # myst-nb maps a cell to the line after its fence
            line, offset = fence, line_in_cell(cause)
            if offset is not None:
                line = source_line(Path(self.path), fence, offset)
                if not getattr(cause, "evalue", ""):   # a bare assert: show the claim itself
                    code = Path(self.path).read_text(encoding="utf-8").splitlines()[line - 1]
                    what += f" ({code.strip()})"
            raise ExecutionError(f"{self.path}:{line}: {what}") from None

    start.names_the_cell = True
    return start


def setup(app: Sphinx) -> dict:
    if not getattr(NotebookClientCache.start_client, "names_the_cell", False):
        NotebookClientCache.start_client = _naming_the_cell(NotebookClientCache.start_client)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
