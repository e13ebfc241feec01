"""Sphinx extension: serve the explorable figures' JavaScript from the site, and their static
images as files.

An explorable (``gradflow.explorables``) is glued into a page as HTML: its static image (inlined
as a data URI), an empty element for the live chart, and its Vega-Lite specification as JSON.
This extension

* adds Vega, Vega-Lite and vega-embed (one file, ``_static/explorables/vega.min.js``, bundled
  offline by ``vl_convert.javascript_bundle`` while the chapters are read, and written again only
  for another version) and
  ``_static/explorables.js`` (from ``_ext/static/``), which draws the charts, to the pages that
  hold an explorable, and to no other page;
* once every page is written, moves each inlined static image into ``_images/explorable-<name>.svg``
  and points the page at it, so the page's HTML stays small, the browser caches the image, and a
  figure's preview (``_ext/previews.py``, which runs after this) shows it like any other image.

Nothing is loaded from another host, and the same sources give the same bytes.
"""

from __future__ import annotations

import base64
import re
import threading
from pathlib import Path

from sphinx.application import Sphinx

MARKER = 'class="gradflow-explorable"'
BUNDLE = "explorables/vega.min.js"
#: An explorable's inlined image, as ``gradflow.explorables.Explorable.html`` writes it.
INLINED = re.compile(
    r'(<div class="gradflow-explorable" id="explorable-(?P<name>[a-z][a-z0-9-]*)"[^>]*>\s*'
    r'<img class="gradflow-explorable-fallback" alt="[^"]*" )'
    r'src="data:image/svg\+xml;base64,(?P<data>[A-Za-z0-9+/=]+)"'
)


def bundle_header() -> str:
    import vl_convert

    from gradflow.explorables import VEGA_LITE_VERSION

    return (
        f"/*! Vega {vl_convert.get_vega_version()}, Vega-Lite {VEGA_LITE_VERSION} and vega-embed "
        f"{vl_convert.get_vega_embed_version()} (BSD-3-Clause, University of Washington "
        f"Interactive Data Lab), with their dependencies under their own open-source licences; "
        f"bundled by vl-convert-python {vl_convert.__version__}. */\n"
    )


def write_bundle(static: Path) -> Path:
    """``_static/explorables/vega.min.js``, written only when missing or from another version."""
    import vl_convert

    from gradflow.explorables import VEGA_LITE_VERSION

    path = static / BUNDLE
    header = bundle_header()
    if path.is_file():
        with path.open(encoding="utf-8") as existing:
            if existing.readline() == header:
                return path
    path.parent.mkdir(parents=True, exist_ok=True)
    # The bundle declares its names at the top level (``const _``, ...), which a classic script
    # shares with the page's other scripts (Sphinx's own declare ``_``): a function scope keeps
    # them apart; the bundle's only exports are its assignments to ``window``.
    bundle = vl_convert.javascript_bundle(vl_version=VEGA_LITE_VERSION)
    path.write_text(f"{header}(function () {{\n{bundle}\n}})();\n", encoding="utf-8")
    return path


def externalise_images(page: Path, images: Path, prefix: str) -> int:
    """Move the page's inlined explorable images into ``images``; returns how many it moved."""
    text = page.read_text(encoding="utf-8")
    moved = 0

    def move(match: re.Match) -> str:
        nonlocal moved
        name = f"explorable-{match['name']}.svg"
        images.mkdir(parents=True, exist_ok=True)
        (images / name).write_bytes(base64.b64decode(match["data"]))
        moved += 1
        return f'{match[1]}src="{prefix}_images/{name}"'

    text = INLINED.sub(move, text)
    if moved:
        page.write_text(text, encoding="utf-8")
    return moved


def _start_bundle(app: Sphinx) -> None:
    """Write the bundle in a thread while the chapters are read (and executed): the pages
    need it on disk when they are written, to name its checksum in their script tags."""
    if app.builder.format != "html":
        return
    thread = threading.Thread(target=write_bundle, args=(Path(app.outdir) / "_static",))
    thread.start()
    app._explorables_bundle = thread


def _join_bundle(app: Sphinx, env) -> None:
    thread = getattr(app, "_explorables_bundle", None)
    if thread is not None:
        thread.join()


def _add_scripts(app: Sphinx, pagename, templatename, context, doctree) -> None:
    if MARKER in (context.get("body") or ""):
        app.add_js_file(BUNDLE, loading_method="defer")
        app.add_js_file("explorables.js", loading_method="defer")


def _finish(app: Sphinx, exception: Exception | None) -> None:
    if exception is not None or app.builder.format != "html":
        return
    outdir = Path(app.outdir)
    pages = [app.builder.get_target_uri(doc) for doc in sorted(app.env.found_docs)]
    for page in pages:
        path = outdir / page
        if path.is_file():
            prefix = "../" * page.count("/")
            externalise_images(path, outdir / "_images", prefix)


def setup(app: Sphinx) -> dict:
    app.connect("builder-inited", _start_bundle)
    app.connect("env-updated", _join_bundle)
    # html-page-context stops at the first handler that returns a template: run before the theme's
    app.connect("html-page-context", _add_scripts, priority=100)
    app.connect("build-finished", _finish, priority=400)   # before _ext/previews.py reads the pages
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
