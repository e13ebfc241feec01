"""Sphinx extension: previews of glossary terms, citations, figures, equations and sections.

A reader who meets a term, a citation or "Fig. 5" sees what it is in a small popup where the
reference stands, on hover, on keyboard focus (Escape hides it) and on a first tap (a second tap
follows the link). Why not sphinx-tippy: it loads its scripts from a CDN by default, fetches
data from the network while building, names its data files with random ids (two builds would
differ), and gathers its data while pages are written, which this book does in parallel
processes whose state is lost (``_ext/parallel_chapters.py``).

Here, once every page is written (``build-finished``, in the main process), each page's HTML is
read and every previewable target is collected: a glossary entry (the term and its definition), a
bibliography entry, a figure (its image and caption), a numbered equation, a section (its title
and first paragraph). They are written, keyed by ``page.html#id`` and sorted, to
``_static/previews-data.js``; ``_static/previews.js`` (from ``_ext/static/``) shows them. Nothing
is fetched from anywhere, and the same sources give byte-identical files. Parsing every page
took half of a no-change rebuild's time, so each page's previews are kept beside the doctrees
(``previews-cache.json``) with the digest of the HTML they came from, and of this file: a page
is parsed again only when it, or this extension, has changed.

``_ext/static/book.css`` holds the popup's style and the rules that keep wide content (tables,
equations, long inline code) inside the width of a phone's screen; ``scroll-boxes.js`` makes a box
that does scroll sideways focusable from the keyboard and names it for screen readers.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.config import Config

STATIC = Path(__file__).parent / "static"
DATA_FILE = "previews-data.js"
CACHE_FILE = "previews-cache.json"
#: What a cached preview was computed with: this file's own bytes.
CODE_DIGEST = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()
#: Longest text, in characters, that a section's preview takes from its first paragraph.
SECTION_TEXT_LIMIT = 400


def _clean(tag, page_dir: str):
    """A copy of ``tag`` fit for a popup: no ids (the page has them), no heading links, links
    made plain text (a tooltip holds nothing to click), images addressed from the site's root."""
    from bs4 import BeautifulSoup

    tag = BeautifulSoup(str(tag), "html.parser")
    for link in tag.select("a.headerlink"):
        link.decompose()
    # An explorable figure previews as its static image (_ext/explorables.py), without its chart.
    for live in tag.select("script, .gradflow-explorable-chart"):
        live.decompose()
    for element in tag.find_all(True):
        for attribute in ("id", "role", "tabindex", "aria-label"):
            element.attrs.pop(attribute, None)
    for link in tag.find_all("a"):
        link.name = "span"
        link.attrs = {}
    for image in tag.find_all("img"):
        image["src"] = posixpath.normpath(posixpath.join(page_dir, image["src"]))
        image["loading"] = "lazy"
    return tag.find(True)


def _is_anchor(tag) -> bool:
    return tag is not None and tag.name == "span" and bool(tag.get("id")) and not tag.contents


def _ids(element) -> list[str]:
    """The element's id and those of the empty anchors docutils writes for its other labels:
    just before it, or first inside it (a label above a section's heading)."""
    ids = [element["id"]] if element.get("id") else []
    previous = element.find_previous_sibling()
    while _is_anchor(previous):
        ids.append(previous["id"])
        previous = previous.find_previous_sibling()
    child = element.find(True, recursive=False)
    while _is_anchor(child):
        ids.append(child["id"])
        child = child.find_next_sibling()
    return ids


def page_previews(html: str, page: str) -> dict[str, str]:
    """Every previewable target of one built page, ``page`` being its path from the site's root:
    ``{"page#id": preview HTML}``."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser")
    article = soup.select_one("article") or soup
    page_dir = posixpath.dirname(page)
    found: dict[str, str] = {}

    def add(element, content: str, kind: str) -> None:
        for anchor in _ids(element):
            found[f"{page}#{anchor}"] = f'<div class="book-preview-{kind}">{content}</div>'

    for term in article.select("dl.glossary > dt[id]"):
        definition = term.find_next_sibling("dd")
        title = _clean(term, page_dir).get_text().strip()
        body = _clean(definition, page_dir).decode_contents() if definition else ""
        add(term, f'<p class="book-preview-title">{title}</p>{body}', "term")
    for entry in article.select("div.citation[id]"):
        text = _clean(entry.find("p") or entry, page_dir)
        add(entry, text.decode(), "citation")
    for figure in article.select("figure[id]"):
        add(figure, _clean(figure, page_dir).decode(), "figure")
    for equation in article.select("div.math[id]"):
        add(equation, _clean(equation, page_dir).decode(), "equation")
    for section in article.select("section[id]"):
        heading = section.find(["h1", "h2", "h3", "h4"], recursive=False)
        if heading is None:
            continue
        title = _clean(heading, page_dir).get_text().strip()
        paragraph = next((p for p in section.find_all("p")
                          if "admonition-title" not in p.get("class", [])
                          and p.find_parent("section") is section), None)
        text = ""
        if paragraph is not None and len(paragraph.get_text()) > SECTION_TEXT_LIMIT:
            words = paragraph.get_text()[:SECTION_TEXT_LIMIT].rsplit(" ", 1)[0]
            text = f"<p>{_escape(words)} …</p>"
        elif paragraph is not None:
            text = _clean(paragraph, page_dir).decode()
        add(section, f'<p class="book-preview-title">{_escape(title)}</p>{text}', "section")
    return found


def _escape(text: str) -> str:
    import html

    return html.escape(text, quote=False)


def site_previews(outdir: Path, pages: list[str], cache: dict | None = None) -> dict[str, str]:
    """Every page's previews, sorted by key. ``cache`` maps a page to ``{"digest": sha256 of its
    HTML, "previews": ...}``: a page whose HTML has that digest is not parsed again, and the
    entries of the pages parsed are added to it."""
    cache = {} if cache is None else cache
    previews: dict[str, str] = {}
    for page in pages:
        path = outdir / page
        if not path.is_file():
            continue
        html = path.read_bytes()
        digest = hashlib.sha256(html).hexdigest()
        entry = cache.get(page)
        if entry is None or entry.get("digest") != digest:
            entry = {"digest": digest, "previews": page_previews(html.decode("utf-8"), page)}
            cache[page] = entry
        previews.update(entry["previews"])
    return dict(sorted(previews.items()))


def load_cache(path: Path) -> dict:
    """The pages' cached previews in ``path``, or nothing if it is missing, unreadable or was
    written by another version of this extension."""
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(stored, dict) or stored.get("code") != CODE_DIGEST:
        return {}
    return stored.get("pages", {})


def _add_static_path(app: Sphinx, config: Config) -> None:
    config.html_static_path = [*config.html_static_path, str(STATIC)]


def _write_data(app: Sphinx, exception: Exception | None) -> None:
    if exception is not None or app.builder.format != "html":
        return
    pages = [app.builder.get_target_uri(doc) for doc in sorted(app.env.found_docs)]
    cache_path = Path(app.doctreedir) / CACHE_FILE
    cache = load_cache(cache_path)
    previews = site_previews(Path(app.outdir), pages, cache)
    text = "window.BOOK_PREVIEWS = " + json.dumps(previews, ensure_ascii=False, indent=0) + ";\n"
    (Path(app.outdir) / "_static" / DATA_FILE).write_text(text, encoding="utf-8")
    kept = {page: cache[page] for page in pages if page in cache}
    cache_path.write_text(json.dumps({"code": CODE_DIGEST, "pages": kept}), encoding="utf-8")


def setup(app: Sphinx) -> dict:
    app.connect("config-inited", _add_static_path)
    app.add_css_file("book.css")
    app.add_js_file(DATA_FILE, loading_method="defer")
    app.add_js_file("previews.js", loading_method="defer")
    app.add_js_file("scroll-boxes.js", loading_method="defer")
    app.connect("build-finished", _write_data)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
