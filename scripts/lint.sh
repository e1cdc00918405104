#!/usr/bin/env bash
# The checks CI runs before the tests (.ci/run): lint and format (ruff), then types (mypy on connector,
# adapters and mappings); their rules are in pyproject.toml. Then the import structure: layers, no cycle
# (scripts/check_imports.py).
# Fix most style findings with `.venv/bin/ruff check --fix . && .venv/bin/ruff format .`.
set -euo pipefail
cd "$(dirname "$0")/.."

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install --quiet --disable-pip-version-check -e '.[test]'
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/python scripts/check_imports.py
