"""A fake Shopify Admin API (one shop) served over real HTTP on 127.0.0.1, after docs/platforms.md#shopify.

`FakeShopify()` serves a Flask app with werkzeug's `make_server` on a free loopback port in a
background thread (`url`, `stop()`), like tests/fakes/rest_erp.py. Every path carries the API version
(`/admin/api/<YYYY-MM>/...`, echoed in `X-Shopify-API-Version`) and needs `X-Shopify-Access-Token`.

- GraphQL `POST /admin/api/<v>/graphql.json`: read by tests/fakes/graphql_lite.py, resolved by
  tests/fakes/shopify_graphql.py (cost model and bucket documented there): productVariants, locations,
  order { fulfillmentOrders, displayFinancialStatus, totalOutstandingSet }, fulfillmentOrder,
  webhookSubscriptions, inventorySetQuantities, fulfillmentCreate, orderMarkAsPaid,
  webhookSubscriptionCreate/Delete.
- REST (handlers in tests/fakes/shopify_rest.py; leaky bucket of 40 leaking 2/s,
  `X-Shopify-Shop-Api-Call-Limit`, 429 + `Retry-After`): orders.json (status=open by default,
  Link/page_info keyset pagination), orders/<id>.json, orders/<id>/fulfillment_orders.json,
  orders/<id>/transactions.json (presentment currency unless in_shop_currency=true),
  inventory_levels/set.json, locations.json, webhooks.json.
- State: products and variants (sku, inventory item), locations, inventory levels (item, location) ->
  available, orders with line items and fulfillment orders (per location, remaining quantities),
  fulfillments with tracking, webhook subscriptions (one store for REST and GraphQL).
- Test controls: `set_budget`, `set_rest_bucket`, `fill_rest_bucket`, `fail_next`, `throttle_status`
  (200 or 429 for THROTTLED), `add_location`, `add_variants` (10,000 in well under a second),
  `add_order`, `add_transaction`, `level`/`set_level`, `fulfillments_of`, `fulfillment_orders_of`, `outstanding`;
  `marked_paid`, `refund_payload(id)` (the refunds/create body of a refund refundCreate made); counters `calls`
  (per operation), `throttled`, `rest_throttled`, `cost_used`, `idempotent_replays`.
- `deliver(url, topic, payload, secret)`: a signed webhook with all seven X-Shopify-* headers.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import math
import re
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import requests
from flask import Flask, Response, request

from tests.fakes.graphql_lite import LeakyBucket, gid
from tests.fakes.server import Failure, Served
from tests.fakes.shopify_graphql import SUPPORTED_TOPICS, ShopifyGraphQL, WebhookRejected
from tests.fakes.shopify_oauth import TokenEndpoint
from tests.fakes.shopify_refunds import refund_payload
from tests.fakes.shopify_rest import RestError, ShopifyRest

_VERSION = re.compile(r"\d{4}-(01|04|07|10)|unstable")


@dataclass(slots=True)
class Variant:
    id: int
    product_id: int
    sku: str | None
    inventory_item_id: int
    title: str = "Default Title"
    price: str = "10.00"


@dataclass(slots=True)
class Location:
    id: int
    name: str
    active: bool = True


@dataclass
class FoLine:
    id: int
    line_item_id: int
    total: int
    remaining: int


@dataclass
class FulfillmentOrder:
    id: int
    order_id: int
    location_id: int
    lines: list[FoLine]

    @property
    def status(self) -> str:  # GraphQL enum; REST shows it lower-case
        if all(line.remaining == 0 for line in self.lines):
            return "CLOSED"
        if any(line.remaining < line.total for line in self.lines):
            return "IN_PROGRESS"
        return "OPEN"


class FakeShopify:
    def __init__(
        self,
        token: str = "shpat_test",
        shop_domain: str = "fake-shop.myshopify.com",
        max_available: float = 1000,
        restore_rate: float = 100,
        rest_bucket: int = 40,
        rest_leak_rate: float = 2,
        throttle_status: int = 200,
        shop_utc_offset_hours: int = -5,
        clock: Callable[[], float] = time.monotonic,
    ):
        """`clock`: the time the rate-limit buckets restore by (a tests.fakes.clock.FakeClock shared with
        the client under test makes its waits exact)."""
        self.token, self.shop_domain = token, shop_domain
        self.clock = clock
        # THROTTLED answers with 200 or 429: both happen (docs/platforms.md#shopify-rate-limits)
        self.throttle_status = throttle_status
        self.single_query_limit = 1000
        self.tz = timezone(timedelta(hours=shop_utc_offset_hours))  # REST times carry the shop's offset
        self.graphql_bucket = LeakyBucket(max_available, restore_rate, clock)
        self.rest_bucket = LeakyBucket(rest_bucket, rest_leak_rate, clock)
        self.products: dict[int, dict] = {}
        self.variants: dict[int, Variant] = {}
        self.variant_order: list[int] = []
        self.by_sku: dict[str, list[int]] = {}
        self.by_item: dict[int, int] = {}
        self.locations: dict[int, Location] = {}
        self.levels: dict[tuple[int, int], int] = {}
        self.orders: dict[int, dict] = {}
        self.fulfillment_orders: dict[int, FulfillmentOrder] = {}
        self.order_fos: dict[int, list[int]] = {}
        self.fulfillments: dict[int, dict] = {}
        self.webhooks: dict[int, dict] = {}
        self.transactions: dict[int, list[dict]] = {}  # order id -> set by add_transaction (else derived)
        self.marked_paid: list[int] = []  # every order orderMarkAsPaid marked, in order
        self.cancelled: list[dict] = []  # every orderCancel done: order_id, reason, restock, notify, staff_note
        self.idempotent: dict[str, dict] = {}
        self.calls: Counter[str] = Counter()
        self.answered: Counter[str] = Counter()  # requests answered with data (not refused, throttled or failed)
        self.throttled = 0
        self.rest_throttled = 0
        self.cost_used = 0.0
        self.idempotent_replays = 0
        self._failures: deque[Failure] = deque()
        self._seq: Counter[str] = Counter()
        self._lock = threading.RLock()
        self.oauth = TokenEndpoint()  # apps on client credentials: tokens that expire
        # Shopify takes https addresses only; a browser test's connector on a loopback port has no certificate.
        self.loopback_http = False
        # What the legacy token's custom app was granted (currentAppInstallation.accessScopes).
        self.legacy_scope = (
            "read_orders,read_customers,read_products,read_inventory,write_inventory,read_locations,"
            "read_merchant_managed_fulfillment_orders,write_merchant_managed_fulfillment_orders,read_returns"
        )
        self.graphql = ShopifyGraphQL(self)
        self.rest = ShopifyRest(self)
        self.app = self._build_app()
        self._served = Served(self.app, "fake-shopify")
        self.url = self._served.url

    # ---- test controls ----------------------------------------------------------------------

    def stop(self) -> None:
        self._served.stop()

    def set_budget(self, maximum: float, restore_rate: float) -> None:
        """A new, full GraphQL bucket."""
        with self._lock:
            self.graphql_bucket = LeakyBucket(maximum, restore_rate, self.clock)

    def set_rest_bucket(self, size: int, leak_rate: float) -> None:
        with self._lock:
            self.rest_bucket = LeakyBucket(size, leak_rate, self.clock)

    def fill_rest_bucket(self, level: int | None = None) -> None:
        """As if other apps' requests had just filled the REST bucket (to `level`, default full)."""
        with self._lock:
            self.rest_bucket.fill(level)

    def fail_next(self, n: int, status: int = 503, retry_after: float | str | None = None) -> None:
        with self._lock:
            self._failures.extend(Failure(status, None if retry_after is None else str(retry_after)) for _ in range(n))

    def next_id(self, kind: str) -> int:
        # Shopify ids are large int64s; one sequence per kind keeps them distinct and readable.
        bases = {
            "product": 7_000_000_000,
            "variant": 4_000_000_000,
            "item": 4_500_000_000,
            "location": 60_000_000,
            "order": 5_500_000_000,
            "line": 13_000_000_000,
            "fo": 6_100_000_000,
            "foline": 6_200_000_000,
            "fulfillment": 4_100_000_000,
            "webhook": 1_100_000_000,
            "adjustment": 9_000_000,
            "fulfillment_line": 8_800_000_000,
            "transaction": 1_068_000_000,
            "refund": 9_100_000_000,
            "refund_line": 1_200_000_000,
        }
        self._seq[kind] += 1
        return bases.get(kind, 1) + self._seq[kind]

    def add_location(self, name: str | None = None, active: bool = True) -> int:
        with self._lock:
            loc = Location(self.next_id("location"), name or f"Warehouse {len(self.locations) + 1}", active)
            self.locations[loc.id] = loc
            for variant in self.variants.values():  # items are stocked at every location
                self.levels.setdefault((variant.inventory_item_id, loc.id), 0)
            return loc.id

    def add_variants(
        self,
        skus: Iterable[str | None],
        available: int | dict[int, int] = 0,
        per_product: int = 100,
        locations: Sequence[int] | None = None,
    ) -> list[Variant]:
        """Variants (grouped `per_product` to a product) stocked at `locations` (default: all) with
        `available` each (or {location_id: available})."""
        made: list[Variant] = []
        with self._lock:
            where = list(locations if locations is not None else self.locations)
            product_id = 0
            for n, sku in enumerate(skus):
                if n % per_product == 0:
                    product_id = self.next_id("product")
                    self.products[product_id] = {"id": product_id, "title": f"Product {product_id}"}
                variant = Variant(self.next_id("variant"), product_id, sku, self.next_id("item"), title=f"V{n}")
                self.variants[variant.id] = variant
                self.variant_order.append(variant.id)
                self.by_item[variant.inventory_item_id] = variant.id
                if sku:
                    self.by_sku.setdefault(sku, []).append(variant.id)
                for loc in where:
                    qty = available.get(loc, 0) if isinstance(available, dict) else available
                    self.levels[(variant.inventory_item_id, loc)] = qty
                made.append(variant)
        return made

    def variant_by_sku(self, sku: str) -> Variant:
        return self.variants[self.by_sku[sku][0]]

    def level(self, inventory_item_id: int, location_id: int) -> int | None:
        return self.levels.get((inventory_item_id, location_id))

    def set_level(self, inventory_item_id: int, location_id: int, available: int) -> None:
        with self._lock:
            self.levels[(inventory_item_id, location_id)] = available

    def add_transaction(
        self,
        order_id: int,
        kind: str,
        gateway: str,
        amount: str,
        *,
        status: str = "success",
        authorization: str | None = None,
        presentment: tuple[str, str] | None = None,
        parent_id: int | None = None,
        processed_at: datetime | None = None,
    ) -> dict:
        """A transaction of a known order, in shop money; `presentment` = (amount, currency) the buyer paid
        in, which GET transactions.json shows unless asked in_shop_currency=true (as Shopify does)."""
        with self._lock:
            order = self.orders[order_id]
            when = self.stamp(processed_at or datetime.now(UTC))
            tx = {
                "id": self.next_id("transaction"),
                "order_id": order_id,
                "kind": kind,
                "gateway": gateway,
                "status": status,
                "message": None,
                "created_at": when,
                "processed_at": when,
                "test": False,
                "authorization": authorization,
                "location_id": None,
                "user_id": None,
                "parent_id": parent_id,
                "device_id": None,
                "error_code": None,
                "source_name": "web",
                "receipt": {},
                "currency_exchange_adjustment": None,
                "amount": amount,
                "currency": order["currency"],
                "payment_id": f"{order.get('name', order_id)}.{len(self.transactions.get(order_id, [])) + 1}",
                "manual_payment_gateway": False,
                "amount_rounding": None,
                "_presentment": presentment or (amount, order.get("presentment_currency") or order["currency"]),
            }
            tx["admin_graphql_api_id"] = f"gid://shopify/OrderTransaction/{tx['id']}"
            self.transactions.setdefault(order_id, []).append(tx)
            return tx

    def transactions_of(self, order_id: int) -> list[dict]:
        """What Shopify lists for the order: those added, else one sale of the total by its first gateway
        when it is paid, one authorization when only authorized (a plain single-tender checkout)."""
        if order_id in self.transactions:
            return self.transactions[order_id]
        order = self.orders[order_id]
        kind = {"paid": "sale", "partially_refunded": "sale", "refunded": "sale", "authorized": "authorization"}.get(
            order.get("financial_status") or ""
        )
        if kind is None:
            return []
        gateway = next(iter(order.get("payment_gateway_names") or []), None) or order.get("gateway") or "bogus"
        shown = (order.get("total_price_set") or {}).get("presentment_money") or {}
        presentment = (shown["amount"], shown["currency_code"]) if shown else None
        tx = self.add_transaction(
            order_id, kind, gateway, order["total_price"], authorization=f"ch_{order_id}", presentment=presentment
        )
        return [tx]

    def add_order(
        self,
        lines: Sequence[tuple[str, int]],
        locations: Sequence[int] | None = None,
        updated_at: datetime | None = None,
        created_at: datetime | None = None,
        status: str = "open",
        financial_status: str = "paid",
        email: str = "buyer@example.com",
    ) -> int:
        """An order of (sku, quantity) lines; `locations[i]` is where line i is fulfilled from (default:
        the first location), one fulfillment order per location. status: open | closed | cancelled."""
        with self._lock:
            order_id = self.next_id("order")
            number = 1000 + len(self.orders) + 1
            now = datetime.now(UTC)
            created = created_at or updated_at or now
            line_items: list[dict] = []
            for sku, qty in lines:
                ids = self.by_sku.get(sku)
                variant = self.variants[ids[0]] if ids else None
                price = variant.price if variant else "10.00"
                line_items.append(
                    {
                        "id": self.next_id("line"),
                        "admin_graphql_api_id": None,
                        "variant_id": variant and variant.id,
                        "product_id": variant and variant.product_id,
                        "sku": sku,
                        "title": f"Item {sku}",
                        "variant_title": variant and variant.title,
                        "quantity": qty,
                        "price": price,
                        "price_set": _money_set(price),
                        "total_discount": "0.00",
                        "total_discount_set": _money_set("0.00"),
                        "tax_lines": [],
                        "discount_allocations": [],
                        "requires_shipping": True,
                        "fulfillable_quantity": qty,
                        "fulfillment_status": None,
                    }
                )
            for item in line_items:
                item["admin_graphql_api_id"] = gid("LineItem", item["id"])
            total = f"{sum(float(li['price']) * li['quantity'] for li in line_items):.2f}"
            self.orders[order_id] = {
                "id": order_id,
                "admin_graphql_api_id": gid("Order", order_id),
                "name": f"#{number}",
                "order_number": number,
                "email": email,
                "created_at": self.stamp(created),
                "updated_at": self.stamp(updated_at or created),
                "currency": "USD",
                "presentment_currency": "USD",
                "total_price": total,
                "total_price_set": _money_set(total),
                "subtotal_price": total,
                "subtotal_price_set": _money_set(total),
                "total_tax": "0.00",
                "total_tax_set": _money_set("0.00"),
                "total_discounts": "0.00",
                "total_discounts_set": _money_set("0.00"),
                "total_line_items_price": total,
                "taxes_included": False,
                "financial_status": financial_status,
                "fulfillment_status": None,
                "cancelled_at": self.stamp(now) if status == "cancelled" else None,
                "cancel_reason": "customer" if status == "cancelled" else None,
                "closed_at": self.stamp(now) if status == "closed" else None,
                "tags": "",
                "note_attributes": [],
                "line_items": line_items,
                "shipping_lines": [],
                "discount_codes": [],
                "refunds": [],
                "fulfillments": [],
                "tax_lines": [],
            }
            default = next(iter(self.locations)) if self.locations else self.add_location()
            per_location: dict[int, list[FoLine]] = {}
            for n, item in enumerate(line_items):
                loc = locations[n] if locations is not None else default
                per_location.setdefault(loc, []).append(
                    FoLine(self.next_id("foline"), item["id"], item["quantity"], item["quantity"])
                )
            self.order_fos[order_id] = []
            for loc, fo_lines in per_location.items():
                fo = FulfillmentOrder(self.next_id("fo"), order_id, loc, fo_lines)
                self.fulfillment_orders[fo.id] = fo
                self.order_fos[order_id].append(fo.id)
            return order_id

    def outstanding(self, order_id: int) -> str:
        """What the buyer still owes: the total, less the successful sales and captures (none for a paid order
        that lists no transactions: its checkout took the money)."""
        order = self.orders[order_id]
        if order["financial_status"] in ("paid", "partially_refunded", "refunded", "voided"):
            return "0.00"
        taken = sum(
            float(tx["amount"])
            for tx in self.transactions.get(order_id, [])
            if tx["kind"] in ("sale", "capture") and tx["status"] == "success"
        )
        return f"{max(0.0, float(order['total_price']) - taken):.2f}"

    def refund_payload(self, refund_id: int | str) -> dict:
        return refund_payload(self, refund_id)

    def touch_order(self, order_id: int, updated_at: datetime | None = None) -> None:
        with self._lock:
            self.orders[order_id]["updated_at"] = self.stamp(updated_at or datetime.now(UTC))

    def fulfillment_orders_of(self, order_id: int) -> list[FulfillmentOrder]:
        return [self.fulfillment_orders[i] for i in self.order_fos.get(order_id, [])]

    def fulfillments_of(self, order_id: int) -> list[dict]:
        return [f for f in self.fulfillments.values() if f["order_id"] == order_id]

    def stamp(self, when: datetime) -> str:
        return when.astimezone(self.tz).replace(microsecond=0).isoformat()

    # ---- webhooks out -----------------------------------------------------------------------

    def deliver(
        self,
        url: str,
        topic: str,
        payload: dict | bytes,
        secret: str,
        *,
        duplicates: int = 0,
        event_id: str | None = None,
        webhook_id: str | None = None,
        api_version: str = "2026-01",
        triggered_at: datetime | None = None,
        bad_signature: bool = False,
        timeout: float = 5,
    ) -> list[requests.Response]:
        """POST a signed webhook like Shopify does, plus `duplicates` re-sends of the same event (same
        X-Shopify-Event-Id; a new X-Shopify-Webhook-Id each, as a second subscription or a re-delivery
        would have). The HMAC covers exactly the bytes sent; base64, not hex."""
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
        signature = base64.b64encode(digest).decode()
        if bad_signature:
            signature = base64.b64encode(hashlib.sha256(b"not-" + body).digest()).decode()
        event = event_id or str(uuid.uuid4())
        when = (triggered_at or datetime.now(UTC)).astimezone(UTC)
        responses = []
        for n in range(duplicates + 1):
            headers = {
                "Content-Type": "application/json",
                "X-Shopify-Topic": topic,
                "X-Shopify-Hmac-Sha256": signature,
                "X-Shopify-Shop-Domain": self.shop_domain,
                "X-Shopify-API-Version": api_version,
                "X-Shopify-Webhook-Id": webhook_id if (webhook_id and n == 0) else str(uuid.uuid4()),
                "X-Shopify-Event-Id": event,
                "X-Shopify-Triggered-At": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            }
            responses.append(requests.post(url, data=body, headers=headers, timeout=(1, timeout)))
        return responses

    # ---- the HTTP side ----------------------------------------------------------------------

    def _build_app(self) -> Flask:
        app = Flask("fake_shopify")
        base = "/admin/api/<version>"
        routes: list[tuple[str, str, Callable[..., tuple], str]] = [
            ("/orders.json", "GET", self.rest.orders, "GET orders"),
            ("/orders/<int:order_id>.json", "GET", self.rest.order, "GET order"),
            (
                "/orders/<int:order_id>/fulfillment_orders.json",
                "GET",
                self.rest.fulfillment_orders,
                "GET fulfillment_orders",
            ),
            ("/orders/<int:order_id>/transactions.json", "GET", self.rest.transactions, "GET transactions"),
            ("/inventory_levels/set.json", "POST", self.rest.set_level, "POST inventory_levels/set"),
            ("/locations.json", "GET", self.rest.locations, "GET locations"),
            ("/webhooks.json", "GET", self.rest.webhooks, "GET webhooks"),
            ("/webhooks.json", "POST", self.rest.create_webhook, "POST webhooks"),
            ("/webhooks/<int:webhook_id>.json", "DELETE", self.rest.delete_webhook, "DELETE webhook"),
        ]
        for path, method, view, name in routes:
            app.add_url_rule(base + path, endpoint=name, view_func=self._rest(view, name), methods=[method])
        app.add_url_rule(base + "/graphql.json", endpoint="graphql", view_func=self._graphql_view, methods=["POST"])
        app.add_url_rule("/admin/oauth/access_token", endpoint="token", view_func=self.oauth.view, methods=["POST"])
        app.add_url_rule(
            "/admin/oauth/authorize",
            endpoint="authorize",
            methods=["GET", "POST"],
            view_func=lambda: self.oauth.authorize(self.shop_domain),
        )
        return app

    def _gate(self, version: str) -> Response | None:
        """What every request passes first: injected failures, the version, the token."""
        with self._lock:
            failure = self._failures.popleft() if self._failures else None
        if failure is not None:
            response = _json(failure.status, {"errors": f"injected failure {failure.status}"})
            if failure.retry_after is not None:
                response.headers["Retry-After"] = failure.retry_after
            return response
        if not _VERSION.fullmatch(version):
            return _json(404, {"errors": "Not Found"})
        given = request.headers.get("X-Shopify-Access-Token")
        if given != self.token and not self.oauth.valid(given):
            with self._lock:
                self.calls["401"] += 1
            return _json(
                401, {"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"}
            )
        return None

    def _rest(self, view: Callable[..., tuple], name: str) -> Callable[..., Response]:
        @functools.wraps(view)
        def wrapper(version: str, **kwargs: Any) -> Response:
            with self._lock:
                self.calls[name] += 1
            early = self._gate(version)
            if early is not None:
                return early
            with self._lock:
                bucket = self.rest_bucket
                if not bucket.take(1):
                    self.rest_throttled += 1
                    wait = math.ceil(bucket.seconds_until(1) * 100) / 100
                    response = _json(
                        429,
                        {
                            "errors": "Exceeded 2 calls per second for api client. Reduce request "
                            "rates to resume uninterrupted service."
                        },
                    )
                    response.headers["Retry-After"] = f"{max(wait, 0.01):.2f}"
                else:
                    try:
                        status, payload, *headers = view(version=version, **kwargs)
                        response = _json(status, payload)
                        response.headers.update(headers[0] if headers else {})
                    except RestError as exc:
                        response = _json(exc.status, {"errors": exc.errors})
                response.headers["X-Shopify-Shop-Api-Call-Limit"] = (
                    f"{math.ceil(bucket.level() - 1e-9)}/{int(bucket.capacity)}"
                )
            response.headers["X-Shopify-API-Version"] = version
            if response.status_code < 300:
                with self._lock:
                    self.answered[name] += 1
            return response

        return wrapper

    def _graphql_view(self, version: str) -> Response:
        body = request.get_json(silent=True) or {}
        with self._lock:
            self.calls["graphql"] += 1
        early = self._gate(version)
        if early is not None:
            return early
        with self._lock:
            status, payload = self.graphql.execute(version, body.get("query") or "", body.get("variables") or {})
            if status == 200 and payload.get("data") is not None:
                self.answered["graphql"] += 1
        response = _json(status, payload)
        response.headers["X-Shopify-API-Version"] = version
        return response

    # ---- shared by REST and GraphQL ------------------------------------------------------

    def item_of_line(self, line_item: dict) -> int | None:
        variant = self.variants.get(line_item.get("variant_id") or 0)
        return variant.inventory_item_id if variant else None

    def webhook_json(self, hook: dict) -> dict:
        return {
            "id": hook["id"],
            "address": hook["address"],
            "topic": hook["topic"],
            "format": hook["format"],
            "created_at": hook["created_at"],
            "updated_at": hook["created_at"],
            "fields": [],
            "metafield_namespaces": [],
            "api_version": hook["api_version"],
        }

    def add_webhook(self, topic: str, address: str, version: str, fmt: str = "json") -> dict:
        """A subscription, for REST and GraphQL alike (Shopify keeps one list); WebhookRejected(field, text)."""
        if topic not in SUPPORTED_TOPICS:
            raise WebhookRejected("topic", f"Invalid topic specified: {topic}")
        loopback = self.loopback_http and address.startswith("http://127.0.0.1:")
        if not address.startswith(("https://", "pubsub://", "arn:aws:events:")) and not loopback:
            raise WebhookRejected("address", f"protocol {address.split(':', 1)[0]}:// is not supported")
        if any(h["topic"] == topic and h["address"] == address for h in self.webhooks.values()):
            raise WebhookRejected("address", "for this topic has already been taken")
        hook: dict[str, Any] = {
            "id": self.next_id("webhook"),
            "topic": topic,
            "address": address,
            "format": fmt,
            "api_version": version,
            "created_at": self.stamp(datetime.now(UTC)),
        }
        self.webhooks[hook["id"]] = hook
        return hook


def _money_set(amount: str, currency: str = "USD") -> dict:
    return {
        "shop_money": {"amount": amount, "currency_code": currency},
        "presentment_money": {"amount": amount, "currency_code": currency},
    }


def _json(status: int, payload: Any) -> Response:
    return Response(json.dumps(payload), status=status, mimetype="application/json")
