"""A COD parcel refused at the door cancels the store order, once, restocked and with the reason: Shopify's
orderCancel, WooCommerce's cancelled status — over real HTTP against the fake stores, through the queue, on
both stacks, the ERP the SQL staging tables."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import delete, select

from adapters.erp.sql_contract import erp_orders
from connector.base.clients import sync_client
from connector.base.models import AuditEntry, Store, SyncCursor, UndeliveredParcel
from connector.jobs import schedules, sync_undelivered_job
from connector.sync.receipts import sync_receipts
from connector.sync.undelivered import sync_undelivered
from tests.conftest import load_fixture
from tests.fakes.shopify import FakeShopify
from tests.fakes.woocommerce import FakeWooCommerce
from tests.stack import STORE, WOO_STORE, Stack
from tests.storefronts import add_receipt, add_undelivered, configure
from tests.test_api import SUPPORT, sign_in
from tests.test_receipts import Crash, cod_order

RETURNED = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


def rows(stack: Stack) -> list[UndeliveredParcel]:
    with stack.rt.sessions() as session:
        found = session.scalars(select(UndeliveredParcel).order_by(UndeliveredParcel.id)).all()
        session.expunge_all()
    return list(found)


def warehouse_audit(stack: Stack) -> list[tuple[str, str]]:
    with stack.rt.sessions() as session:
        return [
            (a.action, a.target)
            for a in session.scalars(
                select(AuditEntry).where(AuditEntry.actor == "erp:warehouse").order_by(AuditEntry.id)
            )
        ]


def erp_returned(stack: Stack, ref: str) -> None:
    """The ERP closes its side of the order itself: the goods are back, the order returned."""
    with stack.erp_engine.begin() as conn:
        conn.execute(erp_orders.update().where(erp_orders.c.external_ref == ref).values(status="returned"))


def erp_order(stack: Stack, ref: str) -> tuple:
    (row,) = [r for r in stack.erp_rows(erp_orders) if r.external_ref == ref]
    return row.status, row.cancel_reason, row.cancelled_at


def test_shopify_cod_parcel_refused_at_the_door_cancels_the_order_once(stack: Stack, shop: FakeShopify) -> None:
    order_id, ref, payload = cod_order(stack, shop)
    erp_returned(stack, ref)
    add_undelivered(stack, "RET-1", ref, "refused by the buyer", at=RETURNED)

    stack.rt.queue.enqueue(sync_undelivered_job)  # the scheduled job, through the queue (RQ on the PG stack)
    stack.run_jobs()
    (cancel,) = shop.cancelled
    assert (cancel["order_id"], cancel["reason"], cancel["restock"]) == (order_id, "DECLINED", True)
    assert cancel["staff_note"] == "Refused at the door: refused by the buyer (ERP return RET-1)"
    (row,) = rows(stack)
    assert (row.return_ref, row.status, row.attempts) == ("RET-1", "done", 1)
    assert "cancelled in Shopify, restocked" in row.note
    assert warehouse_audit(stack) == [("undelivered.cancelled", f"{STORE} order {order_id}")]

    # The store tells us the order is cancelled: the ERP, which closed the order itself, is left as it is.
    payload.update(
        cancelled_at="2026-11-26T09:05:00+00:00", cancel_reason="declined", updated_at="2026-11-26T09:05:00+00:00"
    )
    assert stack.post_shopify(payload, topic="orders/cancelled").status_code == 200
    stack.run_jobs()
    assert [e.status for e in stack.events()][-1] == "succeeded"
    assert erp_order(stack, ref) == ("returned", None, None)

    # Replays change nothing: the same run again, and the ERP cursor reset so the parcel is read again.
    again = sync_undelivered(stack.rt)
    assert (again.read, again.recorded, sum(again.outcomes.values())) == (0, 0, 0)
    with stack.rt.sessions.begin() as session:
        session.execute(delete(SyncCursor).where(SyncCursor.name == "erp:undelivered"))
    replay = sync_undelivered(stack.rt)
    assert (replay.read, replay.recorded, replay.known, sum(replay.outcomes.values())) == (1, 0, 1, 0)
    assert shop.calls["graphql:orderCancel"] == 1 and len(rows(stack)) == 1

    # The order's console page shows what the warehouse did; the audit log names it as the actor.
    support = sign_in(stack, SUPPORT, "support")
    page = support.get(f"/console/events/{stack.events()[0].id}").get_data(as_text=True)
    assert "RET-1" in page and "refused by the buyer" in page and "cancelled in Shopify" in page
    assert "erp:warehouse" in support.get("/console/audit").get_data(as_text=True)


def test_a_crash_after_the_store_call_cancels_once(stack: Stack, shop: FakeShopify) -> None:
    order_id, ref, _ = cod_order(stack, shop)
    add_undelivered(stack, "RET-1", ref, "refused", at=RETURNED)
    with stack.rt.sessions() as session:
        client = sync_client(stack.rt.store_info(session.scalars(select(Store).where(Store.slug == STORE)).one()))
    cancel = client.cancel_order

    def cancel_then_die(*args, **kwargs) -> bool:  # type: ignore[no-untyped-def]
        cancel(*args, **kwargs)
        raise Crash()

    client.cancel_order = cancel_then_die  # type: ignore[method-assign]
    with pytest.raises(Crash):
        sync_undelivered(stack.rt)
    (row,) = rows(stack)
    assert (row.status, row.attempts) == ("pending", 1)  # Shopify cancelled it; we never wrote down that it did
    client.cancel_order = cancel  # type: ignore[method-assign]

    assert sync_undelivered(stack.rt).outcomes == {"done": 1}
    assert [c["order_id"] for c in shop.cancelled] == [order_id] and shop.calls["graphql:orderCancel"] == 1
    (row,) = rows(stack)
    assert (row.status, row.attempts) == ("done", 2)
    assert "an earlier try's answer was lost" in row.note


def test_a_paid_order_is_refused_with_a_reason(sqlite_stack: Stack, shop: FakeShopify) -> None:
    stack = sqlite_stack
    order_id, ref, _ = cod_order(stack, shop)
    shop.orders[order_id]["financial_status"] = "paid"
    add_undelivered(stack, "RET-1", ref, "refused", at=RETURNED)
    assert sync_undelivered(stack.rt).outcomes == {"failed": 1}
    assert shop.cancelled == []
    (row,) = rows(stack)
    assert row.status == "failed" and "the order is paid (the store shows it paid)" in row.error
    assert [a for a, _ in warehouse_audit(stack)] == ["undelivered.failed"]


def test_an_order_finance_recorded_money_for_is_refused(sqlite_stack: Stack, shop: FakeShopify) -> None:
    stack = sqlite_stack
    order_id, ref, _ = cod_order(stack, shop)
    add_receipt(stack, "RC-1", ref, "3146.00", "INR", at=RETURNED)
    assert sync_receipts(stack.rt).outcomes == {"done": 1}
    shop.orders[order_id]["financial_status"] = "pending"  # a store that has not caught up: our record still counts
    add_undelivered(stack, "RET-1", ref, "refused", at=RETURNED)
    assert sync_undelivered(stack.rt).outcomes == {"failed": 1}
    assert shop.cancelled == [] and "finance's receipts RC-1" in rows(stack)[0].error


def test_woocommerce_cod_parcel_refused_is_cancelled_once(stack: Stack, woo: FakeWooCommerce) -> None:
    doc = load_fixture("woocommerce", "order_cod_guest.json")  # COD, processing (which sets date_paid)
    order_id = woo.add_order(doc=doc)
    woo.orders[order_id]["date_paid_gmt"] = "2026-11-20T10:00:00"
    configure(stack, woo=woo)
    assert stack.post_woocommerce(doc, topic="order.created").status_code == 200
    stack.run_jobs()
    ref = f"woocommerce:{WOO_STORE}:{order_id}"
    erp_returned(stack, ref)
    add_undelivered(stack, "RET-7", ref, "nobody home, refused on the second try", at=RETURNED)

    stack.rt.queue.enqueue(sync_undelivered_job)
    stack.run_jobs()
    assert woo.orders[order_id]["status"] == "cancelled"
    assert [(n["note"], n["customer_note"]) for n in woo.notes[order_id]] == [
        ("Refused at the door: nobody home, refused on the second try (ERP return RET-7)", False)
    ]
    assert rows(stack)[0].status == "done"

    # WooCommerce's order.updated that follows: the ERP's returned order is left as it is.
    doc.update(status="cancelled", date_modified_gmt="2026-11-26T09:05:00")
    assert stack.post_woocommerce(doc, topic="order.updated").status_code == 200
    stack.run_jobs()
    assert [e.status for e in stack.events()][-1] == "succeeded"
    assert erp_order(stack, ref) == ("returned", None, None)

    hits = sum(woo.hits.values())
    with stack.rt.sessions.begin() as session:
        session.execute(delete(SyncCursor).where(SyncCursor.name == "erp:undelivered"))
    replay = sync_undelivered(stack.rt)
    assert (replay.read, replay.known, sum(replay.outcomes.values())) == (1, 1, 0)
    assert sum(woo.hits.values()) == hits and len(woo.notes[order_id]) == 1


def test_the_scheduler_runs_the_undelivered_sync_unless_it_is_switched_off(sqlite_stack: Stack) -> None:
    stack = sqlite_stack
    configure(stack, erp={"undelivered_interval_minutes": 3})
    assert ("undelivered", sync_undelivered_job, (), 180) in schedules(stack.rt)
    configure(stack, erp={"undelivered_interval_minutes": 0})
    assert "undelivered" not in [name for name, *_ in schedules(stack.rt)]
