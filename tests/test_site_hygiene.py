"""Output hygiene over every page of the built HTML: what a reader must never see."""

from __future__ import annotations

import re

import pytest
from bs4 import BeautifulSoup

pytestmark = pytest.mark.build

SKIPPED_DIRS = {"_static", "_sources", "_images", "_sphinx_design_static"}
LOCAL_PATH = re.compile(r"(/home/\w|/root/|/tmp/|/private/var/|site-packages|[A-Z]:\\\\Users\\\\)")
WARNING = re.compile(r"\b\w*Warning\b: |warnings\.warn\(")
OUTPUT_AREAS = ".cell_output, .output"


def pages(html_root):
    return [
        p for p in sorted(html_root.rglob("*.html"))
        if not SKIPPED_DIRS.intersection(p.relative_to(html_root).parts)
    ]


def test_no_local_paths_in_any_page(built_book):
    root_path = str(built_book.root)
    for page in pages(built_book.html):
        html = page.read_text(encoding="utf-8")
        assert root_path not in html, f"{page.name} shows the build folder {root_path}"
        match = LOCAL_PATH.search(html)
        assert match is None, f"{page.name} shows a local path: {html[match.start() - 60:match.end() + 60]!r}"


def test_no_warnings_stderr_or_tracebacks_in_outputs(built_book):
    for page in pages(built_book.html):
        soup = BeautifulSoup(page.read_text(encoding="utf-8"), "html.parser")
        assert not soup.select(".stderr, .output.stderr, .cell_output .stderr"), page.name
        assert not soup.select(".output.traceback, .traceback"), page.name
        for output in soup.select(OUTPUT_AREAS):
            text = output.get_text()
            assert "Traceback (most recent call last)" not in text, page.name
            assert not WARNING.search(text), f"{page.name}: a warning in an output: {text[:300]!r}"


def test_hygiene_checks_catch_what_they_look_for():
    """The patterns above do match the things they must reject."""
    assert LOCAL_PATH.search("/root/.cache/x") and LOCAL_PATH.search("lib/python3.11/site-packages/a")
    assert LOCAL_PATH.search("/home/alice/x") and LOCAL_PATH.search("/tmp/pytest-1/repo")
    assert WARNING.search("/x.py:3: UserWarning: careful")
    assert not WARNING.search("a Warning sign without colon")
