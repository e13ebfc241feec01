"""Sphinx extension: reader notebooks, the chapters as notebooks that read well outside the site.

A chapter's source is a MyST notebook: its prose says `` {glue:text}`first_layer_ratio:.3g` ``,
`` {term}`residual stream` `` and ``:::{admonition}`` where the site shows a number, a link and a
box. Jupyter, Binder, Colab and GitHub show that source as it is. At the end of every HTML build
this extension writes, for every executable chapter, a *reader notebook*: the executed notebook
myst-nb wrote to ``_build/jupyter_execute/`` (code cells and their outputs, unchanged), with its
Markdown made plain Jupyter Markdown:

- a glued value becomes the text the page shows, formatted with the same specification by
  myst-nb's own function, from the glue data of the same execution (``<chapter>.glue.json``); a
  glued table becomes its HTML table, a glued printout a code block, a glued figure the image
  itself (a cell attachment) with its number, caption and a link to it on the site;
- ``{term}`` and ``{ref}`` become links to the site, ``{numref}`` and ``{eq}`` the numbers the
  site prints ("Fig. 8", "(1)"), a numbered equation carries its number (``\\tag``);
  ``{cite:p}`` and ``{cite:t}`` become "(Raschka, 2024)" and "Veit et al. (2016)", and the
  notebook ends with the works it cites;
- admonitions become quotes with a bold title; dropdowns (the solutions), cards and tabs become
  a bold heading followed by their content, always open; label lines disappear.

Two cells come first: one that installs the book's package where ``import gradflow`` fails (Colab)
and does nothing where it works (Binder, a clone), and a note that the numbers in the text are the
build's, which running the notebook recomputes. Cell ids are the chapter's name and the cell's
index, so two builds of the same sources write identical notebooks.

The notebooks replace the executed notebook that the download button offers
(``_build/html/_sources/<chapter>.ipynb``), and ``_build/notebooks/`` receives the tree that
``.github/workflows/publish.yml`` publishes to the ``reader_notebooks_branch`` (``notebooks``):
the notebooks under ``book/``, ``binder/``, the package (``code/``, ``pyproject.toml``) and a
README. The launch buttons open that branch's notebooks in Binder (JupyterLab) and Colab; they
derive from ``repository.url``, so a fork's buttons open the fork's branch.

Anything in a chapter's Markdown this extension does not know how to convert (a new directive or
role) is reported as a warning, which fails the strict build, rather than left for readers to see.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
from sphinx.application import Sphinx
from sphinx.util import logging

logger = logging.getLogger(__name__)

GLUE_PREFIX = "application/papermill.record/"
#: The folder under the build directory that holds the tree published to the notebooks branch.
PUBLISH_FOLDER = "notebooks"
#: What the published tree copies from the repository besides the notebooks.
PUBLISHED_FILES = ("binder", "code", "pyproject.toml")
IGNORED = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc", ".ipynb_checkpoints")
COLAB = "https://colab.research.google.com"

NOTE = """\
> **This notebook is the chapter "{title}" of *{book}*.** It reads like the [web page]({page}):
> every number in its text is the value the book's build computed, inserted when the book was
> built. Running the notebook recomputes those values (each `glue(...)` call in a code cell records
> one); they should agree with the text to the digits it prints. Links go to the book's site.
"""

INSTALL = """\
# Colab, or any Python without the book's package: install it at the commit this notebook was
# built from, with myst-nb, whose glue() records the numbers the text quotes. Where both import
# already (Binder, a clone of the repository, an offline machine), this cell does nothing.
try:
    import gradflow  # noqa: F401
    import myst_nb  # noqa: F401
except ImportError:
    %pip install --quiet "gradflow @ git+{repository}@{ref}" "myst-nb=={myst_nb}"
"""

PUBLISHED_README = """\
# Reader notebooks of "{book}"

This branch is written by `.github/workflows/publish.yml` on every push to `{branch}`: do not edit
it, edit the book's sources on `{branch}` instead. It holds the chapters as plain Jupyter notebooks
(`book/*.ipynb`), with the numbers the book's build computed written into their text, the Binder
configuration (`binder/`) and the package they import (`code/`, `pyproject.toml`). The book's site
opens these notebooks in Binder and Colab from its launch buttons; `pip install -e .` in a clone of
this branch gives a local Python what Binder has.
"""

ROLE = re.compile(r"\{(?P<name>[a-z][\w:+-]*)\}`(?P<content>[^`]*)`")
CODE_SPAN = re.compile(r"(`+)(?:.|\n)*?(?<!`)\1(?!`)")
FENCE_OPEN = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,}|:{3,})(?P<info>.*)$")
DIRECTIVE_INFO = re.compile(r"^\{(?P<name>[^}]+)\}\s*(?P<argument>.*)$")
OPTION = re.compile(r"^:(?P<key>[\w-]+):\s*(?P<value>.*)$")
TARGET = re.compile(r"^\((?P<label>[^)\s]+)\)=\s*$")
MATH_LABEL = re.compile(r"^\$\$\s*\((?P<label>[^)\s]+)\)\s*$")
TITLED = re.compile(r"^(?P<title>.+?)\s*<(?P<target>[^<>]+)>$", re.DOTALL)
ADMONITIONS = {"note", "tip", "hint", "important", "warning", "caution", "attention", "danger",
               "error", "seealso"}


class ConversionError(ValueError):
    """A construct of a chapter's Markdown that has no plain-Markdown form here."""


@dataclass
class Glued:
    """One glued value as the page shows it (in reading order)."""

    key: str
    spec: str
    text: str


@dataclass
class Context:
    """What converting one chapter needs from the build: its glue data and the book's
    cross-reference targets. Every lookup raises ConversionError when a name is unknown."""

    docname: str
    site: str  # the site's base URL, ending in "/"
    glue: dict[str, dict]  # key -> the glue output (its data without the glue prefix)
    labels: dict[str, tuple[str, str, str]] = field(default_factory=dict)  # std domain labels
    anonlabels: dict[str, tuple[str, str]] = field(default_factory=dict)  # labels without a title
    terms: dict[str, tuple[str, str]] = field(default_factory=dict)  # lower-case term -> target
    figure_numbers: dict[str, str] = field(default_factory=dict)  # label -> "8"
    equation_numbers: dict[str, str] = field(default_factory=dict)  # label -> "1"
    citations: dict[str, dict[str, str]] = field(default_factory=dict)  # key -> label parts
    figure_format: str = "Fig. %s"
    exercise_numbers: dict[str, str] = field(default_factory=dict)  # label -> "1.1"
    exercise_format: str = "Exercise %s"
    citations_page: str = "references"  # the page that holds the bibliography
    glued: list[Glued] = field(default_factory=list)
    cited: list[str] = field(default_factory=list)

    def url(self, docname: str, anchor: str = "") -> str:
        return f"{self.site}{docname}.html" + (f"#{anchor}" if anchor else "")

    def glue_data(self, key: str) -> dict[str, Any]:
        if key not in self.glue:
            raise ConversionError(f"no glued value {key!r}")
        return self.glue[key]

    def exercise(self, label: str) -> str:
        if label not in self.exercise_numbers:
            raise ConversionError(f"no numbered exercise {label!r}")
        return self.exercise_format.replace("%s", self.exercise_numbers[label])

    def figure(self, label: str) -> str:
        if label not in self.figure_numbers:
            raise ConversionError(f"no numbered figure {label!r}")
        return self.figure_format.replace("%s", self.figure_numbers[label])


# --- inline roles -------------------------------------------------------------------------------

def _titled(content: str) -> tuple[str | None, str]:
    """``"text <target>"`` -> ("text", "target"); ``"target"`` -> (None, "target")."""
    match = TITLED.match(content.strip())
    if match:
        return " ".join(match["title"].split()), match["target"].strip()
    return None, " ".join(content.split())


def glue_text(context: Context, content: str) -> str:
    from myst_nb.core.variables import format_plain_text

    key, spec = content.rsplit(":", 1) if ":" in content else (content, "")
    data = context.glue_data(key)
    if "text/plain" not in data:
        raise ConversionError(f"glued value {key!r} has no text/plain")
    try:
        text = format_plain_text(data["text/plain"], spec or "s")
    except (TypeError, ValueError) as error:  # myst-nb warns, and so does this extension
        raise ConversionError(f"glued value {key!r} cannot be formatted as {spec!r}: {error}") from None
    context.glued.append(Glued(key, spec, text))
    return text


def convert_role(context: Context, name: str, content: str) -> str:
    if name == "glue:text":
        return glue_text(context, content)
    if name in ("glue", "glue:", "glue:any"):
        data = context.glue_data(content.strip())
        if set(data) != {"text/plain"}:
            raise ConversionError(f"inline glue of {content!r} is not plain text")
        text = format_glued_plain(data["text/plain"])
        context.glued.append(Glued(content.strip(), "", text))
        return text
    if name == "term":
        title, target = _titled(content)
        found = context.terms.get(target.lower())
        if found is None:
            raise ConversionError(f"no glossary term {target!r}")
        return f"[{title or target}]({context.url(*found)})"
    if name == "ref":
        title, target = _titled(content)
        if target in context.labels:
            docname, anchor, section = context.labels[target]
            return f"[{title or section}]({context.url(docname, anchor)})"
        if title and target in context.anonlabels:  # a label above a paragraph, not a title
            return f"[{title}]({context.url(*context.anonlabels[target])})"
        raise ConversionError(f"no label {target!r}")
    if name == "numref":
        title, target = _titled(content)
        if title:
            number = context.figure_numbers.get(target)
            if number is None:
                raise ConversionError(f"no numbered figure {target!r}")
            return title.replace("%s", number).replace("{number}", number)
        return context.figure(target)
    if name == "eq":
        label = content.strip()
        if label not in context.equation_numbers:
            raise ConversionError(f"no numbered equation {label!r}")
        return f"({context.equation_numbers[label]})"
    if name in ("cite", "cite:p", "cite:t", "cite:ps", "cite:ts"):
        keys = [k.strip() for k in content.split(",") if k.strip()]
        for key in keys:
            if key not in context.citations:
                raise ConversionError(f"no bibliography entry {key!r}")
            if key not in context.cited:
                context.cited.append(key)
        parts = [context.citations[k] for k in keys]
        if name.startswith("cite:t"):
            return "; ".join(f"{p['authors']} ({p['year']})" for p in parts)
        return "(" + "; ".join(f"{p['authors']}, {p['year']}" for p in parts) + ")"
    raise ConversionError(f"unknown role {{{name}}}")


def format_glued_plain(text: str) -> str:
    from myst_nb.core.variables import format_plain_text

    return format_plain_text(text, "")


def convert_inline(context: Context, text: str) -> str:
    """Replace every role in ``text``, leaving code spans as they are."""
    out, position = [], 0
    while position < len(text):
        role = ROLE.search(text, position)
        code = CODE_SPAN.search(text, position)
        if role is None and code is None:
            out.append(text[position:])
            break
        if role is not None and (code is None or role.start() <= code.start()):
            out.append(text[position:role.start()])
            out.append(convert_role(context, role["name"], role["content"]))
            position = role.end()
        else:
            out.append(text[position:code.end()])
            position = code.end()
    return "".join(out)


# --- blocks -------------------------------------------------------------------------------------

@dataclass
class Directive:
    name: str
    argument: str
    options: dict[str, str]
    body: list[str]


def _closes(line: str, fence: str) -> bool:
    stripped = line.strip()
    return bool(stripped) and set(stripped) == {fence[0]} and len(stripped) >= len(fence)


def _read_directive(lines: list[str], start: int, fence: str, info: re.Match) -> tuple[Directive, int]:
    """The directive opened at ``lines[start]`` and the index of the line after its closing fence."""
    index, options = start + 1, {}
    while index < len(lines) and (option := OPTION.match(lines[index].strip())):
        options[option["key"]] = option["value"].strip()
        index += 1
    body, nested = [], []  # the fences of directives opened inside this one, innermost last
    while index < len(lines):
        line = lines[index]
        opened = FENCE_OPEN.match(line)
        if not nested and _closes(line, fence):
            return Directive(info["name"].strip(), info["argument"].strip(), options, body), index + 1
        if opened and opened["fence"][0] == fence[0] and opened["info"].strip():
            nested.append(opened["fence"])
        elif nested and _closes(line, nested[-1]):
            nested.pop()
        body.append(line)
        index += 1
    raise ConversionError(f"directive {info['name']!r} is never closed")


def convert_markdown(context: Context, source: str) -> tuple[str, dict[str, dict[str, str]]]:
    """A chapter's MyST Markdown cell as plain Jupyter Markdown, and the cell's attachments."""
    attachments: dict[str, dict[str, str]] = {}
    text = "\n".join(convert_lines(context, source.split("\n"), attachments))
    text = re.sub(r"\n{3,}", "\n\n", text).strip("\n")
    return text, attachments


def convert_lines(context: Context, lines: list[str], attachments: dict) -> list[str]:
    out: list[str] = []
    paragraph: list[str] = []

    def flush() -> None:
        if paragraph:
            out.extend(convert_inline(context, "\n".join(paragraph)).split("\n"))
            paragraph.clear()

    index = 0
    while index < len(lines):
        line = lines[index]
        if TARGET.match(line.strip()):
            flush()
            index += 1
            continue
        if line.strip() == "$$" or (line.strip().startswith("$$") and not line.strip().endswith("$$")):
            flush()
            index = _copy_math(context, lines, index, out)
            continue
        opened = FENCE_OPEN.match(line)
        if opened:
            flush()
            info = DIRECTIVE_INFO.match(opened["info"].strip())
            fence = opened["fence"]
            if info is None:
                if fence[0] == ":":
                    raise ConversionError(f"a colon fence without a directive: {line!r}")
                index = _copy_code(lines, index, fence, out)
                continue
            directive, index = _read_directive(lines, index, fence, info)
            out.append("")
            out.extend(convert_directive(context, directive, attachments))
            out.append("")
            continue
        if not line.strip():
            flush()
            out.append(line)
        else:
            paragraph.append(line)
        index += 1
    flush()
    return out


def _copy_code(lines: list[str], start: int, fence: str, out: list[str]) -> int:
    out.append(lines[start])
    index = start + 1
    while index < len(lines):
        out.append(lines[index])
        if _closes(lines[index], fence) and lines[index].strip()[0] == fence[0]:
            return index + 1
        index += 1
    return index


def _copy_math(context: Context, lines: list[str], start: int, out: list[str]) -> int:
    """Copy a ``$$`` block; a label after its closing ``$$`` becomes a ``\\tag`` inside it."""
    out.append(lines[start])
    index = start + 1
    while index < len(lines):
        line = lines[index]
        label = MATH_LABEL.match(line.strip())
        if label:
            number = context.equation_numbers.get(label["label"])
            if number is None:
                raise ConversionError(f"no numbered equation {label['label']!r}")
            out.append(f"\\tag{{{number}}}")
            out.append("$$")
            return index + 1
        out.append(line)
        if line.strip().endswith("$$"):
            return index + 1
        index += 1
    raise ConversionError("a $$ block is never closed")


def _quote(lines: list[str]) -> list[str]:
    return [f"> {line}".rstrip() for line in lines]


def convert_directive(context: Context, directive: Directive, attachments: dict) -> list[str]:
    name, argument = directive.name, directive.argument
    body = convert_lines(context, directive.body, attachments)
    if name == "admonition" or name in ADMONITIONS:
        title = convert_inline(context, argument) if name == "admonition" else name.capitalize()
        return _quote([f"**{title}**", "", *_trim(body)])
    if name in ("dropdown", "grid-item-card", "tab-item", "card"):
        title = convert_inline(context, argument)
        return ([f"**{title}**", ""] if title else []) + _trim(body)
    if name in ("grid", "tab-set"):
        return _trim(body)
    if name == "exercise":  # sphinx-exercise: numbered like the site, "Exercise 1.1"
        title = context.exercise(directive.options.get("label", ""))
        if argument:
            title += f" ({convert_inline(context, argument)})"
        return _quote([f"**{title}**", "", *_trim(body)])
    if name in ("solution", "solution-start"):  # a solution's cells follow until solution-end
        heading = f"**Solution to {context.exercise(argument)}**"
        return [heading, "", *_trim(body)] if name == "solution" else [heading]
    if name == "solution-end":
        return []
    if name in ("glue", "glue:", "glue:any"):
        return glued_block(context, argument)
    if name == "glue:figure":
        return glued_figure(context, directive, body, attachments)
    raise ConversionError(f"unknown directive {{{name}}}")


def _trim(lines: list[str]) -> list[str]:
    while lines and not lines[0].strip():
        lines = lines[1:]
    while lines and not lines[-1].strip():
        lines = lines[:-1]
    return lines


def glued_block(context: Context, key: str) -> list[str]:
    data = context.glue_data(key)
    if "text/html" in data:
        html = re.sub(r"<style[^>]*>.*?</style>\s*", "", data["text/html"], flags=re.DOTALL)
        return [line.rstrip() for line in html.strip().split("\n") if line.strip()]
    if "text/plain" in data:
        return ["```", *data["text/plain"].rstrip("\n").split("\n"), "```"]
    raise ConversionError(f"glued output {key!r} has neither HTML nor text")


IMAGE_TYPES = {"image/svg+xml": "svg", "image/png": "png", "image/jpeg": "jpg"}


def _svg_title(image: str | list[str]) -> str:
    """The ``<title>`` an SVG image gives itself (an explorable figure's static image does), or
    an empty string."""
    import html

    match = re.search(r"<title>(.*?)</title>", _joined(image), re.DOTALL)
    return html.unescape(match[1]) if match else ""


def glued_figure(context: Context, directive: Directive, caption: list[str], attachments: dict):
    key = directive.argument
    data = context.glue_data(key)
    kind = next((k for k in IMAGE_TYPES if k in data), None)
    if kind is None:
        raise ConversionError(f"glued figure {key!r} has no image")
    filename = f"{key}.{IMAGE_TYPES[kind]}"
    image = data[kind]
    attachments[filename] = {kind: _joined(image)}
    alt = directive.options.get("alt") or _svg_title(image if kind == "image/svg+xml" else "") or key
    alt = " ".join(alt.replace("[", "(").replace("]", ")").split())
    label = directive.options.get("name")
    lines = [f"![{alt}](attachment:{filename})", ""]
    caption = _trim(caption)
    if label:
        number = context.figure(label)
        link = f"[{number}]({context.url(context.docname, label)})"
        caption = [f"**{link}.** " + (caption[0] if caption else ""), *caption[1:]]
    return lines + caption


# --- whole notebooks ----------------------------------------------------------------------------

#: Tags with which a page shows none of a cell's outputs.
HIDDEN_OUTPUTS = {"remove-output", "remove-cell"}

#: Python's default repr, which names a memory address: different in every run.
DEFAULT_REPR = re.compile(r"^<[\w.]+ (object )?at 0x[0-9a-f]+>$")


def _joined(text: str | list[str]) -> str:
    """A notebook's multi-line string, which nbformat stores as a string or a list of lines."""
    return text if isinstance(text, str) else "".join(text)


def without_addresses(outputs: list) -> list:
    """Outputs without a default-repr ``text/plain`` (``<...Styler at 0x7f...>``) where the output
    has another representation (the site shows that one): the address differs from run to run."""
    for output in outputs:
        data = output.get("data", {})
        plain = data.get("text/plain")
        text = _joined(plain or "")
        if len(data) > 1 and DEFAULT_REPR.match(text.strip()):
            del data["text/plain"]
    return outputs


def merged_streams(outputs: list) -> list:
    """Consecutive ``stream`` outputs of the same name (stdout, stderr) as one, as the page shows
    them (``nb_merge_streams``): how a kernel splits printed text into messages depends on timing,
    so unmerged, two builds of the same cell could store its text in one output or in two."""
    merged: list = []
    for output in outputs:
        previous = merged[-1] if merged else None
        if (output.get("output_type") == "stream" and previous is not None
                and previous.get("output_type") == "stream"
                and previous.get("name") == output.get("name")):
            previous["text"] = _joined(previous["text"]) + _joined(output["text"])
        else:
            merged.append(copy.deepcopy(output))
    return merged


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


# --- Sphinx ------------------------------------------------------------------------------------

def _repository(app: Sphinx) -> tuple[str, str, str] | None:
    """(repository URL, owner, name) from ``repository.url``, if it is on GitHub."""
    url = (app.config.html_theme_options or {}).get("repository_url", "").rstrip("/")
    match = re.match(r"^https://github\.com/([^/]+)/([^/]+?)(?:\.git)?$", url)
    return (url, match[1], match[2]) if match else None


def site_url(app: Sphinx) -> str:
    configured = app.config.reader_notebooks_site_url
    if configured:
        return configured.rstrip("/") + "/"
    repository = _repository(app)
    if repository is None:
        return ""
    _, owner, name = repository
    return f"https://{owner.lower()}.github.io/{name}/"


def notebook_docnames(app: Sphinx) -> list[str]:
    env = app.env
    return sorted(d for d in env.found_docs if "kernelspec" in env.metadata.get(d, {}))


def _figure_numbers(env, labels) -> dict[str, str]:
    numbers = {}
    for label, (docname, anchor, _) in labels.items():
        number = env.toc_fignumbers.get(docname, {}).get("figure", {}).get(anchor)
        if number:
            numbers[label] = ".".join(map(str, number))
    return numbers


def _exercise_numbers(env) -> dict[str, str]:
    """``{label: "1.1"}`` for sphinx-exercise's numbered exercises (their ids are their labels)."""
    numbers = {}
    for found in env.toc_fignumbers.values():
        for label, number in found.get("exercise", {}).items():
            numbers[label] = ".".join(map(str, number))
    return numbers


def _equation_numbers(app: Sphinx) -> dict[str, str]:
    from docutils.nodes import make_id

    env, numbers = app.env, {}
    for label, (docname, number) in env.get_domain("math").equations.items():
        if app.config.math_numfig and app.config.numfig:
            found = env.toc_fignumbers.get(docname, {}).get("displaymath", {})
            eqno = ".".join(map(str, found.get(make_id(f"equation-{label}"), ())))
            numbers[label] = app.config.math_numsep.join(eqno.rsplit(".", 1))
        else:
            numbers[label] = str(number)
    return numbers


def install_source(app: Sphinx) -> str:
    repository = _repository(app)
    url = repository[0] if repository else "https://github.com/OWNER/REPOSITORY"
    ref = os.environ.get("BOOK_COMMIT") or app.config.html_theme_options.get("repository_branch") or "main"
    from importlib.metadata import version

    return INSTALL.format(repository=url, ref=ref, myst_nb=version("myst-nb"))


def write_reader_notebooks(app: Sphinx, exception: Exception | None) -> None:
    if exception is not None or app.builder.format != "html":
        return
    env = app.env
    outdir = Path(app.outdir)
    executed_dir = outdir.parent / "jupyter_execute"
    publish = outdir.parent / PUBLISH_FOLDER
    std = env.get_domain("std")
    labels = dict(std.labels)
    bibfiles = [Path(app.confdir) / f for f in getattr(app.config, "bibtex_bibfiles", [])]
    citations = bibliography(bibfiles)
    bibliography_pages = [d for d in env.found_docs if "{bibliography}" in Path(env.doc2path(d)).read_text(encoding="utf-8")]
    install = install_source(app)
    book = app.config.html_title or app.config.project
    if publish.exists():
        shutil.rmtree(publish)
    for docname in notebook_docnames(app):
        executed_path = executed_dir / f"{docname}.ipynb"
        if not executed_path.is_file():
            logger.warning(f"reader_notebooks: no executed notebook {executed_path.name} for {docname}")
            continue
        executed = nbformat.read(executed_path, as_version=4)
        glue_path = executed_dir / f"{docname}.glue.json"
        glue = json.loads(glue_path.read_text()) if glue_path.is_file() else {}
        glue = {k: {m.removeprefix(GLUE_PREFIX): v for m, v in o["data"].items()} for k, o in glue.items()}
        context = Context(
            docname=docname, site=site_url(app), glue=glue, labels=labels,
            anonlabels=dict(std.anonlabels),
            terms=dict(std._terms), figure_numbers=_figure_numbers(env, labels),
            equation_numbers=_equation_numbers(app), citations=citations,
            figure_format=app.config.numfig_format.get("figure", "Fig. %s"),
            exercise_numbers=_exercise_numbers(env),
            exercise_format=app.config.numfig_format.get("exercise", "Exercise %s"),
        )
        if bibliography_pages:
            context.citations_page = bibliography_pages[0]
        title = env.titles[docname].astext()
        try:
            notebook = reader_notebook(
                context, executed, title=title, book=book, install=install,
                solutions=getattr(app.config, "book_edition", "full") != "student")
        except ConversionError as error:
            logger.warning(f"reader_notebooks: {error}", location=docname)
            continue
        text = nbformat.writes(notebook) + "\n"
        for target in (outdir / "_sources" / f"{docname}.ipynb", publish / f"{docname}.ipynb"):
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
    _publish_tree(app, publish)


def _publish_tree(app: Sphinx, publish: Path) -> None:
    """Complete ``_build/notebooks/`` with what Binder and ``pip install`` need."""
    root = Path(app.confdir)
    publish.mkdir(parents=True, exist_ok=True)
    for name in PUBLISHED_FILES:
        source = root / name
        if source.is_dir():
            shutil.copytree(source, publish / name, ignore=IGNORED)
        elif source.is_file():
            shutil.copy2(source, publish / name)
    branch = app.config.html_theme_options.get("repository_branch") or "main"
    (publish / "README.md").write_text(
        PUBLISHED_README.format(book=app.config.html_title or app.config.project, branch=branch),
        encoding="utf-8",
    )


def retarget_launch_buttons(app: Sphinx, pagename, templatename, context, doctree) -> None:
    """Point the Binder and Colab buttons at the reader notebook on the notebooks branch."""
    repository = _repository(app)
    if repository is None or pagename not in app.env.metadata or \
            "kernelspec" not in app.env.metadata[pagename]:
        return
    _, owner, name = repository
    branch = app.config.reader_notebooks_branch
    path = f"{pagename}.ipynb"
    options = app.config.html_theme_options.get("launch_buttons", {})
    for group in context.get("header_buttons", []):
        if group.get("label") != "launch-buttons":
            continue
        for button in group.get("buttons", []):
            if button.get("text") == "Binder":
                hub = options.get("binderhub_url", "").rstrip("/")
                interface = "lab/tree" if options.get("notebook_interface") == "jupyterlab" else "tree"
                button["url"] = f"{hub}/v2/gh/{owner}/{name}/{branch}?urlpath={interface}/{path}"
            elif button.get("text") == "Colab":
                colab = (options.get("colab_url") or COLAB).rstrip("/")
                button["url"] = f"{colab}/github/{owner}/{name}/blob/{branch}/{path}"


def merge_streams_exactly() -> None:
    """Make myst-nb's merging of a cell's printed text (``nb_merge_streams``) independent of how
    the kernel split it into messages, and leave the executed notebook as the kernel sent it.

    myst-nb's ``coalesce_streams`` strips each message's trailing whitespace and ends it with a
    newline before joining. The kernel sends what was printed whenever its flush timer fires, and
    ``print("without:", values)`` is four writes (the two arguments, the space, the newline): a
    flush between them (rare, and more likely on a loaded machine) made the page show
    "without:" and the values on two lines, so two clean builds differed. Here consecutive
    messages of one stream are first joined exactly (:func:`merged_streams`), so myst-nb sees
    the text once, however it was split.

    myst-nb also merges *in place*: it appends the later messages' text to the first, and then
    writes the executed notebook to ``jupyter_execute/`` with that first output changed and the
    later ones still there (a line printed twice). :func:`merged_streams` works on copies, so
    the stored notebook keeps what the kernel produced.
    """
    from myst_nb.core import render

    original = getattr(render, "coalesce_streams", None)
    if original is None:
        raise RuntimeError("myst_nb.core.render.coalesce_streams is gone: review "
                           "_ext/reader_notebooks.py's merge_streams_exactly for this myst-nb")
    if getattr(original, "merges_exactly", False):
        return

    def coalesce_exactly(outputs):
        return original(merged_streams(outputs))

    coalesce_exactly.merges_exactly = True
    render.coalesce_streams = coalesce_exactly


def setup(app: Sphinx) -> dict:
    merge_streams_exactly()
    app.add_config_value("reader_notebooks_branch", "notebooks", "html", str)
    app.add_config_value("reader_notebooks_site_url", "", "html", str)
    app.connect("html-page-context", retarget_launch_buttons, priority=600)  # after the theme's
    app.connect("build-finished", write_reader_notebooks)
    # Nothing is stored per page while reading, and the page handler only edits that page's
    # context: safe for parallel reading and writing. The notebooks are written once, at the end,
    # in the main process.
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
