"""The fake Shopify's refunds: `refundCreate` and what an order shows of its refunds, after Shopify's reference.

refundCreate(input: {orderId, note, notify, shipping: {amount | fullRefund}, refundLineItems: [{lineItemId,
quantity, restockType RETURN | CANCEL | NO_RESTOCK | LEGACY_RESTOCK, locationId}], transactions: [{orderId,
gateway, kind REFUND, amount, parentId}]}) answers {refund {id note totalRefundedSet}, userErrors}. A line
cannot give back more than its refundable quantity; a refund transaction needs a successful sale or capture
of the order as its parent, with the parent's gateway, and no more than is left of it. Units restocked with
RETURN or CANCEL go back into the location named (the order's first fulfillment location otherwise).
The refund is kept in the REST shape a refunds/create webhook carries (`shop.refund_payload(id)`):
refund_line_items with subtotal, order_adjustments (shipping_refund, and refund_discrepancy for whatever
the transactions move beyond the lines and shipping), transactions.

Guessed: the error texts; that the fake's orders carry no tax, so a line's subtotal is its price x quantity.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from tests.fakes.graphql_lite import Conn, gid, gid_number

if TYPE_CHECKING:
    from tests.fakes.shopify import FakeShopify

RESTOCK_TYPES = {"RETURN", "CANCEL", "NO_RESTOCK", "LEGACY_RESTOCK"}


def _error(field: list, message: str) -> dict:
    return {"field": field, "message": message}


def _set(amount: Decimal, currency: str) -> dict:
    text = f"{amount:.2f}"
    return {
        "shop_money": {"amount": text, "currency_code": currency},
        "presentment_money": {"amount": text, "currency_code": currency},
    }


def refunded_quantity(order: dict, line_item_id: int) -> int:
    return sum(
        rli["quantity"]
        for refund in order["refunds"]
        for rli in refund["refund_line_items"]
        if rli["line_item_id"] == line_item_id
    )


def order_refund_fields(shop: FakeShopify, order_id: int) -> dict:
    """What the GraphQL order shows of its lines, transactions and refunds (merged into the order view)."""
    order = shop.orders[order_id]
    currency = order["currency"]

    def line_view(item: dict) -> dict:
        return {
            "id": gid("LineItem", item["id"]),
            "sku": item["sku"],
            "name": item["title"],
            "quantity": item["quantity"],
            "refundableQuantity": item["quantity"] - refunded_quantity(order, item["id"]),
        }

    def tx_view(tx: dict) -> dict:
        return {
            "id": gid("OrderTransaction", tx["id"]),
            "kind": tx["kind"].upper(),
            "status": tx["status"].upper(),
            "gateway": tx["gateway"],
            "parentTransaction": {"id": gid("OrderTransaction", tx["parent_id"])} if tx["parent_id"] else None,
            "amountSet": {"shopMoney": {"amount": tx["amount"], "currencyCode": currency}},
        }

    return {
        "currencyCode": currency,
        "lineItems": Conn(order["line_items"], line_view),
        "transactions": lambda args: [tx_view(tx) for tx in shop.transactions_of(order_id)],
        "refunds": lambda args: [
            {"id": gid("Refund", r["id"]), "note": r["note"], "createdAt": r["created_at"]} for r in order["refunds"]
        ],
    }


def refund_create(shop: FakeShopify, data: dict) -> dict:
    order_id = gid_number(data.get("orderId"), "Order")
    if order_id not in shop.orders:
        return {"refund": None, "userErrors": [_error(["orderId"], "Order does not exist")]}
    order = shop.orders[order_id]
    items = {li["id"]: li for li in order["line_items"]}
    errors: list[dict] = []
    lines: list[tuple[dict, int, str, int | None]] = []
    for n, rli in enumerate(data.get("refundLineItems") or []):
        item = items.get(gid_number(rli.get("lineItemId"), "LineItem") or 0)
        quantity, restock = int(rli.get("quantity") or 0), str(rli.get("restockType") or "NO_RESTOCK")
        location = gid_number(rli.get("locationId"), "Location") if rli.get("locationId") else None
        where = ["refundLineItems", str(n)]
        if item is None:
            errors.append(_error([*where, "lineItemId"], "Line item does not exist"))
        elif quantity < 1 or quantity > item["quantity"] - refunded_quantity(order, item["id"]):
            errors.append(_error([*where, "quantity"], "Quantity cannot refund more items than were purchased"))
        elif restock not in RESTOCK_TYPES:
            errors.append(_error([*where, "restockType"], f"Expected one of {sorted(RESTOCK_TYPES)}"))
        elif location is not None and location not in shop.locations:
            errors.append(_error([*where, "locationId"], "Location does not exist"))
        else:
            lines.append((item, quantity, restock, location))
    parents = {tx["id"]: tx for tx in shop.transactions_of(order_id)}
    moved: list[tuple[dict, Decimal]] = []
    for n, tx in enumerate(data.get("transactions") or []):
        parent = parents.get(gid_number(tx.get("parentId"), "OrderTransaction") or 0)
        amount = Decimal(str(tx.get("amount") or "0"))
        where = ["transactions", str(n)]
        if str(tx.get("kind")) != "REFUND":
            errors.append(_error([*where, "kind"], "Only refund transactions can be created here"))
        elif parent is None or parent["kind"] not in ("sale", "capture") or parent["status"] != "success":
            errors.append(_error([*where, "parentId"], "Parent transaction must be a successful sale or capture"))
        elif tx.get("gateway") != parent["gateway"]:
            errors.append(_error([*where, "gateway"], "Gateway must match the parent transaction's"))
        elif amount <= 0 or amount > _left(shop, order_id, parent):
            errors.append(_error([*where, "amount"], "Amount cannot exceed the refundable amount of the transaction"))
        else:
            moved.append((parent, amount))
    if errors:
        return {"refund": None, "userErrors": errors}
    shipping = Decimal(str((data.get("shipping") or {}).get("amount") or "0"))
    return {"refund": _record(shop, order_id, data.get("note"), lines, moved, shipping), "userErrors": []}


def _left(shop: FakeShopify, order_id: int, parent: dict) -> Decimal:
    given = sum(
        (
            Decimal(t["amount"])
            for t in shop.transactions_of(order_id)
            if t["kind"] == "refund" and t["parent_id"] == parent["id"]
        ),
        Decimal(0),
    )
    return Decimal(parent["amount"]) - given


def _record(
    shop: FakeShopify,
    order_id: int,
    note: str | None,
    lines: list[tuple[dict, int, str, int | None]],
    moved: list[tuple[dict, Decimal]],
    shipping: Decimal,
) -> dict:
    order = shop.orders[order_id]
    currency = order["currency"]
    refund_id = shop.next_id("refund")
    created = shop.stamp(datetime.now(UTC))
    refund_lines = []
    for item, quantity, restock, location in lines:
        subtotal = Decimal(item["price"]) * quantity
        if restock in ("RETURN", "CANCEL", "LEGACY_RESTOCK"):
            location = location or shop.fulfillment_orders_of(order_id)[0].location_id
            inventory_item = shop.item_of_line(item)
            if inventory_item is not None:
                shop.set_level(inventory_item, location, (shop.level(inventory_item, location) or 0) + quantity)
        refund_lines.append(
            {
                "id": shop.next_id("refund_line"),
                "line_item_id": item["id"],
                "quantity": quantity,
                "restock_type": restock.lower(),
                "location_id": location if restock != "NO_RESTOCK" else None,
                "subtotal": float(subtotal),
                "subtotal_set": _set(subtotal, currency),
                "total_tax": 0.0,
                "total_tax_set": _set(Decimal(0), currency),
                "line_item": {"id": item["id"], "sku": item["sku"], "title": item["title"]},
            }
        )
    transactions = [
        shop.add_transaction(order_id, "refund", parent["gateway"], f"{amount:.2f}", parent_id=parent["id"])
        for parent, amount in moved
    ]
    lines_total = sum((Decimal(rl["subtotal_set"]["shop_money"]["amount"]) for rl in refund_lines), Decimal(0))
    adjustments = []
    if shipping:
        adjustments.append(_adjustment(shop, "shipping_refund", -shipping, currency))
    discrepancy = sum((amount for _, amount in moved), Decimal(0)) - lines_total - shipping
    if moved and discrepancy:
        adjustments.append(_adjustment(shop, "refund_discrepancy", -discrepancy, currency))
    refund = {
        "id": refund_id,
        "admin_graphql_api_id": gid("Refund", refund_id),
        "order_id": order_id,
        "created_at": created,
        "processed_at": created,
        "note": note,
        "restock": any(rl["restock_type"] != "no_restock" for rl in refund_lines),
        "refund_line_items": refund_lines,
        "order_adjustments": adjustments,
        "transactions": transactions,
        "duties": [],
    }
    order["refunds"].append(refund)
    paid = sum(
        (Decimal(t["amount"]) for t in shop.transactions_of(order_id) if t["kind"] in ("sale", "capture")), Decimal(0)
    )
    given = sum((Decimal(t["amount"]) for t in shop.transactions_of(order_id) if t["kind"] == "refund"), Decimal(0))
    order["financial_status"] = "refunded" if paid and given >= paid else "partially_refunded"
    shop.touch_order(order_id)
    total = sum((amount for _, amount in moved), Decimal(0))
    return {
        "id": gid("Refund", refund_id),
        "legacyResourceId": str(refund_id),
        "note": note,
        "totalRefundedSet": {"shopMoney": {"amount": f"{total:.2f}", "currencyCode": currency}},
    }


def _adjustment(shop: FakeShopify, kind: str, amount: Decimal, currency: str) -> dict:
    return {
        "id": shop.next_id("adjustment"),
        "kind": kind,
        "reason": "Shipping refund" if kind == "shipping_refund" else "Refund discrepancy",
        "amount": f"{amount:.2f}",
        "amount_set": _set(amount, currency),
        "tax_amount": "0.00",
        "tax_amount_set": _set(Decimal(0), currency),
    }


def refund_payload(shop: FakeShopify, refund_id: int | str) -> dict:
    """The refunds/create webhook body Shopify sends for this refund (REST shape)."""
    number = gid_number(refund_id, "Refund") or int(refund_id)
    for order in shop.orders.values():
        for refund in order["refunds"]:
            if refund["id"] == number:
                return dict(refund)
    raise KeyError(f"no refund {refund_id}")
