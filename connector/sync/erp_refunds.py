"""Credit notes the ERP made itself (a return taken at the counter, a goodwill refund), refunded in the stores once.

A run reads the ERP's own refunds after the cursor "erp:refunds" (adapters.erp: `offline_refunds()`, never
the credit notes the connector wrote from store refunds) and records one `offline_refunds` row per (store,
credit note) — pending, with a copy of the credit note — before any store is called; the insert does
nothing when the row exists, so a replay or a reset cursor changes nothing. Then every pending row is
delivered:

- The store's refunds of the order are read first: one whose note names the credit note ("ERP credit note
  CN-1") is ours from an earlier try whose answer was lost, and is not made again.
- Then the store makes one refund of the credit note's lines (placed on the order's line items by SKU,
  restocked where the credit note says so), its shipping and its total, back through the order's payment:
  how is the platform's (platforms/<name>/operations.py: e.g. a refund with a transaction back to the
  order's payment). An order deleted, another
  currency, more units, shipping or money than the order has left, a gateway that cannot refund: failed,
  saying what to check and do.
- Once the store answers, the store refund is bound as the order's credit note (`erp_documents`, kind
  "credit_note", key "<order ref>:refund:<store refund id>" — the key connector.orders.lifecycle gives the
  store's refunds of either platform — erp_ref the ERP's credit note), so the refunds/create webhook
  (or the order update that lists the refund) that follows writes no second credit note in the
  ERP. connector.orders.lifecycle also recognises the note (a refund's note or reason), for a
  webhook that overtakes the binding (or a crash before it).

Every outcome is written to the audit log with the actor `erp:returns` and shown on the order's console
page. Failures are kept on the row like a receipt's: retryable ones are tried on the next run up to
CONNECTOR_MAX_ATTEMPTS, permanent ones wait for `connector sync-refunds --retry-failed`.
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
from connector.base.models import ErpDocument, OfflineRefund, Store
from connector.base.runtime import Runtime
from connector.base.stock import read_pages
from connector.sync.fulfillment import FeedReport, StoreRun, attempt, claim, deliver_all, record_new, store_context
from mappings.canonical import ErpRefund
from platforms.operations import StoreProblem
from platforms.registry import platform

log = logging.getLogger(__name__)

REFUND_CURSOR = "erp:refunds"
ACTOR = "erp:returns"  # who the audit log says acted: the ERP's returns desk
PAGE = 500


@dataclass
class RefundReport(FeedReport):
    def headline(self) -> str:
        return (
            f"refunds: {self.read} read, {self.recorded} new, {self.known} already known; refunded "
            f"{self.outcomes['done']}, to retry {self.outcomes['retry']}, failed {self.outcomes['failed']}; "
            f"{self.seconds:.2f} s"
        )


def sync_refunds(rt: Runtime) -> RefundReport:
    began = time.monotonic()
    report = RefundReport()
    read_pages(rt, REFUND_CURSOR, rt.erp().offline_refunds, lambda found: _record(rt, found, report), PAGE)
    deliver_all(rt, OfflineRefund, deliver, report)
    report.seconds = time.monotonic() - began
    return report


# ---- reading --------------------------------------------------------------------------------------


def refund_json(r: ErpRefund) -> dict:
    return {
        "ref": r.ref,
        "order_ref": r.order_ref,
        "currency": r.total.currency,
        "shipping": str(r.shipping.amount),
        "total": str(r.total.amount),
        "reason": r.reason,
        "created_at": r.created_at.isoformat(),
        "lines": [
            {
                "sku": ln.sku,
                "quantity": ln.quantity,
                "amount": str(ln.amount.amount),
                "restock": ln.restock,
                "warehouse": ln.warehouse,
            }
            for ln in r.lines
        ],
    }


def _record(rt: Runtime, refunds: list[ErpRefund], report: RefundReport) -> None:
    record_new(
        rt,
        OfflineRefund,
        "refund_ref",
        refunds,
        lambda r: {"amount": r.total.amount, "currency": r.total.currency, "refund": refund_json(r)},
        report,
    )


# ---- delivering -----------------------------------------------------------------------------------


def deliver(
    rt: Runtime, row_id: int, context: dict[int, dict[str, Any]], report: RefundReport | None = None
) -> str | None:
    row = claim(rt, OfflineRefund, row_id)
    if row is None:
        return None
    made: list[str] = []  # the store's refund id, once refundCreate answered

    def work() -> tuple[str, str]:
        store = store_context(rt, row.store_id, context)
        remote, note = platform(store["info"].platform).operations.refund(_Credit(store, row))
        made.append(remote)
        return "done", note

    status, note, error = attempt(rt, row, f"ERP refund {row.refund_ref}", "connector sync-refunds", StoreProblem, work)
    remote = made[0] if made else None
    _save(rt, row, status, note, remote, error)
    if error and report is not None:
        report.errors.append(f"{row.refund_ref}: {error}")
    log.info("ERP refund %s to store %s: %s (%s)", row.refund_ref, row.store_id, status, error or note)
    return status


def _save(rt: Runtime, row: OfflineRefund, status: str, note: str, remote: str | None, error: str | None) -> None:
    with rt.sessions.begin() as session:
        saved = session.get_one(OfflineRefund, row.id)
        saved.error = error
        if status in ("done", "failed"):
            saved.status, saved.note = status, note or saved.note
        if status == "done":
            saved.done_at, saved.remote_id = utcnow(), remote
        slug = session.scalar(select(Store.slug).where(Store.id == row.store_id)) or str(row.store_id)
    if status != "retry":
        detail = {"credit_note": row.refund_ref, "amount": str(row.amount), "currency": row.currency}
        action = "erp_refund.refunded" if status == "done" else "erp_refund.failed"
        audit(rt, ACTOR, action, f"{slug} order {row.order_external_id}", {**detail, "note": error or note})


def bind_store_refund(rt: Runtime, store_id: int, order_external_id: str, key: str, erp_ref: str) -> None:
    """The store refund is the ERP's own credit note: the refunds/create webhook must not credit it again
    (connector.orders.lifecycle reads this binding before it writes a credit note)."""
    try:
        with rt.sessions.begin() as session:
            session.add(
                ErpDocument(
                    store_id=store_id,
                    order_external_id=order_external_id,
                    kind="credit_note",
                    key=key,
                    erp_ref=erp_ref,
                )
            )
    except IntegrityError:
        pass  # bound already: by an earlier try, or by the webhook that recognised our note


class _Credit(StoreRun):
    """An ERP credit note on its way to its store (platforms.operations.RefundCore)."""

    def __init__(self, store: dict[str, Any], row: OfflineRefund):
        super().__init__(store, row.store_id, row.order_external_id, row.refund_ref, row.refund or {}, row.currency)
        self.row = row

    def bind(self, store_refund_id: str) -> None:
        order_ref = str(self.document.get("order_ref"))
        key = f"{order_ref}:refund:{store_refund_id}"
        bind_store_refund(self.rt, self.row.store_id, self.row.order_external_id, key, self.row.refund_ref)


def retry_failed(rt: Runtime) -> int:
    """Failed ERP refunds get a fresh start on the next run."""
    with rt.sessions.begin() as session:
        return rowcount(
            session.execute(
                update(OfflineRefund).where(OfflineRefund.status == "failed").values(status="pending", attempts=0)
            )
        )
