"""Sphinx extension: read (and so execute) chapters in parallel, one per core.

myst-nb executes a chapter while Sphinx reads it, and ``jupyter-book build`` reads one page after
another: on a 2-core machine one core waits while the other runs a chapter whose cells use one
thread each (the chapters call ``torch.set_num_threads(1)``; their tensors are too small to gain
from more). Sphinx can read in parallel processes, but ``jupyter-book build`` has no option for it,
so at ``builder-inited`` this extension sets the number of processes to ``parallel_chapters``
(default: the machine's core count; 1 turns it off).

Sphinx reads in parallel only when every extension declares itself safe for it. Three that Jupyter
Book loads declare nothing, and were read to check that they keep no per-page state in the build
environment: ``sphinx_multitoc_numbering`` replaces a method that runs in the main process after
reading; ``sphinx-mathjax-offline`` copies files at ``build-finished``; ``sphinx_jupyterbook_latex``
only annotates the page being read and touches the environment for LaTeX builders alone (and this
extension runs the HTML builder in parallel only). They are marked safe here. Any other extension
that declares nothing makes Sphinx warn and read serially, and the warning fails the strict
build: read that extension, then add it to ``AUDITED_SAFE`` or set ``parallel_chapters: 1``.

Sphinx reads in parallel only when more than five pages are to be read. After an edit under
``code/`` that re-executes two or more chapters (``chapter_dependencies`` records which), or one
that changes two or more chapters' sources, this extension asks Sphinx to re-read every page: the
unchanged ones come from the execution cache in about a second, and the chapters that do execute
run side by side instead of one after another.

Every reading process opens the execution cache; ``execution_cache`` (also in ``_ext/``) creates
it before the readers start and makes their writes take turns. Every executing chapter starts a
kernel; ``kernel_sockets`` gives each its own socket files, so two cannot want the same TCP port.
"""

from __future__ import annotations

import os

from sphinx.application import Sphinx

AUDITED_SAFE = ("sphinx_multitoc_numbering", "sphinx-mathjax-offline", "sphinx_jupyterbook_latex")


def _read_in_parallel(app: Sphinx) -> None:
    jobs = app.config.parallel_chapters or os.cpu_count() or 1
    if app.builder.format != "html" or jobs < 2:
        return
    for name in AUDITED_SAFE:
        extension = app.extensions.get(name)
        if extension is not None and extension.parallel_read_safe is None:
            extension.parallel_read_safe = True
    app.parallel = jobs


def _read_together(app: Sphinx, env, added, changed, removed) -> list[str]:
    # Runs after chapter_dependencies' handler (priority), which sets these two attributes.
    notebooks = set(getattr(env, "chapter_digests", {}))
    rereading = (set(added) | set(changed) | set(getattr(env, "stale_chapters", ()))) & notebooks
    if app.parallel < 2 or len(rereading) < 2:
        return []
    return sorted(env.found_docs - set(added))


def setup(app: Sphinx) -> dict:
    app.add_config_value("parallel_chapters", 0, "", int)
    app.connect("builder-inited", _read_in_parallel)
    app.connect("env-get-outdated", _read_together, priority=600)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
