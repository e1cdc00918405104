"""From a stored inbox event to the ERP: claim, map, write, bind, and record what happened.

One function, `process_event`, safe to run any number of times and from any number of workers:
the claim is a conditional UPDATE, so an event is processed by one worker at a time, and the ERP
write is idempotent on the order's external ref, so a replay after a crash changes nothing.
"""
from __future__ import annotations

import json
import logging
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select, update

from adapters.erp import ErpError
from connector.clock import utcnow
from connector.models import EventAttempt, InboxEvent, OrderLink, Store
from connector.runtime import Runtime
from mappings.canonical import Order, order_to_json
from mappings.errors import MappingError
from mappings.shopify import order_from_shopify

log = logging.getLogger(__name__)

# Topics whose payload is the full order: each one upserts the ERP order.
ORDER_TOPICS = {
    "shopify": {
        "orders/create",
        "orders/updated",
        "orders/paid",
        "orders/cancelled",
        "orders/fulfilled",
        "orders/partially_fulfilled",
    },
}
MAPPERS = {"shopify": order_from_shopify}


class PayloadError(Exception):
    """The stored body cannot be read at all (permanent)."""


@dataclass(frozen=True)
class Outcome:
    status: str  # succeeded | ignored | retry | failed | not_claimed
    error: str | None = None
    retry_in: float | None = None


def process_event(rt: Runtime, event_id: int) -> Outcome:
    if not _claim(rt, event_id):
        return Outcome("not_claimed")
    started = utcnow()
    # Read what the work needs, then let go of the session: no transaction stays open while the
    # ERP is called.
    with rt.sessions() as session:
        event = session.get(InboxEvent, event_id)
        store = session.get(Store, event.store_id)
        session.expunge_all()
    result = None
    try:
        status, result = _handle(rt, event, store)
        error, retryable = None, False
    except (MappingError, PayloadError) as exc:
        status, error, retryable = "failed", str(exc), False
    except ErpError as exc:
        status, error, retryable = "failed", str(exc), exc.retryable
    except Exception as exc:  # a bug or an unforeseen failure: retry, then park with its name
        log.exception("event %s: unexpected error", event_id)
        status, retryable = "failed", True
        error = f"internal error {type(exc).__name__}: {exc} (report it to the connector's developers)"
    return _finish(rt, event_id, started, status, error, retryable, result)


def _claim(rt: Runtime, event_id: int) -> bool:
    now = utcnow()
    claimable = or_(
        InboxEvent.status == "pending",
        and_(InboxEvent.status == "processing", InboxEvent.locked_until < now),  # its worker died
    )
    with rt.sessions.begin() as session:
        claimed = session.execute(
            update(InboxEvent)
            .where(InboxEvent.id == event_id, claimable)
            .values(
                status="processing",
                locked_until=now + timedelta(seconds=rt.settings.lease_seconds),
                attempts=InboxEvent.attempts + 1,
            )
        )
        return claimed.rowcount == 1


def _handle(rt: Runtime, event: InboxEvent, store: Store) -> tuple[str, dict]:
    if event.topic not in ORDER_TOPICS.get(event.platform, ()):
        return "ignored", {"note": f"no action is defined for {event.platform} topic {event.topic}"}
    try:
        payload = json.loads(event.body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise PayloadError(f"the body is not valid JSON ({exc}); ask the store to resend the order") from None
    order = MAPPERS[event.platform](payload, store.slug)
    result: dict = {"order": order_to_json(order), "external_ref": order.external_ref}
    with rt.sessions() as session:
        link = session.scalars(
            select(OrderLink).where(OrderLink.store_id == store.id, OrderLink.external_id == order.external_id)
        ).first()
    if link is not None and order.updated_at <= link.source_updated_at:
        result.update(erp_ref=link.erp_ref, note="stale or repeated: the ERP already has this version or a newer one")
        return "succeeded", result
    written = rt.erp().push_order(order)
    _bind(rt, store.id, order, written.erp_ref, event.id)
    result.update(erp_ref=written.erp_ref, created=written.created, updated=written.updated, note=written.note)
    return "succeeded", result


def _bind(rt: Runtime, store_id: int, order: Order, erp_ref: str, event_id: int) -> None:
    """Record the store order ↔ ERP document link at once, so the ERP id is never lost."""
    with rt.sessions.begin() as session:
        link = session.scalars(
            select(OrderLink)
            .where(OrderLink.store_id == store_id, OrderLink.external_id == order.external_id)
            .with_for_update()
        ).first()
        if link is None:
            session.add(
                OrderLink(
                    store_id=store_id,
                    external_id=order.external_id,
                    external_ref=order.external_ref,
                    erp_ref=erp_ref,
                    source_updated_at=order.updated_at,
                    last_event_id=event_id,
                )
            )
        elif order.updated_at > link.source_updated_at:
            link.erp_ref, link.source_updated_at, link.last_event_id = erp_ref, order.updated_at, event_id


def _finish(rt: Runtime, event_id: int, started: datetime, status: str, error: str | None,
            retryable: bool, result: dict | None) -> Outcome:
    finished = utcnow()
    retry_in = None
    with rt.sessions.begin() as session:
        event = session.get(InboxEvent, event_id)
        spent = event.attempts - event.attempts_before_retry
        if status == "failed" and retryable and spent < rt.settings.max_attempts:
            status, retry_in = "retry", backoff(rt.settings, spent)
        elif status == "failed" and retryable:
            error = f"gave up after {spent} attempts: {error}. Fix the cause, then retry the event"
        session.add(EventAttempt(event_id=event_id, number=event.attempts, started_at=started,
                                 finished_at=finished, outcome=status, error=error))
        event.locked_until = None
        if result is not None:
            event.result = result
        if status == "retry":
            event.status, event.next_attempt_at, event.last_error = "pending", finished + timedelta(seconds=retry_in), error
        else:
            event.status, event.next_attempt_at, event.processed_at = status, None, finished
            event.last_error = error  # None once it succeeded: the attempts keep the history
    log.info("event %s %s (attempt %s)%s", event_id, status, event.attempts, f": {error}" if error else "")
    return Outcome(status, error, retry_in)


def backoff(settings, attempts: int) -> float:  # type: ignore[no-untyped-def]
    """Exponential backoff with jitter: base·2^(n−1), capped, drawn from its upper half."""
    ceiling = min(settings.retry_cap_seconds, settings.retry_base_seconds * 2 ** max(attempts - 1, 0))
    return round(random.uniform(ceiling / 2, ceiling), 1)
