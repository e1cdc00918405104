"""The fake WooCommerce's `POST orders/<id>/refunds`, after WooCommerce's own code: the wc/v3 refunds
controller (`prepare_object_for_database`), `RestApiUtil::adjust_create_refund_request_parameters`,
`wc_create_refund`, `wc_refund_payment` and `wc_restock_refunded_items` (docs/platforms.md#woocommerce-refunds).

- The request: `amount` (a string; when missing, the line items' refund_total and refund_tax added up),
  `reason`, `api_refund` and `api_restock` (true unless a boolean false), `line_items` [{id, quantity,
  refund_total, refund_tax: [{id, refund_total}]}] where `id` is any item of the order (a product line, a
  shipping line, a fee); ids the order does not have are skipped, and a later entry for the same id
  replaces an earlier one (WooCommerce keys them by id). Quantities are not checked against the order.
- An amount below zero: 400 woocommerce_rest_invalid_order_refund. An amount above what the order has left
  to refund: 500 woocommerce_rest_cannot_create_order_refund "Invalid refund amount.".
- api_refund: the order's payment gateway (`payment_method`, in `gateways`: name -> supports refunds) must
  exist, support refunds and accept (`gateway_error`, a message, makes it decline); otherwise the refund
  is deleted and the answer is 500 woocommerce_rest_cannot_create_order_refund with the gateway's reason.
- api_restock: each refunded product line's product (variation_id, else product_id) that manages its stock
  gets its units back, and the order a private note "Item #<id> stock increased from <old> to <new>.".
  (WooCommerce also requires that the order reduced the line's stock; every fake order did.)
- The refund keeps its items negative, each with `_refunded_item_id` meta naming the order item; the order
  lists it in `refunds` ({id, reason, total}), becomes `refunded` once nothing is left, is modified, and
  queues order.updated. The answer is 201 with the refund.

Guessed: that amounts are answered with two decimals; refunds carry no tax_lines here.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from tests.fakes.woocommerce_http import WooError

if TYPE_CHECKING:
    from tests.fakes.woocommerce import FakeWooCommerce

# WooCommerce core's offline gateways declare no refund support; card gateways (plugins) do.
GATEWAYS = {"bacs": False, "cheque": False, "cod": False, "stripe": True, "woocommerce_payments": True}
CANNOT = "woocommerce_rest_cannot_create_order_refund"


def _number(value: Any, name: str) -> Decimal:
    try:
        return Decimal(str(value)) if value not in (None, "") else Decimal(0)
    except InvalidOperation:
        raise WooError(400, "rest_invalid_param", f"Invalid parameter(s): {name}") from None


def _negative(amount: Decimal) -> str:
    """wc_format_refund_total: the amount as a negative, formatted to the store's two decimals."""
    return f"{-abs(amount):.2f}" if amount else "0.00"


def _adjust(body: dict) -> dict[int, dict]:
    """RestApiUtil's conversion: line_items keyed by id, `quantity` as qty, refund_tax keyed by rate id."""
    items: dict[int, dict] = {}
    for entry in body.get("line_items") or []:
        if not isinstance(entry, dict) or "id" not in entry:
            raise WooError(400, "rest_invalid_param", "Invalid parameter(s): line_items")
        taxes = {
            str(t.get("id")): _number(t.get("refund_total"), "line_items")
            for t in entry.get("refund_tax") or []
            if isinstance(t, dict)
        }
        items[int(entry["id"])] = {
            "qty": int(entry.get("quantity") or 0),
            "refund_total": _number(entry.get("refund_total"), "line_items"),
            "refund_tax": {rate: amount for rate, amount in taxes.items() if amount},  # array_filter
        }
    return items


def create_refund(fake: FakeWooCommerce, oid: int, body: dict, touched: set) -> tuple:
    order = fake.orders.get(oid)
    if order is None:
        raise WooError(404, "woocommerce_rest_invalid_order_id", "Invalid order ID.")
    if "amount" in body and not isinstance(body["amount"], str):
        raise WooError(400, "rest_invalid_param", "Invalid parameter(s): amount", params={"amount": "not a string"})
    wanted = _adjust(body)
    if "amount" in body:
        amount = _number(body["amount"], "amount")
    else:
        amount = sum(
            (w["refund_total"] + sum(w["refund_tax"].values(), Decimal(0)) for w in wanted.values()), Decimal(0)
        )
    if amount < 0:
        raise WooError(400, "woocommerce_rest_invalid_order_refund", "Refund amount must be greater than zero.")
    refunded = sum((Decimal(r["amount"]) for r in fake.refunds[oid]), Decimal(0))
    remaining = Decimal(str(order["total"])) - refunded
    if amount > remaining:
        raise WooError(500, CANNOT, "Invalid refund amount.")
    rid = fake._id()
    refund = {
        "id": rid,
        "reason": str(body.get("reason") or ""),
        "amount": f"{amount:.2f}",
        "refunded_by": 1,
        "refunded_payment": False,
        "meta_data": [],
        "line_items": [],
        "shipping_lines": [],
        "fee_lines": [],
        **fake._stamps("date_created"),
    }
    for kind in ("line_items", "shipping_lines", "fee_lines"):
        for item in order.get(kind) or []:
            if item["id"] in wanted:
                made = _refunded_item(fake, kind, item, wanted[item["id"]])
                if made is not None:
                    refund[kind].append(made)
    if body.get("api_refund") is not False:
        _refund_payment(fake, order)  # a failure deletes the refund: nothing of it is kept
        refund["refunded_payment"] = True
    if body.get("api_restock") is not False:
        _restock(fake, order, wanted, touched)
    fake.refunds[oid].append(refund)
    order.setdefault("refunds", []).append({"id": rid, "reason": refund["reason"], "total": _negative(amount)})
    if remaining - amount <= 0:
        order["status"] = "refunded"
    order.update(fake._stamps("date_modified"))
    touched.add(("order", oid))
    return 201, refund


def _refunded_item(fake: FakeWooCommerce, kind: str, item: dict, wanted: dict) -> dict | None:
    qty, total, taxes = wanted["qty"], wanted["refund_total"], wanted["refund_tax"]
    if not qty and not total and not taxes:
        return None
    tax = sum(taxes.values(), Decimal(0))
    made: dict[str, Any] = {
        "id": fake._id(),
        "total": _negative(total),
        "total_tax": _negative(tax),
        "taxes": [
            {"id": int(rate), "total": _negative(amount), "subtotal": _negative(amount)}
            for rate, amount in taxes.items()
        ],
        "meta_data": [
            {
                "id": fake._id(),
                "key": "_refunded_item_id",
                "value": str(item["id"]),
                "display_key": "_refunded_item_id",
                "display_value": str(item["id"]),
            }
        ],
    }
    if kind == "line_items":
        made.update(
            name=item.get("name", ""),
            product_id=item.get("product_id", 0),
            variation_id=item.get("variation_id", 0),
            quantity=-qty,
            tax_class=item.get("tax_class", ""),
            subtotal=made["total"],
            subtotal_tax=made["total_tax"],
            sku=item.get("sku", ""),
            price=float(-total / qty) if qty else 0.0,
        )
    elif kind == "shipping_lines":
        made.update(method_title=item.get("method_title", ""), method_id=item.get("method_id", ""))
    else:
        made.update(name=item.get("name", ""))
    return made


def _refund_payment(fake: FakeWooCommerce, order: dict) -> None:
    method = str(order.get("payment_method") or "")
    if method not in fake.gateways:
        raise WooError(500, CANNOT, "The payment gateway for this order does not exist.")
    if not fake.gateways[method]:
        raise WooError(500, CANNOT, "The payment gateway for this order does not support automatic refunds.")
    if fake.gateway_error:
        raise WooError(500, CANNOT, fake.gateway_error)


def _restock(fake: FakeWooCommerce, order: dict, wanted: dict[int, dict], touched: set) -> None:
    notes = fake.notes.setdefault(order["id"], [])
    for item in order.get("line_items") or []:
        qty = wanted.get(item["id"], {}).get("qty")
        product = fake.products.get(item.get("variation_id") or item.get("product_id") or 0)
        if not qty or product is None or product["manage_stock"] is not True:
            continue
        old = product["stock_quantity"] or 0
        product["stock_quantity"] = old + qty
        fake._derive_status(product)
        touched.add(("product", product["id"]))
        notes.append(
            {
                "id": fake._id(),
                "author": "WooCommerce",
                "note": f"Item #{product['id']} stock increased from {old} to {old + qty}.",
                "customer_note": False,
                **fake._stamps("date_created"),
            }
        )
