"""The durable inbox: every delivery we accept is a committed row before we answer 200.

One INSERT … ON CONFLICT DO NOTHING on (store, dedupe key) per delivery: a duplicate is one
round trip that changes nothing, and the request learns it was a duplicate.
"""
from __future__ import annotations

import functools
import json
import logging
import threading
from collections.abc import Callable

from sqlalchemy import Engine
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from connector.clock import utcnow
from connector.models import InboxEvent

log = logging.getLogger(__name__)
_INBOX = InboxEvent.__table__


class InboxUnavailable(Exception):
    """The row could not be committed; the delivery must not be acknowledged."""


@functools.cache
def _statement(dialect_name: str):  # type: ignore[no-untyped-def]
    # Built once per dialect: the values come as parameters, so SQLAlchemy's compiled cache hits.
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    return (
        dialect.insert(_INBOX)
        .on_conflict_do_nothing(index_elements=["store_id", "dedupe_key"])
        .returning(_INBOX.c.id, _INBOX.c.store_id, _INBOX.c.dedupe_key)
    )


def row(*, store_id: int, platform: str, topic: str, dedupe_key: str, headers: dict[str, str], body: bytes,
        resource_id: str | None = None, order_number: str | None = None, status: str = "pending",
        error: str | None = None) -> dict:
    now = utcnow()
    return {
        "store_id": store_id,
        "platform": platform,
        "topic": topic,
        "dedupe_key": dedupe_key[:255],
        "headers": headers,
        "body": body,
        "received_at": now,
        "status": status,
        "attempts": 0,
        "attempts_before_retry": 0,
        "last_error": error,
        "resource_id": resource_id,
        "order_number": order_number,
        "processed_at": now if status != "pending" else None,
    }


_COLUMNS = ("store_id", "platform", "topic", "dedupe_key", "headers", "body", "received_at", "status", "attempts",
            "attempts_before_retry", "last_error", "resource_id", "order_number", "processed_at")


# The body goes as a binary parameter: no hex encoding of 15 kB on either side.
_PLACEHOLDERS = "(" + ", ".join("%b" if c == "body" else "%s" for c in _COLUMNS) + ")"


@functools.cache
def _pg_sql(count: int) -> str:
    values = ", ".join([_PLACEHOLDERS] * count)
    return (f"INSERT INTO inbox_events ({', '.join(_COLUMNS)}) VALUES {values} "
            "ON CONFLICT (store_id, dedupe_key) DO NOTHING RETURNING id, store_id, dedupe_key")


def _pg_params(rows: list[dict]) -> list:
    return [json.dumps(r[c]) if c == "headers" else r[c] for r in rows for c in _COLUMNS]


def insert_rows(conn: Connection, rows: list[dict]) -> dict[tuple[int, str], int]:
    """Insert in one statement; return the new ids by (store_id, dedupe_key) — duplicates are absent."""
    if conn.dialect.name == "postgresql":
        # The receiver's hot path: straight to psycopg, one multi-row statement per batch.
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        with cursor:
            cursor.execute(_pg_sql(len(rows)), _pg_params(rows), prepare=len(rows) <= 4)
            return {(store_id, key): event_id for event_id, store_id, key in cursor.fetchall()}
    result = conn.execute(_statement(conn.dialect.name), rows)
    return {(r.store_id, r.dedupe_key): r.id for r in result}


def record(engine: Engine, **fields: object) -> int | None:
    """Store one delivery in its own transaction (the CLI, tests and tools use this)."""
    new_row = row(**fields)  # type: ignore[arg-type]
    with engine.begin() as conn:
        return insert_rows(conn, [new_row]).get((new_row["store_id"], new_row["dedupe_key"]))


class Inbox:
    """The receiver's writer: one INSERT per delivery, committed before the request answers.

    On PostgreSQL each request thread keeps its own connection in autocommit mode, so a delivery
    is one round trip that returns only once the row is durable; PostgreSQL already flushes the
    WAL of concurrent commits together, so there is nothing to gain from batching here.
    """

    def __init__(self, engine: Engine, on_stored: Callable[[int], None]):
        self.engine = engine
        self.on_stored = on_stored  # told each store that got a new pending event (after commit)
        self._local = threading.local()

    def record(self, new_row: dict) -> int | None:
        """Commit the row; its id, or None for a duplicate. InboxUnavailable when it cannot."""
        try:
            event_id = self._insert(new_row)
        except Exception as exc:
            log.exception("inbox: could not store a delivery; refusing it (503) so the store sends it again")
            self._drop_connection()
            raise InboxUnavailable(str(exc)) from exc
        if event_id is not None and new_row["status"] == "pending":
            self.on_stored(new_row["store_id"])
        return event_id

    def _insert(self, new_row: dict) -> int | None:
        key = (new_row["store_id"], new_row["dedupe_key"])
        if self.engine.dialect.name != "postgresql":
            with self.engine.begin() as conn:
                return insert_rows(conn, [new_row]).get(key)
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self.engine.raw_connection()
            conn.driver_connection.autocommit = True  # type: ignore[union-attr]
        with conn.driver_connection.cursor() as cursor:  # type: ignore[union-attr]
            cursor.execute(_pg_sql(1), _pg_params([new_row]), prepare=True)
            found = cursor.fetchone()
        return found[0] if found else None

    def _drop_connection(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            try:
                conn.invalidate()
            except Exception:
                pass
