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


def test_tables_have_header_text_and_scroll_in_a_named_box(built_book):
    """No header cell is empty (screen readers announce it as blank), and every table of
    results sits in a box that scrolls on its own and is named, so no page pans sideways."""
    tables = 0
    for page in site_pages(built_book.html):
        soup = BeautifulSoup(page.read_text(encoding="utf-8"), "html.parser")
        article = soup.select_one("article")
        if article is None:
            continue
        for th in article.select("th"):
            assert th.get_text(strip=True), f"{page.name}: an empty header cell in {th.parent}"
        for table in article.select("table.dataframe"):
            tables += 1
            box = table.find_parent("div", class_="book-table")
            assert box is not None, f"{page.name}: a table outside a scroll box"
            assert box["role"] == "region" and box["aria-label"].strip(), page.name
    assert tables >= 20, f"only {tables} tables found: did the chapters stop showing them?"


def test_previews_cover_every_term_and_reference_of_the_site(built_book):
    """Every glossary term and bibliography entry has a preview, and the previews' data is
    served from the site itself (no page loads a script from another host)."""
    data = (built_book.html / "_static" / "previews-data.js").read_text(encoding="utf-8")
    glossary = BeautifulSoup((built_book.html / "book/glossary.html").read_text(), "html.parser")
    references = BeautifulSoup((built_book.html / "book/references.html").read_text(), "html.parser")
    terms = [dt["id"] for dt in glossary.select("dl.glossary > dt[id]")]
    entries = [div["id"] for div in references.select("div.citation[id]")]
    assert terms and entries
    for anchor in terms:
        assert f'"book/glossary.html#{anchor}"' in data, anchor
    for anchor in entries:
        assert f'"book/references.html#{anchor}"' in data, anchor
    for page in site_pages(built_book.html):
        soup = BeautifulSoup(page.read_text(encoding="utf-8"), "html.parser")
        remote = [s["src"] for s in soup.select("script[src]") if "//" in s["src"]]
        assert not remote, f"{page.name} loads scripts from elsewhere: {remote}"
