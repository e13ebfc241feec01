"""Sphinx extension: before any chapter runs, compute again every kept study whose code changed.

A study (:mod:`gradflow.studies`) keeps its result beside its code, with the digest of the code
that computed it. Chapters load that result. This extension reads every kept result under
``code/`` and compares its digest with the code as it is now, statically (no torch, no import of
the chapters), just before ``chapter_dependencies`` decides which chapters to execute. A stale
study that a page of this book runs (its module is among the page's dependencies) is computed
again over the machine's cores, with its progress in the build's output, and kept again; the
rewritten result is a file under ``code/``, so every chapter that could show it is executed
again. With every study current, as in a fresh clone, nothing is computed and the check costs a
fraction of a second.
"""

from __future__ import annotations

import importlib
import time
from pathlib import Path

import chapter_dependencies
from sphinx.application import Sphinx
from sphinx.util import logging

from gradflow import studies
from gradflow.dependencies import Package

logger = logging.getLogger(__name__)


def needed(records: list[dict], code_dir: Path, sources: list[Path]) -> list[dict]:
    """The records whose module some page among ``sources`` runs."""
    package = Package.scan(code_dir)
    files = set()
    for source in sources:
        cells = chapter_dependencies.code_cells(source) if source.suffix == ".md" else None
        if cells is not None:
            files.update(chapter_dependencies.chapter_dependencies(cells, package))
    return [r for r in records if package.files.get(r["module"]) in files]


def refresh_stale_studies(app: Sphinx, env, added, changed, removed) -> list[str]:
    code_dir = Path(app.confdir) / "code"
    records = studies.stale_kept(code_dir)
    if records:
        records = needed(records, code_dir, [Path(env.doc2path(d)) for d in env.found_docs])
    for record in records:
        name = record["study"]
        importlib.import_module(record["module"])   # registers the study
        study = studies.REGISTRY[name]
        logger.info(f"studies: {name} is stale (its code changed); computing its "
                    f"{len(study.units)} units, which took {record['seconds']:.0f} s last time")
        start = time.perf_counter()

        def progress(done: int, total: int, name: str, start: float = start) -> None:
            logger.info(f"studies: {name} {done}/{total} units "
                        f"({time.perf_counter() - start:.0f} s)")

        study.compute(progress=progress)
        logger.info(f"studies: {name} kept in {study.path}")
    return []


def setup(app: Sphinx) -> dict:
    # Before chapter_dependencies' handler (priority 500), which digests code/ for each chapter.
    app.connect("env-get-outdated", refresh_stale_studies, priority=400)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
