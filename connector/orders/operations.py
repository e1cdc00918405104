"""What support does to events — shared by the console pages, the JSON API and the CLI.

Every state-changing action is written to the audit log with who did it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, func, select, update

from adapters.clock import utcnow
from connector.base import erp_health
from connector.base.audit import audit
from connector.base.crypto import mask
from connector.base.db import rowcount
from connector.base.models import (
    ErpDocument,
    EventAttempt,
    InboxEvent,
    OfflineRefund,
    OrderLink,
    ReceiptDelivery,
    Store,
    UndeliveredParcel,
)
from connector.base.runtime import Runtime
from connector.orders.drains import kick
from platforms.registry import SECRET_HEADERS

RETRYABLE_STATES = ("failed", "skipped", "ignored")
STATUSES = ("pending", "processing", "held", "succeeded", "failed", "ignored", "skipped")
MAX_SKIP_REASON = 500  # a note for the audit log, not a document


@dataclass(frozen=True)
class EventFilter:
    store: str | None = None  # slug
    topic: str | None = None
    status: str | None = None
    order: str | None = None  # order number ("#1001" or "1001") or the store's order id
    since: datetime | None = None
    until: datetime | None = None

    def apply(self, query: Select) -> Select:
        if self.store:
            query = query.where(Store.slug == self.store)
        if self.topic:
            query = query.where(InboxEvent.topic == self.topic)
        if self.status:
            query = query.where(InboxEvent.status == self.status)
        if self.order:
            wanted = self.order.strip()
            bare = wanted.lstrip("#")
            query = query.where(
                InboxEvent.order_number.in_((wanted, bare, f"#{bare}")) | (InboxEvent.resource_id == bare)
            )
        if self.since:
            query = query.where(InboxEvent.received_at >= self.since)
        if self.until:
            query = query.where(InboxEvent.received_at < self.until)
        return query


def list_events(rt: Runtime, flt: EventFilter, page: int = 1, per_page: int = 50) -> tuple[list, int]:
    """A page of events (newest first) with the store slug, and how many match in all."""
    per_page = max(1, min(per_page, 200))
    base = flt.apply(select(InboxEvent.id).join(Store, Store.id == InboxEvent.store_id))
    with rt.sessions() as session:
        total = session.scalar(select(func.count()).select_from(base.subquery()))
        rows = session.execute(
            flt.apply(select(InboxEvent, Store.slug).join(Store, Store.id == InboxEvent.store_id))
            .order_by(InboxEvent.id.desc())
            .offset((max(page, 1) - 1) * per_page)
            .limit(per_page)
        ).all()
    return [(event, slug) for event, slug in rows], int(total or 0)


def count_events(rt: Runtime, flt: EventFilter) -> int:
    return list_events(rt, flt, 1, 1)[1]


def count_retryable(rt: Runtime, flt: EventFilter) -> int:
    """How many events matching the filter a bulk retry would take (failed, skipped or ignored ones)."""
    query = flt.apply(
        select(InboxEvent.id)
        .join(Store, Store.id == InboxEvent.store_id)
        .where(InboxEvent.status.in_(RETRYABLE_STATES))
    )
    with rt.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(query.subquery())) or 0)


def event_detail(rt: Runtime, event_id: int) -> dict | None:
    with rt.sessions() as session:
        row = session.execute(select(InboxEvent, Store.slug).join(Store).where(InboxEvent.id == event_id)).first()
        if row is None:
            return None
        event, slug = row
        attempts = session.scalars(
            select(EventAttempt).where(EventAttempt.event_id == event_id).order_by(EventAttempt.number)
        ).all()
        timeline: Sequence[Any] = []
        link = documents = receipts = undelivered = erp_refunds = None
        if event.resource_id:
            timeline = session.execute(
                select(
                    InboxEvent.id, InboxEvent.topic, InboxEvent.status, InboxEvent.received_at, InboxEvent.last_error
                )
                .where(InboxEvent.store_id == event.store_id, InboxEvent.resource_id == event.resource_id)
                .order_by(InboxEvent.id)
            ).all()
            link = session.scalars(
                select(OrderLink).where(
                    OrderLink.store_id == event.store_id, OrderLink.external_id == event.resource_id
                )
            ).first()
            documents = session.scalars(
                select(ErpDocument)
                .where(ErpDocument.store_id == event.store_id, ErpDocument.order_external_id == event.resource_id)
                .order_by(ErpDocument.id)
            ).all()
            receipts = session.scalars(
                select(ReceiptDelivery)
                .where(
                    ReceiptDelivery.store_id == event.store_id,
                    ReceiptDelivery.order_external_id == event.resource_id,
                )
                .order_by(ReceiptDelivery.id)
            ).all()
            undelivered = session.scalars(
                select(UndeliveredParcel)
                .where(
                    UndeliveredParcel.store_id == event.store_id,
                    UndeliveredParcel.order_external_id == event.resource_id,
                )
                .order_by(UndeliveredParcel.id)
            ).all()
            erp_refunds = session.scalars(
                select(OfflineRefund)
                .where(OfflineRefund.store_id == event.store_id, OfflineRefund.order_external_id == event.resource_id)
                .order_by(OfflineRefund.id)
            ).all()
    return {
        "event": event,
        "store": slug,
        "attempts": attempts,
        "timeline": timeline,
        "link": link,
        "documents": documents or [],
        "receipts": receipts or [],
        "undelivered": undelivered or [],
        "erp_refunds": erp_refunds or [],
    }


CONFIRMABLE_TOPICS = ("shop/redact", "app/uninstalled")  # destructive: the store's API could not confirm them


def confirmable(event: InboxEvent) -> bool:
    return event.topic in CONFIRMABLE_TOPICS and event.status == "failed"


def confirm_event(rt: Runtime, event_id: int, actor: str) -> bool:
    """An admin's go-ahead for a parked destructive request (shop/redact, app/uninstalled): it runs on its
    next attempt, and the audit log names the admin. A body that is not such a request still fails its shape check."""
    with rt.sessions.begin() as session:
        event = session.get(InboxEvent, event_id)
        if event is None or not confirmable(event):
            return False
        event.result = {**(event.result or {}), "confirmed_by": actor, "confirmed_at": utcnow().isoformat()}
        topic = event.topic
    audit(rt, actor, "event.confirm", str(event_id), {"topic": topic})
    retry_events(rt, [event_id], actor=actor)
    return True


def shown_headers(headers: dict | None) -> dict:
    """A delivery's headers as pages and the API show them: a signature and the body it signs are all a
    replay needs, so the signature is masked for everyone."""
    return {k: (mask(v) if k in SECRET_HEADERS else v) for k, v in (headers or {}).items()}


def retry_events(
    rt: Runtime,
    event_ids: Iterable[int] | None = None,
    *,
    failed: bool = False,
    flt: EventFilter | None = None,
    actor: str = "system",
) -> int:
    """Put events back to pending with a fresh attempt budget and wake their stores' drains."""
    query = (
        select(InboxEvent.id, InboxEvent.store_id)
        .join(Store, Store.id == InboxEvent.store_id)
        .where(InboxEvent.status.in_(RETRYABLE_STATES))
    )
    if event_ids is not None:
        query = query.where(InboxEvent.id.in_(list(event_ids)))
    elif flt is not None:
        query = flt.apply(query)
    elif failed:
        query = query.where(InboxEvent.status == "failed")
    else:
        raise ValueError("name the events to retry, a filter, or ask for every failed one")
    with rt.sessions.begin() as session:
        rows = session.execute(query).all()
        if rows:
            session.execute(
                update(InboxEvent)
                .where(InboxEvent.id.in_([r.id for r in rows]))
                .values(
                    status="pending", next_attempt_at=None, locked_until=None, attempts_before_retry=InboxEvent.attempts
                )
            )
    if rows:
        ids = [r.id for r in rows]
        audit(
            rt, actor, "event.retry", ",".join(map(str, ids[:50])) + ("…" if len(ids) > 50 else ""), {"count": len(ids)}
        )
    for store_id in sorted({r.store_id for r in rows}):
        kick(rt, store_id)
    return len(rows)


def skip_event(rt: Runtime, event_id: int, reason: str, actor: str) -> bool:
    """Support decides an event needs no processing (e.g. a test order): it is kept, marked skipped."""
    reason = reason.strip()
    if not reason:
        raise ValueError("reason: say why the event is skipped")
    if len(reason) > MAX_SKIP_REASON:
        raise ValueError(f"reason: at most {MAX_SKIP_REASON} characters")
    with rt.sessions.begin() as session:
        changed = rowcount(
            session.execute(
                update(InboxEvent)
                .where(InboxEvent.id == event_id, InboxEvent.status.in_(("pending", "failed", "ignored")))
                .values(
                    status="skipped",
                    last_error=f"skipped by {actor}: {reason}",
                    processed_at=utcnow(),
                    next_attempt_at=None,
                )
            )
        )
    if changed:
        audit(rt, actor, "event.skip", str(event_id), {"reason": reason})
    return bool(changed)


def dashboard(rt: Runtime) -> dict:
    now = utcnow()
    day_ago = now - timedelta(hours=24)
    with rt.sessions() as session:
        counts = dict(session.execute(select(InboxEvent.status, func.count()).group_by(InboxEvent.status)).all())
        oldest = session.scalar(
            select(func.min(InboxEvent.received_at)).where(InboxEvent.status.in_(("pending", "processing")))
        )
        finished = session.execute(
            select(InboxEvent.processed_at, InboxEvent.status).where(
                InboxEvent.processed_at >= day_ago, InboxEvent.status.in_(("succeeded", "failed"))
            )
        ).all()
    hours = [(day_ago + timedelta(hours=h + 1)).replace(minute=0, second=0, microsecond=0) for h in range(24)]
    per_hour = {hour: {"succeeded": 0, "failed": 0} for hour in hours}
    for processed_at, status in finished:
        if processed_at is None:  # the query's `processed_at >= day_ago` leaves none
            continue
        hour = processed_at.replace(minute=0, second=0, microsecond=0)
        if hour in per_hour:
            per_hour[hour][status] += 1
    if oldest is not None and oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=now.tzinfo)
    return {
        "counts": {status: int(counts.get(status, 0)) for status in STATUSES},
        "backlog": int(counts.get("pending", 0) + counts.get("processing", 0)),
        "oldest_pending_seconds": int((now - oldest).total_seconds()) if oldest else None,
        "hourly": [{"hour": hour.isoformat(), **values} for hour, values in per_hour.items()],
        "erp_unreachable": erp_health.status(rt),
    }
