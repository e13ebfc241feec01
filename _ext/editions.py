"""Sphinx extension: the student edition, the book with every solution left out.

``BOOK_EDITION=student`` in the environment sets sphinx-exercise's ``hide_solutions``: each
exercise stays, numbered, and its solution (prose and code cells) is removed from the pages. The
code still runs, so a solution's glued numbers are computed as in the full book, but nothing of it
is shown. The student edition shares the full book's execution cache (``_build/.jupyter_cache``),
so after a full build it executes nothing::

    BOOK_EDITION=student bash scripts/build.sh --path-output _build/student

writes it to ``_build/student/_build/html``. Any other value of ``BOOK_EDITION`` fails the build.
"""

from __future__ import annotations

import os
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.config import Config

EDITIONS = ("full", "student")


def _choose_edition(app: Sphinx, config: Config) -> None:
    edition = os.environ.get("BOOK_EDITION", "full")
    if edition not in EDITIONS:
        raise ValueError(f"BOOK_EDITION must be one of {EDITIONS}, got {edition!r}")
    if edition == "student":
        config.hide_solutions = True
        if not config.nb_execution_cache_path:
            config.nb_execution_cache_path = str(Path(app.confdir) / "_build" / ".jupyter_cache")


def setup(app: Sphinx) -> dict:
    app.connect("config-inited", _choose_edition, priority=400)  # before chapter_dependencies
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
