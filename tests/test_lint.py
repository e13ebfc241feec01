"""The code is ruff-clean (rules and line length in pyproject.toml)."""

import subprocess
import sys
from pathlib import Path

from conftest import REPO


def test_ruff_is_clean():
    ruff = Path(sys.executable).with_name("ruff")
    folders = [d for d in ("code", "tests", "_ext", "benchmarks") if (REPO / d).is_dir()]
    done = subprocess.run([str(ruff), "check", *folders],
                          cwd=REPO, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
