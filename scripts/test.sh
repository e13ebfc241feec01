#!/usr/bin/env bash
# Set everything up and run the whole test suite (unit tests, then the real book builds).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -m pytest "$@"
