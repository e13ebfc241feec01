"""The README and the maintainers' guide stay true: every command they show is run here.

Every line of their ```bash blocks is a command, and each is run in a way that cannot do harm and
fails if the command is wrong: a Python script with ``--help`` (and every flag the docs give it must
be one it accepts), pytest with ``--collect-only`` (the markers and paths must exist), ruff for
real, a shell script checked by ``bash -n`` and looked up where the suite or CI runs it. The Python
snippet of the README runs. A command that fits none of these fails the test, so a new command in
the docs needs a way to be checked here. The README must stay short.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

DOCS = ("README.md", "CONTRIBUTING.md")
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
#: Shell scripts the docs show, and what runs each: CI (.ci/run) or the release workflow.
SCRIPT_RUNNERS = {
    "scripts/build.sh": (".github/workflows/publish.yml", "bash scripts/build.sh"),
    "scripts/test.sh": (".ci/run", "bash scripts/test.sh"),
    "scripts/setup.sh": (".github/workflows/release.yml", "bash scripts/setup.sh"),
}


def blocks(name: str, language: str) -> list[str]:
    text = (REPO / name).read_text(encoding="utf-8")
    return [body for lang, body in FENCE.findall(text) if lang == language]


def commands() -> list[tuple[str, str]]:
    found = []
    for name in DOCS:
        for body in blocks(name, "bash"):
            for line in body.splitlines():
                command = line.split("  #", 1)[0].split(" # ", 1)[0].strip()
                if command and not command.startswith("#"):
                    found.extend((name, part.strip()) for part in command.split("&&"))
    return found


def run(args: list[str], timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=timeout,
                          check=False)


def check(command: str) -> None:
    words = shlex.split(command)
    while words and re.match(r"^[A-Z_]+=", words[0]):   # BOOK_EDITION=student ...
        words = words[1:]
    program, args = words[0], words[1:]
    if program == "git":
        assert args[0] in {"tag", "push"}, command   # the release's tagging, shown not run
        return
    if program == "bash":
        script = args[0]
        assert (REPO / script).is_file(), command
        assert run(["bash", "-n", script]).returncode == 0, command
        runner, line = SCRIPT_RUNNERS[script]
        assert line in (REPO / runner).read_text(), f"{command}: {runner} does not run it"
        return
    assert program in {".venv/bin/python", ".venv/bin/ruff"}, f"no check for: {command}"
    if program == ".venv/bin/ruff":
        done = run([str(Path(sys.executable).with_name("ruff")), *args])
        assert done.returncode == 0, done.stdout[-2000:]
        return
    if args[:2] == ["-m", "pytest"]:
        done = run([sys.executable, "-m", "pytest", *args[2:], "--collect-only", "-q"])
        assert done.returncode == 0, done.stdout[-2000:]
        return
    if args[0] == "-m":
        done = run([sys.executable, "-m", args[1], "--help"])
        assert done.returncode == 0, command
        return
    script = args[0]
    assert (REPO / script).is_file(), command
    done = run([sys.executable, script, "--help"])
    assert done.returncode == 0, f"{command}: {done.stderr[-2000:]}"
    for flag in (a for a in args[1:] if a.startswith("--")):
        assert flag in done.stdout, f"{command}: {script} has no {flag}"


@pytest.mark.parametrize(("doc", "command"), commands(), ids=lambda v: v[:60])
def test_every_command_the_docs_show_runs(doc, command):
    check(command)


def test_the_docs_show_the_two_commands_and_the_readme_is_short():
    shown = [command for name, command in commands() if name == "README.md"]
    assert "bash scripts/build.sh" in shown and "bash scripts/test.sh" in shown
    assert len((REPO / "README.md").read_text().splitlines()) <= 150
    assert "CONTRIBUTING.md" in (REPO / "README.md").read_text()


def test_the_readmes_python_snippet_runs():
    (snippet,) = blocks("README.md", "python")
    done = subprocess.run([sys.executable, "-c", snippet], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr


def test_the_readme_lists_every_chapter_in_order():
    import yaml

    toc = yaml.safe_load((REPO / "_toc.yml").read_text())
    chapters = toc["parts"][0]["chapters"]
    titles = []
    for entry in chapters:
        source = (REPO / f"{entry['file']}.md").read_text(encoding="utf-8")
        titles.append(next(line[2:].strip() for line in source.splitlines()
                           if line.startswith("# ")))
    rows = re.findall(r"^\| (\d+)\. ([^|]+?) \|", (REPO / "README.md").read_text(), re.MULTILINE)
    assert [(int(n), t) for n, t in rows] == list(enumerate(titles, start=1))
