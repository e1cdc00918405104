"""The REST half of the fake Shopify (docs/platforms.md#shopify): the handlers behind FakeShopify's REST routes.

Each runs under the shop's lock behind FakeShopify._rest (injected failures, version, token, the
40-call bucket leaking 2/s, X-Shopify-Shop-Api-Call-Limit, 429 + Retry-After) and returns
(status, payload[, headers]).
- GET orders.json: status=open by default (open | closed | cancelled | any), updated_at_min/max,
  created_at_min, since_id, financial_status, order ("updated_at asc"; default "id asc"), limit 1..250
  (a larger limit answers 400: a guess, Shopify may clamp), keyset `page_info` cursors in Link rel
  previous/next; with page_info only limit and fields may be sent (else 400).
- GET orders/<id>.json, orders/<id>/fulfillment_orders.json, orders/<id>/transactions.json, locations.json;
  POST inventory_levels/set.json;
  GET/POST webhooks.json (422 for a duplicate topic+address or a non-https address), DELETE webhooks/<id>.json.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from flask import request

from tests.fakes.shopify_graphql import WebhookRejected

if TYPE_CHECKING:
    from tests.fakes.shopify import FakeShopify


class RestError(Exception):
    def __init__(self, status: int, errors: Any):
        super().__init__(str(errors))
        self.status, self.errors = status, errors


def _b64(doc: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(doc).encode()).decode().rstrip("=")


def _unb64(text: str) -> dict:
    try:
        return json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except ValueError:
        raise RestError(400, {"page_info": ["Invalid value."]}) from None


def _parse_time(value: str, name: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise RestError(400, {name: [f"{value!r} is not a valid ISO 8601 time"]}) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class ShopifyRest:
    """The REST endpoints over a FakeShopify's state."""

    def __init__(self, shop: FakeShopify):
        self.shop = shop

    def orders(self, version: str) -> tuple:
        args = request.args
        limit = int(args.get("limit", 50))
        if not 1 <= limit <= 250:
            raise RestError(400, {"limit": ["must be between 1 and 250"]})  # a guess: Shopify may clamp instead
        if "page_info" in args:
            extra = set(args) - {"page_info", "limit", "fields"}
            if extra:  # Shopify: with page_info only limit and fields may be sent
                raise RestError(400, {"page_info": [f"cannot be combined with {', '.join(sorted(extra))}"]})
            cursor = _unb64(args["page_info"])
            filters, after, direction = cursor["filters"], cursor["key"], cursor["dir"]
        else:
            filters = {
                k: args[k]
                for k in (
                    "status",
                    "updated_at_min",
                    "updated_at_max",
                    "created_at_min",
                    "since_id",
                    "order",
                    "financial_status",
                )
                if k in args
            }
            after, direction = None, "next"
        rows = self._filtered_orders(filters)
        sort_field = (filters.get("order") or "id asc").split()[0]
        descending = (filters.get("order") or "id asc").endswith("desc")

        def key(order: dict) -> list:
            value = order[sort_field]
            if sort_field.endswith("_at"):
                value = _parse_time(value, sort_field).timestamp()
            return [value, order["id"]]

        rows.sort(key=key, reverse=descending)
        keys = [key(o) for o in rows]
        if after is None:
            start = 0
        elif direction == "next":
            start = next((i for i, k in enumerate(keys) if (k > after) != descending and k != after), len(rows))
        else:  # previous: the page that ends just before `after`
            end = next((i for i, k in enumerate(keys) if k == after or ((k > after) != descending)), len(rows))
            start = max(0, end - limit)
        page = rows[start : start + limit]
        base = f"{request.host_url.rstrip('/')}{request.path}"

        def link(key: list, direction: str) -> str:
            cursor = _b64({"filters": filters, "key": key, "dir": direction})
            return f'<{base}?{urlencode({"limit": limit, "page_info": cursor})}>; rel="{direction}"'

        links = []
        if page and start > 0:
            links.append(link(keys[start], "previous"))
        if page and start + limit < len(rows):
            links.append(link(keys[start + len(page) - 1], "next"))
        payload = {"orders": [self._order_json(o) for o in page]}
        return 200, payload, ({"Link": ", ".join(links)} if links else {})

    def _filtered_orders(self, filters: dict) -> list[dict]:
        status = filters.get("status", "open")  # Shopify's default: open orders only
        out = []
        for order in self.shop.orders.values():
            state = "cancelled" if order["cancelled_at"] else "closed" if order["closed_at"] else "open"
            if status != "any" and state != status:
                continue
            if "financial_status" in filters and order["financial_status"] != filters["financial_status"]:
                continue
            updated = _parse_time(order["updated_at"], "updated_at")
            if "updated_at_min" in filters and updated < _parse_time(filters["updated_at_min"], "updated_at_min"):
                continue
            if "updated_at_max" in filters and updated > _parse_time(filters["updated_at_max"], "updated_at_max"):
                continue
            if "created_at_min" in filters and _parse_time(order["created_at"], "created_at") < _parse_time(
                filters["created_at_min"], "created_at_min"
            ):
                continue
            if "since_id" in filters and order["id"] <= int(filters["since_id"]):
                continue
            out.append(order)
        return out

    def _order_json(self, order: dict) -> dict:
        return json.loads(json.dumps(order))

    def order(self, version: str, order_id: int) -> tuple[int, Any]:
        if order_id not in self.shop.orders:
            raise RestError(404, "Not Found")
        return 200, {"order": self._order_json(self.shop.orders[order_id])}

    def fulfillment_orders(self, version: str, order_id: int) -> tuple[int, Any]:
        if order_id not in self.shop.orders:
            raise RestError(404, "Not Found")
        out = []
        items = {li["id"]: li for li in self.shop.orders[order_id]["line_items"]}
        for fo in self.shop.fulfillment_orders_of(order_id):
            location = self.shop.locations[fo.location_id]
            out.append(
                {
                    "id": fo.id,
                    "order_id": order_id,
                    "assigned_location_id": fo.location_id,
                    "status": fo.status.lower(),
                    "request_status": "unsubmitted",
                    "assigned_location": {"location_id": fo.location_id, "name": location.name},
                    "line_items": [
                        {
                            "id": line.id,
                            "fulfillment_order_id": fo.id,
                            "line_item_id": line.line_item_id,
                            "quantity": line.total,
                            "fulfillable_quantity": line.remaining,
                            "variant_id": items[line.line_item_id]["variant_id"],
                            "inventory_item_id": self.shop.item_of_line(items[line.line_item_id]),
                        }
                        for line in fo.lines
                    ],
                }
            )
        return 200, {"fulfillment_orders": out}

    def transactions(self, version: str, order_id: int) -> tuple[int, Any]:
        """Shopify lists a multi-currency order's transactions in the presentment currency unless asked
        in_shop_currency=true; a REST transaction has no *_set twin for its amount."""
        if order_id not in self.shop.orders:
            raise RestError(404, "Not Found")
        in_shop = request.args.get("in_shop_currency", "false").lower() == "true"
        out = []
        for tx in self.shop.transactions_of(order_id):
            shown = {k: v for k, v in tx.items() if not k.startswith("_")}
            if not in_shop:
                shown["amount"], shown["currency"] = tx["_presentment"]
            out.append(shown)
        return 200, {"transactions": out}

    def set_level(self, version: str) -> tuple[int, Any]:
        body = request.get_json(silent=True) or {}
        try:
            item, loc, available = int(body["inventory_item_id"]), int(body["location_id"]), int(body["available"])
        except (KeyError, TypeError, ValueError):
            raise RestError(422, ["inventory_item_id, location_id and available are required integers"]) from None
        if item not in self.shop.by_item:
            raise RestError(422, ["Inventory item does not exist"])
        if loc not in self.shop.locations:
            raise RestError(422, ["Location does not exist"])
        self.shop.levels[(item, loc)] = available  # set.json also connects the item to the location
        return 200, {
            "inventory_level": {
                "inventory_item_id": item,
                "location_id": loc,
                "available": available,
                "updated_at": self.shop.stamp(datetime.now(UTC)),
                "admin_graphql_api_id": f"gid://shopify/InventoryLevel/{item}?inventory_item_id={item}",
            }
        }

    def locations(self, version: str) -> tuple[int, Any]:
        return 200, {
            "locations": [
                {"id": loc.id, "name": loc.name, "active": loc.active} for loc in self.shop.locations.values()
            ]
        }

    def webhooks(self, version: str) -> tuple[int, Any]:
        return 200, {"webhooks": [self.shop.webhook_json(h) for h in self.shop.webhooks.values()]}

    def create_webhook(self, version: str) -> tuple[int, Any]:
        doc = (request.get_json(silent=True) or {}).get("webhook") or {}
        try:
            hook = self.shop.add_webhook(
                str(doc.get("topic", "")), str(doc.get("address", "")), version, str(doc.get("format", "json"))
            )
        except WebhookRejected as exc:
            raise RestError(422, {exc.field: [exc.message]}) from None
        return 201, {"webhook": self.shop.webhook_json(hook)}

    def delete_webhook(self, version: str, webhook_id: int) -> tuple[int, Any]:
        if self.shop.webhooks.pop(webhook_id, None) is None:
            raise RestError(404, "Not Found")
        return 200, {}
