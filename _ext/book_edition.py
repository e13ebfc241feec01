"""Sphinx extension: every page's footer names the book's version and the commit it was built from.

A reader who prints a page, saves it or cites it needs to know which edition they read. The
version is the package's, ``gradflow.__version__`` (``pyproject.toml`` reads it from there, and
``CITATION.cff`` repeats it, held equal by a test); the commit is ``BOOK_COMMIT`` when the environment sets it (the
publish and release workflows do), else ``git rev-parse HEAD`` of the sources, with
"+ local changes" when tracked files differ from it. A copy of the sources outside git (as the
tests build) says so instead of naming a commit. Nothing here depends on the time of the build, so
two builds of one commit write the same bytes.

The intro's "How to cite" comes from ``CITATION.cff`` the same way: :func:`citation` makes the plain
text and the BibTeX entry, which the intro places with MyST substitutions.

The footer text goes into sphinx-book-theme's ``extra_footer`` through each page's context rather than
through ``html_theme_options``: a changed option is a changed configuration, which would make Sphinx
read every page again after each commit. ``scripts/pdf.py`` reads the same element
(``.book-edition``) back from the built page to print it on the PDF's title page.
"""

from __future__ import annotations

import ast
import html
import os
import subprocess
from pathlib import Path

from sphinx.application import Sphinx

#: The element the footer text is written in; ``scripts/pdf.py`` looks for this class.
CSS_CLASS = "book-edition"


def book_version(root: Path) -> str:
    """The book's version: the string assigned to ``__version__`` in ``root``'s package, read
    without importing it (as setuptools reads it for ``pyproject.toml``)."""
    tree = ast.parse((root / "code" / "gradflow" / "__init__.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == [
                "__version__"]:
            return str(ast.literal_eval(node.value))
    raise ValueError("code/gradflow/__init__.py assigns no __version__")


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                              timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def book_commit(root: Path) -> tuple[str | None, bool]:
    """The commit the sources in ``root`` are at, and whether tracked files differ from it.

    ``BOOK_COMMIT`` wins when set; (None, False) outside a git checkout."""
    given = os.environ.get("BOOK_COMMIT", "").strip()
    if given:
        return given, False
    if _git(root, "rev-parse", "--show-toplevel") != str(root.resolve()):
        return None, False   # not a checkout of its own (a copy inside another repository, say)
    commit = _git(root, "rev-parse", "HEAD")
    changed = bool(_git(root, "status", "--porcelain", "--untracked-files=no"))
    return commit, changed


def edition_html(version: str, commit: str | None, changed: bool, repository: str) -> str:
    """The footer's text: version and commit, the commit linked to the repository's page of it."""
    if commit is None:
        where = "built from sources outside a git checkout"
    else:
        short = html.escape(commit[:7])
        link = f"{repository.rstrip('/')}/commit/{commit}" if repository else ""
        shown = f'<a href="{html.escape(link, quote=True)}">{short}</a>' if link else short
        where = f"built from commit {shown}" + (" + local changes" if changed else "")
    return f'<p class="{CSS_CLASS}">Version {html.escape(version)}, {where}.</p>'


def citation(root: Path) -> dict[str, str]:
    """``CITATION.cff`` as the intro shows it: ``text``, one line of plain text, and ``bibtex``,
    a BibTeX entry in a fenced block (MyST substitutions ``cite_text`` and ``cite_bibtex``)."""
    import yaml

    cff = yaml.safe_load((root / "CITATION.cff").read_text(encoding="utf-8"))
    authors = " and ".join(a.get("name") or f"{a['family-names']}, {a['given-names']}"
                           for a in cff["authors"])
    year = str(cff["date-released"])[:4]
    url = cff.get("url") or cff["repository-code"]
    text = (f"{authors.replace(' and ', ', ')} ({year}). *{cff['title']}* "
            f"(version {cff['version']}). <{url}>")
    bibtex = "\n".join([
        "```bibtex",
        "@book{gradflow_book,",
        f"  author = {{{{{authors}}}}},",
        f"  title = {{{cff['title']}}},",
        f"  year = {{{year}}},",
        f"  edition = {{{cff['version']}}},",
        f"  url = {{{url}}},",
        "}",
        "```",
    ])
    return {"cite_text": text, "cite_bibtex": bibtex}


def add_citation(app: Sphinx, config) -> None:
    config.myst_substitutions = {**config.myst_substitutions, **citation(Path(app.confdir))}


def add_edition(app: Sphinx, pagename, templatename, context, doctree) -> None:
    context["theme_extra_footer"] = app.book_edition_html


def find_edition(app: Sphinx) -> None:
    root = Path(app.confdir)
    commit, changed = book_commit(root)
    repository = app.config.html_theme_options.get("repository_url", "")
    app.book_edition_html = edition_html(book_version(root), commit, changed, repository)


def setup(app: Sphinx) -> dict:
    app.connect("config-inited", add_citation)
    app.connect("builder-inited", find_edition)
    app.connect("html-page-context", add_edition)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
