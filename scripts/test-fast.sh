#!/usr/bin/env bash
# The fast tier (docs/testing.md, "Tests in tiers"): every test that runs in-process without PostgreSQL, Redis,
# another process or a browser, in well under a minute. Nothing is started or installed when the venv
# scripts/test.sh makes is there (it is made once if not). Arguments are passed on to pytest:
# `bash scripts/test-fast.sh tests/mappings -x`. The whole suite, which CI runs, is scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/pytest ]; then
  [ -x .venv/bin/python ] || python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check -e '.[test]'
fi
exec .venv/bin/pytest -m fast -q "$@"
