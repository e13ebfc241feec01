"""Sphinx extension: a chapter whose cell raises fails the build with a message naming the cell.

With ``execution.raise_on_error`` myst-nb stops the build with ``ExecutionError: <chapter path>``
chained to nbclient's error, and in a parallel build only that first line crosses from the
worker process: the reader learns which chapter failed, not which claim. Here the error is raised
again as ``ExecutionError: <path>:<line>: <exception type>: <message>``, where ``line`` is the
failing cell's line in the chapter's source (myst-nb's own source map), so a failed assertion in
a hidden cell names the claim it checks. The chained nbclient traceback is dropped (``from
None``); the cell's full traceback is still written to the log by myst-nb when
``execution_show_tb`` is on.
"""

from __future__ import annotations

import functools

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


def _naming_the_cell(start_client):
    @functools.wraps(start_client)
    def start(self):
        try:
            return start_client(self)
        except ExecutionError as error:
            index = failing_cell(self.notebook)
            where = f"{self.path}:{self.cell_line(index)}" if index is not None else str(self.path)
            raise ExecutionError(f"{where}: {describe(error.__cause__)}") from None

    start.names_the_cell = True
    return start


def setup(app: Sphinx) -> dict:
    if not getattr(NotebookClientCache.start_client, "names_the_cell", False):
        NotebookClientCache.start_client = _naming_the_cell(NotebookClientCache.start_client)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
