#!/usr/bin/env bash
# Create .venv (Python 3.11) and install the lock into it: every package at the version
# requirements.txt names (made from requirements.in by scripts/relock.py), and the package editable.
# Used by build.sh and test.sh; safe to run again (it only installs what is missing or differs).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3.11}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
# pip itself first, at the locked version.
.venv/bin/python -m pip install --quiet "$(grep -E '^pip==' requirements.txt)"
# (Not --no-compile: it saves 20 s here, but where PYTHONDONTWRITEBYTECODE is set, as on this
# project's machines, every process would then compile torch and the rest again on import.)
.venv/bin/python -m pip install --quiet -r requirements.txt
# cffconvert (tests/test_release.py validates CITATION.cff with it) asks for jsonschema<4, which the
# book's other packages have outgrown; its validation runs on the locked 4.x, so it comes without
# its own pins (its other needs are locked in requirements.txt).
.venv/bin/python -m pip install --quiet --no-deps -r requirements-no-deps.txt
# The book's package, editable, so chapters always import the current code: its dependencies are
# in the lock, and it is built with the lock's setuptools rather than a newest one fetched for it.
.venv/bin/python -m pip install --quiet --no-deps --no-build-isolation -e .
# Build matplotlib's font cache now: its first-use notice goes to stderr, which fails a strict build.
.venv/bin/python -c "import matplotlib.pyplot"
