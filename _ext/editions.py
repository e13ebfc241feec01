"""Sphinx extension: the student edition, the book with every solution left out.

``BOOK_EDITION=student`` in the environment removes every solution from the pages: each exercise
stays, numbered, and its solution (prose and code cells) is gone. The code still runs, so a
solution's glued numbers are computed as in the full book, but nothing of it is shown. The student
edition shares the full book's execution cache (``_build/.jupyter_cache``), so after a full build
it executes nothing::

    BOOK_EDITION=student bash scripts/build.sh --path-output _build/student

writes it to ``_build/student/_build/html``. Any other value of ``BOOK_EDITION`` fails the build.

sphinx-exercise's own ``hide_solutions`` is not used: it drops a solution's opening directive
but leaves the cells of a gated solution (``solution-start`` ... ``solution-end``) and its closing
node, which the HTML writer then cannot write. This extension removes each solution whole, after
sphinx-exercise has gathered a gated solution into one node.
"""

from __future__ import annotations

import os
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.config import Config
from sphinx.transforms import SphinxTransform
from sphinx_exercise.nodes import solution_node

EDITIONS = ("full", "student")


class RemoveSolutions(SphinxTransform):
    """In the student edition, remove every solution from the page being read."""

    default_priority = 20  # after sphinx-exercise's MergeGatedSolutions (10)

    def apply(self) -> None:
        if self.config.book_edition != "student":
            return
        for node in list(self.document.findall(solution_node)):
            node.parent.remove(node)


def _choose_edition(app: Sphinx, config: Config) -> None:
    edition = os.environ.get("BOOK_EDITION", "full")
    if edition not in EDITIONS:
        raise ValueError(f"BOOK_EDITION must be one of {EDITIONS}, got {edition!r}")
    config.book_edition = edition
    if edition == "student" and not config.nb_execution_cache_path:
        config.nb_execution_cache_path = str(Path(app.confdir) / "_build" / ".jupyter_cache")


def setup(app: Sphinx) -> dict:
    app.add_config_value("book_edition", "full", "env", str)
    app.connect("config-inited", _choose_edition, priority=400)  # before chapter_dependencies
    app.add_transform(RemoveSolutions)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
