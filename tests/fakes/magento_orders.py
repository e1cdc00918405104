"""Realistic Magento 2 order and credit memo JSON for the fake store, its totals worked out the way Magento's
collectors do (platforms/magento/mapping.py's notes).

- Prices excluding tax: row_total = price × qty; the discount comes off the row; tax = (row − discount) × rate.
- Prices including tax (the catalog price is tax-inclusive, the discount is taken off that price): row_total
  = row_incl_tax / (1 + rate); tax = what is left after the discount less its net; the tax the discount
  carried is the discount tax compensation. Shipping the same way.
- grand_total = subtotal + shipping + tax + discount_amount (negative) + both compensations.
Amounts are JSON numbers, as Magento's REST answers them; the base currency is what the ERP books, the
order currency `rate` times it.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

CENT = Decimal("0.01")
OFFLINE = ("checkmo", "banktransfer", "cashondelivery", "purchaseorder")  # unpaid until the merchant invoices


def r2(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def num(value: Decimal) -> float:
    return float(value)


@dataclass(frozen=True)
class Line:
    sku: str
    price: str  # the catalog price: tax-inclusive when the order's prices include tax
    qty: int = 1
    tax_rate: str = "0"  # percent
    discount_percent: str = "0"
    name: str = ""
    parent_sku: str | None = None  # set: a configurable product, this line's sku the simple chosen
    virtual: bool = False


@dataclass(frozen=True)
class _Split:
    row: Decimal  # before tax
    row_incl: Decimal
    price: Decimal
    price_incl: Decimal
    discount: Decimal  # as Magento stores it (tax-inclusive when prices are)
    tax: Decimal
    compensation: Decimal


def split(price: Decimal, qty: int, rate: Decimal, discount_pct: Decimal, incl: bool) -> _Split:
    """One row's figures from its catalog price, the way Magento's tax and discount collectors make them."""
    if incl:
        row_incl = price * qty
        row = r2(row_incl / (1 + rate))
        discount = r2(row_incl * discount_pct)
        taxable = row_incl - discount
        tax = taxable - r2(taxable / (1 + rate))
        return _Split(row, row_incl, r2(price / (1 + rate)), price, discount, tax, (row_incl - row) - tax)
    row = price * qty
    discount = r2(row * discount_pct)
    tax = r2((row - discount) * rate)
    return _Split(row, r2(row * (1 + rate)), price, r2(price * (1 + rate)), discount, tax, Decimal(0))


def _pair(data: dict, name: str, value: Decimal, rate: Decimal) -> None:
    """`name` in the order currency and `base_name` in the base currency."""
    data[f"base_{name}"] = num(value)
    data[name] = num(r2(value * rate))


def address(first: str, last: str, country: str = "DE", postcode: str = "10115", email: str = "") -> dict:
    return {
        "address_type": "billing",
        "firstname": first,
        "lastname": last,
        "company": "",
        "street": ["Hauptstraße 1", "2. OG"],
        "city": "Berlin",
        "region": "Berlin",
        "region_code": "BE",
        "postcode": postcode,
        "country_id": country,
        "telephone": "+49 30 123456",
        "email": email,
    }


def build_order(
    entity_id: int,
    lines: list[Line],
    *,
    created_at: str,
    shipping: str = "5.00",
    shipping_tax_rate: str | None = None,
    shipping_discount_percent: str = "0",
    prices_incl_tax: bool = False,
    guest: bool = False,
    customer_id: int = 7,
    email: str = "anna@example.com",
    payment: str = "checkmo",
    state: str | None = None,
    base_currency: str = "EUR",
    order_currency: str | None = None,
    rate: str = "1",
    coupon: str | None = None,
    next_item_id: int = 1,
    tax_title: str | None = None,
) -> dict:
    """One order as GET /V1/orders answers it (`tax_title`: the tax rates' title, else "VAT <rate>%")."""
    fx = Decimal(rate)
    items: list[dict] = []
    applied: dict[tuple[str, Decimal], Decimal] = {}
    item_taxes: list[dict] = []
    sums = {k: Decimal(0) for k in ("row", "row_incl", "discount", "tax", "compensation")}
    item_id = next_item_id
    for ln in lines:
        tax_rate = Decimal(ln.tax_rate) / 100
        s = split(Decimal(ln.price), ln.qty, tax_rate, Decimal(ln.discount_percent) / 100, prices_incl_tax)
        for key, value in (
            ("row", s.row),
            ("row_incl", s.row_incl),
            ("discount", s.discount),
            ("tax", s.tax),
            ("compensation", s.compensation),
        ):
            sums[key] += value
        parent = _item(item_id, entity_id, ln, s, Decimal(ln.tax_rate), fx, created_at)
        if ln.parent_sku:
            parent["product_type"] = "configurable"
            parent["product_id"] = 500 + item_id
            items.append(parent)
            child = _item(item_id + 1, entity_id, ln, _Split(*(Decimal(0),) * 7), Decimal(0), fx, created_at)
            child.update(parent_item_id=item_id, parent_item=dict(parent), product_type="simple")
            child["product_id"] = 900 + item_id
            child["price"] = child["base_price"] = 0
            items.append(child)
            item_id += 2
        else:
            items.append(parent)
            item_id += 1
        if s.tax:
            title = tax_title or f"VAT {ln.tax_rate}%"
            applied[(title, Decimal(ln.tax_rate))] = applied.get((title, Decimal(ln.tax_rate)), Decimal(0)) + s.tax
            item_taxes.append(_item_tax("product", parent["item_id"], title, Decimal(ln.tax_rate), s.tax, fx))
    virtual = all(ln.virtual for ln in lines)
    ship_rate_pct = Decimal(shipping_tax_rate if shipping_tax_rate is not None else (lines[0].tax_rate if lines else 0))
    ship = split(
        Decimal(shipping if not virtual else "0"),
        1,
        ship_rate_pct / 100,
        Decimal(shipping_discount_percent) / 100,
        prices_incl_tax,
    )
    if ship.tax:
        title = tax_title or f"VAT {ship_rate_pct.normalize()}%"
        applied[(title, ship_rate_pct)] = applied.get((title, ship_rate_pct), Decimal(0)) + ship.tax
        item_taxes.append(_item_tax("shipping", None, title, ship_rate_pct, ship.tax, fx))
    tax = sums["tax"] + ship.tax
    discount = -(sums["discount"] + ship.discount)
    grand = sums["row"] + ship.row + tax + discount + sums["compensation"] + ship.compensation
    paid = payment not in OFFLINE
    data: dict[str, Any] = {
        "entity_id": entity_id,
        "increment_id": f"{entity_id:09d}",
        "state": state or ("processing" if paid else "new"),
        "status": {"new": "pending", "processing": "processing"}.get(state or ("processing" if paid else "new"), state),
        "store_id": 1,
        "base_currency_code": base_currency,
        "order_currency_code": order_currency or base_currency,
        "global_currency_code": base_currency,
        "store_currency_code": base_currency,
        "base_to_order_rate": num(fx),
        "created_at": created_at,
        "updated_at": created_at,
        "customer_email": email,
        "customer_firstname": "Anna",
        "customer_lastname": "Schmidt",
        "customer_is_guest": 1 if guest else 0,
        "customer_group_id": 0 if guest else 1,
        "coupon_code": coupon,
        "discount_description": coupon or ("Summer sale" if discount else None),
        "shipping_method": None if virtual else "flatrate_flatrate",
        "shipping_description": None if virtual else "Flat Rate - Fixed",
        "total_item_count": len(lines),
        "total_qty_ordered": sum(ln.qty for ln in lines),
        "items": items,
        "billing_address": address("Anna", "Schmidt", email=email),
        "payment": {
            "method": payment,
            "account_status": None,
            "additional_information": ["Check / Money order"] if payment == "checkmo" else [],
            "last_trans_id": None if not paid else f"txn-{entity_id}",
        },
        "status_histories": [],
    }
    if not guest:
        data["customer_id"] = customer_id
    for name, value in (
        ("subtotal", sums["row"]),
        ("subtotal_incl_tax", sums["row_incl"]),
        ("discount_amount", discount),
        ("discount_tax_compensation_amount", sums["compensation"]),
        ("shipping_amount", ship.row),
        ("shipping_incl_tax", ship.row_incl),
        ("shipping_tax_amount", ship.tax),
        ("shipping_discount_amount", ship.discount),
        ("shipping_discount_tax_compensation_amount", ship.compensation),
        ("tax_amount", tax),
        ("grand_total", grand),
        ("total_paid", grand if paid else Decimal(0)),
        ("total_invoiced", grand if paid else Decimal(0)),
        ("total_due", Decimal(0) if paid else grand),
        ("total_refunded", Decimal(0)),
    ):
        _pair(data, name, value, fx)
    # The one field whose base twin Magento's column name shortens.
    data["base_shipping_discount_tax_compensation_amnt"] = data.pop("base_shipping_discount_tax_compensation_amount")
    shipping_block: dict[str, Any] = {"method": data["shipping_method"], "total": {}}
    if not virtual:
        shipping_block["address"] = {**address("Anna", "Schmidt", postcode="20095"), "address_type": "shipping"}
    data["extension_attributes"] = {
        "shipping_assignments": [{"shipping": shipping_block, "items": [dict(i) for i in items]}],
        "applied_taxes": [
            {"code": title, "title": title, "percent": num(pct), "amount": num(r2(amt * fx)), "base_amount": num(amt)}
            for (title, pct), amt in applied.items()
        ],
        "item_applied_taxes": item_taxes,
    }
    return data


def _item(item_id: int, order_id: int, ln: Line, s: _Split, pct: Decimal, fx: Decimal, at: str) -> dict:
    item: dict[str, Any] = {
        "item_id": item_id,
        "order_id": order_id,
        "sku": ln.sku,
        "name": ln.name or ln.sku,
        "product_id": 100 + item_id,
        "product_type": "virtual" if ln.virtual else "simple",
        "is_virtual": 1 if ln.virtual else 0,
        "qty_ordered": ln.qty,
        "qty_invoiced": 0,
        "qty_shipped": 0,
        "qty_refunded": 0,
        "qty_canceled": 0,
        "tax_percent": num(pct),
        "discount_percent": num(Decimal(ln.discount_percent)) if s.discount else 0,
        "created_at": at,
        "updated_at": at,
        "store_id": 1,
    }
    for name, value in (
        ("price", s.price),
        ("original_price", Decimal(ln.price) if s.row else Decimal(0)),  # the catalog price
        ("price_incl_tax", s.price_incl),
        ("row_total", s.row),
        ("row_total_incl_tax", s.row_incl),
        ("tax_amount", s.tax),
        ("discount_amount", s.discount),
        ("discount_tax_compensation_amount", s.compensation),
    ):
        _pair(item, name, value, fx)
    return item


def _item_tax(kind: str, item_id: int | None, title: str, pct: Decimal, amount: Decimal, fx: Decimal) -> dict:
    return {
        "type": kind,
        "item_id": item_id,
        "associated_item_id": None,
        "applied_taxes": [
            {
                "code": title,
                "title": title,
                "percent": num(pct),
                "amount": num(r2(amount * fx)),
                "base_amount": num(amount),
            }
        ],
    }


def build_creditmemo(
    entity_id: int,
    order: dict,
    refunded: dict[int, int],
    *,
    created_at: str,
    shipping: bool = False,
    adjustment_positive: str = "0",
    adjustment_negative: str = "0",
    back_to_stock: bool = False,
) -> dict:
    """A credit memo of `order`: {order item id: qty} of its rows (a configurable's child follows its
    parent), the shipping in full or not, and the adjustments, in the base currency."""
    fx = Decimal(str(order["base_to_order_rate"]))
    rows: list[dict] = []
    sums = {k: Decimal(0) for k in ("row", "tax", "discount", "compensation")}
    for item in order["items"]:
        host = item.get("parent_item_id") or item["item_id"]
        qty = refunded.get(host, 0)
        if not qty:
            continue
        share = Decimal(qty) / Decimal(str(item["qty_ordered"]))
        row = {"order_item_id": item["item_id"], "sku": item["sku"], "qty": qty, "product_id": item["product_id"]}
        for name in ("row_total", "tax_amount", "discount_amount", "discount_tax_compensation_amount"):
            amount = r2(Decimal(str(item[f"base_{name}"])) * share)
            _pair(row, name, amount, fx)
            key = {"row_total": "row", "tax_amount": "tax", "discount_amount": "discount"}.get(name, "compensation")
            sums[key] += amount
        if back_to_stock and not item.get("parent_item_id"):
            row["back_to_stock"] = True
        rows.append(row)
    ship = ship_tax = ship_discount = ship_comp = Decimal(0)
    if shipping:
        ship = Decimal(str(order["base_shipping_amount"]))
        ship_tax = Decimal(str(order["base_shipping_tax_amount"]))
        ship_discount = Decimal(str(order["base_shipping_discount_amount"]))
        ship_comp = Decimal(str(order["base_shipping_discount_tax_compensation_amnt"]))
    positive, negative = Decimal(adjustment_positive), Decimal(adjustment_negative)
    discount = -(sums["discount"] + ship_discount)
    tax = sums["tax"] + ship_tax
    grand = sums["row"] + ship + tax + discount + sums["compensation"] + ship_comp + positive - negative
    memo: dict[str, Any] = {
        "entity_id": entity_id,
        "increment_id": f"{entity_id:09d}",
        "order_id": order["entity_id"],
        "created_at": created_at,
        "updated_at": created_at,
        "state": 2,
        "base_currency_code": order["base_currency_code"],
        "order_currency_code": order["order_currency_code"],
        "base_to_order_rate": order["base_to_order_rate"],
        "items": rows,
        "comments": [],
    }
    for name, value in (
        ("subtotal", sums["row"]),
        ("discount_amount", discount),
        ("discount_tax_compensation_amount", sums["compensation"] + ship_comp),
        ("shipping_amount", ship),
        ("shipping_tax_amount", ship_tax),
        ("tax_amount", tax),
        ("adjustment_positive", positive),
        ("adjustment_negative", negative),
        ("adjustment", positive - negative),
        ("grand_total", grand),
    ):
        _pair(memo, name, value, fx)
    return memo
