"""Schemathesis against the signed-in API for longer than CI runs it, printing what it found.

    .venv/bin/python bench/schemathesis.py [--examples 300] [--seed N]

Runs tests/attacks/test_schemathesis.py (PostgreSQL + Redis, every schemathesis check) with more examples
per operation and generation mode, a new seed unless one is given, and shrinking on, so each failure is
printed in its smallest form with a curl command to reproduce it. Prints the calls per operation, the
status codes answered and every failure; exits non-zero when something was found. Replay a finding with
the seed it printed.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=300, help="per operation and generation mode")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(2**31)
    env = {
        **os.environ,
        "SCHEMATHESIS_EXAMPLES": str(args.examples),
        "SCHEMATHESIS_SEED": str(seed),
        "SCHEMATHESIS_SHRINK": "1",
    }
    print(f"schemathesis: {args.examples} examples per operation and mode, seed {seed}", flush=True)
    started = time.monotonic()
    outcome = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "tests/attacks/test_schemathesis.py",
            "-q",
            "-s",
            "-p",
            "no:cacheprovider",
            "--tb=line",
        ],
        cwd=ROOT,
        env=env,
    )
    print(
        f"took {time.monotonic() - started:.0f} s; seed {seed}; "
        f"{'nothing found' if outcome.returncode == 0 else 'FOUND something (above)'}"
    )
    return outcome.returncode


if __name__ == "__main__":
    sys.exit(main())
