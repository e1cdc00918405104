"""From a stored inbox event to the ERP: claim, map, write, bind, and record what happened.

One function, `process_event`, safe to run any number of times and from any number of workers:
the claim is a conditional UPDATE, so an event is processed by one worker at a time, and the ERP
write is idempotent on the order's external ref, so a replay after a crash changes nothing.
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, update

from adapters.backoff import backoff
from adapters.clock import utcnow
from adapters.erp import ErpError, ErpUnreachable
from adapters.storefront import StorefrontError
from connector.base import erp_health
from connector.base.db import rowcount
from connector.base.models import EventAttempt, InboxEvent, Store
from connector.base.runtime import Runtime, StoreInfo
from connector.orders import compliance
from connector.orders.event_core import EventCore
from mappings import cardnumbers, payloads
from mappings.errors import MappingError
from platforms.registry import platform

log = logging.getLogger(__name__)


class PayloadError(Exception):
    """The stored body cannot be read at all (permanent)."""


@dataclasses.dataclass(frozen=True)
class Outcome:
    status: str  # succeeded | ignored | held | retry | failed | not_claimed
    error: str | None = None
    retry_at: datetime | None = None  # a retry: when, as stored in the event's next_attempt_at
    erp_silent: bool = False  # the ERP did not answer: the next events would wait for it just the same


def process_event(rt: Runtime, event_id: int) -> Outcome:
    claimed = _claim(rt, event_id)
    if claimed is None:
        return Outcome("not_claimed")
    event, store = claimed
    started = utcnow()
    result, silent = None, False
    try:
        status, result = _handle(rt, event, store)
        error, retryable = None, False
    except (MappingError, PayloadError, compliance.NeedsConfirmation) as exc:
        status, error, retryable = "failed", str(exc), False
    except (ErpError, StorefrontError) as exc:
        status, error, retryable = "failed", str(exc), exc.retryable
        silent = isinstance(exc, ErpUnreachable)
    except Exception as exc:  # a bug or an unforeseen failure: retry, then park with its name
        log.exception("event %s: unexpected error", event_id)
        status, retryable = "failed", True
        error = f"internal error {type(exc).__name__}: {exc} (report it to the connector's developers)"
    outcome = _finish(rt, event, started, status, error, retryable, result)
    if silent:
        erp_health.silent(rt, str(error))
        return dataclasses.replace(outcome, erp_silent=True)
    if outcome.status == "succeeded":
        erp_health.answered(rt)
    return outcome


def _claim(rt: Runtime, event_id: int) -> tuple[InboxEvent, StoreInfo] | None:
    """The event and its store when this worker got the event, else None. A pending event is taken once
    its next_attempt_at has come (a person's retry clears it). The session is let go of before the work
    starts: no transaction stays open while the ERP is called."""
    now = utcnow()
    claimable = or_(
        and_(
            InboxEvent.status == "pending",
            or_(InboxEvent.next_attempt_at.is_(None), InboxEvent.next_attempt_at <= now),
        ),
        and_(InboxEvent.status == "processing", InboxEvent.locked_until < now),  # its worker died
    )
    with rt.sessions.begin() as session:
        event = session.scalars(
            update(InboxEvent)
            .where(InboxEvent.id == event_id, claimable)
            .values(
                status="processing",
                locked_until=now + timedelta(seconds=rt.settings.lease_seconds),
                attempts=InboxEvent.attempts + 1,
            )
            .returning(InboxEvent)
        ).first()
        if event is None:
            return None
        store = rt.per_batch(("store", event.store_id), lambda: rt.store_info(session.get_one(Store, event.store_id)))
    return event, store


def _handle(rt: Runtime, event: InboxEvent, store: StoreInfo) -> tuple[str, dict]:
    served = platform(event.platform)
    topic = served.topics.get(event.topic)
    if topic is None:
        return "ignored", {"note": f"no action is defined for {event.platform} topic {event.topic}"}
    try:
        payload = payloads.read(event.body)
    except payloads.UnreadablePayload as exc:
        raise PayloadError(str(exc)) from None
    # Only the body is signed: a body valid for another topic is refused here, before anything acts on it.
    served.check(event.topic, payload, store.settings.get("shop_domain"))
    result = topic.handle(EventCore(rt, store, event.id), payload)
    if result.pop("ignored", False):  # e.g. the echo of our own stock write
        return "ignored", result
    if result.pop("held", False):  # awaiting a person's approval on the console: out of the queue till then
        return "held", result
    return "succeeded", result


def _finish(
    rt: Runtime,
    event: InboxEvent,
    started: datetime,
    status: str,
    error: str | None,
    retryable: bool,
    result: dict | None,
) -> Outcome:
    finished = utcnow()
    retry_at = None
    event_id, lease = event.id, event.locked_until  # the lease our claim set
    spent = event.attempts - event.attempts_before_retry
    if status == "failed" and retryable and spent < rt.settings.max_attempts:
        status = "retry"
        wait = backoff(spent, rt.settings.retry_base_seconds, rt.settings.retry_cap_seconds)
        retry_at = _whole_second_after(finished + timedelta(seconds=wait))
    elif status == "failed" and retryable:
        error = f"gave up after {spent} attempts: {error}. Fix the cause, then retry the event"
    if error is not None:  # a message may quote the payload or an ERP's text: no NULs, no card numbers
        error = cardnumbers.mask(payloads.printable(error))
    changes: dict = {"locked_until": None, "last_error": error}  # None once it succeeded: attempts keep the history
    if result is not None:
        changes["result"] = result
        if isinstance(result.get("order"), dict):
            changes["order_number"] = str(result["order"].get("number"))[:64]
        elif result.get("order_number"):  # an event about an order that does not carry it (a return)
            changes["order_number"] = str(result["order_number"])[:64]
    if status == "retry":
        changes.update(status="pending", next_attempt_at=retry_at)
    else:
        changes.update(status=status, next_attempt_at=None, processed_at=finished)
    with rt.sessions.begin() as session:
        # Only while our lease holds: past it, another worker may have claimed the event, and its
        # outcome is the one that counts (the ERP writes of both were idempotent).
        kept = (
            rowcount(
                session.execute(
                    update(InboxEvent)
                    .where(InboxEvent.id == event_id, InboxEvent.locked_until == lease)
                    .values(**changes)
                )
            )
            == 1
        )
        if kept:
            session.add(
                EventAttempt(
                    event_id=event_id,
                    number=event.attempts,
                    started_at=started,
                    finished_at=finished,
                    outcome=status,
                    error=error,
                )
            )
    if not kept:
        log.warning(
            "event %s: its lease ran out during this attempt and another worker took it over; "
            "this attempt's outcome (%s) is not recorded",
            event_id,
            status,
            extra={"event": event_id, "store": event.store_id, "topic": event.topic},
        )
        return Outcome("not_claimed")
    log.info(
        "event %s %s (attempt %s)%s",
        event_id,
        status,
        event.attempts,
        f": {error}" if error else "",
        extra={
            "event": event_id,
            "store": event.store_id,
            "topic": event.topic,
            "order": changes.get("order_number", event.order_number),
        },
    )
    return Outcome(status, error, retry_at)


def _whole_second_after(moment: datetime) -> datetime:
    """`moment` rounded up to a whole second: RQ keeps a job's time in whole seconds (cutting off the rest), so
    the job queued for the stored time then never runs before it, when the event would not be taken yet."""
    whole = moment.replace(microsecond=0)
    return whole if whole == moment else whole + timedelta(seconds=1)
