"""Every page of the built site, in a real browser (Chromium driven by Playwright).

For every HTML page of the build: no console errors, every image loads, every internal link and
anchor resolves, each launch link opens that page's own notebook, one search field shows, and
axe-core finds no violation of serious or critical impact. The search page finds "GELU". One screenshot per page is
saved under ``_build/screenshots/`` of the working tree.

Chromium comes from Debian (``apt-get install -y chromium``); CI installs it. Where it is missing
these tests fail under CI (``CI`` set) and are skipped with a clear reason elsewhere.
"""

from __future__ import annotations

import functools
import http.server
import json
import re
import shutil
import threading
from pathlib import Path
from urllib.parse import unquote, urljoin, urlparse

import pytest
from bs4 import BeautifulSoup
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from conftest import CHROMIUM, REPO, is_notebook, require_chromium, site_pages

pytestmark = [pytest.mark.build, pytest.mark.browser]

CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-quic", "--disable-sync",
    "--disable-background-networking", "--disable-component-update",
]
SCREENSHOTS = REPO / "_build" / "screenshots"
BLOCKING_IMPACTS = {"serious", "critical"}
#: True once every explorable figure of the page is drawn (at once on a page without one): axe
#: then checks the explorables' controls and charts with the rest of the page.
EXPLORABLES_DRAWN = ("() => [...document.querySelectorAll('.gradflow-explorable')]"
                     ".every(e => e.gradflowView)")

#: The search fields and buttons a reader can see, outside the search dialog they open.
VISIBLE_SEARCH = """() => [...document.querySelectorAll('.search-button__button, form.bd-search')]
  .filter(e => !e.closest('dialog') && e.getClientRects().length > 0
               && getComputedStyle(e).visibility !== 'hidden')
  .map(e => e.className)"""
#: True once the theme's search dialog is open with the cursor in its field.
SEARCH_OPEN = """() => { const dialog = document.getElementById('pst-search-dialog');
  return dialog.open && document.activeElement === dialog.querySelector('input[name=q]'); }"""


def open_search_with(page, how) -> None:
    """Open the search dialog with ``how`` (a click, a key), check it, and close it again."""
    how()
    page.wait_for_function(SEARCH_OPEN, timeout=5_000)
    page.keyboard.press("Escape")
    page.wait_for_function("() => !document.getElementById('pst-search-dialog').open",
                           timeout=5_000)


def one_search_field(page) -> list[str]:
    """The page's visible search controls, unless they are exactly one search field."""
    shown = page.evaluate(VISIBLE_SEARCH)
    if page.url.endswith("/search.html"):   # the search page's own form, in its article
        shown = [c for c in shown if c.split()[0] != "bd-search"]
    return [] if len(shown) == 1 and "search-button-field" in shown[0].split() else shown


def pages_of(html_root: Path) -> list[str]:
    """Every HTML page of the site, as a path relative to its root."""
    return [str(p.relative_to(html_root)) for p in site_pages(html_root)]


def notebook_source(page: str) -> str | None:
    """The repository path of the page's source if it is an executable chapter, else None."""
    source = REPO / Path(page).with_suffix(".md")
    return str(source.relative_to(REPO)) if is_notebook(source) else None


@pytest.fixture(scope="module")
def browser():
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def site(built_book):
    """The built site served on 127.0.0.1 (a free port), for the duration of this module.

    Yields the base URL, the site's folder, and the list of every error the server answered, as
    ``(status, path)``. The server's own record catches requests a page's listeners may not see:
    Chromium fetches ``/favicon.ico`` by itself for a page that names no icon, and whether its
    404 reaches the console before the page counts as loaded is a race.
    """
    served_errors: list[tuple[int, str]] = []
    handler = functools.partial(
        RecordingHandler, directory=str(built_book.html), served_errors=served_errors
    )
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", built_book.html, served_errors
    server.shutdown()
    server.server_close()


class RecordingHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files quietly and records every error status it answers."""

    def __init__(self, *args, served_errors: list[tuple[int, str]], **kwargs):
        self.served_errors = served_errors
        super().__init__(*args, **kwargs)

    def send_error(self, code, message=None, explain=None):
        self.served_errors.append((int(code), self.path))
        try:
            super().send_error(code, message, explain)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the browser already moved on: what matters is recorded above

    def log_message(self, *args):  # keep the test output clean
        pass


@functools.cache  # a page's ids, parsed once: the site does not change while it is served
def page_ids(html_file: Path) -> frozenset[str]:
    soup = BeautifulSoup(html_file.read_text(encoding="utf-8"), "html.parser")
    return frozenset({tag["id"] for tag in soup.select("[id]")}
                     | {tag["name"] for tag in soup.select("a[name]")})


def check_internal_link(href: str, page_url: str, base: str, root: Path) -> str | None:
    """None if ``href`` (on ``page_url``) resolves to an existing file and anchor, else why not."""
    target = urlparse(urljoin(page_url, href))
    if f"{target.scheme}://{target.netloc}/" != base:
        return None  # external: not checked (no network here)
    path = root / unquote(target.path.lstrip("/"))
    if path.is_dir():
        path = path / "index.html"
    if not path.is_file():
        return f"{href}: no file {path.relative_to(root)}"
    if target.fragment and path.suffix == ".html" and unquote(target.fragment) not in page_ids(path):
        return f"{href}: no anchor #{target.fragment} in {path.relative_to(root)}"
    return None


def test_every_page_in_a_real_browser(browser, site):
    from axe_playwright_python.sync_playwright import Axe

    base, root, served_errors = site
    pages = pages_of(root)
    assert "book/shortcut_connections.html" in pages
    if SCREENSHOTS.exists():
        shutil.rmtree(SCREENSHOTS)
    SCREENSHOTS.mkdir(parents=True)
    axe = Axe()
    problems: dict[str, list[str]] = {}
    axe_report: dict[str, list[str]] = {}
    for name in pages:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        errors_before = len(served_errors)
        errors: list[str] = []
        page.on("console", lambda msg, errors=errors: errors.append(
            f"{msg.text} (at {msg.location.get('url') or 'unknown'})") if msg.type == "error" else None)
        page.on("pageerror", lambda exc, errors=errors: errors.append(str(exc)))
        page.on("requestfailed", lambda req, errors=errors: errors.append(
            f"request failed: {req.url}"))
        page.on("response", lambda resp, errors=errors: errors.append(
            f"HTTP {resp.status}: {resp.url}") if resp.status >= 400 else None)
        page.goto(base + name, wait_until="networkidle")
        page.wait_for_function(EXPLORABLES_DRAWN, timeout=30_000)
        url = page.url  # after any redirect (index.html forwards to the first chapter)
        found: list[str] = [f"console: {e}" for e in errors]
        if shown := one_search_field(page):   # one, not the theme's header bar's besides
            found.append(f"not one visible search field: {shown}")

        broken_images = page.eval_on_selector_all(
            "img", "imgs => imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)"
        )
        found += [f"image did not load: {src}" for src in broken_images]

        hrefs = page.eval_on_selector_all("a[href]", "as => as.map(a => a.getAttribute('href'))")
        for href in hrefs:
            if href.startswith(("mailto:", "javascript:")):
                continue
            why = check_internal_link(href, url, base, root)
            if why:
                found.append(f"broken link {why}")

        launch = [h for h in hrefs if "/v2/gh/" in h and "urlpath=" in h]
        source = notebook_source(name)
        if source:
            assert launch, f"{name}: an executable chapter without a launch link"
        for href in launch:  # Binder opens the chapter's reader notebook (_ext/reader_notebooks/)
            if not href.endswith(f"urlpath=lab/tree/{Path(source).with_suffix('.ipynb')}"):
                found.append(f"launch link {href} does not open {source}'s notebook")

        # axe-core fetches the stylesheets itself and resolves an @import against the page rather
        # than the stylesheet (theme.css's "../basic.css" becomes /basic.css): the server's record
        # is read before axe runs.
        served_by_page = served_errors[errors_before:]
        results = axe.run(page)
        violations = results.response["violations"]
        axe_report[name] = sorted(f"{v['impact']}: {v['id']}" for v in violations)
        for violation in results.response["violations"]:
            if violation["impact"] in BLOCKING_IMPACTS:
                targets = [n["target"] for n in violation["nodes"]][:3]
                found.append(f"axe {violation['impact']}: {violation['id']} at {targets}")

        shot = SCREENSHOTS / (re.sub(r"[/\\]", "__", name).removesuffix(".html") + ".png")
        page.screenshot(path=str(shot), full_page=True)
        context.close()
        found += [f"server answered {code} for {path}" for code, path in served_by_page]
        if found:
            problems[name] = found
    (SCREENSHOTS / "axe-report.json").write_text(json.dumps(axe_report, indent=2) + "\n")
    assert not problems, "\n".join(f"{k}:\n  " + "\n  ".join(v) for k, v in problems.items())
    assert sorted(p.name for p in SCREENSHOTS.glob("*.png")) == sorted(
        re.sub(r"[/\\]", "__", n).removesuffix(".html") + ".png" for n in pages
    )


def test_search_finds_gelu(browser, site):
    base, _, _ = site
    page = browser.new_page()
    page.goto(base + "search.html?q=GELU", wait_until="networkidle")
    page.wait_for_selector("ul.search li", timeout=20_000)
    results = page.locator("ul.search li")
    assert results.count() >= 1
    assert any("shortcut" in href for href in page.eval_on_selector_all(
        "ul.search li a", "as => as.map(a => a.getAttribute('href'))"))
    page.close()


PHONE = {"width": 390, "height": 844}
def test_the_search_field_opens_the_search_in_light_and_dark_mode_and_on_a_phone(browser, site):
    """Every page shows one search field at 1280 px (``test_every_page_in_a_real_browser``
    counts them): pydata-sphinx-theme adds a header bar with a second one unless
    ``navbar_persistent`` is set (``_config.yml``). The sidebar's field opens the search dialog, as
    Ctrl+K does, in light and in dark mode; on a phone the article header's search button opens
    it, and the dialog finds "GELU"."""
    base, _, _ = site
    desktop = {"width": 1280, "height": 900}
    for mode in ("light", "dark"):
        context = browser.new_context(viewport=desktop)
        context.add_init_script(f"localStorage.setItem('mode', '{mode}')")
        page = context.new_page()
        page.goto(base + "book/gelu.html", wait_until="load")
        assert page.evaluate("document.documentElement.dataset.theme") == mode
        assert not one_search_field(page), mode
        open_search_with(page, page.locator(".search-button-field").first.click)
        open_search_with(page, functools.partial(page.keyboard.press, "Control+K"))
        context.close()

    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    page.goto(base + "book/gelu.html", wait_until="load")
    shown = page.evaluate(VISIBLE_SEARCH)
    assert len(shown) == 1 and "search-button" in shown[0].split(), shown
    open_search_with(page, page.locator(".search-button").first.click)
    page.locator(".search-button").first.click()
    page.keyboard.type("GELU")
    page.keyboard.press("Enter")
    page.wait_for_url("**/search.html?q=GELU*", timeout=10_000)
    page.wait_for_selector("ul.search li", timeout=20_000)
    context.close()


#: The page's boxes that scroll sideways but are not focusable or have no accessible name.
UNREACHABLE_BOXES = """[...document.querySelectorAll('.bd-article *')].filter(e => {
  const style = getComputedStyle(e);
  return ['auto', 'scroll'].includes(style.overflowX) && e.scrollWidth > e.clientWidth + 1
    && (e.tabIndex < 0 || !(e.getAttribute('aria-label') || e.getAttribute('aria-labelledby')));
}).map(e => e.tagName + '.' + e.className)"""


def test_every_page_fits_a_phone_screen(browser, site):
    """At 390 px no page scrolls sideways: wide tables, equations and code scroll in their own
    boxes, which the keyboard reaches and screen readers can name, and axe finds nothing serious.
    Screenshots land in ``_build/screenshots/phone/``."""
    base, root, _ = site
    shots = SCREENSHOTS / "phone"
    shots.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport=PHONE)
    from axe_playwright_python.sync_playwright import Axe

    too_wide, unreachable, axe_findings = {}, {}, {}
    for name in pages_of(root):
        page = context.new_page()
        page.goto(base + name, wait_until="networkidle")
        page.wait_for_function(EXPLORABLES_DRAWN, timeout=30_000)
        page.evaluate("() => window.MathJax && MathJax.startup && MathJax.startup.promise")
        width = page.evaluate("document.documentElement.scrollWidth")
        if width > PHONE["width"]:
            too_wide[name] = width
        try:  # every box that scrolls sideways can be reached by keyboard, and has a name
            page.wait_for_function(UNREACHABLE_BOXES + ".length === 0", timeout=5_000)
        except PlaywrightTimeout:
            unreachable[name] = page.evaluate(UNREACHABLE_BOXES)
        violations = Axe().run(page).response["violations"]
        blocking = [v["id"] for v in violations if v["impact"] in BLOCKING_IMPACTS]
        if blocking:
            axe_findings[name] = blocking
        shot = shots / (re.sub(r"[/\\]", "__", name).removesuffix(".html") + ".png")
        page.screenshot(path=str(shot), full_page=True)
        page.close()
    context.close()
    assert not too_wide, f"pages wider than a {PHONE['width']}-px screen: {too_wide}"
    assert not unreachable, f"boxes that scroll but cannot be focused or have no name: {unreachable}"
    assert not axe_findings, f"serious or critical axe findings at phone width: {axe_findings}"


def words(text: str) -> str:
    return " ".join(text.split())


def target_text(root: Path, href: str, page: str) -> str:
    """What the reference ``href`` on ``page`` points to, read from the built page itself: a
    term's definition, a bibliography entry, a figure's caption, a section's title."""
    path, _, anchor = href.partition("#")
    target = (root / page).parent / path if path else root / page
    soup = BeautifulSoup(target.read_text(encoding="utf-8"), "html.parser")
    element = soup.find(id=anchor)
    if element.name == "span":  # a label's empty anchor: its section
        element = element.parent
    if element.name == "dt":
        element = element.find_next_sibling("dd")
    elif "citation" in element.get("class", []):
        element = element.find("p")  # the entry without its label
    elif element.name == "figure":
        element = element.select_one(".caption-text")
    elif element.name == "section":
        element = element.find(["h1", "h2", "h3"])
        element.select_one("a.headerlink").decompose()
    return words(element.get_text().split("\\(")[0])  # up to the first equation


PREVIEWED = {
    "term": 'article a.reference.internal[href*="glossary.html#term-"]',
    "citation": 'article a.reference.internal[href*="references.html#"]',
    "figure": 'article a.reference.internal[href^="#fig-"]',
    "section": 'article a.reference.internal[href="vanishing_gradients.html#vanishing-gradients"]',
    "equation": 'article a.reference.internal[href^="#equation-"]',
}


def test_keyboard_focus_previews_terms_citations_figures_and_sections(browser, site):
    from axe_playwright_python.sync_playwright import Axe

    base, root, _ = site
    chapter = "book/shortcut_connections.html"
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(base + chapter, wait_until="networkidle")
    popup = page.locator("#book-preview")
    for kind, selector in PREVIEWED.items():
        link = page.locator(selector).first
        link.focus()
        popup.wait_for(state="visible", timeout=5_000)
        assert link.get_attribute("aria-describedby") == "book-preview", kind
        shown = words(popup.inner_text())
        if kind == "equation":
            assert popup.locator("mjx-container").count() == 1, "the equation is typeset"
            assert words(link.inner_text()) in shown, shown
        else:
            expected = target_text(root, link.get_attribute("href"), chapter)
            assert expected and expected[:60] in shown, f"{kind}: {expected[:60]!r} not in {shown!r}"
        if kind == "figure":
            assert popup.locator("img").evaluate("i => i.complete && i.naturalWidth > 0")
        if kind == "term":  # with a preview open, the page still has no serious accessibility issue
            violations = Axe().run(page).response["violations"]
            blocking = [v["id"] for v in violations if v["impact"] in BLOCKING_IMPACTS]
            assert not blocking, blocking
        page.keyboard.press("Escape")
        popup.wait_for(state="hidden", timeout=5_000)
        assert link.get_attribute("aria-describedby") is None
    page.close()


def test_a_first_tap_previews_and_a_second_follows_the_link(browser, site):
    base, _, _ = site
    context = browser.new_context(viewport=PHONE, has_touch=True)
    page = context.new_page()
    page.goto(base + "book/shortcut_connections.html", wait_until="networkidle")
    link = page.locator(PREVIEWED["term"]).first
    href = link.get_attribute("href")
    link.tap()
    page.locator("#book-preview").wait_for(state="visible", timeout=5_000)
    assert page.url.endswith("book/shortcut_connections.html"), "the first tap stays on the page"
    link.tap()
    page.wait_for_url(f"**/book/{href}", timeout=10_000)
    context.close()
