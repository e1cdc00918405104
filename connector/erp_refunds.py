"""Credit notes the ERP made itself (a return taken at the counter, a goodwill refund), refunded in the stores once.

A run reads the ERP's own refunds after the cursor "erp:refunds" (adapters.erp: `offline_refunds()`, never
the credit notes the connector wrote from store refunds) and records one `offline_refunds` row per (store,
credit note) — pending, with a copy of the credit note — before any store is called; the insert does
nothing when the row exists, so a replay or a reset cursor changes nothing. Then every pending row is
delivered:

- The store's refunds of the order are read first: one whose note (WooCommerce: reason) names the credit
  note ("ERP credit note CN-1") is ours from an earlier try whose answer was lost, and is not made again.
- Shopify: one `refundCreate` with the credit note's lines placed on the order's line items by SKU
  (restockType RETURN to the store location that sells from the line's warehouse — the `location`
  mapping — or NO_RESTOCK), the shipping given back, and one REFUND transaction of the credit note's total
  against the order's successful sale or capture (its gateway). notify is false: the ERP told the customer.
- WooCommerce: one `POST orders/<id>/refunds` (mappings.woo_refund_request): `amount` the credit note's
  total, the note as `reason`, the lines on the order's line items by SKU and the shipping on its shipping
  line, each with its tax, and `api_restock` when every returned unit came back into stock (WooCommerce
  restocks all refunded lines or none). An order deleted, another currency, more units, shipping or money
  than the order has left: failed, saying what to check. `api_refund` is true: the money goes back through the order's
  payment gateway, as Shopify's REFUND transaction does. A gateway that cannot refund (cash on delivery,
  bank transfer) or declines makes WooCommerce refuse and delete the refund; the row fails with what to
  do: give the money back another way, record it in WooCommerce as a manual refund whose reason is the
  note, then `connector sync-refunds --retry-failed` finds it by its reason and binds it.
- Once the store answers, the store refund is bound as the order's credit note (`erp_documents`, kind
  "credit_note", key "<order ref>:refund:<store refund id>" — the key connector.lifecycle gives the
  store's refunds of either platform — erp_ref the ERP's credit note), so the refunds/create webhook
  (WooCommerce: the order.updated that lists the refund) that follows writes no second credit note in the
  ERP. connector.lifecycle also recognises the note (Shopify's refund note, WooCommerce's reason), for a
  webhook that overtakes the binding (or a crash before it).

Every outcome is written to the audit log with the actor `erp:returns` and shown on the order's console
page. Failures are kept on the row like a receipt's: retryable ones are tried on the next run up to
CONNECTOR_MAX_ATTEMPTS, permanent ones wait for `connector sync-refunds --retry-failed`.
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
from adapters.shopify import numeric_id
from adapters.woocommerce import RefundRefused, WooClient
from connector.audit import audit
from connector.db import rowcount
from connector.fulfillment import FeedReport, attempt, claim, deliver_all, record_new, store_context
from connector.locations import LocationMap, store_locations
from connector.models import ErpDocument, OfflineRefund, Store
from connector.runtime import Runtime
from connector.stock import read_pages
from mappings.canonical import ErpRefund
from mappings.inventory import store_skus
from mappings.refund_notes import erp_refund_note, names_credit_note
from mappings.woo_refund_request import Unplaceable, woo_refund

log = logging.getLogger(__name__)

REFUND_CURSOR = "erp:refunds"
ACTOR = "erp:returns"  # who the audit log says acted: the ERP's returns desk
PAGE = 500
PAID_KINDS = {"SALE", "CAPTURE"}


class RefundProblem(Exception):
    """What the store cannot take as it is: a person must act (the message says what)."""


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
        to_store = _to_shopify if store["info"].platform == "shopify" else _to_woo
        remote, note = to_store(rt, store, row)
        made.append(remote)
        return "done", note

    status, note, error = attempt(
        rt, row, f"ERP refund {row.refund_ref}", "connector sync-refunds", RefundProblem, work
    )
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
    (connector.lifecycle reads this binding before it writes a credit note)."""
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


def _bind(rt: Runtime, row: OfflineRefund, store_refund_id: str) -> None:
    order_ref = str((row.refund or {}).get("order_ref"))
    key = f"{order_ref}:refund:{numeric_id(store_refund_id)}"
    bind_store_refund(rt, row.store_id, row.order_external_id, key, row.refund_ref)


def _to_shopify(rt: Runtime, store: dict[str, Any], row: OfflineRefund) -> tuple[str, str]:
    client, refund = store["client"], row.refund or {}
    facts = client.order_refunds(row.order_external_id)
    if facts is None:
        raise RefundProblem(
            f"Shopify has no order {row.order_external_id} any more: credit note {row.refund_ref} stays in the ERP; "
            "refund the customer another way"
        )
    for made in facts["refunds"]:
        if names_credit_note(made["note"], row.refund_ref):
            _bind(rt, row, made["id"])
            return str(made["id"]), "refunded in Shopify (an earlier try's answer was lost)"
    if facts["currency"] != row.currency:
        raise RefundProblem(
            f"credit note {row.refund_ref} is in {row.currency}, the Shopify order in {facts['currency']}: credit "
            f"it in {facts['currency']} in the ERP, or refund the customer in Shopify by hand"
        )
    lines = _refund_lines(rt, store, row, refund, facts["lines"])
    total, shipping = Decimal(refund.get("total") or "0"), Decimal(refund.get("shipping") or "0")
    wanted: dict[str, Any] = {
        "note": erp_refund_note(row.refund_ref, str(refund.get("reason") or "")),
        "notify": False,
        "refundLineItems": lines,
    }
    if shipping > 0:
        wanted["shipping"] = {"amount": str(shipping)}
    if total > 0:
        wanted["transactions"] = [_transaction(row, facts["transactions"], total)]
    made = client.create_refund(row.order_external_id, wanted)
    _bind(rt, row, made)
    restocked = sum(int(li["quantity"]) for li in lines if li["restockType"] != "NO_RESTOCK")
    return made, f"refunded in Shopify: {total} {row.currency}, {restocked} unit(s) restocked"


def _transaction(row: OfflineRefund, transactions: list[dict], total: Decimal) -> dict:
    paid = [t for t in transactions if t["kind"] in PAID_KINDS and t["status"] == "SUCCESS"]
    parent = max((t for t in paid if t["amount"] >= total), key=lambda t: t["amount"], default=None)
    if parent is None:
        raise RefundProblem(
            f"credit note {row.refund_ref}: Shopify order {row.order_external_id} has no payment of at least {total} "
            f"{row.currency} to refund it to; refund the customer in Shopify by hand, then mark it done by "
            "running `connector sync-refunds --retry-failed` once the store shows the refund with the note "
            f"'{erp_refund_note(row.refund_ref)}'"
        )
    return {
        "orderId": f"gid://shopify/Order/{row.order_external_id}",
        "parentId": parent["id"],
        "gateway": parent["gateway"],
        "kind": "REFUND",
        "amount": str(total),
    }


def _refund_lines(
    rt: Runtime, store: dict[str, Any], row: OfflineRefund, refund: dict, order_lines: list[dict]
) -> list[dict]:
    """The credit note's units placed on the order's line items by SKU, restocked at the store location
    that sells from the line's warehouse."""
    left = {li["id"]: li["refundable"] for li in order_lines}
    out: list[dict] = []
    for line in refund.get("lines") or []:
        need = int(line["quantity"])
        if need <= 0:
            continue  # money only: it travels in the transaction
        skus = set(store_skus(line["sku"], store["sku_map"]))
        location = _location(rt, store, row, line) if line.get("restock") else None
        for li in order_lines:
            take = min(need, left[li["id"]]) if li["sku"] in skus else 0
            if take > 0:
                entry = {
                    "lineItemId": li["id"],
                    "quantity": take,
                    "restockType": "RETURN" if location else "NO_RESTOCK",
                }
                if location:
                    entry["locationId"] = f"gid://shopify/Location/{location}"
                out.append(entry)
                left[li["id"]] -= take
                need -= take
        if need:
            raise RefundProblem(
                f"credit note {row.refund_ref}: {line['quantity']} x {line['sku']} is more than the Shopify order "
                f"{row.order_external_id} has left to refund of that SKU; check the SKU mapping on /config#skus or "
                "whether the store refunded it already, then run `connector sync-refunds --retry-failed`"
            )
    return out


def _location(rt: Runtime, store: dict[str, Any], row: OfflineRefund, line: dict) -> str:
    if "locations" not in store:
        store["locations"] = store_locations(store["rt"], store["info"], store["client"])
    locations: LocationMap = store["locations"]
    found = (
        locations.for_warehouse(line.get("warehouse") or "") if line.get("warehouse") else list(locations.warehouses)
    )
    if not found:
        raise RefundProblem(
            f"credit note {row.refund_ref}: no Shopify location sells from warehouse {line.get('warehouse')!r}, so "
            "the returned units have nowhere to go: map it on /config#locations, then run "
            "`connector sync-refunds --retry-failed`"
        )
    return found[0]


def _to_woo(rt: Runtime, store: dict[str, Any], row: OfflineRefund) -> tuple[str, str]:
    client: WooClient = store["client"]
    order = client.find_order(row.order_external_id)
    if order is None:
        raise RefundProblem(
            f"WooCommerce has no order {row.order_external_id} any more: credit note {row.refund_ref} stays in the "
            "ERP; refund the customer another way"
        )
    earlier = client.order_refunds(row.order_external_id)
    for made in earlier:
        if names_credit_note(str(made.get("reason") or ""), row.refund_ref):
            _bind(rt, row, str(made["id"]))
            return str(made["id"]), (
                f"refunded in WooCommerce already: its refund {made['id']} carries the note (an earlier try's answer "
                "was lost, or it was refunded by hand)"
            )
    currency = str(order.get("currency") or "")
    if currency != row.currency:
        raise RefundProblem(
            f"credit note {row.refund_ref} is in {row.currency}, the WooCommerce order in {currency}: credit it in "
            f"{currency} in the ERP, or refund the customer in WooCommerce by hand"
        )
    credit = row.refund or {}
    try:
        wanted = woo_refund(
            credit, order, earlier, store["sku_map"], erp_refund_note(row.refund_ref, str(credit.get("reason") or ""))
        )
    except Unplaceable as exc:
        raise RefundProblem(
            f"credit note {row.refund_ref}, WooCommerce order {row.order_external_id}: {exc}; then run "
            "`connector sync-refunds --retry-failed`"
        ) from None
    try:
        made = client.create_refund(row.order_external_id, wanted.body)
    except RefundRefused as exc:
        raise RefundProblem(
            f"{exc}. Credit note {row.refund_ref} is not refunded: if the order's payment gateway cannot refund "
            "(cash on delivery, bank transfer) or declined, give the money back another way, record it in "
            f"WooCommerce as a manual refund with the reason '{erp_refund_note(row.refund_ref)}', then run "
            "`connector sync-refunds --retry-failed` (the refund is recognised by its reason, not made twice)"
        ) from None
    remote = str(made["id"])
    _bind(rt, row, remote)
    note = f"refunded in WooCommerce: {wanted.body['amount']} {row.currency}, {wanted.restocked} unit(s) restocked"
    if wanted.restocked < wanted.units:
        note += (
            f"; {wanted.units - wanted.restocked} not restocked in the store (WooCommerce restocks every refunded "
            "line or none): the ERP's stock reaches it with the next stock sync"
        )
    if wanted.unitemised:
        note += f"; {wanted.unitemised} {row.currency} of shipping refunded in the amount only (no shipping line)"
    return remote, note


def retry_failed(rt: Runtime) -> int:
    """Failed ERP refunds get a fresh start on the next run."""
    with rt.sessions.begin() as session:
        return rowcount(
            session.execute(
                update(OfflineRefund).where(OfflineRefund.status == "failed").values(status="pending", attempts=0)
            )
        )
