"""What the back office asks of a WooCommerce order: mark it paid, cancel a refused parcel, refund a credit note.

- Paid: WooCommerce has no outstanding amount, so the receipts must cover the order total. A private
  note names the receipt (an identical note is not added twice), then `set_paid` (pending or failed
  orders) or status `processing` (on-hold, e.g. waiting for a bank transfer), both of which set its
  date_paid; an order already processing or completed keeps its status, with the note.
- Refused parcel: paid means a payment date on an order that is not cash on delivery (WooCommerce's COD
  gateway moves orders to processing, which sets the payment date without any money received). A private
  note, then status cancelled, which puts the stock back.
- Credit note: the order's refunds are read first (one whose reason names the credit note is ours); then
  one `POST orders/<id>/refunds` (platforms.woocommerce.refund_request) with `api_refund` (the money goes back
  through the gateway) and `api_restock` when every returned unit came back into stock (WooCommerce
  restocks every refunded line or none). A gateway that cannot refund makes WooCommerce refuse it.
"""

from __future__ import annotations

from decimal import Decimal

from mappings.refund_notes import erp_refund_note, names_credit_note
from platforms.operations import Outcome, ParcelCore, ReceiptCore, RefundCore, StoreProblem, cancelled_already, unpaid
from platforms.woocommerce.api import RefundRefused, WooClient
from platforms.woocommerce.refund_request import Unplaceable, woo_refund

CLOSED = {"cancelled", "refunded", "trash"}  # no payment can be taken for these
GONE = {"refunded", "trash"}  # no cancelling these


class WooOperations:
    def mark_paid(self, core: ReceiptCore) -> Outcome:
        client: WooClient = core.client()
        order = client.order(core.order_id)
        if order.get("date_paid_gmt"):
            return core.already_paid("paid")
        status = str(order.get("status") or "")
        if status in CLOSED:
            raise StoreProblem(
                f"the WooCommerce order {core.order_id} is {status}: money received for it must be refunded "
                "or the order re-opened; then run `connector sync-receipts --retry-failed`"
            )
        currency, total = str(order.get("currency") or ""), Decimal(str(order.get("total") or "0"))
        covered = core.covered(currency)
        if covered < total:
            return "partial", (
                f"the ERP's receipts add up to {covered} {currency} of the order's {total} {currency}: it is marked "
                "paid when the rest is received"
            )
        core.bind()
        reference = core.document.get("reference")
        text = f"Payment of {covered} {currency} received (ERP receipt {core.ref}"
        text += f", reference {reference})." if reference else ")."
        client.add_note(core.order_id, text, customer_note=False)  # an identical note is not added twice
        if status in ("pending", "failed"):
            client.set_paid(core.order_id)
            return "done", f"marked paid in WooCommerce (set_paid): {covered} {currency} received"
        if status == "on-hold":
            client.set_status(core.order_id, "processing")
            return "done", f"marked paid in WooCommerce (on-hold to processing): {covered} {currency} received"
        return "done", (
            f"noted on the WooCommerce order ({status}, whose payment date WooCommerce sets only on the way to "
            f"processing): {covered} {currency} received"
        )

    def cancel_refused(self, core: ParcelCore) -> Outcome:
        client: WooClient = core.client()
        order = client.order(core.order_id)
        status = str(order.get("status") or "")
        if status in GONE:
            raise StoreProblem(
                f"the WooCommerce order {core.order_id} is {status}: it is not cancelled; check it by hand"
            )
        if status == "cancelled":
            return cancelled_already(core)
        cod = str(order.get("payment_method") or "") == "cod"
        unpaid(core, "paid" if order.get("date_paid_gmt") and not cod else "")
        core.bind()
        client.cancel_order(core.order_id, core.note)
        return "done", f"cancelled in WooCommerce, restocked ({core.note})"

    def refund(self, core: RefundCore) -> tuple[str, str]:
        client: WooClient = core.client()
        order = client.find_order(core.order_id)
        if order is None:
            raise StoreProblem(
                f"WooCommerce has no order {core.order_id} any more: credit note {core.ref} stays in the "
                "ERP; refund the customer another way"
            )
        earlier = client.order_refunds(core.order_id)
        for made in earlier:
            if names_credit_note(str(made.get("reason") or ""), core.ref):
                core.bind(str(made["id"]))
                return str(made["id"]), (
                    f"refunded in WooCommerce already: its refund {made['id']} carries the note (an earlier try's "
                    "answer was lost, or it was refunded by hand)"
                )
        currency = str(order.get("currency") or "")
        if currency != core.currency:
            raise StoreProblem(
                f"credit note {core.ref} is in {core.currency}, the WooCommerce order in {currency}: credit it in "
                f"{currency} in the ERP, or refund the customer in WooCommerce by hand"
            )
        credit = dict(core.document)
        note = erp_refund_note(core.ref, str(credit.get("reason") or ""))
        try:
            wanted = woo_refund(credit, order, earlier, dict(core.sku_map()), note)
        except Unplaceable as exc:
            raise StoreProblem(
                f"credit note {core.ref}, WooCommerce order {core.order_id}: {exc}; then run "
                "`connector sync-refunds --retry-failed`"
            ) from None
        try:
            made = client.create_refund(core.order_id, wanted.body)
        except RefundRefused as exc:
            raise StoreProblem(
                f"{exc}. Credit note {core.ref} is not refunded: if the order's payment gateway cannot refund "
                "(cash on delivery, bank transfer) or declined, give the money back another way, record it in "
                f"WooCommerce as a manual refund with the reason '{erp_refund_note(core.ref)}', then run "
                "`connector sync-refunds --retry-failed` (the refund is recognised by its reason, not made twice)"
            ) from None
        remote = str(made["id"])
        core.bind(remote)
        text = f"refunded in WooCommerce: {wanted.body['amount']} {core.currency}, {wanted.restocked} unit(s) restocked"
        if wanted.restocked < wanted.units:
            text += (
                f"; {wanted.units - wanted.restocked} not restocked in the store (WooCommerce restocks every "
                "refunded line or none): the ERP's stock reaches it with the next stock sync"
            )
        if wanted.unitemised:
            text += f"; {wanted.unitemised} {core.currency} of shipping refunded in the amount only (no shipping line)"
        return remote, text
