"""A credit note the ERP makes itself is refunded in the store once: Shopify refundCreate with the units
restocked where the ERP took them back, the money to the order's payment; a WooCommerce refund with its
lines, shipping and restock, through the order's gateway — and the store's webhook that follows (Shopify's
refunds/create, WooCommerce's order.updated) credits the ERP no second time. Over real HTTP against the fake
stores, through the queue."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import delete, select

from adapters.erp.sql_contract import erp_credit_notes
from connector.base.clients import sync_client
from connector.base.models import AuditEntry, ErpDocument, OfflineRefund, Store, SyncCursor
from connector.jobs import schedules, sync_refunds_job
from connector.setup.config_io import load_config
from connector.sync.erp_refunds import retry_failed, sync_refunds
from mappings.canonical import ErpRefund, ErpRefundLine, Money
from tests.conftest import load_fixture
from tests.fakes.shopify import FakeShopify
from tests.fakes.woocommerce import FakeWooCommerce
from tests.stack import STORE, WOO_STORE, Stack
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


def sync_dying_after_the_store_call(stack: Stack, slug: str) -> None:
    """A refunds sync whose worker dies right after the store made the refund, before anything is written down."""
    with stack.rt.sessions() as session:
        client = sync_client(stack.rt.store_info(session.scalars(select(Store).where(Store.slug == slug)).one()))
    create = client.create_refund

    def create_then_die(order: int | str, refund: dict) -> Any:
        create(order, refund)
        raise Crash()

    client.create_refund = create_then_die  # type: ignore[method-assign]
    with pytest.raises(Crash):
        sync_refunds(stack.rt)
    client.create_refund = create  # type: ignore[method-assign]


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
    sync_dying_after_the_store_call(stack, STORE)
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


# ---- WooCommerce ------------------------------------------------------------------------------------

SOAP = "SAV-MRS-300"  # order_cod_guest.json: 3 x 25.00 + 5.00 VAT (line 22140), shipping 4.90 + 0.98 VAT


def woo_order(stack: Stack, woo: FakeWooCommerce) -> tuple[int, str, int]:
    """The fixture order (50.78 EUR), paid by card, in the fake store and through the pipeline into the ERP;
    its soap is a product whose stock WooCommerce manages (7 on the shelf)."""
    soap = woo.add_product(SOAP, stock=7)
    doc = load_fixture("woocommerce", "order_cod_guest.json")
    doc.update(payment_method="stripe", payment_method_title="Card", date_paid_gmt="2026-11-22T08:41:29")
    doc["line_items"][0]["product_id"] = soap
    order_id = woo.add_order(doc=doc, modified=datetime.now(UTC) - timedelta(hours=1))  # before any refund
    configure(stack, woo=woo)
    assert stack.post_woocommerce(woo.orders[order_id], topic="order.created").status_code == 200
    stack.run_jobs()
    assert [e.status for e in stack.events()][-1] == "succeeded"
    return order_id, f"woocommerce:{WOO_STORE}:{order_id}", soap


def soap_back(order_ref: str, units: int = 1) -> ErpRefund:
    """The ERP's returns desk takes soaps back into stock and gives their price and the shipping back."""
    price, shipping = Money(Decimal("10.00") * units, "EUR"), Money(Decimal("5.88"), "EUR")
    return ErpRefund(
        ref="CN-88",
        order_ref=order_ref,
        lines=(ErpRefundLine(SOAP, units, price, True, ""),),
        shipping=shipping,
        total=price + shipping,
        created_at=AT,
        reason="returned at the Lyon shop",
    )


def woo_echo(stack: Stack, woo: FakeWooCommerce, order_id: int) -> None:
    """WooCommerce's order.updated for the order the refund changed (it lists the refund), through the pipeline."""
    before = len(stack.events())
    assert stack.post_woocommerce(woo.orders[order_id]).status_code == 200
    stack.run_jobs()
    assert [e.status for e in stack.events()[before:]] == ["succeeded"]  # a new version of the order, taken


def test_an_erp_credit_note_is_refunded_in_woocommerce_once_and_the_order_update_credits_nothing(
    stack: Stack, woo: FakeWooCommerce
) -> None:
    order_id, ref, soap = woo_order(stack, woo)
    add_offline_refund(stack, soap_back(ref))

    stack.rt.queue.enqueue(sync_refunds_job)
    stack.run_jobs()
    (refund,) = woo.refunds[order_id]
    assert (refund["amount"], refund["reason"], refund["refunded_payment"]) == (
        "15.88",
        "ERP credit note CN-88 - returned at the Lyon shop",
        True,
    )
    (line,) = refund["line_items"]  # one soap back, its 20 % VAT apart, on the order's soap line
    assert (line["sku"], line["quantity"], line["total"], line["total_tax"]) == (SOAP, -1, "-8.33", "-1.67")
    assert line["meta_data"][0]["value"] == "22140"
    (shipping,) = refund["shipping_lines"]
    assert (shipping["total"], shipping["total_tax"]) == ("-4.90", "-0.98")
    assert woo.stock_of(soap) == 8  # back on the shelf
    (row,) = rows(stack)
    assert (row.status, row.attempts, row.remote_id) == ("done", 1, str(refund["id"]))

    # WooCommerce tells of the refund in order.updated: the ERP has this credit note already.
    woo_echo(stack, woo, order_id)
    assert stack.erp_rows(erp_credit_notes) == []
    assert woo.hits["GET orders/<oid>/refunds/<rid>"] == 0  # bound: not even fetched
    # A refund made in the store afterwards is still credited (the binding is for ours only).
    woo.add_refund(order_id, "5.00", reason="goodwill", modified=datetime.now(UTC) + timedelta(minutes=1))
    woo_echo(stack, woo, order_id)
    assert len(stack.erp_rows(erp_credit_notes)) == 1

    with stack.rt.sessions.begin() as session:
        session.execute(delete(SyncCursor).where(SyncCursor.name == "erp:refunds"))
    replay = sync_refunds(stack.rt)
    assert (replay.read, replay.known, sum(replay.outcomes.values())) == (1, 1, 0)
    assert woo.hits["POST orders/<oid>/refunds"] == 1
    with stack.rt.sessions() as session:
        audited = session.scalars(select(AuditEntry).where(AuditEntry.actor == "erp:returns")).all()
        assert [(a.action, a.target) for a in audited] == [("erp_refund.refunded", f"{WOO_STORE} order {order_id}")]
        assert audited[0].detail["note"] == "refunded in WooCommerce: 15.88 EUR, 1 unit(s) restocked"


def test_a_crash_after_the_woocommerce_call_refunds_once_and_the_early_order_update_credits_nothing(
    stack: Stack, woo: FakeWooCommerce
) -> None:
    order_id, ref, soap = woo_order(stack, woo)
    add_offline_refund(stack, soap_back(ref))
    sync_dying_after_the_store_call(stack, WOO_STORE)
    (row,) = rows(stack)
    assert (row.status, row.attempts) == ("pending", 1)  # refunded in the store; we never wrote down that it was

    # order.updated comes before the sync runs again: the refund is fetched and recognised by its reason.
    woo_echo(stack, woo, order_id)
    assert stack.erp_rows(erp_credit_notes) == []
    assert "not credited again" in str(stack.events()[-1].result)

    assert sync_refunds(stack.rt).outcomes == {"done": 1}
    assert woo.hits["POST orders/<oid>/refunds"] == 1 and len(woo.refunds[order_id]) == 1
    assert woo.stock_of(soap) == 8
    (row,) = rows(stack)
    assert (row.status, row.attempts, row.remote_id) == ("done", 2, str(woo.refunds[order_id][0]["id"]))
    assert "refunded in WooCommerce already" in (row.note or "")
    with stack.rt.sessions() as session:
        (bound,) = session.scalars(select(ErpDocument).where(ErpDocument.kind == "credit_note")).all()
        assert (bound.key, bound.erp_ref) == (f"{ref}:refund:{row.remote_id}", "CN-88")


def test_a_gateway_that_declines_fails_the_refund_with_what_to_do_and_a_manual_refund_completes_it(
    sqlite_stack: Stack, woo: FakeWooCommerce
) -> None:
    stack = sqlite_stack
    order_id, ref, soap = woo_order(stack, woo)
    add_offline_refund(stack, soap_back(ref))
    woo.gateway_error = "The charge is older than 180 days and cannot be refunded."

    assert sync_refunds(stack.rt).outcomes == {"failed": 1}
    (row,) = rows(stack)
    error = row.error or ""
    assert "The charge is older than 180 days" in error
    assert "manual refund with the reason 'ERP credit note CN-88'" in error and "--retry-failed" in error
    assert woo.refunds[order_id] == [] and woo.stock_of(soap) == 7  # WooCommerce kept nothing of it
    with stack.rt.sessions() as session:
        (failed,) = session.scalars(select(AuditEntry).where(AuditEntry.action == "erp_refund.failed")).all()
        assert failed.detail["credit_note"] == "CN-88" and "180 days" in failed.detail["note"]

    # The merchant gives the money back another way and records it as the message says.
    manual = woo.add_refund(order_id, "15.88", reason="ERP credit note CN-88")
    assert retry_failed(stack.rt) == 1
    assert sync_refunds(stack.rt).outcomes == {"done": 1}
    (row,) = rows(stack)
    assert (row.status, row.remote_id) == ("done", str(manual))
    assert woo.hits["POST orders/<oid>/refunds"] == 1


def test_more_units_than_the_woocommerce_order_has_left_fail_before_any_refund(
    sqlite_stack: Stack, woo: FakeWooCommerce
) -> None:
    stack = sqlite_stack
    order_id, ref, _ = woo_order(stack, woo)
    add_offline_refund(stack, soap_back(ref, units=4))
    assert sync_refunds(stack.rt).outcomes == {"failed": 1}
    (row,) = rows(stack)
    assert "4 x SAV-MRS-300 is more than the order has left to refund of that SKU" in (row.error or "")
    assert woo.hits["POST orders/<oid>/refunds"] == 0
