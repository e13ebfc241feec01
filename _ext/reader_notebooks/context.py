"""The conversion's shared pieces: the patterns of MyST syntax it reads, the error it raises for
what it cannot convert, and the ``Context`` of one chapter (its glue data and the book's targets)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

ROLE = re.compile(r"\{(?P<name>[a-z][\w:+-]*)\}`(?P<content>[^`]*)`")
CODE_SPAN = re.compile(r"(`+)(?:.|\n)*?(?<!`)\1(?!`)")
FENCE_OPEN = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,}|:{3,})(?P<info>.*)$")
DIRECTIVE_INFO = re.compile(r"^\{(?P<name>[^}]+)\}\s*(?P<argument>.*)$")
OPTION = re.compile(r"^:(?P<key>[\w-]+):\s*(?P<value>.*)$")
TARGET = re.compile(r"^\((?P<label>[^)\s]+)\)=\s*$")
MATH_LABEL = re.compile(r"^\$\$\s*\((?P<label>[^)\s]+)\)\s*$")
TITLED = re.compile(r"^(?P<title>.+?)\s*<(?P<target>[^<>]+)>$", re.DOTALL)
ADMONITIONS = {"note", "tip", "hint", "important", "warning", "caution", "attention", "danger",
               "error", "seealso"}



class ConversionError(ValueError):
    """A construct of a chapter's Markdown that has no plain-Markdown form here."""


@dataclass
class Glued:
    """One glued value as the page shows it (in reading order)."""

    key: str
    spec: str
    text: str


@dataclass
class Context:
    """What converting one chapter needs from the build: its glue data and the book's
    cross-reference targets. Every lookup raises ConversionError when a name is unknown."""

    docname: str
    site: str  # the site's base URL, ending in "/"
    glue: dict[str, dict]  # key -> the glue output (its data without the glue prefix)
    labels: dict[str, tuple[str, str, str]] = field(default_factory=dict)  # std domain labels
    anonlabels: dict[str, tuple[str, str]] = field(default_factory=dict)  # labels without a title
    terms: dict[str, tuple[str, str]] = field(default_factory=dict)  # lower-case term -> target
    figure_numbers: dict[str, str] = field(default_factory=dict)  # label -> "8"
    equation_numbers: dict[str, str] = field(default_factory=dict)  # label -> "1"
    citations: dict[str, dict[str, str]] = field(default_factory=dict)  # key -> label parts
    figure_format: str = "Fig. %s"
    exercise_numbers: dict[str, str] = field(default_factory=dict)  # label -> "1.1"
    exercise_format: str = "Exercise %s"
    citations_page: str = "references"  # the page that holds the bibliography
    glued: list[Glued] = field(default_factory=list)
    cited: list[str] = field(default_factory=list)

    def url(self, docname: str, anchor: str = "") -> str:
        return f"{self.site}{docname}.html" + (f"#{anchor}" if anchor else "")

    def glue_data(self, key: str) -> dict[str, Any]:
        if key not in self.glue:
            raise ConversionError(f"no glued value {key!r}")
        return self.glue[key]

    def exercise(self, label: str) -> str:
        if label not in self.exercise_numbers:
            raise ConversionError(f"no numbered exercise {label!r}")
        return self.exercise_format.replace("%s", self.exercise_numbers[label])

    def figure(self, label: str) -> str:
        if label not in self.figure_numbers:
            raise ConversionError(f"no numbered figure {label!r}")
        return self.figure_format.replace("%s", self.figure_numbers[label])




def _joined(text: str | list[str]) -> str:
    """A notebook's multi-line string, which nbformat stores as a string or a list of lines."""
    return text if isinstance(text, str) else "".join(text)
