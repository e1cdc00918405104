"""The durable inbox: every delivery we accept is a committed row before we answer 200.

INSERT … ON CONFLICT DO NOTHING on (store, dedupe key): a duplicate changes nothing, and the
request learns it was a duplicate. Here: the row of one delivery, and storing rows in a
transaction of the caller's (`insert_rows`) or of their own (`record`). The receivers' group-commit
writers are in connector.intake.inbox_writer; their libpq encoding in connector.intake.inbox_wire.
"""

from __future__ import annotations

import functools
import json
import logging
from typing import Any

import psycopg
from sqlalchemy import Engine
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.sql.dml import ReturningInsert

from adapters.clock import utcnow
from connector.base.models import InboxEvent
from connector.base.runtime import StoreInfo
from mappings import cardnumbers
from mappings.payloads import printable

log = logging.getLogger(__name__)

_INBOX = InboxEvent.__table__
CARD_DATA_HEADER = "X-Connector-Card-Data"  # on an event whose body had card data masked, saying where


class InboxUnavailable(Exception):
    """The row could not be committed; the delivery must not be acknowledged."""


@functools.cache
def _statement(dialect_name: str) -> ReturningInsert[int, int, str]:
    # Built once per dialect: the values come as parameters, so SQLAlchemy's compiled cache hits.
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    return (
        dialect.insert(_INBOX)
        .on_conflict_do_nothing(index_elements=["store_id", "dedupe_key"])
        .returning(_INBOX.c.id, _INBOX.c.store_id, _INBOX.c.dedupe_key)
    )


def row(
    *,
    store_id: int,
    platform: str,
    topic: str,
    dedupe_key: str,
    headers: dict[str, str],
    body: bytes,
    resource_id: str | None = None,
    order_number: str | None = None,
    status: str = "pending",
    error: str | None = None,
) -> dict:
    """The row for one delivery. Text taken from a signed body may hold NUL, which PostgreSQL text cannot:
    it is shown as U+FFFD here so the delivery is stored (the body keeps the bytes) and never refused."""
    now = utcnow()
    return {
        "store_id": store_id,
        "platform": platform,
        "topic": printable(topic),
        "dedupe_key": printable(dedupe_key[:255]),
        "headers": headers,
        "body": body,
        "received_at": now,
        "status": status,
        "attempts": 0,
        "attempts_before_retry": 0,
        "last_error": error and printable(error),
        "resource_id": resource_id and printable(resource_id),
        "order_number": order_number and printable(order_number),
        "processed_at": now if status != "pending" else None,
    }


def without_card_data(
    store: StoreInfo, topic: str, order_number: str | None, body: bytes, payload: object, headers: dict[str, str]
) -> tuple[bytes, dict[str, str]]:
    """The body and headers to store: card numbers and security codes masked before the row is written,
    so that neither the database nor its backups ever hold one (docs/security.md, "PCI scope"). The signature was
    checked on the bytes as they came; nothing checks it again, so the stored body need not be them. A
    header and a warning say where, for the merchant to find what writes card data into orders."""
    stored, found = cardnumbers.mask_body(body, payload)
    if not found:
        return body, headers
    where = ", ".join(found[:10])
    log.warning(
        "%s store %s sent card data in %s of %s %s: masked before storing (the last 4 digits kept). Find the app, "
        "plugin or checkout field that writes it into orders and remove it: the store is keeping it too",
        store.platform,
        store.slug,
        where,
        topic,
        order_number or "(no order number)",
        extra={"store": store.id},
    )
    return stored, {**headers, CARD_DATA_HEADER: f"masked before storing: {where}"}


COLUMNS = (
    "store_id",
    "platform",
    "topic",
    "dedupe_key",
    "headers",
    "body",
    "received_at",
    "status",
    "attempts",
    "attempts_before_retry",
    "last_error",
    "resource_id",
    "order_number",
    "processed_at",
)


# The body goes as a binary parameter: no hex encoding of 15 kB on either side.
_PLACEHOLDERS = "(" + ", ".join("%b" if c == "body" else "%s" for c in COLUMNS) + ")"


# The statement for any number of rows: `values` is their placeholders, in COLUMNS order.
INSERT = (
    f"INSERT INTO inbox_events ({', '.join(COLUMNS)}) VALUES {{values}} "
    "ON CONFLICT (store_id, dedupe_key) DO NOTHING RETURNING id, store_id, dedupe_key"
)


@functools.cache
def _pg_sql(count: int) -> str:
    """psycopg's placeholders (SQLAlchemy connections: `record`, tools)."""
    return INSERT.format(values=", ".join([_PLACEHOLDERS] * count))


def _pg_params(rows: list[dict]) -> list:
    return [json.dumps(r[c]) if c == "headers" else r[c] for r in rows for c in COLUMNS]


def driver_connection(conn: PoolProxiedConnection) -> psycopg.Connection[Any]:
    """The psycopg connection under SQLAlchemy's pool proxy (typed Optional: None once invalidated)."""
    driver = conn.driver_connection
    if driver is None:
        raise InboxUnavailable("the database connection was invalidated")
    return driver


def insert_rows(conn: Connection, rows: list[dict]) -> dict[tuple[int, str], int]:
    """Insert in one statement; return the new ids by (store_id, dedupe_key) — duplicates are absent."""
    if conn.dialect.name == "postgresql":
        # The receiver's hot path: straight to psycopg, one multi-row statement per batch.
        cursor = driver_connection(conn.connection).cursor()
        with cursor:
            cursor.execute(_pg_sql(len(rows)), _pg_params(rows), prepare=len(rows) <= 4)
            return {(store_id, key): event_id for event_id, store_id, key in cursor.fetchall()}
    result = conn.execute(_statement(conn.dialect.name), rows)
    return {(r.store_id, r.dedupe_key): r.id for r in result}


def record(engine: Engine, **fields: Any) -> int | None:
    """Store one delivery in its own transaction (the CLI, tests and tools use this); `fields` as for row()."""
    new_row = row(**fields)
    with engine.begin() as conn:
        return insert_rows(conn, [new_row]).get((new_row["store_id"], new_row["dedupe_key"]))
