"""Stock back to the stores: what each may sell, written only where it differs, within the stores' limits.

Over real HTTP against the fake Shopify and WooCommerce (tests/fakes), whose counters are the
evidence; the stack-based tests run on SQLite + the embedded queue and on PostgreSQL + Redis + RQ.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import requests
from sqlalchemy import delete, select

from connector.base.clients import sync_client
from connector.base.models import InboxEvent, PushedLevel, StockMirror, Store, SyncCursor
from connector.base.runtime import Runtime
from connector.base.stock import read_erp_stock
from connector.jobs import queue_inventory_sync, schedules, store_job, sync_inventory_job, sync_shipments_job
from connector.sync import variants
from connector.sync.inventory import sync_inventory
from mappings.inventory import StockRow, location_target, parse_warehouses, sellable, store_skus
from platforms.shopify.api import numeric_id
from tests.conftest import load_fixture
from tests.fakes.shopify import FakeShopify
from tests.fakes.woocommerce import FakeWooCommerce
from tests.stack import STORE, WOO_SECRET, WOO_STORE, Stack
from tests.storefronts import Served, configure, fake_woo, map_locations, map_priorities, set_erp_stock, store_id

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)  # when the ERP counted: before the fixture orders
SET = "graphql:inventorySetQuantities"


def info(rt: Runtime, sid: int):  # type: ignore[no-untyped-def]
    with rt.sessions() as session:
        return rt.store_info(session.get(Store, sid))


def pushed(rt: Runtime, sid: int) -> dict[tuple[str, str], PushedLevel]:
    with rt.sessions() as session:
        rows = session.scalars(select(PushedLevel).where(PushedLevel.store_id == sid)).all()
        session.expunge_all()
    return {(r.sku, r.location): r for r in rows}


# ---- the formula (pure) -----------------------------------------------------------------------------


def test_the_formula_worked_example():
    # docs/stock-and-shipments.md's example: 10 on hand, 2 safety stock, 60/40 shares -> 4 and 3; the 10th unit
    # goes to nobody.
    assert [sellable(Decimal(10), Decimal(0), Decimal(2), Decimal(s)) for s in ("0.6", "0.4")] == [4, 3]
    rows = [StockRow("MAIN", Decimal(10), T0), StockRow("OUTLET", Decimal(4), T0 + timedelta(hours=1))]
    orders = [(1, T0 + timedelta(minutes=30)), (2, T0 + timedelta(hours=2)), (5, T0 - timedelta(days=1))]
    # MAIN alone: counted at T0, so the orders at T0+30min and T0+2h are not in its figure yet.
    assert location_target(rows, frozenset({"MAIN"}), orders, Decimal(2), Decimal("0.4")) == 2  # (10-3-2)*0.4
    # both warehouses: the newest count is T0+1h, which includes the T0+30min order.
    assert location_target(rows, None, orders, Decimal(2), Decimal(1)) == 10  # 14-2-2
    assert location_target(rows, frozenset({"ELSEWHERE"}), orders, Decimal(0), Decimal(1)) is None
    assert sellable(Decimal(3), Decimal(5), Decimal(0)) == 0  # never negative


def test_sku_and_warehouse_tables_read_from_the_erp_side():
    table = {"SHIRT-RED": "A100", "A100": "A100-OLD", "MUG": "MUG"}
    assert store_skus("A100", table) == ["SHIRT-RED"]  # the store's A100 is mapped elsewhere
    assert store_skus("A100-OLD", table) == ["A100-OLD", "A100"]
    assert store_skus("MUG", table) == ["MUG"] and store_skus("PLAIN", table) == ["PLAIN"]
    assert parse_warehouses(" WH1, WH2 ") == frozenset({"WH1", "WH2"})
    assert parse_warehouses("*") is None and parse_warehouses("") is None


# ---- batching: calls = ceil(changes / batch limit) ---------------------------------------------------


def test_10000_skus_over_two_locations_3_percent_changed(
    stack: Stack, shop: FakeShopify, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The sync looks 30 s further back than its last run (rows committed while it started); this test's
    # runs are seconds apart, so without this every SKU of the first run would be recomputed (and found
    # unchanged) — here we want to see the incremental selection itself.
    monkeypatch.setattr("connector.sync.inventory.OVERLAP", timedelta(0))
    shop.set_budget(100_000, 10_000)  # a roomy bucket: this test is about batching (the bench is about the budget)
    east, west = shop.add_location("East"), shop.add_location("West")
    skus = [f"SKU-{n:05d}" for n in range(10_000)]
    shop.add_variants(skus, available=0)
    configure(stack, shop=shop)
    map_locations(stack, [(STORE, str(east), "WH-E"), (STORE, "West", "WH-W")])  # by id or by name
    set_erp_stock(stack, [(s, w, 5 + n % 7, T0) for n, s in enumerate(skus) for w in ("WH-E", "WH-W")])
    sid = store_id(stack, STORE)
    rt = stack.rt

    # Warm the SKU -> inventory item cache: one catalogue read, 250 variants a page.
    warm = variants.refresh(rt, info(rt, sid), sync_client(info(rt, sid)))
    warm_reads = shop.calls["graphql:productVariants"]
    assert warm == 10_000 and warm_reads == math.ceil(10_000 / 250)

    assert read_erp_stock(rt).changed == 20_000
    first = sync_inventory(rt, sid)
    assert (first.full, first.changes, first.unchanged) == (True, 20_000, 0)
    assert shop.calls[SET] == first.write_calls == math.ceil(20_000 / 250)
    assert shop.calls["graphql:productVariants"] == warm_reads  # the cache was warm: no SKU lookups

    # 3% of the 20,000 levels change in the ERP: 600 SKUs, one warehouse each.
    t1 = T0 + timedelta(hours=1)
    changed = [(skus[n * 16], "WH-E" if n % 2 else "WH-W", 100 + n, t1) for n in range(600)]
    set_erp_stock(stack, changed)
    assert read_erp_stock(rt).changed == 600
    before = shop.calls[SET]
    second = sync_inventory(rt, sid)
    assert second.full is False and second.changes == 600
    assert shop.calls[SET] - before == second.write_calls == math.ceil(600 / 250) == 3
    assert second.unchanged == 600  # the other location of each SKU was recomputed and found equal
    assert dict(second.calls) == {"inventorySetQuantities": 3}  # locations came from the last run
    item = numeric_id(shop.variant_by_sku(skus[16]).inventory_item_id)
    assert shop.level(item, east) == 101 and shop.level(item, west) == 5 + 16 % 7

    # Nothing changed: no call of any kind.
    calls = sum(shop.calls.values())
    assert read_erp_stock(rt).changed == 0
    third = sync_inventory(rt, sid)
    assert (third.changes, sum(third.calls.values())) == (0, 0)
    assert sum(shop.calls.values()) == calls
    print(
        f"\n10,000 SKUs x 2 locations: warm-up {warm_reads} productVariants reads; full sync "
        f"{first.write_calls} calls for 20,000 levels; 600 changes -> {second.write_calls} calls; "
        f"unchanged -> {sum(third.calls.values())} calls"
    )


def test_10000_woocommerce_products_3_percent_changed(sqlite_stack: Stack, woo: FakeWooCommerce) -> None:
    stack = sqlite_stack
    skus = [f"W-{n:05d}" for n in range(10_000)]
    woo.add_products(skus, stock=0)
    configure(stack, woo=woo)
    set_erp_stock(stack, [(s, "MAIN", 3 + n % 5, T0) for n, s in enumerate(skus)])
    sid = store_id(stack, WOO_STORE)
    rt = stack.rt

    warm = variants.refresh(rt, info(rt, sid), sync_client(info(rt, sid)))  # also reads each item's stock
    warm_reads = woo.hits["GET products"]
    assert warm == 10_000 and warm_reads == math.ceil(10_000 / 100)

    read_erp_stock(rt)
    first = sync_inventory(rt, sid)
    assert first.changes == 10_000 and woo.hits["POST products/batch"] == first.write_calls == 100

    set_erp_stock(stack, [(skus[n * 33], "MAIN", 50, T0 + timedelta(hours=1)) for n in range(300)])
    read_erp_stock(rt)
    before = woo.hits["POST products/batch"]
    second = sync_inventory(rt, sid)
    assert second.changes == 300
    assert woo.hits["POST products/batch"] - before == second.write_calls == math.ceil(300 / 100)
    assert woo.stock_of(int(variants.cached(rt, sid, [skus[33]])[skus[33]][0].item_id)) == 50

    hits = sum(woo.hits.values())
    read_erp_stock(rt)
    assert sync_inventory(rt, sid).changes == 0 and sum(woo.hits.values()) == hits


def test_reading_erp_stock_again_changes_nothing(sqlite_stack: Stack) -> None:
    stack, rt = sqlite_stack, sqlite_stack.rt
    set_erp_stock(stack, [(f"R{n}", "MAIN", n, T0 + timedelta(seconds=n)) for n in range(5)])
    first = read_erp_stock(rt, page_size=2)  # three pages, the cursor saved after each
    assert (first.pages, first.rows, first.changed) == (3, 5, 5)
    with rt.sessions() as session:
        seen = {r.sku: r.changed_at for r in session.scalars(select(StockMirror))}
    assert read_erp_stock(rt).rows == 0  # nothing after the cursor
    with rt.sessions.begin() as session:  # a replay from the start: same rows, nothing changes
        session.execute(delete(SyncCursor).where(SyncCursor.name == "erp:stock"))
    again = read_erp_stock(rt)
    assert (again.rows, again.changed) == (5, 0)
    with rt.sessions() as session:
        assert {r.sku: r.changed_at for r in session.scalars(select(StockMirror))} == seen
    set_erp_stock(stack, [("R1", "MAIN", 1, T0 + timedelta(hours=1))])  # recounted, same quantity: a change
    assert read_erp_stock(rt).changed == 1


# ---- two stores share a warehouse ------------------------------------------------------------------


def test_two_stores_share_a_warehouse_and_an_order_lowers_the_other(
    stack: Stack, shop: FakeShopify, woo: FakeWooCommerce
) -> None:
    order = load_fixture("shopify", "order_guest.json")  # KRT-COT-L-IND x 2, DUP-BLK-01 x 1, placed 2026-11-22
    shop.add_location("Main")
    shop.add_variants(["KRT-COT-L-IND", "DUP-BLK-01"], available=0)
    krt_woo = woo.add_product("KRT-COT-L-IND", stock=0)
    woo.add_product("DUP-BLK-01", stock=0)
    configure(
        stack,
        shop=shop,
        woo=woo,
        shopify_settings={"safety_stock": 2, "allocation_share": 0.6},
        woo_settings={"safety_stock": 2, "allocation_share": "0.4"},
    )
    set_erp_stock(stack, [("KRT-COT-L-IND", "MAIN", 10, T0), ("DUP-BLK-01", "MAIN", 5, T0)])
    rt = stack.rt
    shopify_id, woo_id = store_id(stack, STORE), store_id(stack, WOO_STORE)
    krt_item = shop.variant_by_sku("KRT-COT-L-IND").inventory_item_id
    main = next(iter(shop.locations))

    read_erp_stock(rt)
    assert sync_inventory(rt, shopify_id).changes == 2
    assert sync_inventory(rt, woo_id).changes == 2
    # free = 10 - 0 - 2 = 8: 60% -> 4.8 -> 4, 40% -> 3.2 -> 3; 7 of 8 offered, never more than there is.
    assert (shop.level(krt_item, main), woo.stock_of(krt_woo)) == (4, 3)

    # A Shopify customer buys 2: the order webhook, signed, goes through the pipeline into the ERP.
    assert stack.post_shopify(order).status_code == 200
    stack.run_jobs()
    assert [e.status for e in stack.events()] == ["succeeded"]
    # The ERP has not booked it (its figure is still 10, counted before the order): the other store's
    # next sync — queued as a job, run by the worker — offers floor((10 - 2 - 2) x 0.4) = 2.
    assert queue_inventory_sync(rt, woo_id) is True
    assert queue_inventory_sync(rt, woo_id) is False  # one queued sync per store is enough
    stack.run_jobs()
    assert woo.stock_of(krt_woo) == 2
    assert sync_inventory(rt, shopify_id).changes == 1 and shop.level(krt_item, main) == 3  # 6 x 0.6

    # Cancelled before the ERP booked it: the units are free again.
    cancel = {
        **order,
        "cancelled_at": "2026-11-22T15:00:00+05:30",
        "cancel_reason": "customer",
        "updated_at": "2026-11-22T15:00:00+05:30",
    }
    stack.post_shopify(cancel, topic="orders/cancelled")
    stack.run_jobs()
    assert sync_inventory(rt, woo_id).changes == 2 and woo.stock_of(krt_woo) == 3

    # Another order takes 2; then the ERP books it (8 on hand, counted after the order): the reservation
    # no longer counts, since the ERP's figure has it, and nothing needs writing.
    second = {**order, "id": order["id"] + 1, "name": "#1002", "order_number": 1002}
    stack.post_shopify(second)
    stack.run_jobs()
    assert sync_inventory(rt, woo_id).changes == 2 and woo.stock_of(krt_woo) == 2
    set_erp_stock(
        stack,
        [
            ("KRT-COT-L-IND", "MAIN", 8, datetime(2026, 11, 23, tzinfo=UTC)),
            ("DUP-BLK-01", "MAIN", 4, datetime(2026, 11, 23, tzinfo=UTC)),
        ],
    )
    result = sync_inventory_job(woo_id)  # reads the ERP's change, then syncs
    assert (result["changes"], result["unchanged"]) == (0, 2) and woo.stock_of(krt_woo) == 2


# ---- who gets the last unit ----------------------------------------------------------------------------


def test_the_last_unit_goes_by_priority_the_same_whichever_store_syncs_first(
    stack: Stack, shop: FakeShopify, woo: FakeWooCommerce
) -> None:
    main = shop.add_location("Main")
    krt, dup = shop.add_variants(["KRT-COT-L-IND", "DUP-BLK-01"], available=0)
    krt_woo, dup_woo = woo.add_product("KRT-COT-L-IND", stock=0), woo.add_product("DUP-BLK-01", stock=0)
    shares = {"safety_stock": 2, "allocation_share": 0.6}, {"safety_stock": 2, "allocation_share": 0.4}

    def settle(shopify: dict | None = None, woo_settings: dict | None = None, erp: dict | None = None) -> None:
        configure(
            stack,
            shop=shop,
            woo=woo,
            shopify_settings={**shares[0], **(shopify or {})},
            woo_settings={**shares[1], **(woo_settings or {})},
            erp=erp or {},
        )

    settle()
    # KRT: 10 on hand, free 8 -> 4.8 and 3.2. DUP: 7 on hand, free 5 -> 3 and 2 exactly: nothing left over.
    set_erp_stock(stack, [("KRT-COT-L-IND", "MAIN", 10, T0), ("DUP-BLK-01", "MAIN", 7, T0)])
    rt = stack.rt
    shopify_id, woo_id = store_id(stack, STORE), store_id(stack, WOO_STORE)
    read_erp_stock(rt)

    def figures() -> tuple[int | None, ...]:
        return (
            shop.level(krt.inventory_item_id, main),
            woo.stock_of(krt_woo),
            shop.level(dup.inventory_item_id, main),
            woo.stock_of(dup_woo),
        )

    # By default the 8th free unit is nobody's: it stays for the ERP's own (offline) sales, as before.
    assert sync_inventory(rt, woo_id).changes == 2 and sync_inventory(rt, shopify_id).changes == 2
    assert figures() == (4, 3, 3, 2)

    # The merchant ranks the Shopify store first. The WooCommerce store syncs first and keeps its 3; the
    # Shopify store is offered its 4 by share and the unit left over: 5 + 3 = 8, all of the free stock.
    settle(shopify={"stock_priority": 1}, woo_settings={"stock_priority": 2})
    assert sync_inventory(rt, woo_id).changes == 0
    report = sync_inventory(rt, shopify_id)
    assert report.full and report.changes == 1 and figures() == (5, 3, 3, 2)
    assert report.last_units == 1
    assert report.last_unit_examples == ["KRT-COT-L-IND at Main: 4 by share 0.6 + 1 left by rounding (priority 1)"]
    assert "last unit: 1 figure(s) got a unit the shares' rounding left over" in report.summary()

    # Run again, as the scheduler would, through the queue and the worker: nothing is written.
    writes = shop.calls[SET], woo.hits["POST products/batch"]
    for sid in (shopify_id, woo_id):
        assert queue_inventory_sync(rt, sid) is True
    stack.run_jobs()
    assert sync_inventory(rt, woo_id, full=True).changes == 0
    assert sync_inventory(rt, shopify_id, full=True).changes == 0
    assert (shop.calls[SET], woo.hits["POST products/batch"]) == writes and figures() == (5, 3, 3, 2)

    # Offline is ranked ahead of both: the unit goes back to the shop counter. The store is down for the
    # first run (every try fails): nothing changes and the run is redone; the second run converges.
    settle(shopify={"stock_priority": 1}, woo_settings={"stock_priority": 2}, erp={"offline_stock_priority": 0})
    client = sync_client(info(rt, shopify_id))
    client._sleep = lambda seconds: None  # the client's backoff between its own tries
    shop.fail_next(4, status=503)
    failed = sync_inventory(rt, shopify_id, client=client)
    assert not failed.complete and figures() == (5, 3, 3, 2)
    assert sync_inventory(rt, shopify_id).changes == 1 and figures() == (4, 3, 3, 2)
    assert sync_inventory(rt, shopify_id).changes == 0 and sync_inventory(rt, woo_id).changes == 0

    # For this one SKU the WooCommerce store goes first, then offline: 3.2 -> 4, and Shopify back to 4.
    map_priorities(stack, [("KRT-COT-L-IND", f"{WOO_STORE}, offline")])
    report = sync_inventory(rt, woo_id)
    assert report.changes == 1 and figures() == (4, 4, 3, 2)
    assert report.last_unit_examples == [
        "KRT-COT-L-IND at default: 3 by share 0.4 + 1 left by rounding (1st in the SKU's own order)"
    ]
    assert sync_inventory(rt, shopify_id).changes == 0
    assert sum(figures()[:2]) <= 8 and sum(figures()[2:]) <= 5  # never more than the free stock


# ---- what the stores report: echo suppression ------------------------------------------------------


def test_woo_echo_of_our_write_is_ignored_and_a_merchant_change_is_recorded(sqlite_stack: Stack) -> None:
    stack = sqlite_stack
    served = Served(stack)
    woo = fake_woo(webhook_url=f"{served.url}/webhooks/woocommerce/{WOO_STORE}", webhook_secret=WOO_SECRET)
    try:
        cup = woo.add_product("CUP", stock=0)
        configure(stack, woo=woo)
        set_erp_stock(stack, [("CUP", "MAIN", 7, T0)])
        sid = store_id(stack, WOO_STORE)
        read_erp_stock(stack.rt)
        assert sync_inventory(stack.rt, sid).changes == 1 and woo.stock_of(cup) == 7

        def deliveries_processed() -> list[InboxEvent]:
            woo.wait_for_deliveries()
            stack.app.extensions["connector.waker"].flush()
            stack.run_jobs()
            return [e for e in stack.events() if e.topic == "product.updated"]

        (echo,) = deliveries_processed()  # WooCommerce sends product.updated for our own write
        assert echo.status == "ignored" and "our own write" in echo.result["note"]
        assert pushed(stack.rt, sid)[("CUP", "default")].reported == 7

        # The merchant corrects the stock in WooCommerce's admin (a REST write like any other).
        answer = requests.put(
            f"{woo.url}/wp-json/wc/v3/products/{cup}",
            json={"stock_quantity": 5},
            auth=(woo.consumer_key, woo.consumer_secret),
            timeout=5,
        )
        assert answer.status_code == 200
        echo, change = deliveries_processed()
        assert change.status == "succeeded" and change.result["reported"] == 5
        level = pushed(stack.rt, sid)[("CUP", "default")]
        assert (level.pushed, level.reported) == (7, 5)
        # A full sync puts the ERP's figure back (the store showed 5, the target is 7).
        assert sync_inventory(stack.rt, sid, full=True).changes == 1 and woo.stock_of(cup) == 7
    finally:
        woo.stop()
        served.stop()


def test_shopify_inventory_level_webhooks_update_the_reported_figure(sqlite_stack: Stack, shop: FakeShopify) -> None:
    stack = sqlite_stack
    loc = shop.add_location()
    (variant,) = shop.add_variants(["MUG"], available=0)
    configure(stack, shop=shop)
    set_erp_stock(stack, [("MUG", "MAIN", 9, T0)])
    sid = store_id(stack, STORE)
    read_erp_stock(stack.rt)
    assert sync_inventory(stack.rt, sid).changes == 1
    payload = {
        "inventory_item_id": variant.inventory_item_id,
        "location_id": loc,
        "available": 9,
        "updated_at": "2026-11-20T10:00:00-05:00",
    }
    stack.post_shopify(payload, topic="inventory_levels/update")
    stack.post_shopify({**payload, "available": 8}, topic="inventory_levels/update")  # a sale in the shop
    stack.run_jobs()
    own, sale = stack.events()
    assert own.status == "ignored" and "our own write" in own.result["note"]
    assert sale.status == "succeeded" and pushed(stack.rt, sid)[("MUG", str(loc))].reported == 8


# ---- Shopify's compare-and-swap ------------------------------------------------------------------------


def test_a_stale_change_from_quantity_is_reread_and_retried_once(sqlite_stack: Stack, shop: FakeShopify) -> None:
    stack = sqlite_stack
    loc = shop.add_location()
    made = shop.add_variants([f"S{n}" for n in range(5)], available=0)
    configure(stack, shop=shop)
    set_erp_stock(stack, [(f"S{n}", "MAIN", 10, T0) for n in range(5)])
    sid = store_id(stack, STORE)
    read_erp_stock(stack.rt)
    assert sync_inventory(stack.rt, sid).changes == 5  # the store's figures now known: 10 each
    shop.set_level(made[0].inventory_item_id, loc, 9)  # sold in the shop; no webhook reached us
    shop.set_level(made[1].inventory_item_id, loc, 12)  # restocked in the shop
    set_erp_stock(stack, [(f"S{n}", "MAIN", 20, T0 + timedelta(hours=1)) for n in range(5)])
    read_erp_stock(stack.rt)
    report = sync_inventory(stack.rt, sid)
    assert report.stale_retries == 1 and report.changes == 5 and report.complete
    assert dict(report.calls) == {"inventorySetQuantities": 2, "productVariants": 1}  # refused, re-read, retried
    assert all(shop.level(v.inventory_item_id, loc) == 20 for v in made)


def test_an_item_the_shop_refuses_is_isolated_and_reported(sqlite_stack: Stack, shop: FakeShopify) -> None:
    stack = sqlite_stack
    east, west = shop.add_location("East"), shop.add_location("West")
    made = shop.add_variants([f"OK-{n}" for n in range(10)], available=0)
    shop.add_variants(["ODD"], available=0, locations=[east])  # not stocked at West
    configure(stack, shop=shop)
    map_locations(stack, [(STORE, "East", "WH-E"), (STORE, "West", "WH-W")])
    set_erp_stock(stack, [(s, w, 3, T0) for s in [f"OK-{n}" for n in range(10)] + ["ODD"] for w in ("WH-E", "WH-W")])
    sid = store_id(stack, STORE)
    read_erp_stock(stack.rt)
    report = sync_inventory(stack.rt, sid)
    assert report.complete and report.changes == 21  # everything but ODD at West
    (reason,) = report.skipped
    assert "ITEM_NOT_STOCKED_AT_LOCATION" in reason and report.examples[reason] == ["ODD"]
    assert report.write_calls <= 1 + 2 * math.ceil(math.log2(22))  # halving, not one call per item
    assert all(shop.level(v.inventory_item_id, west) == 3 for v in made)

    # West is removed from the shop while our resolved locations are still fresh: the write fails, the
    # run is redone, and the next run reads the locations again.
    del shop.locations[west]
    set_erp_stock(stack, [(s, w, 4, T0 + timedelta(hours=1)) for s in ("OK-0", "OK-1") for w in ("WH-E", "WH-W")])
    read_erp_stock(stack.rt)
    failed = sync_inventory(stack.rt, sid)
    assert not failed.complete and "read again on the next run" in failed.errors[0]
    redone = sync_inventory(stack.rt, sid)
    assert redone.complete and redone.changes == 2 and redone.calls["locations"] == 1
    assert "West, not an active location" in redone.notes[0]
    assert shop.level(made[0].inventory_item_id, east) == 4


def test_skipped_items_are_reported(sqlite_stack: Stack, woo: FakeWooCommerce) -> None:
    stack = sqlite_stack
    woo.add_product("MANAGED", stock=1)
    unmanaged = woo.add_product("UNMANAGED", stock=None)
    woo.add_variable("HAT", ["HAT-S", "HAT-M"], stock=0, parent_managed=["HAT-M"])
    configure(stack, woo=woo)
    set_erp_stock(stack, [(s, "MAIN", 4, T0) for s in ("MANAGED", "UNMANAGED", "HAT-S", "HAT-M", "GONE")])
    read_erp_stock(stack.rt)
    report = sync_inventory(stack.rt, store_id(stack, WOO_STORE))
    assert report.changes == 2  # MANAGED and the variation HAT-S (through its parent's variations/batch)
    assert report.skipped["not in the store"] == 1 and report.examples["not in the store"] == ["GONE"]
    reason = "the store does not manage this item's stock (or its parent product does)"
    assert report.skipped[reason] == 2 and woo.stock_of(unmanaged) is None
    assert woo.hits["POST products/<pid>/variations/batch"] == 1
    assert "skipped 1: not in the store (e.g. GONE)" in report.summary()


# ---- the push endpoint ---------------------------------------------------------------------------------


def test_the_erp_pushes_stock_with_a_bearer_token(stack: Stack, shop: FakeShopify, woo: FakeWooCommerce) -> None:
    loc = shop.add_location()
    (mug,) = shop.add_variants(["MUG"], available=0)
    woo_mug = woo.add_product("MUG", stock=0)
    configure(stack, shop=shop, woo=woo, erp={"push_token": "erp-push-token-0123456789"})
    client = stack.app.test_client()
    body = {
        "levels": [
            {"sku": "MUG", "warehouse": "MAIN", "on_hand": 6, "updated_at": "2026-11-20T08:00:00Z"},
            {"sku": "PLATE", "on_hand": "2.0000", "updated_at": "2026-11-20T08:00:00"},
        ]
    }

    assert client.post("/api/v1/stock", json=body).status_code == 401
    for wrong in ("Bearer nope", "Bearer erp-push-token-012345678", "Basic ZXJwOnRva2Vu", "erp-push-token-0123456789"):
        answer = client.post("/api/v1/stock", json=body, headers={"Authorization": wrong})
        assert answer.status_code == 401 and answer.headers["WWW-Authenticate"].startswith("Bearer")
    auth = {"Authorization": "Bearer erp-push-token-0123456789"}
    for bad in (
        {},
        {"levels": []},
        {"levels": [{"sku": "", "on_hand": 1, "updated_at": "2026-11-20T08:00:00Z"}]},
        {"levels": [{"sku": "A", "on_hand": "many", "updated_at": "2026-11-20T08:00:00Z"}]},
        {"levels": [{"sku": "A", "on_hand": 1, "updated_at": "yesterday"}]},
        {"levels": "MUG"},
    ):
        answer = client.post("/api/v1/stock", json=bad, headers=auth)
        assert answer.status_code == 422 and answer.json["errors"], bad
    assert (
        client.post("/api/v1/stock", data="not json", headers={**auth, "Content-Type": "application/json"}).status_code
        == 400
    )
    with stack.rt.sessions() as session:
        assert session.scalars(select(StockMirror)).all() == []  # nothing written by a refused push

    answer = client.post("/api/v1/stock", json=body, headers=auth)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.json == {"levels": 2, "changed": 2, "queued": [STORE, WOO_STORE]}
    again = client.post("/api/v1/stock", json=body, headers=auth).json
    assert again == {"levels": 2, "changed": 0, "queued": []}  # already queued: one sync per store
    stack.run_jobs()
    assert shop.level(mug.inventory_item_id, loc) == 6 and woo.stock_of(woo_mug) == 6
    with stack.rt.sessions() as session:
        assert session.get(StockMirror, ("PLATE", "")).on_hand == 2


# ---- scheduling ----------------------------------------------------------------------------------------


def test_the_scheduler_registers_each_store_and_the_shipments(
    sqlite_stack: Stack, shop: FakeShopify, woo: FakeWooCommerce
) -> None:
    configure(
        sqlite_stack,
        shop=shop,
        woo=woo,
        shopify_settings={"inventory_interval_minutes": 5},
        woo_settings={"inventory_interval_minutes": 0},
        erp={"shipments_interval_minutes": 2},
    )
    found = {name: (job, args, interval) for name, job, args, interval in schedules(sqlite_stack.rt, 60)}
    assert found[f"inventory:{STORE}"] == (store_job, ("inventory", store_id(sqlite_stack, STORE)), 300)
    assert f"inventory:{WOO_STORE}" not in found  # 0 turns a store's schedule off
    assert found["shipments"] == (sync_shipments_job, (), 120) and found["sweep"][2] == 60


def test_the_commands_print_their_reports(sqlite_stack: Stack, shop: FakeShopify, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from click.testing import CliRunner

    from connector.cli import main

    stack = sqlite_stack
    loc = shop.add_location("Main")
    (mug,) = shop.add_variants(["MUG"], available=0)
    configure(stack, shop=shop)
    set_erp_stock(stack, [("MUG", "MAIN", 4, T0)])
    env = stack.cli_env(tmp_path)
    try:
        result = CliRunner().invoke(main, ["sync-inventory", STORE, "--full"], env=env)
        assert result.exit_code == 0, result.output
        assert "ERP: 1 stock row(s) read in 1 page(s), 1 changed" in result.output
        assert f"{STORE} (shopify, full): 1 change(s) written in 1 call(s)" in result.output
        assert shop.level(mug.inventory_item_id, loc) == 4
        result = CliRunner().invoke(main, ["sync-inventory", "nope"], env=env)
        assert result.exit_code == 2 and "no store 'nope'" in result.output
        result = CliRunner().invoke(main, ["sync-shipments", "--retry-failed"], env=env)
        assert result.exit_code == 0 and "shipments: 0 read" in result.output, result.output
    finally:
        from connector.base.runtime import install

        install(stack.rt)
