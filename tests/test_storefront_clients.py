"""The Shopify and WooCommerce clients against the fake storefronts, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from flask import Flask, request
from werkzeug.serving import make_server

from adapters.storefront import StorefrontError
from platforms.shopify.api import QuantityStaleError, ShopifyClient, numeric_id
from platforms.woocommerce.api import WooClient
from tests.fakes.clock import FakeClock
from tests.fakes.shopify import FakeShopify
from tests.fakes.woocommerce import FakeWooCommerce

TOKEN = "shpat_test"


class Receiver:
    """A local webhook endpoint that keeps what it got (raw body and headers)."""

    def __init__(self) -> None:
        self.got: list[dict[str, Any]] = []
        self.status = 200
        app = Flask("receiver")

        @app.post("/hook")
        def hook() -> tuple[str, int]:
            self.got.append({"headers": dict(request.headers), "body": request.get_data(), "form": request.form})
            return "", self.status

        self._server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}/hook"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def wait_for(self, n: int, timeout: float = 5) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.got) < n and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.got

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def clock() -> FakeClock:
    """Time for the clients' waits and the fake Shopify's buckets: it passes only when a client sleeps."""
    return FakeClock()


@pytest.fixture
def shop(clock: FakeClock) -> Iterator[FakeShopify]:
    fake = FakeShopify(token=TOKEN, clock=clock)
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def woo() -> Iterator[FakeWooCommerce]:
    fake = FakeWooCommerce()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    try:
        yield r
    finally:
        r.stop()


def client(shop: FakeShopify, **options: Any) -> ShopifyClient:
    """A client on the shop's fake clock: what it sleeps is in `shop.clock.slept`, and restores the buckets."""
    clock = shop.clock
    assert isinstance(clock, FakeClock)
    return ShopifyClient(
        shop.shop_domain, TOKEN, api_base_url=shop.url, retry_base=0.01, sleep=clock.sleep, clock=clock, **options
    )


def graphql(shop: FakeShopify, query: str, variables: dict, version: str = "2026-01") -> requests.Response:
    return requests.post(
        f"{shop.url}/admin/api/{version}/graphql.json",
        json={"query": query, "variables": variables},
        headers={"X-Shopify-Access-Token": TOKEN},
        timeout=5,
    )


# ---- Shopify: variants and inventory --------------------------------------------------------------


def test_10000_variants_and_300_changes_take_two_inventory_calls(shop: FakeShopify) -> None:
    shop.set_budget(100_000, 10_000)  # a roomy bucket: this test is about batching, not waiting
    locations = [shop.add_location("East"), shop.add_location("West")]
    shop.add_variants((f"SKU-{n:05d}" for n in range(10_000)), available=5)
    c = client(shop)

    variants = c.variants_by_sku()
    assert len(variants) == 10_000
    assert c.stats.calls["productVariants"] == math.ceil(10_000 / 250)
    assert {loc["id"] for loc in c.locations()} == {f"gid://shopify/Location/{n}" for n in locations}

    changes = [
        (variants[f"SKU-{n:05d}"][1], f"gid://shopify/Location/{locations[n % 2]}", 100 + n, 5) for n in range(300)
    ]
    results = c.set_available(changes, idempotency_key="stock-run-1")
    assert shop.calls["graphql:inventorySetQuantities"] == math.ceil(300 / 250) == 2
    assert [r["count"] for r in results] == [250, 50]
    assert sum(len(r["changes"]) for r in results) == 300
    item = numeric_id(variants["SKU-00299"][1])
    assert shop.level(item, locations[1]) == 399
    assert shop.level(item, locations[0]) == 5  # only the level we named changed

    # The same call again (a retried job) replays both batches: nothing is applied twice.
    shop.set_level(item, locations[1], 7)
    again = c.set_available(changes, idempotency_key="stock-run-1")
    assert shop.idempotent_replays == 2
    assert [r["key"] for r in again] == [r["key"] for r in results]
    assert shop.level(item, locations[1]) == 7


def test_sku_lookup_searches_only_the_wanted_skus(shop: FakeShopify) -> None:
    shop.add_location()
    shop.add_variants(["A-1", "A-10", 'Odd "quoted" sku', None, "B-2"])
    found = ShopifyClient(shop.shop_domain, TOKEN, api_base_url=shop.url).variants_by_sku(
        ["A-1", 'Odd "quoted" sku', "missing"]
    )
    assert set(found) == {"A-1", 'Odd "quoted" sku'}


def test_stale_change_from_quantity_refuses_the_whole_batch(shop: FakeShopify) -> None:
    loc = shop.add_location()
    a, b = shop.add_variants(["A", "B"], available=10)
    c = client(shop)
    with pytest.raises(QuantityStaleError) as caught:
        c.set_available([(a.inventory_item_id, loc, 4, 10), (b.inventory_item_id, loc, 4, 9)], "k1")
    assert not caught.value.retryable
    assert caught.value.errors[0]["code"] == "CHANGE_FROM_QUANTITY_STALE"
    assert shop.level(a.inventory_item_id, loc) == 10  # all or nothing
    # null skips the check; the right value passes it
    c.set_available([(a.inventory_item_id, loc, 4, None), (b.inventory_item_id, loc, 4, 10)], "k2")
    assert (shop.level(a.inventory_item_id, loc), shop.level(b.inventory_item_id, loc)) == (4, 4)


def test_change_from_quantity_is_mandatory_from_2026_01(shop: FakeShopify) -> None:
    loc = shop.add_location()
    (v,) = shop.add_variants(["A"], available=3)
    mutation = """mutation S($input: InventorySetQuantitiesInput!) {
      inventorySetQuantities(input: $input) { userErrors { field message code } } }"""
    quantity = {
        "inventoryItemId": f"gid://shopify/InventoryItem/{v.inventory_item_id}",
        "locationId": f"gid://shopify/Location/{loc}",
        "quantity": 1,
    }
    body = graphql(shop, mutation, {"input": {"name": "available", "reason": "correction", "quantities": [quantity]}})
    assert body.json()["data"] is None and "changeFromQuantity" in body.json()["errors"][0]["message"]
    over = graphql(
        shop,
        mutation,
        {
            "input": {
                "name": "available",
                "reason": "correction",
                "quantities": [{**quantity, "changeFromQuantity": None}] * 251,
            }
        },
    )
    assert over.json()["errors"][0]["extensions"]["code"] == "MAX_INPUT_SIZE_EXCEEDED"
    # An older version speaks compareQuantity / ignoreCompareQuantity: the client follows the version.
    old = client(shop, api_version="2025-10")
    old.set_available([(v.inventory_item_id, loc, 8, 3), (v.inventory_item_id, loc, 9, None)], "k")
    assert shop.level(v.inventory_item_id, loc) == 9


# ---- Shopify: rate limits ------------------------------------------------------------------------


@pytest.mark.parametrize("throttle_status", [200, 429])
def test_small_graphql_budget_is_waited_for_not_hammered(
    shop: FakeShopify, clock: FakeClock, throttle_status: int
) -> None:
    shop.throttle_status = throttle_status
    loc = shop.add_location()
    variants = shop.add_variants([f"S{n}" for n in range(300)])
    shop.set_budget(maximum=120, restore_rate=200)
    c = client(shop)
    results = c.set_available([(v.inventory_item_id, loc, 1, None) for v in variants], "small-bucket")
    # The first call learns the bucket (one THROTTLED: 260 points > 120); then batches of 110 (10 + 110 =
    # 120 points) fit, and before each the client sleeps for exactly the points it lacks: 120/200, then the
    # last batch of 80 (90 points) 90/200.
    assert [r["count"] for r in results] == [110, 110, 80]
    assert shop.throttled == c.stats.throttled == 1
    assert clock.slept == pytest.approx([0.6, 0.45])
    assert c.stats.waited == pytest.approx(1.05)
    assert all(shop.level(v.inventory_item_id, loc) == 1 for v in variants)


def test_a_warm_client_is_never_throttled(shop: FakeShopify, clock: FakeClock) -> None:
    shop.add_location()
    shop.add_variants([f"S{n:03d}" for n in range(600)])
    shop.set_budget(maximum=400, restore_rate=1000)
    c = client(shop)
    c.locations()  # learns the budget: pages shrink to (400 - 2) // 2 = 199 variants
    assert len(c.variants_by_sku()) == 600
    assert shop.throttled == 0
    assert c.stats.calls["productVariants"] == 4
    # It waits before each call for what the call costs: the 3 points locations took, then before each of
    # the three full pages (2 + 199 × 2 = 400 points) the 400 the one before took: no more, and never less.
    assert clock.slept == pytest.approx([0.003, 0.4, 0.4, 0.4])
    assert c.stats.waited == pytest.approx(clock.waited)


def test_rest_429_retry_after_then_call_limit_header(shop: FakeShopify, clock: FakeClock) -> None:
    since = datetime.now(UTC) - timedelta(hours=1)
    for _ in range(5):
        shop.add_order([("X", 1)])
    shop.fill_rest_bucket()  # other apps used the whole 40-call bucket
    c = client(shop)
    orders = list(c.orders_updated_since(since, limit=2))
    assert len(orders) == 5
    assert shop.rest_throttled == c.stats.throttled == 1  # the one 429; after it the header says 40/40
    assert shop.calls["GET orders"] == 4  # the 429 and three pages
    # Retry-After: 0.5 (one call leaks out of a full bucket at 2/s), then before each of the next two pages
    # 0.5 s more, because the header of the page before showed the bucket full again.
    assert clock.slept == pytest.approx([0.5, 0.5, 0.5])
    assert c.stats.waited == pytest.approx(1.5)


def within_backoff(slept: list[float], base: float) -> bool:
    """Each wait between tries is base·2^(n−1) jittered by 0.5–1.5 (capped at 10 s)."""
    return all(base * 2**n * 0.5 <= wait <= min(10.0, base * 2**n * 1.5) for n, wait in enumerate(slept))


def test_5xx_is_retried_then_reported_and_4xx_is_final(shop: FakeShopify, clock: FakeClock) -> None:
    shop.add_location()
    c = client(shop, max_retries=3)
    shop.fail_next(2, 503)
    assert len(c.locations()) == 1
    assert c.stats.retries == 2
    assert len(clock.slept) == 2 and within_backoff(clock.slept, 0.01), clock.slept
    first = len(clock.slept)
    shop.fail_next(4, 502)
    with pytest.raises(StorefrontError) as caught:
        c.locations()
    assert caught.value.retryable
    # Four failures with three retries: a wait before each retry, none after the last failure.
    assert len(clock.slept[first:]) == 3 and within_backoff(clock.slept[first:], 0.01), clock.slept
    with pytest.raises(StorefrontError) as caught:
        ShopifyClient(shop.shop_domain, "wrong", api_base_url=shop.url).locations()
    assert not caught.value.retryable and "access token" in str(caught.value)


# ---- Shopify: orders, fulfilment, webhooks --------------------------------------------------------


def test_fake_rest_endpoints_answer_like_shopify(shop: FakeShopify) -> None:
    loc = shop.add_location()
    (v,) = shop.add_variants(["A"], available=2)
    order_id = shop.add_order([("A", 2)])
    base, headers = f"{shop.url}/admin/api/2025-10", {"X-Shopify-Access-Token": TOKEN}
    level = requests.post(
        f"{base}/inventory_levels/set.json",
        headers=headers,
        timeout=5,
        json={"location_id": loc, "inventory_item_id": v.inventory_item_id, "available": 9},
    )
    assert level.json()["inventory_level"]["available"] == 9 and shop.level(v.inventory_item_id, loc) == 9
    assert level.headers["X-Shopify-Shop-Api-Call-Limit"] == "1/40"
    assert level.headers["X-Shopify-API-Version"] == "2025-10"
    fos = requests.get(f"{base}/orders/{order_id}/fulfillment_orders.json", headers=headers, timeout=5).json()
    (fo,) = fos["fulfillment_orders"]
    assert (fo["status"], fo["assigned_location_id"], fo["line_items"][0]["fulfillable_quantity"]) == ("open", loc, 2)
    hook = {"webhook": {"topic": "orders/updated", "address": "https://connector.test/h", "format": "json"}}
    made = requests.post(f"{base}/webhooks.json", json=hook, headers=headers, timeout=5)
    assert made.status_code == 201
    again = requests.post(f"{base}/webhooks.json", json=hook, headers=headers, timeout=5)
    assert again.status_code == 422 and again.json()["errors"]["address"]
    gone = requests.delete(f"{base}/webhooks/{made.json()['webhook']['id']}.json", headers=headers, timeout=5)
    assert gone.status_code == 200 and shop.webhooks == {}
    assert requests.get(f"{base}/orders.json", timeout=5).status_code == 401


def test_orders_updated_since_pages_by_link_and_includes_closed(shop: FakeShopify) -> None:
    base = datetime(2026, 3, 1, 12, tzinfo=UTC)
    old = shop.add_order([("X", 1)], updated_at=base - timedelta(days=1))
    ids = [
        shop.add_order(
            [("X", 1)], updated_at=base + timedelta(minutes=n), status=("open", "closed", "cancelled")[n % 3]
        )
        for n in range(7)
    ]
    c = client(shop)
    got = [o["id"] for o in c.orders_updated_since(base, limit=3)]
    assert got == ids and old not in got
    assert shop.calls["GET orders"] == 3
    first = requests.get(
        f"{shop.url}/admin/api/2026-01/orders.json",
        params={"limit": "3", "status": "any"},
        headers={"X-Shopify-Access-Token": TOKEN},
        timeout=5,
    )
    assert 'rel="next"' in first.headers["Link"]
    mixed = requests.get(
        first.links["next"]["url"] + "&status=any", headers={"X-Shopify-Access-Token": TOKEN}, timeout=5
    )
    assert mixed.status_code == 400  # page_info goes with limit (and fields) only
    assert len(list(c.orders_updated_since(base, status="open"))) == 3


def test_fulfil_part_then_the_rest_with_tracking(shop: FakeShopify) -> None:
    east, west = shop.add_location("East"), shop.add_location("West")
    shop.add_variants(["A", "B", "C"])
    order_id = shop.add_order([("A", 3), ("B", 1), ("C", 2)], locations=[east, east, west])
    c = client(shop)
    fos = c.fulfillment_orders(order_id)
    assert len(fos) == 2
    east_fo = next(fo for fo in fos if fo["location_id"] == f"gid://shopify/Location/{east}")
    line_a, line_b = east_fo["line_items"]

    first = c.create_fulfillment(
        [(east_fo["id"], [(line_a["id"], 2)])],
        ("UPS", "1Z001", "https://ups.test/1Z001"),
        notify_customer=True,
        ref="SHIP-1",
    )
    assert first["created"] and first["tracking"] == [
        {"company": "UPS", "number": "1Z001", "url": "https://ups.test/1Z001"}
    ]
    # A retried shipment with the same tracking number finds the fulfillment instead of making another.
    assert c.create_fulfillment([(east_fo["id"], [(line_a["id"], 2)])], ("UPS", "1Z001", None), ref="SHIP-1") == {
        **first,
        "created": False,
    }
    with pytest.raises(StorefrontError) as caught:  # more than remains
        c.create_fulfillment([(east_fo["id"], [(line_a["id"], 2)])], ("UPS", "1Z999", None))
    assert not caught.value.retryable

    rest = c.create_fulfillment(
        [(east_fo["id"], [(line_a["id"], 1), (line_b["id"], 1)])],
        ("DHL", "JD002", "https://dhl.test/JD002"),
        notify_customer=False,
        ref="SHIP-2",
    )
    assert rest["created"] and rest["name"] == "#1001.2"
    made = shop.fulfillments_of(order_id)
    assert [(f["tracking_number"], f["notify_customer"], f["message"]) for f in made] == [
        ("1Z001", True, "shipment SHIP-1"),
        ("JD002", False, "shipment SHIP-2"),
    ]
    assert [sum(li["quantity"] for li in f["line_items"]) for f in made] == [2, 2]
    after = {fo["id"]: fo for fo in c.fulfillment_orders(order_id)}
    assert after[east_fo["id"]]["status"] == "CLOSED"
    assert shop.orders[order_id]["fulfillment_status"] == "partial"  # the West order is still open

    two_numbers = graphql(
        shop,
        """mutation F($f: FulfillmentInput!) { fulfillmentCreate(fulfillment: $f) {
        fulfillment { id } userErrors { field message } } }""",
        {
            "f": {
                "lineItemsByFulfillmentOrder": [{"fulfillmentOrderId": next(i for i in after if i != east_fo["id"])}],
                "trackingInfo": {"company": "UPS", "numbers": ["1", "2"]},
            }
        },
    ).json()
    assert two_numbers["data"]["fulfillmentCreate"]["userErrors"]


def test_shopify_webhook_subscriptions(shop: FakeShopify) -> None:
    c = client(shop)
    made = c.create_webhook("orders/create", "https://connector.test/webhooks/shopify")
    assert c.create_webhook("ORDERS_CREATE", "https://connector.test/webhooks/shopify") == made
    c.create_webhook("inventory_levels/update", "https://connector.test/webhooks/shopify")
    assert sorted(h["topic"] for h in c.webhooks()) == ["inventory_levels/update", "orders/create"]
    rest = requests.get(
        f"{shop.url}/admin/api/2026-01/webhooks.json", headers={"X-Shopify-Access-Token": TOKEN}, timeout=5
    ).json()["webhooks"]
    assert {h["topic"] for h in rest} == {"orders/create", "inventory_levels/update"}
    assert c.delete_webhook(made["id"]) is True
    assert c.delete_webhook(made["id"]) is False
    with pytest.raises(StorefrontError) as caught:
        c.create_webhook("orders/create", "http://plain.test/hook")
    assert not caught.value.retryable


def test_deliver_signs_the_raw_body_with_all_headers(shop: FakeShopify, receiver: Receiver) -> None:
    payload = {"id": 1, "total_price": "10.00", "note": "ü/é"}
    shop.deliver(receiver.url, "orders/create", payload, "app-secret", duplicates=1)
    first, second = receiver.got
    for got in (first, second):
        expected = base64.b64encode(hmac.new(b"app-secret", got["body"], hashlib.sha256).digest()).decode()
        assert got["headers"]["X-Shopify-Hmac-Sha256"] == expected
        for name in ("Topic", "Hmac-Sha256", "Shop-Domain", "Api-Version", "Webhook-Id", "Event-Id", "Triggered-At"):
            assert got["headers"][f"X-Shopify-{name}"]
    assert first["headers"]["X-Shopify-Event-Id"] == second["headers"]["X-Shopify-Event-Id"]
    assert first["headers"]["X-Shopify-Webhook-Id"] != second["headers"]["X-Shopify-Webhook-Id"]


# ---- WooCommerce -----------------------------------------------------------------------------------


def woo_client(woo: FakeWooCommerce, **options: Any) -> WooClient:
    return WooClient(woo.url, woo.consumer_key, woo.consumer_secret, retry_base=0.01, **options)


def test_woo_250_stock_updates_take_three_batches(woo: FakeWooCommerce) -> None:
    ids = woo.add_products([f"W{n}" for n in range(250)], stock=5)
    c = woo_client(woo)
    result = c.set_stock([(pid, None, n % 3) for n, pid in enumerate(ids)])
    assert woo.hits["POST products/batch"] == 3 and result.batches == 3
    assert len(result.updated) == 250 and not result.errors
    assert [woo.products[ids[n]]["stock_status"] for n in range(3)] == ["outofstock", "instock", "instock"]
    assert woo.stock_of(ids[-1]) == 249 % 3


def test_woo_variations_and_unknown_ids(woo: FakeWooCommerce) -> None:
    pid, vids = woo.add_variable("SHIRT", ["SHIRT-S", "SHIRT-M"], stock=1)
    simple = woo.add_product("MUG", stock=None)
    c = woo_client(woo)
    result = c.set_stock([(pid, vids[0], 7), (pid, 424242, 1), (simple, None, 3), (99999, None, 2)])
    assert sorted(result.updated) == sorted([vids[0], simple])
    assert {(e["id"], e["code"]) for e in result.errors} == {
        (424242, "woocommerce_rest_product_variation_invalid_id"),
        (99999, "woocommerce_rest_product_invalid_id"),
    }
    assert woo.stock_of(vids[0]) == 7 and woo.products[simple]["manage_stock"] is True


def test_woo_413_halves_the_batch(woo: FakeWooCommerce) -> None:
    too_many = requests.post(
        f"{woo.url}/wp-json/wc/v3/products/batch",
        auth=("ck_test", "cs_test"),
        json={"update": [{"id": 1}] * 60, "delete": list(range(41))},
        timeout=5,
    )
    assert too_many.status_code == 413
    assert too_many.json()["code"] == "woocommerce_rest_request_entity_too_large"
    woo.batch_limit = 30  # a host lowered the limit
    ids = woo.add_products([f"W{n}" for n in range(100)])
    c = woo_client(woo)
    result = c.set_stock([(pid, None, 1) for pid in ids])
    assert len(result.updated) == 100
    assert c.stats.too_large == 2 and c.batch_size == 25  # 100 -> 50 -> 25
    assert result.batches == 4


def test_woo_pages_products_and_variations(woo: FakeWooCommerce) -> None:
    woo.add_products([f"P{n}" for n in range(230)], stock=2)
    pid, vids = woo.add_variable("V", ["V-1", "V-2", "V-3"], stock=4, parent_managed=["V-3"])
    c = woo_client(woo)
    skus = c.products_by_sku()
    assert len(skus) == 233 and "V" not in skus
    assert skus["V-2"] == (pid, vids[1], True, 4) and skus["V-3"][2] == "parent"
    assert skus["P7"][1:] == (None, True, 2)
    assert woo.hits["GET products"] == 3 and woo.hits["GET products/<pid>/variations"] == 1
    page = requests.get(
        f"{woo.url}/wp-json/wc/v3/products", params={"per_page": 100, "page": 2}, auth=("ck_test", "cs_test"), timeout=5
    )
    assert (page.headers["X-WP-Total"], page.headers["X-WP-TotalPages"]) == ("231", "3")
    assert set(page.links) == {"prev", "next"}
    too_big = requests.get(
        f"{woo.url}/wp-json/wc/v3/products", params={"per_page": 101}, auth=("ck_test", "cs_test"), timeout=5
    )
    assert too_big.status_code == 400


def test_woo_429_retry_after_and_auth(woo: FakeWooCommerce, clock: FakeClock) -> None:
    oid = woo.add_order()
    c = woo_client(woo, sleep=clock.sleep)
    woo.fail_next(2, 429, retry_after="0.2")
    assert c.order(oid)["id"] == oid
    assert c.stats.throttled == 2 and clock.slept == [0.2, 0.2]  # each Retry-After, as asked
    assert c.stats.waited == pytest.approx(0.4)
    woo.fail_next(1, 429)  # no Retry-After: the job queue decides when
    with pytest.raises(StorefrontError) as caught:
        c.order(oid)
    assert caught.value.retryable and clock.slept == [0.2, 0.2]  # nothing slept for it here
    with pytest.raises(StorefrontError) as caught:
        WooClient(woo.url, "ck_test", "not-the-secret").order(oid)  # OAuth signature checked
    assert not caught.value.retryable


def test_woo_orders_complete_notes_and_modified_after(woo: FakeWooCommerce) -> None:
    now = datetime.now(UTC)
    old = woo.add_order(modified=now - timedelta(days=2))
    recent = [woo.add_order(modified=now - timedelta(minutes=n)) for n in (30, 10)]
    c = woo_client(woo)
    assert [o["id"] for o in c.orders_modified_after(now - timedelta(hours=1))] == sorted(recent)
    done = c.complete_order(old)
    assert done["status"] == "completed" and done["date_completed"]
    note = c.add_note(old, "Shipped with UPS, tracking 1Z001")
    assert c.add_note(old, "Shipped with UPS, tracking 1Z001") == note
    assert [(n["note"], n["customer_note"]) for n in woo.notes[old]] == [("Shipped with UPS, tracking 1Z001", True)]
    refund = woo.add_refund(old)
    assert c.get_refund(str(old), str(refund))["id"] == refund


def test_woo_refunds_restock_refuse_what_is_not_left_and_what_the_gateway_cannot_do(woo: FakeWooCommerce) -> None:
    mug = woo.add_product("MUG", stock=2)
    oid = woo.add_order(lines=[("MUG", 2)], doc={"payment_method": "stripe", "total": "24.00"})
    item = woo.orders[oid]["line_items"][0]
    item["product_id"] = mug
    c = woo_client(woo)
    assert c.find_order(oid)["id"] == oid and c.find_order(999999) is None
    line = {"id": item["id"], "quantity": 1, "refund_total": "12.00", "refund_tax": []}
    made = c.create_refund(oid, {"amount": "12.00", "reason": "r1", "line_items": [line], "api_restock": False})
    assert woo.stock_of(mug) == 2 and made["refunded_payment"] is True
    assert made["line_items"][0]["quantity"] == -1 and made["line_items"][0]["total"] == "-12.00"
    c.create_refund(oid, {"amount": "6.00", "reason": "r2", "line_items": [line]})
    assert woo.stock_of(mug) == 3 and woo.orders[oid]["status"] == "processing"
    with pytest.raises(StorefrontError) as refused:  # 6.00 left
        c.create_refund(oid, {"amount": "6.01", "reason": "r3"})
    assert "Invalid refund amount." in str(refused.value) and not refused.value.retryable
    woo.orders[oid]["payment_method"] = "cod"
    with pytest.raises(StorefrontError) as refused:
        c.create_refund(oid, {"amount": "6.00", "reason": "r4"})
    assert "does not support automatic refunds" in str(refused.value)
    assert [r["reason"] for r in c.order_refunds(oid)] == ["r2", "r1"]  # newest first; the refused left nothing
    c.create_refund(oid, {"amount": "6.00", "reason": "r5", "api_refund": False})  # a manual refund: no gateway
    assert woo.orders[oid]["status"] == "refunded"
    assert woo.hits["POST orders/<oid>/refunds"] == 5  # never re-sent


def test_woo_webhooks_crud_and_ping(woo: FakeWooCommerce, receiver: Receiver) -> None:
    c = woo_client(woo)
    made = c.create_webhook("order.updated", receiver.url, "s3cret")
    assert c.create_webhook("order.updated", receiver.url, "s3cret")["id"] == made["id"]
    ping = receiver.wait_for(1)[0]
    assert ping["form"]["webhook_id"] == str(made["id"]) and "X-Wc-Webhook-Signature" not in ping["headers"]
    assert [h["id"] for h in c.webhooks()] == [made["id"]]
    c.delete_webhook(made["id"])
    assert c.webhooks() == []


def test_woo_stock_write_echoes_a_signed_product_updated(receiver: Receiver) -> None:
    woo = FakeWooCommerce(webhook_url=receiver.url, webhook_secret="echo-secret", webhook_delay=60)
    try:
        pid, vids = woo.add_variable("T", ["T-S", "T-M"], stock=0)
        simple = woo.add_product("CUP", stock=1)
        c = woo_client(woo)
        c.set_stock([(simple, None, 5), (pid, vids[1], 2)])
        c.set_stock([(simple, None, 6)])  # while the first delivery is pending: coalesced into it
        assert receiver.got == []  # queued, not sent during the request
        woo.deliver_now()
        woo.wait_for_deliveries()
        got = receiver.wait_for(2)
        assert len(got) == 2
        by_id = {}
        for delivery in got:
            headers, body = delivery["headers"], delivery["body"]
            signature = base64.b64encode(hmac.new(b"echo-secret", body, hashlib.sha256).digest()).decode()
            assert headers["X-Wc-Webhook-Signature"] == signature
            assert headers["X-Wc-Webhook-Topic"] == "product.updated"
            assert (headers["X-Wc-Webhook-Resource"], headers["X-Wc-Webhook-Event"]) == ("product", "updated")
            by_id[json.loads(body)["id"]] = json.loads(body)
        assert by_id[simple]["stock_quantity"] == 6  # built at delivery time, after the second write
        assert by_id[vids[1]]["stock_quantity"] == 2 and by_id[vids[1]]["parent_id"] == pid
        assert len({d["headers"]["X-Wc-Webhook-Delivery-Id"] for d in got}) == 2
    finally:
        woo.stop()
