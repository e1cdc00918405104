"""Parcels the ERP recorded as returned undelivered (a COD parcel refused at the door): the store order
is cancelled, once, with its units restocked and the reason.

A run reads what the ERP recorded or changed after the cursor "erp:undelivered" (adapters.erp:
`undelivered()`) and records one `undelivered` row per (store, return ref) — pending, with a copy of what
the ERP gave — before any store is called; the insert does nothing when the row exists, so a replay or a
reset cursor changes nothing. Then every pending row is delivered:

- The store order is read first. One already cancelled is left alone (`done`, and the note says so); this
  is also how an attempt whose answer was lost is recognised on its next try.
- A paid order is no COD refusal: it fails with the reason, for a person to look at (refund it, or find
  out where the parcel went). Paid means: the store shows it paid (its platform's operations say how:
  platforms/<name>/operations.py), or finance's receipts for the order were told to the store
  (connector.sync.receipts).
- Before the store is told, the order's ERP cancellation is bound (`erp_documents`, kind "cancellation",
  to "ERP returned undelivered <ref>"), so the orders/cancelled webhook that follows the store's change
  does not cancel in the ERP an order the ERP closed itself (connector.orders.lifecycle reads this binding).
- The store cancels the order, restocked, with "Refused at the door: <reason>" (and the store's
  `notify_customer` setting where the platform notifies).

Every outcome is written to the audit log with the actor `erp:warehouse` and shown on the order's console
page. A failure is kept on the row like a receipt's: retryable ones are tried on the next run up to
CONNECTOR_MAX_ATTEMPTS, permanent ones wait for `connector sync-undelivered --retry-failed`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from adapters.clock import utcnow
from connector.base.audit import audit
from connector.base.db import rowcount
from connector.base.models import ErpDocument, ReceiptDelivery, Store, UndeliveredParcel
from connector.base.runtime import Runtime
from connector.base.stock import read_pages
from connector.sync.fulfillment import (
    FeedReport,
    StoreRun,
    attempt,
    claim,
    deliver_all,
    record_new,
    store_context,
)
from mappings.canonical import Undelivered
from platforms.operations import StoreProblem
from platforms.registry import platform

log = logging.getLogger(__name__)

UNDELIVERED_CURSOR = "erp:undelivered"
ACTOR = "erp:warehouse"  # who the audit log says acted: the warehouse, through the ERP
PAGE = 500


@dataclass
class UndeliveredReport(FeedReport):
    def headline(self) -> str:
        return (
            f"undelivered parcels: {self.read} read, {self.recorded} new, {self.known} already known; store "
            f"orders cancelled {self.outcomes['done']}, to retry {self.outcomes['retry']}, failed "
            f"{self.outcomes['failed']}; {self.seconds:.2f} s"
        )


def sync_undelivered(rt: Runtime) -> UndeliveredReport:
    began = time.monotonic()
    report = UndeliveredReport()
    read_pages(rt, UNDELIVERED_CURSOR, rt.erp().undelivered, lambda found: _record(rt, found, report), PAGE)
    deliver_all(rt, UndeliveredParcel, deliver, report)
    report.seconds = time.monotonic() - began
    return report


def parcel_json(u: Undelivered) -> dict:
    return {"ref": u.ref, "order_ref": u.order_ref, "reason": u.reason, "returned_at": u.returned_at.isoformat()}


def _record(rt: Runtime, parcels: list[Undelivered], report: UndeliveredReport) -> None:
    record_new(rt, UndeliveredParcel, "return_ref", parcels, lambda u: {"parcel": parcel_json(u)}, report)


def deliver(
    rt: Runtime, row_id: int, context: dict[int, dict[str, Any]], report: UndeliveredReport | None = None
) -> str | None:
    row = claim(rt, UndeliveredParcel, row_id)
    if row is None:
        return None

    def work() -> tuple[str, str]:
        store = store_context(rt, row.store_id, context)
        return platform(store["info"].platform).operations.cancel_refused(_Parcel(store, row))

    command = "connector sync-undelivered"
    status, note, error = attempt(rt, row, f"undelivered {row.return_ref}", command, StoreProblem, work)
    _save(rt, row, status, note, error)
    if error and report is not None:
        report.errors.append(f"{row.return_ref}: {error}")
    log.info("undelivered %s to store %s: %s (%s)", row.return_ref, row.store_id, status, error or note)
    return status


def staff_note(row: UndeliveredParcel) -> str:
    reason = str((row.parcel or {}).get("reason") or "").strip() or "no reason recorded"
    return f"Refused at the door: {reason} (ERP return {row.return_ref})"


class _Parcel(StoreRun):
    """A parcel refused at the door on its way to its store (platforms.operations.ParcelCore)."""

    def __init__(self, store: dict[str, Any], row: UndeliveredParcel):
        super().__init__(store, row.store_id, row.order_external_id, row.return_ref, row.parcel or {})
        self.row = row
        self.note = staff_note(row)

    def receipts_told(self) -> list[str]:
        return _receipts_told(self.rt, self.row)

    def bound(self) -> bool:
        return _bound_by_us(self.rt, self.row)

    def bind(self) -> None:
        _bind_cancellation(self.rt, self.row)


def _receipts_told(rt: Runtime, row: UndeliveredParcel) -> list[str]:
    with rt.sessions() as session:
        return list(
            session.scalars(
                select(ReceiptDelivery.receipt_ref).where(
                    ReceiptDelivery.store_id == row.store_id,
                    ReceiptDelivery.order_external_id == row.order_external_id,
                    ReceiptDelivery.status == "done",
                )
            )
        )


def _cancel_key(row: UndeliveredParcel) -> str:
    return f"{(row.parcel or {}).get('order_ref')}:cancel"


def _erp_ref(row: UndeliveredParcel) -> str:
    return f"ERP returned undelivered {row.return_ref}"[:255]


def _bound_by_us(rt: Runtime, row: UndeliveredParcel) -> bool:
    with rt.sessions() as session:
        erp_ref = session.scalar(
            select(ErpDocument.erp_ref).where(
                ErpDocument.store_id == row.store_id,
                ErpDocument.kind == "cancellation",
                ErpDocument.key == _cancel_key(row),
            )
        )
    return erp_ref == _erp_ref(row)


def _bind_cancellation(rt: Runtime, row: UndeliveredParcel) -> None:
    """The ERP closed the order itself (it took the parcel back): the orders/cancelled webhook that follows
    the store's change must not cancel it there again (connector.orders.lifecycle reads this binding)."""
    try:
        with rt.sessions.begin() as session:
            session.add(
                ErpDocument(
                    store_id=row.store_id,
                    order_external_id=row.order_external_id,
                    kind="cancellation",
                    key=_cancel_key(row),
                    erp_ref=_erp_ref(row),
                )
            )
    except IntegrityError:
        pass  # bound already: by an earlier try, or the order was cancelled in the ERP before


def _save(rt: Runtime, row: UndeliveredParcel, status: str, note: str, error: str | None) -> None:
    with rt.sessions.begin() as session:
        saved = session.get_one(UndeliveredParcel, row.id)
        saved.error = error
        if status in ("done", "failed"):
            saved.status, saved.note = status, note or saved.note
        if status == "done":
            saved.done_at = utcnow()
        slug = session.scalar(select(Store.slug).where(Store.id == row.store_id)) or str(row.store_id)
    if status != "retry":
        action = {"done": "undelivered.cancelled", "failed": "undelivered.failed"}[status]
        detail = {"return": row.return_ref, "reason": (row.parcel or {}).get("reason", "")}
        audit(rt, ACTOR, action, f"{slug} order {row.order_external_id}", {**detail, "note": error or note})


def retry_failed(rt: Runtime) -> int:
    """Failed rows get a fresh start on the next run."""
    with rt.sessions.begin() as session:
        return rowcount(
            session.execute(
                update(UndeliveredParcel)
                .where(UndeliveredParcel.status == "failed")
                .values(status="pending", attempts=0)
            )
        )
