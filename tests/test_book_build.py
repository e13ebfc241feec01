"""The real, strict build: what the pages show, what fails it, and that it is never stale."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest
from bs4 import BeautifulSoup

import gradflow
from conftest import REPO, build_book, copy_repo, load_local_extension, notebook_chapters, toc_files
from gradflow import activations
from gradflow import tutorial as experiments

pytestmark = pytest.mark.build
chapter_dependencies = load_local_extension("chapter_dependencies")


def table_cells(html: str) -> list[str]:
    soup = BeautifulSoup(html, "html.parser")
    return [cell.get_text(strip=True) for cell in soup.select("table td")]


def prose(html: str) -> str:
    soup = BeautifulSoup(html, "html.parser")
    main = soup.select_one("main") or soup
    return " ".join(main.get_text(" ").split())


def expected_table_values(comparison: gradflow.ShortcutComparison) -> list[str]:
    g = comparison.gradients
    return [gradflow.format_gradient(v) for c in g.columns for v in g[c]]


# --- the book as built from the repository ------------------------------------------------------


def test_every_toc_chapter_is_built_and_nothing_else(built_book):
    expected = set(toc_files(built_book.root))
    built = {
        str(p.relative_to(built_book.html).with_suffix(""))
        for p in (built_book.html / "book").rglob("*.html")
    }
    assert built == expected


def test_shortcut_chapter_shows_the_gradients_the_package_computes(built_book):
    html = built_book.page("shortcut_connections")
    cells = table_cells(html)
    for value in expected_table_values(gradflow.compare_shortcuts()):
        assert value in cells, f"{value} missing from the chapter's tables"


def test_shortcut_chapter_prose_carries_the_glued_numbers(built_book):
    g = gradflow.compare_shortcuts().gradients
    plain, shortcut = g[experiments.PLAIN], g[experiments.SHORTCUT]
    text = prose(built_book.page("shortcut_connections"))
    for value, spec in [
        (plain.iloc[-1], ".4g"),
        (plain.iloc[0], ".4g"),
        (plain.iloc[-1] / plain.iloc[0], ".3g"),
        (shortcut.iloc[0] / plain.iloc[0], ".4g"),
    ]:
        assert format(value, spec) in text


def test_shortcut_chapter_has_its_figure(built_book):
    soup = BeautifulSoup(built_book.page("shortcut_connections"), "html.parser")
    figure = soup.select_one("figure#fig-seed-layer-gradients")
    assert figure is not None
    image = figure.select_one("img")
    assert image["alt"].startswith("Line chart of mean absolute weight gradient")
    src = (built_book.html / "book" / image["src"]).resolve()
    assert src.is_file() and src.stat().st_size > 1000


def test_the_build_executes_chapters_side_by_side(built_book):
    if (os.cpu_count() or 1) < 2:
        pytest.skip("one core: parallel_chapters reads one page after another, by design")
    assert built_book.read_in_parallel


def test_no_error_output_in_any_page(built_book):
    for page in built_book.html.rglob("*.html"):
        html = page.read_text(encoding="utf-8")
        assert "Traceback (most recent call last)" not in html, page
        assert 'class="output stderr"' not in html, page


# --- a small book for the build's mechanics -------------------------------------------------------
# What fails a strict build, which chapters re-execute after an edit, and which files are sources
# are properties of the configuration, the local extensions and the package, not of the chapters'
# experiments. These tests build a small book made of the repository's configuration, extensions
# and package (copied as they are) and three short chapters of its own, each importing a different
# part of the package: the whole book's chapters would cost minutes per build and test nothing
# more. That every real chapter depends on the modules it runs is tested on the real chapters
# (tests/test_chapter_dependencies.py), and the real build's pages in the section above.

NOTEBOOK_HEADER = (REPO / "book" / "shortcut_connections.md").read_text().split("---\n", 2)[1]
CODE_CELL = "```{code-cell} ipython3\n%s\n```\n"
SMALL_BOOK_PAGES = {
    "book/intro": "# A small book\n\nThe build's mechanics, on three short chapters.\n",
    # The tutorial's gradient table: it runs gradflow.activations, through gradflow.tutorial.
    "book/tutorial_table": CODE_CELL % (
        "import gradflow\nfrom gradflow import tutorial as experiments\n\n"
        "result = gradflow.compare_shortcuts(seed=experiments.SEED)\n"
        "gradflow.Table(result.gradients.map(gradflow.format_gradient), 'Mean |∂L/∂W| per weight')"),
    # The GPT chapter's experiment module, which no other page imports. (Imported as a module, not
    # through its package: an attribute the static reading cannot resolve on a package, such as
    # __name__, would make the page depend on every file, the studies' modules among them.)
    "book/gpt_module": CODE_CELL % (
        "from gradflow.chapters.gpt_block import experiments as gpt_experiments\n\n"
        "print(gpt_experiments.__name__)"),
    "book/gelu_value": CODE_CELL % (
        "import torch\nfrom gradflow import activations\n\n"
        "print(float(activations.gelu(torch.tensor(1.0), approximate='tanh')))"),
    # Sphinx reads in parallel only when more than five pages are to be read.
    "book/page_a": "# Page A\n\nNo code.\n",
    "book/page_b": "# Page B\n\nNo code.\n",
    "book/page_c": "# Page C\n\nNo code.\n",
}


def small_book(destination: Path) -> Path:
    """The repository's configuration, extensions and package with ``SMALL_BOOK_PAGES`` as its
    only pages (the last one ends the numbered part, where ``add_chapter`` appends)."""
    root = copy_repo(destination)
    for page in (root / "book").glob("*.md"):
        page.unlink()
    for name, body in SMALL_BOOK_PAGES.items():
        title = name.split("/")[1].replace("_", " ").capitalize()
        if "{code-cell}" in body:
            body = f"---\n{NOTEBOOK_HEADER}---\n\n# {title}\n\n{body}"
        (root / f"{name}.md").write_text(body)
    chapters = "".join(f"      - file: {name}\n" for name in list(SMALL_BOOK_PAGES)[1:])
    (root / "_toc.yml").write_text(
        "format: jb-book\nroot: book/intro\nparts:\n  - caption: Chapters\n    numbered: true\n"
        f"    chapters:\n{chapters}")
    return root


@pytest.fixture(scope="module")
def small_book_cache(tmp_path_factory) -> Path:
    """The small book, built once (strictly) for this module: its execution cache."""
    root = small_book(tmp_path_factory.mktemp("small") / "repo")
    build = build_book(root)
    assert build.returncode == 0, build.log[-6000:]
    assert sorted(Path(line).name for line in build.executed) == [
        "gelu_value.md", "gpt_module.md", "tutorial_table.md"]
    return root / "_build" / ".jupyter_cache"


@pytest.fixture()
def warm_copy(tmp_path, small_book_cache) -> Path:
    """A fresh small book holding the module's execution cache (and nothing else of that build),
    so that its first build executes only what changed."""
    root = small_book(tmp_path / "repo")
    shutil.copytree(small_book_cache, root / "_build" / ".jupyter_cache")
    return root


def add_chapter(root: Path, name: str, body: str) -> None:
    (root / "book" / f"{name}.md").write_text(f"---\n{NOTEBOOK_HEADER}---\n\n# {name}\n\n{body}\n")
    toc = (root / "_toc.yml").read_text()
    last = f"      - file: {list(SMALL_BOOK_PAGES)[-1]}\n"  # the last page of the numbered part
    assert toc.endswith(last)
    (root / "_toc.yml").write_text(toc + f"      - file: book/{name}\n")


# --- strictness -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "why", "reported"),
    [
        (CODE_CELL % "raise RuntimeError('boom')", "a cell that raises",
         r"ExecutionError: \S*/book/broken\.md"),
        (CODE_CELL % "import sys; print('careful', file=sys.stderr)", "output on stderr",
         r"broken\.md:\d+: ERROR: stderr was found in the cell outputs"),
        ("See {ref}`no-such-label`.", "a broken cross-reference",
         r"broken\.md:\d+: WARNING: undefined label: 'no-such-label'"),
        ("{glue:text}`no_such_key`", "a missing glue key",
         r"broken\.md:\d+: WARNING: No key 'no_such_key' found in glue data"),
    ],
)
def test_strict_build_fails_on(warm_copy, body, why, reported):
    add_chapter(warm_copy, "broken", body)
    build = build_book(warm_copy)
    assert build.returncode != 0, f"the build passed despite {why}"
    # ... and failed for that reason, in the added chapter (not, say, on a malformed contents file)
    plain = re.sub(r"\x1b\[[0-9;]*m", "", build.log)
    assert re.search(reported, plain), build.log[-4000:]


def test_a_failing_cell_names_its_chapter_its_line_and_its_message(warm_copy):
    # _ext/cell_errors.py: a failed assertion in a hidden cell must say which claim failed, also
    # when chapters are read in parallel (this small book is), with no other traceback after it.
    cells = [CODE_CELL % "x = 1", CODE_CELL % "y = 2\nassert x == 2, 'the claim that x is two'"]
    add_chapter(warm_copy, "claim", "Some prose.\n\n" + "\nMore prose.\n\n".join(cells))
    for page in (warm_copy / "book").glob("*.md"):   # every page read again: in parallel
        page.write_text(page.read_text() + "\n")
    build = build_book(warm_copy)
    assert build.returncode != 0 and build.read_in_parallel, build.log[-4000:]
    plain = re.sub(r"\x1b\[[0-9;]*m", "", build.log)
    found = re.search(r"ExecutionError: \S*/book/claim\.md:(\d+): "
                      r"AssertionError: the claim that x is two", plain)
    assert found, plain[-4000:]
    source = (warm_copy / "book" / "claim.md").read_text().splitlines()
    assert "assert x == 2" in source[int(found.group(1)) - 1], source   # the line that raised
    # After it come only the build's own way out (Sphinx's parallel error, jupyter-book's
    # message box), not the kernel's or the execution client's traceback.
    after = plain[found.end():].lower()
    for unrelated in ("zmq", "socket operation", "nbclient", "jupyter_client", "cellexecutionerror"):
        assert unrelated not in after, plain[found.end():][:3000]


def test_the_builds_kernels_listen_on_socket_files(warm_copy):
    # _ext/kernel_sockets.py: no TCP ports, so no port another process can take (tested there).
    cell = "from ipykernel.kernelapp import IPKernelApp; print(IPKernelApp.instance().transport)"
    add_chapter(warm_copy, "transport", CODE_CELL % cell)
    build = build_book(warm_copy)
    assert build.returncode == 0, build.log[-4000:]
    assert [Path(line).name for line in build.executed] == ["transport.md"]
    assert re.search(r"<pre><span></span>ipc\s*</pre>", build.page("transport"))


def test_hidden_folders_package_and_tests_are_never_sources(warm_copy):
    broken = "# Not a chapter\n\nSee {ref}`no-such-label`.\n"
    for folder in (".venv/lib", ".hidden", "code", "tests", "_build"):
        (warm_copy / folder).mkdir(parents=True, exist_ok=True)
        (warm_copy / folder / "stray.md").write_text(broken)
    # Every chapter depends on the files under code/ that are not Python, so code/stray.md would
    # re-execute them all; it changes no output, so record the warm cache as current instead.
    record_cache_as_current(warm_copy)
    build = build_book(warm_copy)
    assert build.returncode == 0, build.log[-4000:]
    assert build.executed == []
    assert not list(build.html.rglob("stray.html"))


# --- never stale ----------------------------------------------------------------------------------


def record_cache_as_current(root: Path) -> None:
    """Tell the copy's build that its cached outputs were computed with its code as it is now."""
    digests = chapter_dependencies.chapter_digests(
        root / "code", {f"book/{p.stem}": p for p in notebook_chapters(root)}
    )
    path = root / "_build" / ".jupyter_cache" / chapter_dependencies.DIGESTS
    assert path.is_file(), "the small book's build should have recorded its chapters' digests"
    path.write_text(json.dumps(digests))


def test_editing_the_package_re_executes_the_book_without_a_clean(warm_copy, monkeypatch):
    first = build_book(warm_copy)
    assert first.returncode == 0, first.log[-4000:]
    assert first.executed == [], "the warm copy's cache should serve every chapter"
    before = table_cells(first.page("tutorial_table"))

    # Change the GELU constant in the copy's package, then the plain command users know.
    source = warm_copy / "code" / "gradflow" / "activations.py"
    text = source.read_text()
    assert "TANH_CUBIC_COEFFICIENT = 0.044715" in text
    # 0.2, a real edit (about four times the constant): the table moves in its first digits.
    edited = text.replace("TANH_CUBIC_COEFFICIENT = 0.044715", "TANH_CUBIC_COEFFICIENT = 0.2")
    source.write_text(edited)
    second = build_book(warm_copy, strict=False)
    assert second.returncode == 0, second.log[-4000:]
    # several chapters to execute: every page is read again, so that they run side by side
    assert second.read_in_parallel or (os.cpu_count() or 1) < 2
    chapters = sorted(str(p.relative_to(warm_copy)) for p in notebook_chapters(warm_copy))
    assert sorted(str(Path(line).relative_to(warm_copy)) for line in second.executed) == chapters

    monkeypatch.setattr(activations, "TANH_CUBIC_COEFFICIENT", 0.2)
    expected = expected_table_values(gradflow.compare_shortcuts())
    after = table_cells(second.page("tutorial_table"))
    assert after != before
    for value in expected:
        assert value in after

    third = build_book(warm_copy, strict=False)
    assert third.returncode == 0, third.log[-4000:]
    assert third.executed == []
    assert re.search(r"updating environment: .*0 added, 0 changed, 0 removed", third.log)


def test_editing_one_chapters_module_re_executes_that_chapter_only(warm_copy):
    """The GPT chapter's experiment module is imported by one page of the small book alone: only
    that page runs again. A build that fails on the edit records nothing, so the next build still runs the
    chapter."""
    digests = warm_copy / "_build" / ".jupyter_cache" / chapter_dependencies.DIGESTS
    recorded = digests.read_text()
    source = warm_copy / "code" / "gradflow" / "chapters" / "gpt_block" / "experiments.py"
    original = source.read_text()

    source.write_text(original + "\nraise RuntimeError('a broken edit')\n")
    broken = build_book(warm_copy)
    assert broken.returncode != 0
    assert digests.read_text() == recorded

    source.write_text(original + "\n# an edit that changes nothing shown\n")
    fixed = build_book(warm_copy)
    assert fixed.returncode == 0, fixed.log[-4000:]
    assert [Path(line).name for line in fixed.executed] == ["gpt_module.md"]
    assert digests.read_text() != recorded

    again = build_book(warm_copy)
    assert again.returncode == 0, again.log[-4000:]
    assert again.executed == []
