"""Sphinx extension: re-execute the chapters whenever the package under ``code/`` changes.

myst-nb's ``cache`` mode keys each notebook's stored outputs on its code cells only, and Sphinx
re-reads a page only when its own source changes, so an edit under ``code/`` would leave every page
showing outputs computed by the old code. This extension keys the execution cache on the package
too: at ``config-inited`` it hashes every file under ``code/`` (paths and contents) and points
``nb_execution_cache_path`` at ``<cache>/code-<hash>``.

- ``code/`` changed: the path changes; myst-nb registers that setting with ``rebuild="env"``, so
  Sphinx re-reads every page, and the new, empty cache makes myst-nb execute every chapter. All of
  them, because every chapter imports the package's top level, which imports every module.
- nothing changed: same path, Sphinx re-reads nothing and nothing is executed.

Caches for other hashes are deleted, so ``_build`` holds one cache, the one for the code as it is.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.config import Config
from sphinx.util import logging

logger = logging.getLogger(__name__)

PREFIX = "code-"
IGNORED_PARTS = {"__pycache__", ".ipynb_checkpoints"}


def code_digest(code_dir: Path) -> str:
    """SHA-256 over the relative path and bytes of every file under ``code_dir``, in sorted order."""
    digest = hashlib.sha256()
    for path in sorted(p for p in code_dir.rglob("*") if p.is_file()):
        relative = path.relative_to(code_dir)
        if IGNORED_PARTS.intersection(relative.parts) or relative.suffix == ".pyc":
            continue
        if any(part.endswith(".egg-info") for part in relative.parts):
            continue
        digest.update(relative.as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def _key_cache_on_code(app: Sphinx, config: Config) -> None:
    code_dir = Path(app.confdir) / "code"
    if not code_dir.is_dir():
        logger.warning(f"code_hash_cache: no package folder at {code_dir}")
        return
    base = config.nb_execution_cache_path or Path(app.outdir).parent / ".jupyter_cache"
    base = Path(base).resolve()
    current = base / f"{PREFIX}{code_digest(code_dir)}"
    if base.is_dir():
        for stale in base.glob(f"{PREFIX}*"):
            if stale != current and stale.is_dir():
                shutil.rmtree(stale)
    config.nb_execution_cache_path = str(current)
    logger.info(f"code_hash_cache: execution cache keyed on code/ at {current.name}")


def setup(app: Sphinx) -> dict:
    # After myst-nb's own config-inited handlers, so the path it uses is ours.
    app.connect("config-inited", _key_cache_on_code, priority=900)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
