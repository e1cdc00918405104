"""The receiver's group commit on PostgreSQL: every row committed before its thread answers, each
thread told whether its row was new or a duplicate, one bad row never costing the others theirs."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from sqlalchemy import create_engine, select, text

from connector.base.migrate import upgrade
from connector.base.models import InboxEvent
from connector.intake import inbox, inbox_writer


@pytest.fixture
def engine(pg_databases):  # type: ignore[no-untyped-def]
    db_url, _ = pg_databases
    upgrade(db_url)
    engine = create_engine(db_url)
    with engine.begin() as conn:  # a store of its own: the session's database holds other tests' rows
        global STORE_ID
        STORE_ID = conn.execute(
            text(
                "INSERT INTO stores (slug, platform, active, settings, created_at, updated_at) "
                "VALUES (:slug, 'shopify', true, '{}', now(), now()) RETURNING id"
            ),
            {"slug": f"grp-{uuid.uuid4().hex[:8]}"},
        ).scalar()
    yield engine
    engine.dispose()


STORE_ID = 0


def _row(key: str) -> dict:
    return inbox.row(
        store_id=STORE_ID, platform="shopify", topic="orders/create", dedupe_key=key, headers={}, body=b'{"id": 1}'
    )


def _recorder(writer: inbox_writer.Inbox, outcomes: dict[str, object]):  # type: ignore[no-untyped-def]
    """deliver(key): records a row, noting its id (None: duplicate) or the InboxUnavailable refusing it."""

    def deliver(key: str) -> None:
        try:
            outcomes[key] = writer.record(_row(key))
        except inbox.InboxUnavailable as exc:
            outcomes[key] = exc

    return deliver


def _stored(engine) -> dict[str, int]:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return dict(
            conn.execute(select(InboxEvent.dedupe_key, InboxEvent.id).where(InboxEvent.store_id == STORE_ID)).all()
        )


def test_concurrent_deliveries_and_duplicates_are_each_answered_right(engine) -> None:
    writer = inbox_writer.Inbox(engine, lambda _store: None)
    keys = [f"k{n}" for n in range(120)]
    results: dict[str, list[int | None]] = {key: [] for key in keys}
    lock = threading.Lock()

    def deliver(mine: list[str]) -> None:
        for key in mine:
            event_id = writer.record(_row(key))
            with lock:
                results[key].append(event_id)

    # Every key is delivered by two threads at about the same time (a store's retry racing the original).
    threads = [threading.Thread(target=deliver, args=(keys[n::8],)) for n in range(8)]
    threads += [threading.Thread(target=deliver, args=(keys[n::8][::-1],)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stored = _stored(engine)
    assert sorted(stored) == sorted(keys)
    for key, answers in results.items():
        assert sorted(answers, key=lambda a: a is None) == [stored[key], None], key  # one new, one duplicate


def test_a_row_the_database_refuses_fails_alone(engine) -> None:
    writer = inbox_writer.Inbox(engine, lambda _store: None)
    outcomes: dict[str, object] = {}
    deliver = _recorder(writer, outcomes)

    blocker = engine.connect()
    blocker.execute(text("LOCK TABLE inbox_events IN SHARE MODE"))  # inserts wait: the others queue up
    first = threading.Thread(target=deliver, args=("first",))
    first.start()
    time.sleep(0.3)

    # A row of a store that does not exist breaks the foreign key: it cannot be stored, the others can.
    def deliver_bad() -> None:
        try:
            outcomes["bad"] = writer.record({**_row("bad"), "store_id": 987654})
        except inbox.InboxUnavailable as exc:
            outcomes["bad"] = exc

    rest = [threading.Thread(target=deliver, args=(key,)) for key in ("a", "b", "c")]
    rest.insert(1, threading.Thread(target=deliver_bad))
    for thread in rest:
        thread.start()
    time.sleep(0.3)
    blocker.rollback()
    blocker.close()
    for thread in [first, *rest]:
        thread.join()
    assert isinstance(outcomes.pop("bad"), inbox.InboxUnavailable)
    assert all(isinstance(v, int) for v in outcomes.values()), outcomes
    assert sorted(_stored(engine)) == ["a", "b", "c", "first"]


def test_deliveries_stuck_behind_a_locked_table_are_refused_and_the_next_ones_go_through(engine) -> None:
    writer = inbox_writer.Inbox(engine, lambda _store: None)
    writer.WAIT_SECONDS = 0.3  # also the statement timeout of its connection
    outcomes: dict[str, object] = {}
    deliver = _recorder(writer, outcomes)

    blocker = engine.connect()
    blocker.execute(text("LOCK TABLE inbox_events IN SHARE MODE"))
    # Spread out, so some wait in the queue longer than they may while the lead is busy elsewhere.
    stuck = [threading.Thread(target=deliver, args=(f"stuck-{n}",)) for n in range(12)]
    for thread in stuck:
        thread.start()
        time.sleep(0.1)
    for thread in stuck:
        thread.join(timeout=10)
    blocker.rollback()
    blocker.close()
    assert all(isinstance(outcomes[f"stuck-{n}"], inbox.InboxUnavailable) for n in range(12)), outcomes
    # Nobody is left holding the lead: the next deliveries are stored at once.
    after = [threading.Thread(target=deliver, args=(f"after-{n}",)) for n in range(4)]
    for thread in after:
        thread.start()
    for thread in after:
        thread.join(timeout=10)
    assert all(isinstance(outcomes[f"after-{n}"], int) for n in range(4)), outcomes
    assert sorted(_stored(engine)) == [f"after-{n}" for n in range(4)]


def test_a_connection_that_died_since_its_last_use_is_replaced_without_refusing_anyone(engine) -> None:
    writer = inbox_writer.Inbox(engine, lambda _store: None)
    assert isinstance(writer.record(_row("before")), int)
    with engine.connect() as admin:  # what a PostgreSQL restart or failover does to it
        admin.execute(
            text("SELECT pg_terminate_backend(:pid)"), {"pid": writer._conn.driver_connection.info.backend_pid}
        )
    assert isinstance(writer.record(_row("after")), int)
    assert sorted(_stored(engine)) == ["after", "before"]


def test_bodies_and_results_are_stored_with_lz4(engine):
    """PostgreSQL's default compression (pglz) cost the database most of an inbox insert's CPU
    (bench/intake.py); the migrations set LZ4 on the inbox's two large columns."""
    body = open("tests/fixtures/shopify/order_discount_multiline.json", "rb").read()
    writer = inbox_writer.Inbox(engine, on_stored=lambda store_id: None)
    row = {**_row("lz4"), "body": body}
    event_id = writer.record(row)
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE inbox_events SET result = CAST(:r AS json) WHERE id = :id"),
            {"r": body.decode(), "id": event_id},
        )
        methods = conn.execute(
            text("SELECT pg_column_compression(body), pg_column_compression(result) FROM inbox_events WHERE id = :id"),
            {"id": event_id},
        ).one()
    assert tuple(methods) == ("lz4", "lz4")
