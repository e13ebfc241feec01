"""Two clean builds of the same sources give byte-identical chapter pages, figures, social cards,
sitemap, 404 page and reader notebooks (the download, and what the notebooks branch publishes)."""

from __future__ import annotations

import difflib

import pytest

from conftest import build_book, copy_repo

pytestmark = pytest.mark.build


def files(root, pattern):
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.glob(pattern)) if p.is_file()}


def first_differences(name, first, second, lines=30):
    """Where two versions of a file differ, as a short unified diff (binary files: their sizes),
    so that a failure in CI says what changed and not only which file."""
    try:
        a, b = first.decode().splitlines(), second.decode().splitlines()
    except UnicodeDecodeError:
        return f"{name}: binary, {len(first)} and {len(second)} bytes"
    diff = difflib.unified_diff(a, b, f"first/{name}", f"second/{name}", n=1, lineterm="")
    return "\n".join(line[:300] for line in list(diff)[:lines])


def test_two_clean_builds_are_byte_identical(built_book, tmp_path):
    second = build_book(copy_repo(tmp_path / "repo"))
    assert second.returncode == 0, second.log[-4000:]
    for pattern in ("book/*.html", "_images/*", "_images/social_previews/*",
                    "_sources/book/*.ipynb", "sitemap.xml", "404.html"):
        first_files, second_files = files(built_book.html, pattern), files(second.html, pattern)
        assert sorted(first_files) == sorted(second_files), pattern
        differing = [name for name in first_files if first_files[name] != second_files[name]]
        assert not differing, f"differ between two clean builds: {differing}\n" + "\n".join(
            first_differences(name, first_files[name], second_files[name]) for name in differing)
    assert files(built_book.html, "book/*.html"), "no chapter pages compared"
    assert files(built_book.html, "_images/*"), "no figures compared"
    assert files(built_book.html, "_sources/book/*.ipynb"), "no notebooks compared"
    assert files(built_book.html, "_images/social_previews/*"), "no social cards compared"
