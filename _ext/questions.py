"""Sphinx extension: what the "Questions readers ask" page needs from the build.

- **Numbers pasted from the chapters stay current.** The questions page shows each chapter's
  numbers with myst-nb's cross-document glue, ``{glue:text}`gelu.md::key:.3g```, which myst-nb
  resolves when the page is *written*, from the chapter's glue data (written when the chapter is
  read, that is, executed or loaded from the execution cache). Sphinx rewrites a page only when
  its own source changed, so after an edit that re-executes a chapter the questions page would
  keep the old numbers. Here every page that pastes from a chapter read in this build is
  rewritten too (``env-get-updated``), without being read again.
- **The subject index is in the navigation.** Sphinx lists ``genindex`` (the page the ``index``
  directives and roles fill) as a toctree entry of its own, but ``_toc.yml`` can only name
  documents and absolute URLs; the last toctree of the root page (the Reference part) gets an
  "Index" entry here.
- **A place to ask.** The MyST substitution ``ask_question_link`` is a link to a new issue with the
  repository's question template, built from ``repository.url`` in ``_config.yml``
  (``html_theme_options["repository_url"]``), so that a fork links to its own issues.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

from docutils import nodes
from sphinx import addnodes
from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment

#: The issue template a reader's question starts from (``.github/ISSUE_TEMPLATE/``).
QUESTION_TEMPLATE = "question.yml"
#: What the navigation calls the subject index.
INDEX_TITLE = "Index"
#: ``{glue}`` / ``{glue:text}`` / ``{glue:md}`` roles and directives that paste from another
#: document: the document's path is what comes before ``::``.
CROSS_GLUE = re.compile(r"\{glue(?::\w+)?\}\s*`?([^`\s:]+)::")


def ask_question_url(repository_url: str) -> str:
    """The address of a new issue that starts from the question template, or "" without a
    repository. ``repository_url`` is ``https://github.com/<owner>/<name>``."""
    if not isinstance(repository_url, str):
        raise TypeError(f"repository_url must be a str, got {type(repository_url).__name__}")
    repository_url = repository_url.strip().rstrip("/")
    if not repository_url:
        return ""
    return f"{repository_url}/issues/new?template={QUESTION_TEMPLATE}"


def pasted_documents(source: str, docname: str) -> set[str]:
    """The documents (Sphinx docnames) a page's source pastes glued values from, given the page's
    own docname (paths are relative to the page's folder, or to the book's root with a leading
    ``/``)."""
    folder = PurePosixPath(docname).parent
    found = set()
    for path in CROSS_GLUE.findall(source):
        target = PurePosixPath(path.lstrip("/")) if path.startswith("/") else folder / path
        found.add(str(target.with_suffix("")))
    return found


def add_substitutions(app: Sphinx, config) -> None:
    url = ask_question_url(config.html_theme_options.get("repository_url", "") or "")
    link = f"[Ask it on the book's issue tracker]({url})" if url else "Ask it on the book's issue tracker"
    config.myst_substitutions = {**config.myst_substitutions, "ask_question_link": link}


def remember_read(app: Sphinx, env: BuildEnvironment, docnames: list[str]) -> None:
    app.questions_read_docs = set(docnames)


def rewrite_pasting_pages(app: Sphinx, env: BuildEnvironment) -> list[str]:
    read = getattr(app, "questions_read_docs", set())
    if not read:
        return []
    rewrite = []
    for docname in sorted(env.found_docs):
        path = Path(env.doc2path(docname))
        if docname in read or path.suffix != ".md" or not path.is_file():
            continue
        if pasted_documents(path.read_text(encoding="utf-8"), docname) & read:
            rewrite.append(docname)
    return rewrite


def add_index_to_navigation(app: Sphinx, doctree: nodes.document) -> None:
    if app.env.docname != app.config.root_doc:
        return
    toctrees = list(doctree.findall(addnodes.toctree))
    if not toctrees:
        return
    last = toctrees[-1]
    if "genindex" not in [ref for _, ref in last["entries"]]:
        last["entries"].append((INDEX_TITLE, "genindex"))


def setup(app: Sphinx) -> dict:
    app.connect("config-inited", add_substitutions)
    app.connect("env-before-read-docs", remember_read)
    app.connect("env-get-updated", rewrite_pasting_pages)
    app.connect("doctree-read", add_index_to_navigation)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
