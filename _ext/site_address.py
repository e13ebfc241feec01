"""Sphinx extension: the site's address, for the extensions that make the book easy to find and share.

The book is published to GitHub Pages at an address that follows from ``repository.url`` in
``_config.yml`` (``https://<owner>.github.io/<name>/``, as the launch buttons derive theirs,
``reader_notebooks.site_url``), so a fork publishes under its own address with no other change.
This extension gives that address to

- sphinxext-opengraph (``ogp_site_url``): each page's Open Graph and Twitter meta tags, with a
  social card image drawn for the page at build time (matplotlib, a font the package ships);
- sphinx-sitemap (``html_baseurl``, which also gives each page its canonical link): ``sitemap.xml``,
  every page's address with no language or version folder (``sitemap_url_scheme``);
- sphinx-notfound-page (``notfound_urls_prefix``): ``404.html``, which GitHub Pages serves for any
  missing address, with links that work from any folder of the site.

None of them has a way to read the address from the repository's settings, hence this extension.
sphinx-sitemap gathers the pages in the order the (parallel) writers finish them; the sitemap is
sorted here afterwards, so two builds write the same bytes. Nothing is loaded from another host:
meta tags and the sitemap name addresses, they do not fetch them.
"""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import urlparse
from xml.etree import ElementTree

from sphinx.application import Sphinx

SITEMAP_NS = "http://www.sitemaps.org/schemas/sitemap/0.9"
#: The social cards' small image, relative to the book's root (``vl_convert.svg_to_png`` of the icon
#: ``book/_static/favicon.svg`` at scale 8).
LOGO = "book/_static/logo.png"
ICON = "book/_static/favicon.svg"


def configure(app: Sphinx, config) -> None:
    from reader_notebooks import site_url

    # The cards' font (Roboto Flex, shipped by sphinxext-opengraph) has no bold face; matplotlib
    # says so on stderr for every card and draws the regular one, which is what the cards show.
    logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)

    address = site_url(app)
    if not address:
        return   # not a GitHub repository: no address to give (sphinx-sitemap then says so)
    config.html_baseurl = address
    config.ogp_site_url = address
    config.ogp_site_name = config.html_title
    # The card's small image: the book's icon (book/_static/favicon.svg, drawn as PNG, which the
    # cards need; tests/test_site_address.py holds the two equal) in place of Sphinx's logo.
    config.ogp_social_cards = {"image_mini": LOGO, "line_color": "#0072B2",
                               **(config.ogp_social_cards or {})}
    config.notfound_urls_prefix = urlparse(address).path
    config.sitemap_url_scheme = "{link}"


def sort_sitemap(app: Sphinx, exception: Exception | None) -> None:
    path = Path(app.outdir) / app.config.sitemap_filename
    if exception is not None or not path.is_file():
        return
    ElementTree.register_namespace("", SITEMAP_NS)
    tree = ElementTree.parse(path)
    root = tree.getroot()
    urls = sorted(root, key=lambda url: url.findtext(f"{{{SITEMAP_NS}}}loc") or "")
    root[:] = urls
    tree.write(path, encoding="utf-8", xml_declaration=True)


def setup(app: Sphinx) -> dict:
    app.connect("config-inited", configure)
    app.connect("build-finished", sort_sitemap, priority=900)   # after sphinx-sitemap's (500)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
