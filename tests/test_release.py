"""A book that can be cited and released: CITATION.cff, the version and commit in every footer,
the intro's citation, and scripts/release.py (what .github/workflows/release.yml runs for a tag).

CITATION.cff is validated by cffconvert against the Citation File Format's own schema; the
version is compared across the three places that hold it; the commit is read from a real git
repository made here; the release script is run on a copy of the built book, and its files are
opened (the PDF with pypdf, the archives with zipfile).
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml
from bs4 import BeautifulSoup

import gradflow
from conftest import REPO, load_local_extension, site_pages, toc_files

CFFCONVERT = str(Path(sys.executable).with_name("cffconvert"))
edition = load_local_extension("book_edition")


def cff() -> dict:
    return yaml.safe_load((REPO / "CITATION.cff").read_text(encoding="utf-8"))


def validate(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([CFFCONVERT, "--validate", "-i", str(path)], capture_output=True,
                          text=True, timeout=120, check=False)


def test_citation_cff_is_valid_and_a_broken_one_is_not(tmp_path):
    done = validate(REPO / "CITATION.cff")
    assert done.returncode == 0, done.stdout + done.stderr
    broken = cff()
    del broken["authors"]
    (tmp_path / "CITATION.cff").write_text(yaml.safe_dump(broken))
    assert validate(tmp_path / "CITATION.cff").returncode != 0


def test_the_version_is_the_same_in_the_package_the_citation_and_the_footer():
    assert str(cff()["version"]) == gradflow.__version__ == edition.book_version(REPO)


def test_the_footer_names_version_and_commit_and_links_the_commit():
    sha = "0123456789abcdef0123456789abcdef01234567"
    text = edition.edition_html("2.1.0", sha, False, "https://github.com/o/r/")
    assert text == ('<p class="book-edition">Version 2.1.0, built from commit '
                    f'<a href="https://github.com/o/r/commit/{sha}">0123456</a>.</p>')
    assert "0123456 + local changes." in edition.edition_html("2.1.0", sha, True, "")
    assert "outside a git checkout" in edition.edition_html("2.1.0", None, False, "")


def git(root: Path, *args: str) -> str:
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.org",
               GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.org")
    return subprocess.run(["git", "-C", str(root), *args], env=env, capture_output=True,
                          text=True, check=True).stdout.strip()


def test_the_commit_is_read_from_git_with_local_changes_and_from_book_commit(tmp_path,
                                                                             monkeypatch):
    monkeypatch.delenv("BOOK_COMMIT", raising=False)
    assert edition.book_commit(tmp_path) == (None, False)   # not a checkout
    git(tmp_path, "init", "-q")
    (tmp_path / "page.md").write_text("one\n")
    git(tmp_path, "add", "page.md")
    git(tmp_path, "commit", "-q", "-m", "first")
    head = git(tmp_path, "rev-parse", "HEAD")
    assert edition.book_commit(tmp_path) == (head, False)
    (tmp_path / "untracked.txt").write_text("a build's output, say\n")
    assert edition.book_commit(tmp_path) == (head, False)
    (tmp_path / "page.md").write_text("two\n")
    assert edition.book_commit(tmp_path) == (head, True)
    monkeypatch.setenv("BOOK_COMMIT", "f" * 40)
    assert edition.book_commit(tmp_path) == ("f" * 40, False)


def test_the_citation_is_made_from_citation_cff():
    data = cff()
    made = edition.citation(REPO)
    year = str(data["date-released"])[:4]
    assert made["cite_text"] == (f"The gradflow authors ({year}). *{data['title']}* "
                                 f"(version {data['version']}). <{data['url']}>")
    bibtex = made["cite_bibtex"].splitlines()
    assert bibtex[0] == "```bibtex" and bibtex[-1] == "```"
    assert f"  edition = {{{data['version']}}}," in bibtex
    assert f"  title = {{{data['title']}}}," in bibtex


def test_release_refuses_a_version_the_sources_do_not_have():
    done = subprocess.run([sys.executable, str(REPO / "scripts" / "release.py"), "v0.0.1",
                           "--out", "/nonexistent"], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode != 0
    assert f"the sources are version '{gradflow.__version__}'" in done.stderr


@pytest.mark.build
def test_every_page_names_the_version_and_the_intro_shows_the_citation(built_book):
    version = gradflow.__version__
    footer = (f'<p class="book-edition">Version {version}, built from sources outside a git '
              "checkout.</p>")
    for page in site_pages(built_book.html):
        if page.name in ("index.html", "search.html", "genindex.html"):
            continue
        assert footer in page.read_text(encoding="utf-8"), page
    intro = BeautifulSoup(built_book.page("intro"), "html.parser").select_one("main").get_text()
    assert f"edition={{{version}}}" in "".join(intro.split())   # the BibTeX entry, highlighted
    assert f"(version {version})" in " ".join(intro.split())


@pytest.mark.build
@pytest.mark.browser
def test_the_release_holds_the_pdf_the_notebooks_and_the_site(released_book):
    released = released_book
    from pypdf import PdfReader

    version = gradflow.__version__
    dist = released / "dist"
    assert sorted(p.name for p in dist.iterdir()) == sorted([
        f"gradflow-book-{version}.pdf", f"gradflow-notebooks-{version}.zip",
        f"gradflow-site-{version}.zip"])
    first = " ".join(PdfReader(dist / f"gradflow-book-{version}.pdf").pages[0]
                     .extract_text().split())
    assert f"Version {version}, built from sources outside a git checkout." in first
    chapters = [name for name in toc_files(released) if name != "book/intro"]
    with zipfile.ZipFile(dist / f"gradflow-notebooks-{version}.zip") as notebooks:
        names = set(notebooks.namelist())
    stem = f"gradflow-notebooks-{version}"
    for chapter in chapters:
        if (released / f"{chapter}.md").read_text().startswith("---"):
            assert f"{stem}/{chapter}.ipynb" in names, chapter
    with zipfile.ZipFile(dist / f"gradflow-site-{version}.zip") as site:
        names = set(site.namelist())
    assert f"gradflow-site-{version}/index.html" in names
    assert f"gradflow-site-{version}/pdf/gradflow-book.pdf" in names


def test_the_release_workflow_runs_the_release_script_for_a_version_tag():
    workflow = yaml.safe_load((REPO / ".github" / "workflows" / "release.yml").read_text())
    assert workflow[True]["push"]["tags"] == ["v*"]   # YAML reads the key "on" as True
    steps = " ".join(str(step.get("run", "")) for step in workflow["jobs"]["release"]["steps"])
    assert "scripts/release.py" in steps and "gh release create" in steps

