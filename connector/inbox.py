"""The durable inbox: every delivery we accept is a row before we answer 200.

`record` is the receiver's hot path: one INSERT … ON CONFLICT DO NOTHING on (store, dedupe key),
so a duplicate delivery is one round trip that changes nothing.
"""
from __future__ import annotations

import functools

from sqlalchemy import Engine
from sqlalchemy.dialects import postgresql, sqlite

from connector.clock import utcnow
from connector.models import InboxEvent

_INBOX = InboxEvent.__table__


@functools.cache
def _statement(dialect_name: str):  # type: ignore[no-untyped-def]
    # Built once per dialect: the values come as parameters, so SQLAlchemy's compiled cache hits.
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    return (
        dialect.insert(_INBOX)
        .on_conflict_do_nothing(index_elements=["store_id", "dedupe_key"])
        .returning(_INBOX.c.id)
    )


def record(
    engine: Engine,
    *,
    store_id: int,
    platform: str,
    topic: str,
    dedupe_key: str,
    headers: dict[str, str],
    body: bytes,
    resource_id: str | None = None,
    status: str = "pending",
    error: str | None = None,
) -> int | None:
    """Store one delivery; return its id, or None when it is a duplicate of one already stored."""
    now = utcnow()
    params = {
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
        "processed_at": now if status != "pending" else None,
    }
    with engine.begin() as conn:
        return conn.execute(_statement(engine.dialect.name), params).scalar()
