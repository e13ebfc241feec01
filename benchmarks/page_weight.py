"""What a reader's browser loads for each chapter page of a build: the page itself (with any data
it carries inline, such as an explorable figure's sweep) and its images; and, counted once for the
whole site, the shared scripts and style sheets the chapter pages name.

    .venv/bin/python benchmarks/page_weight.py                         # the build in _build/html
    .venv/bin/python benchmarks/page_weight.py --html DIR --label L    # another build

Sizes are in kB of 1,000 bytes, as served (uncompressed). Results go to
``benchmarks/results/page-weight-<label>.json`` and ``.md``. The budget of issue 15: each chapter
page with its data and images at most 800 kB, the shared JavaScript counted once.
"""

from __future__ import annotations

import argparse
import json
import posixpath
import sys
from pathlib import Path
from urllib.parse import urlparse

from bs4 import BeautifulSoup

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from conftest import notebook_chapters

RESULTS = REPO / "benchmarks" / "results"
BUDGET_KB = 800


def local(page: str, reference: str) -> str | None:
    """The site path a page's reference points at, or None for data: URIs and other hosts."""
    parsed = urlparse(reference)
    if parsed.scheme or reference.startswith("//"):
        return None
    return posixpath.normpath(posixpath.join(posixpath.dirname(page), parsed.path))


def weigh(html_root: Path, pages: list[str] | None = None) -> dict:
    """Each page's HTML and images (``pages``, paths under ``html_root``; the chapter pages by
    default) in kB, and the scripts and style sheets they name, counted once."""
    if pages is None:
        pages = [f"book/{source.stem}.html" for source in notebook_chapters(REPO)]
    weights, shared = {}, {}
    for page in pages:
        soup = BeautifulSoup((html_root / page).read_text(encoding="utf-8"), "html.parser")
        images = {local(page, img["src"]) for img in soup.find_all("img", src=True)} - {None}
        for tag, attribute in (("script", "src"), ("link", "href")):
            for element in soup.find_all(tag, **{attribute: True}):
                if tag == "link" and "stylesheet" not in element.get("rel", []):
                    continue
                path = local(page, element[attribute])
                if path and (html_root / path).is_file():
                    shared[path] = (html_root / path).stat().st_size
        html_bytes = (html_root / page).stat().st_size
        image_bytes = sum((html_root / p).stat().st_size for p in images)
        weights[page] = {"html_kb": html_bytes / 1000, "images_kb": image_bytes / 1000,
                         "images": len(images), "total_kb": (html_bytes + image_bytes) / 1000}
    return {"pages": weights, "shared_kb": sum(shared.values()) / 1000,
            "shared_largest": sorted(((p, s / 1000) for p, s in shared.items()),
                                     key=lambda item: -item[1])[:5]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--html", type=Path, default=REPO / "_build" / "html")
    parser.add_argument("--label", default="latest")
    args = parser.parse_args(argv)
    result = weigh(args.html)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"page-weight-{args.label}.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [f"# Page weight: {args.label}", "",
             f"Chapter pages with their images (budget {BUDGET_KB} kB each):", "",
             "| page | HTML kB | images kB (count) | total kB |", "| --- | --- | --- | --- |"]
    for page, row in result["pages"].items():
        lines.append(f"| {page} | {row['html_kb']:.0f} | {row['images_kb']:.0f} ({row['images']}) "
                     f"| {row['total_kb']:.0f} |")
    lines += ["", f"Shared scripts and style sheets, counted once: {result['shared_kb']:.0f} kB; "
              "the largest: " + ", ".join(f"{p} {kb:.0f} kB" for p, kb in result["shared_largest"])
              + "."]
    (RESULTS / f"page-weight-{args.label}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    over = [p for p, row in result["pages"].items() if row["total_kb"] > BUDGET_KB]
    if over:
        sys.exit(f"over the {BUDGET_KB} kB budget: {over}")


if __name__ == "__main__":
    main()
