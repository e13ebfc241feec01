"""Sphinx extension: small fixes to the theme's output that a browser would otherwise report.

- sphinx-thebe registers its inline configuration script from an ``env-before-read-docs`` handler,
  and with Sphinx 7 the script ends up twice in every page, so the browser reports
  "Identifier 'THEBE_JS_URL' has already been declared". Each page keeps one copy of every script.
- Sphinx writes a bibliography as ``<div role="list">`` holding ``role="doc-biblioentry"``
  entries, a role ARIA 1.2 deprecates and that axe-core reports as a list without list items
  (aria-required-children, critical). The entries get ``role="listitem"``.
- The site's root ``index.html`` is a bare redirect to the first chapter that sphinx-external-toc
  writes when no page is called ``index``. It names no icon, so a browser opening the site's address
  asks the server for ``/favicon.ico``, which does not exist, and may log the 404. The root page is
  written here instead, before sphinx-external-toc's handler (which then leaves it alone), as a small
  complete page: language, title, the book's icon, the redirect, and a link for a reader whose
  browser does not follow it. The icon is inlined as a ``data:`` URL: a fetched one would be
  cancelled by the immediate redirect, and the browser would report the failed request.
"""

from __future__ import annotations

import base64
import html
import mimetypes
from pathlib import Path

from sphinx.application import Sphinx

ROOT_PAGE = """<!DOCTYPE html>
<html lang="{lang}">
<head>
<meta charset="utf-8">
<title>{title}</title>
{icon}<link rel="canonical" href="{target}">
<meta http-equiv="Refresh" content="0; url={target}">
</head>
<body>
<p><a href="{target}">{title}</a></p>
</body>
</html>
"""


def _script_key(script) -> tuple:
    attributes = getattr(script, "attributes", {}) or {}
    return (str(getattr(script, "filename", script) or ""), tuple(sorted(attributes.items())))


def _drop_duplicate_scripts(app: Sphinx, pagename, templatename, context, doctree) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen: set[tuple] = set()
    unique = []
    for script in scripts:
        key = _script_key(script)
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique


def _fix_bibliography_roles(app: Sphinx, pagename, templatename, context, doctree) -> None:
    body = context.get("body")
    if body and 'role="doc-biblioentry"' in body:
        context["body"] = body.replace('role="doc-biblioentry"', 'role="listitem"')


def root_page(app: Sphinx) -> str:
    """The root ``index.html``: a redirect to the root document that names the book's icon."""
    target = html.escape(app.builder.get_target_uri(app.config.root_doc), quote=True)
    icon = ""
    favicon = app.config.html_favicon
    if favicon:
        if "://" not in favicon:
            data = (Path(app.confdir) / favicon).read_bytes()
            kind = mimetypes.guess_type(favicon)[0] or "image/x-icon"
            favicon = f"data:{kind};base64,{base64.b64encode(data).decode('ascii')}"
        icon = f'<link rel="icon" href="{html.escape(favicon, quote=True)}">\n'
    title = html.escape(app.config.html_title or app.config.project)
    return ROOT_PAGE.format(lang=app.config.language or "en", title=title, icon=icon, target=target)


def _write_root_page(app: Sphinx, exception: Exception | None) -> None:
    if exception is not None or app.builder.name != "html" or app.config.root_doc == "index":
        return
    (Path(app.outdir) / "index.html").write_text(root_page(app), encoding="utf-8")


def setup(app: Sphinx) -> dict:
    app.connect("html-page-context", _drop_duplicate_scripts)
    app.connect("html-page-context", _fix_bibliography_roles)
    app.connect("build-finished", _write_root_page, priority=400)  # before sphinx-external-toc's
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
