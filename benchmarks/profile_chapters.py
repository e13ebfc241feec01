"""Time every code cell of every executable chapter, optionally at two commits side by side.

Run from the repository root (after ``bash scripts/setup.sh``):

    .venv/bin/python benchmarks/profile_chapters.py                      # the working tree
    .venv/bin/python benchmarks/profile_chapters.py --before 653e017      # a commit vs the tree

Each chapter is read with jupytext and executed in a fresh Jupyter kernel, as myst-nb does in a
build, and each cell is timed by the kernel's own timestamps, so the time to render figures for the
page counts. Each
chapter runs ``--repeats`` times (default 3) and every time reported is the median. With
``--before REV`` the chapters of that commit (checked out with ``git worktree`` into a temporary
folder, imports pointed at its own ``code/``) are measured the same way, interleaved run by run with
the working tree's so that both see the same machine load, and the report puts them side by side.

Writes ``benchmarks/results/profile.json`` and ``benchmarks/results/profile.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jupytext
import nbformat
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from conftest import notebook_chapters

RESULTS = REPO / "benchmarks" / "results"
SLOWEST = 4  # cells listed per chapter


def first_line(source: str) -> str:
    lines = [line for line in source.splitlines() if line.strip() and not line.startswith(("#", ":"))]
    return lines[0][:70] if lines else ""


def run_chapter(root: Path, chapter: Path) -> dict:
    """Execute one chapter in a fresh kernel, as myst-nb does, and time each cell.

    The kernel's own timestamps (``execute_input`` to ``execute_reply``) include what the build
    pays and plain Python does not: rendering each figure to SVG or PNG for the page.
    """
    notebook = jupytext.read(chapter)
    where = nbformat.v4.new_code_cell("import sys; print(sys.modules['gradflow'].__file__)")
    notebook.cells.append(where)
    os.environ["PYTHONPATH"] = str(root / "code")  # the kernel inherits it: this tree's package
    client = NotebookClient(notebook, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(chapter.parent)}})
    start = time.perf_counter()
    client.execute()
    total = time.perf_counter() - start
    package = Path(where.outputs[0]["text"].strip())
    if not package.is_relative_to(root / "code"):
        raise SystemExit(f"{chapter} imported gradflow from {package}, not from {root}/code")
    cells = []
    for index, cell in enumerate(notebook.cells[:-1]):
        if cell.cell_type != "code":
            continue
        timing = cell.metadata["execution"]
        seconds = (dt.datetime.fromisoformat(timing["shell.execute_reply"])
                   - dt.datetime.fromisoformat(timing["iopub.execute_input"]))
        cells.append({"cell": index, "first_line": first_line(cell.source),
                      "seconds": seconds.total_seconds()})
    return {"cells": cells, "total": total}


def summarise(runs: list[dict]) -> dict:
    """Median total and median time per cell over repeated runs of one chapter."""
    cells = []
    for position, cell in enumerate(runs[0]["cells"]):
        cells.append({**cell, "seconds": statistics.median(r["cells"][position]["seconds"]
                                                           for r in runs)})
    return {"total_s": statistics.median(r["total"] for r in runs),
            "runs_s": [r["total"] for r in runs], "cells": cells}


def profile(roots: dict[str, Path], repeats: int) -> dict:
    """``{label: {chapter name: summary}}``, runs of the different roots interleaved."""
    raw = {label: {} for label in roots}
    for _ in range(repeats):
        for label, root in roots.items():
            for chapter in notebook_chapters(root):
                raw[label].setdefault(chapter.name, []).append(run_chapter(root, chapter))
    return {label: {name: summarise(runs) for name, runs in by_chapter.items()}
            for label, by_chapter in raw.items()}


def markdown(result: dict) -> str:
    profiles = result["profiles"]
    after, before = profiles["after"], profiles.get("before", {})
    measured = (f"Measured {result['date']}, {result['cores']} cores; medians of "
                f"{result['repeats']} runs, each chapter in a fresh kernel.")
    lines = [measured, ""]
    if before:
        lines += [f"Chapter execution, before = {result['before']}, after = the working tree:", "",
                  "| Chapter | Before | After | After / before |", "| --- | --- | --- | --- |"]
    else:
        lines += ["| Chapter | Execution |", "| --- | --- |"]
    for name, summary in [*after.items(), ("all", {"total_s": sum(s["total_s"] for s in
                                                                    after.values())})]:
        now = f"{summary['total_s']:.1f} s"
        if not before:
            lines.append(f"| {name} | {now} |")
            continue
        old = (sum(s["total_s"] for s in before.values()) if name == "all"
               else before.get(name, {}).get("total_s"))
        ratio = f"{summary['total_s'] / old:.2f}" if old else "new"
        lines.append(f"| {name} | {f'{old:.1f} s' if old else '-'} | {now} | {ratio} |")
    lines.append("")
    for label, by_chapter in profiles.items():
        lines += [f"Slowest cells ({label}):", "", "| Chapter | Cell | First line | Time |",
                  "| --- | --- | --- | --- |"]
        for name, summary in by_chapter.items():
            for cell in sorted(summary["cells"], key=lambda c: -c["seconds"])[:SLOWEST]:
                code = cell["first_line"].replace("|", "\\|")
                lines.append(f"| {name} | {cell['cell']} | `{code}` | {cell['seconds']:.2f} s |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs per chapter (median)")
    parser.add_argument("--before", metavar="REV", help="also profile this commit, side by side")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="gradflow-profile-") as tmp:
        roots = {"after": REPO}
        if args.before:
            worktree = Path(tmp) / "before"
            subprocess.run(["git", "worktree", "add", "--detach", str(worktree), args.before],
                           cwd=REPO, check=True, capture_output=True)
            roots = {"before": worktree, "after": REPO}
        try:
            profiles = profile(roots, args.repeats)
        finally:
            if args.before:
                subprocess.run(["git", "worktree", "remove", "--force", str(worktree)], cwd=REPO,
                               check=False, capture_output=True)
    result = {"date": dt.date.today().isoformat(), "cores": os.cpu_count(),
              "repeats": args.repeats, "before": args.before, "profiles": profiles}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "profile.json").write_text(json.dumps(result, indent=2) + "\n")
    table = markdown(result)
    (RESULTS / "profile.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
