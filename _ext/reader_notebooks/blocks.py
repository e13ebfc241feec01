"""Blocks: directives and boxes. Admonitions become quotes with a bold title; dropdowns, cards and
tabs a bold heading with their content; glued tables, printouts and figures what the page shows
(a figure as a cell attachment, with its number and caption); label lines disappear."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .context import (
    ADMONITIONS,
    DIRECTIVE_INFO,
    FENCE_OPEN,
    MATH_LABEL,
    OPTION,
    TARGET,
    Context,
    ConversionError,
    _joined,
)
from .roles import convert_inline


@dataclass
class Directive:
    name: str
    argument: str
    options: dict[str, str]
    body: list[str]


def _closes(line: str, fence: str) -> bool:
    stripped = line.strip()
    return bool(stripped) and set(stripped) == {fence[0]} and len(stripped) >= len(fence)


def _read_directive(lines: list[str], start: int, fence: str, info: re.Match) -> tuple[Directive, int]:
    """The directive opened at ``lines[start]`` and the index of the line after its closing fence."""
    index, options = start + 1, {}
    while index < len(lines) and (option := OPTION.match(lines[index].strip())):
        options[option["key"]] = option["value"].strip()
        index += 1
    body, nested = [], []  # the fences of directives opened inside this one, innermost last
    while index < len(lines):
        line = lines[index]
        opened = FENCE_OPEN.match(line)
        if not nested and _closes(line, fence):
            return Directive(info["name"].strip(), info["argument"].strip(), options, body), index + 1
        if opened and opened["fence"][0] == fence[0] and opened["info"].strip():
            nested.append(opened["fence"])
        elif nested and _closes(line, nested[-1]):
            nested.pop()
        body.append(line)
        index += 1
    raise ConversionError(f"directive {info['name']!r} is never closed")


def convert_markdown(context: Context, source: str) -> tuple[str, dict[str, dict[str, str]]]:
    """A chapter's MyST Markdown cell as plain Jupyter Markdown, and the cell's attachments."""
    attachments: dict[str, dict[str, str]] = {}
    text = "\n".join(convert_lines(context, source.split("\n"), attachments))
    text = re.sub(r"\n{3,}", "\n\n", text).strip("\n")
    return text, attachments


def convert_lines(context: Context, lines: list[str], attachments: dict) -> list[str]:
    out: list[str] = []
    paragraph: list[str] = []

    def flush() -> None:
        if paragraph:
            out.extend(convert_inline(context, "\n".join(paragraph)).split("\n"))
            paragraph.clear()

    index = 0
    while index < len(lines):
        line = lines[index]
        if TARGET.match(line.strip()):
            flush()
            index += 1
            continue
        if line.strip() == "$$" or (line.strip().startswith("$$") and not line.strip().endswith("$$")):
            flush()
            index = _copy_math(context, lines, index, out)
            continue
        opened = FENCE_OPEN.match(line)
        if opened:
            flush()
            info = DIRECTIVE_INFO.match(opened["info"].strip())
            fence = opened["fence"]
            if info is None:
                if fence[0] == ":":
                    raise ConversionError(f"a colon fence without a directive: {line!r}")
                index = _copy_code(lines, index, fence, out)
                continue
            directive, index = _read_directive(lines, index, fence, info)
            out.append("")
            out.extend(convert_directive(context, directive, attachments))
            out.append("")
            continue
        if not line.strip():
            flush()
            out.append(line)
        else:
            paragraph.append(line)
        index += 1
    flush()
    return out


def _copy_code(lines: list[str], start: int, fence: str, out: list[str]) -> int:
    out.append(lines[start])
    index = start + 1
    while index < len(lines):
        out.append(lines[index])
        if _closes(lines[index], fence) and lines[index].strip()[0] == fence[0]:
            return index + 1
        index += 1
    return index


def _copy_math(context: Context, lines: list[str], start: int, out: list[str]) -> int:
    """Copy a ``$$`` block; a label after its closing ``$$`` becomes a ``\\tag`` inside it."""
    out.append(lines[start])
    index = start + 1
    while index < len(lines):
        line = lines[index]
        label = MATH_LABEL.match(line.strip())
        if label:
            number = context.equation_numbers.get(label["label"])
            if number is None:
                raise ConversionError(f"no numbered equation {label['label']!r}")
            out.append(f"\\tag{{{number}}}")
            out.append("$$")
            return index + 1
        out.append(line)
        if line.strip().endswith("$$"):
            return index + 1
        index += 1
    raise ConversionError("a $$ block is never closed")


def _quote(lines: list[str]) -> list[str]:
    return [f"> {line}".rstrip() for line in lines]


def convert_directive(context: Context, directive: Directive, attachments: dict) -> list[str]:
    name, argument = directive.name, directive.argument
    body = convert_lines(context, directive.body, attachments)
    if name == "admonition" or name in ADMONITIONS:
        title = convert_inline(context, argument) if name == "admonition" else name.capitalize()
        return _quote([f"**{title}**", "", *_trim(body)])
    if name in ("dropdown", "grid-item-card", "tab-item", "card"):
        title = convert_inline(context, argument)
        return ([f"**{title}**", ""] if title else []) + _trim(body)
    if name in ("grid", "tab-set"):
        return _trim(body)
    if name == "exercise":  # sphinx-exercise: numbered like the site, "Exercise 1.1"
        title = context.exercise(directive.options.get("label", ""))
        if argument:
            title += f" ({convert_inline(context, argument)})"
        return _quote([f"**{title}**", "", *_trim(body)])
    if name in ("solution", "solution-start"):  # a solution's cells follow until solution-end
        heading = f"**Solution to {context.exercise(argument)}**"
        return [heading, "", *_trim(body)] if name == "solution" else [heading]
    if name in ("solution-end", "index"):  # an index entry is for the site's index page only
        return []
    if name in ("glue", "glue:", "glue:any"):
        return glued_block(context, argument)
    if name == "glue:figure":
        return glued_figure(context, directive, body, attachments)
    raise ConversionError(f"unknown directive {{{name}}}")


def _trim(lines: list[str]) -> list[str]:
    while lines and not lines[0].strip():
        lines = lines[1:]
    while lines and not lines[-1].strip():
        lines = lines[:-1]
    return lines


def glued_block(context: Context, key: str) -> list[str]:
    data = context.glue_data(key)
    if "text/html" in data:
        html = re.sub(r"<style[^>]*>.*?</style>\s*", "", data["text/html"], flags=re.DOTALL)
        return [line.rstrip() for line in html.strip().split("\n") if line.strip()]
    if "text/plain" in data:
        return ["```", *data["text/plain"].rstrip("\n").split("\n"), "```"]
    raise ConversionError(f"glued output {key!r} has neither HTML nor text")


IMAGE_TYPES = {"image/svg+xml": "svg", "image/png": "png", "image/jpeg": "jpg"}


def _svg_title(image: str | list[str]) -> str:
    """The ``<title>`` an SVG image gives itself (an explorable figure's static image does), or
    an empty string."""
    import html

    match = re.search(r"<title>(.*?)</title>", _joined(image), re.DOTALL)
    return html.unescape(match[1]) if match else ""


def glued_figure(context: Context, directive: Directive, caption: list[str], attachments: dict):
    key = directive.argument
    data = context.glue_data(key)
    kind = next((k for k in IMAGE_TYPES if k in data), None)
    if kind is None:
        raise ConversionError(f"glued figure {key!r} has no image")
    filename = f"{key}.{IMAGE_TYPES[kind]}"
    image = data[kind]
    attachments[filename] = {kind: _joined(image)}
    alt = directive.options.get("alt") or _svg_title(image if kind == "image/svg+xml" else "") or key
    alt = " ".join(alt.replace("[", "(").replace("]", ")").split())
    label = directive.options.get("name")
    lines = [f"![{alt}](attachment:{filename})", ""]
    caption = _trim(caption)
    if label:
        number = context.figure(label)
        link = f"[{number}]({context.url(context.docname, label)})"
        caption = [f"**{link}.** " + (caption[0] if caption else ""), *caption[1:]]
    return lines + caption

