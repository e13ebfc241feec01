"""Sphinx extension: an execution cache that parallel readers can share safely.

myst-nb keeps executed chapters in a jupyter-cache folder, an SQLite database (``global.db``)
beside the notebooks. When Sphinx reads in parallel (``_ext/parallel_chapters.py``), every worker
process opens that database itself, and two things go wrong:

1. **Creating it.** jupyter-cache creates the tables when the database file does not exist yet.
   On a cold build, two workers can both find no file and both run ``CREATE TABLE``: one of them
   fails with "table nbcache already exists" and the whole build with it (the race reported as
   sphinx-doc/sphinx issue 12481). Fix: the main process creates the cache and its tables at
   ``builder-inited``, before Sphinx forks a reader, so the workers always find them.
2. **Writing it.** SQLite lets one connection write at a time, and jupyter-cache opens its
   transactions as readers that later write. A reader that must wait to become a writer while
   another process writes gets "database is locked" *at once*: SQLite does not wait there, whatever
   the busy timeout, because both could wait for each other forever. Fix: every transaction on
   the cache starts with ``BEGIN IMMEDIATE``, which takes the write lock first, so a second writer
   waits its turn (up to ``BUSY_TIMEOUT_SECONDS``) instead of failing. Writes are a few rows per
   chapter, so waiting costs milliseconds.

Both go through ``create_db``, jupyter-cache's one way to open the database, which this extension
replaces with :func:`open_cache_database` when it is loaded (in the main process, so the forked
readers inherit it). If jupyter-cache stops opening its database that way, the build fails here
rather than racing again.
"""

from __future__ import annotations

from pathlib import Path

from sphinx.application import Sphinx
from sqlalchemy import event
from sqlalchemy.engine import Engine, create_engine

#: How long a writer waits for another process's write to finish before giving up.
BUSY_TIMEOUT_SECONDS = 120


def _no_driver_transactions(dbapi_connection, _record) -> None:
    # Python's sqlite3 would open transactions itself, lazily and deferred; leave that to "begin".
    dbapi_connection.isolation_level = None


def _begin_immediate(connection) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def open_cache_database(path: str | Path) -> Engine:
    """jupyter-cache's ``create_db``, made safe for several processes: open (and, if it does not
    exist, create) the cache database in folder ``path``; every transaction takes the write lock
    when it begins and waits for it up to ``BUSY_TIMEOUT_SECONDS``."""
    from jupyter_cache import __version__
    from jupyter_cache.cache.db import DB_NAME, OrmBase

    database = Path(path) / DB_NAME
    exists = database.exists()
    engine = create_engine(f"sqlite:///{database}", connect_args={"timeout": BUSY_TIMEOUT_SECONDS})
    event.listen(engine, "connect", _no_driver_transactions)
    event.listen(engine, "begin", _begin_immediate)
    if not exists:
        # One transaction that takes the write lock first: a second creator waits, then finds
        # the tables (create_all checks before it creates).
        OrmBase.metadata.create_all(engine)
        Path(path, "__version__.txt").write_text(__version__)
    return engine


def use_safe_database() -> None:
    """Make jupyter-cache open its database with :func:`open_cache_database`."""
    from jupyter_cache.cache import db, main

    if main.create_db is open_cache_database:
        return
    if main.create_db is not db.create_db:
        raise RuntimeError(
            "execution_cache: jupyter_cache.cache.main no longer opens its database with "
            "jupyter_cache.cache.db.create_db; check _ext/execution_cache.py against this "
            "jupyter-cache version"
        )
    main.create_db = open_cache_database


def create_cache(app: Sphinx) -> None:
    """Create the execution cache and its tables now, in the main process, before any reading."""
    if app.config.nb_execution_mode != "cache":
        return
    from jupyter_cache import get_cache

    # The path myst-nb opens: its own fallback when none is configured (chapter_dependencies and
    # editions set one at config-inited, before this runs).
    folder = app.config.nb_execution_cache_path or ".jupyter_cache"
    get_cache(str(folder)).db.dispose()  # opening the database creates it; keep no connection


def setup(app: Sphinx) -> dict:
    use_safe_database()
    app.connect("builder-inited", create_cache)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
