"""Sphinx extension: the download menu offers the printed PDFs, where the site has them.

``scripts/pdf.py`` prints the built site to ``pdf/<page>.pdf`` and ``pdf/gradflow-book.pdf``
inside it, after the build, so the build cannot see them. A build that will be followed by that
command (``.github/workflows/publish.yml``) sets ``BOOK_PDF_LINKS=1``; every page's download menu
then offers its own PDF and the whole book's, in place of the theme's ".pdf" button (which asks
the browser to print the page, with the print styles of ``book/_static/print.css``). Without it
the menu keeps that button, and no page links a file the site does not have.
"""

from __future__ import annotations

import os
from pathlib import PurePosixPath

from sphinx.application import Sphinx

FOLDER = "pdf"
BOOK = "gradflow-book.pdf"  # scripts/pdf.py writes this name


def enabled() -> bool:
    return os.environ.get("BOOK_PDF_LINKS", "") == "1"


def offer_pdfs(app: Sphinx, pagename, templatename, context, doctree) -> None:
    if not app.config.pdf_downloads:
        return
    pathto = context["pathto"]
    for group in context.get("header_buttons", []):
        if group.get("label") != "download-buttons":
            continue
        buttons = [b for b in group["buttons"] if b.get("label") != "download-pdf-button"]
        page = f"{FOLDER}/{PurePosixPath(pagename).name}.pdf"
        buttons.append({"type": "link", "url": pathto(page, 1), "text": ".pdf",
                        "tooltip": "Download this page as PDF", "icon": "fas fa-file-pdf",
                        "label": "download-pdf-button"})
        buttons.append({"type": "link", "url": pathto(f"{FOLDER}/{BOOK}", 1), "text": "Book .pdf",
                        "tooltip": "Download the whole book as PDF", "icon": "fas fa-book",
                        "label": "download-book-pdf-button"})
        group["buttons"] = buttons


def setup(app: Sphinx) -> dict:
    app.add_config_value("pdf_downloads", enabled(), "html", bool)
    app.connect("html-page-context", offer_pdfs, priority=600)  # after the theme fills the menu
    # It only edits the context of the page being written: safe in parallel.
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
