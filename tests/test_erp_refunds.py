"""A credit note the ERP makes itself is refunded in the store once: Shopify refundCreate with the units
restocked where the ERP took them back, the money to the order's payment — and the store's refunds/create
webhook that follows credits the ERP no second time. Over real HTTP against the fake shop, through the queue."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import delete, select

from adapters.erp.sql_contract import erp_credit_notes
from connector.clients import sync_client
from connector.config_io import load_config
from connector.erp_refunds import sync_refunds
from connector.jobs import schedules, sync_refunds_job
from connector.models import AuditEntry, ErpDocument, OfflineRefund, Store, SyncCursor
from mappings.canonical import ErpRefund, ErpRefundLine, Money
from tests.conftest import load_fixture
from tests.fakes.shopify import FakeShopify
from tests.stack import STORE, Stack
from tests.storefronts import add_offline_refund, configure, map_locations
from tests.test_api import SUPPORT, sign_in

AT = datetime(2026, 11, 27, 15, 0, tzinfo=UTC)
SKU = "KRT-COT-L-IND"


class Crash(BaseException):
    """The worker process dies here: nothing after this point runs, nothing is caught."""


def paid_order(stack: Stack, shop: FakeShopify) -> tuple[int, str, int]:
    """A paid order of 2 x KRT-COT-L-IND and 1 x DUP-BLK-01 in the fake shop and through the pipeline into the
    ERP; the warehouse LON sells for the shop's London location."""
    shop.add_location("Main")
    london = shop.add_location("London")
    shop.add_variants([SKU, "DUP-BLK-01"])
    configure(stack, shop=shop)
    map_locations(stack, [(STORE, str(london), "LON")])
    order_id = shop.add_order([(SKU, 2), ("DUP-BLK-01", 1)], financial_status="paid")
    payload = load_fixture("shopify", "order_guest.json")  # 3146.00 INR
    payload.update(id=order_id, financial_status="paid")
    shop.orders[order_id].update(currency="INR", total_price=payload["total_price"])
    assert stack.post_shopify(payload).status_code == 200
    stack.run_jobs()
    assert [e.status for e in stack.events()][-1] == "succeeded"
    return order_id, f"shopify:{STORE}:{order_id}", london


def one_unit_back(order_ref: str, ref: str = "CN-77") -> ErpRefund:
    """The ERP's returns desk takes 1 of the 2 units back into LON and gives its price back."""
    amount = Money(Decimal("1199.00"), "INR")
    return ErpRefund(
        ref=ref,
        order_ref=order_ref,
        lines=(ErpRefundLine(SKU, 1, amount, True, "LON"),),
        shipping=Money(Decimal(0), "INR"),
        total=amount,
        created_at=AT,
        reason="returned at the London shop",
    )


def rows(stack: Stack) -> list[OfflineRefund]:
    with stack.rt.sessions() as session:
        found = session.scalars(select(OfflineRefund).order_by(OfflineRefund.id)).all()
        session.expunge_all()
    return list(found)


def echo(stack: Stack, shop: FakeShopify, refund_id: str) -> None:
    """Shopify's refunds/create webhook for the refund the connector made, through the pipeline."""
    assert stack.post_shopify(shop.refund_payload(refund_id), topic="refunds/create").status_code == 200
    stack.run_jobs()
    assert [e.status for e in stack.events()][-1] == "succeeded"


def test_an_erp_credit_note_is_refunded_in_shopify_once_and_its_webhook_credits_nothing(
    stack: Stack, shop: FakeShopify
) -> None:
    order_id, ref, london = paid_order(stack, shop)
    add_offline_refund(stack, one_unit_back(ref))
    item = shop.variant_by_sku(SKU).inventory_item_id
    before = shop.level(item, london) or 0

    stack.rt.queue.enqueue(sync_refunds_job)  # the scheduled job, through the queue (RQ on the PG stack)
    stack.run_jobs()
    (refund,) = shop.orders[order_id]["refunds"]
    (line,) = refund["refund_line_items"]
    assert (line["quantity"], line["restock_type"], line["location_id"]) == (1, "return", london)
    assert line["line_item"]["sku"] == SKU and shop.level(item, london) == before + 1
    (tx,) = refund["transactions"]
    assert (tx["kind"], tx["amount"], tx["currency"]) == ("refund", "1199.00", "INR")
    assert refund["note"] == "ERP credit note CN-77 - returned at the London shop"
    (row,) = rows(stack)
    assert (row.refund_ref, row.status, row.attempts, row.remote_id) == (
        "CN-77",
        "done",
        1,
        refund["admin_graphql_api_id"],
    )

    # Shopify tells us of the refund: the ERP has this credit note already and gets no second one.
    echo(stack, shop, refund["admin_graphql_api_id"])
    assert stack.erp_rows(erp_credit_notes) == []
    assert "not credited again" in str(stack.events()[-1].result)

    # Replays change nothing: the same run again, and the ERP cursor reset so the credit note is read again.
    again = sync_refunds(stack.rt)
    assert (again.read, again.recorded, sum(again.outcomes.values())) == (0, 0, 0)
    with stack.rt.sessions.begin() as session:
        session.execute(delete(SyncCursor).where(SyncCursor.name == "erp:refunds"))
    replay = sync_refunds(stack.rt)
    assert (replay.read, replay.recorded, replay.known, sum(replay.outcomes.values())) == (1, 0, 1, 0)
    assert shop.calls["graphql:refundCreate"] == 1 and len(shop.orders[order_id]["refunds"]) == 1

    with stack.rt.sessions() as session:
        audited = session.scalars(select(AuditEntry).where(AuditEntry.actor == "erp:returns")).all()
        assert [(a.action, a.target) for a in audited] == [("erp_refund.refunded", f"{STORE} order {order_id}")]
    # The order's console page shows what the ERP's returns desk did.
    page = sign_in(stack, SUPPORT, "support").get(f"/console/events/{stack.events()[0].id}").get_data(as_text=True)
    assert "CN-77" in page and "refunded in Shopify: 1199.0000 INR, 1 unit(s) restocked" in page


def test_a_crash_after_the_store_call_refunds_once_and_the_early_webhook_credits_nothing(
    stack: Stack, shop: FakeShopify
) -> None:
    order_id, ref, _ = paid_order(stack, shop)
    add_offline_refund(stack, one_unit_back(ref))
    with stack.rt.sessions() as session:
        client = sync_client(stack.rt.store_info(session.scalars(select(Store).where(Store.slug == STORE)).one()))
    create = client.create_refund

    def create_then_die(order: int | str, refund: dict) -> str:
        create(order, refund)
        raise Crash()

    client.create_refund = create_then_die  # type: ignore[method-assign]
    with pytest.raises(Crash):
        sync_refunds(stack.rt)
    client.create_refund = create  # type: ignore[method-assign]
    (row,) = rows(stack)
    assert (row.status, row.attempts) == ("pending", 1)  # Shopify refunded; we never wrote down that it did
    with stack.rt.sessions() as session:
        assert session.scalars(select(ErpDocument).where(ErpDocument.kind == "credit_note")).all() == []

    # The webhook comes before the sync runs again: recognised by its note, not credited.
    (refund,) = shop.orders[order_id]["refunds"]
    echo(stack, shop, refund["admin_graphql_api_id"])
    assert stack.erp_rows(erp_credit_notes) == []

    assert sync_refunds(stack.rt).outcomes == {"done": 1}
    assert shop.calls["graphql:refundCreate"] == 1 and len(shop.orders[order_id]["refunds"]) == 1
    (row,) = rows(stack)
    assert (row.status, row.attempts) == ("done", 2) and "an earlier try's answer was lost" in (row.note or "")


def test_a_warehouse_no_location_sells_from_fails_with_what_to_do(sqlite_stack: Stack, shop: FakeShopify) -> None:
    stack = sqlite_stack
    order_id, ref, _ = paid_order(stack, shop)
    refund = one_unit_back(ref)
    line = refund.lines[0]
    add_offline_refund(
        stack,
        ErpRefund(
            refund.ref, ref, (ErpRefundLine(SKU, 1, line.amount, True, "PAR"),), refund.shipping, refund.total, AT
        ),
    )
    assert sync_refunds(stack.rt).outcomes == {"failed": 1}
    (row,) = rows(stack)
    assert "no Shopify location sells from warehouse 'PAR'" in (row.error or "") and "/config#locations" in (
        row.error or ""
    )
    assert shop.orders[order_id]["refunds"] == []


def test_the_scheduler_runs_the_refunds_sync_unless_it_is_switched_off(sqlite_stack: Stack) -> None:
    stack = sqlite_stack
    configure(stack, erp={"refunds_interval_minutes": 3})
    assert ("refunds", sync_refunds_job, (), 180) in schedules(stack.rt)
    configure(stack, erp={"refunds_interval_minutes": 0})
    assert "refunds" not in [name for name, *_ in schedules(stack.rt)]
    # Tryton's returns are read too (adapters/erp/tryton.py): its refunds sync is scheduled like any ERP's.
    tryton = {"kind": "tryton", "url": "http://127.0.0.1:9", "database": "erp", "username": "connector"}
    load_config(stack.rt, json.dumps({"erp": {**tryton, "password": "not-used", "refunds_interval_minutes": 3}}))
    assert ("refunds", sync_refunds_job, (), 180) in schedules(stack.rt)
