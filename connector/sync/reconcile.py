"""Never lose an order: reconciliation, subscription checks and pruning.

Webhooks are at-least-once at best (a platform drops a subscription after repeated failures, another
never redelivers), so each store's orders are also listed by time and fed through the same inbox and
dedupe as webhooks: an order already delivered is a duplicate at the door, or a stale version that
the pipeline treats as a no-op. A platform that sends no webhooks is polled the same way, often
(connector.jobs.schedules): a polled order is an event like any other.

- `reconcile_orders(rt, store_id)`: orders updated since the store's cursor (`store:<id>:orders`).
- `backfill(rt, store_id, since)`: the same from a date, resumable (`store:<id>:backfill`).
- `check_subscriptions(rt, store_id)`: re-register missing webhook subscriptions.
- `prune(rt, days)`: delete old succeeded/ignored/skipped events and their attempts.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select

from adapters.clock import utcnow
from adapters.storefront import StorefrontError
from connector.base import connections
from connector.base.clients import sync_client
from connector.base.models import EventAttempt, InboxEvent, Store
from connector.base.runtime import Runtime, StoreInfo
from connector.base.sign_ins import forget_sign_ins
from connector.base.stock import load_cursor, load_json_cursor, save_cursor
from connector.intake import inbox
from connector.orders.compliance import EXPORT_DAYS, expire_exports
from connector.orders.drains import kick
from connector.sync.store_admin import register_webhooks, webhook_health
from platforms.registry import platform

log = logging.getLogger(__name__)

OVERLAP = timedelta(minutes=2)  # the cursor lags the newest change seen: late commits at the store are re-read
FIRST_LOOKBACK = timedelta(days=1)  # the first run of a store looks this far back
FINISHED = ("succeeded", "ignored", "skipped")


def orders_cursor(store_id: int) -> str:
    return f"store:{store_id}:orders"


def backfill_cursor(store_id: int) -> str:
    return f"store:{store_id}:backfill"


def store_info(rt: Runtime, store_id: int) -> StoreInfo:
    with rt.sessions() as session:
        row = session.get(Store, store_id)
        if row is None:
            raise LookupError(f"no store {store_id}")
        return rt.store_info(row)


# ---- one order into the inbox -------------------------------------------------------------------


def feed(rt: Runtime, store: StoreInfo, order: dict) -> bool:
    """Store the order as a webhook would have; True when it was new to the inbox."""
    listing = platform(store.platform).orders
    order_number = listing.number(order)
    body, headers = inbox.without_card_data(
        store,
        listing.topic,
        order_number,
        json.dumps(order).encode(),
        order,
        {"X-Connector-Source": "reconciliation" if platform(store.platform).receiver else "poll"},
    )
    event_id = inbox.record(
        rt.engine,
        store_id=store.id,
        platform=store.platform,
        topic=listing.topic,
        dedupe_key=listing.dedupe_key(order),
        headers=headers,
        body=body,
        resource_id=str(order["id"])[:64],
        order_number=order_number,
    )
    return event_id is not None


def list_orders(store: StoreInfo, since: datetime, page_size: int | None = None) -> Iterator[dict]:
    """Orders changed since `since`, from the store's API (in the platform's order: by change, or by id)."""
    return platform(store.platform).orders.changed_since(sync_client(store), since, page_size)


# ---- reconciliation -----------------------------------------------------------------------------


# A store that kept answering 429 through a reconciliation's whole listing (its workers had its call bucket full,
# seen in the chaos run right after an outage) is listed again after these pauses: a reconciliation is nobody's
# webhook, it can wait its turn, and the next scheduled run is ten minutes away.
THROTTLED_PAUSES = (30, 60, 120)


def throttled(exc: StorefrontError, attempt: int) -> float | None:
    """The seconds to wait before listing again after `exc` ended attempt `attempt` (0: the first), or None when
    the failure is not one to wait out, or the pauses are spent."""
    if not exc.retryable or attempt >= len(THROTTLED_PAUSES):
        return None
    return THROTTLED_PAUSES[attempt]


def reconcile_orders(rt: Runtime, store_id: int) -> dict:
    """Feed orders changed since the cursor into the inbox, wake the drain, move the cursor."""
    store = store_info(rt, store_id)
    raw = load_cursor(rt, orders_cursor(store_id))
    since = datetime.fromisoformat(raw) if raw else utcnow() - FIRST_LOOKBACK
    seen = new = 0
    newest: datetime | None = None
    for order in list_orders(store, since):
        seen += 1
        new += feed(rt, store, order)
        changed = platform(store.platform).orders.changed_at(order)
        newest = changed if newest is None or changed > newest else newest
    if new:
        kick(rt, store_id)
    if newest is not None:
        since = max(since, newest - OVERLAP)
    save_cursor(rt, orders_cursor(store_id), since.isoformat())
    log.info("reconcile store %s: %d order(s) seen, %d new event(s)", store.slug, seen, new, extra={"store": store_id})
    return {"seen": seen, "new": new, "cursor": since.isoformat()}


def backfill(
    rt: Runtime,
    store_id: int,
    since: datetime,
    *,
    restart: bool = False,
    page_size: int | None = None,
    progress: Callable[[Iterator[dict]], Iterator[dict]] | None = None,
) -> dict:
    """Like reconcile_orders from `since`, checkpointed after each order in `store:<id>:backfill`, so an
    interrupted run resumes where it stopped. The checkpoint is (start, resume-from time, last id done):
    a platform listing by change time advances the resume time; one listing by id at a fixed time skips
    the ids up to the last one done. A re-read order is a duplicate at the inbox anyway.
    `progress` may wrap the stream of orders (the CLI's progress bar)."""
    store = store_info(rt, store_id)
    listing = platform(store.platform).orders
    name = backfill_cursor(store_id)
    state = {} if restart else load_json_cursor(rt, name)
    if state.get("start") != since.isoformat():  # another date: a new backfill
        state = {"start": since.isoformat(), "from": since.isoformat(), "after_id": None}
    resume_from = datetime.fromisoformat(state["from"])
    after_id = state.get("after_id")
    resumed = bool(after_id) or state["from"] != state["start"]  # before this run moves them
    seen = new = skipped = 0
    try:
        orders = list_orders(store, resume_from, page_size)
        for order in progress(orders) if progress is not None else orders:
            if listing.by_id and after_id is not None and int(order["id"]) <= after_id:
                skipped += 1
                continue
            seen += 1
            new += feed(rt, store, order)
            if listing.by_id:
                state["after_id"] = int(order["id"])
            else:
                state["from"] = listing.changed_at(order).isoformat()
            save_cursor(rt, name, json.dumps(state))
    finally:
        if new:
            kick(rt, store_id)
    return {"seen": seen, "new": new, "skipped": skipped, "resumed": resumed}


# ---- webhook subscriptions ----------------------------------------------------------------------


def check_subscriptions(rt: Runtime, store_id: int) -> dict:
    """Re-register the topics whose subscription is missing or disabled; {missing, created, removed, error}."""

    store = store_info(rt, store_id)
    health = webhook_health(rt, store)
    if health.error:
        log.warning("store %s: webhook subscriptions not checked: %s", store.slug, health.error)
        return {"missing": [], "created": [], "removed": [], "error": health.error}
    missing = [t.topic for t in health.topics if not t.ok and not t.needs]  # a scope only the merchant can add
    if not missing:
        return {"missing": [], "created": [], "removed": [], "error": None}
    try:
        done = register_webhooks(rt, store)
    except StorefrontError as exc:
        log.warning("store %s: could not re-register %s: %s", store.slug, missing, exc)
        return {"missing": missing, "created": [], "removed": [], "error": str(exc)}
    log.warning("store %s: re-registered webhook subscriptions %s", store.slug, done["created"])
    return {"missing": missing, "created": done["created"], "removed": done["removed"], "error": None}


# ---- retention ----------------------------------------------------------------------------------


def prune(rt: Runtime, days: int | None = None, chunk: int = 500) -> int:
    """Delete finished (succeeded, ignored, skipped) events older than `days` with their attempts."""
    days = rt.settings.retention_days if days is None else days
    cutoff = utcnow() - timedelta(days=days)
    old = (
        select(InboxEvent.id)
        .where(InboxEvent.status.in_(FINISHED), func.coalesce(InboxEvent.processed_at, InboxEvent.received_at) < cutoff)
        .order_by(InboxEvent.id)
        .limit(chunk)
    )
    total = 0
    while True:
        with rt.sessions.begin() as session:
            ids = list(session.scalars(old))
            if not ids:
                break
            session.execute(delete(EventAttempt).where(EventAttempt.event_id.in_(ids)))
            session.execute(delete(InboxEvent).where(InboxEvent.id.in_(ids)))
        total += len(ids)
    if total:
        log.info("pruned %d finished event(s) older than %d day(s)", total, days)
    if expired := expire_exports(rt):
        log.info("erased %d privacy export(s) older than %d day(s)", expired, EXPORT_DAYS)
    forget_sign_ins(rt)
    connections.forget_old(rt)
    return total
