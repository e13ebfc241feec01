"""The "Questions readers ask" page, the subject index and the glossary's links to the sections.

Fast tests read the sources: every question has a link and a number, every number is pasted
from a chapter (myst-nb's ``{glue:text}`chapter.md::key:format```) and shown, with the same key
and format, in a section the question links to. Build tests read the built site: every link on
the page resolves to an anchor that exists, every pasted number is the one its section shows,
the index lists at least ``MIN_INDEX_ENTRIES`` entries and is in every page's navigation, and
every glossary entry links to a section of a chapter.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml
from bs4 import BeautifulSoup

from conftest import REPO, is_notebook, load_local_extension, site_pages, toc_files

BOOK = REPO / "book"
QUESTIONS = BOOK / "questions.md"
GLOSSARY = BOOK / "glossary.md"
MIN_QUESTIONS = 15
MIN_INDEX_ENTRIES = 80

LABEL = re.compile(r"^\(([\w-]+)\)=\s*$", re.MULTILINE)
HEADING = re.compile(r"^(#{1,6}) ")
PASTE = re.compile(r"\{glue:text\}`([^`]+?)::([^`:]+)(?::([^`]*))?`")
REF = re.compile(r"\{ref\}`(?:[^`<]*<)?([\w-]+)>?`")


def chapter_lines(path: Path) -> list[str]:
    """The lines of a page with fenced code blocks blanked, so that a comment in a code cell
    ("# the prose ...") is never taken for a heading."""
    lines, fence = [], None
    for line in path.read_text(encoding="utf-8").splitlines():
        stripped = line.lstrip()
        if fence is None and stripped.startswith("```"):
            fence = stripped[: len(stripped) - len(stripped.lstrip("`"))]
            lines.append("")
            continue
        if fence is not None:
            if stripped.startswith(fence) and stripped.strip("`") == "":
                fence = None
            lines.append("")
            continue
        lines.append(line)
    return lines


def labels() -> dict[str, tuple[Path, str]]:
    """Every ``(label)=`` of the book: the file it is in and the text of the section it opens
    (from the label to the next heading of the same or a higher level; for a label above an
    admonition rather than a heading, to the next heading)."""
    found = {}
    for path in sorted(BOOK.glob("*.md")):
        lines = chapter_lines(path)
        for i, line in enumerate(lines):
            match = LABEL.match(line)
            if not match:
                continue
            heading = HEADING.match(lines[i + 1]) if i + 1 < len(lines) else None
            level = len(heading.group(1)) if heading else 6
            end = len(lines)
            for j in range(i + 2, len(lines)):
                other = HEADING.match(lines[j])
                if other and len(other.group(1)) <= level:
                    end = j
                    break
            found[match.group(1)] = (path, "\n".join(lines[i:end]))
    return found


def questions() -> list[dict]:
    """The questions of the page: label, title, the text of the answer, and its pasted numbers
    ``(document, key, format)`` and links, in the order of the page."""
    text = QUESTIONS.read_text(encoding="utf-8")
    found = []
    for block in re.split(r"(?m)^(?=\([\w-]+\)=\n### )", text)[1:]:
        label = LABEL.match(block).group(1)
        _, heading, answer = block.split("\n", 2)
        title = heading.removeprefix("### ")
        answer = re.split(r"(?m)^## ", answer)[0]
        found.append({
            "label": label, "title": title, "answer": answer,
            "numbers": [(doc, key, fmt or "s") for doc, key, fmt in PASTE.findall(answer)],
            "links": REF.findall(answer),
        })
    return found


def test_the_page_is_in_the_navigation_before_the_glossary():
    files = toc_files(REPO)
    assert "book/questions" in files
    assert files.index("book/questions") < files.index("book/glossary")
    assert not is_notebook(QUESTIONS), "the page executes nothing: its numbers come from the chapters"


def test_there_are_enough_questions_each_with_a_link_and_a_number():
    found = questions()
    assert len(found) >= MIN_QUESTIONS, f"{len(found)} questions, want at least {MIN_QUESTIONS}"
    assert len({q["label"] for q in found}) == len(found), "two questions share a label"
    for q in found:
        assert q["numbers"], f"{q['title']!r} has no number pasted from a chapter"
        assert q["links"], f"{q['title']!r} links to no section"


def test_every_answer_is_two_to_five_sentences():
    for q in questions():
        prose = re.sub(r"\$[^$]*\$|\{[\w:]+\}`[^`]*`|`[^`]*`", "X", q["answer"])
        sentences = re.findall(r"[.?!](?=\s|$)", prose.strip())
        assert 2 <= len(sentences) <= 5, f"{q['title']!r}: {len(sentences)} sentences"


def test_the_page_types_no_number_of_its_own():
    """Numbers come from the chapters: outside the pasted values, math and the names of things
    (``nn.GELU``, "50 layers", "std 0.02" are settings, not results), no decimal is typed."""
    for q in questions():
        prose = re.sub(r"\$[^$]*\$|\{[\w:]+\}`[^`]*`|`[^`]*`", "", q["answer"])
        typed = [m for m in re.findall(r"\b\d+\.\d+\b", prose) if m not in {"0.02", "0.125", "0.9", "1.702"}]
        assert not typed, f"{q['title']!r} types {typed}"


def test_every_link_on_the_page_names_a_label_of_the_book():
    known = labels()
    for q in questions():
        for link in q["links"]:
            assert link in known, f"{q['title']!r} links to {link!r}, which no page defines"


def test_every_number_is_shown_with_the_same_format_in_a_section_the_question_links_to():
    """One source: the chapter's own section shows the key the question pastes, formatted alike,
    and the question links to that section."""
    known = labels()
    for q in questions():
        sections = [known[link] for link in q["links"] if link in known]
        for doc, key, fmt in q["numbers"]:
            source = (QUESTIONS.parent / doc).resolve()
            assert source.is_file(), f"{q['title']!r} pastes from {doc}, which does not exist"
            shown = [f"{{glue:text}}`{key}:{fmt}`"] + ([f"{{glue:text}}`{key}`"] if fmt == "s" else [])
            assert any(path.resolve() == source and any(s in text for s in shown)
                       for path, text in sections), f"{q['title']!r}: no linked section of {doc} shows {shown[0]}"


def test_every_chapter_and_the_introduction_link_to_the_page():
    for name in toc_files(REPO):
        path = REPO / f"{name}.md"
        if not is_notebook(path) and name != "book/intro":
            continue
        text = path.read_text(encoding="utf-8")
        if name == "book/intro":
            assert "{ref}`questions`" in text
            continue
        opening = text.split(":::{admonition} In this chapter", 1)[1].split("\n:::", 1)[0]
        assert "{ref}`questions`" in opening, f"{name}'s opening box does not link the questions"


def glossary_entries() -> dict[str, str]:
    """The glossary's terms and their definitions."""
    body = GLOSSARY.read_text(encoding="utf-8").split("```{glossary}", 1)[1].split("\n```", 1)[0]
    entries, term = {}, None
    for line in body.splitlines():
        if line and not line.startswith(" "):
            term = line.strip()
            entries[term] = ""
        elif term is not None:
            entries[term] += line.strip() + " "
    return entries


def test_every_glossary_entry_links_to_a_section_of_a_chapter():
    known = labels()
    entries = glossary_entries()
    assert len(entries) >= 20
    for term, definition in entries.items():
        targets = [link for link in REF.findall(definition) if link in known]
        assert targets, f"glossary entry {term!r} links to no section"
        assert any(is_notebook(known[link][0]) for link in targets), (
            f"glossary entry {term!r} links to no chapter's section")


def test_index_entries_sit_on_their_own_lines():
    """An index directive is inserted on its own lines, never inside a paragraph (so that edits
    to the prose merge), and there are enough of them for the index the issue asks for."""
    count = 0
    for path in sorted(BOOK.glob("*.md")):
        lines = path.read_text(encoding="utf-8").splitlines()
        for i, line in enumerate(lines):
            if line.startswith("```{index}"):
                assert lines[i + 1] == "```", f"{path.name}:{i + 1}: an index directive with content"
                count += len(line.removeprefix("```{index}").split(","))
    assert count >= MIN_INDEX_ENTRIES, f"{count} index entries in the sources"


def test_the_issues_button_is_on_and_the_question_template_asks_for_page_and_section():
    config = yaml.safe_load((REPO / "_config.yml").read_text(encoding="utf-8"))
    assert config["html"]["use_issues_button"] is True
    template = yaml.safe_load((REPO / ".github/ISSUE_TEMPLATE/question.yml").read_text(encoding="utf-8"))
    ids = {item.get("id") for item in template["body"]}
    assert {"page", "section", "question"} <= ids
    assert "{{ ask_question_link }}" in QUESTIONS.read_text(encoding="utf-8")


def test_ask_question_url_is_built_from_the_repository():
    questions_ext = load_local_extension("questions")
    assert (questions_ext.ask_question_url("https://github.com/o/r/")
            == "https://github.com/o/r/issues/new?template=question.yml")
    assert questions_ext.ask_question_url("") == ""
    with pytest.raises(TypeError, match="repository_url"):
        questions_ext.ask_question_url(None)


def test_pasted_documents_resolves_paths_from_the_page():
    questions_ext = load_local_extension("questions")
    source = "{glue:text}`gelu.md::a:.3g` and {glue:text}`/book/normalisation.md::b` {glue:text}`c`"
    assert questions_ext.pasted_documents(source, "book/questions") == {"book/gelu", "book/normalisation"}
    pasted = questions_ext.pasted_documents(QUESTIONS.read_text(encoding="utf-8"), "book/questions")
    assert pasted == {f"book/{doc.removesuffix('.md')}" for q in questions() for doc, _, _ in q["numbers"]}


# --- the built site -------------------------------------------------------------------------

def soup_of(path: Path) -> BeautifulSoup:
    return BeautifulSoup(path.read_text(encoding="utf-8"), "html.parser")


def anchored(soup: BeautifulSoup, anchor: str):
    """What an anchor stands for: a label above a heading is an empty ``span`` at the top of its
    section, and one above a paragraph marks that paragraph, so both stand for the section they
    are in; a label above an admonition is the admonition."""
    element = soup.find(id=anchor)
    if element is not None and element.name in ("span", "p"):
        return element.find_parent("section") or element
    return element


def resolve(html_root: Path, page: Path, href: str) -> tuple[Path, str]:
    parsed = urlparse(href)
    target = (page.parent / parsed.path).resolve() if parsed.path else page
    return target, parsed.fragment


@pytest.mark.build
def test_every_link_on_the_built_page_resolves_to_an_anchor(built_book):
    page = built_book.html / "book" / "questions.html"
    article = soup_of(page).select_one("article")
    internal = article.select("a.reference.internal[href]")
    assert len(internal) >= MIN_QUESTIONS
    for link in internal:
        target, anchor = resolve(built_book.html, page, link["href"])
        assert target.is_file(), f"{link['href']} names no page"
        if anchor:
            assert soup_of(target).find(id=anchor) is not None, f"{link['href']}: no such anchor"


@pytest.mark.build
def test_every_pasted_number_is_the_one_its_section_shows(built_book):
    page = built_book.html / "book" / "questions.html"
    soup = soup_of(page)
    for q in questions():
        section = anchored(soup, q["label"])
        assert section is not None, q["label"]
        pasted = [span.get_text() for span in section.select("span.pasted-text")]
        assert len(pasted) == len(q["numbers"]), f"{q['title']!r}: {pasted} for {q['numbers']}"
        shown_there = []
        for link in section.select("a.reference.internal[href]"):
            target, anchor = resolve(built_book.html, page, link["href"])
            if target == page or not anchor:
                continue
            element = anchored(soup_of(target), anchor)
            shown_there += [span.get_text() for span in element.select("span.pasted-text")]
        for text, (doc, key, _) in zip(pasted, q["numbers"]):
            assert text.strip(), f"{q['title']!r}: {doc}::{key} pasted nothing"
            assert text in shown_there, f"{q['title']!r}: {key} = {text}, not shown in its section"


@pytest.mark.build
def test_the_ask_link_is_built_from_the_repository_url(built_book):
    config = yaml.safe_load((built_book.root / "_config.yml").read_text(encoding="utf-8"))
    expected = config["repository"]["url"].rstrip("/") + "/issues/new?template=question.yml"
    hrefs = [a["href"] for a in soup_of(built_book.html / "book" / "questions.html").select("article a[href]")]
    assert expected in hrefs


def index_entries(genindex: Path) -> list[str]:
    """The entries of the built index, sub-entries included, as "entry" or "entry; sub-entry"."""
    soup = soup_of(genindex)
    entries = []
    for item in soup.select("table.indextable > tr > td > ul > li"):
        name = next(item.stripped_strings)
        entries.append(name)
        entries += [f"{name}; {next(sub.stripped_strings)}" for sub in item.select("ul > li")]
    return entries


@pytest.mark.build
def test_the_index_lists_enough_entries_each_linking_to_a_page(built_book):
    genindex = built_book.html / "genindex.html"
    entries = index_entries(genindex)
    assert len(entries) >= MIN_INDEX_ENTRIES, f"the index lists {len(entries)} entries"
    for name in ("GELU", "Pre-LN", "DeepNorm", "ReZero", "SkipInit", "RMSNorm", "SwiGLU",
                 "torch.nn.GELU", "torch.nn.LayerNorm"):
        assert name in entries, f"{name} is not in the index"
    for link in soup_of(genindex).select("table.indextable a[href]"):
        target, anchor = resolve(built_book.html, genindex, link["href"])
        assert target.is_file() and soup_of(target).find(id=anchor) is not None, link["href"]


@pytest.mark.build
def test_every_page_links_the_index_from_its_navigation(built_book):
    for page in site_pages(built_book.html):
        if page.name in {"index.html", "404.html"} or page.parent.name == "_static":
            continue
        nav = soup_of(page).select_one("nav.bd-docs-nav")
        if nav is None:
            continue
        hrefs = [a["href"] for a in nav.select("a[href]")]
        if page.name == "genindex.html":
            hrefs = [a.get_text(strip=True) for a in nav.select("a.current")]
            assert "Index" in hrefs, "the index page does not mark itself in the navigation"
            continue
        assert any(href.split("#")[0].endswith("genindex.html") for href in hrefs), page.name


@pytest.mark.build
def test_every_glossary_entry_links_to_a_built_section(built_book):
    page = built_book.html / "book" / "glossary.html"
    soup = soup_of(page)
    terms = soup.select("dl.glossary > dt")
    assert terms
    for term in terms:
        definition = term.find_next_sibling("dd")
        links = [a["href"] for a in definition.select("a.reference.internal[href]")
                 if "#" in a["href"] and not a["href"].startswith(("#", "glossary.html"))]
        assert links, f"{term.get_text()} links to no section"
        for href in links:
            target, anchor = resolve(built_book.html, page, href)
            assert soup_of(target).find(id=anchor) is not None, href
