"""From a stored inbox event to the ERP: claim, map, write, bind, and record what happened.

One function, `process_event`, safe to run any number of times and from any number of workers:
the claim is a conditional UPDATE, so an event is processed by one worker at a time, and the ERP
write is idempotent on the order's external ref, so a replay after a crash changes nothing. A drain
does the same in runs: `claim_batch` claims several events in one statement, `attempt` does each one's
work, and `record` writes a run of outcomes in one commit.
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    Table,
    and_,
    bindparam,
    insert,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.exc import SQLAlchemyError

from adapters.backoff import backoff
from adapters.clock import utcnow
from adapters.erp import ErpError, ErpUnreachable
from adapters.prepared import Prepared
from adapters.storefront import StorefrontError
from connector.base import erp_health
from connector.base.models import EventAttempt, InboxEvent, Store
from connector.base.runtime import Runtime, StoreInfo
from connector.orders import compliance, holds
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


@dataclasses.dataclass(frozen=True)
class Attempt:
    """One attempt of an event, done and worked out, its outcome not yet written (see `record`)."""

    event: InboxEvent
    started: datetime
    finished: datetime
    status: str  # succeeded | ignored | held | retry | failed
    error: str | None
    retry_at: datetime | None
    changes: dict  # the event row's new values
    erp_silent: bool


def process_event(rt: Runtime, event_id: int) -> Outcome:
    claimed = _claim(rt, event_id)
    if claimed is None:
        return Outcome("not_claimed")
    return record(rt, [attempt(rt, *claimed)])[0]


def attempt(rt: Runtime, event: InboxEvent, store: StoreInfo) -> Attempt:
    """Do the work of a claimed event (its ERP writes are made and bound here) and work out its outcome."""
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
        log.exception("event %s: unexpected error", event.id)
        status, retryable = "failed", True
        error = f"internal error {type(exc).__name__}: {exc} (report it to the connector's developers)"
    return _outcome(rt, event, started, status, error, retryable, result, silent)


def claim_batch(rt: Runtime, store_id: int, limit: int) -> list[tuple[InboxEvent, StoreInfo]]:
    """Up to `limit` of the store's due events, oldest first, claimed for this worker in one statement. On
    PostgreSQL the rows another drain is claiming at the same moment are skipped, not waited for: two drains
    of one store share its events instead of queueing on the same rows."""
    now = utcnow()
    with rt.atomic() as conn:  # one transaction, sent without a BEGIN and a COMMIT (adapters.prepared.atomic)
        # Two statements, not an UPDATE … WHERE id IN (that SELECT): PostgreSQL may run such a subquery more
        # than once, and with SKIP LOCKED each run can find other rows, so the UPDATE would claim more than asked.
        ids = [row.id for row in _DUE.all(conn, {"store_id": store_id, "limit": limit, "now": now})]
        if not ids:
            return []
        events = _take(rt, conn, ids, now)
    if not events:
        return []
    store = _store(rt, store_id)
    return [(event, store) for event in events]


def _take(rt: Runtime, conn: Connection, ids: list[int], now: datetime) -> list[InboxEvent]:
    """The events of `ids` still claimable at `now`, claimed (a lease from now), oldest first: Core rows made into
    detached InboxEvents, since the ORM's UPDATE … RETURNING of entities cost more than the rest of a claim."""
    until = now + timedelta(seconds=rt.settings.lease_seconds)
    taken = _TAKE.all(conn, {"ids": ids, "now": now, "until": until})
    return [InboxEvent(**row._asdict()) for row in sorted(taken, key=lambda r: r.id)]


def _store(rt: Runtime, store_id: int) -> StoreInfo:
    """The store's info, read once per batch."""

    def read() -> StoreInfo:
        with rt.sessions() as session:
            return rt.store_info(session.get_one(Store, store_id))

    return rt.per_batch(("store", store_id), read)


def due_events(store_id: Any, limit: Any, now: Any) -> Select[int]:
    """The ids of up to `limit` of the store's events claimable at `now`, oldest first, to be locked (values, or
    bound parameters for a statement built once)."""
    return (
        select(InboxEvent.id)
        .where(InboxEvent.store_id == store_id, _claimable(now))
        .order_by(InboxEvent.id)
        .limit(limit)
        .with_for_update(skip_locked=True)  # SQLite has no row locks (its writers take turns) and gets none
    )


def release(rt: Runtime, events: list[InboxEvent], until: datetime | None) -> None:
    """Hand back claimed events whose work has not started: pending again, due at `until` (at once when None),
    the attempt their claim counted not spent."""
    if not events:
        return
    with rt.sessions.begin() as session:
        for event in events:
            session.execute(
                update(InboxEvent)
                .where(InboxEvent.id == event.id, InboxEvent.locked_until == event.locked_until)
                .values(status="pending", attempts=InboxEvent.attempts - 1, locked_until=None, next_attempt_at=until)
            )


# Written into the SQL, not bound: PostgreSQL then knows, even in a prepared statement's generic plan, that
# only open events are wanted, and reads them from ix_inbox_open instead of stepping over every event done.
_PENDING: ColumnElement[str] = literal_column("'pending'")
_PROCESSING: ColumnElement[str] = literal_column("'processing'")


def _claimable(now: Any) -> ColumnElement[bool]:
    """A pending event is taken once its next_attempt_at has come (a person's retry clears it); one being
    processed, once its worker's lease ran out (the worker died)."""
    return or_(
        and_(
            InboxEvent.status == _PENDING,
            or_(InboxEvent.next_attempt_at.is_(None), InboxEvent.next_attempt_at <= now),
        ),
        and_(InboxEvent.status == _PROCESSING, InboxEvent.locked_until < now),
    )


_INBOX = cast(Table, InboxEvent.__table__)
# The claim (of a drain's run, or of one event), as Core statements built once.
_DUE = Prepared(due_events(bindparam("store_id"), bindparam("limit"), bindparam("now")))
_TAKE = Prepared(
    update(_INBOX)
    .where(_INBOX.c.id.in_(bindparam("ids", expanding=True)), _claimable(bindparam("now")))
    .values(status="processing", locked_until=bindparam("until"), attempts=_INBOX.c.attempts + 1)
    .returning(*_INBOX.c)
)


def _claim(rt: Runtime, event_id: int) -> tuple[InboxEvent, StoreInfo] | None:
    """The event and its store when this worker got the event, else None. The session is let go of before
    the work starts: no transaction stays open while the ERP is called."""
    with rt.atomic() as conn:
        taken = _take(rt, conn, [event_id], utcnow())
    if not taken:
        return None
    return taken[0], _store(rt, taken[0].store_id)


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


def _outcome(
    rt: Runtime,
    event: InboxEvent,
    started: datetime,
    status: str,
    error: str | None,
    retryable: bool,
    result: dict | None,
    silent: bool,
) -> Attempt:
    finished = utcnow()
    retry_at = None
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
    return Attempt(event, started, finished, status, error, retry_at, changes, silent)


def record(rt: Runtime, attempts: list[Attempt]) -> list[Outcome]:
    """Write the attempts' outcomes and their history rows, all in one commit (a drain writes a run of
    attempts at once). Each is written only while the lease its claim set holds: past it, another worker may
    have claimed the event, and its outcome is the one that counts (the ERP writes of both were idempotent)."""
    if len(attempts) > 1:
        try:
            return _record(rt, attempts)
        except SQLAlchemyError:
            # One outcome the database refuses must not hold the others: each on its own, and that one fails
            # alone, as it would have outside a run.
            log.warning("the outcomes of %s events could not be written at once; writing each", len(attempts))
            return [outcome for done in attempts for outcome in _record(rt, [done])]
    return _record(rt, attempts)


def _record(rt: Runtime, attempts: list[Attempt]) -> list[Outcome]:
    with rt.atomic() as conn:  # the run's outcomes sent at once, the history after them: two round trips
        sent = [
            _outcome_update(frozenset(done.changes)).send(
                conn, {**done.changes, "event_id": done.event.id, "leased_until": done.event.locked_until}
            )
            for done in attempts
        ]
        kept = [written.first() is not None for written in sent]
        _HISTORY.many(
            conn,
            [
                {
                    "event_id": done.event.id,
                    "number": done.event.attempts,
                    "started_at": done.started,
                    "finished_at": done.finished,
                    "outcome": done.status,
                    "error": done.error,
                }
                for done, ok in zip(attempts, kept, strict=True)
                if ok
            ],
        )
    return [_told(rt, done, ok) for done, ok in zip(attempts, kept, strict=True)]


_HISTORY = Prepared(insert(cast(Table, EventAttempt.__table__)))  # Core rows: no ORM objects to flush
_OUTCOME_UPDATES: dict[frozenset[str], Prepared] = {}


def _outcome_update(columns: frozenset[str]) -> Prepared:
    """The UPDATE that writes an outcome setting these columns, while the claim's lease holds (it returns the
    event's id when it did); built once per set of columns (an outcome sets one of a few), since building it per
    event cost more than sending it."""
    statement = _OUTCOME_UPDATES.get(columns)
    if statement is None:
        table = cast(Table, InboxEvent.__table__)  # Core, not an ORM-enabled UPDATE: no session objects to sync
        statement = _OUTCOME_UPDATES[columns] = Prepared(
            update(table)
            .where(table.c.id == bindparam("event_id"), table.c.locked_until == bindparam("leased_until"))
            .values({name: bindparam(name) for name in sorted(columns)})
            .returning(table.c.id)
        )
    return statement


def _told(rt: Runtime, done: Attempt, kept: bool) -> Outcome:
    """The outcome of a written attempt, logged, and the ERP's health as this attempt found it."""
    event, status = done.event, done.status
    if not kept:
        log.warning(
            "event %s: its lease ran out during this attempt and another worker took it over; "
            "this attempt's outcome (%s) is not recorded",
            event.id,
            status,
            extra={"event": event.id, "store": event.store_id, "topic": event.topic},
        )
        outcome = Outcome("not_claimed")
    else:
        log.info(
            "event %s %s (attempt %s)%s",
            event.id,
            status,
            event.attempts,
            f": {done.error}" if done.error else "",
            extra={
                "event": event.id,
                "store": event.store_id,
                "topic": event.topic,
                "order": done.changes.get("order_number", event.order_number),
            },
        )
        outcome = Outcome(status, done.error, done.retry_at)
        if status == "held" and holds.release_if_answered(rt, event.store_id, event.resource_id, done.started):
            outcome = Outcome("retry")  # answered while it was being worked on: run again at once, under the answer
    if done.erp_silent:
        erp_health.silent(rt, str(done.error))
        return dataclasses.replace(outcome, erp_silent=True)
    if outcome.status == "succeeded":
        erp_health.answered(rt)
    return outcome


def _whole_second_after(moment: datetime) -> datetime:
    """`moment` rounded up to a whole second: RQ keeps a job's time in whole seconds (cutting off the rest), so
    the job queued for the stored time then never runs before it, when the event would not be taken yet."""
    whole = moment.replace(microsecond=0)
    return whole if whole == moment else whole + timedelta(seconds=1)
