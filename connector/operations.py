"""What support does to events (CLI today, the console and API later): retry, sweep."""
from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select, update

from connector.jobs import kick
from connector.models import InboxEvent
from connector.runtime import Runtime

RETRYABLE_STATES = ("failed", "skipped", "ignored")


def retry_events(rt: Runtime, event_ids: Iterable[int] | None = None, *, failed: bool = False) -> int:
    """Put events back to pending with a fresh attempt budget and wake their stores' drains."""
    query = select(InboxEvent.id, InboxEvent.store_id).where(InboxEvent.status.in_(RETRYABLE_STATES))
    if event_ids is not None:
        query = query.where(InboxEvent.id.in_(list(event_ids)))
    elif failed:
        query = query.where(InboxEvent.status == "failed")
    else:
        raise ValueError("name the events to retry, or ask for every failed one")
    with rt.sessions.begin() as session:
        rows = session.execute(query).all()
        if rows:
            session.execute(
                update(InboxEvent)
                .where(InboxEvent.id.in_([r.id for r in rows]))
                .values(status="pending", next_attempt_at=None, locked_until=None,
                        attempts_before_retry=InboxEvent.attempts)
            )
    for store_id in sorted({r.store_id for r in rows}):
        kick(rt, store_id)
    return len(rows)
