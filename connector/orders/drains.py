"""The inbox's own jobs: draining each store's due events, retrying one event, sweeping what was missed.
Each receives ids only and can run twice: the inbox row is the truth.

- `drain(store_id)`: processes the store's due events in batches, oldest first, one job for many
  events (the receiver schedules at most one drain per store at a time: `kick`).
- `retry_event(event_id)`: one later attempt of one event, queued for the time the pipeline stored in
  its next_attempt_at (the one schedule); a retry outcome queues the next attempt the same way, and the
  database's attempt count decides when to stop.
- `sweep()`: re-enqueues what the inbox says is due, so a flushed Redis or a killed worker loses
  nothing.

The periodic jobs (stock, shipments, reconciliation, housekeeping) are in connector.jobs, which may
use these; these use nothing of it, so reconciliation can wake a drain without an import cycle.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, select, update

from adapters.clock import utcnow
from connector.base.models import InboxEvent
from connector.base.runtime import Runtime, current
from connector.orders.pipeline import process_event

log = logging.getLogger(__name__)

DRAIN_FLAG = "connector:{queue}:drain-scheduled:{store}"
DRAIN_FLAG_TTL = 120  # a lost drain job is re-kicked by the next webhook after this, or by the sweep
DRAIN_SECONDS = 20  # a drain hands over to a fresh job after this long, so no job runs for ever
# A drain's last event may start just before DRAIN_SECONDS and wait on a slow ERP. Kept short because RQ
# frees the concurrency slot of a job whose worker was killed only when this (plus 60 s) has passed.
JOB_TIMEOUT = 120


def _flag(rt: Runtime, store_id: int) -> str:
    return DRAIN_FLAG.format(queue=rt.settings.queue_name, store=store_id)


def store_limit(rt: Runtime, store_id: int) -> tuple[str, int]:
    """The concurrency limit every job of a store shares, across all workers on all machines: what the
    store's API and the ERP see of one store is at most this many jobs at once."""
    return f"{rt.settings.queue_name}:store:{store_id}", rt.settings.store_concurrency


def kick(rt: Runtime, store_id: int) -> None:
    """Make sure a drain of this store is queued; one Redis round trip when one already is."""
    if rt.queue.claim_flag(_flag(rt, store_id), DRAIN_FLAG_TTL):
        rt.queue.enqueue(drain, store_id, limit=store_limit(rt, store_id), timeout=JOB_TIMEOUT)


def drain(store_id: int) -> int:
    rt = current()
    # Clear first: an event committed after this point kicks a new drain; one before is seen below.
    rt.queue.clear_flag(_flag(rt, store_id))
    deadline = time.monotonic() + DRAIN_SECONDS
    done = 0
    while True:
        ids = due_event_ids(rt, store_id, rt.settings.batch_size)
        if not ids:
            return done
        with rt.batch():  # the store, its mapping tables and the ERP adapter: read once per batch
            for position, event_id in enumerate(ids):
                outcome = process_event(rt, event_id)
                done += outcome.status != "not_claimed"
                if outcome.status == "retry":
                    schedule_retry(rt, event_id)
                if outcome.erp_silent:
                    # Each next event would wait out the same timeout: the batch stops here, and the
                    # rest wait as long as this one (the sweep wakes them), using up no attempt.
                    until = outcome.retry_at or utcnow() + timedelta(seconds=rt.settings.retry_base_seconds)
                    defer(rt, ids[position + 1 :], until)
                    return done
        if time.monotonic() > deadline:
            kick(rt, store_id)
            return done


def defer(rt: Runtime, event_ids: list[int], until: datetime) -> None:
    """Make pending events due at `until`, leaving their attempts as they are."""
    if not event_ids:
        return
    with rt.sessions.begin() as session:
        session.execute(
            update(InboxEvent)
            .where(InboxEvent.id.in_(event_ids), InboxEvent.status == "pending")
            .values(next_attempt_at=until)
        )
    log.info("ERP not answering: %s more event(s) wait until %s", len(event_ids), until.isoformat())


def retry_event(event_id: int) -> None:
    """One attempt of an event that is to be retried. A copy run twice, or early, finds the event not
    claimable and does nothing; a retry outcome queues the next attempt."""
    rt = current()
    if process_event(rt, event_id).status == "retry":
        schedule_retry(rt, event_id)


def schedule_retry(rt: Runtime, event_id: int) -> None:
    """Queue the event's next attempt for the time its next_attempt_at holds (now when it holds none): one
    job per attempt, so the queue's time is always the database's. Should this job be lost (Redis flushed,
    a worker killed before it queued it), the sweep takes the event from next_attempt_at."""
    with rt.sessions() as session:
        event = session.get(InboxEvent, event_id)
        if event is None or event.status != "pending":
            return
        attempts, store_id, at = event.attempts, event.store_id, event.next_attempt_at
    rt.queue.enqueue(
        retry_event,
        event_id,
        job_id=f"retry-event-{event_id}-{attempts}",
        at=at,
        limit=store_limit(rt, store_id),
        timeout=JOB_TIMEOUT,
    )


def due_event_ids(rt: Runtime, store_id: int | None, limit: int, grace_seconds: float = 0) -> list[int]:
    now = utcnow()
    due_before = now - timedelta(seconds=grace_seconds)
    query = (
        select(InboxEvent.id)
        .where(
            or_(
                and_(
                    InboxEvent.status == "pending",
                    or_(InboxEvent.next_attempt_at.is_(None), InboxEvent.next_attempt_at <= due_before),
                ),
                and_(InboxEvent.status == "processing", InboxEvent.locked_until < now),
            )
        )
        .order_by(InboxEvent.id)
        .limit(limit)
    )
    if store_id is not None:
        query = query.where(InboxEvent.store_id == store_id)
    with rt.sessions() as session:
        return list(session.scalars(query))


def sweep(grace_seconds: float | None = None) -> dict[int, int]:
    """Queue a drain for every store with due events that no live job seems to hold.

    An event is left alone for `grace_seconds` after it became due, the time its own wake-up
    normally takes; after that its wake-up is presumed lost (a flushed Redis, a killed worker).
    """
    rt = current()
    now = utcnow()
    if grace_seconds is None:
        grace_seconds = rt.settings.sweep_grace_seconds
    grace = now - timedelta(seconds=grace_seconds)
    stale = or_(
        and_(
            InboxEvent.status == "pending",
            or_(
                and_(InboxEvent.next_attempt_at.is_(None), InboxEvent.received_at <= grace),
                InboxEvent.next_attempt_at <= grace,
            ),
        ),
        and_(InboxEvent.status == "processing", InboxEvent.locked_until < now),
    )
    with rt.sessions() as session:
        rows = session.execute(
            select(InboxEvent.store_id, func.count()).where(stale).group_by(InboxEvent.store_id)
        ).all()
    for store_id, count in rows:
        log.warning("sweep: %d due events of store %s were not queued; re-enqueuing", count, store_id)
        rt.queue.clear_flag(_flag(rt, store_id))
        kick(rt, store_id)
    return dict(rows)
