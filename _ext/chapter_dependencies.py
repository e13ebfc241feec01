"""Sphinx extension: after an edit under ``code/``, re-execute exactly the chapters it can change.

myst-nb's ``cache`` mode keys a chapter's stored outputs on its own code cells, and Sphinx re-reads
a page only when its own source changes, so on their own an edit under ``code/`` would leave pages
showing outputs computed by the old code. This extension ties each chapter to the code it runs:

1. **What a chapter runs.** Its code cells are parsed (``ast``) for the package's modules they
   import: ``from gradflow.chapters import gpt_block``, ``from gradflow.networks.mlp import
   DeepMLP``, and every ``gradflow.NAME`` attribute, resolved through the package's lazy export
   table (``_EXPORTS`` in ``__init__.py``: ``import gradflow`` itself imports no submodule). Then, transitively, what
   those modules load, found the same way (imports anywhere in a module, functions included,
   and ``gradflow.NAME`` reads), plus every package ``__init__.py`` on the way.
2. **Conservative where unsure.** Anything the parse cannot resolve makes a chapter depend on
   *all* of ``code/``: the package name used other than as ``gradflow.NAME`` (``getattr``,
   passing the module around), an unknown name, a dynamic import (``importlib``,
   ``__import__``) in a module, or a cell that is not plain Python. Files under ``code/`` that
   are not Python (data a module might read) are part of every chapter's dependencies, except
   the studies' kept results (``results/*.json``, :mod:`gradflow.studies`), which belong to
   the chapters that run a module beside them.
3. **What is stored.** A digest of each chapter's dependency files (paths and bytes) is kept in
   the execution cache folder (``chapter-digests.json``), recording the code its cached outputs
   were computed with. At ``env-get-outdated`` every chapter whose digest differs is returned as
   outdated, so Sphinx re-reads it, and its cache record is deleted, so myst-nb executes it. The
   file is written only by a build that ends without an exception, and the stale records are
   deleted before anything is read, so no cached output computed with older code survives. It
   lives beside the cache, so a ``jupyter-book clean`` that keeps the cache keeps it too, and
   deleting the cache deletes it.

With nothing changed, nothing is read again and nothing executes.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Iterable
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.config import Config
from sphinx.environment import BuildEnvironment
from sphinx.util import logging

# The static reading of imports is the package's own, shared with its studies' digests.
from gradflow.dependencies import EVERYTHING, Package, digest, loaded_modules

logger = logging.getLogger(__name__)

DIGESTS = "chapter-digests.json"


def chapter_modules(cells: Iterable[str], package: Package) -> set[str | None]:
    """The package modules a chapter's code cells load, ``{None}`` where that is unclear."""
    try:
        tree = ast.parse("\n".join(cells))
    except SyntaxError:  # IPython magics or shell escapes: not plain Python
        return {EVERYTHING}
    return loaded_modules(tree, package)


def chapter_dependencies(cells: Iterable[str], package: Package) -> list[Path]:
    """The files under the source folder whose edits can change what the chapter computes."""
    modules = chapter_modules(cells, package)
    files = package.closure(modules) if modules else []
    if files is EVERYTHING:
        files = package.all_files()
    # A study's kept result counts for the chapters that run its module only.
    return sorted({*files, *package.kept_results(files), *package.other_files})


def code_cells(source: Path) -> list[str] | None:
    """The code cells of a MyST notebook, as myst-nb reads them; None for a plain page."""
    from myst_nb.core.read import read_myst_markdown_notebook

    text = source.read_text(encoding="utf-8")
    if "{code-cell}" not in text:
        return None
    notebook = read_myst_markdown_notebook(text, path=source)
    return [cell.source for cell in notebook.cells if cell.cell_type == "code"]


def chapter_digests(code_dir: Path, sources: dict[str, Path]) -> dict[str, str]:
    """``{docname: digest of its dependencies}`` for every source that has code cells."""
    package = Package.scan(code_dir)
    digests = {}
    for docname, source in sorted(sources.items()):
        cells = code_cells(source) if source.suffix == ".md" else None
        if cells is not None:
            digests[docname] = digest(chapter_dependencies(cells, package), code_dir)
    return digests


def _cache_folder(config: Config) -> Path:
    return Path(config.nb_execution_cache_path)


def _stored(config: Config) -> dict[str, str]:
    path = _cache_folder(config) / DIGESTS
    return json.loads(path.read_text()) if path.is_file() else {}


def _set_cache_path(app: Sphinx, config: Config) -> None:
    base = config.nb_execution_cache_path or Path(app.outdir).parent / ".jupyter_cache"
    config.nb_execution_cache_path = str(Path(base).resolve())


def _outdated(app: Sphinx, env: BuildEnvironment, added, changed, removed) -> list[str]:
    sources = {doc: Path(env.doc2path(doc)) for doc in env.found_docs}
    current = chapter_digests(Path(app.confdir) / "code", sources)
    app.env.chapter_digests = current  # written to the cache folder once the build succeeds
    stored = _stored(app.config)
    stale = [doc for doc, value in current.items() if stored.get(doc) != value]
    app.env.stale_chapters = stale
    if stale:
        _forget_cached_outputs(app, [Path(env.doc2path(doc)) for doc in stale])
        logger.info(f"chapter_dependencies: code changed for {', '.join(stale)}")
    return [doc for doc in stale if doc not in added]


def _forget_cached_outputs(app: Sphinx, sources: list[Path]) -> None:
    """Delete the cached outputs of these chapters: the record myst-nb would match (same code
    cells; a cache copied from another folder matches too) and any record made from that file."""
    folder = _cache_folder(app.config)
    if not folder.is_dir():
        return
    from jupyter_cache import get_cache
    from myst_nb.core.read import read_myst_markdown_notebook

    cache = get_cache(str(folder))
    stale = set()
    for source in sources:
        notebook = read_myst_markdown_notebook(source.read_text(encoding="utf-8"), path=source)
        try:
            stale.add(cache.match_cache_notebook(notebook).pk)
        except KeyError:
            pass  # nothing cached for these cells
    targets = {str(source.resolve()) for source in sources}
    stale.update(r.pk for r in cache.list_cache_records() if str(Path(r.uri).resolve()) in targets)
    for pk in stale:
        cache.remove_cache(pk)


def _save(app: Sphinx, exception: Exception | None) -> None:
    current = getattr(app.env, "chapter_digests", None)
    if exception is not None or current is None:
        return
    folder = _cache_folder(app.config)
    if folder.is_dir():
        (folder / DIGESTS).write_text(json.dumps(current, indent=1, sort_keys=True) + "\n")


def setup(app: Sphinx) -> dict:
    app.connect("config-inited", _set_cache_path)
    app.connect("env-get-outdated", _outdated)
    app.connect("build-finished", _save)
    return {"version": "2.0", "parallel_read_safe": True, "parallel_write_safe": True}
