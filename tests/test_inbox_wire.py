"""The inbox's own libpq calls (connector.intake.inbox_wire) on a real PostgreSQL: a batch bigger than the
socket's buffers goes whole, a row PostgreSQL refuses comes back as its answer and leaves the
connection usable, and the ASGI writer replaces a connection that died without refusing anyone."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import psycopg
import pytest
from psycopg import pq
from sqlalchemy import create_engine, text

from connector.base.migrate import upgrade
from connector.intake import inbox, inbox_wire
from connector.intake.inbox_writer import AsyncInbox


@pytest.fixture
def engine(pg_databases):  # type: ignore[no-untyped-def]
    db_url, _ = pg_databases
    upgrade(db_url)
    engine = create_engine(db_url)
    yield engine
    engine.dispose()


def _store(engine) -> int:  # type: ignore[no-untyped-def]
    with engine.begin() as conn:  # a store of its own: the session's database holds other tests' rows
        return conn.execute(
            text(
                "INSERT INTO stores (slug, platform, active, settings, created_at, updated_at) "
                "VALUES (:slug, 'shopify', true, '{}', now(), now()) RETURNING id"
            ),
            {"slug": f"wire-{uuid.uuid4().hex[:8]}"},
        ).scalar()


def _row(store_id: int, key: str, body: bytes = b'{"id": 1}') -> dict:
    return inbox.row(
        store_id=store_id, platform="shopify", topic="orders/create", dedupe_key=key, headers={}, body=body
    )


async def _connect(engine) -> psycopg.AsyncConnection[Any]:  # type: ignore[no-untyped-def]
    _, params = engine.dialect.create_connect_args(engine.url)
    return await psycopg.AsyncConnection.connect(**params, autocommit=True)


async def _insert(conn: psycopg.AsyncConnection[Any], rows: list[dict]) -> list[pq.abc.PGresult]:
    conn.pgconn.send_query_params(inbox_wire.numbered_sql(len(rows)), inbox_wire.batch_values(rows), None,
                                  inbox_wire.FORMATS * len(rows))  # fmt: skip
    return await inbox_wire.results(conn)


def test_psycopg_still_makes_async_connections_non_blocking(engine) -> None:  # type: ignore[no-untyped-def]
    # results() relies on it: on a blocking connection, flush() would hold the event loop until all is sent.
    async def mode() -> int:
        conn = await _connect(engine)
        try:
            return conn.pgconn.nonblocking
        finally:
            await conn.close()

    assert asyncio.run(mode()) == 1


def test_a_batch_bigger_than_the_socket_buffers_is_sent_whole(engine) -> None:  # type: ignore[no-untyped-def]
    store_id = _store(engine)
    rows = [_row(store_id, f"big-{n}", b'{"pad": "' + b"x" * 256_000 + b'"}') for n in range(32)]  # 8 MB

    async def send() -> list[int | None]:
        conn = await _connect(engine)
        try:
            [result] = await _insert(conn, rows)
            return inbox_wire.new_ids(inbox_wire.checked(result, pq.ExecStatus.TUPLES_OK), rows)
        finally:
            await conn.close()

    ids = asyncio.run(send())
    assert len(set(ids)) == 32 and all(isinstance(event_id, int) for event_id in ids)


def test_a_row_postgresql_refuses_is_its_answer_and_the_connection_goes_on(engine) -> None:  # type: ignore[no-untyped-def]
    store_id = _store(engine)

    async def send() -> tuple[list[pq.abc.PGresult], list[pq.abc.PGresult]]:
        conn = await _connect(engine)
        try:
            refused = await _insert(conn, [_row(987654, "no-such-store")])
            return refused, await _insert(conn, [_row(store_id, "fine")])
        finally:
            await conn.close()

    refused, fine = asyncio.run(send())
    with pytest.raises(inbox.InboxUnavailable, match="foreign key"):
        inbox_wire.checked(refused[-1], pq.ExecStatus.TUPLES_OK)
    assert inbox_wire.checked(fine[-1], pq.ExecStatus.TUPLES_OK).ntuples == 1


def test_the_async_writer_replaces_a_connection_that_died_without_refusing_anyone(engine) -> None:  # type: ignore[no-untyped-def]
    store_id = _store(engine)

    async def deliver() -> tuple[int | None, int | None]:
        writer = AsyncInbox(engine, lambda _store: None)
        try:
            before = await writer.record(_row(store_id, "before"))
            assert writer._conn is not None
            with engine.connect() as admin:  # what a PostgreSQL restart or failover does to it
                admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": writer._conn.info.backend_pid})
            return before, await writer.record(_row(store_id, "after"))
        finally:
            await writer.close()

    before, after = asyncio.run(deliver())
    assert isinstance(before, int) and isinstance(after, int) and after != before
