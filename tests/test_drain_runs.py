"""A drain claims its store's due events a run at a time, in one statement, and writes a run's outcomes in one
commit (connector/orders/drains.py, pipeline.py): on both stacks, what that must not change. Each event is
claimed once and no more than asked for, two drains of one store share its events, an event that reads what
an earlier one of the run recorded finds it written, and no event is worked on past its lease."""

from __future__ import annotations

import copy
from datetime import timedelta

import pytest
from sqlalchemy import insert, select, update
from sqlalchemy.dialects import postgresql

from adapters import clock
from connector.base.models import EventAttempt, InboxEvent
from connector.orders.drains import CLAIM_RUN
from connector.orders.pipeline import claim_batch, due_events
from tests.conftest import load_fixture

ORDER = load_fixture("shopify", "order_discount_multiline.json")


def _orders(stack, count: int, first_id: int = 8_100_000) -> None:  # type: ignore[no-untyped-def]
    for n in range(count):
        order = copy.deepcopy(ORDER)
        order["id"], order["name"] = first_id + n, f"#R{n}"
        stack.post_shopify(order)


def _store_id(stack) -> int:  # type: ignore[no-untyped-def]
    return stack.events()[0].store_id


def test_every_event_of_several_runs_is_done_once_with_one_attempt_each(stack) -> None:  # type: ignore[no-untyped-def]
    count = 2 * CLAIM_RUN + 3
    _orders(stack, count)
    stack.run_jobs()
    events = stack.events()
    assert [(e.status, e.attempts, len(e.attempt_rows)) for e in events] == [("succeeded", 1, 1)] * count
    assert sorted(o.number for o in stack.erp_orders()) == sorted(f"#R{n}" for n in range(count))


def test_a_claim_takes_no_more_than_asked_and_the_oldest_first(stack) -> None:  # type: ignore[no-untyped-def]
    # PostgreSQL may run an UPDATE's `id IN (SELECT … LIMIT n FOR UPDATE SKIP LOCKED)` more than once, each run
    # finding other rows: written that way, the first claim took every due event of the store.
    _orders(stack, 15)
    store_id = _store_id(stack)
    first = claim_batch(stack.rt, store_id, 10)
    second = claim_batch(stack.rt, store_id, 10)
    ids = [e.id for e in stack.events()]
    assert [e.id for e, _ in first] == ids[:10]
    assert [e.id for e, _ in second] == ids[10:]
    assert claim_batch(stack.rt, store_id, 10) == []
    assert all((e.status, e.attempts) == ("processing", 1) for e in stack.events())


@pytest.mark.parametrize("stack", ["postgres"], indirect=True)
def test_two_drains_claiming_at_once_share_the_events_without_waiting(stack) -> None:  # type: ignore[no-untyped-def]
    _orders(stack, 15)
    store_id = _store_id(stack)
    with stack.rt.sessions.begin() as other:  # another drain's claim, its transaction still open
        held = list(
            other.scalars(select(InboxEvent.id).order_by(InboxEvent.id).limit(10).with_for_update(skip_locked=True))
        )
        mine = claim_batch(stack.rt, store_id, 10)  # would wait on the rows the other holds without SKIP LOCKED
        assert [e.id for e, _ in mine] == [e.id for e in stack.events()][10:]
        assert not set(held) & {e.id for e, _ in mine}


def test_a_return_behind_its_order_in_one_run_reads_the_order_as_the_erp_took_it(stack) -> None:  # type: ignore[no-untyped-def]
    # The return's handler reads the order event's recorded result: it must be written before the return starts.
    stack.post_shopify(ORDER)
    stack.post_shopify(load_fixture("shopify", "returns/request.json"), topic="returns/request")
    stack.run_jobs()
    order_event, returned = stack.events()
    assert (order_event.status, returned.status) == ("succeeded", "succeeded")
    (row,) = stack.erp_orders()
    assert returned.result["erp_ref"] == str(row.id)
    assert returned.result["order_number"] == ORDER["name"]


def test_no_event_of_a_run_is_worked_on_past_half_its_lease(stack) -> None:  # type: ignore[no-untyped-def]
    # A slow ERP: each order takes 40% of a lease. What is left of a run is handed back and claimed afresh
    # (no attempt spent by the hand-back), so no event is worked on under a lease about to run out.
    lease = stack.rt.settings.lease_seconds
    seen: list[tuple] = []

    def slow(erp):  # type: ignore[no-untyped-def]
        real = erp.push_order

        def push(order, *args):  # type: ignore[no-untyped-def]
            with stack.rt.sessions() as session:
                until = session.scalar(
                    select(InboxEvent.locked_until).where(InboxEvent.resource_id == order.external_id)
                )
            seen.append((order.number, (until - clock.utcnow()).total_seconds()))
            clock.advance_to(clock.utcnow() + timedelta(seconds=lease * 0.4))
            return real(order, *args)

        erp.push_order = push
        return erp

    stack.wrap_erp(slow)
    try:
        _orders(stack, 5)
        stack.run_jobs()
    finally:
        clock.reset()
    assert len(seen) == 5
    assert all(left > lease / 2 - 5 for _, left in seen), seen
    events = stack.events()
    assert [(e.status, e.attempts) for e in events] == [("succeeded", 1)] * 5
    with stack.rt.sessions() as session:
        assert session.scalar(select(EventAttempt.id).where(EventAttempt.outcome != "succeeded")) is None


def test_a_claim_reads_the_open_events_not_every_event_done(stack) -> None:  # type: ignore[no-untyped-def]
    # With only the primary key to go by, the claim stepped over every event done before the first open one:
    # its cost grew with the inbox (5 ms at 20,000 events). Thousands of done events, older than the open ones.
    _orders(stack, 1)
    store_id = _store_id(stack)
    with stack.rt.sessions.begin() as session:
        session.execute(
            insert(InboxEvent),
            [
                {
                    "store_id": store_id,
                    "platform": "shopify",
                    "topic": "orders/create",
                    "dedupe_key": f"done-{n}",
                    "body": b"{}",
                    "status": "succeeded",
                    "attempts": 1,
                }
                for n in range(3000)
            ],
        )
        session.execute(update(InboxEvent).where(InboxEvent.status == "pending").values(status="succeeded"))
    _orders(stack, 3, first_id=8_200_000)
    open_ids = [e.id for e in stack.events() if e.status == "pending"]
    assert [e.id for e, _ in claim_batch(stack.rt, store_id, 10)] == open_ids
    if stack.rt.engine.dialect.name != "postgresql":
        return
    # The plan a prepared claim settles on (psycopg prepares a statement run five times): a generic one.
    sql = str(due_events(store_id, 10, clock.utcnow()).compile(dialect=postgresql.dialect(paramstyle="numeric_dollar")))
    with stack.rt.engine.connect() as conn:
        try:
            conn.exec_driver_sql("SET plan_cache_mode = force_generic_plan")
            conn.exec_driver_sql(f"PREPARE claim(int, timestamptz, timestamptz, int) AS {sql}")
            plan = "\n".join(
                row[0] for row in conn.exec_driver_sql("EXPLAIN EXECUTE claim(%s, now(), now(), 10)" % store_id)
            )
        finally:
            conn.invalidate()  # the setting and the prepared statement go with this session, not back to the pool
    assert "ix_inbox_open" in plan, plan
