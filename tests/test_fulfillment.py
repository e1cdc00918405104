"""ERP shipments back to the stores, once each: Shopify fulfillments with tracking, WooCommerce notes and
completion — over real HTTP against the fake stores, on both stacks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select

from connector.base.clients import sync_client
from connector.base.models import Fulfillment, Store, SyncCursor
from connector.jobs import sync_shipments_job
from connector.sync.fulfillment import retry_failed, sync_shipments
from platforms.shipping import note_text
from tests.conftest import load_fixture
from tests.fakes.shopify import FakeShopify
from tests.fakes.woocommerce import FakeWooCommerce
from tests.stack import STORE, WOO_STORE, Stack
from tests.storefronts import add_shipment, configure, map_locations

SHIPPED = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def shopify_order(
    stack: Stack, shop: FakeShopify, lines: list[tuple[str, int]], locations: list[int] | None = None
) -> tuple[int, str]:
    """An order in the fake shop, and its webhook through the pipeline (so the ERP has it, and the link)."""
    order_id = shop.add_order(lines, locations=locations)
    payload = load_fixture("shopify", "order_guest.json")  # KRT-COT-L-IND x 2, DUP-BLK-01 x 1
    payload["id"] = order_id
    assert stack.post_shopify(payload).status_code == 200
    stack.run_jobs()
    assert [e.status for e in stack.events()][-1] == "succeeded"
    return order_id, f"shopify:{STORE}:{order_id}"


def rows(stack: Stack) -> list[Fulfillment]:
    with stack.rt.sessions() as session:
        found = session.scalars(select(Fulfillment).order_by(Fulfillment.id)).all()
        session.expunge_all()
    return list(found)


def test_shopify_partial_shipment_then_the_rest(stack: Stack, shop: FakeShopify) -> None:
    shop.add_location("Main")
    shop.add_variants(["KRT-COT-L-IND", "DUP-BLK-01"])
    configure(stack, shop=shop)
    order_id, ref = shopify_order(stack, shop, [("KRT-COT-L-IND", 2), ("DUP-BLK-01", 1)])

    add_shipment(
        stack,
        "SHIP-1",
        ref,
        [("KRT-COT-L-IND", 1)],
        carrier="UPS",
        number="1Z0001",
        url="https://ups.test/1Z0001",
        warehouse="MAIN",
        at=SHIPPED,
    )
    first = sync_shipments(stack.rt)
    assert (first.read, first.recorded, first.outcomes["done"]) == (1, 1, 1)
    assert shop.orders[order_id]["fulfillment_status"] == "partial"

    add_shipment(
        stack,
        "SHIP-2",
        ref,
        [("KRT-COT-L-IND", 1), ("DUP-BLK-01", 1)],
        carrier="DHL",
        number="JD0002",
        url="https://dhl.test/JD0002",
        warehouse="MAIN",
        at=SHIPPED + timedelta(hours=3),
    )
    second = sync_shipments(stack.rt)
    assert (second.read, second.recorded, second.outcomes["done"]) == (1, 1, 1)

    made = shop.fulfillments_of(order_id)
    assert [
        (f["tracking_company"], f["tracking_number"], f["tracking_url"], f["notify_customer"], f["message"])
        for f in made
    ] == [
        ("UPS", "1Z0001", "https://ups.test/1Z0001", True, "shipment SHIP-1"),
        ("DHL", "JD0002", "https://dhl.test/JD0002", True, "shipment SHIP-2"),
    ]
    assert [sorted((li["sku"], li["quantity"]) for li in f["line_items"]) for f in made] == [
        [("KRT-COT-L-IND", 1)],
        [("DUP-BLK-01", 1), ("KRT-COT-L-IND", 1)],
    ]
    assert shop.orders[order_id]["fulfillment_status"] == "fulfilled"
    assert [(r.shipment_ref, r.status, r.attempts, r.remote_id) for r in rows(stack)] == [
        ("SHIP-1", "done", 1, f"gid://shopify/Fulfillment/{made[0]['id']}"),
        ("SHIP-2", "done", 1, f"gid://shopify/Fulfillment/{made[1]['id']}"),
    ]

    # Replays change nothing: the same run again, and the ERP cursor reset so every shipment is read again.
    calls = sum(shop.calls.values())
    again = sync_shipments(stack.rt)
    assert (again.read, again.recorded, sum(again.outcomes.values())) == (0, 0, 0)
    with stack.rt.sessions.begin() as session:
        session.execute(delete(SyncCursor).where(SyncCursor.name == "erp:shipments"))
    replay = sync_shipments(stack.rt)
    assert (replay.read, replay.recorded, replay.known, sum(replay.outcomes.values())) == (2, 0, 2, 0)
    assert sum(shop.calls.values()) == calls and len(shop.fulfillments_of(order_id)) == 2
    assert len(rows(stack)) == 2


def test_woocommerce_notes_each_shipment_and_completes_on_the_last(stack: Stack, woo: FakeWooCommerce) -> None:
    doc = load_fixture("woocommerce", "order_cod_guest.json")  # SAV-MRS-300 x 3, HUI-OLV-500 x 1
    order_id = woo.add_order(doc=doc)
    configure(stack, woo=woo, woo_settings={"notify_customer": False})  # (a Shopify setting: notes are always)
    assert stack.post_woocommerce(doc, topic="order.created").status_code == 200
    stack.run_jobs()
    ref = f"woocommerce:{WOO_STORE}:{order_id}"

    add_shipment(
        stack,
        "P-1",
        ref,
        [("SAV-MRS-300", 2)],
        carrier="UPS",
        number="1Z0001",
        url="https://ups.test/1Z0001",
        at=SHIPPED,
    )
    assert sync_shipments(stack.rt).outcomes["done"] == 1
    assert [n["note"] for n in woo.notes[order_id]] == [
        "Shipped 2 item(s) via UPS, tracking 1Z0001: https://ups.test/1Z0001"
    ]
    assert woo.notes[order_id][0]["customer_note"] is True
    assert woo.orders[order_id]["status"] == "processing"  # 1 of 3 SAV and the HUI still to ship

    add_shipment(
        stack,
        "P-2",
        ref,
        [("SAV-MRS-300", 1), ("HUI-OLV-500", 1)],
        carrier="DHL",
        number="JD0002",
        at=SHIPPED + timedelta(days=1),
    )
    stack.rt.queue.enqueue(sync_shipments_job)  # the scheduled job, through the queue (RQ on the PG stack)
    stack.run_jobs()
    assert [n["note"] for n in woo.notes[order_id]] == [
        "Shipped 2 item(s) via UPS, tracking 1Z0001: https://ups.test/1Z0001",
        "Shipped 2 item(s) via DHL, tracking JD0002.",
    ]
    assert woo.orders[order_id]["status"] == "completed"
    assert woo.hits["PUT orders/<oid>"] == 1

    hits = sum(woo.hits.values())
    with stack.rt.sessions.begin() as session:
        session.execute(delete(SyncCursor).where(SyncCursor.name == "erp:shipments"))
    replay = sync_shipments(stack.rt)
    assert (replay.read, replay.known, sum(replay.outcomes.values())) == (2, 2, 0)
    assert sum(woo.hits.values()) == hits and len(woo.notes[order_id]) == 2


def test_shopify_prefers_the_location_of_the_shipping_warehouse(sqlite_stack: Stack, shop: FakeShopify) -> None:
    stack = sqlite_stack
    east, west = shop.add_location("East"), shop.add_location("West")
    shop.add_variants(["KRT-COT-L-IND"])
    configure(stack, shop=shop)
    map_locations(stack, [(STORE, "East", "WH-E"), (STORE, "West", "WH-W, WH-W2")])
    # One unit to ship from each location (Shopify split the order over them).
    order_id, ref = shopify_order(stack, shop, [("KRT-COT-L-IND", 1), ("KRT-COT-L-IND", 1)], locations=[east, west])
    add_shipment(stack, "W-1", ref, [("KRT-COT-L-IND", 1)], number="W1", warehouse="WH-W2", at=SHIPPED)
    add_shipment(
        stack, "E-1", ref, [("KRT-COT-L-IND", 1)], number="E1", warehouse="WH-E", at=SHIPPED + timedelta(minutes=5)
    )
    assert sync_shipments(stack.rt).outcomes["done"] == 2
    assert [(f["tracking_number"], f["location_id"]) for f in shop.fulfillments_of(order_id)] == [
        ("W1", west),
        ("E1", east),
    ]


def test_shopify_fulfils_from_the_location_of_the_routed_warehouse_when_the_shipment_names_none(
    sqlite_stack: Stack, shop: FakeShopify
) -> None:
    stack = sqlite_stack
    east, west = shop.add_location("East"), shop.add_location("West")
    shop.add_variants(["KRT-COT-L-IND"])
    configure(stack, shop=shop, shopify_settings={"routing": {"by_destination": {"*": "WH-W"}}})
    map_locations(stack, [(STORE, "East", "WH-E"), (STORE, "West", "WH-W")])
    order_id, ref = shopify_order(stack, shop, [("KRT-COT-L-IND", 1), ("KRT-COT-L-IND", 1)], locations=[east, west])
    assert stack.erp_orders()[0].warehouse == "WH-W"
    add_shipment(stack, "S-1", ref, [("KRT-COT-L-IND", 1)], number="S1", at=SHIPPED)  # the ERP names no warehouse
    assert sync_shipments(stack.rt).outcomes["done"] == 1
    assert [(f["tracking_number"], f["location_id"]) for f in shop.fulfillments_of(order_id)] == [("S1", west)]


def test_failures_are_kept_retried_and_explained(sqlite_stack: Stack, shop: FakeShopify) -> None:
    stack = sqlite_stack
    shop.add_location("Main")
    shop.add_variants(["KRT-COT-L-IND", "DUP-BLK-01"])
    configure(stack, shop=shop, shopify_settings={"notify_customer": False})
    order_id, ref = shopify_order(stack, shop, [("KRT-COT-L-IND", 2), ("DUP-BLK-01", 1)])
    with stack.rt.sessions() as session:
        client = sync_client(stack.rt.store_info(session.scalars(select(Store).where(Store.slug == STORE)).one()))
    client.transport.sleep = lambda seconds: None  # the client's backoff between its own retries

    add_shipment(stack, "S-1", ref, [("KRT-COT-L-IND", 2)], carrier="UPS", number="1Z1", at=SHIPPED)
    add_shipment(stack, "S-BAD", ref, [("NOT-ORDERED", 1)], carrier="UPS", number="1Z2", at=SHIPPED)
    add_shipment(stack, "S-ELSE", "shopify:other-store:1", [("KRT-COT-L-IND", 1)], at=SHIPPED)
    shop.fail_next(8, status=503)  # the store is down for this run: every try of every call fails
    report = sync_shipments(stack.rt)
    assert report.unlinked == ["S-ELSE (shopify:other-store:1)"]
    assert report.outcomes == {"retry": 2}
    found = {r.shipment_ref: r for r in rows(stack)}
    assert (found["S-1"].status, found["S-1"].attempts) == ("pending", 1) and "503" in found["S-1"].error

    report = sync_shipments(stack.rt)  # the store is back
    assert report.outcomes == {"done": 1, "failed": 1}
    found = {r.shipment_ref: r for r in rows(stack)}
    assert (found["S-1"].status, found["S-1"].attempts, found["S-1"].error) == ("done", 2, None)
    assert found["S-BAD"].status == "failed" and "1 x NOT-ORDERED" in found["S-BAD"].error
    assert "Check the SKU mapping" in found["S-BAD"].error
    assert [(f["tracking_number"], f["notify_customer"]) for f in shop.fulfillments_of(order_id)] == [("1Z1", False)]
    assert sync_shipments(stack.rt).outcomes == {}  # a failed one waits for a person

    assert retry_failed(stack.rt) == 1
    assert sync_shipments(stack.rt).outcomes == {"failed": 1}  # still not in the order


def test_a_lost_answer_is_recognised_by_its_tracking_number(sqlite_stack: Stack, shop: FakeShopify) -> None:
    stack = sqlite_stack
    shop.add_location("Main")
    shop.add_variants(["KRT-COT-L-IND", "DUP-BLK-01"])
    configure(stack, shop=shop)
    order_id, ref = shopify_order(stack, shop, [("KRT-COT-L-IND", 2), ("DUP-BLK-01", 1)])
    add_shipment(stack, "S-1", ref, [("KRT-COT-L-IND", 2), ("DUP-BLK-01", 1)], carrier="UPS", number="1Z9", at=SHIPPED)
    sync_shipments(stack.rt)
    # As if the store had made the fulfillment but its answer never reached us: the row is pending again.
    with stack.rt.sessions.begin() as session:
        row = session.scalars(select(Fulfillment)).one()
        row.status, row.remote_id = "pending", None
    assert sync_shipments(stack.rt).outcomes == {"done": 1}
    assert len(shop.fulfillments_of(order_id)) == 1
    assert rows(stack)[0].remote_id.startswith("gid://shopify/Fulfillment/")


def test_note_text_without_tracking() -> None:
    assert note_text({"lines": [{"sku": "A", "quantity": 2}], "carrier": "Own van"}) == "Shipped 2 item(s) via Own van."
    assert (
        note_text(
            {"lines": [{"sku": "A", "quantity": 1}], "tracking_number": "X1", "tracking_url": "https://t.test/X1"}
        )
        == "Shipped 1 item(s), tracking X1: https://t.test/X1"
    )
