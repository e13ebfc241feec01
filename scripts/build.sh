#!/usr/bin/env bash
# Set everything up and build the book strictly into _build/html.
# A raising cell, any Sphinx warning or a broken reference fails the build.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/jupyter-book build . -W -n --keep-going "$@"
echo "Built: open _build/html/index.html"
