"""Print the built book to PDF: one file per page of the table of contents, and the whole book.

    .venv/bin/python scripts/pdf.py            # after a build: writes _build/html/pdf/

Each page of ``_build/html`` is opened in Chromium (Debian's ``/usr/bin/chromium``, or the browser
named by ``CHROMIUM``) through the pinned Playwright, as the browser tests do, and printed with the
site's print styles (``book/_static/print.css``): only the article, long code lines wrapped,
every solution and tab open. Before printing, the script waits until MathJax has typeset every
equation and every image has loaded; figures are printed as the site serves them, so SVG figures
stay vector graphics. The per-page PDFs are ``pdf/<page>.pdf``; the whole book,
``pdf/gradflow-book.pdf``, is printed as one document: the first page with the articles of the
others, in the order of ``_toc.yml``, appended to it, each from a new sheet, with a bookmark per
chapter. Every PDF is tagged: a figure carries its alt text.
The site links them from every page's download menu when it is built with ``BOOK_PDF_LINKS=1``
(``.github/workflows/publish.yml`` does); ``tests/test_pdf.py`` checks what they contain.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import logging
import os
import re
import sys
import threading
import time
import unicodedata
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BOOK_PDF = "gradflow-book.pdf"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync",
    "--disable-background-networking", "--disable-component-update",
]
FOOTER = (
    '<div style="font-size:8px; width:100%; margin:0 12mm; display:flex; '
    'justify-content:space-between; color:#555">'
    '<span class="title"></span><span><span class="pageNumber"></span> / '
    '<span class="totalPages"></span></span></div>'
)

# Resolves once every equation is typeset, every image has loaded and every dropdown is open.
READY = """
async () => {
  document.querySelectorAll("details").forEach((d) => { d.open = true; });
  document.querySelectorAll("img").forEach((img) => { img.loading = "eager"; });
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    await MathJax.startup.promise;
    if (MathJax.typesetPromise) { await MathJax.typesetPromise(); }
  }
  await Promise.all([...document.images].map((img) => img.complete ? null :
    new Promise((resolve) => { img.onload = img.onerror = resolve; })));
  await document.fonts.ready;
  // A wide table or equation would make Chromium shrink the whole document to fit the sheet:
  // shrink just that element instead. The page is laid out at the sheet's width (VIEWPORT).
  for (const wide of document.querySelectorAll("article table, article mjx-container[display='true']")) {
    const room = wide.parentElement.clientWidth, width = wide.scrollWidth;
    if (width > room && room > 0) { wide.style.zoom = (room / width).toFixed(3); }
  }
  const untypeset = [...document.querySelectorAll(".math")].filter(
    (m) => !m.querySelector("mjx-container")).length;
  const broken = [...document.images].filter((img) => !img.naturalWidth).map((img) => img.src);
  return {untypeset, broken};
}
"""


# Appends the article of every further page to this page's, each starting on a new page: the
# whole book as one document, so that its PDF has one page numbering, one outline and its tags.
APPEND_PAGES = """
async ({urls, title}) => {
  const article = document.querySelector("article.bd-article");
  for (const url of urls) {
    const text = await (await fetch(url)).text();
    const other = new DOMParser().parseFromString(text, "text/html");
    const chapter = document.createElement("div");
    chapter.style.breakBefore = "page";
    // The theme prints a page's title and contents from a block outside its article, and hides
    // the article's first h1 in print: bring the block along, its title shown as the theme does.
    const heading = other.querySelector("#jb-print-docs-body");
    if (heading) {
      heading.removeAttribute("id");
      heading.querySelectorAll("h1").forEach((h1) => {
        h1.style.cssText = "display: block; font-size: 3em; margin-bottom: 0; text-align: center";
      });
      chapter.append(heading);
    }
    chapter.append(...other.querySelector("article.bd-article").childNodes);
    article.append(chapter);
  }
  document.title = title;
}
"""


# The book's title page names its edition: the footer's version and commit (``_ext/book_edition.py``),
# which print does not show, placed at the top of the first page's article. Returns the text.
EDITION = """
() => {
  const footer = document.querySelector(".book-edition");
  if (!footer) { return null; }
  const note = document.createElement("p");
  note.className = "book-edition-print";
  note.textContent = footer.textContent.trim().replace(/\\s+/g, " ");
  document.querySelector("article.bd-article").prepend(note);
  return note.textContent;
}
"""


# The page's title: its first heading, without the theme's "#" link.
HEADING = """
() => {
  const h1 = document.querySelector("article h1").cloneNode(true);
  h1.querySelectorAll(".headerlink").forEach((link) => link.remove());
  return h1.textContent.trim().replace(/\\s+/g, " ");
}
"""


def toc_pages(root: Path) -> list[str]:
    """The pages of the table of contents (its root, then every part's chapters), in reading
    order, as paths without suffix."""
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    chapters = [c for part in toc.get("parts", []) for c in part.get("chapters", [])]
    return [toc["root"]] + [c["file"] for c in chapters + toc.get("chapters", [])]


def book_root(html: Path) -> Path:
    """The sources the site in ``html`` (``<root>/_build/html``) was built from."""
    root = html.parents[1]
    return root if (root / "_toc.yml").is_file() else ROOT


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def serve(directory: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    handler = functools.partial(QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


# A4 less the margins below, in CSS pixels: the page is laid out as wide as it will be printed.
VIEWPORT = {"width": 680, "height": 1000}
PDF_OPTIONS = {
    "format": "A4", "print_background": True, "tagged": True,
    "display_header_footer": True, "header_template": "<span></span>", "footer_template": FOOTER,
    "margin": {"top": "15mm", "bottom": "18mm", "left": "15mm", "right": "15mm"},
}


def _open(page, url: str) -> None:
    page.goto(url, wait_until="networkidle")
    page.emulate_media(media="print")


def _print(page, name: str, target: Path) -> None:
    """Print the open page once its equations are typeset and its images loaded."""
    state = page.evaluate(READY)
    if state["untypeset"] or state["broken"]:
        raise RuntimeError(f"{name}: {state['untypeset']} equations not typeset, "
                           f"images not loaded: {state['broken']}")
    page.pdf(path=str(target), **PDF_OPTIONS)


def print_book(html: Path, out: Path, chromium: str, title: str) -> list[tuple[str, Path]]:
    """Print every page of the table of contents, then the whole book (last).

    Returns ``(title, PDF)`` for each, in reading order."""
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    names = toc_pages(book_root(html))
    server, base = serve(html)
    written = []
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport=VIEWPORT)
            for name in names:
                _open(page, f"{base}{name}.html")
                heading = page.evaluate(HEADING)
                written.append((heading, out / f"{Path(name).name}.pdf"))
                _print(page, name, written[-1][1])
            _open(page, f"{base}{names[0]}.html")
            if not page.evaluate(EDITION):
                raise RuntimeError(f"{names[0]}: no .book-edition in the footer to print")
            page.evaluate(APPEND_PAGES, {"urls": [f"{base}{n}.html" for n in names[1:]], "title": title})
            written.append((title, out / BOOK_PDF))
            _print(page, "the whole book", written[-1][1])
            browser.close()
    finally:
        server.shutdown()
        server.server_close()
    return written


def title_page_edition(book: Path) -> str:
    """The edition line printed on the book's first page ("Version ..., built from ..."), or ""."""
    from pypdf import PdfReader

    text = " ".join(PdfReader(book).pages[0].extract_text().split())
    found = re.search(r"Version [^\s,]+, built [^.]+\.", text)
    return found.group(0) if found else ""


def add_bookmarks(book: Path, chapters: list[tuple[str, Path]]) -> None:
    """One bookmark per chapter in the book's PDF, at the sheet where the chapter starts: the book
    prints each chapter from a new sheet, the first that holds the opening words of the chapter
    printed alone. (Counting the chapters' own sheets is not enough: a
    chapter whose last sheet is nearly empty alone can take one sheet fewer inside the book.)
    Chromium's own outline repeats or joins the words of a heading that wraps, so it is not used."""
    from pypdf import PdfReader, PdfWriter

    def words(page) -> list[str]:
        return unicodedata.normalize("NFKC", page.extract_text() or "").split()

    # Chromium's PDFs declare a trailer size one or two objects short; pypdf says so, harmlessly.
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    writer = PdfWriter(clone_from=PdfReader(book))
    sheets = [set(words(page)) for page in writer.pages]
    start = 0
    for title, path in chapters:
        # the first words of the chapter's own first sheet (pypdf may read a sheet's text in
        # another order inside the book, so they are looked for as a set)
        alone = set(words(PdfReader(path).pages[0])[:12])
        found = next((i for i in range(start, len(sheets)) if alone <= sheets[i]), None)
        if found is None:
            raise RuntimeError(f"{title!r}: no sheet of the book from sheet {start + 1} on begins "
                               f"as the chapter printed alone does ({alone!r})")
        writer.add_outline_item(title=title, page_number=found)
        start = found + 1
    writer.page_mode = "/UseOutlines"
    with book.open("wb") as file:
        writer.write(file)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--html", type=Path, default=ROOT / "_build" / "html",
                        help="the built site (default: _build/html)")
    parser.add_argument("--out", type=Path, default=None,
                        help="where to write the PDFs (default: <html>/pdf)")
    args = parser.parse_args(argv)
    html = args.html.resolve()
    out = (args.out or html / "pdf").resolve()
    chromium = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    if not (html / "index.html").is_file():
        parser.error(f"no built site in {html}: build the book first (bash scripts/build.sh)")
    if not Path(chromium).exists():
        parser.error(f"Chromium not found at {chromium}: apt-get install -y chromium (or set CHROMIUM)")
    start = time.perf_counter()
    config = yaml.safe_load((book_root(html) / "_config.yml").read_text())
    written = print_book(html, out, chromium, config.get("title", "The book"))
    add_bookmarks(written[-1][1], written[:-1])
    seconds = time.perf_counter() - start
    from pypdf import PdfReader

    for _, path in written:
        shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
        print(f"{shown}: {len(PdfReader(path).pages)} pages")
    print(f"{len(written)} PDFs in {seconds:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
