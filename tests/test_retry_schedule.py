"""One retry schedule: the time an event's next attempt is stored for is the time its job is queued for, and
no worker takes the event before then unless a person asks for it. On both stacks (the embedded queue and RQ
on Redis); time passes on the connector's clock, nobody sleeps."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from sqlalchemy import text

from adapters import clock
from connector.orders.drains import sweep
from connector.orders.operations import retry_events
from connector.orders.pipeline import process_event
from tests.conftest import load_fixture

RETRY_JOB = "connector.orders.drains.retry_event"


def _retry_jobs(stack) -> list:  # type: ignore[no-untyped-def]
    return [(when, args) for when, name, args in stack.rt.queue.scheduled() if name == RETRY_JOB]


def test_each_retry_is_queued_for_the_time_the_database_holds_for_it(stack) -> None:  # type: ignore[no-untyped-def]
    limit = stack.rt.settings.max_attempts
    with stack.erp_down():
        stack.post_shopify(load_fixture("shopify", "order_guest.json"))
        stack.run_jobs()
        for attempt in range(1, limit):
            (event,) = stack.events()
            assert (event.status, event.attempts, event.attempt_rows[-1].outcome) == ("pending", attempt, "retry")
            ((when, args),) = _retry_jobs(stack)  # one job, for the next attempt only
            assert args == (event.id,)
            assert abs((when - event.next_attempt_at).total_seconds()) < 1, (when, event.next_attempt_at)
            assert stack.wait_for_next_job() == when
    (event,) = stack.events()
    assert (event.status, event.attempts, event.next_attempt_at) == ("failed", limit, None)
    assert event.last_error.startswith(f"gave up after {limit} attempts")
    assert _retry_jobs(stack) == []  # the database's count stopped it: nothing more is queued


def test_an_event_is_not_taken_before_its_next_attempt_at(stack) -> None:  # type: ignore[no-untyped-def]
    # The clock runs on with the system's between its moves: with the stack's 1-2 s backoff, a loaded machine (a CI
    # run) let the retry fall due for real before the test's early run, which then took it. Minutes away, it cannot.
    stack.rt.settings = stack.rt.settings.with_(retry_base_seconds=600, retry_cap_seconds=600)
    with stack.erp_down():
        stack.post_shopify(load_fixture("shopify", "order_guest.json"))
        stack.run_jobs()
    (event,) = stack.events()
    assert event.status == "pending" and event.next_attempt_at > clock.utcnow()
    # The ERP is back, but the wait is not over: a copy of the job run early, or a drain, takes nothing.
    clock.advance_to(event.next_attempt_at - timedelta(seconds=30))
    assert process_event(stack.rt, event.id).status == "not_claimed"
    stack.run_jobs()
    (waiting,) = stack.events()
    assert (waiting.status, waiting.attempts) == ("pending", 1)
    assert stack.erp_orders() == []
    clock.advance_to(event.next_attempt_at)
    assert process_event(stack.rt, event.id).status == "succeeded"
    assert len(stack.erp_orders()) == 1
    stack.run_jobs(include_delayed=True)  # its queued job comes too late to do anything
    (done,) = stack.events()
    assert (done.status, done.attempts) == ("succeeded", 2)
    assert len(stack.erp_orders()) == 1


def test_a_person_retrying_a_parked_event_does_not_wait_for_the_schedule(stack) -> None:  # type: ignore[no-untyped-def]
    with stack.erp_down():
        stack.post_shopify(load_fixture("shopify", "order_guest.json"))
        stack.run_jobs(include_delayed=True)
    (event,) = stack.events()
    assert event.status == "failed"
    assert retry_events(stack.rt, [event.id], actor="support@example.com") == 1
    stack.run_jobs()  # no time passes
    (event,) = stack.events()
    assert (event.status, event.next_attempt_at) == ("succeeded", None)
    assert len(stack.erp_orders()) == 1


def test_a_retry_whose_job_was_lost_is_taken_by_the_sweep_from_next_attempt_at(stack) -> None:  # type: ignore[no-untyped-def]
    """A worker killed after storing the retry time and before queueing its job, or Redis flushed since."""
    with stack.erp_down():
        stack.post_shopify(load_fixture("shopify", "order_guest.json"))
        stack.run_jobs()
    stack.lose_queue()
    (event,) = stack.events()
    grace = timedelta(seconds=stack.rt.settings.sweep_grace_seconds)
    assert sweep() == {}  # not due yet: nothing is lost so far
    clock.advance_to(event.next_attempt_at + grace)
    assert sweep() == {event.store_id: 1}
    stack.run_jobs()
    (event,) = stack.events()
    assert (event.status, event.attempts) == ("succeeded", 2)
    assert len(stack.erp_orders()) == 1


def test_a_worker_killed_mid_attempt_is_retried_by_the_sweep_once_its_lease_runs_out(stack) -> None:  # type: ignore[no-untyped-def]
    from connector.orders.pipeline import _claim

    # A retry due minutes later, not the stack's second: a first drain slowed by a loaded machine (2.6 s in one
    # CI run) must not find attempt 2 due before this test plays it.
    stack.rt.settings = stack.rt.settings.with_(retry_base_seconds=600, retry_cap_seconds=600)
    with stack.erp_down():
        stack.post_shopify(load_fixture("shopify", "order_guest.json"))
        stack.run_jobs()
    (event,) = stack.events()
    clock.advance_to(event.next_attempt_at)
    assert _claim(stack.rt, event.id) is not None  # attempt 2 starts, and its worker dies here
    stack.lose_queue()  # with its job
    assert sweep(grace_seconds=0) == {}  # its lease still holds
    clock.advance_to(clock.utcnow() + timedelta(seconds=stack.rt.settings.lease_seconds + 1))
    assert sweep(grace_seconds=0) == {event.store_id: 1}
    stack.run_jobs()
    (event,) = stack.events()
    assert (event.status, event.attempts) == ("succeeded", 3)  # the lost attempt counts
    assert [a.outcome for a in event.attempt_rows] == ["retry", "succeeded"]
    assert len(stack.erp_orders()) == 1


def test_a_worker_closes_its_database_connections_before_forking_its_scheduler(stack):
    """RQ's worker forks its scheduler, which would inherit the worker's open connections: killed, the
    worker's transaction would then stay open (with its locks) while the child lives. The worker closes
    its pooled connections before any fork, so PostgreSQL has no session of it left to inherit."""
    if stack.kind != "postgres":
        pytest.skip("SQLite has no server sessions to leave open")

    def alive(pid: int) -> bool:  # seen from another engine (the ERP's database, same server)
        with stack.erp_engine.connect() as conn:
            query = text("select count(*) from pg_stat_activity where pid = :pid")
            return conn.execute(query, {"pid": pid}).scalar() == 1

    with stack.rt.engine.connect() as conn:
        pid = conn.execute(text("select pg_backend_pid()")).scalar()
    assert alive(pid) and stack.rt.engine.pool.checkedin() >= 1  # pooled, open: what a fork would inherit
    stack.rt.release_before_fork()
    assert stack.rt.engine.pool.checkedin() == 0
    # The client closed its socket; the server's backend exits a moment later (a CI run once still saw it).
    deadline = time.monotonic() + 2
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not alive(pid)
    with stack.rt.sessions() as session:  # the worker reconnects on its next query
        assert session.execute(text("select 1")).scalar() == 1
