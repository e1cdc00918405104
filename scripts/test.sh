#!/usr/bin/env bash
# Install what the tests need and run them: PostgreSQL and Redis up, a venv with the project and
# its test extras, then pytest (arguments are passed on). CI runs exactly this (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."

ensure_postgres() {
  if pg_isready -q -h 127.0.0.1 -p 5432; then return; fi
  echo "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
  for _ in $(seq 30); do pg_isready -q -h 127.0.0.1 -p 5432 && return; sleep 1; done
  echo "PostgreSQL did not come up on 127.0.0.1:5432" >&2; exit 1
}

ensure_redis() {
  if redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then return; fi
  echo "starting Redis"
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no
  for _ in $(seq 30); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && return; sleep 1; done
  echo "Redis did not come up on 127.0.0.1:6379" >&2; exit 1
}

# The browser test drives Debian's Chromium through Playwright (never `playwright install`: it downloads a
# browser of its own, which cannot work here).
ensure_chromium() {
  if [ -x /usr/bin/chromium ]; then return; fi
  echo "installing Debian's chromium for the browser test"
  export DEBIAN_FRONTEND=noninteractive
  if ! { apt-get update -qq >/dev/null && apt-get install -y -qq chromium >/dev/null; }; then
    echo "could not install chromium: tests/test_browser.py will say why it skips" >&2
  fi
}

ensure_postgres
ensure_redis
ensure_chromium
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install --quiet --disable-pip-version-check -e '.[test]'
# Four workers on two cores: most tests wait on PostgreSQL, Redis, a browser or a process of their own
# (tests/conftest.py gives each worker a Redis database; `-n 0` runs in this process).
exec .venv/bin/pytest -n "${TEST_WORKERS:-4}" "$@"
