"""The fake Shopify's GraphQL Admin API: the root fields the connector uses, resolved against FakeShopify.

Queries: productVariants(first, after, query: "sku:A OR sku:\"B C\""), locations, order(id) with
fulfillmentOrders and fulfillments, fulfillmentOrder(id), webhookSubscriptions, shop.
Mutations: inventorySetQuantities (@idempotent(key:)), fulfillmentCreate (and the older
fulfillmentCreateV2), orderMarkAsPaid, orderCancel, refundCreate (tests/fakes/shopify_refunds.py),
webhookSubscriptionCreate, webhookSubscriptionDelete.

orderMarkAsPaid (Shopify's reference): only an order with a positive outstanding balance whose financial
status is not PAID can be marked; Shopify records a sale of the whole outstanding amount (gateway
"manual") and the order becomes PAID. Guessed: the error text, and that a cancelled order is refused.

Version rules (docs/platforms.md#shopify-inventory): from 2026-01 each quantity must carry the `changeFromQuantity` key
(null skips the check; a wrong value fails the whole call with CHANGE_FROM_QUANTITY_STALE) and the old
`compareQuantity`/`ignoreCompareQuantity` are gone; before 2026-01 those old fields apply
(COMPARE_QUANTITY_REQUIRED / COMPARE_QUANTITY_STALE). From 2026-04 `@idempotent` is required. A key
seen before returns the original result without doing anything.

Guesses (no source confirmed them): the call is all-or-nothing when any quantity is stale or invalid;
the exact error texts; that a missing `changeFromQuantity` is a variable-coercion error (top-level,
`data: null`) rather than a userError; that several tracking numbers in one fulfillment are refused as a
userError ("one tracking number per fulfillment" is from docs/platforms.md#shopify-fulfillment); that
all fulfillment orders of one fulfillment must share a location.
"""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from tests.fakes.graphql_lite import (
    MUTATION_BASE_COST,
    Conn,
    Field,
    GraphQLError,
    Meter,
    gid,
    gid_number,
    parse,
    project,
    requested_cost,
    resolve,
    version_at_least,
)
from tests.fakes.shopify_refunds import order_refund_fields, refund_create

if TYPE_CHECKING:
    from tests.fakes.shopify import FakeShopify, FoLine, FulfillmentOrder, Variant

SUPPORTED_TOPICS = {
    "orders/create",
    "orders/updated",
    "orders/paid",
    "orders/cancelled",
    "orders/fulfilled",
    "orders/partially_fulfilled",
    "orders/edited",
    "refunds/create",
    "fulfillments/create",
    "fulfillments/update",
    "inventory_levels/update",
    "products/update",
    "products/create",
    "app/uninstalled",
    "returns/request",
    "returns/approve",
    "returns/decline",
    "returns/cancel",
    "returns/close",
    "returns/reopen",
}
# Topics an app may subscribe to only with a scope (Shopify's webhook reference: returns need read_returns).
TOPIC_SCOPES = {topic: "read_returns" for topic in SUPPORTED_TOPICS if topic.startswith("returns/")}
TOPIC_ENUMS = {topic.upper().replace("/", "_"): topic for topic in SUPPORTED_TOPICS}
INVENTORY_REASONS = {
    "correction",
    "cycle_count_available",
    "damaged",
    "movement_created",
    "movement_updated",
    "movement_received",
    "movement_canceled",
    "other",
    "promotion",
    "quality_control",
    "received",
    "reservation_created",
    "reservation_deleted",
    "reservation_updated",
    "restock",
    "safety_stock",
    "shrinkage",
}
MAX_INPUT_ARRAY = 250


class WebhookRejected(ValueError):
    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field, self.message = field, message


def _throttle_status(shop: FakeShopify) -> dict:
    bucket = shop.graphql_bucket
    return {
        "maximumAvailable": bucket.capacity,
        "currentlyAvailable": int(bucket.available()),
        "restoreRate": bucket.rate,
    }


def _granted(shop: FakeShopify) -> list[str]:
    """The scopes of the app whose token asks: an issued (client-credentials) token's, else the legacy app's."""
    from flask import request

    issued = shop.oauth.valid(request.headers.get("X-Shopify-Access-Token"))
    return [handle for handle in (shop.oauth.scope if issued else shop.legacy_scope).split(",") if handle]


def _user_error(field: list, message: str, code: str | None = None) -> dict:
    return {"field": field, "message": message, "code": code}


class ShopifyGraphQL:
    def __init__(self, shop: FakeShopify):
        self.shop = shop

    # ---- one request (called under the shop's lock) ------------------------------------------

    def execute(self, version: str, query: str, variables: dict) -> tuple[int, dict]:
        shop = self.shop

        def extensions(requested: int, actual: int | None) -> dict:
            return {
                "cost": {
                    "requestedQueryCost": requested,
                    "actualQueryCost": actual,
                    "throttleStatus": _throttle_status(shop),
                }
            }

        try:
            kind, roots = parse(query, variables)
            if kind not in ("query", "mutation"):
                raise GraphQLError("This fake serves queries and mutations only", "BAD_REQUEST")
            requested = sum(self._mutation_cost(r) for r in roots) if kind == "mutation" else requested_cost(roots)
        except GraphQLError as exc:
            return 200, {"errors": [exc.as_json()], "extensions": extensions(0, 0)}
        for root in roots:
            shop.calls[f"graphql:{root.name}"] += 1
        if requested > shop.single_query_limit:
            error = GraphQLError(
                f"Query cost is {requested}, which exceeds the single query max cost limit "
                f"({shop.single_query_limit}).",
                "MAX_COST_EXCEEDED",
                cost=requested,
                maxCost=shop.single_query_limit,
            )
            return 200, {"errors": [error.as_json()], "extensions": extensions(requested, None)}
        if not shop.graphql_bucket.take(requested):
            shop.throttled += 1
            return shop.throttle_status, {
                "errors": [
                    {
                        "message": "Throttled",
                        "extensions": {
                            "code": "THROTTLED",
                            "documentation": "https://shopify.dev/api/usage/rate-limits",
                        },
                    }
                ],
                "extensions": extensions(requested, None),
            }
        meter = Meter()
        data: dict | None = None
        errors: list[dict] = []
        try:
            results = {}
            for root in roots:
                if kind == "mutation":
                    results[root.key] = project(root.selections, self._mutate(version, root), Meter())
                else:
                    results[root.key] = resolve(root, self._query_root(root), meter)
            data = results
        except GraphQLError as exc:
            errors = [exc.as_json()]
        actual = requested if kind == "mutation" else min(requested, meter.points)
        shop.graphql_bucket.give_back(requested - actual)  # charged what it really cost
        shop.cost_used += actual
        payload: dict[str, Any] = {"data": data}
        if errors:
            payload["errors"] = errors
        payload["extensions"] = extensions(requested, actual)
        return 200, payload

    @staticmethod
    def _mutation_cost(root: Field) -> int:
        if root.name == "inventorySetQuantities":
            quantities = (root.args.get("input") or {}).get("quantities") or []
            return MUTATION_BASE_COST + len(quantities)
        if root.name in ("fulfillmentCreate", "fulfillmentCreateV2"):
            groups = (root.args.get("fulfillment") or {}).get("lineItemsByFulfillmentOrder") or []
            return MUTATION_BASE_COST + sum(max(1, len(g.get("fulfillmentOrderLineItems") or [])) for g in groups)
        return MUTATION_BASE_COST

    # ---- queries ------------------------------------------------------------------------------

    def _query_root(self, root: Field) -> Any:
        shop, args = self.shop, root.args
        if root.name == "productVariants":
            return Conn(self._variant_ids(args.get("query")), self._variant_view)
        if root.name == "locations":
            locations = [loc for loc in shop.locations.values() if loc.active or args.get("includeInactive")]
            return Conn(locations, self._location_view)
        if root.name == "order":
            number = gid_number(args.get("id"), "Order")
            return self._order_view(number) if number in shop.orders else None
        if root.name == "fulfillmentOrder":
            fo = shop.fulfillment_orders.get(gid_number(args.get("id"), "FulfillmentOrder") or 0)
            return self._fo_view(fo) if fo else None
        if root.name == "webhookSubscriptions":
            wanted = {TOPIC_ENUMS.get(t) for t in args.get("topics") or []}
            hooks = [h for h in shop.webhooks.values() if not wanted or h["topic"] in wanted]
            return Conn(hooks, self._webhook_view)
        if root.name == "shop":
            return {"name": "Fake Shop", "myshopifyDomain": shop.shop_domain}
        if root.name == "currentAppInstallation":  # the scopes of the app whose token asks
            return {"accessScopes": [{"handle": handle} for handle in _granted(shop)]}
        raise GraphQLError(f"Field '{root.name}' doesn't exist on type 'QueryRoot'", "undefinedField")

    def _variant_ids(self, query: str | None) -> list[int]:
        if not query:
            return self.shop.variant_order
        terms = re.findall(r'sku:("(?:\\.|[^"\\])*"|[^\s()"]+)', query)
        rest = re.sub(r'sku:("(?:\\.|[^"\\])*"|[^\s()"]+)', " ", query)
        if not terms or re.sub(r"\bOR\b|[()\s]", "", rest):
            raise GraphQLError(f"This fake only searches variants by 'sku:X OR sku:Y', not {query!r}", "BAD_REQUEST")
        ids: set[int] = set()
        for term in terms:
            sku = re.sub(r"\\(.)", r"\1", term[1:-1]) if term.startswith('"') else term
            ids.update(self.shop.by_sku.get(sku, []))
        return sorted(ids)  # sortKey ID, like Shopify's default

    def _variant_view(self, variant_id: int) -> dict:
        shop = self.shop
        v: Variant = shop.variants[variant_id]
        return {
            "id": gid("ProductVariant", v.id),
            "legacyResourceId": str(v.id),
            "sku": v.sku or "",
            "title": v.title,
            "price": v.price,
            "displayName": f"Product {v.product_id} - {v.title}",
            "inventoryQuantity": lambda args: sum(
                shop.levels.get((v.inventory_item_id, loc), 0) for loc in shop.locations
            ),
            "product": {"id": gid("Product", v.product_id), "title": shop.products[v.product_id]["title"]},
            "inventoryItem": {
                "id": gid("InventoryItem", v.inventory_item_id),
                "legacyResourceId": str(v.inventory_item_id),
                "sku": v.sku or "",
                "tracked": True,
                "inventoryLevels": Conn(
                    [loc for loc in shop.locations if (v.inventory_item_id, loc) in shop.levels],
                    functools.partial(self._level_view, v.inventory_item_id),
                ),
            },
        }

    def _level_view(self, item: int, loc: int) -> dict:
        available = self.shop.levels[(item, loc)]
        return {
            "id": f"gid://shopify/InventoryLevel/{item}?inventory_item_id={item}",
            "location": self._location_view(self.shop.locations[loc]),
            "quantities": lambda args: [
                {"name": n, "quantity": available if n in ("available", "on_hand") else 0}
                for n in args.get("names") or []
            ],
        }

    @staticmethod
    def _location_view(loc: Any) -> dict:
        return {
            "id": gid("Location", loc.id),
            "legacyResourceId": str(loc.id),
            "name": loc.name,
            "isActive": loc.active,
        }

    def _order_view(self, order_id: int) -> dict:
        shop = self.shop
        order = shop.orders[order_id]
        status = {None: "UNFULFILLED", "partial": "PARTIALLY_FULFILLED", "fulfilled": "FULFILLED"}
        currency = order["currency"]
        return {
            "id": gid("Order", order_id),
            "legacyResourceId": str(order_id),
            "name": order["name"],
            "updatedAt": order["updated_at"],
            "cancelledAt": order["cancelled_at"],
            "displayFinancialStatus": (order.get("financial_status") or "pending").upper(),
            "totalOutstandingSet": {"shopMoney": {"amount": shop.outstanding(order_id), "currencyCode": currency}},
            "currentTotalPriceSet": {"shopMoney": {"amount": order["total_price"], "currencyCode": currency}},
            "displayFulfillmentStatus": status[order["fulfillment_status"]],
            "fulfillmentOrders": Conn(shop.fulfillment_orders_of(order_id), self._fo_view),
            "fulfillments": [self._fulfillment_view(f) for f in shop.fulfillments_of(order_id)],
            # Shopify's own analysis, or an app's: set order["risk"] in a test
            "risk": order.get("risk") or {"recommendation": "NONE", "assessments": []},
            **order_refund_fields(shop, order_id),
        }

    def _fo_view(self, fo: FulfillmentOrder) -> dict:
        shop = self.shop
        order = shop.orders[fo.order_id]
        items = {li["id"]: li for li in order["line_items"]}
        loc = shop.locations[fo.location_id]

        def line_view(line: FoLine) -> dict:
            item = items[line.line_item_id]
            inventory_item = shop.item_of_line(item)
            return {
                "id": gid("FulfillmentOrderLineItem", line.id),
                "totalQuantity": line.total,
                "remainingQuantity": line.remaining,
                "sku": item["sku"],
                "inventoryItemId": inventory_item and gid("InventoryItem", inventory_item),
                "lineItem": {
                    "id": gid("LineItem", item["id"]),
                    "sku": item["sku"],
                    "name": item["title"],
                    "quantity": item["quantity"],
                },
            }

        return {
            "id": gid("FulfillmentOrder", fo.id),
            "status": fo.status,
            "requestStatus": "UNSUBMITTED",
            "orderId": gid("Order", fo.order_id),
            "order": lambda args: self._order_view(fo.order_id),
            "assignedLocation": {"name": loc.name, "location": self._location_view(loc)},
            "lineItems": Conn(fo.lines, line_view),
        }

    @staticmethod
    def _fulfillment_view(f: dict) -> dict:
        tracking = []
        if f["tracking_number"] or f["tracking_company"] or f["tracking_url"]:  # at most one per fulfillment
            tracking = [{"company": f["tracking_company"], "number": f["tracking_number"], "url": f["tracking_url"]}]
        return {
            "id": gid("Fulfillment", f["id"]),
            "legacyResourceId": str(f["id"]),
            "name": f["name"],
            "status": f["status"].upper(),
            "createdAt": f["created_at"],
            "trackingInfo": tracking,
            "fulfillmentLineItems": Conn(
                f["line_items"],
                lambda li: {
                    "id": gid("FulfillmentLineItem", li["fulfillment_line_item_id"]),
                    "quantity": li["quantity"],
                    "lineItem": {"id": gid("LineItem", li["id"]), "sku": li["sku"]},
                },
            ),
        }

    @staticmethod
    def _webhook_view(hook: dict) -> dict:
        return {
            "id": gid("WebhookSubscription", hook["id"]),
            "legacyResourceId": str(hook["id"]),
            "topic": hook["topic"].upper().replace("/", "_"),
            "uri": hook["address"],
            "callbackUrl": hook["address"],
            "format": hook["format"].upper(),
            "createdAt": hook["created_at"],
            "apiVersion": {"handle": hook["api_version"]},
        }

    # ---- mutations ----------------------------------------------------------------------------

    def _mutate(self, version: str, root: Field) -> dict:
        if root.name == "inventorySetQuantities":
            return self._set_quantities(version, root)
        if root.name in ("fulfillmentCreate", "fulfillmentCreateV2"):
            return self._fulfillment_create(root.args.get("fulfillment") or {}, root.args.get("message"))
        if root.name == "orderMarkAsPaid":
            return self._mark_as_paid((root.args.get("input") or {}).get("id"))
        if root.name == "orderCancel":
            return self._cancel(root.args)
        if root.name == "refundCreate":
            return refund_create(self.shop, root.args.get("input") or {})
        if root.name == "webhookSubscriptionCreate":
            return self._webhook_create(version, root.args)
        if root.name == "webhookSubscriptionDelete":
            number = gid_number(root.args.get("id"), "WebhookSubscription")
            if number is None or self.shop.webhooks.pop(number, None) is None:
                return {
                    "deletedWebhookSubscriptionId": None,
                    "userErrors": [_user_error(["id"], "Webhook subscription does not exist")],
                }
            return {"deletedWebhookSubscriptionId": root.args["id"], "userErrors": []}
        raise GraphQLError(f"Field '{root.name}' doesn't exist on type 'Mutation'", "undefinedField")

    def _cancel(self, args: dict) -> dict:
        """orderCancel (Shopify's reference): refused for an order cancelled already; otherwise a job that
        cancels it, restocking when asked. The fake runs the job at once and records what was asked."""
        shop = self.shop
        order_id = gid_number(args.get("orderId"), "Order")
        if "refundMethod" not in args or "restock" not in args or "reason" not in args:
            raise GraphQLError("orderCancel needs reason, restock and refundMethod", "missingRequiredArguments")
        if order_id not in shop.orders:
            return {
                "job": None,
                "orderCancelUserErrors": [_user_error(["orderId"], "Order does not exist", "NOT_FOUND")],
            }
        order = shop.orders[order_id]
        if order["cancelled_at"]:
            error = _user_error(["orderId"], "Order has already been cancelled", "INVALID")
            return {"job": None, "orderCancelUserErrors": [error]}
        order["cancelled_at"] = shop.stamp(datetime.now(UTC))
        order["cancel_reason"] = str(args["reason"]).lower()
        shop.cancelled.append(
            {
                "order_id": order_id,
                "reason": args["reason"],
                "restock": args["restock"],
                "notify": args.get("notifyCustomer"),
                "staff_note": args.get("staffNote"),
                "refund_method": args["refundMethod"],
            }
        )
        shop.touch_order(order_id)
        return {"job": {"id": gid("Job", len(shop.cancelled)), "done": True}, "orderCancelUserErrors": []}

    def _mark_as_paid(self, order_gid: Any) -> dict:
        shop = self.shop
        order_id = gid_number(order_gid, "Order")
        if order_id not in shop.orders:
            return {"order": None, "userErrors": [_user_error(["input", "id"], "Order does not exist")]}
        order = shop.orders[order_id]
        outstanding = shop.outstanding(order_id)
        if order["financial_status"] == "paid" or float(outstanding) <= 0 or order["cancelled_at"]:
            return {"order": None, "userErrors": [_user_error(["input", "id"], "Order cannot be marked as paid.")]}
        shop.add_transaction(order_id, "sale", "manual", outstanding)
        order["financial_status"] = "paid"
        shop.touch_order(order_id)
        shop.marked_paid.append(order_id)
        return {"order": self._order_view(order_id), "userErrors": []}

    def _set_quantities(self, version: str, root: Field) -> dict:
        shop = self.shop
        data = root.args.get("input")
        if not isinstance(data, dict):
            raise GraphQLError(
                "Variable $input of type InventorySetQuantitiesInput! was provided invalid value",
                problems=[{"path": [], "explanation": "Expected value to not be null"}],
            )
        quantities = data.get("quantities") or []
        if len(quantities) > MAX_INPUT_ARRAY:
            raise GraphQLError(
                f"The input array size of {len(quantities)} is greater than the maximum allowed of {MAX_INPUT_ARRAY}.",
                "MAX_INPUT_SIZE_EXCEEDED",
                path=["inventorySetQuantities", "input", "quantities"],
            )
        new_style = version_at_least(version, "2026-01")
        for n, q in enumerate(quantities):
            problem = None
            if new_style and "changeFromQuantity" not in q:
                problem = (["quantities", n, "changeFromQuantity"], "Expected value to be provided (null skips it)")
            elif new_style and "compareQuantity" in q:
                problem = (["quantities", n, "compareQuantity"], "Field is not defined on InventoryQuantityInput")
            elif not new_style and "changeFromQuantity" in q:
                problem = (["quantities", n, "changeFromQuantity"], "Field is not defined on InventoryQuantityInput")
            if problem:
                raise GraphQLError(
                    f"Variable $input of type InventorySetQuantitiesInput! was provided invalid value "
                    f"for {'.'.join(map(str, problem[0]))} ({problem[1]})",
                    value=data,
                    problems=[{"path": problem[0], "explanation": problem[1]}],
                )
        if new_style and "ignoreCompareQuantity" in data:
            raise GraphQLError(
                "Variable $input of type InventorySetQuantitiesInput! was provided invalid value for "
                "ignoreCompareQuantity (Field is not defined on InventorySetQuantitiesInput)"
            )
        key = (root.directives.get("idempotent") or {}).get("key")
        if key is None and version_at_least(version, "2026-04"):
            raise GraphQLError("The @idempotent directive is required for this mutation.", "BAD_REQUEST")
        if key is not None and key in shop.idempotent:
            shop.idempotent_replays += 1
            return shop.idempotent[key]
        result = self._apply_quantities(data, quantities, new_style)
        if key is not None:
            shop.idempotent[key] = result
        return result

    def _apply_quantities(self, data: dict, quantities: list[dict], new_style: bool) -> dict:
        shop = self.shop
        errors: list[dict] = []
        if data.get("name") != "available":
            errors.append(_user_error(["input", "name"], "The quantity name must be 'available'.", "INVALID_NAME"))
        if data.get("reason") not in INVENTORY_REASONS:
            errors.append(_user_error(["input", "reason"], "The specified reason is invalid.", "INVALID_REASON"))
        planned: list[tuple[int, int, int, int]] = []
        for n, q in enumerate(quantities):
            where = ["input", "quantities", str(n)]
            item = gid_number(q.get("inventoryItemId"), "InventoryItem")
            loc = gid_number(q.get("locationId"), "Location")
            quantity = q.get("quantity")
            if item is None or item not in shop.by_item:
                errors.append(
                    _user_error(
                        where + ["inventoryItemId"],
                        "The specified inventory item could not be found.",
                        "INVALID_INVENTORY_ITEM",
                    )
                )
                continue
            if loc is None or loc not in shop.locations:
                errors.append(
                    _user_error(
                        where + ["locationId"], "The specified location could not be found.", "INVALID_LOCATION"
                    )
                )
                continue
            if (item, loc) not in shop.levels:
                errors.append(
                    _user_error(
                        where + ["locationId"],
                        "The specified inventory item is not stocked at the location.",
                        "ITEM_NOT_STOCKED_AT_LOCATION",
                    )
                )
                continue
            if not isinstance(quantity, int) or isinstance(quantity, bool):
                errors.append(_user_error(where + ["quantity"], "The quantity must be an integer.", "INVALID_QUANTITY"))
                continue
            current = shop.levels[(item, loc)]
            if new_style:
                expected = q.get("changeFromQuantity")
                if expected is not None and expected != current:
                    errors.append(
                        _user_error(
                            where + ["changeFromQuantity"],
                            "The specified compare quantity is stale.",
                            "CHANGE_FROM_QUANTITY_STALE",
                        )
                    )
                    continue
            elif not data.get("ignoreCompareQuantity"):
                if "compareQuantity" not in q:
                    errors.append(
                        _user_error(
                            where + ["compareQuantity"],
                            "The compare quantity is required.",
                            "COMPARE_QUANTITY_REQUIRED",
                        )
                    )
                    continue
                if q["compareQuantity"] != current:
                    errors.append(
                        _user_error(
                            where + ["compareQuantity"],
                            "The specified compare quantity is stale.",
                            "COMPARE_QUANTITY_STALE",
                        )
                    )
                    continue
            planned.append((item, loc, quantity, current))
        if errors:  # all or nothing
            return {"inventoryAdjustmentGroup": None, "userErrors": errors}
        changes = []
        for item, loc, quantity, current in planned:
            shop.levels[(item, loc)] = quantity
            variant = shop.variants[shop.by_item[item]]
            if quantity != current:
                for name in ("available", "on_hand"):  # setting `available` moves on_hand by the same delta
                    changes.append(
                        {
                            "name": name,
                            "delta": quantity - current,
                            "quantityAfterChange": quantity,
                            "item": {"id": gid("InventoryItem", item), "sku": variant.sku},
                            "location": {"id": gid("Location", loc), "name": shop.locations[loc].name},
                        }
                    )
        group = {
            "id": gid("InventoryAdjustmentGroup", shop.next_id("adjustment")),
            "createdAt": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
            "reason": data.get("reason"),
            "referenceDocumentUri": data.get("referenceDocumentUri"),
            "changes": changes,
        }
        return {"inventoryAdjustmentGroup": group, "userErrors": []}

    def _fulfillment_create(self, data: dict, message: str | None) -> dict:
        shop = self.shop
        groups = data.get("lineItemsByFulfillmentOrder") or []

        def refuse(field: list, text: str) -> dict:
            return {"fulfillment": None, "userErrors": [_user_error(["fulfillment", *field], text)]}

        if not groups:
            return refuse(["lineItemsByFulfillmentOrder"], "Line items by fulfillment order must not be empty.")
        tracking = data.get("trackingInfo") or {}
        numbers = [n for n in ([tracking.get("number")] + list(tracking.get("numbers") or [])) if n]
        if len(numbers) > 1:
            return refuse(
                ["trackingInfo"],
                "Only one tracking number is allowed per fulfillment; create one fulfillment per tracking number.",
            )
        picks: list[tuple[FulfillmentOrder, FoLine, int]] = []
        for g, group in enumerate(groups):
            fo = shop.fulfillment_orders.get(gid_number(group.get("fulfillmentOrderId"), "FulfillmentOrder") or 0)
            if fo is None:
                return refuse(
                    ["lineItemsByFulfillmentOrder", g, "fulfillmentOrderId"], "Fulfillment order does not exist."
                )
            if fo.status == "CLOSED":
                return refuse(
                    ["lineItemsByFulfillmentOrder", g, "fulfillmentOrderId"],
                    f"Fulfillment order {fo.id} has an unfulfillable status= closed.",
                )
            if picks and (fo.order_id != picks[0][0].order_id or fo.location_id != picks[0][0].location_id):
                return refuse(
                    ["lineItemsByFulfillmentOrder", g, "fulfillmentOrderId"],
                    "All fulfillment orders must belong to one order and one location.",
                )
            wanted = group.get("fulfillmentOrderLineItems")
            lines = {line.id: line for line in fo.lines}
            if not wanted:  # an empty list fulfils whatever remains of the fulfillment order
                picks.extend((fo, line, line.remaining) for line in fo.lines if line.remaining)
                continue
            for n, entry in enumerate(wanted):
                line = lines.get(gid_number(entry.get("id"), "FulfillmentOrderLineItem") or 0)
                qty = entry.get("quantity")
                if line is None:
                    return refuse(
                        ["lineItemsByFulfillmentOrder", g, "fulfillmentOrderLineItems", n, "id"],
                        "Fulfillment order line item does not exist on this fulfillment order.",
                    )
                if not isinstance(qty, int) or not 0 < qty <= line.remaining:
                    return refuse(
                        ["lineItemsByFulfillmentOrder", g, "fulfillmentOrderLineItems", n, "quantity"],
                        "Invalid fulfillment order line item quantity requested.",
                    )
                picks.append((fo, line, qty))
        if not picks:
            return refuse(["lineItemsByFulfillmentOrder"], "Nothing left to fulfil.")
        asked: dict[int, int] = {}
        for _, line, qty in picks:  # the same line named twice must still fit what remains
            asked[line.id] = asked.get(line.id, 0) + qty
            if asked[line.id] > line.remaining:
                return refuse(
                    ["lineItemsByFulfillmentOrder"], "Invalid fulfillment order line item quantity requested."
                )
        order = shop.orders[picks[0][0].order_id]
        items = {li["id"]: li for li in order["line_items"]}
        now = shop.stamp(datetime.now(UTC))
        fulfilled_lines = []
        for _, line, qty in picks:
            line.remaining -= qty
            item = items[line.line_item_id]
            item["fulfillable_quantity"] -= qty
            item["fulfillment_status"] = "fulfilled" if item["fulfillable_quantity"] == 0 else "partial"
            fulfilled_lines.append(
                {
                    **{k: item[k] for k in ("id", "variant_id", "product_id", "sku", "title", "price")},
                    "quantity": qty,
                    "fulfillment_line_item_id": shop.next_id("fulfillment_line"),
                }
            )
        record = {
            "id": shop.next_id("fulfillment"),
            "order_id": order["id"],
            "status": "success",
            "name": f"{order['name']}.{len(shop.fulfillments_of(order['id'])) + 1}",
            "location_id": picks[0][0].location_id,
            "tracking_company": tracking.get("company"),
            "tracking_number": numbers[0] if numbers else None,
            "tracking_numbers": numbers,
            "tracking_url": tracking.get("url"),
            "tracking_urls": [tracking["url"]] if tracking.get("url") else [],
            "line_items": fulfilled_lines,
            "created_at": now,
            "updated_at": now,
            "shipment_status": None,
            # not in Shopify's REST JSON: what the fake saw, for tests to read back
            "notify_customer": bool(data.get("notifyCustomer", False)),
            "message": message,
        }
        shop.fulfillments[record["id"]] = record
        order["fulfillments"].append({k: v for k, v in record.items() if k not in ("notify_customer", "message")})
        remaining = sum(li["fulfillable_quantity"] for li in order["line_items"])
        order["fulfillment_status"] = "fulfilled" if remaining == 0 else "partial"
        order["updated_at"] = now
        return {"fulfillment": self._fulfillment_view(record), "userErrors": []}

    def _webhook_create(self, version: str, args: dict) -> dict:
        sub = args.get("webhookSubscription") or {}
        topic = TOPIC_ENUMS.get(str(args.get("topic")))
        address = sub.get("uri") or sub.get("callbackUrl") or ""
        if topic is None:
            return {
                "webhookSubscription": None,
                "userErrors": [_user_error(["topic"], f"Invalid topic specified: {args.get('topic')}")],
            }
        if topic in TOPIC_SCOPES and TOPIC_SCOPES[topic] not in _granted(self.shop):
            # UNVERIFIED wording; that Shopify refuses a topic without its scope is documented.
            return {
                "webhookSubscription": None,
                "userErrors": [
                    _user_error(["topic"], f"Access denied: {topic} needs the {TOPIC_SCOPES[topic]} access scope")
                ],
            }
        try:
            hook = self.shop.add_webhook(topic, address, version, str(sub.get("format") or "JSON").lower())
        except WebhookRejected as exc:
            field = "callbackUrl" if exc.field == "address" else exc.field
            return {
                "webhookSubscription": None,
                "userErrors": [
                    _user_error(
                        ["webhookSubscription", field],
                        f"{'Address' if exc.field == 'address' else exc.field} {exc.message}",
                    )
                ],
            }
        return {"webhookSubscription": self._webhook_view(hook), "userErrors": []}
