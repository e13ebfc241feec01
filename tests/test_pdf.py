"""The PDFs: ``scripts/pdf.py`` prints the built book, and the PDFs hold what the pages show.

The expectations come from outside the PDFs and the script: chapter titles from the chapters'
sources, the tutorial's ten published gradients from ``seed_reference.py``, the share of Veit et
al.'s effective paths from the binomial count, figures from the sources' ``:alt:`` texts and the
built PNG files. The PDFs are read with pypdf.
"""

from __future__ import annotations

import functools
import importlib.util
import math
import re
import struct
import unicodedata
from pathlib import Path

import pytest
from bs4 import BeautifulSoup

import seed_reference as seed
from conftest import REPO, load_local_extension, toc_files

BOOK = "gradflow-book.pdf"


def pdf_script():
    spec = importlib.util.spec_from_file_location("pdf_script", REPO / "scripts" / "pdf.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def toc_sources(root: Path) -> list[Path]:
    return [root / f"{name}.md" for name in toc_files(root)]


def title_of(source: Path) -> str:
    return next(line[2:].strip() for line in source.read_text().splitlines() if line.startswith("# "))


def figure_alts(source: Path) -> list[str]:
    return [" ".join(m.split()) for m in re.findall(r"^:alt: (.+)$", source.read_text(), re.MULTILINE)]


def words(text: str) -> str:
    """``text`` with its white space collapsed and typographic apostrophes as "'" (Sphinx's smart
    quotes print "Attention's" as "Attention’s")."""
    return " ".join(text.replace("\u2019", "'").split())


@pytest.fixture(scope="module")
def printed(released_book) -> Path:
    """The folder of PDFs that ``scripts/pdf.py`` printed from a strict build of the book: the
    release's (``released_book`` in conftest), which runs the script on a copy of the session's
    build, so that the site is printed once per session."""
    return released_book / "_build" / "html" / "pdf"


@functools.cache  # each PDF's text is read once: pypdf takes seconds for the book
def text_of(path: Path) -> str:
    from pypdf import PdfReader

    return words(" ".join(page.extract_text() for page in PdfReader(path).pages))


@functools.cache
def tagged_figures(path: Path) -> tuple[tuple[str, bool], ...]:
    """``(alt text, drawn)`` for every Figure element of the PDF's structure tree; drawn when it
    refers to marked content on a page (what Chromium tags when it paints the image)."""
    from pypdf import PdfReader

    found = []

    def walk(node):
        node = node.get_object()
        if isinstance(node, list):
            for child in node:
                walk(child)
            return
        if not hasattr(node, "keys"):
            return
        kids = node.get("/K")
        if node.get("/S") == "/Figure":
            found.append((words(str(node.get("/Alt", ""))), kids is not None))
        if kids is not None:
            walk(kids)

    root = PdfReader(path).trailer["/Root"]
    assert "/StructTreeRoot" in root, f"{path.name} is not tagged"
    walk(root["/StructTreeRoot"])
    return tuple(found)


def raster_sizes(path: Path) -> list[tuple[int, int]]:
    from pypdf import PdfReader

    sizes = []
    for page in PdfReader(path).pages:
        resources = page.get("/Resources") or {}
        objects = resources.get("/XObject") or {}
        for name in objects:
            image = objects[name].get_object()
            if image.get("/Subtype") == "/Image":
                sizes.append((int(image["/Width"]), int(image["/Height"])))
    return sizes


def png_size(path: Path) -> tuple[int, int]:
    return struct.unpack(">II", path.read_bytes()[16:24])


@pytest.mark.build
@pytest.mark.browser
def test_one_pdf_per_page_and_one_for_the_book(built_book, printed):
    folder = printed
    expected = {f"{s.stem}.pdf" for s in toc_sources(built_book.root)} | {BOOK}
    assert {p.name for p in folder.glob("*.pdf")} == expected
    from pypdf import PdfReader

    pages = {p.name: len(PdfReader(p).pages) for p in folder.glob("*.pdf")}
    chapters = sum(n for name, n in pages.items() if name != BOOK)
    # The book is its chapters, each from a new sheet; inside the book a chapter may save the
    # nearly empty last sheet it needs when printed alone, one sheet at most.
    assert chapters - (len(pages) - 1) <= pages[BOOK] <= chapters, (pages[BOOK], chapters)
    # ... so each chapter's bookmark is found where its opening words are (scripts/pdf.py): one
    # per chapter, each on a later sheet than the one before, the last within the book.
    reader = PdfReader(folder / BOOK)
    marks = [reader.get_destination_page_number(item) for item in reader.outline
             if not isinstance(item, list)]
    assert len(marks) == len(pages) - 1 and marks == sorted(set(marks)), marks
    assert marks[0] == 0 and marks[-1] < pages[BOOK]
    print(f"\nPDF: {pages[BOOK]} pages, {len(pages)} files")


@pytest.mark.build
@pytest.mark.browser
def test_the_book_has_every_chapter_title_with_a_bookmark(built_book, printed):
    from pypdf import PdfReader

    folder = printed
    # Chromium prints "fi" in a heading as one ligature glyph, which pypdf reads as U+FB01.
    text = unicodedata.normalize("NFKC", text_of(folder / BOOK))
    titles = [title_of(source) for source in toc_sources(built_book.root)]
    missing = [t for t in titles if words(t) not in text]
    assert not missing, f"chapter titles missing from the PDF: {missing}"

    def outline_titles(items):
        for item in items:
            if isinstance(item, list):
                yield from outline_titles(item)
            else:
                yield words(item.title)
    bookmarks = list(outline_titles(PdfReader(folder / BOOK).outline))
    for title in titles[1:]:  # a numbered chapter's bookmark starts with its number, "1. GELU"
        assert any(b == words(title) or b.endswith(f". {words(title)}") for b in bookmarks), \
            f"no bookmark for {title!r} in {bookmarks}"


@pytest.mark.build
@pytest.mark.browser
def test_the_tutorials_ten_gradients_and_the_veit_share_are_text(printed):
    folder = printed
    for name in (BOOK, "shortcut_connections.pdf"):
        text = text_of(folder / name)
        published = seed.PUBLISHED_WITHOUT_SHORTCUT + seed.PUBLISHED_WITH_SHORTCUT
        missing = [f"{v:.4g}" for v in published if f"{v:.4g}" not in text]
        assert not missing, f"{name}: the tutorial's gradients missing: {missing}"
        # Veit et al.'s effective paths: lengths 5 to 17 of 54 blocks, counted exactly.
        share = sum(math.comb(54, k) for k in range(5, 18)) / 2**54
        assert f"paths of length 5 to 17 are {share:.2%} of the" in text, name


@pytest.mark.build
@pytest.mark.browser
def test_every_figure_is_embedded_as_its_source_drew_it(built_book, printed):
    folder = printed
    all_alts = []
    for source in toc_sources(built_book.root):
        alts = figure_alts(source)
        all_alts += alts
        if not alts:
            continue
        drawn = {alt for alt, painted in tagged_figures(folder / f"{source.stem}.pdf") if painted}
        missing = [a[:60] for a in alts if a not in drawn]
        assert not missing, f"{source.stem}.pdf: figures missing: {missing}"
    assert len(all_alts) >= 19   # the first four chapters' figures, and the new chapters'
    # Each chapter's explorable figure prints its static image, with the alt text it carries.
    explorables = 0
    for source in toc_sources(built_book.root):
        page = built_book.html / source.relative_to(built_book.root).with_suffix(".html")
        images = BeautifulSoup(page.read_text(encoding="utf-8"), "html.parser").select(
            "img.gradflow-explorable-fallback")
        drawn = {alt for alt, painted in tagged_figures(folder / f"{source.stem}.pdf") if painted}
        for image in images:
            explorables += 1
            assert words(image["alt"]) in drawn, f"{source.stem}.pdf: explorable not printed"
    expected = sum(source.read_text().count("```{glue:figure} explorable_")
                   for source in toc_sources(built_book.root))
    assert explorables == expected >= 7   # one per chapter
    drawn = {alt for alt, painted in tagged_figures(folder / BOOK) if painted}
    assert set(all_alts) <= drawn, "the book PDF lacks figures its chapters have"
    # The PNG figures are embedded at their own resolution; every other figure is SVG, printed
    # as vector graphics, so no other large bitmap is in the book.
    pngs = sorted(png_size(p) for p in built_book.html.glob("_images/*.png"))
    assert pngs, "no PNG figures to compare"
    rasters = raster_sizes(folder / BOOK)
    assert sorted(s for s in rasters if s in pngs) == pngs
    large = [s for s in rasters if s not in pngs and s[0] * s[1] > 100_000]
    assert not large, f"bitmaps that are no figure of the book: {large}"


@pytest.mark.build
@pytest.mark.browser
def test_solutions_print_open_and_long_code_lines_wrap(built_book, printed):
    folder = printed
    for source in toc_sources(built_book.root):
        solutions = re.findall(r"^:::\{solution-start\}.*?```\{code-cell\}[^\n]*\n(.*?)```",
                               source.read_text(), re.MULTILINE | re.DOTALL)
        if not solutions:
            continue
        text = "".join(text_of(folder / f"{source.stem}.pdf").split())  # lines wrap anywhere
        for code in solutions:  # each solution's first cell, folded on the page
            lines = [ln for ln in code.splitlines() if ln.strip() and not ln.startswith(":")]
            assert "".join(lines[0].split()) in text, f"{source.stem}: a solution is not printed"
    # The tutorial's one-line GELU is longer than the sheet is wide: all of it is printed.
    text = "".join(text_of(folder / "gelu.pdf").split())
    assert "(1+torch.tanh(torch.sqrt(torch.tensor(2.0/torch.pi))*(x+0.044715*torch.pow(x,3))))" in text


def test_pdf_links_are_offered_only_when_the_pdfs_will_exist(monkeypatch):
    downloads = load_local_extension("pdf_downloads")
    monkeypatch.delenv("BOOK_PDF_LINKS", raising=False)
    assert not downloads.enabled()
    monkeypatch.setenv("BOOK_PDF_LINKS", "1")
    assert downloads.enabled()
    assert downloads.BOOK == pdf_script().BOOK_PDF

    class App:
        class config:
            pdf_downloads = True
    menu = {"label": "download-buttons", "buttons": [
        {"label": "download-source-button", "url": "../_sources/book/gelu.md"},
        {"label": "download-pdf-button", "type": "javascript", "javascript": "window.print()"}]}
    context = {"header_buttons": [menu], "pathto": lambda target, _: f"../{target}"}
    downloads.offer_pdfs(App, "book/gelu", "page.html", context, None)
    urls = [b["url"] for b in menu["buttons"]]
    assert urls == ["../_sources/book/gelu.md", "../pdf/gelu.pdf", f"../pdf/{BOOK}"]
