"""Compare the cold build of two commits: interleaved runs, medians and their ratio.

    .venv/bin/python benchmarks/compare_cold_builds.py BEFORE AFTER --repeats 3

Each commit's sources are copied to their own temporary folder; the runs alternate (before, after,
before, ...) so that a shared, noisy machine slows both alike. Every run is a strict build after
deleting ``_build``; the time of each chapter's execution is read from myst-nb's log. Results go to
``benchmarks/results/compare-<before>-<after>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "benchmarks"))
from cold_builds import RESULTS, sources
from run import checked_build


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before")
    parser.add_argument("after")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats must be at least 1, got {args.repeats}")
    runs: dict[str, list[dict]] = {args.before: [], args.after: []}
    with tempfile.TemporaryDirectory(prefix="compare-builds-") as tmp:
        roots = {rev: sources(rev, Path(tmp) / rev) for rev in runs}
        for i in range(args.repeats):
            for rev, root in roots.items():
                shutil.rmtree(root / "_build", ignore_errors=True)
                seconds, _, chapters = checked_build(root)  # exits with the log if it fails
                runs[rev].append({"seconds": seconds, "chapters": chapters})
                print(f"run {i + 1}, {rev}: {seconds:.1f} s", flush=True)
    medians = {rev: statistics.median(r["seconds"] for r in rs) for rev, rs in runs.items()}
    chapter_names = sorted({name for rs in runs.values() for r in rs for name in r["chapters"]})
    result = {
        "repeats": args.repeats,
        "median_seconds": medians,
        "ratio": medians[args.after] / medians[args.before],
        "chapter_median_seconds": {
            rev: {name: statistics.median(r["chapters"].get(name, 0.0) for r in rs)
                  for name in chapter_names} for rev, rs in runs.items()},
        "runs": runs,
    }
    summary = (f"Cold builds, medians of {args.repeats} interleaved runs: {args.before} "
               f"{medians[args.before]:.1f} s, {args.after} {medians[args.after]:.1f} s, ratio "
               f"{result['ratio']:.3f}.")
    lines = [summary, "", f"| Chapter execution | {args.before} | {args.after} |",
             "| --- | --- | --- |"]
    for name in chapter_names:
        lines.append(f"| {name} | {result['chapter_median_seconds'][args.before][name]:.1f} s | "
                     f"{result['chapter_median_seconds'][args.after][name]:.1f} s |")
    text = "\n".join(lines) + "\n"
    stem = f"compare-{args.before}-{args.after}"
    (RESULTS / f"{stem}.json").write_text(json.dumps(result, indent=1) + "\n")
    (RESULTS / f"{stem}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
