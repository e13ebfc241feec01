#!/usr/bin/env bash
# Create .venv (Python 3.11) and install the pinned requirements and the package into it.
# Used by build.sh and test.sh; safe to run again (it only installs what is missing).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3.11}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
# (Not --no-compile: it saves 20 s here, but where PYTHONDONTWRITEBYTECODE is set, as on this
# project's machines, every process would then compile torch and the rest again on import.)
.venv/bin/python -m pip install --quiet -r requirements.txt
# cffconvert (tests/test_release.py validates CITATION.cff with it) asks for jsonschema<4, which the
# book's other packages have outgrown; its validation runs on the pinned 4.x, so it comes without
# its own pins (its other needs are pinned in requirements.txt).
.venv/bin/python -m pip install --quiet --no-deps cffconvert==2.0.0
# Build matplotlib's font cache now: its first-use notice goes to stderr, which fails a strict build.
.venv/bin/python -c "import matplotlib.pyplot"
