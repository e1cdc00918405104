"""Magento 2 REST order and credit memo JSON -> canonical Order and Refund. Pure, no I/O.

Magento semantics relied on (magento/magento2 Sales API data interfaces and totals collectors):
- Currency: every amount comes twice, `base_*` in the website's base currency and plain in the order
  (display) currency the customer saw. Payment methods charge the base amount and the merchant's books
  are kept in it, so the ERP books the BASE amounts in `base_currency_code`, as Shopify's shop currency;
  the customer's currency and grand total are kept as the presentment currency and total.
- Tax: an order stores both sides of every figure (`row_total` / `row_total_incl_tax`, `shipping_amount` /
  `shipping_incl_tax`) whatever the catalog's "prices include tax" setting, so the canonical order is
  always tax-exclusive (taxes_included False), as WooCommerce's: total = subtotal − discounts + shipping
  + tax. The line's gross is `row_total` (with prices including tax, `price` × qty may be a cent off it).
- Discounts: item `discount_amount` and order `shipping_discount_amount` are positive, the order's
  `discount_amount` negative. With prices including tax the discount is taken off the tax-inclusive
  price, and the tax that discount carried is `discount_tax_compensation_amount` (per item; the shipping
  one is `shipping_discount_tax_compensation_amount`): the tax-exclusive discount is the discount less
  its compensation. grand_total = subtotal + shipping + tax + discount_amount + both compensations.
- Items: a configurable product is a parent row (the price, tax and discount; its `sku` already the
  chosen simple's) and a child row (`parent_item_id` set, amounts zero, the simple's own sku and
  product id): one line, from the parent, with the child's sku. A bundle priced as a whole likewise
  books its parent; a bundle priced by its parts ("dynamic") carries the amounts on its children, and
  those are booked instead of the parent.
- Status: `state` is Magento's fixed life cycle (new, pending_payment, payment_review, processing,
  complete, closed, canceled, holded); `status` a merchant-editable label, kept only for people.
- Credit memos: base amounts likewise; an item's `back_to_stock` (when the store or an extension keeps
  it) says the units went back on the shelf; the memo's `adjustment_positive` / `adjustment_negative`
  are the refund's extra amount and fee.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from marshmallow import fields

from mappings import payloads
from mappings.canonical import (
    Address,
    Customer,
    Discount,
    Money,
    Order,
    OrderLine,
    Payment,
    Refund,
    RefundLine,
    ShippingLine,
    TaxLine,
    Totals,
    money_sum,
)
from mappings.currencies import check_minor_units, one_unit
from mappings.errors import MappingError
from mappings.fields import MAX_ID, Amount, Base, Timestamp, blank_to_none, currency, ident, list_of, load, opt

SOURCE = "magento"
_FOUR_DP = Decimal("0.0001")
_UTC = {"naive_is_utc": True}  # Magento keeps and answers times in UTC, without an offset
_ZERO = Decimal(0)

# Magento's payment method codes in our vocabulary (any other: a card gateway or "other", below).
PAYMENT_METHODS = {
    "cashondelivery": "cod",
    "banktransfer": "bank_transfer",
    "checkmo": "manual",
    "purchaseorder": "manual",
    "free": "manual",
}
_CARD_HINTS = ("braintree", "stripe", "authorizenet", "adyen", "cc", "card", "payflow", "cybersource", "checkout")


def _opt_amount(**kw: Any) -> fields.Field:
    """An amount Magento may send as null or leave out: zero."""
    return Amount(load_default=None, allow_none=True, **kw)


_AppliedTax = Base.from_dict(
    {"code": opt(), "title": opt(), "percent": _opt_amount(), "base_amount": _opt_amount(signed=True)},
    name="_AppliedTax",
)
_ItemAppliedTaxes = Base.from_dict(
    {"type": opt(), "item_id": opt(ident), "associated_item_id": opt(ident), "applied_taxes": list_of(_AppliedTax)},
    name="_ItemAppliedTaxes",
)
_ITEM_AMOUNTS = (
    "base_row_total",
    "base_tax_amount",
    "base_discount_amount",
    "base_discount_tax_compensation_amount",
    "tax_percent",
)
_Item = Base.from_dict(
    {
        "item_id": ident(required=True),
        "parent_item_id": opt(ident),
        "sku": opt(),
        "name": opt(),
        "product_id": opt(ident, minimum=0),
        "product_type": opt(),
        "is_virtual": fields.Raw(load_default=None),
        "qty_ordered": Amount(required=True, max_places=4),
        **{name: _opt_amount() for name in _ITEM_AMOUNTS},
    },
    name="_Item",
)
_Address = Base.from_dict(
    {
        **{
            key: opt()
            for key in (
                "firstname",
                "lastname",
                "company",
                "city",
                "region",
                "region_code",
                "postcode",
                "country_id",
                "telephone",
                "email",
            )
        },
        "street": fields.List(fields.String(), allow_none=True, load_default=list),
    },
    name="_Address",
)
_Shipping = Base.from_dict(
    {"address": opt(fields.Nested, nested=_Address), "method": opt()},
    name="_Shipping",
)
_Assignment = Base.from_dict({"shipping": opt(fields.Nested, nested=_Shipping)}, name="_Assignment")
_Extension = Base.from_dict(
    {
        "shipping_assignments": list_of(_Assignment),
        "applied_taxes": list_of(_AppliedTax),
        "item_applied_taxes": list_of(_ItemAppliedTaxes),
    },
    name="_Extension",
)
_PaymentSchema = Base.from_dict(
    {"method": opt(), "last_trans_id": opt(), "base_amount_authorized": _opt_amount()},
    name="_Payment",
)
_ORDER_AMOUNTS = (
    "base_subtotal",
    "base_shipping_amount",
    "base_shipping_tax_amount",
    "base_shipping_discount_amount",
    "base_tax_amount",
    "base_discount_tax_compensation_amount",
    "base_shipping_discount_tax_compensation_amnt",
    "base_total_paid",
    "base_total_refunded",
)
_MagentoOrder = Base.from_dict(
    {
        "entity_id": ident(required=True),
        "increment_id": opt(),
        "state": fields.String(required=True),
        "status": opt(),
        "base_currency_code": currency(required=True),
        "order_currency_code": opt(currency),
        "created_at": Timestamp(required=True, **_UTC),
        "updated_at": Timestamp(required=True, **_UTC),
        "customer_id": opt(ident, minimum=0),
        "customer_is_guest": fields.Raw(load_default=None),
        "customer_email": opt(),
        "customer_firstname": opt(),
        "customer_lastname": opt(),
        "customer_note": opt(),
        "coupon_code": opt(),
        "discount_description": opt(),
        "shipping_method": opt(),
        "shipping_description": opt(),
        "base_grand_total": Amount(required=True),
        "grand_total": _opt_amount(),
        "base_discount_amount": _opt_amount(signed=True),
        **{name: _opt_amount() for name in _ORDER_AMOUNTS},
        "items": fields.List(fields.Nested(_Item), required=True),
        "billing_address": opt(fields.Nested, nested=_Address),
        "payment": opt(fields.Nested, nested=_PaymentSchema),
        "extension_attributes": opt(fields.Nested, nested=_Extension),
    },
    name="_MagentoOrder",
)
_SCHEMA = _MagentoOrder()


def _z(value: Decimal | None) -> Decimal:
    return value if value is not None else _ZERO


# ---- orders ------------------------------------------------------------------------------------------


def order_from_magento(order: object, store: str) -> Order:
    """Map one Magento REST order (GET /V1/orders) to the canonical Order in the base currency, or raise
    MappingError saying why not."""
    try:
        mapped = _order(load(_SCHEMA, order, "a Magento order"), store)
        check_minor_units(mapped)
        return mapped
    except MappingError as exc:
        raise MappingError(f"Magento order {_order_ref(order)}: {exc}") from None


def booked_items(items: list[dict]) -> dict[int, int]:
    """Each order item id -> the item id of the line that books it. A configurable's child, and a part of a
    bundle priced as a whole, go to their parent; the parts of a bundle priced by its parts are lines
    themselves, and the bundle's own row goes to its first part."""
    parts: dict[int, list[int]] = {}
    for item in items:
        if item.get("parent_item_id"):
            parts.setdefault(int(item["parent_item_id"]), []).append(int(item["item_id"]))
    priced = {int(item["item_id"]) for item in items if _z(item.get("base_row_total"))}
    booked: dict[int, int] = {}
    for item in items:
        ident_ = int(item["item_id"])
        if item.get("parent_item_id"):
            continue
        kids = parts.get(ident_, [])
        if kids and priced.intersection(kids):
            booked.update({kid: kid for kid in kids})
            booked[ident_] = kids[0]
        else:
            booked.update(dict.fromkeys(kids, ident_))
            booked[ident_] = ident_
    for item in items:  # a child whose parent is missing books itself (the mapping refuses such orders)
        booked.setdefault(int(item["item_id"]), int(item["item_id"]))
    return booked


def _order(data: dict, store: str) -> Order:
    cur = data["base_currency_code"]
    items = data["items"]
    if not items:
        raise MappingError("items: an order needs at least one item")
    ids = [item["item_id"] for item in items]
    if len(set(ids)) != len(ids):
        raise MappingError("items: the same item_id appears twice")
    known = set(ids)
    for i, item in enumerate(items):
        if item["parent_item_id"] and item["parent_item_id"] not in known:
            raise MappingError(f"items[{i}]: parent_item_id {item['parent_item_id']} is not an item of the order")
    ext = data["extension_attributes"] or {}
    booked = booked_items(items)
    by_id = {item["item_id"]: item for item in items}
    rates = _item_rates(ext)
    lines: list[OrderLine] = []
    for item in items:
        if booked[item["item_id"]] != item["item_id"]:
            continue  # booked by its parent (or, for a bundle priced by its parts, by them)
        # A configurable's parent row has the price; its child names the simple product sold.
        child = next((c for c in items if c["parent_item_id"] == item["item_id"]), None)
        child = child if item["product_type"] == "configurable" else None
        lines.append(_line(len(lines) + 1, item, child, cur, rates.get(item["item_id"])))
    for item in items:  # amounts on a row booked by another would be lost
        host = booked[item["item_id"]]
        if host != item["item_id"] and any(_z(item[k]) for k in _ITEM_AMOUNTS if k != "tax_percent"):
            if by_id[host]["parent_item_id"] != item["item_id"]:  # (a dynamic bundle's own row is a sum)
                raise MappingError(f"item {item['item_id']} ({item['sku']}) carries amounts, but item {host} books it")
    shipping = _shipping(data, cur, ext)
    totals = _totals(data, tuple(lines), shipping)
    presented = data["order_currency_code"]
    discount = totals.discount_total
    return Order(
        source=SOURCE,
        store=store,
        external_id=str(data["entity_id"]),
        number=data["increment_id"] or str(data["entity_id"]),
        status=_status(data["state"]),
        placed_at=data["created_at"],
        updated_at=data["updated_at"],
        currency=cur,
        taxes_included=False,
        customer=_customer(data, ext),
        lines=tuple(lines),
        totals=totals,
        payment=_payment(data),
        billing_address=_address(data["billing_address"]),
        shipping_address=_address(_shipping_address(ext)),
        shipping_lines=shipping,
        discounts=(
            (
                Discount(
                    data["coupon_code"] or data["discount_description"] or "discount", _discount_kind(data), discount
                ),
            )
            if discount.amount
            else ()
        ),
        tax_lines=tuple(
            TaxLine(t["title"] or t["code"] or "Tax", _z(t["percent"]) / 100, Money(_z(t["base_amount"]), cur))
            for t in ext.get("applied_taxes") or []
            if t["base_amount"] is not None
        ),
        presentment_currency=presented if presented and presented != cur else None,
        presentment_total=(
            Money(data["grand_total"], presented)
            if presented and presented != cur and data["grand_total"] is not None
            else None
        ),
        cancel_reason="cancelled in Magento" if data["state"] == "canceled" else None,
        note=data["customer_note"] or "",
        note_attributes={k: v for k, v in (("state", data["state"]), ("status", data["status"] or "")) if v},
    )


def _status(state: str) -> str:
    if state == "canceled":
        return "cancelled"
    return "closed" if state in ("complete", "closed") else "open"


def _discount_kind(data: dict) -> str:
    return "coupon" if data["coupon_code"] else "automatic"


def _item_rates(ext: dict) -> dict[int, tuple[str, Decimal]]:
    """item id -> (title, rate) of the single tax applied to it, when the order lists applied taxes."""
    found: dict[int, tuple[str, Decimal]] = {}
    for entry in ext.get("item_applied_taxes") or []:
        item = entry["item_id"] or entry["associated_item_id"]
        taxes = entry["applied_taxes"] or []
        if entry["type"] == "product" and item and len(taxes) == 1 and taxes[0]["percent"] is not None:
            found[item] = (taxes[0]["title"] or taxes[0]["code"] or "Tax", taxes[0]["percent"] / 100)
    return found


def _shipping_rate(ext: dict) -> tuple[str, Decimal] | None:
    for entry in ext.get("item_applied_taxes") or []:
        taxes = entry["applied_taxes"] or []
        if entry["type"] == "shipping" and len(taxes) == 1 and taxes[0]["percent"] is not None:
            return taxes[0]["title"] or taxes[0]["code"] or "Tax", taxes[0]["percent"] / 100
    return None


def _line(line_no: int, item: dict, child: dict | None, cur: str, rate: tuple[str, Decimal] | None) -> OrderLine:
    path = f"item {item['item_id']}"
    qty = item["qty_ordered"]
    if qty != qty.to_integral_value() or qty < 1:
        raise MappingError(f"{path}: qty_ordered {qty} is not a whole number of units")
    quantity = int(qty)
    gross, tax = _z(item["base_row_total"]), _z(item["base_tax_amount"])
    discount = _z(item["base_discount_amount"]) - _z(item["base_discount_tax_compensation_amount"])
    if discount > gross:
        raise MappingError(f"{path}: discount {discount} (before tax) exceeds the row total {gross}")
    exact = gross / quantity
    unit = exact.quantize(_FOUR_DP, rounding=ROUND_HALF_EVEN)
    tax_lines: tuple[TaxLine, ...] = ()
    if tax or _z(item["tax_percent"]):
        title, percent = rate or ("Tax", _z(item["tax_percent"]) / 100)
        tax_lines = (TaxLine(title, percent, Money(tax, cur)),)
    sku = (child or {}).get("sku") or item["sku"]
    return OrderLine(
        line_no=line_no,
        external_id=str(item["item_id"]),
        sku=blank_to_none(sku),
        title=item["name"] or sku or f"item {item['item_id']}",
        quantity=quantity,
        unit_price=Money(exact if unit == exact else unit, cur),
        discount_total=Money(discount, cur),
        tax_lines=tax_lines,
        product_id=str(item["product_id"]) if item["product_id"] else None,
        variant_id=str(child["product_id"]) if child and child.get("product_id") else None,
        requires_shipping=not bool(item["is_virtual"]),
        subtotal=Money(gross, cur),
    )


def _shipping(data: dict, cur: str, ext: dict) -> tuple[ShippingLine, ...]:
    price = _z(data["base_shipping_amount"])
    method = data["shipping_method"] or _assigned_method(ext)
    if not price and not method:
        return ()  # a virtual order
    discount = _z(data["base_shipping_discount_amount"]) - _z(data["base_shipping_discount_tax_compensation_amnt"])
    tax = _z(data["base_shipping_tax_amount"])
    tax_lines: tuple[TaxLine, ...] = ()
    if tax:
        net = price - discount
        title, rate = _shipping_rate(ext) or ("Tax", (tax / net).quantize(_FOUR_DP) if net else _ZERO)
        tax_lines = (TaxLine(title, rate, Money(tax, cur)),)
    return (
        ShippingLine(
            code=method or "",
            title=data["shipping_description"] or method or "Shipping",
            price=Money(price, cur),
            discount_total=Money(discount, cur),
            tax_lines=tax_lines,
        ),
    )


def _assigned_method(ext: dict) -> str | None:
    for assignment in ext.get("shipping_assignments") or []:
        shipping = assignment.get("shipping") or {}
        if shipping.get("method"):
            return str(shipping["method"])
    return None


def _shipping_address(ext: dict) -> dict | None:
    assignments = ext.get("shipping_assignments") or []
    shipping = (assignments[0].get("shipping") or {}) if assignments else {}
    return shipping.get("address")


def _totals(data: dict, lines: tuple[OrderLine, ...], shipping: tuple[ShippingLine, ...]) -> Totals:
    cur = data["base_currency_code"]
    subtotal = money_sum([line.gross for line in lines], cur)
    if data["base_subtotal"] is not None:
        _agree("the lines' base_row_total", subtotal.amount, "base_subtotal", data["base_subtotal"], cur)
    line_discount = money_sum([line.discount_total for line in lines], cur)
    ship_discount = money_sum([s.discount_total for s in shipping], cur)
    discount = line_discount + ship_discount
    compensation = _z(data["base_discount_tax_compensation_amount"]) + _z(
        data["base_shipping_discount_tax_compensation_amnt"]
    )
    if data["base_discount_amount"] is not None:
        # The order's discount is negative and tax-inclusive when prices are: less the tax it carried.
        _agree(
            "line and shipping discounts",
            discount.amount,
            "−base_discount_amount − compensations",
            -data["base_discount_amount"] - compensation,
            cur,
        )
    tax = _z(data["base_tax_amount"])
    itemised = money_sum([t.amount for line in lines for t in line.tax_lines], cur) + money_sum(
        [t.amount for s in shipping for t in s.tax_lines], cur
    )
    _agree("line and shipping tax", itemised.amount, "base_tax_amount", tax, cur)
    shipping_total = money_sum([s.price for s in shipping], cur)
    total = Money(data["base_grand_total"], cur)
    expected = subtotal - discount + shipping_total + Money(tax, cur)
    if expected != total:
        raise MappingError(
            f"totals do not reconcile: lines {subtotal.amount} − discounts {discount.amount} + shipping "
            f"{shipping_total.amount} + tax {tax} = {expected.amount}, but base_grand_total is {total.amount} "
            f"{cur} (a fixed product tax, gift card, store credit or reward points are not read yet)"
        )
    return Totals(
        subtotal=subtotal,
        discount_total=discount,
        shipping_total=shipping_total,
        tax_total=Money(tax, cur),
        total=total,
    )


def _agree(what: str, computed: Decimal, field: str, declared: Decimal, cur: str) -> None:
    if computed != declared:
        raise MappingError(f"{what} add up to {computed} {cur}, but {field} is {declared}")


# ---- parties and payment ---------------------------------------------------------------------------


def _guest(data: dict) -> bool:
    flag = data["customer_is_guest"]
    return flag in (True, 1, "1") or not data["customer_id"]


def _customer(data: dict, ext: dict) -> Customer:
    billing = data["billing_address"] or {}
    shipping = _shipping_address(ext) or {}
    return Customer(
        email=blank_to_none(data["customer_email"]) or blank_to_none(billing.get("email")),
        first_name=data["customer_firstname"] or billing.get("firstname") or "",
        last_name=data["customer_lastname"] or billing.get("lastname") or "",
        phone=blank_to_none(billing.get("telephone")),
        external_id=None if _guest(data) else str(data["customer_id"]),
        postcode=str(billing.get("postcode") or shipping.get("postcode") or "").strip(),
    )


def _address(raw: dict | None) -> Address | None:
    if not raw or not any(blank_to_none(v) if isinstance(v, str) else v for k, v in raw.items() if k != "email"):
        return None
    street = [s for s in raw.get("street") or [] if s]
    return Address(
        first_name=raw.get("firstname") or "",
        last_name=raw.get("lastname") or "",
        company=raw.get("company") or "",
        line1=street[0] if street else "",
        line2=", ".join(street[1:]),
        city=raw.get("city") or "",
        region=raw.get("region_code") or raw.get("region") or "",
        postal_code=raw.get("postcode") or "",
        country_code=raw.get("country_id") or "",
        phone=raw.get("telephone") or "",
    )


def payment_method(code: str) -> str:
    """Our payment vocabulary from a Magento payment method code."""
    code = code.lower()
    if code in PAYMENT_METHODS:
        return PAYMENT_METHODS[code]
    if "paypal" in code:
        return "paypal"
    return "card" if any(hint in code for hint in _CARD_HINTS) else "other"


def _payment(data: dict) -> Payment:
    total = data["base_grand_total"]
    refunded, paid = _z(data["base_total_refunded"]), _z(data["base_total_paid"])
    pay = data["payment"] or {}
    if refunded and refunded >= total:
        status = "refunded"
    elif refunded:
        status = "partially_refunded"
    elif paid and paid >= total:
        status = "paid"  # invoiced: captured online, or an offline payment the merchant invoiced
    elif paid:
        status = "partially_paid"
    elif data["state"] == "canceled":
        status = "voided"
    elif _z(pay.get("base_amount_authorized")):
        status = "authorized"
    else:
        status = "pending"  # cash on delivery, bank transfer, check: until the merchant invoices it
    method = pay.get("method") or ""
    return Payment(
        status=status,
        gateway=method,
        method=payment_method(method),
        transaction_ref=blank_to_none(pay.get("last_trans_id")),
    )


def _order_ref(payload: Any) -> str:
    number = payload.get("increment_id") if isinstance(payload, dict) else None
    ident_ = payload.get("entity_id") if isinstance(payload, dict) else None
    if isinstance(number, str) and number.strip():
        return f"#{number.strip()[:40]}"
    if type(ident_) is int and 0 < ident_ <= MAX_ID:
        return f"id {ident_}"
    return "(unidentified)"


# ---- credit memos ------------------------------------------------------------------------------------

_MEMO_ITEM_AMOUNTS = (
    "base_row_total",
    "base_tax_amount",
    "base_discount_amount",
    "base_discount_tax_compensation_amount",
)
_MemoItem = Base.from_dict(
    {
        "order_item_id": ident(required=True),
        "sku": opt(),
        "qty": Amount(load_default=_ZERO, max_places=4),
        "back_to_stock": fields.Raw(load_default=None),
        **{name: _opt_amount() for name in _MEMO_ITEM_AMOUNTS},
    },
    name="_MemoItem",
)
_MemoExtension = Base.from_dict(
    {"return_to_stock_items": fields.List(fields.Integer(), allow_none=True, load_default=list)},
    name="_MemoExtension",
)
_Memo = Base.from_dict(
    {
        "entity_id": ident(required=True),
        "order_id": ident(required=True),
        "increment_id": opt(),
        "created_at": Timestamp(required=True, **_UTC),
        "base_grand_total": Amount(required=True),
        "base_currency_code": opt(currency),
        "customer_note": opt(),
        **{
            name: _opt_amount()
            for name in (
                "base_shipping_amount",
                "base_shipping_tax_amount",
                "base_adjustment_positive",
                "base_adjustment_negative",
            )
        },
        "items": list_of(_MemoItem),
        "extension_attributes": opt(fields.Nested, nested=_MemoExtension),
    },
    name="_Memo",
)
_RefundedItem = Base.from_dict(
    {"item_id": ident(required=True), "parent_item_id": opt(ident), "sku": opt(), "base_row_total": _opt_amount()},
    name="_RefundedItem",
)
_RefundedOrder = Base.from_dict(
    {
        "entity_id": ident(required=True),
        "increment_id": opt(),
        "base_currency_code": currency(required=True),
        "items": fields.List(fields.Nested(_RefundedItem), required=True),
    },
    name="_RefundedOrder",
)
_MEMO_SCHEMA, _REFUNDED_ORDER_SCHEMA = _Memo(), _RefundedOrder()


@dataclass
class _Refunded:
    """What a credit memo gives back on one booked line."""

    qty: Decimal = _ZERO
    subtotal: Decimal = _ZERO
    tax: Decimal = _ZERO
    restock: bool = False


def refund_from_magento(creditmemo: dict, order: dict, store: str) -> Refund:
    """Map one credit memo (GET /V1/creditmemos) of `order` to the canonical Refund in the base currency."""
    try:
        parent = load(_REFUNDED_ORDER_SCHEMA, order, "a Magento order")
    except MappingError as exc:
        raise MappingError(f"Magento credit memo {_memo_ref(creditmemo)} of order {_order_ref(order)}: {exc}") from None
    found = payloads.problem(creditmemo)  # read from the API, not a checked delivery
    try:
        if found:
            raise MappingError(found)
        return _refund(load(_MEMO_SCHEMA, creditmemo, "a Magento credit memo"), parent, store)
    except MappingError as exc:
        raise MappingError(f"Magento credit memo {_memo_ref(creditmemo)} of order {_order_ref(order)}: {exc}") from None


def _refund(memo: dict, order: dict, store: str) -> Refund:
    cur = order["base_currency_code"]
    if memo["order_id"] != order["entity_id"]:
        raise MappingError(f"order_id {memo['order_id']} is not this order's entity_id {order['entity_id']}")
    if memo["base_currency_code"] and memo["base_currency_code"] != cur:
        raise MappingError(f"base_currency_code {memo['base_currency_code']} is not the order's {cur}")
    booked = booked_items(order["items"])
    skus = {item["item_id"]: item["sku"] for item in order["items"]}
    restocked = set((memo["extension_attributes"] or {}).get("return_to_stock_items") or [])
    gathered: dict[int, _Refunded] = {}
    for i, row in enumerate(memo["items"] or []):
        host = booked.get(row["order_item_id"])
        if host is None:
            raise MappingError(f"items[{i}]: order_item_id {row['order_item_id']} is not an item of the order")
        entry = gathered.setdefault(host, _Refunded())
        if host == row["order_item_id"]:
            entry.qty = row["qty"]
        discount = _z(row["base_discount_amount"]) - _z(row["base_discount_tax_compensation_amount"])
        entry.subtotal += _z(row["base_row_total"]) - discount
        entry.tax += _z(row["base_tax_amount"])
        entry.restock = entry.restock or row["back_to_stock"] in (True, 1, "1") or row["order_item_id"] in restocked
    lines: list[RefundLine] = []
    for host, entry in gathered.items():
        if not entry.qty and not entry.subtotal and not entry.tax:
            continue  # a row Magento lists for every order item, nothing refunded on it
        if entry.qty != entry.qty.to_integral_value():
            raise MappingError(f"item {host}: qty {entry.qty} is not a whole number of units")
        lines.append(
            RefundLine(
                line_external_id=str(host),
                sku=blank_to_none(skus.get(host)),
                quantity=int(entry.qty),
                subtotal=Money(entry.subtotal, cur),
                tax=Money(entry.tax, cur),
                restock=entry.restock and entry.qty > 0,
            )
        )
    total = Money(memo["base_grand_total"], cur)
    shipping = Money(_z(memo["base_shipping_amount"]) + _z(memo["base_shipping_tax_amount"]), cur)
    adjustment = Money(_z(memo["base_adjustment_positive"]) - _z(memo["base_adjustment_negative"]), cur)
    itemised = money_sum([ln.subtotal + ln.tax for ln in lines], cur)
    rest = total - (itemised + shipping + adjustment)
    if rest.amount and abs(rest.amount) <= one_unit(cur):
        adjustment = adjustment + rest  # rounding between the rows and the memo's own total
    elif rest.amount < 0 and -rest.amount <= shipping.amount:
        shipping = shipping + rest  # the shipping discount, given back with the shipping
    elif rest.amount:
        raise MappingError(
            f"items {itemised.amount} + shipping {shipping.amount} + adjustments {adjustment.amount} do not make "
            f"base_grand_total {total.amount} {cur}"
        )
    return Refund(
        source=SOURCE,
        store=store,
        order_external_id=str(order["entity_id"]),
        external_id=str(memo["entity_id"]),
        created_at=memo["created_at"],
        currency=cur,
        lines=tuple(lines),
        shipping=shipping,
        adjustment=adjustment,
        total=total,
        reason=memo["customer_note"] or "",
    )


def _memo_ref(memo: Any) -> str:
    number = memo.get("increment_id") if isinstance(memo, dict) else None
    ident_ = memo.get("entity_id") if isinstance(memo, dict) else None
    if isinstance(number, str) and number.strip():
        return f"#{number.strip()[:40]}"
    return f"id {ident_}" if type(ident_) is int and 0 < ident_ <= MAX_ID else "(unidentified)"
