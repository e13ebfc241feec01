"""Sphinx extension: small fixes to the theme's output that a browser would otherwise report.

- sphinx-thebe registers its inline configuration script from an ``env-before-read-docs`` handler,
  and with Sphinx 7 the script ends up twice in every page, so the browser reports
  "Identifier 'THEBE_JS_URL' has already been declared". Each page keeps one copy of every script.
- Sphinx writes a bibliography as ``<div role="list">`` holding ``role="doc-biblioentry"``
  entries, a role ARIA 1.2 deprecates and that axe-core reports as a list without list items
  (aria-required-children, critical). The entries get ``role="listitem"``.
"""

from __future__ import annotations

from sphinx.application import Sphinx


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


def setup(app: Sphinx) -> dict:
    app.connect("html-page-context", _drop_duplicate_scripts)
    app.connect("html-page-context", _fix_bibliography_roles)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
