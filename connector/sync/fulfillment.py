"""ERP shipments told to the stores, once each, the way each store's platform shows a shipment.

A run reads the shipments the ERP made or changed after the cursor "erp:shipments" and records one
`fulfillments` row per (store, shipment ref) — pending, with a copy of the shipment — before any
store is called. The insert does nothing when the row exists, so reading a shipment again (a replay,
a reset cursor, the ERP touching it) changes nothing. Then every pending row is delivered through its
platform's shipper (platforms/<name>/shipping.py: e.g. a fulfillment with tracking, or a note
and completion), which recognises an attempt whose answer was lost.

A failure is kept on the row (error, attempts). A retryable one (the store unreachable, 5xx, a
throttle that did not clear) is tried again on the next run, up to CONNECTOR_MAX_ATTEMPTS; a
permanent one (no such order, nothing left to fulfil for a SKU) is `failed` with a reason a person can
act on, and `connector sync-shipments --retry-failed` gives failed rows a fresh start.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import select, update

from adapters.clock import utcnow
from adapters.storefront import StorefrontError
from connector.base.clients import sync_client
from connector.base.db import rowcount
from connector.base.models import Fulfillment, OfflineRefund, OrderLink, ReceiptDelivery, Store, UndeliveredParcel
from connector.base.runtime import Runtime, StoreInfo
from connector.base.stock import read_pages
from connector.base.upsert import chunked, custom_plans, upsert
from connector.orders.lifecycle import merchant_tables
from connector.orders.locations import LocationMap, store_locations
from connector.orders.routing import order_warehouse
from mappings.canonical import ErpRefund, Receipt, Shipment, Undelivered
from mappings.inventory import store_skus
from platforms.operations import StoreProblem
from platforms.registry import platform

log = logging.getLogger(__name__)

Row = TypeVar("Row", Fulfillment, ReceiptDelivery, UndeliveredParcel, OfflineRefund)
Item = TypeVar("Item", Shipment, Receipt, Undelivered, ErpRefund)
SHIPMENT_CURSOR = "erp:shipments"
PAGE = 500


@dataclass
class FeedReport:
    """What a run of an ERP feed (shipments, receipts) read, recorded and delivered."""

    read: int = 0  # items the ERP gave
    recorded: int = 0  # new delivery rows
    known: int = 0  # items already recorded (a replay)
    unlinked: list[str] = field(default_factory=list)  # items of orders the connector did not make
    outcomes: Counter[str] = field(default_factory=Counter)  # done | retry | failed (| partial)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def headline(self) -> str:
        raise NotImplementedError

    def summary(self) -> str:
        lines = [self.headline()]
        if self.unlinked:
            lines.append(
                f"  not store orders of this connector: {', '.join(self.unlinked[:10])}"
                + (" …" if len(self.unlinked) > 10 else "")
            )
        lines += [f"  error: {e}" for e in self.errors]
        return "\n".join(lines)


@dataclass
class ShipmentReport(FeedReport):
    def headline(self) -> str:
        return (
            f"shipments: {self.read} read, {self.recorded} new, {self.known} already known; delivered "
            f"{self.outcomes['done']}, to retry {self.outcomes['retry']}, failed {self.outcomes['failed']}; "
            f"{self.seconds:.2f} s"
        )


def sync_shipments(rt: Runtime) -> ShipmentReport:
    began = time.monotonic()
    report = ShipmentReport()
    read_shipments(rt, report)
    deliver_pending(rt, report)
    report.seconds = time.monotonic() - began
    return report


# ---- reading --------------------------------------------------------------------------------------


def read_shipments(rt: Runtime, report: ShipmentReport) -> None:
    read_pages(rt, SHIPMENT_CURSOR, rt.erp().shipments, lambda found: _record(rt, found, report), PAGE)


def shipment_json(s: Shipment) -> dict:
    return {
        "ref": s.ref,
        "order_ref": s.order_ref,
        "warehouse": s.warehouse,
        "carrier": s.carrier,
        "tracking_number": s.tracking_number,
        "tracking_url": s.tracking_url,
        "shipped_at": s.shipped_at.isoformat(),
        "lines": [{"sku": ln.sku, "quantity": int(ln.quantity)} for ln in s.lines],
    }


def _record(rt: Runtime, shipments: list[Shipment], report: ShipmentReport) -> None:
    record_new(
        rt,
        Fulfillment,
        "shipment_ref",
        shipments,
        lambda s: {"shipment": shipment_json(s)},
        report,
    )


def record_new(
    rt: Runtime,
    model: type[Row],
    ref_column: str,
    items: Sequence[Item],
    values: Callable[[Item], dict],
    report: FeedReport,
) -> None:
    """Record one pending delivery row per (store, item ref) of what the ERP gave (shipments, receipts),
    committed before any store is called; items already recorded, or of orders the connector did not
    make, are counted and left alone."""
    report.read += len(items)
    links: dict[str, tuple[int, str]] = {}
    ref_col = getattr(model, ref_column)
    with rt.sessions.begin() as session:
        custom_plans(session)
        for part in chunked(sorted({i.order_ref for i in items})):
            for link in session.scalars(select(OrderLink).where(OrderLink.external_ref.in_(list(part)))):
                links[link.external_ref] = (link.store_id, link.external_id)
        existing: set[tuple[int, str]] = set()
        for part in chunked(sorted({(links[i.order_ref][0], i.ref) for i in items if i.order_ref in links})):
            existing |= {
                (r[0], r[1])
                for r in session.execute(
                    select(model.store_id, ref_col).where(
                        model.store_id.in_({k[0] for k in part}), ref_col.in_([k[1] for k in part])
                    )
                )
            }
        rows, now = [], utcnow()
        for item in items:
            if item.order_ref not in links:
                report.unlinked.append(f"{item.ref} ({item.order_ref})")
                continue
            store_id, external_id = links[item.order_ref]
            if (store_id, item.ref) in existing:
                report.known += 1
                continue
            existing.add((store_id, item.ref))
            rows.append(
                {
                    "store_id": store_id,
                    ref_column: item.ref,
                    "order_external_id": external_id,
                    "status": "pending",
                    "attempts": 0,
                    "created_at": now,
                    **values(item),
                }
            )
        # ON CONFLICT DO NOTHING: a concurrent run recording the same item leaves one row.
        upsert(session, model.__table__, rows, ("store_id", ref_column), ())
    report.recorded += len(rows)


# ---- delivering -----------------------------------------------------------------------------------


def deliver_pending(rt: Runtime, report: ShipmentReport) -> None:
    deliver_all(rt, Fulfillment, deliver, report)


def deliver_all(
    rt: Runtime,
    model: type[Row],
    one: Callable[[Runtime, int, dict[int, dict[str, Any]], Any], str | None],
    report: FeedReport,
) -> None:
    """Deliver every pending row, oldest first, counting the outcomes; store clients are made once per run."""
    with rt.sessions() as session:
        ids = list(session.scalars(select(model.id).where(model.status == "pending").order_by(model.id)))
    context: dict[int, dict[str, Any]] = {}  # per store: client, tables, locations (read once per run)
    for row_id in ids:
        outcome = one(rt, row_id, context, report)
        if outcome:
            report.outcomes[outcome] += 1


def claim(rt: Runtime, model: type[Row], row_id: int) -> Row | None:
    """Take a pending delivery row (a fulfillment, a receipt) for this attempt: attempts + 1, only if nobody
    else did meanwhile."""
    with rt.sessions.begin() as session:
        row = session.get(model, row_id)
        if row is None or row.status != "pending":
            return None
        taken = session.execute(
            update(model)
            .where(model.id == row_id, model.status == "pending", model.attempts == row.attempts)
            .values(attempts=row.attempts + 1)
        )
        if rowcount(taken) != 1:
            return None
        session.refresh(row)
        session.expunge(row)
        return row


def deliver(
    rt: Runtime, fulfillment_id: int, context: dict[int, dict[str, Any]], report: ShipmentReport | None = None
) -> str | None:
    row = claim(rt, Fulfillment, fulfillment_id)
    if row is None:
        return None
    shipment = row.shipment or {}
    status, remote, error = "done", None, None
    try:
        store = store_context(rt, row.store_id, context)
        ship = platform(store["info"].platform).ship
        run = StoreRun(store, row.store_id, row.order_external_id, row.shipment_ref, shipment)
        remote = ship(run, row.order_external_id, row.shipment_ref, shipment)
    except StoreProblem as exc:
        status, error = "failed", str(exc)
    except StorefrontError as exc:
        status, error = ("retry" if exc.retryable else "failed"), str(exc)
    except Exception as exc:  # a bug or an unforeseen failure: retried, then parked with its name
        log.exception("shipment %s: unexpected error", row.shipment_ref)
        status, error = "retry", f"internal error {type(exc).__name__}: {exc} (report it to the connector's developers)"
    if status == "retry" and row.attempts >= rt.settings.max_attempts:
        status, error = (
            "failed",
            (
                f"gave up after {row.attempts} attempts: {error}. Fix the cause, then run "
                "`connector sync-shipments --retry-failed`"
            ),
        )
    with rt.sessions.begin() as session:
        saved = session.get_one(Fulfillment, fulfillment_id)
        saved.error = error
        if status == "done":
            saved.status, saved.remote_id, saved.done_at = "done", remote, utcnow()
        elif status == "failed":
            saved.status = "failed"
        # "retry": stays pending, tried again on the next run
    if error and report is not None:
        report.errors.append(f"{row.shipment_ref}: {error}")
    log.info("shipment %s to store %s: %s%s", row.shipment_ref, row.store_id, status, f" ({error})" if error else "")
    return status


def attempt(
    rt: Runtime,
    row: Row,
    ref: str,
    command: str,
    problem: type[Exception],
    work: Callable[[], tuple[str, str]],
) -> tuple[str, str, str | None]:
    """One try at delivering a row: (status, note, error). `problem` is a refusal a person must act on
    (failed); a store error is retried when it may pass; anything else is a bug, retried and then parked
    with its name; after CONNECTOR_MAX_ATTEMPTS tries a retryable failure is parked with what to run."""
    status, note, error = "done", "", None
    try:
        status, note = work()
    except problem as exc:
        status, error = "failed", str(exc)
    except StorefrontError as exc:
        status, error = ("retry" if exc.retryable else "failed"), str(exc)
    except Exception as exc:
        log.exception("%s: unexpected error", ref)
        status, error = "retry", f"internal error {type(exc).__name__}: {exc} (report it to the connector's developers)"
    if status == "retry" and row.attempts >= rt.settings.max_attempts:
        status, error = (
            "failed",
            f"gave up after {row.attempts} attempts: {error}. Fix the cause, then run `{command} --retry-failed`",
        )
    return status, note, error


def store_context(rt: Runtime, store_id: int, context: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """A store's info, API client and SKU table, read once per run."""
    if store_id not in context:
        with rt.sessions() as session:
            info = rt.store_info(session.get_one(Store, store_id))
        context[store_id] = {
            "info": info,
            "client": sync_client(info),
            "sku_map": merchant_tables(rt, store_id).sku,
            "rt": rt,
        }
    return context[store_id]


class StoreRun:
    """One store, read once per run, and one ERP document on its way to it, as a platform's shipper or
    operations see them (platforms.shipping.ShipCore, platforms.operations.FeedCore)."""

    def __init__(
        self,
        store: dict[str, Any],
        store_id: int,
        order_id: str,
        ref: str,
        document: Mapping[str, Any],
        currency: str = "",
    ):
        self._store, self.store_id = store, store_id
        self.rt: Runtime = store["rt"]
        self.settings = store["info"].settings
        self.notify_customer = notify_customer(store["info"])
        self.order_id, self.ref, self.document = order_id, ref, document
        self.currency = currency or str(document.get("currency") or "")

    def client(self) -> Any:
        return self._store["client"]

    def store_skus(self, erp_sku: str) -> set[str]:
        return set(store_skus(erp_sku, self._store["sku_map"]))

    def erp_sku(self, store_sku: str) -> str:
        return str(self._store["sku_map"].get(store_sku, store_sku))

    def sku_map(self) -> Mapping[str, str]:
        sku_map: Mapping[str, str] = self._store["sku_map"]
        return sku_map

    def routed_warehouse(self, order_id: str, wanted: Mapping[str, int]) -> str | None:
        return order_warehouse(self.rt, self.store_id, order_id, dict(wanted))

    def locations_for(self, warehouse: str | None) -> list[str]:
        if "locations" not in self._store:
            self._store["locations"] = store_locations(self.rt, self._store["info"], self.client())
        locations: LocationMap = self._store["locations"]
        return locations.for_warehouse(warehouse) if warehouse else list(locations.warehouses)

    def all_shipped(self, order_id: str, ordered: Mapping[str, int]) -> bool:
        """Every line's quantity is covered by this order's shipments together (in ERP SKUs)."""
        shipped: Counter[str] = Counter()
        with self.rt.sessions() as session:
            for shipment in session.scalars(
                select(Fulfillment.shipment).where(
                    Fulfillment.store_id == self.store_id, Fulfillment.order_external_id == order_id
                )
            ):
                for line in (shipment or {}).get("lines") or []:
                    shipped[line["sku"]] += int(line["quantity"])
        return bool(ordered) and all(shipped[sku] >= quantity for sku, quantity in ordered.items())


def notify_customer(info: StoreInfo) -> bool:
    """The store setting `notify_customer` (default true): whether the store emails the buyer about what we do."""
    value = info.settings.get("notify_customer", True)
    return value.strip().lower() not in ("false", "0", "no", "off") if isinstance(value, str) else bool(value)


def retry_failed(rt: Runtime) -> int:
    """Failed fulfillments get a fresh start on the next run."""
    with rt.sessions.begin() as session:
        return rowcount(
            session.execute(
                update(Fulfillment).where(Fulfillment.status == "failed").values(status="pending", attempts=0)
            )
        )
