"""Shared fixtures: a copy of the repository and the real, strict book build run on it.

Tests that build never touch the working tree: they copy the repository (without .git, .venv and
_build) to a temporary folder and run ``jupyter-book build`` there, with ``PYTHONPATH`` pointing at
the copy's ``code/`` so that the executing kernels import the copy's package, not the installed one.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
IGNORED = shutil.ignore_patterns(
    ".git", ".venv", "_build", "__pycache__", "*.egg-info", ".pytest_cache", ".ruff_cache",
    ".ipynb_checkpoints",
)
JUPYTER_BOOK = str(Path(sys.executable).with_name("jupyter-book"))
STRICT = ("-W", "-n", "--keep-going")


def is_notebook(source: Path) -> bool:
    """True for a MyST notebook chapter: a ``.md`` file whose front matter has a kernelspec."""
    if not source.is_file():
        return False
    text = source.read_text(encoding="utf-8")
    front_matter = text.split("---", 2)[1] if text.startswith("---") else ""
    return "kernelspec:" in front_matter


def toc_files(root: Path) -> list[str]:
    """Every file of the table of contents in ``root`` (without suffix), in reading order: the
    root page, then the chapters of every part (or of the book, if it has no parts)."""
    import yaml

    toc = yaml.safe_load((root / "_toc.yml").read_text())
    parts = toc.get("parts", [toc])
    return [toc["root"]] + [entry["file"] for part in parts for entry in part.get("chapters", [])]


def notebook_chapters(root: Path) -> list[Path]:
    """The executable chapters of the table of contents in ``root``, in reading order."""
    return [root / f"{name}.md" for name in toc_files(root) if is_notebook(root / f"{name}.md")]


def copy_repo(destination: Path) -> Path:
    """Copy the repository's sources (not .git, .venv or _build) to ``destination``."""
    shutil.copytree(REPO, destination, ignore=IGNORED)
    return destination


#: Folders of the built site that hold assets and copies of sources, not pages.
SITE_ASSET_DIRS = {"_static", "_sources", "_images", "_sphinx_design_static"}


#: The page GitHub Pages serves for a missing address: its links are absolute paths under the
#: site's address (``/<repository>/...``), which only work there; tests/test_site_address.py checks
#: it, the tests that open every page from a folder or a local server leave it out.
NOT_FOUND_PAGE = "404.html"


def site_pages(html_root: Path) -> list[Path]:
    """Every HTML page of the built site under ``html_root`` but the 404 page, sorted."""
    return sorted(
        p for p in html_root.rglob("*.html")
        if not SITE_ASSET_DIRS.intersection(p.relative_to(html_root).parts)
        and p.relative_to(html_root).as_posix() != NOT_FOUND_PAGE
    )


def code_notebook(*sources: str):
    """A notebook of code cells, one per source, that runs on the ``python3`` kernel."""
    import nbformat

    return nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(source) for source in sources],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}},
    )


def load_local_extension(name: str):
    """A module of ``_ext/`` (the book's local Sphinx extensions) imported from its file, or a
    package of ``_ext/`` (a folder with ``__init__.py``, such as ``reader_notebooks``)."""
    package = REPO / "_ext" / name
    if (package / "__init__.py").is_file():
        spec = importlib.util.spec_from_file_location(
            name, package / "__init__.py", submodule_search_locations=[str(package)])
    else:
        spec = importlib.util.spec_from_file_location(name, REPO / "_ext" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while it is executed
    spec.loader.exec_module(module)
    return module


@dataclass
class Build:
    """One run of ``jupyter-book build`` on a copy of the repository."""

    root: Path
    returncode: int
    log: str

    @property
    def html(self) -> Path:
        return self.root / "_build" / "html"

    @property
    def executed(self) -> list[str]:
        """The chapters myst-nb executed in this run (it logs one line per executed notebook)."""
        return [
            line.split(":")[0]
            for line in self.log.splitlines()
            if "Executing notebook using" in line
        ]

    @property
    def read_in_parallel(self) -> bool:
        """Whether Sphinx read the pages in parallel: it then logs chunks, "[ 33%] a .. b"."""
        plain = re.sub(r"\x1b\[[0-9;]*m", "", self.log)
        chunk = r"^reading sources\.\.\. \[\s*\d+%\] \S+ \.\. \S+$"
        return re.search(chunk, plain, re.MULTILINE) is not None

    def page(self, name: str) -> str:
        return (self.html / "book" / f"{name}.html").read_text(encoding="utf-8")


def build_book(root: Path, *extra: str, strict: bool = True) -> Build:
    """Run ``jupyter-book build .`` in ``root``: strict (``-W -n --keep-going``) by default, or
    exactly as a reader types it with ``strict=False``."""
    env = dict(os.environ, PYTHONPATH=str(root / "code"))
    flags = STRICT if strict else ()
    done = subprocess.run(
        [JUPYTER_BOOK, "build", ".", *flags, *extra],
        cwd=root, env=env, capture_output=True, text=True, timeout=1800, check=False,
    )
    return Build(root, done.returncode, done.stdout + done.stderr)


@pytest.fixture(scope="session")
def built_book(tmp_path_factory) -> Build:
    """The whole book, built strictly once per test session from a fresh copy of the repository.

    Tests may read this build but must not change it; tests that edit and rebuild make their own.
    """
    root = copy_repo(tmp_path_factory.mktemp("book") / "repo")
    build = build_book(root)
    assert build.returncode == 0, f"strict build failed:\n{build.log[-8000:]}"
    return build


@pytest.fixture(scope="module")
def one_torch_thread():
    """One CPU thread for a test module: small batched products are fast on one, and a shared machine's
    second thread mostly waits; the previous setting is restored afterwards."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


#: Runs one reader notebook in a fresh kernel over socket files (``_ext/kernel_sockets.py``: the
#: chapters run side by side, and TCP kernels started at once can lose their ports), with one
#: extra last cell that prints the ``gradflow`` modules the chapter's code loaded.
EXECUTE_READER_NOTEBOOK = """
import importlib.util, json, sys
from pathlib import Path
import nbformat
from nbclient import NotebookClient

ext, source, target = (Path(a) for a in sys.argv[1:4])
spec = importlib.util.spec_from_file_location("kernel_sockets", ext / "kernel_sockets.py")
sockets = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sockets)
notebook = nbformat.read(source, 4)
notebook.cells.append(nbformat.v4.new_code_cell(
    "import json as _json, sys as _sys\\n"
    "print('LOADED ' + _json.dumps(sorted(m for m in _sys.modules if m.startswith('gradflow'))))"))
NotebookClient(notebook, timeout=600, kernel_name="python3",
               kernel_manager_class=sockets.SocketFileKernelManager,
               resources={"metadata": {"path": str(source.parent)}}).execute()
nbformat.write(notebook, target)
"""


@dataclass
class ExecutedNotebook:
    """A reader notebook executed outside the book, and the gradflow modules its code loaded."""

    written: object       # the notebook as the build wrote it (before it ran)
    executed: object      # the same notebook after it ran, its last (added) cell included
    loaded: list[str]


@pytest.fixture(scope="session")
def executed_reader_notebooks(built_book, tmp_path_factory) -> dict[str, ExecutedNotebook]:
    """Every chapter's reader notebook, copied to a folder outside the repository and executed
    there, two chapters at a time (one per core, as the build runs them), each in its own process
    and kernel with the built copy's package on ``PYTHONPATH``. Shared by the reader-notebook test
    (do the numbers come out as written?) and the chapter-dependency test (which modules did each
    chapter load?), so that each chapter runs once for both."""
    import json

    import nbformat

    folder = tmp_path_factory.mktemp("readers")
    assert not folder.resolve().is_relative_to(REPO)
    driver = folder / "execute.py"
    driver.write_text(EXECUTE_READER_NOTEBOOK)
    env = dict(os.environ, PYTHONPATH=str(built_book.root / "code"), MPLBACKEND="Agg")
    names = [path.stem for path in notebook_chapters(built_book.root)]
    waiting, running, result = list(names), {}, {}
    # One chapter per core, as the build runs them: each chapter times itself against a budget,
    # and more chapters than cores at once would make a page's time note differ from the site's.
    slots = max(1, min(os.cpu_count() or 1, 2))
    deadline = time.monotonic() + 1800
    while waiting or running:
        if time.monotonic() > deadline:
            for _, _, process in running.values():
                process.kill()
            pytest.fail(f"reader notebooks still running after 30 minutes: {sorted(running)}")
        while waiting and len(running) < slots:
            name = waiting.pop(0)
            chapter = folder / name
            chapter.mkdir()
            source = chapter / f"{name}.ipynb"
            shutil.copy(built_book.root / "_build" / "notebooks" / "book" / f"{name}.ipynb",
                        source)
            log = (chapter / "stderr.txt").open("w")
            running[name] = (source, log, subprocess.Popen(
                [sys.executable, str(driver), str(REPO / "_ext"), str(source),
                 str(chapter / "executed.ipynb")],
                cwd=chapter, env=env, stdout=subprocess.DEVNULL, stderr=log))
        finished = [n for n, (_, _, process) in running.items() if process.poll() is not None]
        if not finished:
            time.sleep(0.5)
            continue
        name = finished[0]
        source, log, process = running.pop(name)
        log.close()
        err = (source.parent / "stderr.txt").read_text()
        assert process.returncode == 0, f"{name}: {err[-3000:]}"
        executed = nbformat.read(source.parent / "executed.ipynb", 4)
        printed = "".join(o.get("text", "") for o in executed.cells[-1].outputs)
        loaded = json.loads(printed.split("LOADED ", 1)[1])
        result[name] = ExecutedNotebook(nbformat.read(source, 4), executed, loaded)
    return result


#: Debian's Chromium, which Playwright drives and ``scripts/pdf.py`` prints with.
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def require_chromium() -> None:
    """Fail under CI (``CI`` set), skip elsewhere, with a clear reason, when Chromium is missing."""
    if not Path(CHROMIUM).exists():
        message = f"Chromium not found at {CHROMIUM}: apt-get install -y chromium (or set CHROMIUM)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="session")
def released_book(built_book, tmp_path_factory) -> Path:
    """``scripts/release.py`` run on a copy of the built book (its execution cache and pages
    included): the copy's root, with the release files in ``dist/`` and the PDFs that
    ``scripts/pdf.py`` printed for it in ``_build/html/pdf/``. The release tests open its files;
    the PDF tests read its PDFs, so that the site is printed once per session."""
    require_chromium()
    import gradflow

    root = tmp_path_factory.mktemp("release") / "repo"
    shutil.copytree(built_book.root, root)   # _build too: the execution cache and the pages
    env = dict(os.environ, PYTHONPATH=str(root / "code"))
    done = subprocess.run(
        [sys.executable, str(root / "scripts" / "release.py"), "v" + gradflow.__version__,
         "--out", str(root / "dist")],
        cwd=root, env=env, capture_output=True, text=True, timeout=1800, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return root
