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
from connector.base.db import rowcount
from connector.base.models import InboxEvent
from connector.base.runtime import Runtime, StoreInfo, current
from connector.orders.pipeline import Attempt, Outcome, attempt, claim_batch, process_event, record, release
from platforms.base import ORDER
from platforms.registry import platform

log = logging.getLogger(__name__)

DRAIN_FLAG = "connector:{queue}:drain-scheduled:{store}"
DRAIN_FLAG_TTL = 120  # a lost drain job is re-kicked by the next webhook after this, or by the sweep
DRAIN_SECONDS = 20  # a drain hands over to a fresh job after this long, so no job runs for ever
# A drain's last event may start just before DRAIN_SECONDS and wait on a slow ERP. Kept short because RQ
# frees the concurrency slot of a job whose worker was killed only when this (plus 60 s) has passed.
JOB_TIMEOUT = 120
# Events claimed in one statement at most: enough to spread the claim's round trips thin, few enough that a
# second drain of the same store finds work, and that a worker killed mid-run spends an attempt of only a few.
CLAIM_RUN = 10
# An event that takes longer than this (a store's rate limit, a slow ERP) holds up the others claimed with it:
# the rest of its run is handed back for another drain, and this drain claims one at a time again, doubling
# the run while events are quick (the chaos run converged 3-6x slower with fixed runs of ten).
SLOW_EVENT_SECONDS = 0.25


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
        with rt.batch():  # the store, its mapping tables and the ERP adapter: read once per batch
            taken, stopped = _drain_batch(rt, store_id)
        done += taken
        if stopped:
            return done
        if time.monotonic() > deadline:
            kick(rt, store_id)
            return done


def _drain_batch(rt: Runtime, store_id: int) -> tuple[int, bool]:
    """Up to a batch of the store's due events, claimed a run at a time (CLAIM_RUN) and their outcomes written
    a run at a time; (the events done, whether the drain is to stop: nothing was due, or the ERP is silent)."""
    done, run = 0, 1
    while done < rt.settings.batch_size:
        claimed = claim_batch(rt, store_id, min(run, rt.settings.batch_size - done))
        if not claimed:
            return done, True
        outcomes, silent, slow = _run(rt, claimed)
        run = 1 if slow else min(CLAIM_RUN, run * 2)
        for event_id, outcome in outcomes:
            done += outcome.status != "not_claimed"
            if outcome.status == "retry":
                schedule_retry(rt, event_id)
        if silent:
            return done, True
    return done, False


def _run(rt: Runtime, claimed: list[tuple[InboxEvent, StoreInfo]]) -> tuple[list[tuple[int, Outcome]], bool, bool]:
    """Work through claimed events in order, writing their outcomes in one commit where that is safe; (each
    event's outcome, whether the ERP went silent, whether an event was slow: the rest were handed back). An
    outcome is written before the next event starts when that event is not a plain order event, or is one of
    an order already in the run: it may read what the earlier one recorded (an edit reads the order as last
    taken; a privacy request redacts stored results)."""
    outcomes: list[tuple[int, Outcome]] = []
    unwritten: list[Attempt] = []
    orders: set[str] = set()
    lease_end = min(event.locked_until for event, _ in claimed if event.locked_until is not None)
    half_lease = timedelta(seconds=rt.settings.lease_seconds / 2)

    def write() -> None:
        if not unwritten:
            return
        outcomes.extend(zip([done.event.id for done in unwritten], record(rt, unwritten), strict=True))
        unwritten.clear()
        orders.clear()

    for position, (event, store) in enumerate(claimed):
        if utcnow() > lease_end - half_lease:
            # A slow ERP: hand the rest back before their leases run out under us (another drain takes them).
            write()
            release(rt, [e for e, _ in claimed[position:]], None)
            return outcomes, False, True
        if unwritten and not (_order_event(event) and event.resource_id not in orders):
            write()
        done = attempt(rt, event, store)
        unwritten.append(done)
        orders.add(event.resource_id or "")
        if done.erp_silent:
            # Each next event would wait out the same timeout: the run stops here, and the rest wait as long
            # as this one (the sweep wakes them), using up no attempt.
            write()
            until = done.retry_at or utcnow() + timedelta(seconds=rt.settings.retry_base_seconds)
            release(rt, [e for e, _ in claimed[position + 1 :]], until)
            waiting = defer(rt, event.store_id, until)
            log.info("ERP not answering: the store's %s other due event(s) wait until %s", waiting, until.isoformat())
            return outcomes, True, True
        if (done.finished - done.started).total_seconds() > SLOW_EVENT_SECONDS:
            write()
            release(rt, [e for e, _ in claimed[position + 1 :]], None)  # due at once: for another drain
            return outcomes, False, True
    write()
    return outcomes, False, False


def defer(rt: Runtime, store_id: int, until: datetime) -> int:
    """Make the store's pending events due no sooner than `until`, leaving their attempts as they are; how many."""
    with rt.sessions.begin() as session:
        return rowcount(
            session.execute(
                update(InboxEvent)
                .where(
                    InboxEvent.store_id == store_id,
                    InboxEvent.status == "pending",
                    or_(InboxEvent.next_attempt_at.is_(None), InboxEvent.next_attempt_at < until),
                )
                .values(next_attempt_at=until)
            )
        )


def _order_event(event: InboxEvent) -> bool:
    topic = platform(event.platform).topics.get(event.topic)
    return topic is not None and topic.kind == ORDER and bool(event.resource_id)


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
    with rt.autocommit() as session:
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
    with rt.autocommit() as session:
        rows = session.execute(
            select(InboxEvent.store_id, func.count()).where(stale).group_by(InboxEvent.store_id)
        ).all()
    for store_id, count in rows:
        log.warning("sweep: %d due events of store %s were not queued; re-enqueuing", count, store_id)
        rt.queue.clear_flag(_flag(rt, store_id))
        kick(rt, store_id)
    return dict(rows)
