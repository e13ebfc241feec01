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

import json
import os
import re
import shutil
from pathlib import Path

import nbformat
from sphinx.application import Sphinx
from sphinx.util import logging

from .blocks import convert_markdown
from .context import Context, ConversionError
from .frame import bibliography, cell_id, reader_notebook, without_solutions
from .outputs import merge_streams_exactly, merged_streams, without_addresses

#: What the rest of the build, the tests and the benchmarks use; the parts live in the submodules
#: (``roles``, ``blocks``, ``outputs``, ``frame``; ``context`` holds what they share).
__all__ = [
    "INSTALL",
    "Context",
    "ConversionError",
    "bibliography",
    "cell_id",
    "convert_markdown",
    "lock_url",
    "merge_streams_exactly",
    "merged_streams",
    "reader_notebook",
    "setup",
    "site_url",
    "without_addresses",
    "without_solutions",
]

logger = logging.getLogger(__name__)

GLUE_PREFIX = "application/papermill.record/"
#: The folder under the build directory that holds the tree published to the notebooks branch.
PUBLISH_FOLDER = "notebooks"
#: What the published tree copies from the repository besides the notebooks.
PUBLISHED_FILES = ("binder", "code", "pyproject.toml")
IGNORED = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc", ".ipynb_checkpoints")
COLAB = "https://colab.research.google.com"

INSTALL = """\
# Colab, or any Python without the book's package: install it at the commit this notebook was
# built from, with myst-nb, whose glue() records the numbers the text quotes, and every package
# they need at the version of the book's lock (requirements.txt) at that commit, less torch: a
# runtime's own torch (Colab's is built for its GPUs) is kept, and the book needs torch >= 2.1.
# Where both import already (Binder, a clone of the repository, an offline machine), this cell
# does nothing.
try:
    import gradflow  # noqa: F401
    import myst_nb  # noqa: F401
except ImportError:
    import urllib.request

    lock = urllib.request.urlopen("{lock}").read().decode().splitlines()
    with open("book-constraints.txt", "w") as constraints:
        constraints.writelines(line + "\\n" for line in lock if not line.startswith("torch=="))
    %pip install --quiet -c book-constraints.txt "gradflow @ git+{repository}@{ref}" "myst-nb=={myst_nb}"
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
    url, owner, name = repository or ("https://github.com/OWNER/REPOSITORY", "OWNER", "REPOSITORY")
    ref = os.environ.get("BOOK_COMMIT") or app.config.html_theme_options.get("repository_branch") or "main"
    from importlib.metadata import version

    return INSTALL.format(repository=url, ref=ref, myst_nb=version("myst-nb"),
                          lock=lock_url(owner, name, ref))


def lock_url(owner: str, name: str, ref: str) -> str:
    """The address of the repository's lock at ``ref``, which pip reads as a constraints file."""
    return f"https://raw.githubusercontent.com/{owner}/{name}/{ref}/requirements.txt"


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
