"""Run many clean cold builds in a row and count the ones that fail, and why.

A cold build (no ``_build/``, so no execution cache) reads its chapters in parallel processes
(``_ext/parallel_chapters.py``), and every process opens the execution cache's SQLite database.
Before ``_ext/execution_cache.py`` they raced to create its tables, and a build failed at random
with "table nbcache already exists". This script measures how often a cold build fails:

    .venv/bin/python benchmarks/cold_builds.py                    # 20 builds of the working tree
    .venv/bin/python benchmarks/cold_builds.py --rev 75372e6      # 20 builds of an older commit

Each build runs strictly (``-W -n --keep-going``) on a copy of the sources in a temporary folder,
after deleting its ``_build/``. Results go to ``benchmarks/results/cold-builds-<label>.json`` and
``.md``: every run's exit code, time and failure kind, and the failure count.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from conftest import build_book, copy_repo

RESULTS = REPO / "benchmarks" / "results"
#: What a failed build's log says, and the name this script gives that failure.
FAILURE_KINDS = {
    "already exists": "cache tables created twice",  # "table nbcache already exists", ...
    "database is locked": "cache database locked",
    "Kernel didn't respond": "kernel port taken",  # see _ext/kernel_sockets.py
}


def sources(rev: str | None, destination: Path) -> Path:
    """The working tree's sources, or those of commit ``rev``, copied to ``destination``."""
    if rev is None:
        return copy_repo(destination)
    archive = subprocess.run(
        ["git", "archive", "--format=tar", rev], cwd=REPO, capture_output=True, check=True
    ).stdout
    destination.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(destination, filter="data")
    return destination


def failure_kind(returncode: int, log: str) -> str | None:
    if returncode == 0:
        return None
    for needle, kind in FAILURE_KINDS.items():
        if needle in log:
            return kind
    return "other"


def run(rev: str | None, repeats: int, label: str) -> dict:
    runs = []
    with tempfile.TemporaryDirectory(prefix="cold-builds-") as tmp:
        root = sources(rev, Path(tmp) / "repo")
        for i in range(repeats):
            shutil.rmtree(root / "_build", ignore_errors=True)
            start = time.perf_counter()
            build = build_book(root)
            seconds = time.perf_counter() - start
            kind = failure_kind(build.returncode, build.log)
            runs.append({"run": i + 1, "returncode": build.returncode,
                         "seconds": round(seconds, 1), "failure": kind,
                         "read_in_parallel": build.read_in_parallel})
            if kind is not None:
                (RESULTS / f"cold-builds-{label}-failure-{i + 1}.log").write_text(build.log[-20000:])
            print(f"run {i + 1}/{repeats}: {kind or 'ok'} in {seconds:.1f} s", flush=True)
    failed = [r for r in runs if r["failure"] is not None]
    return {
        "date": dt.date.today().isoformat(),
        "rev": rev or "working tree",
        "repeats": repeats,
        "failed": len(failed),
        "failures": sorted({r["failure"] for r in failed}),
        "median_seconds": statistics.median(r["seconds"] for r in runs),
        "runs": runs,
    }


def markdown(result: dict) -> str:
    summary = (f"Cold builds of {result['rev']}, {result['date']}: {result['failed']} of "
               f"{result['repeats']} failed; median time {result['median_seconds']:.1f} s.")
    lines = [
        summary,
        "",
        "| Run | Exit code | Seconds | Read in parallel | Failure |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in result["runs"]:
        lines.append(f"| {r['run']} | {r['returncode']} | {r['seconds']} | "
                     f"{'yes' if r['read_in_parallel'] else 'no'} | {r['failure'] or ''} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rev", help="build this commit instead of the working tree")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--label", help="results file label (default: the commit, or 'latest')")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats must be at least 1, got {args.repeats}")
    label = args.label or (args.rev or "latest")
    RESULTS.mkdir(parents=True, exist_ok=True)
    result = run(args.rev, args.repeats, label)
    (RESULTS / f"cold-builds-{label}.json").write_text(json.dumps(result, indent=1) + "\n")
    (RESULTS / f"cold-builds-{label}.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
