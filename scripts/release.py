"""Make a release of the book: build it strictly, print its PDFs, and pack what a reader downloads.

    .venv/bin/python scripts/release.py 1.0.0            # writes dist/
    .venv/bin/python scripts/release.py 1.0.0 --out DIR

``.github/workflows/release.yml`` runs this for a tag ``v<version>`` and attaches the files to the
GitHub release; ``tests/test_release.py`` runs it on a copy of a built book. The steps:

1. The version asked for must be the book's (``gradflow.__version__``, read as the footer reads it)
   and ``CITATION.cff``'s: a tag that disagrees with the sources stops here.
2. Build the book strictly (the command of ``scripts/build.sh``, without its set-up): every chapter
   executed or taken from the execution cache, every page with the version and commit in its
   footer (``_ext/book_edition.py``).
3. Print the PDFs (``scripts/pdf.py``); the book's first page names the version and the commit.
4. Write to the output folder ``gradflow-book-<version>.pdf``, ``gradflow-notebooks-<version>.zip``
   (the reader notebooks, as the Binder and Colab buttons open them) and
   ``gradflow-site-<version>.zip`` (the whole site, PDFs included, to read offline).
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
JUPYTER_BOOK = str(Path(sys.executable).with_name("jupyter-book"))


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def check_version(root: Path, version: str) -> None:
    """Raise SystemExit unless ``version`` is the sources' version and CITATION.cff's."""
    edition = _load(root / "_ext" / "book_edition.py", "book_edition")
    book = edition.book_version(root)
    cff = str(yaml.safe_load((root / "CITATION.cff").read_text(encoding="utf-8"))["version"])
    if not version == book == cff:
        raise SystemExit(f"release {version!r}: the sources are version {book!r} "
                         f"(code/gradflow/__init__.py) and CITATION.cff says {cff!r}; "
                         "make all three agree before tagging")


def zip_folder(folder: Path, target: Path) -> None:
    """``folder``'s files in ``target``, under the folder's name, in a fixed order."""
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            archive.write(path, Path(target.stem) / path.relative_to(folder))


def release(root: Path, version: str, out: Path) -> list[Path]:
    check_version(root, version)
    done = subprocess.run([JUPYTER_BOOK, "build", ".", "-W", "-n", "--keep-going"], cwd=root,
                          check=False)
    if done.returncode:
        raise SystemExit(f"the strict build failed (exit {done.returncode})")
    html = root / "_build" / "html"
    pdf = _load(root / "scripts" / "pdf.py", "pdf_script")
    if pdf.main(["--html", str(html)]) != 0:
        raise SystemExit("printing the PDFs failed")
    edition = pdf.title_page_edition(html / "pdf" / pdf.BOOK_PDF)
    if f"Version {version}," not in edition:
        raise SystemExit(f"the book's PDF names {edition!r}, not version {version}")
    out.mkdir(parents=True, exist_ok=True)
    files = [out / f"gradflow-book-{version}.pdf", out / f"gradflow-notebooks-{version}.zip",
             out / f"gradflow-site-{version}.zip"]
    shutil.copyfile(html / "pdf" / pdf.BOOK_PDF, files[0])
    zip_folder(root / "_build" / "notebooks", files[1])
    zip_folder(html, files[2])
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("version", help="the version to release, without the tag's 'v' (1.0.0)")
    parser.add_argument("--out", type=Path, default=ROOT / "dist", help="default: dist/")
    args = parser.parse_args(argv)
    for path in release(ROOT, args.version.removeprefix("v"), args.out.resolve()):
        print(f"{path}: {path.stat().st_size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
