"""What the back office asks of a Magento order.

- Paid: an order not yet invoiced (cash on delivery, bank transfer, check: Magento invoices them by hand,
  and may ship them first) gets a history comment naming the receipt once the ERP's receipts cover its
  grand total, once (a comment naming the receipt already is an earlier try's); the invoice that captures
  it stays the merchant's to make in Magento (an offline invoice needs no gateway).
- Refused parcel: an unpaid order is cancelled (Magento puts the stock back) with the staff note.
- Credit note: Magento refunds by credit memo against an invoice, online through the gateway or offline;
  the connector does not make credit memos yet. One whose comment names the credit note is recognised.
"""

from __future__ import annotations

from decimal import Decimal

from mappings.refund_notes import erp_refund_note, names_credit_note
from platforms.magento.api import MagentoClient
from platforms.operations import Outcome, ParcelCore, ReceiptCore, RefundCore, StoreProblem, cancelled_already, unpaid


class MagentoOperations:
    def mark_paid(self, core: ReceiptCore) -> Outcome:
        client: MagentoClient = core.client()
        order = client.order(core.order_id)
        if order is None:
            raise StoreProblem(f"Magento has no order {core.order_id} any more: the receipt stays in the ERP")
        if order.get("state") in ("canceled", "closed"):
            raise StoreProblem(
                f"the Magento order {core.order_id} is {order.get('state')}: money received for it must be refunded; "
                "then run `connector sync-receipts --retry-failed`"
            )
        currency, total = str(order.get("base_currency_code") or ""), Decimal(str(order.get("base_grand_total") or 0))
        if Decimal(str(order.get("base_total_paid") or 0)) >= total > 0:  # invoiced: Magento shows it paid
            return core.already_paid("invoiced")
        mark = f"(ERP receipt {core.ref}"
        if any(mark in str(h.get("comment") or "") for h in order.get("status_histories") or []):
            return "done", "noted on the Magento order already (an earlier try's answer was lost)"
        covered = core.covered(currency)
        if covered < total:
            return "partial", (
                f"the ERP's receipts add up to {covered} {currency} of the order's {total} {currency}: it is noted "
                "when the rest is received"
            )
        core.bind()
        # A comment is not idempotent: the next try finds this one by the receipt's ref (above).
        client.add_comment(core.order_id, f"Payment of {covered} {currency} received {mark}).")
        return "done", f"noted on the Magento order (invoice it there to capture): {covered} {currency} received"

    def cancel_refused(self, core: ParcelCore) -> Outcome:
        client: MagentoClient = core.client()
        order = client.order(core.order_id)
        if order is None:
            raise StoreProblem(f"Magento has no order {core.order_id} any more: nothing to cancel")
        if order.get("state") == "canceled":
            return cancelled_already(core)
        cod = str((order.get("payment") or {}).get("method") or "") == "cashondelivery"
        paid = Decimal(str(order.get("base_total_paid") or 0)) > 0 and not cod
        unpaid(core, "paid" if paid else "")
        core.bind()
        if not client.cancel(core.order_id):
            raise StoreProblem(
                f"Magento would not cancel order {core.order_id} (invoiced or shipped already): cancel it by hand, "
                "then run `connector sync-undelivered --retry-failed`"
            )
        client.add_comment(core.order_id, core.note)
        return "done", f"cancelled in Magento, restocked ({core.note})"

    def refund(self, core: RefundCore) -> tuple[str, str]:
        client: MagentoClient = core.client()
        for memo in client.creditmemos(core.order_id):
            said = " ".join(str(c.get("comment") or "") for c in memo.get("comments") or [])
            if names_credit_note(said, core.ref):
                core.bind(str(memo["entity_id"]))
                return str(
                    memo["entity_id"]
                ), f"refunded in Magento: credit memo {memo.get('increment_id')} carries the note"
        raise StoreProblem(
            f"credit note {core.ref}: the connector does not make Magento credit memos yet. Make one for order "
            f"{core.order_id} in Magento's admin with the comment '{erp_refund_note(core.ref)}', then run "
            "`connector sync-refunds --retry-failed` (it is recognised by its comment, not made twice)"
        )
