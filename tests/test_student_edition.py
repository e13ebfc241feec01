"""The student edition: every exercise, numbered, and no solution on any page (``_ext/editions``)."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from bs4 import BeautifulSoup

from conftest import JUPYTER_BOOK, REPO, STRICT, copy_repo, site_pages, toc_files

pytestmark = pytest.mark.build


def exercises_and_solutions(html_root) -> tuple[list[str], list[str], str]:
    exercises, solutions, text = [], [], []
    for page in site_pages(html_root):
        soup = BeautifulSoup(page.read_text(encoding="utf-8"), "html.parser")
        article = soup.select_one("article")
        if article is None:
            continue
        exercises += [e.get("id", "") for e in article.select("div.exercise")]
        solutions += [s.get("id", "") for s in article.select("div.solution")]
        text.append(article.get_text())
    return exercises, solutions, "\n".join(text)


def exercises_in_the_sources() -> int:
    """How many ``{exercise}`` directives the table of contents' sources hold."""
    return sum((REPO / f"{name}.md").read_text(encoding="utf-8").count(":::{exercise}")
               for name in toc_files(REPO))


def test_the_full_book_follows_every_exercise_with_its_solution(built_book):
    exercises, solutions, text = exercises_and_solutions(built_book.html)
    expected = exercises_in_the_sources()
    assert expected >= 16   # the first four chapters' exercises, and more
    assert len(exercises) == expected and len(solutions) == expected
    assert "def slope_at_zero" in text  # a solution's code, executed and shown


def test_the_student_edition_has_every_exercise_and_no_solution(built_book, tmp_path):
    root = copy_repo(tmp_path / "repo")
    shutil.copytree(built_book.root / "_build" / ".jupyter_cache", root / "_build" / ".jupyter_cache")
    env = dict(os.environ, PYTHONPATH=str(root / "code"), BOOK_EDITION="student")
    done = subprocess.run(
        [JUPYTER_BOOK, "build", ".", *STRICT, "--path-output", "_build/student"],
        cwd=root, env=env, capture_output=True, text=True, timeout=1800, check=False)
    log = done.stdout + done.stderr
    assert done.returncode == 0, log[-6000:]
    assert "Executing notebook" not in log, "the student edition reuses the full book's cache"
    exercises, solutions, text = exercises_and_solutions(root / "_build/student/_build/html")
    assert len(exercises) == exercises_in_the_sources()
    assert solutions == []
    assert "Solution to" not in text and "def slope_at_zero" not in text
    notebook = root / "_build/student/_build/html/_sources/book/gelu.ipynb"  # the download
    assert "Exercise 1.1" in notebook.read_text() and "slope_at_zero" not in notebook.read_text()


def test_an_unknown_edition_fails_the_build(tmp_path):
    root = copy_repo(tmp_path / "repo")
    env = dict(os.environ, PYTHONPATH=str(root / "code"), BOOK_EDITION="teacher")
    done = subprocess.run([JUPYTER_BOOK, "build", ".", *STRICT], cwd=root, env=env,
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode != 0
    assert "BOOK_EDITION must be one of ('full', 'student'), got 'teacher'" in done.stdout + done.stderr
