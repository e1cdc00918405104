"""Nothing lost, nothing doubled, under faults: the reduced chaos run (the full one is bench/chaos.py).

Real gunicorn, RQ workers and the RQ scheduler on PostgreSQL and a private Redis; three fake stores and
a fake REST ERP that fails a fifth of its calls and goes down for a while; Redis restarted empty and
workers killed with SIGKILL while the webhooks flow (see tests/chaos.py).
"""

from __future__ import annotations

import shutil

import pytest

from tests.chaos import Plan, run

pytestmark = [
    pytest.mark.chaos,
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server to run a private Redis"),
]


def test_every_order_reaches_the_erp_exactly_once_through_the_faults(tmp_path) -> None:
    plan = Plan(
        orders_per_store=30, send_seconds=12, worker_kills=3, redis_restarts=1, outage_seconds=3, converge_timeout=150
    )
    report = run(plan, tmp_path)
    print("\n".join(report.lines()))  # shown with -s, and on failure
    assert report.worker_kills == 3 and report.redis_restarts == 1 and report.erp_injected_failures > 0
    assert report.undelivered > 0 and report.duplicates > 0 and report.reordered > 0
    assert set(report.answers) == {200}, report.answers  # every delivery taken at once, through every fault
    assert report.problems == []
    assert report.converge_seconds is not None
    assert report.events["failed"] == 0 and set(report.events) <= {"succeeded", "ignored"}
