"""Binder: the image repo2docker would build from binder/, and what readers get inside it."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

spec = importlib.util.spec_from_file_location("relock", REPO / "scripts" / "relock.py")
relock = importlib.util.module_from_spec(spec)
spec.loader.exec_module(relock)

BINDER = REPO / "binder"
REPO2DOCKER = str(Path(sys.executable).with_name("jupyter-repo2docker"))


def requirement_pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.\-]+)==([^\s#]+)", line.strip())
        if match:
            pins[match.group(1).lower()] = match.group(2)
    return pins


@pytest.fixture(scope="module")
def dockerfile(tmp_path_factory) -> str:
    """The Dockerfile repo2docker generates for the repository (no Docker daemon needed)."""
    done = subprocess.run(
        [REPO2DOCKER, "--no-build", "--debug", str(REPO)],
        capture_output=True, text=True, timeout=300, check=False,
        cwd=tmp_path_factory.mktemp("r2d"),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout + done.stderr


def line_of(text: str, pattern: str) -> int:
    for number, line in enumerate(text.splitlines()):
        if re.search(pattern, line):
            return number
    raise AssertionError(f"no line matches {pattern!r}")


def test_repo2docker_uses_the_binder_configuration(dockerfile):
    assert "Building conda environment for python=3.11" in dockerfile
    line_of(dockerfile, r'pip install .*-r "binder/requirements.txt"')


def test_requirements_are_installed_after_the_repository_is_copied_in(dockerfile):
    copy = line_of(dockerfile, r"^COPY .* src/ \$\{REPO_DIR\}/?$")
    install = line_of(dockerfile, r'pip install .*-r "binder/requirements.txt"')
    assert copy < install, "binder/requirements.txt's `-e .` needs the repository in place"


def test_post_build_step_runs_after_the_install(dockerfile):
    install = line_of(dockerfile, r'pip install .*-r "binder/requirements.txt"')
    post_build = line_of(dockerfile, r"^RUN \./binder/postBuild$")
    assert install < post_build


def test_binder_installs_cpu_torch_and_the_package():
    text = (BINDER / "requirements.txt").read_text()
    assert re.search(r"^--extra-index-url \S+/whl/cpu$", text, re.MULTILINE)
    assert re.search(r"^-e \.$", text, re.MULTILINE)
    assert requirement_pins(BINDER / "requirements.txt")["torch"].endswith("+cpu")
    assert (BINDER / "runtime.txt").read_text().strip() == "python-3.11"


def test_binder_pins_agree_with_the_main_requirements():
    binder = requirement_pins(BINDER / "requirements.txt")
    main = requirement_pins(REPO / "requirements.txt")
    for name, version in binder.items():
        assert name in main, f"{name} is pinned for Binder but not in requirements.txt"
        assert version.split("+")[0] == main[name], f"{name}: {version} vs {main[name]}"
    for needed in ("torch", "myst-nb", "jupytext", "matplotlib", "pandas", "scipy"):
        assert needed in binder


def test_binder_installs_the_part_of_the_lock_the_reader_needs():
    """binder/requirements.txt is what scripts/relock.py writes from the lock (re-lock after an
    edit), and it is whole: every package it names needs only packages it names."""
    from importlib.metadata import distribution

    from packaging.requirements import Requirement

    text = (BINDER / "requirements.txt").read_text()
    lock = (REPO / "requirements.txt").read_text()
    assert text == relock.binder_requirements(text, lock, relock.binder_roots()), \
        "binder/requirements.txt is not the lock's part: run .venv/bin/python scripts/relock.py"
    pins = requirement_pins(BINDER / "requirements.txt")
    for name in pins:
        for needed in distribution(name).requires or []:
            requirement = Requirement(needed)
            if requirement.marker and not requirement.marker.evaluate({"extra": ""}):
                continue
            assert relock.normalise(requirement.name) in pins, f"{name} needs {needed}"


def test_post_build_makes_markdown_chapters_open_as_notebooks(tmp_path):
    """Run binder/postBuild's jupytext step in a scratch home: .md and MyST open as notebooks."""
    if not shutil.which("jupytext-config", path=str(Path(sys.executable).parent)):
        pytest.fail("jupytext-config is missing: jupytext is a pinned requirement")
    script = (BINDER / "postBuild").read_text()
    command = next(line for line in script.splitlines() if line.startswith("jupytext-config"))
    env = dict(os.environ, HOME=str(tmp_path), PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    env.pop("JUPYTER_CONFIG_DIR", None)
    subprocess.run(command.split(), env=env, check=True, capture_output=True)
    settings = (tmp_path / ".jupyter" / "labconfig" / "default_setting_overrides.json").read_text()
    assert '"markdown": "Jupytext Notebook"' in settings
    assert '"myst": "Jupytext Notebook"' in settings
