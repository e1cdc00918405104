"""A fake BigCommerce store over real HTTP, built from BigCommerce's public API documentation.

- V2 orders (`GET /stores/{hash}/v2/orders?min_date_modified=&sort=date_modified:asc&page=&limit=`, an order,
  its products, shipping_addresses, coupons, taxes and shipments, each paged, 204 with no body when a list
  is empty), `PUT` an order's status, `POST` a shipment with its tracking.
- V3 refunds (`/v3/orders/{id}/payment_actions/refunds`), catalog variants (`sku:in` filter), inventory
  locations and absolute adjustments per location, hooks (with the custom headers BigCommerce sends with
  every delivery). V3 lists carry `meta.pagination`.
- `X-Auth-Token` on every call (401 without the right one), and the rate limit BigCommerce reports on every
  answer: `X-Rate-Limit-Requests-Quota`, `-Requests-Left`, `-Time-Window-Ms`, `-Time-Reset-Ms`, with a 429
  once the window's quota is spent.
- Webhooks are thin: `{scope, store_id, data: {type, id}, hash, created_at, producer}` POSTed to every active
  hook of the scope with the hook's headers; `hash` is a SHA-1 of the payload, not a signature.

Amounts are strings with four decimals, as BigCommerce writes them; an order's figures are computed the way
BigCommerce presents them (ex and inc tax for every part, discounts per product in `applied_discounts`).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any

import requests
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from tests.fakes.server import Served

CENT = Decimal("0.01")
STATUS = {
    0: "Incomplete",
    1: "Pending",
    2: "Shipped",
    3: "Partially Shipped",
    4: "Refunded",
    5: "Cancelled",
    6: "Declined",
    7: "Awaiting Payment",
    8: "Awaiting Pickup",
    9: "Awaiting Shipment",
    10: "Completed",
    11: "Awaiting Fulfillment",
    12: "Manual Verification Required",
    13: "Disputed",
    14: "Partially Refunded",
}


def _s(value: Decimal) -> str:
    return f"{value.quantize(Decimal('0.0001'))}"


@dataclass
class Line:
    sku: str
    quantity: int
    price: Decimal  # the price as the merchant entered it (with tax when prices include tax)
    discount: Decimal = Decimal(0)  # taken off this line (a coupon's share)
    tax_rate: Decimal = Decimal(0)  # percent


class FakeBigCommerce:
    def __init__(
        self, store_hash: str = "abc123", token: str = "bc_token_0123456789", quota: int = 150, window_ms: int = 30_000
    ):
        self.store_hash, self.token = store_hash, token
        self.quota, self.window_ms = quota, window_ms
        self._window_start, self._used = time.monotonic(), 0
        self._lock = threading.Lock()
        self._seq = 100
        self.orders: dict[int, dict] = {}
        self.parts: dict[
            int, dict[str, list[dict]]
        ] = {}  # order id -> products, shipping_addresses, coupons, taxes, shipments
        self.refunds: dict[int, list[dict]] = {}
        self.variants: dict[int, dict] = {}
        self.locations = [{"id": 1, "code": "BC-MAIN", "label": "Main warehouse", "is_active": True}]
        self.levels: dict[tuple[int, int], int] = {}
        self.hooks: dict[int, dict] = {}
        self.calls: Counter[str] = Counter()
        self.adjustments: list[dict] = []
        self.after_list: Any = None  # called after each page of orders is served (a change mid-listing)
        self._urls = Map(
            [
                Rule(f"/stores/{store_hash}/<path:path>", endpoint="api", methods=["GET", "POST", "PUT", "DELETE"]),
            ]
        )
        self.served = Served(self._app, "fake-bigcommerce")
        self.url = self.served.url

    def stop(self) -> None:
        self.served.stop()

    # ---- building the store ------------------------------------------------------------------

    def _id(self) -> int:
        self._seq += 1
        return self._seq

    def add_variant(self, sku: str, level: int = 0) -> int:
        with self._lock:
            vid, pid = self._id(), self._id()
            self.variants[vid] = {"id": vid, "product_id": pid, "sku": sku, "inventory_level": level}
            for loc in self.locations:
                self.levels[(vid, loc["id"])] = level
            return vid

    def add_order(
        self,
        lines: Sequence[Line],
        *,
        shipping: Decimal = Decimal("0"),
        shipping_tax_rate: Decimal = Decimal("0"),
        prices_include_tax: bool = False,
        customer_id: int = 0,
        email: str = "buyer@example.com",
        currency: str = "USD",
        status_id: int = 11,
        payment_method: str = "Credit Card",
        payment_status: str = "captured",
        coupon: str = "",
        modified: datetime | None = None,
        tax_name: str | None = None,
    ) -> int:
        """An order computed as BigCommerce presents it: each part ex and inc tax, tax on the discounted price."""
        with self._lock:
            oid = self._id()
            address_id = self._id()
            products, taxes = [], []
            sub_ex = sub_inc = tax_total = discount = Decimal(0)
            for line in lines:
                pid = self._id()
                rate = line.tax_rate / 100
                if prices_include_tax:
                    inc = line.price
                    ex = inc / (1 + rate)
                else:
                    ex = line.price
                    inc = ex * (1 + rate)
                total_ex, total_inc = ex * line.quantity, inc * line.quantity
                if prices_include_tax:
                    taxable = (total_inc - line.discount) / (1 + rate)
                    line_tax = ((total_inc - line.discount) - taxable).quantize(CENT, ROUND_HALF_UP)
                else:
                    line_tax = ((total_ex - line.discount) * rate).quantize(CENT, ROUND_HALF_UP)
                products.append(
                    {
                        "id": pid,
                        "order_id": oid,
                        "product_id": self._id(),
                        "variant_id": next((v for v, row in self.variants.items() if row["sku"] == line.sku), None),
                        "order_address_id": address_id,
                        "name": f"Item {line.sku}",
                        "sku": line.sku,
                        "type": "physical",
                        "base_price": _s(line.price),
                        "price_ex_tax": _s(ex),
                        "price_inc_tax": _s(inc),
                        "price_tax": _s(inc - ex),
                        "base_total": _s(line.price * line.quantity),
                        "total_ex_tax": _s(total_ex),
                        "total_inc_tax": _s(total_inc),
                        "total_tax": _s(line_tax),
                        "quantity": line.quantity,
                        "quantity_shipped": 0,
                        "quantity_refunded": 0,
                        "applied_discounts": (
                            [
                                {
                                    "id": "coupon",
                                    "amount": _s(line.discount),
                                    "name": coupon or "Discount",
                                    "code": coupon or None,
                                    "target": "order",
                                }
                            ]
                            if line.discount
                            else []
                        ),
                    }
                )
                if line_tax:
                    taxes.append(
                        {
                            "id": self._id(),
                            "order_address_id": address_id,
                            "name": tax_name or f"Tax {line.tax_rate}%",
                            "class": "Default Tax Class",
                            "rate": _s(line.tax_rate),
                            "priority": 0,
                            "priority_amount": _s(line_tax),
                            "line_amount": _s(line_tax),
                            "order_product_id": pid,
                            "line_item_type": "item",
                        }
                    )
                sub_ex, sub_inc = sub_ex + total_ex, sub_inc + total_inc
                tax_total += line_tax
                discount += line.discount
            ship_rate = shipping_tax_rate / 100
            if prices_include_tax:
                ship_inc, ship_ex = shipping, shipping / (1 + ship_rate)
                ship_tax = (ship_inc - ship_ex).quantize(CENT, ROUND_HALF_UP)
            else:
                ship_ex = shipping
                ship_tax = (shipping * ship_rate).quantize(CENT, ROUND_HALF_UP)
                ship_inc = ship_ex + ship_tax
            if ship_tax:
                taxes.append(
                    {
                        "id": self._id(),
                        "order_address_id": address_id,
                        "name": tax_name or f"Tax {shipping_tax_rate}%",
                        "class": "Shipping",
                        "rate": _s(shipping_tax_rate),
                        "priority": 0,
                        "priority_amount": _s(ship_tax),
                        "line_amount": _s(ship_tax),
                        "order_product_id": None,
                        "line_item_type": "shipping",
                    }
                )
            tax_total += ship_tax
            if prices_include_tax:
                total_inc = sub_inc - discount + ship_inc
                total_ex = total_inc - tax_total
            else:
                total_ex = sub_ex - discount + ship_ex
                total_inc = total_ex + tax_total
            when = (modified or datetime.now(UTC)).astimezone(UTC)
            billing = {
                "first_name": "Kim",
                "last_name": "Buyer" if customer_id else "Guest",
                "company": "",
                "street_1": "1 Main St",
                "street_2": "",
                "city": "Austin",
                "state": "Texas",
                "zip": "78701",
                "country": "United States",
                "country_iso2": "US",
                "phone": "+1 512 555 0100",
                "email": email,
            }
            self.orders[oid] = {
                "id": oid,
                "customer_id": customer_id,
                "date_created": format_datetime(when, usegmt=True),
                "date_modified": format_datetime(when, usegmt=True),
                "date_shipped": "",
                "status_id": status_id,
                "status": STATUS[status_id],
                "subtotal_ex_tax": _s(sub_ex),
                "subtotal_inc_tax": _s(sub_inc),
                "subtotal_tax": _s(sub_inc - sub_ex),
                "base_shipping_cost": _s(shipping),
                "shipping_cost_ex_tax": _s(ship_ex),
                "shipping_cost_inc_tax": _s(ship_inc),
                "shipping_cost_tax": _s(ship_tax),
                "base_handling_cost": "0.0000",
                "handling_cost_ex_tax": "0.0000",
                "handling_cost_inc_tax": "0.0000",
                "base_wrapping_cost": "0.0000",
                "wrapping_cost_ex_tax": "0.0000",
                "wrapping_cost_inc_tax": "0.0000",
                "total_ex_tax": _s(total_ex),
                "total_inc_tax": _s(total_inc),
                "total_tax": _s(tax_total),
                "items_total": sum(li.quantity for li in lines),
                "items_shipped": 0,
                "payment_method": payment_method,
                "payment_status": payment_status,
                "refunded_amount": "0.0000",
                "store_credit_amount": "0.0000",
                "gift_certificate_amount": "0.0000",
                "currency_code": currency,  # the display currency
                "currency_exchange_rate": "1.0000000000",
                "default_currency_code": currency,  # the transactional one: the amounts'
                "store_default_currency_code": currency,
                "discount_amount": "0.0000",
                "coupon_discount": _s(discount),
                "customer_message": "",
                "is_deleted": False,
                "billing_address": billing,
                "products": {
                    "url": f"{self.url}/stores/{self.store_hash}/v2/orders/{oid}/products",
                    "resource": f"/orders/{oid}/products",
                },
                "shipping_addresses": {"url": "", "resource": f"/orders/{oid}/shipping_addresses"},
                "coupons": {"url": "", "resource": f"/orders/{oid}/coupons"},
            }
            self.parts[oid] = {
                "products": products,
                "shipping_addresses": [{**billing, "id": address_id, "order_id": oid, "shipping_method": "Flat Rate"}],
                "coupons": [{"id": self._id(), "code": coupon, "discount": _s(discount), "type": 0}] if coupon else [],
                "taxes": taxes,
                "shipments": [],
            }
            self.refunds[oid] = []
            return oid

    def touch(self, order_id: int, **changes: Any) -> None:
        """The order changes (a status, a refund): its date_modified moves on by a second at least."""
        with self._lock:
            order = self.orders[order_id]
            before = parsedate_to_datetime(order["date_modified"])
            order.update(changes)
            if "status_id" in changes:
                order["status"] = STATUS[changes["status_id"]]
            now = max(datetime.now(UTC), before + timedelta(seconds=1))
            order["date_modified"] = format_datetime(now, usegmt=True)

    def add_refund(self, order_id: int, items: Sequence[dict], total: Decimal, reason: str = "") -> int:
        with self._lock:
            rid = self._id()
            self.refunds[order_id].append(
                {
                    "id": rid,
                    "order_id": order_id,
                    "user_id": 0,
                    "created": datetime.now(UTC).isoformat(),
                    "reason": reason,
                    "total_amount": float(total),
                    "total_tax": 0,
                    "uses_merchant_override_values": False,
                    "payments": [
                        {
                            "id": rid,
                            "provider_id": "test",
                            "amount": float(total),
                            "offline": False,
                            "is_declined": False,
                        }
                    ],
                    "items": list(items),
                }
            )
        self.touch(order_id, payment_status="partially refunded", refunded_amount=_s(total))
        return rid

    def full(self, order_id: int) -> dict:
        """The order as the connector's client reads it (the order with its sub-resources)."""
        return {**json.loads(json.dumps(self.orders[order_id])), **json.loads(json.dumps(self.parts[order_id]))}

    # ---- webhooks ----------------------------------------------------------------------------

    def thin(self, scope: str, order_id: int, created_at: int | None = None) -> dict:
        body = {
            "scope": scope,
            "store_id": "1025646",
            "data": {"type": "order", "id": order_id},
            "created_at": created_at if created_at is not None else int(time.time()),
            "producer": f"stores/{self.store_hash}",
        }
        body["hash"] = hashlib.sha1(json.dumps(body, sort_keys=True).encode()).hexdigest()
        return body

    def deliver(self, scope: str, order_id: int, payload: dict | None = None) -> list[requests.Response]:
        """POST the thin payload to every active hook of `scope`, with the hook's custom headers."""
        body = payload or self.thin(scope, order_id)
        sent = []
        for hook in list(self.hooks.values()):
            if hook["scope"] == scope and hook["is_active"]:
                headers = {"Content-Type": "application/json", **hook["headers"]}
                sent.append(requests.post(hook["destination"], data=json.dumps(body), headers=headers, timeout=5))
        return sent

    # ---- HTTP ----------------------------------------------------------------------------------

    def _app(self, environ: dict, start_response: Any) -> Any:
        request = Request(environ)
        response = self._answer(request)
        return response(environ, start_response)

    def _answer(self, request: Request) -> Response:
        adapter = self._urls.bind_to_environ(request.environ)
        try:
            _, args = adapter.match()
        except Exception:
            return _json(404, {"status": 404, "title": "Not found"})
        if request.headers.get("X-Auth-Token") != self.token:
            return _json(401, {"status": 401, "title": "You are not authorized"})
        limited = self._meter()
        if limited is not None:
            return limited
        path, method = args["path"], request.method
        name = f"{method} " + "/".join("<id>" if p.isdigit() else p for p in path.split("/"))
        self.calls[name] += 1
        body = request.get_json(silent=True)
        with self._lock:
            answer = self._route(method, path.split("/"), request.args, body)
        return self._with_limits(answer)

    def _meter(self) -> Response | None:
        now = time.monotonic()
        with self._lock:
            if (now - self._window_start) * 1000 >= self.window_ms:
                self._window_start, self._used = now, 0
            if self._used >= self.quota:
                self.calls["429"] += 1
                return self._with_limits(_json(429, {"status": 429, "title": "Too many requests"}))
            self._used += 1
        return None

    def _with_limits(self, response: Response) -> Response:
        elapsed = (time.monotonic() - self._window_start) * 1000
        response.headers["X-Rate-Limit-Requests-Quota"] = str(self.quota)
        response.headers["X-Rate-Limit-Requests-Left"] = str(max(0, self.quota - self._used))
        response.headers["X-Rate-Limit-Time-Window-Ms"] = str(self.window_ms)
        response.headers["X-Rate-Limit-Time-Reset-Ms"] = str(max(0, int(self.window_ms - elapsed)))
        return response

    def _route(self, method: str, parts: list[str], args: Any, body: Any) -> Response:
        version, rest = parts[0], parts[1:]
        if version == "v2" and rest[:1] == ["orders"]:
            return self._v2_orders(method, rest[1:], args, body)
        if version == "v3":
            if rest[:1] == ["orders"] and rest[2:] == ["payment_actions", "refunds"]:
                return self._v3_list(self.refunds.get(int(rest[1]), []), args)
            if rest == ["catalog", "variants"]:
                wanted = set(filter(None, (args.get("sku:in") or "").split(","))) or None
                found = [v for v in self.variants.values() if wanted is None or v["sku"] in wanted]
                return self._v3_list(found, args)
            if rest == ["inventory", "locations"]:
                return self._v3_list(self.locations, args)
            if rest == ["inventory", "adjustments", "absolute"] and method == "PUT":
                return self._absolute(body)
            if rest[:1] == ["hooks"]:
                return self._hooks(method, rest[1:], args, body)
        return _json(404, {"status": 404, "title": "Not found"})

    def _v2_orders(self, method: str, rest: list[str], args: Any, body: Any) -> Response:
        if not rest:
            since = args.get("min_date_modified")
            found = list(self.orders.values())
            if since:
                floor = parsedate_to_datetime(since)
                found = [o for o in found if parsedate_to_datetime(o["date_modified"]) >= floor]
            found.sort(key=lambda o: (parsedate_to_datetime(o["date_modified"]), o["id"]))
            answer = self._v2_list(found, args)
            if self.after_list is not None:
                self.after_list()
            return answer
        oid = int(rest[0])
        if oid not in self.orders:
            return _json(404, [{"status": 404, "message": "The requested resource was not found."}])
        if len(rest) == 1:
            if method == "PUT":
                if "status_id" in (body or {}):
                    self._seq += 0
                    order = self.orders[oid]
                    order["status_id"] = int(body["status_id"])
                    order["status"] = STATUS[order["status_id"]]
                    order["date_modified"] = format_datetime(datetime.now(UTC), usegmt=True)
                return _json(200, self.orders[oid])
            return _json(200, self.orders[oid])
        part = rest[1]
        if part == "shipments" and method == "POST":
            return self._ship(oid, body or {})
        if part in self.parts[oid]:
            return self._v2_list(self.parts[oid][part], args)
        return _json(404, [{"status": 404, "message": "The requested resource was not found."}])

    def _ship(self, oid: int, body: dict) -> Response:
        products = {p["id"]: p for p in self.parts[oid]["products"]}
        for item in body.get("items") or []:
            product = products.get(item.get("order_product_id"))
            if product is None or item.get("quantity", 0) > product["quantity"] - product["quantity_shipped"]:
                return _json(
                    400,
                    [
                        {
                            "status": 400,
                            "message": "The quantity specified is greater than the quantity of the product that is "
                            "available to ship.",
                        }
                    ],
                )
        for item in body["items"]:
            products[item["order_product_id"]]["quantity_shipped"] += item["quantity"]
        shipment = {
            "id": self._id(),
            "order_id": oid,
            "order_address_id": body.get("order_address_id"),
            "date_created": format_datetime(datetime.now(UTC), usegmt=True),
            "tracking_number": body.get("tracking_number") or "",
            "tracking_carrier": body.get("tracking_carrier") or "",
            "comments": body.get("comments") or "",
            "items": body.get("items") or [],
        }
        self.parts[oid]["shipments"].append(shipment)
        shipped = all(p["quantity_shipped"] >= p["quantity"] for p in products.values())
        order = self.orders[oid]
        order["status_id"] = 2 if shipped else 3
        order["status"] = STATUS[order["status_id"]]
        order["date_modified"] = format_datetime(datetime.now(UTC), usegmt=True)
        return _json(201, shipment)

    def _absolute(self, body: Any) -> Response:
        items = (body or {}).get("items") or []
        if len(items) > 2000:
            return _json(422, {"status": 422, "title": "Too many items: 2000 at most"})
        known = {loc["id"] for loc in self.locations}
        for item in items:
            if item.get("variant_id") not in self.variants or item.get("location_id") not in known:
                return _json(
                    422, {"status": 422, "title": "Invalid item", "errors": {"items": "unknown variant or location"}}
                )
        for item in items:
            self.levels[(item["variant_id"], item["location_id"])] = int(item["quantity"])
            self.variants[item["variant_id"]]["inventory_level"] = sum(
                q for (v, _), q in self.levels.items() if v == item["variant_id"]
            )
        self.adjustments.append(body)
        return _json(200, {"transaction_id": f"tx-{self._id()}"})

    def _hooks(self, method: str, rest: list[str], args: Any, body: Any) -> Response:
        if not rest:
            if method == "POST":
                hid = self._id()
                self.hooks[hid] = {
                    "id": hid,
                    "client_id": "app",
                    "store_hash": self.store_hash,
                    "scope": body["scope"],
                    "destination": body["destination"],
                    "is_active": bool(body.get("is_active", True)),
                    "headers": dict(body.get("headers") or {}),
                }
                return _json(200, {"data": self.hooks[hid], "meta": {}})
            return self._v3_list(list(self.hooks.values()), args)
        hid = int(rest[0])
        if hid not in self.hooks:
            return _json(404, {"status": 404, "title": "Not found"})
        if method == "DELETE":
            return _json(200, {"data": self.hooks.pop(hid), "meta": {}})
        if method == "PUT":
            self.hooks[hid].update(
                {k: v for k, v in (body or {}).items() if k in ("destination", "is_active", "headers", "scope")}
            )
        return _json(200, {"data": self.hooks[hid], "meta": {}})

    @staticmethod
    def _v2_list(items: list[dict], args: Any) -> Response:
        page, limit = int(args.get("page", 1)), min(int(args.get("limit", 50)), 250)
        chunk = items[(page - 1) * limit : page * limit]
        return Response(status=204) if not chunk else _json(200, chunk)

    @staticmethod
    def _v3_list(items: list[dict], args: Any) -> Response:
        page, limit = int(args.get("page", 1)), min(int(args.get("limit", 50)), 250)
        total_pages = max(1, -(-len(items) // limit))
        chunk = items[(page - 1) * limit : page * limit]
        meta = {
            "pagination": {
                "total": len(items),
                "count": len(chunk),
                "per_page": limit,
                "current_page": page,
                "total_pages": total_pages,
            }
        }
        return _json(200, {"data": chunk, "meta": meta})


def _json(status: int, payload: Any) -> Response:
    return Response(json.dumps(payload), status=status, mimetype="application/json")
