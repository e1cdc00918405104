"""Shopify Admin API client: GraphQL for variants, stock, fulfilment and webhooks; REST for the order list.

Each operation builds its query and reads its answer; the calls go out through ShopifyTransport
(platforms/shopify/transport.py), which waits for the shop's rate limits, retries and turns failures into
StorefrontError. Page and batch sizes shrink to fit the shop's bucket when it is smaller than a full
page. Mutations that are not idempotent (fulfillmentCreate) are never re-sent blindly: a lost answer is
raised as retryable and the next attempt's duplicate check decides.

Expected costs follow the model in tests/fakes/graphql_lite.py (connection = 2 + first x node,
object = 1, mutation = 10 + 1 per input item); the transport prefers the cost Shopify reported for a
call shape once it has seen one.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, Unpack

from adapters.storefront import AccessRevoked, StorefrontError
from platforms.shopify.transport import ClientStats, QueryTooExpensive, ShopifyTransport, TransportOptions

DEFAULT_API_VERSION = "2026-01"
MAX_INPUT_ARRAY = 250  # Shopify's limit on any input array and on a page
STALE_CODES = {"CHANGE_FROM_QUANTITY_STALE", "COMPARE_QUANTITY_STALE"}
_KEY_NAMESPACE = uuid.UUID("2f1c7c9e-6a7d-4f0e-9c41-0d7d4a1f5e11")

VARIANTS_QUERY = """query Variants($first: Int!, $after: String, $query: String) {
  productVariants(first: $first, after: $after, query: $query) {
    nodes { id sku inventoryItem { id } }
    pageInfo { hasNextPage endCursor }
  }
}"""
LEVELS_PER_VARIANT = 10  # inventory levels read per variant: a shop with more locations is read in part
LEVELS_QUERY = (
    """query Levels($first: Int!, $after: String, $query: String) {
  productVariants(first: $first, after: $after, query: $query) {
    nodes { sku inventoryItem { id inventoryLevels(first: %d) {
      nodes { location { id } quantities(names: ["available"]) { name quantity } } } } }
    pageInfo { hasNextPage endCursor }
  }
}"""
    % LEVELS_PER_VARIANT
)
LOCATIONS_QUERY = """query Locations($first: Int!, $after: String) {
  locations(first: $first, after: $after) {
    nodes { id name isActive }
    pageInfo { hasNextPage endCursor }
  }
}"""
SET_QUANTITIES = """mutation SetAvailable($input: InventorySetQuantitiesInput!%s) {
  inventorySetQuantities(input: $input)%s {
    inventoryAdjustmentGroup { id changes { name delta quantityAfterChange } }
    userErrors { field message code }
  }
}"""
FO_PAGE, FO_LINES_PAGE = 5, 50  # 1 + 2 + 5 x (3 + 2 + 50 x 2) = 528 points, under the 1000 single-query cap
FULFILLMENT_ORDERS_QUERY = """query FulfillmentOrders($id: ID!, $after: String) {
  order(id: $id) {
    fulfillmentOrders(first: %d, after: $after) {
      nodes {
        id status
        assignedLocation { location { id } }
        lineItems(first: %d) {
          nodes { id remainingQuantity totalQuantity lineItem { id sku } }
          pageInfo { hasNextPage endCursor }
        }
      }
      pageInfo { hasNextPage endCursor }
    }
  }
}""" % (FO_PAGE, FO_LINES_PAGE)
FO_LINES_QUERY = """query FulfillmentOrderLines($id: ID!, $after: String) {
  fulfillmentOrder(id: $id) {
    lineItems(first: 250, after: $after) {
      nodes { id remainingQuantity totalQuantity lineItem { id sku } }
      pageInfo { hasNextPage endCursor }
    }
  }
}"""
EXISTING_FULFILLMENTS_QUERY = """query OrderFulfillments($id: ID!) {
  fulfillmentOrder(id: $id) {
    order { id fulfillments { id name status trackingInfo { company number url } } }
  }
}"""
CREATE_FULFILLMENT = """mutation CreateFulfillment($fulfillment: FulfillmentInput!, $message: String) {
  fulfillmentCreate(fulfillment: $fulfillment, message: $message) {
    fulfillment { id name status trackingInfo { company number url } }
    userErrors { field message }
  }
}"""
ORDER_PAYMENT_QUERY = """query OrderPayment($id: ID!) {
  order(id: $id) {
    id name displayFinancialStatus cancelledAt
    totalOutstandingSet { shopMoney { amount currencyCode } }
    currentTotalPriceSet { shopMoney { amount currencyCode } }
  }
}"""
MARK_AS_PAID = """mutation MarkAsPaid($input: OrderMarkAsPaidInput!) {
  orderMarkAsPaid(input: $input) {
    order { id displayFinancialStatus totalOutstandingSet { shopMoney { amount currencyCode } } }
    userErrors { field message }
  }
}"""
CANCEL_ORDER = """mutation CancelOrder($orderId: ID!, $reason: OrderCancelReason!, $restock: Boolean!,
    $notifyCustomer: Boolean, $staffNote: String, $refundMethod: OrderCancelRefundMethodInput!) {
  orderCancel(orderId: $orderId, reason: $reason, restock: $restock, notifyCustomer: $notifyCustomer,
      staffNote: $staffNote, refundMethod: $refundMethod) {
    job { id done }
    orderCancelUserErrors { field message code }
  }
}"""
ORDER_REFUNDS_QUERY = """query OrderRefunds($id: ID!) {
  order(id: $id) {
    id currencyCode cancelledAt
    lineItems(first: 250) { nodes { id sku refundableQuantity } }
    transactions(first: 100) { id kind status gateway amountSet { shopMoney { amount currencyCode } } }
    refunds(first: 100) { id note }
  }
}"""
CREATE_REFUND = """mutation CreateRefund($input: RefundInput!) {
  refundCreate(input: $input) {
    refund { id note totalRefundedSet { shopMoney { amount currencyCode } } }
    userErrors { field message }
  }
}"""
WEBHOOKS_QUERY = """query Webhooks($first: Int!, $after: String) {
  webhookSubscriptions(first: $first, after: $after) {
    nodes { id topic %s }
    pageInfo { hasNextPage endCursor }
  }
}"""
CREATE_WEBHOOK = """mutation CreateWebhook($topic: WebhookSubscriptionTopic!, $sub: WebhookSubscriptionInput!) {
  webhookSubscriptionCreate(topic: $topic, webhookSubscription: $sub) {
    webhookSubscription { id topic %s }
    userErrors { field message }
  }
}"""
SHOP_QUERY = "query Shop { shop { myshopifyDomain } }"
ORDER_RISK_QUERY = "query OrderRisk($id: ID!) { order(id: $id) { risk { recommendation assessments { riskLevel } } } }"
SCOPES_QUERY = "query Scopes { currentAppInstallation { accessScopes { handle } } }"
DELETE_WEBHOOK = """mutation DeleteWebhook($id: ID!) {
  webhookSubscriptionDelete(id: $id) {
    deletedWebhookSubscriptionId
    userErrors { field message }
  }
}"""


class QuantityStaleError(StorefrontError):
    """inventorySetQuantities refused a batch because a `changeFromQuantity` no longer matches: the
    shop sold or restocked meanwhile. Re-read and send new values under a new idempotency key (the same
    call would replay this refusal). `completed` holds the results of the batches that went through."""

    def __init__(self, message: str, errors: list[dict], completed: list[dict]):
        super().__init__(message, retryable=False)
        self.errors, self.completed = errors, completed


def to_gid(kind: str, value: int | str) -> str:
    text = str(value)
    return text if text.startswith("gid://") else f"gid://shopify/{kind}/{int(text)}"


def numeric_id(value: int | str) -> int:
    """The number at the end of a gid (or the id itself)."""
    return int(re.sub(r"\?.*$", "", str(value)).rsplit("/", 1)[-1])


# Topic resources whose names contain an underscore, so ORDERS_PARTIALLY_FULFILLED splits after the first
# word but INVENTORY_LEVELS_UPDATE after the second.
_TWO_WORD_RESOURCES = (
    "inventory_levels",
    "inventory_items",
    "order_transactions",
    "bulk_operations",
    "draft_orders",
    "fulfillment_orders",
    "fulfillment_events",
    "tender_transactions",
    "selling_plan_groups",
    "product_listings",
    "collection_listings",
    "payment_terms",
    "subscription_contracts",
    "customer_groups",
    "company_locations",
    "company_contacts",
)


def topic_name(enum: str) -> str:
    """ORDERS_CREATE -> orders/create, INVENTORY_LEVELS_UPDATE -> inventory_levels/update."""
    text = enum.lower()
    if "/" in text:
        return text
    for resource in _TWO_WORD_RESOURCES:
        if text.startswith(resource + "_"):
            return f"{resource}/{text[len(resource) + 1 :]}"
    resource, _, action = text.partition("_")
    return f"{resource}/{action}"


def _shop_money(money_set: dict | None) -> tuple[Decimal, str]:
    shop = (money_set or {}).get("shopMoney") or {}
    return Decimal(str(shop.get("amount") or "0")), str(shop.get("currencyCode") or "")


def _sku_term(sku: str) -> str:
    return 'sku:"' + sku.replace("\\", "\\\\").replace('"', '\\"') + '"'


class ShopifyClient:
    def __init__(
        self,
        shop_domain: str,
        access_token: str,
        api_version: str = DEFAULT_API_VERSION,
        timeout: float = 15,
        *,
        api_base_url: str | None = None,
        **options: Unpack[TransportOptions],
    ):
        """`api_base_url`: where the Admin API lives when it is not the shop's own domain (a fake in tests);
        `access_token`, `timeout` and the `options` (retries, waits, `tokens`) are for ShopifyTransport."""
        if api_base_url is None:
            api_base_url = shop_domain if shop_domain.startswith(("http://", "https://")) else f"https://{shop_domain}"
        self.api_version = api_version
        self.transport = ShopifyTransport(
            f"{api_base_url.rstrip('/')}/admin/api/{api_version}",
            access_token,
            timeout,
            **options,
        )
        self.duplicate_skus: set[str] = set()  # SKUs carried by more than one variant (the first one wins)
        self._new_style_inventory = api_version >= "2026-01"  # changeFromQuantity + @idempotent

    @property
    def stats(self) -> ClientStats:
        """Requests, throttles and waits so far (a sync reports them)."""
        return self.transport.stats

    # ---- public methods -----------------------------------------------------------------------

    def variants_by_sku(self, skus: Sequence[str] | None = None) -> dict[str, tuple[str, str]]:
        """{sku: (variant gid, inventory item gid)}: every variant with a SKU, or only `skus` (searched 50
        to a query, then matched exactly since Shopify's search is not an equality test)."""
        wanted = None if skus is None else set(skus)
        searches: list[str | None] = [None]
        if wanted is not None:
            ordered = sorted(wanted)
            searches = [" OR ".join(_sku_term(s) for s in ordered[i : i + 50]) for i in range(0, len(ordered), 50)]
        found: dict[str, tuple[str, str]] = {}
        for search in searches:
            for node in self._paged("productVariants", VARIANTS_QUERY, {"query": search}, per_node=2):
                sku = node.get("sku") or ""
                if not sku or (wanted is not None and sku not in wanted):
                    continue
                if sku in found:
                    self.duplicate_skus.add(sku)
                    continue
                found[sku] = (node["id"], node["inventoryItem"]["id"])
        return found

    def available_by_sku(self, skus: Sequence[str]) -> dict[str, dict[str, int]]:
        """{sku: {location gid: available}} for these SKUs, as the shop holds them now (used to re-read
        levels after a CHANGE_FROM_QUANTITY_STALE refusal). 25 SKUs to a query: each variant asks for up
        to LEVELS_PER_VARIANT levels, which keeps a query under the 1000-point single-query cap."""
        wanted = sorted(set(skus))
        per_node = 2 + 2 + LEVELS_PER_VARIANT * 3  # variant, item, levels connection, level+location+quantities
        found: dict[str, dict[str, int]] = {}
        for i in range(0, len(wanted), 25):
            search = " OR ".join(_sku_term(s) for s in wanted[i : i + 25])
            for node in self._paged(
                "productVariants", LEVELS_QUERY, {"query": search}, per_node=per_node, page_limit=25
            ):
                sku = node.get("sku") or ""
                if sku not in wanted or sku in found:
                    continue
                levels = ((node.get("inventoryItem") or {}).get("inventoryLevels") or {}).get("nodes") or []
                found[sku] = {
                    level["location"]["id"]: int(q["quantity"])
                    for level in levels
                    for q in level.get("quantities") or []
                    if q.get("name") == "available"
                }
        return found

    def existing_fulfillment(self, fulfillment_order_id: int | str, tracking_number: str) -> dict | None:
        """A fulfillment of the fulfillment order's order that carries this tracking number, or None: how
        a shipment whose answer was lost is recognised on the next attempt."""
        return self._fulfillment_with_tracking(to_gid("FulfillmentOrder", fulfillment_order_id), tracking_number)

    def locations(self) -> list[dict]:
        return [
            {"id": n["id"], "name": n["name"], "active": n["isActive"]}
            for n in self._paged("locations", LOCATIONS_QUERY, {}, per_node=1, page_limit=50)
        ]

    def set_available(
        self,
        quantities: Sequence[tuple[int | str, int | str, int, int | None]],
        idempotency_key: str,
        reason: str = "correction",
        reference_uri: str | None = None,
    ) -> list[dict]:
        """Set `available` for (inventory item, location, quantity, change_from or None) in batches of at
        most 250. Each batch's idempotency key is derived from `idempotency_key` and the batch's content,
        so re-running the same call replays instead of re-applying. Returns one result per batch."""
        rows = [
            (to_gid("InventoryItem", item), to_gid("Location", loc), int(qty), change_from)
            for item, loc, qty, change_from in quantities
        ]
        groups: list[tuple[list, bool]] = [(rows, False)]
        if not self._new_style_inventory:  # before 2026-01 "skip the check" is one flag for the whole call
            groups = [
                (g, ignore)
                for g, ignore in (
                    ([r for r in rows if r[3] is not None], False),
                    ([r for r in rows if r[3] is None], True),
                )
                if g
            ]
        results: list[dict] = []
        for group, ignore_compare in groups:
            i = 0
            while i < len(group):
                size = self.transport.fit(MAX_INPUT_ARRAY, per_item=1, fixed=10)
                batch = group[i : i + size]
                try:
                    results.append(
                        self._set_batch(batch, ignore_compare, idempotency_key, reason, reference_uri, results)
                    )
                except QueryTooExpensive:
                    if self.transport.fit(MAX_INPUT_ARRAY, per_item=1, fixed=10) >= size:
                        raise
                    continue  # now that the bucket's size is known, cut smaller batches
                i += len(batch)
        return results

    def set_batch_size(self) -> int:
        """How many quantities one inventorySetQuantities call carries now: 250, or fewer once the shop's
        bucket is known to be smaller than a full call (so a caller's batches match the calls made)."""
        return self.transport.fit(MAX_INPUT_ARRAY, per_item=1, fixed=10)

    def fulfillment_orders(self, order_id: int | str) -> list[dict]:
        """The order's fulfillment orders: [{id, status, location_id, line_items: [{id, line_item_id, sku,
        remaining, total}]}]; `id`s are what create_fulfillment takes."""
        out = []
        after = None
        while True:
            data = self.transport.graphql(
                "order.fulfillmentOrders",
                FULFILLMENT_ORDERS_QUERY,
                {"id": to_gid("Order", order_id), "after": after},
                3 + FO_PAGE * (5 + FO_LINES_PAGE * 2),
            )
            order = data.get("order")
            if order is None:
                raise StorefrontError(f"Shopify has no order {order_id}", retryable=False)
            page = order["fulfillmentOrders"]
            for node in page["nodes"]:
                lines = list(node["lineItems"]["nodes"])
                if node["lineItems"]["pageInfo"]["hasNextPage"]:
                    lines += self._more_fo_lines(node["id"], node["lineItems"]["pageInfo"]["endCursor"])
                out.append(
                    {
                        "id": node["id"],
                        "status": node["status"],
                        "location_id": (node.get("assignedLocation") or {}).get("location", {}).get("id"),
                        "line_items": [
                            {
                                "id": li["id"],
                                "line_item_id": li["lineItem"]["id"],
                                "sku": li["lineItem"].get("sku"),
                                "remaining": li["remainingQuantity"],
                                "total": li["totalQuantity"],
                            }
                            for li in lines
                        ],
                    }
                )
            if not page["pageInfo"]["hasNextPage"]:
                return out
            after = page["pageInfo"]["endCursor"]

    def create_fulfillment(
        self,
        fulfillment_order_lines: Sequence[tuple[int | str, Sequence[tuple[int | str, int]]]],
        tracking: tuple[str | None, str | None, str | None] | None = None,
        notify_customer: bool = False,
        ref: str | None = None,
    ) -> dict:
        """One fulfillment of (fulfillment order id, [(fulfillment order line item id, quantity)]) with at most
        one tracking number (company, number, url). fulfillmentCreate has no idempotency key, so before
        creating we look for a fulfillment of the same order with the same tracking number and return it
        (`created: False`) instead of shipping twice. Our shipment `ref` goes in `message`."""
        if not fulfillment_order_lines:
            raise ValueError("create_fulfillment needs at least one fulfillment order")
        company, number, url = tracking or (None, None, None)
        first_fo = to_gid("FulfillmentOrder", fulfillment_order_lines[0][0])
        if number:
            existing = self._fulfillment_with_tracking(first_fo, number)
            if existing is not None:
                return {**existing, "created": False}
        payload: dict[str, Any] = {
            "notifyCustomer": notify_customer,
            "lineItemsByFulfillmentOrder": [
                {
                    "fulfillmentOrderId": to_gid("FulfillmentOrder", fo_id),
                    "fulfillmentOrderLineItems": [
                        {"id": to_gid("FulfillmentOrderLineItem", li), "quantity": int(q)} for li, q in lines
                    ],
                }
                for fo_id, lines in fulfillment_order_lines
            ],
        }
        if company or number or url:
            payload["trackingInfo"] = {k: v for k, v in (("company", company), ("number", number), ("url", url)) if v}
        items = sum(max(1, len(lines)) for _, lines in fulfillment_order_lines)
        data = self.transport.graphql(
            "fulfillmentCreate",
            CREATE_FULFILLMENT,
            {"fulfillment": payload, "message": f"shipment {ref}" if ref else None},
            10 + items,
            units=items,
            safe_to_repeat=False,
        )
        result = data["fulfillmentCreate"]
        self._raise_user_errors("fulfillmentCreate", result["userErrors"])
        made = result["fulfillment"]
        return {
            "id": made["id"],
            "name": made["name"],
            "status": made["status"],
            "tracking": made.get("trackingInfo") or [],
            "created": True,
        }

    def order_payment(self, order_id: int | str) -> dict | None:
        """What the store says of an order's money, or None when it has no such order: financial status
        (PAID, PENDING, PARTIALLY_PAID, ...), the outstanding amount and the current total (shop money,
        as (Decimal, currency)), and whether it is cancelled."""
        variables = {"id": to_gid("Order", order_id)}
        data = self.transport.graphql("order", ORDER_PAYMENT_QUERY, variables, expected_cost=1)
        order = data.get("order")
        if order is None:
            return None
        return {
            "financial_status": order["displayFinancialStatus"],
            "outstanding": _shop_money(order["totalOutstandingSet"]),
            "total": _shop_money(order["currentTotalPriceSet"]),
            "cancelled": order.get("cancelledAt") is not None,
        }

    def mark_as_paid(self, order_id: int | str) -> str:
        """orderMarkAsPaid: Shopify records a sale of the whole outstanding amount and the order becomes
        PAID; refused (userErrors, permanent) when it is paid already. Not sent twice after a lost answer:
        the caller reads order_payment first on its next try. Returns the new financial status."""
        variables = {"input": {"id": to_gid("Order", order_id)}}
        data = self.transport.graphql("orderMarkAsPaid", MARK_AS_PAID, variables, 10, safe_to_repeat=False)
        result = data["orderMarkAsPaid"]
        self._raise_user_errors("orderMarkAsPaid", result["userErrors"])
        return str(result["order"]["displayFinancialStatus"])

    def cancel_order(self, order_id: int | str, staff_note: str, *, notify: bool = True, reason: str = "OTHER") -> bool:
        """orderCancel with the units restocked and what was paid refunded to the original payment methods;
        False when the order is cancelled already (read first: the mutation is not sent twice after a lost
        answer). Shopify cancels in a job: the order shows cancelled moments later."""
        state = self.order_payment(order_id)
        if state is None:
            raise StorefrontError(f"Shopify has no order {order_id}", retryable=False)
        if state["cancelled"]:
            return False
        variables = {
            "orderId": to_gid("Order", order_id),
            "reason": reason,
            "restock": True,
            "notifyCustomer": notify,
            "staffNote": staff_note[:255],
            "refundMethod": {"originalPaymentMethodsRefund": True},
        }
        data = self.transport.graphql("orderCancel", CANCEL_ORDER, variables, 10, safe_to_repeat=False)
        self._raise_user_errors("orderCancel", data["orderCancel"]["orderCancelUserErrors"])
        return True

    def order_refunds(self, order_id: int | str) -> dict | None:
        """What refunding the order needs, or None when Shopify has no such order: its shop currency, lines
        [{id, sku, refundable}], payment transactions [{id, kind, status, gateway, amount}] (kinds and statuses
        as Shopify's enums: SALE, CAPTURE, REFUND; SUCCESS) and the refunds made so far [{id, note}]."""
        data = self.transport.graphql(
            "order.refunds", ORDER_REFUNDS_QUERY, {"id": to_gid("Order", order_id)}, expected_cost=1 + 252 + 100 + 100
        )
        order = data.get("order")
        if order is None:
            return None
        return {
            "currency": order["currencyCode"],
            "cancelled": order.get("cancelledAt") is not None,
            "lines": [
                {"id": li["id"], "sku": li.get("sku") or "", "refundable": int(li["refundableQuantity"])}
                for li in order["lineItems"]["nodes"]
            ],
            "transactions": [
                {
                    "id": tx["id"],
                    "kind": tx["kind"],
                    "status": tx["status"],
                    "gateway": tx["gateway"],
                    "amount": _shop_money(tx["amountSet"])[0],
                }
                for tx in order["transactions"]
            ],
            "refunds": [{"id": r["id"], "note": r.get("note") or ""} for r in order["refunds"]],
        }

    def create_refund(self, order_id: int | str, refund: dict[str, Any]) -> str:
        """refundCreate with `refund` as its RefundInput (less orderId): refundLineItems with their restockType
        and locationId, the refund transactions against their parents, shipping, note, notify. Not idempotent
        and never re-sent blindly: the caller reads order_refunds first and recognises its own by the note.
        Returns the new refund's id."""
        variables = {"input": {"orderId": to_gid("Order", order_id), **refund}}
        items = len(refund.get("refundLineItems") or []) + len(refund.get("transactions") or [])
        data = self.transport.graphql(
            "refundCreate", CREATE_REFUND, variables, 10 + items, units=max(1, items), safe_to_repeat=False
        )
        result = data["refundCreate"]
        self._raise_user_errors("refundCreate", result["userErrors"])
        return str(result["refund"]["id"])

    def orders_updated_since(self, ts: datetime, status: str = "any", limit: int = 250) -> Iterator[dict]:
        """Orders (REST JSON) updated at or after `ts`, oldest change first, following Link pages. Shopify
        lists only open orders unless told otherwise, hence status=any."""
        if ts.tzinfo is None:
            raise ValueError("orders_updated_since needs a timezone-aware time")
        url: str | None = f"{self.transport.base}/orders.json"
        params: dict[str, Any] | None = {
            "updated_at_min": ts.isoformat(),
            "status": status,
            "limit": limit,
            "order": "updated_at asc",
        }
        while url:
            response = self.transport.rest("GET", url, params=params, op="GET orders")
            yield from response.json()["orders"]
            url = response.links.get("next", {}).get("url")
            params = None  # the next link carries page_info and limit, and nothing else may be sent with them

    def order_transactions(self, order_id: int | str) -> dict:
        """The body of GET orders/{id}/transactions.json, amounts in the shop currency. Multi-currency
        orders answer in the presentment currency unless asked for in_shop_currency=true; an order has
        at most 100 transactions, all in one answer."""
        url = f"{self.transport.base}/orders/{numeric_id(order_id)}/transactions.json"
        return self.transport.rest("GET", url, params={"in_shop_currency": "true"}, op="GET transactions").json()

    def order_risk(self, order_id: int | str) -> dict | None:
        """The order's risk summary, {recommendation, assessments: [{riskLevel}]} (mappings.approval reads
        it); None when Shopify has no such order."""
        data = self.transport.graphql(
            "order.risk", ORDER_RISK_QUERY, {"id": to_gid("Order", order_id)}, expected_cost=3
        )
        order = data.get("order")
        return order.get("risk") if isinstance(order, dict) else None

    def installed(self) -> bool:
        """Whether our token still opens the shop's Admin API. After an uninstall every call gets 401
        (docs/platforms.md#shopify-app-credentials), so False means the app is gone; any other failure is
        raised, never guessed."""
        try:
            self.transport.graphql("shop", SHOP_QUERY, {}, expected_cost=1)
        except AccessRevoked:
            return False
        return True

    def granted_scopes(self) -> list[str]:
        """The access scopes the store granted our app (or the legacy app whose token we hold)."""
        data = self.transport.graphql("currentAppInstallation", SCOPES_QUERY, {}, expected_cost=2)
        return [s["handle"] for s in (data.get("currentAppInstallation") or {}).get("accessScopes") or []]

    def webhooks(self) -> list[dict]:
        """[{id, topic ('orders/create'), address}]"""
        query = WEBHOOKS_QUERY % self._uri_field
        return [
            {
                "id": n["id"],
                "topic": topic_name(n["topic"]),
                "topic_enum": n["topic"],
                "address": n.get(self._uri_field),
            }
            for n in self._paged("webhookSubscriptions", query, {}, per_node=1, page_limit=100)
        ]

    def create_webhook(self, topic: str, address: str) -> dict:
        """Subscribe `address` to `topic` ('orders/create' or ORDERS_CREATE); an existing identical
        subscription is returned as is (Shopify refuses duplicates)."""
        enum = topic.upper().replace("/", "_")
        data = self.transport.graphql(
            "webhookSubscriptionCreate",
            CREATE_WEBHOOK % self._uri_field,
            {"topic": enum, "sub": {self._uri_field: address, "format": "JSON"}},
            10,
        )
        result = data["webhookSubscriptionCreate"]
        if result["userErrors"]:
            if any("already been taken" in (e.get("message") or "") for e in result["userErrors"]):
                for hook in self.webhooks():
                    if hook["topic_enum"] == enum and hook["address"] == address:
                        return hook
            self._raise_user_errors("webhookSubscriptionCreate", result["userErrors"])
        sub = result["webhookSubscription"]
        return {
            "id": sub["id"],
            "topic": topic_name(sub["topic"]),
            "topic_enum": sub["topic"],
            "address": sub.get(self._uri_field),
        }

    def delete_webhook(self, webhook_id: int | str) -> bool:
        """False when there was no such subscription (already deleted: the goal is met)."""
        data = self.transport.graphql(
            "webhookSubscriptionDelete", DELETE_WEBHOOK, {"id": to_gid("WebhookSubscription", webhook_id)}, 10
        )
        result = data["webhookSubscriptionDelete"]
        if result["userErrors"]:
            if any("does not exist" in (e.get("message") or "") for e in result["userErrors"]):
                return False
            self._raise_user_errors("webhookSubscriptionDelete", result["userErrors"])
        return True

    # ---- GraphQL helpers ----------------------------------------------------------------------

    @property
    def _uri_field(self) -> str:
        # WebhookSubscription.uri replaced callbackUrl in 2025-04 (a guess at the exact version).
        return "uri" if self.api_version >= "2025-04" else "callbackUrl"

    def _paged(
        self, op: str, query: str, variables: dict, per_node: int, page_limit: int = MAX_INPUT_ARRAY
    ) -> Iterator[dict]:
        after = None
        while True:
            first = self.transport.fit(page_limit, per_item=per_node, fixed=2)
            try:
                data = self.transport.graphql(
                    op, query, {**variables, "first": first, "after": after}, 2 + first * per_node, units=first
                )
            except QueryTooExpensive:
                if self.transport.fit(page_limit, per_item=per_node, fixed=2) >= first:
                    raise
                continue
            page = data[op]
            yield from page["nodes"]
            if not page["pageInfo"]["hasNextPage"]:
                return
            after = page["pageInfo"]["endCursor"]

    def _set_batch(
        self,
        batch: list[tuple[str, str, int, int | None]],
        ignore_compare: bool,
        key: str,
        reason: str,
        reference_uri: str | None,
        done: list[dict],
    ) -> dict:
        quantities = []
        for item, loc, qty, change_from in batch:
            entry: dict[str, Any] = {"inventoryItemId": item, "locationId": loc, "quantity": qty}
            if self._new_style_inventory:
                entry["changeFromQuantity"] = change_from  # mandatory key from 2026-01; null skips the check
            elif not ignore_compare:
                entry["compareQuantity"] = change_from
            quantities.append(entry)
        data_input: dict[str, Any] = {"name": "available", "reason": reason, "quantities": quantities}
        if reference_uri:
            data_input["referenceDocumentUri"] = reference_uri
        if not self._new_style_inventory:
            data_input["ignoreCompareQuantity"] = ignore_compare
        variables: dict[str, Any] = {"input": data_input}
        batch_key = None
        if self._new_style_inventory:
            batch_key = str(uuid.uuid5(_KEY_NAMESPACE, f"{key}|{json.dumps(data_input, sort_keys=True)}"))
            variables["key"] = batch_key
            query = SET_QUANTITIES % (", $key: String!", " @idempotent(key: $key)")
        else:
            query = SET_QUANTITIES % ("", "")
        data = self.transport.graphql(
            "inventorySetQuantities",
            query,
            variables,
            10 + len(batch),
            units=len(batch),
            safe_to_repeat=batch_key is not None,
        )
        result = data["inventorySetQuantities"]
        errors = result["userErrors"]
        if errors:
            text = "; ".join(
                f"{e.get('code')}: {e.get('message')} at {'.'.join(map(str, e.get('field') or []))}" for e in errors[:5]
            )
            if any(e.get("code") in STALE_CODES for e in errors):
                raise QuantityStaleError(f"inventorySetQuantities refused a stale quantity: {text}", errors, done)
            raise StorefrontError(f"Shopify refused inventorySetQuantities: {text}", retryable=False)
        group = result["inventoryAdjustmentGroup"] or {}
        return {
            "key": batch_key,
            "count": len(batch),
            "group_id": group.get("id"),
            "changes": [c for c in group.get("changes") or [] if c.get("name") == "available"],
        }

    def _more_fo_lines(self, fo_id: str, after: str | None) -> list[dict]:
        lines: list[dict] = []
        while after:
            data = self.transport.graphql(
                "fulfillmentOrder.lineItems", FO_LINES_QUERY, {"id": fo_id, "after": after}, 3 + 250 * 2
            )
            page = data["fulfillmentOrder"]["lineItems"]
            lines += page["nodes"]
            after = page["pageInfo"]["endCursor"] if page["pageInfo"]["hasNextPage"] else None
        return lines

    def _fulfillment_with_tracking(self, fo_id: str, number: str) -> dict | None:
        data = self.transport.graphql(
            "fulfillmentOrder.order.fulfillments", EXISTING_FULFILLMENTS_QUERY, {"id": fo_id}, 5
        )
        fo = data.get("fulfillmentOrder")
        if fo is None:
            raise StorefrontError(f"Shopify has no fulfillment order {fo_id}", retryable=False)
        for made in fo["order"]["fulfillments"]:
            tracking = made.get("trackingInfo") or []
            if made["status"] in ("SUCCESS", "OPEN", "PENDING") and any(t.get("number") == number for t in tracking):
                return {"id": made["id"], "name": made["name"], "status": made["status"], "tracking": tracking}
        return None

    @staticmethod
    def _raise_user_errors(op: str, errors: list[dict]) -> None:
        if errors:
            text = "; ".join(f"{e.get('message')} ({'.'.join(map(str, e.get('field') or []))})" for e in errors[:5])
            raise StorefrontError(f"Shopify refused {op}: {text}", retryable=False)
