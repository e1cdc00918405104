"""Nothing lost, nothing doubled, under faults: the reduced chaos run (the full one is bench/chaos.py).

Real gunicorn, RQ workers and the RQ scheduler on PostgreSQL and a private Redis; three fake stores and
a fake REST ERP that fails a fifth of its calls and goes down for a while; Redis restarted empty and
workers killed with SIGKILL while the webhooks flow (see tests/chaos.py). The test asserts the figures
the report prints, not only that the run converged.
"""

from __future__ import annotations

import shutil
from collections import Counter

import pytest

from tests.chaos import Plan, run

pytestmark = [
    pytest.mark.chaos,
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server to run a private Redis"),
]

# Once the faults stop, what is left waits at most for a killed worker's lease (15 s), a retry (capped at
# 4 s) or the sweep (every 2 s): this run converges in 12-13 s here; the bound leaves room for a loaded machine.
CONVERGE_BOUND = 60


def test_every_order_reaches_the_erp_exactly_once_through_the_faults(tmp_path) -> None:
    plan = Plan(
        orders_per_store=30, send_seconds=12, worker_kills=3, redis_restarts=1, outage_seconds=3, converge_timeout=150
    )
    report = run(plan, tmp_path)
    print("\n".join(report.lines()))  # shown with -s, and on failure
    # The faults happened, and the supervisor replaced every killed worker.
    assert report.worker_kills == 3 and report.redis_restarts == 1 and report.erp_injected_failures > 0
    assert report.process_restarts["worker"] >= report.worker_kills
    # What was sent: every order of the plan, some delivered twice, some out of order, some never.
    assert report.orders == 3 * plan.orders_per_store
    assert report.duplicates > 0 and report.reordered > 0 and report.undelivered > 0
    # Every delivery was taken at its first try, through every fault.
    assert report.answers == Counter({200: report.deliveries}), report.answers
    # Each kind of disorder handled: every re-delivery stopped at the door (it stored no event), every order
    # sent out of order and every order never sent (reconciliation brought it in) right in the ERP.
    assert report.duplicates_stopped == report.duplicates
    assert report.reordered_right == report.reordered
    assert report.undelivered_right == report.undelivered
    assert report.inbox_from_reconciliation >= report.undelivered
    # The ERP: every order once with its total and tax, exactly one payment per paid order, one customer a buyer.
    assert report.orders_right == report.erp_orders == report.orders
    assert report.erp_payments == report.paid_orders > 0
    assert report.erp_customers == report.buyers
    # Orders an approval rule held reached the ERP once approved, each approved once, through the faults.
    assert report.review_orders > 0 and report.approvals == report.review_orders == report.held_right
    # The back office through the same faults: every receipt finance recorded marked its order paid once, every
    # credit note the ERP made refunded once (with a sync killed partway each round), every routed order on the
    # warehouse its destination names, whatever the retries.
    office = report.office
    assert office.receipts > 0 and office.marked_once == office.receipts
    assert office.credit_notes > 0 and office.refunded_once == office.credit_notes
    assert office.killed > 0
    assert office.routed > 0 and office.routed_right == office.routed
    assert report.problems == []
    assert report.events["failed"] == 0 and set(report.events) <= {"succeeded", "ignored"}
    assert report.converge_seconds is not None and report.converge_seconds < CONVERGE_BOUND
