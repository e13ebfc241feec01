"""Output hygiene over every page of the built HTML: what a reader must never see."""

from __future__ import annotations

import base64
import re

import pytest
from bs4 import BeautifulSoup

from conftest import site_pages

pytestmark = pytest.mark.build

LOCAL_PATH = re.compile(r"(/home/\w|/root/|/tmp/|/private/var/|site-packages|[A-Z]:\\\\Users\\\\)")
WARNING = re.compile(r"\b\w*Warning\b: |warnings\.warn\(")
OUTPUT_AREAS = ".cell_output, .output"


def test_no_local_paths_in_any_page(built_book):
    root_path = str(built_book.root)
    for page in site_pages(built_book.html):
        html = page.read_text(encoding="utf-8")
        assert root_path not in html, f"{page.name} shows the build folder {root_path}"
        match = LOCAL_PATH.search(html)
        assert match is None, f"{page.name} shows a local path: {html[match.start() - 60:match.end() + 60]!r}"


def test_no_warnings_stderr_or_tracebacks_in_outputs(built_book):
    for page in site_pages(built_book.html):
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


def test_every_page_names_an_icon_that_exists(built_book):
    """A page that names no icon makes the browser fetch ``/favicon.ico``, which the site lacks.

    The root ``index.html`` (a redirect to the first chapter) is checked too: once it was a bare
    ``<meta http-equiv="Refresh">`` and a browser opening the site's address logged a 404.
    """
    root_page = built_book.html / "index.html"
    checked = site_pages(built_book.html)
    assert root_page in checked
    for page in checked:
        soup = BeautifulSoup(page.read_text(encoding="utf-8"), "html.parser")
        icons = [link["href"] for link in soup.select("link[href]") if "icon" in link.get("rel", [])]
        assert icons, f"{page.relative_to(built_book.html)} names no icon"
        for href in icons:
            if href.startswith("data:image/"):
                continue
            assert (page.parent / href).resolve().is_file(), f"{page.name}: icon {href} missing"
    soup = BeautifulSoup(root_page.read_text(encoding="utf-8"), "html.parser")
    assert soup.html["lang"] == "en" and soup.title.get_text(strip=True)
    inlined = soup.select_one('link[rel="icon"]')["href"]
    expected = base64.b64encode((built_book.root / "book/_static/favicon.svg").read_bytes()).decode()
    assert inlined == f"data:image/svg+xml;base64,{expected}", "the root page inlines the book's icon"
    target = soup.select_one('meta[http-equiv="Refresh"]')["content"].split("url=", 1)[1]
    assert (built_book.html / target).is_file() and soup.select_one("a[href]")["href"] == target
