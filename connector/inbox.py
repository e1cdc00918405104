"""The durable inbox: every delivery we accept is a row before we answer 200.

`record` is the receiver's hot path: one INSERT … ON CONFLICT DO NOTHING on (store, dedupe key),
so a duplicate delivery is one round trip that changes nothing.
"""
from __future__ import annotations

from sqlalchemy import Engine
from sqlalchemy.dialects import postgresql, sqlite

from connector.clock import utcnow
from connector.models import InboxEvent

_INBOX = InboxEvent.__table__


def _insert(engine: Engine):  # type: ignore[no-untyped-def]
    dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
    return dialect.insert(_INBOX)


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
    statement = (
        _insert(engine)
        .values(
            store_id=store_id,
            platform=platform,
            topic=topic,
            dedupe_key=dedupe_key[:255],
            headers=headers,
            body=body,
            received_at=now,
            status=status,
            attempts=0,
            last_error=error,
            resource_id=resource_id,
            processed_at=now if status != "pending" else None,
        )
        .on_conflict_do_nothing(index_elements=["store_id", "dedupe_key"])
        .returning(_INBOX.c.id)
    )
    with engine.begin() as conn:
        return conn.execute(statement).scalar()
