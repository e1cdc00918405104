"""What the back office asks of a Shopify order: mark it paid, cancel a refused parcel, refund a credit note.

- Paid: `orderMarkAsPaid` pays the whole outstanding amount, so the order is marked only when the ERP's
  receipts together cover what is outstanding; until then the receipt is "partial".
- Refused parcel: paid means a financial status other than pending (a COD order waits for its money with
  nothing authorised or captured). `orderCancel` with reason DECLINED, restock and the staff note.
- Credit note: the order's refunds are read first (one whose note names the credit note is ours, from an
  attempt whose answer was lost); then one `refundCreate` with the lines placed on the order's line items
  by SKU (restockType RETURN to the location that sells from the line's warehouse, or NO_RESTOCK), the
  shipping, and one REFUND transaction of the total against the order's successful sale or capture.
  notify is false: the ERP told the customer.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from mappings.refund_notes import erp_refund_note, names_credit_note
from platforms.operations import Outcome, ParcelCore, ReceiptCore, RefundCore, StoreProblem, cancelled_already, unpaid
from platforms.shopify.api import ShopifyClient, numeric_id

PAID = {"PAID", "PARTIALLY_REFUNDED", "REFUNDED"}
UNPAID = {"PENDING"}
PAID_KINDS = {"SALE", "CAPTURE"}


class ShopifyOperations:
    def mark_paid(self, core: ReceiptCore) -> Outcome:
        client: ShopifyClient = core.client()
        state = client.order_payment(core.order_id)
        if state is None:
            raise StoreProblem(
                f"Shopify has no order {core.order_id} any more: the receipt stays in the ERP; nothing to mark"
            )
        if state["cancelled"]:
            raise StoreProblem(
                f"the Shopify order {core.order_id} is cancelled: money received for it must be refunded or "
                "the order re-created in Shopify; then run `connector sync-receipts --retry-failed`"
            )
        financial = str(state["financial_status"])
        outstanding, currency = state["outstanding"]
        if financial in PAID or outstanding <= 0:
            return core.already_paid(financial.lower().replace("_", " "))
        covered = core.covered(currency)
        if covered < outstanding:
            return "partial", (
                f"the ERP's receipts add up to {covered} {currency} of {outstanding} {currency} outstanding: Shopify "
                "can only mark the whole amount paid, so the order is marked when the rest is received"
            )
        core.bind()
        shown = client.mark_as_paid(core.order_id)
        return "done", f"marked paid in Shopify ({shown.lower()}): {covered} {currency} received"

    def cancel_refused(self, core: ParcelCore) -> Outcome:
        client: ShopifyClient = core.client()
        state = client.order_payment(core.order_id)
        if state is None:
            raise StoreProblem(f"Shopify has no order {core.order_id} any more: nothing to cancel")
        paid = str(state["financial_status"])
        if state["cancelled"]:
            return cancelled_already(core)
        unpaid(core, "" if paid in UNPAID else paid.lower().replace("_", " "))
        core.bind()
        client.cancel_order(core.order_id, core.note, notify=core.notify_customer, reason="DECLINED")
        return "done", f"cancelled in Shopify, restocked ({core.note})"

    def refund(self, core: RefundCore) -> tuple[str, str]:
        client: ShopifyClient = core.client()
        refund = core.document
        facts = client.order_refunds(core.order_id)
        if facts is None:
            raise StoreProblem(
                f"Shopify has no order {core.order_id} any more: credit note {core.ref} stays in the ERP; "
                "refund the customer another way"
            )
        for made in facts["refunds"]:
            if names_credit_note(made["note"], core.ref):
                core.bind(str(numeric_id(made["id"])))
                return str(made["id"]), "refunded in Shopify (an earlier try's answer was lost)"
        if facts["currency"] != core.currency:
            raise StoreProblem(
                f"credit note {core.ref} is in {core.currency}, the Shopify order in {facts['currency']}: credit "
                f"it in {facts['currency']} in the ERP, or refund the customer in Shopify by hand"
            )
        lines = _refund_lines(core, facts["lines"])
        total, shipping = Decimal(refund.get("total") or "0"), Decimal(refund.get("shipping") or "0")
        wanted: dict[str, Any] = {
            "note": erp_refund_note(core.ref, str(refund.get("reason") or "")),
            "notify": False,
            "refundLineItems": lines,
        }
        if shipping > 0:
            wanted["shipping"] = {"amount": str(shipping)}
        if total > 0:
            wanted["transactions"] = [_transaction(core, facts["transactions"], total)]
        made = client.create_refund(core.order_id, wanted)
        core.bind(str(numeric_id(made)))
        restocked = sum(int(li["quantity"]) for li in lines if li["restockType"] != "NO_RESTOCK")
        return made, f"refunded in Shopify: {total} {core.currency}, {restocked} unit(s) restocked"


def _transaction(core: RefundCore, transactions: list[dict], total: Decimal) -> dict:
    paid = [t for t in transactions if t["kind"] in PAID_KINDS and t["status"] == "SUCCESS"]
    parent = max((t for t in paid if t["amount"] >= total), key=lambda t: t["amount"], default=None)
    if parent is None:
        raise StoreProblem(
            f"credit note {core.ref}: Shopify order {core.order_id} has no payment of at least {total} "
            f"{core.currency} to refund it to; refund the customer in Shopify by hand, then mark it done by "
            "running `connector sync-refunds --retry-failed` once the store shows the refund with the note "
            f"'{erp_refund_note(core.ref)}'"
        )
    return {
        "orderId": f"gid://shopify/Order/{core.order_id}",
        "parentId": parent["id"],
        "gateway": parent["gateway"],
        "kind": "REFUND",
        "amount": str(total),
    }


def _refund_lines(core: RefundCore, order_lines: list[dict]) -> list[dict]:
    """The credit note's units placed on the order's line items by SKU, restocked at the store location
    that sells from the line's warehouse."""
    left = {li["id"]: li["refundable"] for li in order_lines}
    out: list[dict] = []
    for line in core.document.get("lines") or []:
        need = int(line["quantity"])
        if need <= 0:
            continue  # money only: it travels in the transaction
        skus = core.store_skus(line["sku"])
        location = _location(core, line) if line.get("restock") else None
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
            raise StoreProblem(
                f"credit note {core.ref}: {line['quantity']} x {line['sku']} is more than the Shopify order "
                f"{core.order_id} has left to refund of that SKU; check the SKU mapping on /config#skus or "
                "whether the store refunded it already, then run `connector sync-refunds --retry-failed`"
            )
    return out


def _location(core: RefundCore, line: dict) -> str:
    found = core.locations_for(line.get("warehouse") or None)
    if not found:
        raise StoreProblem(
            f"credit note {core.ref}: no Shopify location sells from warehouse {line.get('warehouse')!r}, so "
            "the returned units have nowhere to go: map it on /config#locations, then run "
            "`connector sync-refunds --retry-failed`"
        )
    return found[0]
