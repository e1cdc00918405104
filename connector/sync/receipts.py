"""Money finance recorded in the ERP, told to the stores once: the order marked paid (COD, bank transfer).

A run reads the receipts the ERP recorded or changed after the cursor "erp:receipts" (adapters.erp:
`receipts()`, never the payments the connector itself wrote from the store) and records one `receipts`
row per (store, receipt ref) — pending, with a copy of the receipt — before any store is called; the
insert does nothing when the row exists, so a replay or a reset cursor changes nothing. Then every
pending row is delivered:

- The store's own view of the order's money is read first: an order the store already shows paid is
  not marked again (`done`, and the note says so). This is also how an attempt whose answer was lost is
  recognised on its next try.
- The order is marked only when the ERP's receipts for it together cover what the store asks (an outstanding
  amount, or the order total); until then the row is `partial` and waits
  for the next receipt of the order, which re-weighs them all. Receipts in another currency than the
  store's order are refused with a reason (a person converts them in the ERP or marks the order paid by
  hand).
- Before the store is told, the order's payments binding (`erp_documents`, kind "payments") is written,
  so the store's orders/paid webhook that follows books no second payment in the ERP for the same money.
- How the store is told is its platform's (platforms/<name>/operations.py): e.g. marked
  paid, or a private note naming the receipt and a paid status.

Every outcome is written to the audit log with the actor `erp:finance`, and shown on the order's console
page. A failure is kept on the row like a fulfillment's: retryable ones are tried on the next run up to
CONNECTOR_MAX_ATTEMPTS, permanent ones wait for `connector sync-receipts --retry-failed`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from adapters.clock import utcnow
from connector.base.audit import audit
from connector.base.db import rowcount
from connector.base.models import ErpDocument, ReceiptDelivery, Store
from connector.base.runtime import Runtime
from connector.base.stock import read_pages
from connector.sync.fulfillment import FeedReport, StoreRun, attempt, claim, deliver_all, record_new, store_context
from mappings.canonical import Receipt
from platforms.operations import StoreProblem
from platforms.registry import platform

log = logging.getLogger(__name__)

RECEIPT_CURSOR = "erp:receipts"
ACTOR = "erp:finance"  # who the audit log says acted: finance, through the ERP
PAGE = 500


@dataclass
class ReceiptReport(FeedReport):
    def headline(self) -> str:
        return (
            f"receipts: {self.read} read, {self.recorded} new, {self.known} already known; done "
            f"{self.outcomes['done']}, waiting for more {self.outcomes['partial']}, to retry "
            f"{self.outcomes['retry']}, failed {self.outcomes['failed']}; {self.seconds:.2f} s"
        )


def sync_receipts(rt: Runtime) -> ReceiptReport:
    began = time.monotonic()
    report = ReceiptReport()
    read_pages(rt, RECEIPT_CURSOR, rt.erp().receipts, lambda found: _record(rt, found, report), PAGE)
    deliver_pending(rt, report)
    report.seconds = time.monotonic() - began
    return report


# ---- reading --------------------------------------------------------------------------------------


def receipt_json(r: Receipt) -> dict:
    return {
        "ref": r.ref,
        "order_ref": r.order_ref,
        "amount": str(r.amount.amount),
        "currency": r.amount.currency,
        "received_at": r.received_at.isoformat(),
        "method": r.method,
        "reference": r.reference,
    }


def _record(rt: Runtime, receipts: list[Receipt], report: ReceiptReport) -> None:
    record_new(
        rt,
        ReceiptDelivery,
        "receipt_ref",
        receipts,
        lambda r: {"amount": r.amount.amount, "currency": r.amount.currency, "receipt": receipt_json(r)},
        report,
    )


# ---- delivering -----------------------------------------------------------------------------------


def deliver_pending(rt: Runtime, report: ReceiptReport) -> None:
    deliver_all(rt, ReceiptDelivery, deliver, report)


def deliver(
    rt: Runtime, receipt_id: int, context: dict[int, dict[str, Any]], report: ReceiptReport | None = None
) -> str | None:
    row = claim(rt, ReceiptDelivery, receipt_id)
    if row is None:
        return None

    def work() -> tuple[str, str]:
        store = store_context(rt, row.store_id, context)
        return platform(store["info"].platform).operations.mark_paid(_Receipt(store, row))

    status, note, error = attempt(rt, row, f"receipt {row.receipt_ref}", "connector sync-receipts", StoreProblem, work)
    _save(rt, row, status, note, error)
    if error and report is not None:
        report.errors.append(f"{row.receipt_ref}: {error}")
    log.info("receipt %s to store %s: %s (%s)", row.receipt_ref, row.store_id, status, error or note)
    return status


def _save(rt: Runtime, row: ReceiptDelivery, status: str, note: str, error: str | None) -> None:
    with rt.sessions.begin() as session:
        saved = session.get_one(ReceiptDelivery, row.id)
        saved.error = error
        if status in ("done", "partial", "failed"):
            saved.status, saved.note = status, note or saved.note
        if status == "done":
            saved.done_at = utcnow()
            # Receipts that waited for this one are settled with it: the store's order is paid now.
            session.execute(
                update(ReceiptDelivery)
                .where(
                    ReceiptDelivery.store_id == row.store_id,
                    ReceiptDelivery.order_external_id == row.order_external_id,
                    ReceiptDelivery.status == "partial",
                )
                .values(status="done", done_at=utcnow(), note=f"paid together with receipt {row.receipt_ref}")
            )
        slug = session.scalar(select(Store.slug).where(Store.id == row.store_id)) or str(row.store_id)
    if status != "retry":
        action = {"done": "receipt.paid", "partial": "receipt.partial", "failed": "receipt.failed"}[status]
        detail = {"receipt": row.receipt_ref, "amount": str(row.amount), "currency": row.currency}
        audit(rt, ACTOR, action, f"{slug} order {row.order_external_id}", {**detail, "note": error or note})


def _covered(rt: Runtime, row: ReceiptDelivery, currency: str) -> Decimal:
    """What the ERP's receipts of this order add up to (this one included), in the store's currency."""
    with rt.sessions() as session:
        found = session.execute(
            select(ReceiptDelivery.receipt_ref, ReceiptDelivery.amount, ReceiptDelivery.currency).where(
                ReceiptDelivery.store_id == row.store_id,
                ReceiptDelivery.order_external_id == row.order_external_id,
                ReceiptDelivery.status != "failed",
            )
        ).all()
    other = [f.receipt_ref for f in found if f.currency != currency]
    if other:
        raise StoreProblem(
            f"receipt(s) {', '.join(other)} are not in {currency}, the store order's currency: record them in "
            f"{currency} in the ERP, or mark the order paid in the store by hand"
        )
    return sum((Decimal(f.amount) for f in found), Decimal(0))


def _already_paid(rt: Runtime, row: ReceiptDelivery, shown: str) -> tuple[str, str]:
    if _bound_by_receipts(rt, row):
        return "done", f"the store shows the order {shown}: marked paid (an earlier try's answer was lost)"
    return "done", f"the store already shows the order {shown}: nothing to mark"


def _payments_key(row: ReceiptDelivery) -> str:
    return f"{(row.receipt or {}).get('order_ref')}:payments"


def _bound_by_receipts(rt: Runtime, row: ReceiptDelivery) -> bool:
    with rt.sessions() as session:
        erp_ref = session.scalar(
            select(ErpDocument.erp_ref).where(
                ErpDocument.store_id == row.store_id,
                ErpDocument.kind == "payments",
                ErpDocument.key == _payments_key(row),
            )
        )
    return bool(erp_ref and erp_ref.startswith("ERP receipts"))


def _bind_payments(rt: Runtime, row: ReceiptDelivery) -> None:
    """The order's money is in the ERP already (finance recorded it): the orders/paid webhook that follows
    the store's change must not book it a second time (connector.orders.lifecycle reads this binding)."""
    try:
        with rt.sessions.begin() as session:
            session.add(
                ErpDocument(
                    store_id=row.store_id,
                    order_external_id=row.order_external_id,
                    kind="payments",
                    key=_payments_key(row),
                    erp_ref=f"ERP receipts up to {row.receipt_ref}"[:255],
                )
            )
    except IntegrityError:
        pass  # bound already: by an earlier try, or the store's own payments were booked


class _Receipt(StoreRun):
    """A receipt on its way to its store (platforms.operations.ReceiptCore)."""

    def __init__(self, store: dict[str, Any], row: ReceiptDelivery):
        super().__init__(store, row.store_id, row.order_external_id, row.receipt_ref, row.receipt or {}, row.currency)
        self.row = row

    def covered(self, currency: str) -> Decimal:
        return _covered(self.rt, self.row, currency)

    def bind(self) -> None:
        _bind_payments(self.rt, self.row)

    def already_paid(self, shown: str) -> tuple[str, str]:
        return _already_paid(self.rt, self.row, shown)


def retry_failed(rt: Runtime) -> int:
    """Failed receipts get a fresh start on the next run."""
    with rt.sessions.begin() as session:
        return rowcount(
            session.execute(
                update(ReceiptDelivery).where(ReceiptDelivery.status == "failed").values(status="pending", attempts=0)
            )
        )
