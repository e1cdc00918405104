"""Queued jobs. Each receives ids only and can run twice: the inbox row is the truth.

- The inbox's own jobs (`drain`, `retry_event`, `sweep`) are in connector.orders.drains.
- `sync_inventory_job(store_id)`: ERP stock changes into the mirror, then the store's figures
  (connector.sync.inventory); `sync_shipments_job()`: ERP shipments to the stores (connector.sync.fulfillment);
  `sync_receipts_job()`: money finance recorded in the ERP, the store orders marked paid (connector.sync.receipts);
  `sync_undelivered_job()`: parcels returned undelivered, the store orders cancelled (connector.sync.undelivered).
  `sync_refunds_job()`: credit notes the ERP made itself, refunded in the stores (connector.sync.erp_refunds).
- `reconcile_job(store_id)`, `subscriptions_job(store_id)`, `prune_job()`: missed orders, missing
  webhook subscriptions and old finished events (connector.sync.reconcile).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from adapters.clock import utcnow
from adapters.erp import ErpError
from adapters.storefront import StorefrontError
from connector.base.clients import forget as forget_client
from connector.base.models import ErpConnection, Store
from connector.base.runtime import Runtime, StoreInfo, current
from connector.base.stock import read_erp_stock
from connector.orders.drains import JOB_TIMEOUT, drain, retry_event, store_limit, sweep  # noqa: F401 - see below
from connector.sync.erp_refunds import RefundReport, sync_refunds
from connector.sync.fulfillment import ShipmentReport, sync_shipments
from connector.sync.inventory import sync_inventory
from connector.sync.receipts import ReceiptReport, sync_receipts
from connector.sync.reconcile import check_subscriptions, prune, reconcile_orders, throttled
from connector.sync.undelivered import UndeliveredReport, sync_undelivered
from platforms.registry import platform

log = logging.getLogger(__name__)
# `drain` and `retry_event` are imported here too: jobs queued before they moved to connector.orders.drains
# name them as connector.jobs.drain / connector.jobs.retry_event, and must still find them.

# ---- stock and shipments --------------------------------------------------------------------------

INVENTORY_FLAG = "connector:{queue}:inventory-scheduled:{store}"
INVENTORY_FLAG_TTL = 600  # a lost sync job is re-queued by the next push or schedule after this
DEFAULT_INVENTORY_MINUTES = 15
DEFAULT_SHIPMENTS_MINUTES = 5
DEFAULT_RECEIPTS_MINUTES = 5
DEFAULT_UNDELIVERED_MINUTES = 5
DEFAULT_REFUNDS_MINUTES = 5


def _inventory_flag(rt: Runtime, store_id: int) -> str:
    return INVENTORY_FLAG.format(queue=rt.settings.queue_name, store=store_id)


def queue_inventory_sync(rt: Runtime, store_id: int) -> bool:
    """Queue a sync of this store unless one is queued already (an ERP pushing stock every few seconds
    makes one job per store, not one per push). True when this call queued it."""
    if rt.queue.claim_flag(_inventory_flag(rt, store_id), INVENTORY_FLAG_TTL):
        rt.queue.enqueue(sync_inventory_job, store_id, limit=store_limit(rt, store_id))
        return True
    return False


def sync_inventory_job(store_id: int, full: bool = False) -> dict:
    """Read the ERP's stock changes into the mirror, then bring this store in line with it."""

    rt = current()
    # Cleared first: a push after this point queues another run, one before is seen by this one.
    rt.queue.clear_flag(_inventory_flag(rt, store_id))
    notes = []
    try:
        notes.append(str(read_erp_stock(rt)))
    except ErpError as exc:  # an ERP that only pushes, or is down: sync from the mirror as it is
        log.warning("stock read from the ERP failed (%s); syncing store %s from the mirror", exc, store_id)
        notes.append(f"ERP stock not read: {exc}")
    report = sync_inventory(rt, store_id, full=full)
    return {**report.as_dict(), "erp": notes}


def sync_shipments_job() -> dict:

    return _feed_result(sync_shipments(current()))


def sync_receipts_job() -> dict:

    return _feed_result(sync_receipts(current()))


def sync_undelivered_job() -> dict:

    return _feed_result(sync_undelivered(current()))


def sync_refunds_job() -> dict:

    return _feed_result(sync_refunds(current()))


def _feed_result(report: ShipmentReport | ReceiptReport | UndeliveredReport | RefundReport) -> dict:
    return {
        "read": report.read,
        "recorded": report.recorded,
        "outcomes": dict(report.outcomes),
        "errors": report.errors[:20],
    }


# ---- reconciliation and housekeeping (connector.sync.reconcile) ---------------------------------------

RECONCILE_SECONDS = 600
DEFAULT_POLL_SECONDS = 60  # a polled store's orders: the delay a merchant sees before the ERP has them
POLL_MIN = 15  # RQ's cron checks every few seconds; a store's API need not answer more often
SUBSCRIPTIONS_SECONDS = 3600
PRUNE_SECONDS = 86400


def reconcile_job(store_id: int, attempt: int = 0) -> dict:
    """Reconcile the store; when it kept answering 429 (or another failure to wait out), the job queues itself
    again after a pause (THROTTLED_PAUSES) instead of leaving the missed orders to the next scheduled run."""
    rt = current()
    try:
        return reconcile_orders(rt, store_id)
    except StorefrontError as exc:
        pause = throttled(exc, attempt)
        if pause is None:
            raise
        log.warning("reconcile store %s: %s; listing again in %s s", store_id, exc, pause, extra={"store": store_id})
        at = utcnow() + timedelta(seconds=pause)
        rt.queue.enqueue(reconcile_job, store_id, attempt + 1, at=at, limit=store_limit(rt, store_id))
        return {"retry_in": pause, "reason": str(exc)}


def subscriptions_job(store_id: int) -> dict:
    return check_subscriptions(current(), store_id)


def prune_job(days: int | None = None) -> int:
    return prune(current(), days)


_STORE_JOBS = {"reconcile": reconcile_job, "subscriptions": subscriptions_job}


def store_job(kind: str, store_id: int) -> None:
    """What the cron scheduler runs for a store's periodic work: it queues the real job under the store's
    concurrency limit (RQ's cron cannot give a job a RateLimit), so scheduled work and the store's
    order processing share one limit on what the store's API and the ERP see."""
    rt = current()
    with rt.sessions() as session:
        gone = session.scalar(select(Store.disconnected_at).where(Store.id == store_id))
    if gone is not None:  # its app was uninstalled: nothing to ask the store until it is connected again
        log.info("store %s is disconnected since %s: its %s job is skipped", store_id, gone, kind)
        return
    if kind == "inventory":
        queue_inventory_sync(rt, store_id)  # at most one queued per store, however often it is asked
    else:
        rt.queue.enqueue(_STORE_JOBS[kind], store_id, limit=store_limit(rt, store_id))


def schedules(rt: Runtime, sweep_every: int = 60) -> list[tuple[str, Callable[..., Any], tuple, int]]:
    """What `connector scheduler` registers with RQ's CronScheduler: (name, job, args, interval seconds).
    Each active store's inventory every `inventory_interval_minutes` (default 15; 0 turns it off), the
    shipments every ERP setting `shipments_interval_minutes` (default 5), the receipts every
    `receipts_interval_minutes` (default 5), the undelivered parcels every `undelivered_interval_minutes`
    (default 5) and the ERP's own refunds every `refunds_interval_minutes` (default 5; not on a Tryton ERP;
    0 turns any of them off), the inbox sweep; and each active
    store's order reconciliation (10 min) and webhook subscription check (hourly), the daily prune. A store
    whose platform sends no webhooks has its orders polled instead, every `poll_interval_seconds`
    (default 60): the same listing, cursor and inbox as reconciliation."""

    with rt.sessions() as session:
        stores = [
            rt.store_info(s) for s in session.scalars(select(Store).where(Store.active.is_(True)).order_by(Store.id))
        ]
        erp = session.scalars(select(ErpConnection).where(ErpConnection.name == "default")).first()
    found: list[tuple[str, Callable[..., Any], tuple, int]] = [("sweep", sweep, (), sweep_every)]
    for store in stores:
        minutes = _minutes(store.settings.get("inventory_interval_minutes"), DEFAULT_INVENTORY_MINUTES)
        if minutes > 0:
            found.append((f"inventory:{store.slug}", store_job, ("inventory", store.id), max(60, round(minutes * 60))))
        if platform(store.platform).receiver is None:  # no webhooks: its orders are polled through the inbox
            found.append((f"poll:{store.slug}", store_job, ("reconcile", store.id), poll_seconds(store)))
            continue
        found.append((f"reconcile:{store.slug}", store_job, ("reconcile", store.id), RECONCILE_SECONDS))
        found.append((f"subscriptions:{store.slug}", store_job, ("subscriptions", store.id), SUBSCRIPTIONS_SECONDS))
    if erp is not None:
        minutes = _minutes((erp.settings or {}).get("shipments_interval_minutes"), DEFAULT_SHIPMENTS_MINUTES)
        if minutes > 0:
            found.append(("shipments", sync_shipments_job, (), max(60, round(minutes * 60))))
        minutes = _minutes((erp.settings or {}).get("receipts_interval_minutes"), DEFAULT_RECEIPTS_MINUTES)
        if minutes > 0:
            found.append(("receipts", sync_receipts_job, (), max(60, round(minutes * 60))))
        minutes = _minutes((erp.settings or {}).get("undelivered_interval_minutes"), DEFAULT_UNDELIVERED_MINUTES)
        if minutes > 0:
            found.append(("undelivered", sync_undelivered_job, (), max(60, round(minutes * 60))))
        minutes = _minutes((erp.settings or {}).get("refunds_interval_minutes"), DEFAULT_REFUNDS_MINUTES)
        if minutes > 0:
            found.append(("refunds", sync_refunds_job, (), max(60, round(minutes * 60))))
    found.append(("prune", prune_job, (), PRUNE_SECONDS))
    return found


def poll_seconds(store: StoreInfo) -> int:
    """How often a polled store's orders are listed (its `poll_interval_seconds`, at least POLL_MIN)."""
    seconds = _minutes(store.settings.get("poll_interval_seconds"), DEFAULT_POLL_SECONDS)
    return max(POLL_MIN, round(seconds))


def _minutes(value: object, default: float) -> float:
    if value in (None, ""):
        return default
    try:
        if not isinstance(value, (str, int, float)):  # a JSON list or object
            raise TypeError(type(value).__name__)
        return float(value)
    except (TypeError, ValueError):
        log.warning("interval %r is not a number of minutes; using %s", value, default)
        return default


def reconnected(rt: Runtime, store_id: int) -> None:
    """The store is connected again: calls may resume, and the orders of the gap are read back."""
    with rt.sessions.begin() as session:
        row = session.get_one(Store, store_id)
        was = row.disconnected_at
        row.disconnected_at = None

    forget_client(store_id)
    if was is not None:
        rt.queue.enqueue(reconcile_job, store_id, limit=store_limit(rt, store_id))
