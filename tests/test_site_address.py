"""A site that is found and shared: social cards, the sitemap and the 404 page, all at the address
that follows from ``repository.url`` (``_ext/site_address.py``).

The expected address is derived here from ``_config.yml`` on its own (GitHub Pages' rule,
``https://<owner>.github.io/<name>/``); the built files are read with BeautifulSoup and
ElementTree, and every file they name is looked for in the built site.
"""

from __future__ import annotations

import re
from types import SimpleNamespace
from xml.etree import ElementTree

import pytest
import yaml
from bs4 import BeautifulSoup

from conftest import NOT_FOUND_PAGE, REPO, load_local_extension, site_pages

load_local_extension("reader_notebooks")   # site_address imports its site_url
site_address = load_local_extension("site_address")


def pages_address() -> str:
    config = yaml.safe_load((REPO / "_config.yml").read_text())
    owner, name = re.match(r"https://github\.com/([^/]+)/([^/]+)$",
                           config["repository"]["url"]).groups()
    return f"https://{owner.lower()}.github.io/{name}/"


def test_the_social_cards_icon_is_the_books_icon_drawn_as_png():
    import vl_convert

    svg = (REPO / site_address.ICON).read_text(encoding="utf-8")
    assert (REPO / site_address.LOGO).read_bytes() == vl_convert.svg_to_png(svg, scale=8)


@pytest.mark.build
def test_the_sitemap_lists_every_page_at_the_sites_address_in_order(built_book):
    address = pages_address()
    tree = ElementTree.parse(built_book.html / "sitemap.xml")
    namespace = {"s": site_address.SITEMAP_NS}
    listed = [loc.text for loc in tree.getroot().findall("s:url/s:loc", namespace)]
    assert listed == sorted(listed)
    pages = [p.relative_to(built_book.html).as_posix() for p in site_pages(built_book.html)]
    expected = {address + page for page in pages if page not in ("search.html", "genindex.html",
                                                                 "index.html")}
    assert expected <= set(listed), expected - set(listed)
    for url in listed:
        assert url.startswith(address)
        assert (built_book.html / url.removeprefix(address)).is_file(), url


@pytest.mark.build
def test_every_chapter_has_open_graph_tags_and_a_social_card(built_book):
    address = pages_address()
    for page in sorted((built_book.html / "book").glob("*.html")):
        soup = BeautifulSoup(page.read_text(encoding="utf-8"), "html.parser")
        tags = {m["property"]: m["content"] for m in soup.select("meta[property^='og:']")}
        path = page.relative_to(built_book.html).as_posix()
        assert tags["og:url"] == address + path
        assert soup.select_one('link[rel="canonical"]')["href"] == address + path
        assert tags["og:site_name"] == yaml.safe_load((REPO / "_config.yml").read_text())["title"]
        assert tags["og:title"] and tags["og:description"]
        card = tags["og:image"]
        assert card.startswith(address + "_images/social_previews/") and card.endswith(".png")
        assert (built_book.html / card.removeprefix(address)).stat().st_size > 10_000, card


@pytest.mark.build
def test_the_404_page_links_into_the_site_from_any_address(built_book):
    """GitHub Pages serves 404.html for a missing address in any folder, so what it loads and its
    links into the site are absolute paths under the site's: each must name a file of the site,
    and nothing is loaded from another host (links out, such as the repository's, may leave)."""
    address = pages_address()
    prefix = "/" + address.split("/", 3)[3]
    page = built_book.html / NOT_FOUND_PAGE
    soup = BeautifulSoup(page.read_text(encoding="utf-8"), "html.parser")
    assert "404" in soup.title.get_text() or "not found" in soup.get_text().lower()
    loaded = [tag["src"] for tag in soup.select("[src]")] + [
        link["href"] for link in soup.select("link[href]") if link.get("rel") != ["canonical"]]
    links = [a["href"] for a in soup.select("a[href]")]
    site_links = [ref for ref in links if not ref.startswith(("#", "https://", "http://"))]
    assert loaded and site_links
    for ref in loaded + site_links:
        ref = ref.split("#")[0].split("?")[0]
        assert "//" not in ref, f"404.html loads from another host: {ref}"
        assert ref.startswith(prefix), ref
        target = built_book.html / ref.removeprefix(prefix)
        assert target.is_file() or (target / "index.html").is_file(), ref
    canonical = soup.select_one('link[rel="canonical"]')["href"]
    assert canonical == address + NOT_FOUND_PAGE
    assert str(built_book.root) not in page.read_text(encoding="utf-8")


def test_the_address_follows_the_repository(tmp_path):
    """configure() gives all three extensions the address the launch buttons use."""

    config = SimpleNamespace(
        html_title="A book", ogp_social_cards=None, reader_notebooks_site_url="",
        html_theme_options={"repository_url": "https://github.com/Some-Owner/some-book"})
    site_address.configure(SimpleNamespace(config=config), config)
    assert config.html_baseurl == config.ogp_site_url == "https://some-owner.github.io/some-book/"
    assert config.notfound_urls_prefix == "/some-book/"
    assert config.sitemap_url_scheme == "{link}"
    assert config.ogp_site_name == "A book"
    assert config.ogp_social_cards["image_mini"] == site_address.LOGO
