#!/usr/bin/env bash
# The whole test suite: lint (ruff), types (mypy), tests (pytest). Run after .ci/setup.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck disable=SC1091
. .venv/bin/activate
ruff check .
ruff format --check .
mypy
python -m pytest -n "${PYTEST_WORKERS:-2}" "$@"
