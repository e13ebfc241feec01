"""Benchmark the book's builds, its compute floor, its page weight and its test suite.

Run from the repository root (after ``bash scripts/setup.sh``):

    .venv/bin/python benchmarks/run.py            # medians of 3 runs of everything
    .venv/bin/python benchmarks/run.py --repeats 5 --test-repeats 1

Everything runs on a copy of the repository in a temporary folder, never on the working tree. It
writes ``benchmarks/results/latest.json`` and ``benchmarks/results/latest.md`` and, with
``--update-guide``, puts the markdown table into CONTRIBUTING.md between the benchmark markers.

Measured (wall-clock seconds, median of ``--repeats`` runs; the machine is shared and noisy, so
ratios matter more than absolute values):
- cold build: ``jupyter-book build . -W -n --keep-going`` after deleting ``_build``, every chapter
  executed; per-chapter execution time from myst-nb's log;
- no-change rebuild; rebuild after a prose-only edit (must execute no cell); rebuilds after an edit
  to a module every chapter imports and to one only the GPT chapter imports (each must execute
  exactly the chapters whose code depends on it, see CONTRIBUTING.md "Never stale");
- compute floor: every chapter's code cells, converted to Python by jupytext, run one chapter after
  another in one process; and the cold build's ratio to it;
- page weight of every page under ``book/``: its HTML plus its images, in kB of 1,000 bytes
  (``page_weight.weigh``, as the page budget counts them); the theme's ``_static`` folder counted
  once, separately;
- the test suite's time (``pytest``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from page_weight import BUDGET_KB, weigh

from conftest import build_book, copy_repo, load_local_extension, notebook_chapters

chapter_dependencies = load_local_extension("chapter_dependencies")

RESULTS = REPO / "benchmarks" / "results"
#: Modules the benchmark edits (paths under code/gradflow): one every chapter imports, and the GPT
#: chapter's experiment module, which only that chapter and "After GPT-2" import.
CODE_EDITS = ("plotting.py", "chapters/gpt_block/experiments.py")
EXECUTED = re.compile(r"(\S+\.md): Executed notebook in ([0-9.]+) seconds")


def timed(function, *args, **kwargs):
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return time.perf_counter() - start, result


def median(values):
    return statistics.median(values) if values else float("nan")


def checked_build(root: Path):
    seconds, build = timed(build_book, root)
    if build.returncode != 0:
        raise SystemExit(f"build failed in {root}:\n{build.log[-4000:]}")
    per_chapter = {Path(m.group(1)).name: float(m.group(2)) for m in EXECUTED.finditer(build.log)}
    return seconds, build, per_chapter


def edit_and_rebuild(root: Path, path: Path, line: str, repeats: int):
    """Append ``line.format(i)`` to ``path`` and rebuild, ``repeats`` times: the rebuild times and
    the chapters each rebuild executed (file names)."""
    seconds_runs, executed = [], []
    for i in range(repeats):
        with path.open("a") as f:
            f.write(line.format(i))
        seconds, build, _ = checked_build(root)
        seconds_runs.append(seconds)
        executed.append(sorted(Path(chapter).name for chapter in build.executed))
    return seconds_runs, executed


def importers(root: Path, module: Path) -> list[str]:
    """The chapters whose code depends on ``module``, by the build's own dependency analysis."""
    package = chapter_dependencies.Package.scan(root / "code")
    return sorted(
        chapter.name
        for chapter in notebook_chapters(root)
        if module in chapter_dependencies.chapter_dependencies(
            chapter_dependencies.code_cells(chapter), package
        )
    )


def measure_builds(root: Path, repeats: int) -> dict:
    cold, per_chapter_runs = [], []
    for _ in range(repeats):
        shutil.rmtree(root / "_build", ignore_errors=True)
        seconds, build, per_chapter = checked_build(root)
        cold.append(seconds)
        per_chapter_runs.append(per_chapter)
    no_change = []
    for _ in range(repeats):
        seconds, build, _ = checked_build(root)
        assert not build.executed, f"a no-change rebuild executed {build.executed}"
        no_change.append(seconds)
    chapter = notebook_chapters(root)[0]
    prose, prose_executed = edit_and_rebuild(
        root, chapter, "\nA sentence added by the benchmark, edit {}.\n", repeats
    )
    code_edits = {}
    for name in CODE_EDITS:
        module = root / "code" / "gradflow" / name
        seconds, executed = edit_and_rebuild(root, module, "# edited by the benchmark, {}\n", repeats)
        code_edits[name] = {"rebuild_s": median(seconds), "runs_s": seconds,
                            "executed": executed, "importers": importers(root, module)}
    names = sorted({name for run in per_chapter_runs for name in run})
    return {
        "cold_build_s": median(cold),
        "cold_build_runs_s": cold,
        "chapter_execution_s": {n: median([r.get(n, 0.0) for r in per_chapter_runs]) for n in names},
        "no_change_rebuild_s": median(no_change),
        "prose_edit_rebuild_s": median(prose),
        "prose_edit_executed": max(len(run) for run in prose_executed),
        "code_edits": code_edits,
        "chapters": len(notebook_chapters(root)),
    }


FLOOR_DRIVER = """
import os, runpy, sys, time
import matplotlib
matplotlib.use("Agg")
os.chdir(sys.argv[1])
start = time.perf_counter()
for script in sys.argv[2:]:
    runpy.run_path(script, run_name="__main__")
print(f"FLOOR {time.perf_counter() - start:.6f}")
"""


def measure_compute_floor(root: Path, repeats: int, workdir: Path) -> dict:
    """Run every chapter's code cells as plain Python, one after another, in one process."""
    jupytext = str(Path(sys.executable).with_name("jupytext"))
    scripts = []
    for chapter in notebook_chapters(root):
        target = workdir / f"{chapter.stem}.py"
        subprocess.run([jupytext, "--quiet", "--to", "py:percent", "-o", str(target), str(chapter)],
                       check=True, capture_output=True)
        scripts.append(str(target))
    driver = workdir / "floor_driver.py"
    driver.write_text(FLOOR_DRIVER)
    env = dict(os.environ, PYTHONPATH=str(root / "code"))
    runs = []
    for _ in range(repeats):
        # The process's own start-up (Python, imports) counts: a build pays it too.
        start = time.perf_counter()
        done = subprocess.run([sys.executable, str(driver), str(root / "book"), *scripts],
                              env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SystemExit(f"compute floor failed:\n{done.stderr[-4000:]}")
        runs.append(time.perf_counter() - start)
    return {"compute_floor_s": median(runs), "compute_floor_runs_s": runs}


def page_weights(html_root: Path) -> dict:
    """Each page under ``book/``: its HTML plus its images in kB (``page_weight.weigh``, the
    measure of the page budget); the theme's ``_static`` folder once, separately."""
    pages = [f"book/{page.name}" for page in sorted((html_root / "book").glob("*.html"))]
    weights = {Path(page).stem: round(row["total_kb"], 1)
               for page, row in weigh(html_root, pages)["pages"].items()}
    shared = sum(p.stat().st_size for p in (html_root / "_static").rglob("*") if p.is_file())
    return {"chapter_weight_kb": weights, "shared_assets_kb": round(shared / 1024, 1)}


def measure_tests(repeats: int) -> dict:
    runs = []
    for _ in range(repeats):
        seconds, done = timed(subprocess.run, [sys.executable, "-m", "pytest", "-q", "-p",
                                               "no:cacheprovider"], cwd=REPO, capture_output=True,
                              text=True, check=False)
        if done.returncode != 0:
            raise SystemExit(f"the test suite failed:\n{done.stdout[-4000:]}")
        runs.append(seconds)
    return {"test_suite_s": median(runs), "test_suite_runs_s": runs}


def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = re.findall(r"model name\s*:\s*(.+)", cpuinfo.read_text())
        cpu = names[0] if names else cpu
    import torch

    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "torch": torch.__version__, "torch_threads": torch.get_num_threads()}


def budgets(result: dict) -> dict:
    floor = result["compute_floor_s"]
    return {
        "cold build <= 1.5 x floor + 15 s": result["cold_build_s"] <= 1.5 * floor + 15,
        "no-change rebuild <= 5 s": result["no_change_rebuild_s"] <= 5,
        "prose-only edit executes no cell": result["prose_edit_executed"] == 0,
        "a code edit re-executes exactly the chapters importing the module": all(
            all(run == edit["importers"] for run in edit["executed"])
            for edit in result["code_edits"].values()
        ),
        # issue 15's budget, since the explorable figures ship their sweeps with the page
        f"every chapter <= {BUDGET_KB} kB": max(result["chapter_weight_kb"].values()) <= BUDGET_KB,
    }


def markdown(result: dict) -> str:
    m = result["machine"]
    rows = [
        ("Cold build (clean, every chapter executed)", f"{result['cold_build_s']:.1f} s"),
        ("Compute floor (chapters' code as plain Python, one process)",
         f"{result['compute_floor_s']:.1f} s"),
        ("Cold build / compute floor", f"{result['cold_build_s'] / result['compute_floor_s']:.2f}"),
        ("No-change rebuild", f"{result['no_change_rebuild_s']:.1f} s"),
        ("Rebuild after a prose-only edit",
         f"{result['prose_edit_rebuild_s']:.1f} s ({result['prose_edit_executed']} chapters executed)"),
    ]
    for name, edit in result["code_edits"].items():
        executed = edit["executed"][0]
        outcome = (f"{edit['rebuild_s']:.1f} s ({len(executed)} of {result['chapters']} chapters "
                   f"executed: {', '.join(executed)})")
        rows.append((f"Rebuild after an edit to code/gradflow/{name}", outcome))
    if "test_suite_s" in result:
        rows.append(("Test suite (pytest, everything)", f"{result['test_suite_s']:.0f} s"))
    for name, seconds in result["chapter_execution_s"].items():
        rows.append((f"Execution of {name} (in the cold build)", f"{seconds:.1f} s"))
    for name, kb in result["chapter_weight_kb"].items():
        rows.append((f"Page weight of {name} (HTML + its images)", f"{kb:.0f} kB"))
    rows.append(("Shared theme assets (_static, counted once)",
                 f"{result['shared_assets_kb'] / 1024:.1f} MB"))
    measured = (
        f"Measured {result['date']} on {m['cpu']} ({m['cores']} cores), Python {m['python']}, "
        f"torch {m['torch']}; medians of {result['repeats']} runs."
    )
    lines = [
        measured,
        "",
        "| What | Median |",
        "| --- | --- |",
        *[f"| {what} | {value} |" for what, value in rows],
        "",
        "| Budget | Holds |",
        "| --- | --- |",
        *[f"| {what} | {'yes' if ok else '**no**'} |" for what, ok in result["budgets"].items()],
    ]
    return "\n".join(lines) + "\n"


def update_guide(table: str) -> None:
    readme = REPO / "CONTRIBUTING.md"
    text = readme.read_text()
    start, end = "<!-- benchmark:start -->", "<!-- benchmark:end -->"
    if start not in text or end not in text:
        raise SystemExit("CONTRIBUTING.md has no benchmark markers")
    before, rest = text.split(start, 1)
    _, after = rest.split(end, 1)
    readme.write_text(f"{before}{start}\n{table}{end}{after}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs per measurement (median)")
    parser.add_argument("--test-repeats", type=int, default=3, help="runs of the test suite; 0 skips it")
    parser.add_argument("--update-guide", action="store_true", help="put the table into CONTRIBUTING.md")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="gradflow-bench-") as tmp:
        root = copy_repo(Path(tmp) / "repo")
        result = {"date": dt.date.today().isoformat(), "repeats": args.repeats,
                  "machine": machine()}
        result.update(measure_builds(root, args.repeats))
        result.update(page_weights(root / "_build" / "html"))
        floor_dir = Path(tmp) / "floor"
        floor_dir.mkdir()
        result.update(measure_compute_floor(root, args.repeats, floor_dir))
    if args.test_repeats:
        result.update(measure_tests(args.test_repeats))
    result["budgets"] = budgets(result)

    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(result, indent=2) + "\n")
    table = markdown(result)
    (RESULTS / "latest.md").write_text(table)
    if args.update_guide:
        update_guide(table)
    print(table)


if __name__ == "__main__":
    main()
