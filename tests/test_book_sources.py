"""What the chapters' sources may hold: code the build does not run only as a quotation.

Every solution is an executed cell (issue 14); a fenced ``python`` block is not run by the build,
so one that is not a quotation of someone else's code would be a claim nobody checks. The allowed
blocks are listed here with the reason, and the intro's usage snippet is run by a test.
"""

from __future__ import annotations

import re

import pytest
import torch

from conftest import REPO
from seed_reference import PUBLISHED_WITH_SHORTCUT

FENCE = re.compile(r"^(`{3,}|~{3,})python\s*\n(.*?)^\1\s*$", re.MULTILINE | re.DOTALL)

#: (file, first line of the block): why it may stay a fenced, unexecuted block.
ALLOWED = {
    ("book/gelu.md", ("return 0.5 * x * (1 + torch.tanh(torch.sqrt(torch.tensor(2.0 / torch.pi)) "
                      "* (x + 0.044715 * torch.pow(x, 3))))")):
        "a quotation: the tutorial's GELU, line for line",
    ("book/intro.md", "import torch"):
        "the usage snippet for readers; test_the_intro_usage_snippet_runs runs it",
}


def python_blocks() -> dict[tuple[str, str], str]:
    blocks = {}
    for source in sorted((REPO / "book").glob("*.md")):
        for match in FENCE.finditer(source.read_text(encoding="utf-8")):
            code = match.group(2)
            blocks[(str(source.relative_to(REPO)), code.splitlines()[0].strip())] = code
    return blocks


def test_every_fenced_python_block_is_a_listed_quotation():
    blocks = python_blocks()
    unlisted = sorted(set(blocks) - set(ALLOWED))
    assert not unlisted, (
        "fenced python blocks that the build never runs (make them {code-cell}s, or list a "
        f"quotation in ALLOWED with its reason): {unlisted}")
    assert set(ALLOWED) <= set(blocks), f"listed but gone: {sorted(set(ALLOWED) - set(blocks))}"


def test_the_fence_pattern_finds_blocks():
    text = "prose\n```python\nx = 1\n```\nmore\n````python\ny = 2\n````\n"
    assert [m.group(2) for m in FENCE.finditer(text)] == ["x = 1\n", "y = 2\n"]


def test_the_intro_usage_snippet_runs():
    """The snippet a reader copies from the intro gives the tutorial's published gradients."""
    code = python_blocks()[("book/intro.md", "import torch")]
    *statements, last = code.strip().splitlines()
    namespace: dict = {}
    exec("\n".join(statements), namespace)  # noqa: S102 (the book's own snippet)
    result = eval(last, namespace)
    assert list(result.values()) == pytest.approx(PUBLISHED_WITH_SHORTCUT, rel=1e-6)
    assert isinstance(namespace["torch"], type(torch))


def test_no_solution_is_left_as_a_dropdown():
    """Solutions are sphinx-exercise solutions (numbered, executed), not plain dropdowns."""
    for source in sorted((REPO / "book").glob("*.md")):
        text = source.read_text(encoding="utf-8")
        assert "{dropdown} Solution" not in text, source.name
        starts = re.findall(r"^:::\{solution-start\} (\S+)", text, re.MULTILINE)
        exercises = re.findall(r"^:::\{exercise\}\n:label: (\S+)", text, re.MULTILINE)
        assert starts == exercises, f"{source.name}: every exercise is followed by its solution"
        assert text.count(":::{solution-end}") == len(starts), source.name
