"""Inline roles: a glued value becomes the text the page shows; ``{term}``, ``{ref}``, ``{numref}``,
``{eq}`` and ``{cite:p}``/``{cite:t}`` become links, numbers and author-year citations."""

from __future__ import annotations

from .context import CODE_SPAN, ROLE, TITLED, Context, ConversionError, Glued


def _titled(content: str) -> tuple[str | None, str]:
    """``"text <target>"`` -> ("text", "target"); ``"target"`` -> (None, "target")."""
    match = TITLED.match(content.strip())
    if match:
        return " ".join(match["title"].split()), match["target"].strip()
    return None, " ".join(content.split())


def glue_text(context: Context, content: str) -> str:
    from myst_nb.core.variables import format_plain_text

    key, spec = content.rsplit(":", 1) if ":" in content else (content, "")
    data = context.glue_data(key)
    if "text/plain" not in data:
        raise ConversionError(f"glued value {key!r} has no text/plain")
    try:
        text = format_plain_text(data["text/plain"], spec or "s")
    except (TypeError, ValueError) as error:  # myst-nb warns, and so does this extension
        raise ConversionError(f"glued value {key!r} cannot be formatted as {spec!r}: {error}") from None
    context.glued.append(Glued(key, spec, text))
    return text


def convert_role(context: Context, name: str, content: str) -> str:
    if name == "glue:text":
        return glue_text(context, content)
    if name in ("glue", "glue:", "glue:any"):
        data = context.glue_data(content.strip())
        if set(data) != {"text/plain"}:
            raise ConversionError(f"inline glue of {content!r} is not plain text")
        text = format_glued_plain(data["text/plain"])
        context.glued.append(Glued(content.strip(), "", text))
        return text
    if name == "term":
        title, target = _titled(content)
        found = context.terms.get(target.lower())
        if found is None:
            raise ConversionError(f"no glossary term {target!r}")
        return f"[{title or target}]({context.url(*found)})"
    if name == "ref":
        title, target = _titled(content)
        if target in context.labels:
            docname, anchor, section = context.labels[target]
            return f"[{title or section}]({context.url(docname, anchor)})"
        if title and target in context.anonlabels:  # a label above a paragraph, not a title
            return f"[{title}]({context.url(*context.anonlabels[target])})"
        raise ConversionError(f"no label {target!r}")
    if name == "numref":
        title, target = _titled(content)
        if title:
            number = context.figure_numbers.get(target)
            if number is None:
                raise ConversionError(f"no numbered figure {target!r}")
            return title.replace("%s", number).replace("{number}", number)
        return context.figure(target)
    if name == "eq":
        label = content.strip()
        if label not in context.equation_numbers:
            raise ConversionError(f"no numbered equation {label!r}")
        return f"({context.equation_numbers[label]})"
    if name in ("cite", "cite:p", "cite:t", "cite:ps", "cite:ts"):
        keys = [k.strip() for k in content.split(",") if k.strip()]
        for key in keys:
            if key not in context.citations:
                raise ConversionError(f"no bibliography entry {key!r}")
            if key not in context.cited:
                context.cited.append(key)
        parts = [context.citations[k] for k in keys]
        if name.startswith("cite:t"):
            return "; ".join(f"{p['authors']} ({p['year']})" for p in parts)
        return "(" + "; ".join(f"{p['authors']}, {p['year']}" for p in parts) + ")"
    raise ConversionError(f"unknown role {{{name}}}")


def format_glued_plain(text: str) -> str:
    from myst_nb.core.variables import format_plain_text

    return format_plain_text(text, "")


def convert_inline(context: Context, text: str) -> str:
    """Replace every role in ``text``, leaving code spans as they are."""
    out, position = [], 0
    while position < len(text):
        role = ROLE.search(text, position)
        code = CODE_SPAN.search(text, position)
        if role is None and code is None:
            out.append(text[position:])
            break
        if role is not None and (code is None or role.start() <= code.start()):
            out.append(text[position:role.start()])
            out.append(convert_role(context, role["name"], role["content"]))
            position = role.end()
        else:
            out.append(text[position:code.end()])
            position = code.end()
    return "".join(out)

