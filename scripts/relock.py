"""Lock every package the set-up installs, and report on a re-lock.

    .venv/bin/python scripts/relock.py                       # after editing requirements.in
    .venv/bin/python scripts/relock.py --upgrade             # the newest versions it allows
    .venv/bin/python scripts/relock.py --upgrade-package NAME

``requirements.in`` (with ``pyproject.toml``'s dependencies) is the list people edit;
``requirements.txt`` is its lock, every package the set-up installs at an exact version, made by
pip-tools' ``pip-compile``. Without ``--upgrade`` a re-lock keeps every locked version it can, so
adding a dependency moves nothing else. Then ``binder/requirements.txt`` is written again: the part
of the lock that the book's package (its ``pyproject.toml`` dependencies) and ``BINDER_EXTRAS``
need, read from the lock's own ``# via`` annotations, with PyTorch's CPU build. ``requirements-no-deps.txt``
(cffconvert, installed without its pins) is kept by hand.

torch: pip-compile resolves torch 2.13.0 as the CPU wheel, ``2.13.0+cpu`` (this machine's disk
copy, or PyTorch's CPU index on GitHub's runners; without it, pip would resolve PyTorch's CUDA
build and lock a dozen ``nvidia-*`` packages, which this script refuses). The lock names it
``torch==2.13.0``, the line the README's set-up asks pip for (it takes the CPU wheel where pip has
it at hand), and ``2.13.0+cpu`` satisfies it (``tests/test_lock.py`` compares as pip does).

The weekly ``.github/workflows/relock.yml`` runs ``--upgrade``, builds the book strictly and runs
the suite on the new lock, then ``--report OLD_LOCK --outcome STEP=OUTCOME ...``: the lock's
changes for the job's summary and, when a step failed, an issue's title and body
(``tests/test_relock.py`` runs all of it offline on scratch locks).
"""

from __future__ import annotations

import argparse
import datetime
import difflib
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOCK = "requirements.txt"
TOP_LEVEL = "requirements.in"
BINDER = "binder/requirements.txt"
#: What Binder installs besides the book's package (whose dependencies pyproject.toml names): the
#: reader notebooks' glue (myst-nb), their kernel and the MyST chapters as notebooks.
BINDER_EXTRAS = ("myst-nb", "ipykernel", "jupytext")
#: The line of binder/requirements.txt after which this script writes; the lines above are kept.
BINDER_MARKER = "# Written by scripts/relock.py"
#: What the header of the lock says made it.
COMMAND = ".venv/bin/python scripts/relock.py"
PIP_COMPILE = ["--quiet", "--allow-unsafe", "--strip-extras", "--newline=lf",
               "--no-emit-index-url", "--no-emit-find-links", "--no-emit-trusted-host"]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#]+)")
#: A step's outcome in GitHub Actions that calls for an issue.
FAILED = "failure"
#: GitHub refuses an issue body longer than 65,536 characters.
BODY_LIMIT = 60_000
ISSUE_TITLE = "Weekly re-lock fails"


def normalise(name: str) -> str:
    """A distribution's name as PEP 503 compares names: ``ruamel.yaml`` is ``ruamel-yaml``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_pins(text: str) -> dict[str, str]:
    """``{normalised name: version}`` of every ``name==version`` line of a requirements file;
    comments, options (``--extra-index-url``) and editable lines are not pins."""
    pins = {}
    for line in text.splitlines():
        match = PIN.match(line.strip())
        if match:
            pins[normalise(match[1])] = match[2]
    return pins


def read_parents(text: str) -> dict[str, set[str]]:
    """``{package: the packages that need it}`` from pip-compile's ``# via`` annotations; a
    top-level file (``-r requirements.in``) is no parent, ``gradflow (pyproject.toml)`` is
    ``gradflow``."""
    parents: dict[str, set[str]] = {}
    current = None
    for line in text.splitlines():
        match = PIN.match(line)
        if match:
            current = normalise(match[1])
            parents[current] = set()
            continue
        annotation = line.startswith(" ") and line.strip().startswith("#")
        if current is None or not annotation:
            current = None
            continue
        entry = line.strip().lstrip("#").strip()
        entry = entry[3:].strip() if entry.startswith("via") else entry
        for via in filter(None, (v.strip() for v in entry.split(","))):
            if not via.startswith(("-r", "-c")):
                parents[current].add(normalise(via.split(" (")[0]))
    return parents


def needed_by(roots: set[str], parents: dict[str, set[str]]) -> set[str]:
    """The roots and every locked package that a root needs, directly or not."""
    children: dict[str, set[str]] = {}
    for child, of in parents.items():
        for parent in of:
            children.setdefault(parent, set()).add(child)
    found, todo = set(), [normalise(r) for r in roots]
    while todo:
        name = todo.pop()
        if name not in found:
            found.add(name)
            todo.extend(children.get(name, ()))
    return found


def project_dependencies(root: Path = ROOT) -> set[str]:
    """The names of the dependencies ``pyproject.toml`` declares for the book's package."""
    from packaging.requirements import Requirement

    project = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return {normalise(Requirement(r).name) for r in project["dependencies"]}


def finish_lock(text: str) -> str:
    """pip-compile's output as the lock: torch without its local label (see the module's text).
    Refuses a lock of PyTorch's CUDA build."""
    pins = read_pins(text)
    cuda = sorted(n for n in pins if n.startswith("nvidia-"))
    if not pins.get("torch", "").endswith("+cpu") or cuda:
        raise SystemExit(
            f"torch resolved as {pins.get('torch')!r} with {len(cuda)} nvidia-* packages: "
            "PyTorch's CUDA build. Give pip PyTorch's CPU wheel (README: its CPU package index) "
            "and re-lock.")
    return re.sub(r"^(torch==[^\s+]+)\+cpu\b", r"\1", text, flags=re.MULTILINE)


def binder_requirements(current: str, lock: str, roots: set[str]) -> str:
    """binder/requirements.txt: its own lines up to ``BINDER_MARKER``, then the locked packages
    that ``roots`` need (torch as the CPU build, which Binder's extra index serves), then ``-e .``."""
    lines = current.splitlines()
    marker = next((i for i, line in enumerate(lines) if line.startswith(BINDER_MARKER)), None)
    if marker is None:
        raise SystemExit(f"{BINDER}: no line starting with {BINDER_MARKER!r}")
    pins = read_pins(lock)
    wanted = needed_by(roots, read_parents(lock))
    missing = sorted(r for r in roots if normalise(r) not in pins)
    if missing:
        raise SystemExit(f"Binder needs {missing}, which {LOCK} does not lock")
    body = []
    for name in sorted(n for n in wanted if n in pins):
        version = pins[name] + ("+cpu" if name == "torch" and "+" not in pins[name] else "")
        body.append(f"{name}=={version}")
    return "\n".join(lines[:marker + 1] + body + ["-e ."]) + "\n"


def binder_roots(root: Path = ROOT) -> set[str]:
    return project_dependencies(root) | set(BINDER_EXTRAS)


def lock(root: Path = ROOT, upgrade: bool = False, packages: tuple[str, ...] = ()) -> None:
    """Run pip-compile on requirements.in and pyproject.toml, write the lock and Binder's part."""
    target = root / LOCK
    scratch = root / f"{LOCK}.new"   # beside the lock: pip-compile starts from its pins
    scratch.write_text(target.read_text(encoding="utf-8") if target.exists() else "")
    flags = ["--upgrade"] if upgrade else []
    for package in packages:
        flags += ["--upgrade-package", package]
    try:
        subprocess.run(
            [sys.executable, "-m", "piptools", "compile", *PIP_COMPILE, *flags,
             f"--output-file={scratch.name}", "pyproject.toml", TOP_LEVEL],
            cwd=root, check=True, env=dict(os.environ, CUSTOM_COMPILE_COMMAND=COMMAND))
        text = finish_lock(scratch.read_text(encoding="utf-8"))
    finally:
        scratch.unlink(missing_ok=True)
    target.write_text(text, encoding="utf-8")
    binder = root / BINDER
    binder.write_text(binder_requirements(binder.read_text(encoding="utf-8"), text,
                                          binder_roots(root)), encoding="utf-8")
    print(f"{LOCK}: {len(read_pins(text))} packages; {BINDER}: "
          f"{len(read_pins(binder.read_text(encoding='utf-8')))}")


# --- the environment against the lock (tests/test_lock.py) -------------------------------------

def installed() -> dict[str, list[str]]:
    """``{normalised name: [version, ...]}`` of every distribution this interpreter sees."""
    from importlib.metadata import distributions

    found: dict[str, list[str]] = {}
    for dist in distributions():
        found.setdefault(normalise(dist.metadata["Name"]), []).append(dist.version)
    return found


def compare(locked: dict[str, str], present: dict[str, list[str]],
            ignore: set[str] = frozenset()) -> list[str]:
    """What keeps ``present`` (an environment) from being exactly ``locked`` (a lock's pins), one
    line per package: installed but not locked, locked at another version, locked but missing.
    Versions compare as pip does: ``==2.13.0`` is satisfied by ``2.13.0+cpu``."""
    from packaging.specifiers import SpecifierSet

    locked = {normalise(k): v for k, v in locked.items()}
    present = {normalise(k): v for k, v in present.items()}
    ignore = {normalise(n) for n in ignore}
    problems = []
    for name in sorted(set(present) - ignore):
        versions = present[name]
        if name not in locked:
            problems.append(f"{name}=={versions[0]}: installed but not locked")
        elif len(versions) > 1:
            problems.append(f"{name}: installed {len(versions)} times ({', '.join(versions)})")
        elif versions[0] not in SpecifierSet(f"=={locked[name]}"):
            problems.append(f"{name}: locked at {locked[name]}, installed {versions[0]}")
    for name in sorted(set(locked) - set(present) - ignore):
        problems.append(f"{name}=={locked[name]}: locked but not installed")
    return problems


# --- the weekly workflow's report ---------------------------------------------------------------

def changes(old: str, new: str) -> list[tuple[str, str | None, str | None]]:
    """``(name, old version, new version)`` for every package the two locks pin differently;
    ``None`` where a lock does not have it."""
    before, after = read_pins(old), read_pins(new)
    return [(name, before.get(name), after.get(name))
            for name in sorted(before.keys() | after.keys()) if before.get(name) != after.get(name)]


def pin_diff(old: str, new: str) -> str:
    """A unified diff of the two locks' pins (their annotations left out)."""
    def pins(text: str) -> list[str]:
        return [f"{n}=={v}\n" for n, v in sorted(read_pins(text).items())]
    return "".join(difflib.unified_diff(pins(old), pins(new), f"a/{LOCK}", f"b/{LOCK}", n=0))


def needs_issue(outcomes: dict[str, str]) -> bool:
    """An issue is opened when a step failed: a skipped step (after a failure) or a cancelled run
    is no news, and all steps passing means the new lock works."""
    return any(outcome == FAILED for outcome in outcomes.values())


def summary(old: str, new: str, outcomes: dict[str, str]) -> str:
    """The lock's changes and the steps' outcomes, as Markdown (the job's summary)."""
    moved = changes(old, new)
    lines = ["| Step | Outcome |", "| --- | --- |"]
    lines += [f"| {step} | {outcome} |" for step, outcome in outcomes.items()]
    lines += ["", f"{len(moved)} packages change in `{LOCK}`" + (":" if moved else ".")]
    if moved:
        lines += ["", "| Package | Locked | Re-locked |", "| --- | --- | --- |"]
        lines += [f"| {name} | {a or '(not locked)'} | {b or '(dropped)'} |" for name, a, b in moved]
    return "\n".join(lines) + "\n"


def issue(old: str, new: str, outcomes: dict[str, str], run_url: str = "",
          today: datetime.date | None = None) -> tuple[str, str]:
    """The title and body of the issue a failed weekly re-lock opens."""
    today = today or datetime.date.today()
    failed = [step for step, outcome in outcomes.items() if outcome == FAILED]
    title = f"{ISSUE_TITLE}: {', '.join(failed)} ({today.isoformat()})"
    body = [
        f"The weekly re-lock (`{COMMAND} --upgrade`: the newest versions `{TOP_LEVEL}` allows) "
        f"failed at: {', '.join(failed)}." + (f" Its run: {run_url}" if run_url else ""),
        "",
        (f"`{LOCK}` on the default branch is unchanged: the book still installs and builds from "
         f"it. To see the failure, run `{COMMAND} --upgrade`, then `rm -rf .venv && bash "
         f"scripts/test.sh`; hold a package back with an upper bound in `{TOP_LEVEL}`, or fix "
         "the book for its new version."),
        "",
        summary(old, new, outcomes),
        "```diff",
        pin_diff(old, new).rstrip("\n"),
        "```",
    ]
    text = "\n".join(body) + "\n"
    if len(text) > BODY_LIMIT:
        text = text[:BODY_LIMIT] + "\n```\n\n(cut: the whole diff is in the run's artifact)\n"
    return title, text


def report(old_lock: Path, outcomes: dict[str, str], out: Path, run_url: str = "",
           root: Path = ROOT) -> bool:
    """Write ``summary.md`` to ``out``, and ``issue-title.txt`` and ``issue.md`` when a step
    failed; True when an issue is to be opened."""
    old = old_lock.read_text(encoding="utf-8")
    new = (root / LOCK).read_text(encoding="utf-8")
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.md").write_text(summary(old, new, outcomes), encoding="utf-8")
    (out / "lock.diff").write_text(pin_diff(old, new), encoding="utf-8")
    if not needs_issue(outcomes):
        return False
    title, body = issue(old, new, outcomes, run_url)
    (out / "issue-title.txt").write_text(title + "\n", encoding="utf-8")
    (out / "issue.md").write_text(body, encoding="utf-8")
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--upgrade", action="store_true",
                        help="lock the newest versions requirements.in allows (the weekly job)")
    parser.add_argument("--upgrade-package", action="append", default=[], metavar="NAME",
                        help="move only this package (and what it needs) to its newest version")
    parser.add_argument("--report", type=Path, metavar="OLD_LOCK",
                        help="do not lock: compare OLD_LOCK with requirements.txt and write the "
                             "summary (and an issue, when a step failed) to --out")
    parser.add_argument("--outcome", action="append", default=[], metavar="STEP=OUTCOME",
                        help="with --report: a step's outcome, e.g. build=failure")
    parser.add_argument("--out", type=Path, help="with --report: the folder for its files")
    parser.add_argument("--run-url", default="", help="with --report: the run, for the issue")
    args = parser.parse_args(argv)
    if args.report:
        if not args.out:
            parser.error("--report needs --out")
        outcomes = dict(o.split("=", 1) for o in args.outcome)
        opened = report(args.report, outcomes, args.out, args.run_url)
        print(f"open_issue={'true' if opened else 'false'}")
        return 0
    lock(upgrade=args.upgrade, packages=tuple(args.upgrade_package))
    return 0


if __name__ == "__main__":
    sys.exit(main())
