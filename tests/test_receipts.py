"""Money finance records in the ERP marks the store order paid, once: Shopify orderMarkAsPaid, WooCommerce's
paid status — over real HTTP against the fake stores, through the queue, on both stacks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, select

from adapters.erp.sql_contract import erp_payments
from connector.base.clients import sync_client
from connector.base.models import AuditEntry, ReceiptDelivery, Store, SyncCursor
from connector.jobs import schedules, sync_receipts_job
from connector.sync.receipts import sync_receipts
from tests.conftest import load_fixture
from tests.fakes.shopify import FakeShopify
from tests.fakes.woocommerce import FakeWooCommerce
from tests.stack import STORE, WOO_STORE, Stack
from tests.storefronts import add_receipt, configure
from tests.test_api import SUPPORT, sign_in

RECEIVED = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


class Crash(BaseException):
    """The worker process dies here: nothing after this point runs, nothing is caught."""


def cod_order(stack: Stack, shop: FakeShopify) -> tuple[int, str, dict]:
    """A cash-on-delivery order waiting for its money, in the fake shop and through the pipeline into the ERP."""
    shop.add_location("Main")
    shop.add_variants(["KRT-COT-L-IND", "DUP-BLK-01"])
    configure(stack, shop=shop)
    order_id = shop.add_order([("KRT-COT-L-IND", 2), ("DUP-BLK-01", 1)], financial_status="pending")
    payload = load_fixture("shopify", "order_guest.json")  # COD, pending, 3146.00 INR
    payload["id"] = order_id
    shop.orders[order_id].update(currency="INR", total_price=payload["total_price"])
    assert stack.post_shopify(payload).status_code == 200
    stack.run_jobs()
    assert [e.status for e in stack.events()][-1] == "succeeded"
    return order_id, f"shopify:{STORE}:{order_id}", payload


def rows(stack: Stack) -> list[ReceiptDelivery]:
    with stack.rt.sessions() as session:
        found = session.scalars(select(ReceiptDelivery).order_by(ReceiptDelivery.id)).all()
        session.expunge_all()
    return list(found)


def finance_audit(stack: Stack) -> list[tuple[str, str]]:
    with stack.rt.sessions() as session:
        return [
            (a.action, a.target)
            for a in session.scalars(
                select(AuditEntry).where(AuditEntry.actor == "erp:finance").order_by(AuditEntry.id)
            )
        ]


def test_shopify_cod_order_is_marked_paid_once_when_finance_records_the_money(stack: Stack, shop: FakeShopify) -> None:
    order_id, ref, payload = cod_order(stack, shop)
    add_receipt(stack, "RC-1", ref, "3146.00", "INR", at=RECEIVED, reference="COLL-77")

    stack.rt.queue.enqueue(sync_receipts_job)  # the scheduled job, through the queue (RQ on the PG stack)
    stack.run_jobs()
    assert shop.marked_paid == [order_id]
    assert shop.orders[order_id]["financial_status"] == "paid"
    (row,) = rows(stack)
    assert (row.receipt_ref, row.status, row.attempts) == ("RC-1", "done", 1)
    assert "marked paid in Shopify" in row.note
    assert finance_audit(stack) == [("receipt.paid", f"{STORE} order {order_id}")]

    # The store tells us the order is paid now: the ERP, which has the money already, books no second payment.
    payload.update(financial_status="paid", updated_at="2026-11-25T11:00:00+00:00")
    assert stack.post_shopify(payload, topic="orders/paid").status_code == 200
    stack.run_jobs()
    assert [e.status for e in stack.events()][-1] == "succeeded"
    assert stack.erp_rows(erp_payments) == []

    # Replays change nothing: the same run again, and the ERP cursor reset so the receipt is read again.
    again = sync_receipts(stack.rt)
    assert (again.read, again.recorded, sum(again.outcomes.values())) == (0, 0, 0)
    with stack.rt.sessions.begin() as session:
        session.execute(delete(SyncCursor).where(SyncCursor.name == "erp:receipts"))
    replay = sync_receipts(stack.rt)
    assert (replay.read, replay.recorded, replay.known, sum(replay.outcomes.values())) == (1, 0, 1, 0)
    assert shop.calls["graphql:orderMarkAsPaid"] == 1 and len(rows(stack)) == 1

    # The order's console page shows what finance did; the audit log names finance as the actor.
    support = sign_in(stack, SUPPORT, "support")
    page = support.get(f"/console/events/{stack.events()[0].id}").get_data(as_text=True)
    assert "RC-1" in page and "COLL-77" in page and "marked paid in Shopify" in page
    assert "erp:finance" in support.get("/console/audit").get_data(as_text=True)


def test_a_crash_after_the_store_call_marks_it_paid_once(stack: Stack, shop: FakeShopify) -> None:
    order_id, ref, _ = cod_order(stack, shop)
    add_receipt(stack, "RC-1", ref, "3146.00", "INR", at=RECEIVED)
    with stack.rt.sessions() as session:
        client = sync_client(stack.rt.store_info(session.scalars(select(Store).where(Store.slug == STORE)).one()))
    mark = client.mark_as_paid

    def mark_then_die(order: int | str) -> str:
        mark(order)
        raise Crash()

    client.mark_as_paid = mark_then_die  # type: ignore[method-assign]
    with pytest.raises(Crash):
        sync_receipts(stack.rt)
    (row,) = rows(stack)
    assert (row.status, row.attempts) == ("pending", 1)  # Shopify marked it; we never wrote down that it did
    client.mark_as_paid = mark  # type: ignore[method-assign]

    assert sync_receipts(stack.rt).outcomes == {"done": 1}
    assert shop.marked_paid == [order_id] and shop.calls["graphql:orderMarkAsPaid"] == 1
    (row,) = rows(stack)
    assert (row.status, row.attempts) == ("done", 2)
    assert "an earlier try's answer was lost" in row.note


def test_a_part_payment_waits_for_the_rest(sqlite_stack: Stack, shop: FakeShopify) -> None:
    stack = sqlite_stack
    order_id, ref, _ = cod_order(stack, shop)
    add_receipt(stack, "RC-1", ref, "1000.00", "INR", at=RECEIVED)
    assert sync_receipts(stack.rt).outcomes == {"partial": 1}
    assert shop.marked_paid == [] and shop.orders[order_id]["financial_status"] == "pending"
    (first,) = rows(stack)
    assert first.status == "partial" and "1000.0000 INR of 3146.00 INR outstanding" in first.note

    add_receipt(stack, "RC-2", ref, "2146.00", "INR", at=RECEIVED + timedelta(days=1))
    assert sync_receipts(stack.rt).outcomes == {"done": 1}
    assert shop.marked_paid == [order_id]
    assert [(r.receipt_ref, r.status) for r in rows(stack)] == [("RC-1", "done"), ("RC-2", "done")]
    assert rows(stack)[0].note == "paid together with receipt RC-2"
    assert [a for a, _ in finance_audit(stack)] == ["receipt.partial", "receipt.paid"]


def test_an_order_paid_in_the_store_meanwhile_is_not_marked_again(sqlite_stack: Stack, shop: FakeShopify) -> None:
    stack = sqlite_stack
    order_id, ref, _ = cod_order(stack, shop)
    shop.orders[order_id]["financial_status"] = "paid"  # staff marked it paid by hand
    add_receipt(stack, "RC-1", ref, "3146.00", "INR", at=RECEIVED)
    assert sync_receipts(stack.rt).outcomes == {"done": 1}
    assert shop.calls["graphql:orderMarkAsPaid"] == 0
    assert "already shows the order paid: nothing to mark" in rows(stack)[0].note


def test_a_receipt_in_another_currency_fails_with_a_reason(sqlite_stack: Stack, shop: FakeShopify) -> None:
    stack = sqlite_stack
    order_id, ref, _ = cod_order(stack, shop)
    add_receipt(stack, "RC-1", ref, "40.00", "USD", at=RECEIVED)
    add_receipt(stack, "RC-ELSE", "shopify:other-store:1", "1.00", "USD", at=RECEIVED)
    report = sync_receipts(stack.rt)
    assert report.outcomes == {"failed": 1} and report.unlinked == ["RC-ELSE (shopify:other-store:1)"]
    (row,) = rows(stack)
    assert row.status == "failed" and "not in INR, the store order's currency" in row.error
    assert shop.marked_paid == []


def test_woocommerce_bank_transfer_on_hold_is_marked_paid_once(stack: Stack, woo: FakeWooCommerce) -> None:
    doc = load_fixture("woocommerce", "order_cod_guest.json")  # 50.78 EUR
    doc.update(status="on-hold", payment_method="bacs", payment_method_title="Direct bank transfer")
    order_id = woo.add_order(doc=doc)
    configure(stack, woo=woo)
    assert stack.post_woocommerce(doc, topic="order.created").status_code == 200
    stack.run_jobs()
    ref = f"woocommerce:{WOO_STORE}:{order_id}"
    add_receipt(stack, "BANK-9", ref, "50.78", "EUR", at=RECEIVED, reference="SEPA-123")

    stack.rt.queue.enqueue(sync_receipts_job)
    stack.run_jobs()
    order = woo.orders[order_id]
    assert order["status"] == "processing" and order["date_paid_gmt"]
    assert [n["note"] for n in woo.notes[order_id]] == [
        "Payment of 50.7800 EUR received (ERP receipt BANK-9, reference SEPA-123)."
    ]
    assert woo.notes[order_id][0]["customer_note"] is False
    assert rows(stack)[0].status == "done"

    hits = sum(woo.hits.values())
    with stack.rt.sessions.begin() as session:
        session.execute(delete(SyncCursor).where(SyncCursor.name == "erp:receipts"))
    replay = sync_receipts(stack.rt)
    assert (replay.read, replay.known, sum(replay.outcomes.values())) == (1, 1, 0)
    assert sum(woo.hits.values()) == hits and len(woo.notes[order_id]) == 1


def test_woocommerce_pending_order_is_set_paid(sqlite_stack: Stack, woo: FakeWooCommerce) -> None:
    stack = sqlite_stack
    doc = load_fixture("woocommerce", "order_cod_guest.json")
    doc.update(status="pending")
    order_id = woo.add_order(doc=doc)
    configure(stack, woo=woo, woo_settings={"import_statuses": ["pending", "processing", "on-hold", "completed"]})
    assert stack.post_woocommerce(doc, topic="order.created").status_code == 200
    stack.run_jobs()
    add_receipt(stack, "COD-1", f"woocommerce:{WOO_STORE}:{order_id}", "50.78", "EUR", at=RECEIVED)
    assert sync_receipts(stack.rt).outcomes == {"done": 1}
    assert woo.orders[order_id]["status"] == "processing" and woo.orders[order_id]["date_paid_gmt"]
    assert "set_paid" in rows(stack)[0].note


def test_the_scheduler_runs_the_receipts_sync_unless_it_is_switched_off(sqlite_stack: Stack) -> None:
    stack = sqlite_stack
    configure(stack, erp={"receipts_interval_minutes": 2})
    assert ("receipts", sync_receipts_job, (), 120) in schedules(stack.rt)
    configure(stack, erp={"receipts_interval_minutes": 0})
    assert "receipts" not in [name for name, *_ in schedules(stack.rt)]
