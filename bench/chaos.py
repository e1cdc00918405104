"""The full chaos run: thousands of webhooks over three stores through every fault, then the proof.

    .venv/bin/python bench/chaos.py [--orders-per-store 800] [--send-seconds 90] [--kills 6]

Real gunicorn, RQ workers and the RQ scheduler on PostgreSQL (127.0.0.1:5432) and a private
redis-server; two fake Shopify stores and a fake WooCommerce store; a fake REST ERP failing a share of
its calls (half of them after carrying them out) plus an outage. Meanwhile Redis is restarted empty and
workers are killed with SIGKILL; some webhooks are sent twice, some out of order, some never (left for
reconciliation). Prints what happened, whether the ERP holds every order exactly once with the right
totals and payments, and how long the connector took to converge once the faults stopped.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.chaos import Plan, run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders-per-store", type=int, default=800)
    parser.add_argument("--send-seconds", type=float, default=90)
    parser.add_argument("--kills", type=int, default=6)
    parser.add_argument("--redis-restarts", type=int, default=2)
    parser.add_argument("--outage-seconds", type=float, default=20)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--failure-rate", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    plan = Plan(
        orders_per_store=args.orders_per_store,
        send_seconds=args.send_seconds,
        worker_kills=args.kills,
        redis_restarts=args.redis_restarts,
        outage_seconds=args.outage_seconds,
        workers=args.workers,
        erp_failure_rate=args.failure_rate,
        seed=args.seed,
        converge_timeout=900,
    )
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="chaos-") as workdir:
        report = run(plan, Path(workdir))
    print("\n".join(report.lines()))
    print(f"whole run {time.monotonic() - started:.0f} s")
    ok = not report.problems and report.converge_seconds is not None
    print("RESULT:", "every order in the ERP exactly once, right totals and payments" if ok else "FAILED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
