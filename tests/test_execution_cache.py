"""The execution cache is created before parallel reading starts, and its writers take turns.

See ``_ext/execution_cache.py``. The race it fixes (two readers creating the cache's tables at
once, or both checking for a row and both inserting it) happens only now and then in a real build,
so these tests make each half of it happen every time.
"""

from __future__ import annotations

import multiprocessing
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from conftest import JUPYTER_BOOK, copy_repo, load_local_extension

execution_cache = load_local_extension("execution_cache")

TABLES = ["nbcache", "nbproject", "settings"]

#: Sets up the book's Sphinx application (which runs ``builder-inited``) and reads nothing.
SET_UP_ONLY = """
import sys
from pathlib import Path
from sphinx.application import Sphinx

root = Path(sys.argv[1])
sys.path.insert(0, str(root / "_ext"))  # jupyter-book adds the local extensions' folder
app = Sphinx(root, root, root / "_build/html", root / "_build/.doctrees", "html", status=None)
print(app.parallel)
"""


def tables(database: Path) -> list[str]:
    with sqlite3.connect(database) as connection:
        rows = connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        return sorted(name for (name,) in rows)


@pytest.mark.build
def test_the_book_creates_its_execution_cache_before_reading_any_page(tmp_path):
    root = copy_repo(tmp_path / "repo")
    subprocess.run([JUPYTER_BOOK, "config", "sphinx", "."], cwd=root, check=True,
                   capture_output=True)
    done = subprocess.run([sys.executable, "-c", SET_UP_ONLY, str(root)], cwd=root,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    assert int(done.stdout.split()[-1]) >= 2, "the book reads in parallel on this machine"
    database = root / "_build" / ".jupyter_cache" / "global.db"
    assert database.is_file(), "no execution cache before the first page is read"
    assert tables(database) == TABLES


def _counter_engine(folder: Path, safe: bool):
    from jupyter_cache.cache.db import create_db

    engine = (execution_cache.open_cache_database if safe else create_db)(folder)
    with engine.begin() as connection:
        connection.exec_driver_sql("INSERT INTO settings (key, value) VALUES ('count', '0')")
    return engine


def _increment_twice_at_once(engine) -> int:
    """Two connections each read a counter and write it back plus one; the second starts while
    the first holds its transaction. Returns the final count: 2 if they took turns."""
    first_read, second_wrote = threading.Event(), threading.Event()

    def increment(before_write: threading.Event | None, after_read, after_write) -> None:
        with engine.begin() as connection:
            (value,) = connection.exec_driver_sql(
                "SELECT value FROM settings WHERE key = 'count'").one()
            if after_read:
                after_read.set()
            if before_write:
                before_write.wait(timeout=1)  # the other cannot write while we hold the lock
            connection.exec_driver_sql(
                "UPDATE settings SET value = ? WHERE key = 'count'", (str(int(value) + 1),))
        if after_write:
            after_write.set()

    first = threading.Thread(target=increment, args=(second_wrote, first_read, None))
    first.start()
    first_read.wait(timeout=10)
    second = threading.Thread(target=increment, args=(None, None, second_wrote))
    second.start()
    first.join()
    second.join()
    with engine.begin() as connection:
        return int(connection.exec_driver_sql(
            "SELECT value FROM settings WHERE key = 'count'").scalar_one())


def test_cache_transactions_take_turns(tmp_path):
    assert _increment_twice_at_once(_counter_engine(tmp_path, safe=True)) == 2


def test_stock_jupyter_cache_transactions_interleave(tmp_path):
    # Why the extension exists: as jupyter-cache opens it, a transaction's reads do not hold the
    # database, so two "read, then write" transactions interleave and one update is lost. (If
    # this starts failing, jupyter-cache has fixed it, and the extension may no longer be needed.)
    assert _increment_twice_at_once(_counter_engine(tmp_path, safe=False)) == 1


def test_a_writer_waits_for_the_lock_rather_than_failing(tmp_path):
    engine = execution_cache.open_cache_database(tmp_path)
    with engine.connect() as connection:
        timeout_ms = connection.exec_driver_sql("PRAGMA busy_timeout").scalar_one()
    assert timeout_ms == execution_cache.BUSY_TIMEOUT_SECONDS * 1000


def _open_and_write(folder: str, start, errors) -> None:
    execution_cache.use_safe_database()
    from jupyter_cache import get_cache

    start.wait()
    try:
        cache = get_cache(folder)
        for size in range(100, 105):
            cache.change_cache_limit(size)  # looks the setting up, then inserts or updates it
    except Exception as error:  # noqa: BLE001 (reported to the parent, which fails the test)
        errors.put(repr(error))


def test_readers_started_at_once_on_an_empty_cache_all_succeed(tmp_path):
    # What parallel reading does on a cold build, four readers at a time, five times over.
    # Without the extension about half of these rounds fail ("table ... already exists", or the
    # IntegrityError of two readers inserting the same setting, which jupyter-cache re-raises as
    # a TypeError).
    context = multiprocessing.get_context("fork")
    for round_ in range(5):
        # The folder exists but holds no database. (jupyter-cache creates a missing folder with a
        # plain mkdir, which four processes can race on too; in a build the main process creates
        # folder and database before any reader starts.)
        folder = tmp_path / f"cache-{round_}"
        folder.mkdir()
        start, errors = context.Barrier(4), context.Queue()
        readers = [context.Process(target=_open_and_write, args=(str(folder), start, errors))
                   for _ in range(4)]
        for reader in readers:
            reader.start()
        for reader in readers:
            reader.join(timeout=60)
        assert [reader.exitcode for reader in readers] == [0] * 4
        assert errors.empty(), errors.get()
        assert tables(folder / "global.db") == TABLES


def test_a_changed_jupyter_cache_fails_loudly(monkeypatch):
    from jupyter_cache.cache import main

    monkeypatch.setattr(main, "create_db", lambda path: None)
    with pytest.raises(RuntimeError, match="no longer opens its database"):
        execution_cache.use_safe_database()
