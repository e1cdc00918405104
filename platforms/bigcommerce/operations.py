"""What the back office asks of a BigCommerce order.

- Paid: an order awaiting payment (cash on delivery, bank deposit) moves to Awaiting Fulfillment once the
  ERP's receipts cover its total, with a staff note naming the receipt.
- Refused parcel: an unpaid order is cancelled (status Cancelled, which BigCommerce restocks) with the
  staff note.
- Credit note: BigCommerce refunds through the order's payment provider after a refund quote; the
  connector does not refund by itself yet. A refund made in the control panel whose reason names the
  credit note is recognised and bound, so the ERP books no second credit note.
"""

from __future__ import annotations

from decimal import Decimal

from mappings.refund_notes import erp_refund_note, names_credit_note
from platforms.bigcommerce.api import BigCommerceClient
from platforms.operations import Outcome, ParcelCore, ReceiptCore, RefundCore, StoreProblem, cancelled_already, unpaid

PAID = {"captured", "paid", "partially refunded", "refunded"}
AWAITING_PAYMENT, AWAITING_FULFILLMENT, CANCELLED = 7, 11, 5


class BigCommerceOperations:
    def mark_paid(self, core: ReceiptCore) -> Outcome:
        client: BigCommerceClient = core.client()
        order = client.order_status(core.order_id)
        if order is None:
            raise StoreProblem(f"BigCommerce has no order {core.order_id} any more: the receipt stays in the ERP")
        if int(order.get("status_id") or 0) == CANCELLED:
            raise StoreProblem(
                f"the BigCommerce order {core.order_id} is cancelled: money received for it must be refunded; then "
                "run `connector sync-receipts --retry-failed`"
            )
        if (
            str(order.get("payment_status") or "").lower() in PAID
            or int(order.get("status_id") or 0) != AWAITING_PAYMENT
        ):
            return core.already_paid(str(order.get("payment_status") or order.get("status") or "paid").lower())
        currency = str(order.get("default_currency_code") or order.get("currency_code") or "")
        total = Decimal(str(order.get("total_inc_tax") or "0"))
        covered = core.covered(currency)
        if covered < total:
            return "partial", (
                f"the ERP's receipts add up to {covered} {currency} of the order's {total} {currency}: it is marked "
                "paid when the rest is received"
            )
        core.bind()
        note = f"Payment of {covered} {currency} received (ERP receipt {core.ref})."
        client.update_order(core.order_id, {"status_id": AWAITING_FULFILLMENT, "staff_notes": note})
        return "done", f"marked paid in BigCommerce (Awaiting Fulfillment): {covered} {currency} received"

    def cancel_refused(self, core: ParcelCore) -> Outcome:
        client: BigCommerceClient = core.client()
        order = client.order_status(core.order_id)
        if order is None:
            raise StoreProblem(f"BigCommerce has no order {core.order_id} any more: nothing to cancel")
        if int(order.get("status_id") or 0) == CANCELLED:
            return cancelled_already(core)
        cod = "cash on delivery" in str(order.get("payment_method") or "").lower()
        paid = str(order.get("payment_status") or "").lower() in PAID and not cod
        unpaid(core, str(order.get("payment_status")) if paid else "")
        core.bind()
        client.update_order(core.order_id, {"status_id": CANCELLED, "staff_notes": core.note})
        return "done", f"cancelled in BigCommerce, restocked ({core.note})"

    def refund(self, core: RefundCore) -> tuple[str, str]:
        client: BigCommerceClient = core.client()
        for made in client.refunds(core.order_id):
            if names_credit_note(str(made.get("reason") or ""), core.ref):
                core.bind(str(made["id"]))
                return str(made["id"]), f"refunded in BigCommerce: its refund {made['id']} carries the note"
        raise StoreProblem(
            f"credit note {core.ref}: the connector does not refund BigCommerce orders by itself yet. Refund order "
            f"{core.order_id} in the BigCommerce control panel with the reason '{erp_refund_note(core.ref)}', then "
            "run `connector sync-refunds --retry-failed` (the refund is recognised by its reason, not made twice)"
        )
