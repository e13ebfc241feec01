"""The notebook's frame: a reader notebook from an executed chapter (its install cell and note,
converted Markdown, cleaned outputs, stable cell ids, its references), the student edition's cells
without solutions, and the book's bibliography as text."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import nbformat

from .blocks import convert_markdown
from .context import Context, ConversionError
from .outputs import HIDDEN_OUTPUTS, merged_streams, without_addresses

NOTE = """\
> **This notebook is the chapter "{title}" of *{book}*.** It reads like the [web page]({page}):
> every number in its text is the value the book's build computed, inserted when the book was
> built. Running the notebook recomputes those values (each `glue(...)` call in a code cell records
> one); they should agree with the text to the digits it prints. Links go to the book's site.
"""


def cell_id(name: str, index: int) -> str:
    return f"{name}-{index:03d}"


SOLUTION_START = re.compile(r"^:{3,}\{solution-start\}", re.MULTILINE)
SOLUTION_END = re.compile(r"^:{3,}\{solution-end\}[^\n]*\n:{3,}[ \t]*$\n?", re.MULTILINE)


def without_solutions(cells: list) -> list:
    """The cells with every solution left out, from its ``solution-start`` directive to the end
    of its ``solution-end`` directive: the code cells between them, and the Markdown around them
    (the student edition's notebooks, like its pages, keep the exercises only)."""
    kept, inside = [], False
    for cell in cells:
        if cell.cell_type != "markdown":
            if not inside:
                kept.append(cell)
            continue
        text, parts = cell.source, []
        while text:
            marker = (SOLUTION_END if inside else SOLUTION_START).search(text)
            if marker is None:
                if not inside:
                    parts.append(text)
                break
            if inside:
                text = text[marker.end():]
            else:
                parts.append(text[:marker.start()])
                text = text[marker.start():]
            inside = not inside
        source = "".join(parts).strip()
        if source:
            cell = copy.deepcopy(cell)
            cell.source = source
            kept.append(cell)
    if inside:
        raise ConversionError("a solution-start without its solution-end")
    return kept


def reader_notebook(
    context: Context, executed: nbformat.NotebookNode, *, title: str, book: str,
    install: str, solutions: bool = True,
) -> nbformat.NotebookNode:
    """The reader notebook of one chapter, from the notebook myst-nb executed; without the
    exercises' solutions when ``solutions`` is false (the student edition)."""
    name = context.docname.rsplit("/", 1)[-1]
    cells = [
        nbformat.v4.new_code_cell(install),
        nbformat.v4.new_markdown_cell(NOTE.format(title=title, book=book, page=context.url(context.docname))),
    ]
    source_cells = executed.cells if solutions else without_solutions(executed.cells)
    for cell in source_cells:
        cell = copy.deepcopy(cell)
        cell.metadata.pop("execution", None)
        if cell.cell_type == "code":
            hidden = HIDDEN_OUTPUTS.intersection(cell.metadata.get("tags", []))
            # What the page does not show (timings, say) is not the build's to keep: running
            # the cell shows it.
            cell.outputs = [] if hidden else without_addresses(merged_streams(cell.outputs))
            if hidden:
                cell.execution_count = None
        if cell.cell_type == "markdown":
            try:
                source, attachments = convert_markdown(context, cell.source)
            except ConversionError as error:
                raise ConversionError(f"{context.docname}: {error}") from None
            cell.source = source
            if attachments:
                cell.attachments = attachments
        if cell.source.strip() or cell.cell_type == "code":
            cells.append(cell)
    if context.cited:
        cells.append(nbformat.v4.new_markdown_cell(references_cell(context)))
    for index, cell in enumerate(cells):
        cell.id = cell_id(name, index)
    metadata = {k: v for k, v in executed.metadata.items() if k in ("kernelspec", "language_info")}
    notebook = nbformat.v4.new_notebook(cells=cells, metadata=metadata)
    notebook.nbformat, notebook.nbformat_minor = 4, 5
    nbformat.validate(notebook)
    return notebook


def references_cell(context: Context) -> str:
    everything = context.url(context.citations_page)
    lines = ["## References", "",
             f"The works this chapter cites (the book's [bibliography]({everything}) lists them all):",
             ""]
    for key in sorted(context.cited, key=lambda k: context.citations[k]["sort"]):
        lines.append(f"- {context.citations[key]['full']}")
    return "\n".join(lines)


def bibliography(bibfiles: list[Path]) -> dict[str, dict[str, str]]:
    """``{key: {authors, year, full, sort}}`` for every entry of the book's BibTeX files."""
    from pybtex.database import parse_file
    from pybtex.plugin import find_plugin

    style = find_plugin("pybtex.style.formatting", "unsrt")()
    backend = find_plugin("pybtex.backends", "markdown")()
    result = {}
    for bibfile in bibfiles:
        data = parse_file(str(bibfile))
        formatted = {e.key: e for e in style.format_entries(data.entries.values())}
        for key, entry in data.entries.items():
            people = entry.persons.get("author") or entry.persons.get("editor") or []
            last = [" ".join(p.last_names) for p in people]
            if len(last) > 2:
                authors = f"{last[0]} et al."
            elif len(last) == 2:
                authors = f"{last[0]} and {last[1]}"
            else:
                authors = last[0] if last else key
            authors = authors.replace("{", "").replace("}", "")
            year = entry.fields.get("year", "n.d.")
            full = " ".join(formatted[key].text.render(backend).replace("\\", "").split())
            result[key] = {"authors": authors, "year": year, "full": full,
                           "sort": f"{authors} {year} {key}"}
    return result

