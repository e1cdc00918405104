"""A BigCommerce order (V2, with its products, shipping addresses, coupons and taxes read in) as the canonical
order, and a refund (V3 payment_actions/refunds) as the canonical refund. No I/O.

- Money: the V2 order's amounts are in its transactional currency, `default_currency_code` (what the buyer
  paid in); that is what the ERP books, as recorded, never converted. `currency_code` is the currency the
  storefront displayed (kept as the presentment currency when it differs); the store's own currency and
  `currency_exchange_rate` are kept as note attributes for finance.
- Taxes included or not: BigCommerce gives every amount both ways (`*_ex_tax`, `*_inc_tax`) and says how
  the merchant entered prices through each product's `base_price`, which is the entered price. A store
  whose base prices equal their tax-inclusive price (and charge tax) books the order taxes included, in
  the inc-tax amounts; any other, taxes excluded, in the ex-tax amounts. Either way the order reconciles
  to `total_inc_tax` to the cent, or is refused with the difference named.
- Discounts: each product's `applied_discounts` (coupons and automatic promotions) are its line discount.
- Handling and gift wrapping are fee lines; a guest is `customer_id` 0.
"""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from email.utils import parsedate_to_datetime
from typing import Any

from marshmallow import fields

from mappings import payloads
from mappings.canonical import (
    Address,
    Customer,
    Discount,
    FeeLine,
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
from mappings.fields import Amount, Base, blank_to_none, currency, ident, list_of, load, opt
from mappings.utc import as_utc

SOURCE = "bigcommerce"
# status_id → the canonical status (anything else is open).
CANCELLED_IDS = {5, 6}  # Cancelled, Declined
CLOSED_IDS = {2, 4, 10}  # Shipped, Refunded, Completed
PAYMENT = {
    "captured": "paid",
    "paid": "paid",
    "authorized": "authorized",
    "partially refunded": "partially_refunded",
    "refunded": "refunded",
    "void": "voided",
    "voided": "voided",
}
METHODS = {
    "cash on delivery": "cod",
    "bank deposit": "bank_transfer",
    "manual": "manual",
    "test payment gateway": "manual",
    "paypal": "paypal",
    "store credit": "other",
    "gift certificate": "gift_card",
}


class RfcDate(fields.Field):
    """BigCommerce V2's dates: RFC 2822 ("Tue, 01 Dec 2026 09:00:00 +0000")."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> datetime:
        if not isinstance(value, str) or not value.strip():
            raise self.make_error("invalid")
        try:
            parsed = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            raise self.make_error("invalid") from None
        if parsed.utcoffset() is None:
            raise self.make_error("invalid")
        return as_utc(parsed)

    default_error_messages = {"invalid": "Not an RFC 2822 date with an offset."}


class _Discount(Base):
    name = opt()
    code = opt()
    amount = Amount(required=True)
    target = opt()


class _Product(Base):
    id = ident(required=True)
    product_id = ident(minimum=0, load_default=0)
    variant_id = opt(ident)
    name = fields.String(required=True)
    sku = opt()
    quantity = fields.Integer(strict=True, required=True)
    base_price = Amount(required=True)
    price_ex_tax = Amount(required=True)
    price_inc_tax = Amount(required=True)
    total_ex_tax = Amount(required=True)
    total_inc_tax = Amount(required=True)
    total_tax = Amount(required=True)
    applied_discounts = list_of(_Discount)
    order_address_id = opt(ident)


class _Tax(Base):
    name = fields.String(load_default="Tax")
    rate = Amount(required=True)
    line_amount = Amount(required=True)
    order_product_id = opt(ident)
    line_item_type = fields.String(load_default="item")


class _Address(Base):
    id = opt(ident)
    first_name = fields.String(load_default="")
    last_name = fields.String(load_default="")
    company = fields.String(load_default="")
    street_1 = fields.String(load_default="")
    street_2 = fields.String(load_default="")
    city = fields.String(load_default="")
    state = fields.String(load_default="")
    zip = fields.String(load_default="")
    country_iso2 = fields.String(load_default="")
    phone = fields.String(load_default="")
    email = fields.String(load_default="")
    shipping_method = opt()


class _Coupon(Base):
    code = fields.String(load_default="")
    discount = Amount(load_default=Decimal(0))


class _Order(Base):
    id = ident(required=True)
    customer_id = ident(minimum=0, load_default=0)
    date_created = RfcDate(required=True)
    date_modified = RfcDate(required=True)
    status_id = fields.Integer(strict=True, required=True)
    status = fields.String(load_default="")
    subtotal_ex_tax = Amount(required=True)
    subtotal_inc_tax = Amount(required=True)
    shipping_cost_ex_tax = Amount(required=True)
    shipping_cost_inc_tax = Amount(required=True)
    handling_cost_ex_tax = Amount(load_default=Decimal(0))
    handling_cost_inc_tax = Amount(load_default=Decimal(0))
    wrapping_cost_ex_tax = Amount(load_default=Decimal(0))
    wrapping_cost_inc_tax = Amount(load_default=Decimal(0))
    total_ex_tax = Amount(required=True)
    total_inc_tax = Amount(required=True)
    total_tax = Amount(required=True)
    discount_amount = Amount(load_default=Decimal(0))
    coupon_discount = Amount(load_default=Decimal(0))
    currency_code = currency(required=True)  # the display currency
    default_currency_code = opt(currency)  # the transactional currency: the amounts'
    store_default_currency_code = opt(currency)
    currency_exchange_rate = opt()  # shown to finance as it is (BigCommerce writes ten decimals)
    payment_method = fields.String(load_default="")
    payment_status = fields.String(load_default="")
    customer_message = fields.String(load_default="", allow_none=True)
    billing_address = fields.Nested(_Address, load_default=None, allow_none=True)
    products = list_of(_Product)
    shipping_addresses = list_of(_Address)
    coupons = list_of(_Coupon)
    taxes = list_of(_Tax)


_SCHEMA = _Order()


def order_from_bigcommerce(payload: object, store: str) -> Order:
    """Map one V2 order with its sub-resources read in (BigCommerceClient.order) to the canonical Order, or
    raise MappingError saying why not. The order is read from the API, not a checked delivery: a value no
    database can hold (a NUL character) or absurd nesting is refused here with where it is."""
    try:
        found = payloads.problem(payload)
        if found:
            raise MappingError(found)
        order = _order(load(_SCHEMA, payload, "a BigCommerce order"), store)
        check_minor_units(order)
        return order
    except MappingError as exc:
        ref = payload.get("id") if isinstance(payload, dict) else None
        raise MappingError(f"BigCommerce order {ref}: {exc}") from None


def taxes_included(data: dict) -> bool:
    """Whether the merchant enters prices with tax: every product's entered price is its tax-inclusive one
    (and some tax was charged; without tax the two are the same and either reading is right)."""
    products = data["products"] or []
    return bool(products) and data["total_tax"] > 0 and all(p["base_price"] == p["price_inc_tax"] for p in products)


def _order(data: dict, store: str) -> Order:
    cur = _currency(data)
    if not data["products"]:
        raise MappingError("products: an order needs at least one product")
    included = taxes_included(data)
    side = "inc" if included else "ex"
    taxes = data["taxes"] or []
    lines = tuple(_line(i, raw, cur, side, taxes) for i, raw in enumerate(data["products"]))
    shipping_tax = _tax_lines([t for t in taxes if t["line_item_type"] == "shipping"], cur)
    addresses = data["shipping_addresses"] or []
    shipping = (
        ShippingLine(
            code="",
            title=str((addresses[0] if addresses else {}).get("shipping_method") or "Shipping"),
            price=Money(data[f"shipping_cost_{side}_tax"], cur),
            discount_total=Money.zero(cur),
            tax_lines=shipping_tax,
        ),
    )
    fees = tuple(
        FeeLine(
            title=title,
            amount=Money(data[f"{key}_{side}_tax"], cur),
            tax_lines=_tax_lines([t for t in taxes if t["line_item_type"] == kind], cur),
        )
        for key, title, kind in (
            ("handling_cost", "Handling", "handling"),
            ("wrapping_cost", "Gift wrapping", "gift_wrapping"),
        )
        if data[f"{key}_{side}_tax"] > 0
    )
    totals = _totals(data, cur, included, lines, shipping, fees)
    status_id = data["status_id"]
    status = "cancelled" if status_id in CANCELLED_IDS else "closed" if status_id in CLOSED_IDS else "open"
    attributes = {"status": data["status"]}
    if data["store_default_currency_code"] and data["store_default_currency_code"] != cur:
        attributes["store_currency"] = data["store_default_currency_code"]
        attributes["exchange_rate"] = str(data["currency_exchange_rate"] or "")
    billing = data["billing_address"] or {}
    return Order(
        source=SOURCE,
        store=store,
        external_id=str(data["id"]),
        number=str(data["id"]),  # BigCommerce shows the order id as its number
        status=status,
        placed_at=data["date_created"],
        updated_at=data["date_modified"],
        currency=cur,
        taxes_included=included,
        customer=Customer(
            email=blank_to_none(billing.get("email")),
            first_name=billing.get("first_name") or "",
            last_name=billing.get("last_name") or "",
            phone=blank_to_none(billing.get("phone")),
            external_id=str(data["customer_id"]) if data["customer_id"] else None,  # 0 = guest
            postcode=str(billing.get("zip") or (addresses[0] if addresses else {}).get("zip") or "").strip(),
        ),
        lines=lines,
        totals=totals,
        payment=Payment(
            status=PAYMENT.get(data["payment_status"].strip().lower(), "pending"),
            gateway=data["payment_method"],
            method=_method(data["payment_method"]),
        ),
        billing_address=_address(billing),
        shipping_address=_address(addresses[0]) if addresses else None,
        shipping_lines=shipping,
        fee_lines=fees,
        discounts=tuple(
            Discount(c["code"], "coupon", Money(c["discount"], cur)) for c in data["coupons"] or [] if c["discount"]
        ),
        tax_lines=_tax_lines(taxes, cur),
        presentment_currency=data["currency_code"] if data["currency_code"] != cur else None,
        cancel_reason="cancelled in BigCommerce" if status_id == 5 else "declined" if status_id == 6 else None,
        note=data["customer_message"] or "",
        note_attributes=attributes,
    )


def _currency(data: dict) -> str:
    """The currency the order's amounts are in: its transactional one (the display one for an order that
    names none)."""
    return str(data["default_currency_code"] or data["currency_code"])


def _line(index: int, raw: dict, cur: str, side: str, taxes: list[dict]) -> OrderLine:
    quantity = raw["quantity"]
    if quantity <= 0:
        raise MappingError(f"products[{index}].quantity: {quantity} is not a positive quantity")
    gross = raw[f"total_{side}_tax"]
    discount = sum((d["amount"] for d in raw["applied_discounts"] or []), Decimal(0))
    if discount > gross:
        raise MappingError(f"products[{index}]: discounts {discount} exceed the line's {gross}")
    unit = raw[f"price_{side}_tax"]
    return OrderLine(
        line_no=index + 1,
        external_id=str(raw["id"]),
        sku=blank_to_none(raw["sku"]),
        title=raw["name"],
        quantity=quantity,
        unit_price=Money(unit, cur),
        discount_total=Money(discount, cur),
        tax_lines=_line_tax(raw, cur, taxes),
        product_id=str(raw["product_id"]) if raw["product_id"] else None,
        variant_id=str(raw["variant_id"]) if raw["variant_id"] else None,
        subtotal=None if unit * quantity == gross else Money(gross, cur),
    )


def _line_tax(raw: dict, cur: str, taxes: list[dict]) -> tuple[TaxLine, ...]:
    """The product's taxes by rate from the order's taxes; its `total_tax` when the order lists none."""
    own = [t for t in taxes if t["order_product_id"] == raw["id"] and t["line_item_type"] == "item"]
    if own:
        return _tax_lines(own, cur)
    return (TaxLine("Tax", Decimal(0), Money(raw["total_tax"], cur)),) if raw["total_tax"] else ()


def _tax_lines(taxes: list[dict], cur: str) -> tuple[TaxLine, ...]:
    by_rate: dict[tuple[str, Decimal], Decimal] = {}
    for t in taxes:
        key = (t["name"], t["rate"] / 100)
        by_rate[key] = by_rate.get(key, Decimal(0)) + t["line_amount"]
    return tuple(TaxLine(name, rate, Money(amount, cur)) for (name, rate), amount in by_rate.items() if amount)


def _totals(
    data: dict,
    cur: str,
    included: bool,
    lines: tuple[OrderLine, ...],
    shipping: tuple[ShippingLine, ...],
    fees: tuple[FeeLine, ...],
) -> Totals:
    subtotal = money_sum([line.gross for line in lines], cur)
    # The products' applied_discounts are the discounts (how discount_amount and coupon_discount split them is
    # not documented well enough to check against): the total below catches any that is missing.
    discounts = money_sum([line.discount_total for line in lines], cur)
    shipping_total = money_sum([s.price for s in shipping], cur)
    fee_total = money_sum([f.amount for f in fees], cur)
    tax = Money(data["total_tax"], cur)
    total = Money(data["total_inc_tax"], cur)
    expected = subtotal - discounts + shipping_total + fee_total + (Money.zero(cur) if included else tax)
    if expected != total:
        raise MappingError(
            f"totals do not reconcile: products {subtotal.amount} − discounts {discounts.amount} + shipping "
            f"{shipping_total.amount} + fees {fee_total.amount}{'' if included else f' + tax {tax.amount}'} = "
            f"{expected.amount}, BigCommerce's total_inc_tax is {total.amount}"
        )
    return Totals(
        subtotal=subtotal,
        discount_total=discounts,
        shipping_total=shipping_total,
        tax_total=tax,
        total=total,
        fee_total=fee_total if fees else None,
    )


def _method(name: str) -> str:
    lowered = name.strip().lower()
    if lowered in METHODS:
        return METHODS[lowered]
    return "paypal" if "paypal" in lowered else "card" if lowered else "other"


def _address(raw: dict | None) -> Address | None:
    if not raw or not any(blank_to_none(str(v)) for k, v in raw.items() if k not in ("id", "email", "shipping_method")):
        return None
    return Address(
        first_name=raw.get("first_name") or "",
        last_name=raw.get("last_name") or "",
        company=raw.get("company") or "",
        line1=raw.get("street_1") or "",
        line2=raw.get("street_2") or "",
        city=raw.get("city") or "",
        region=raw.get("state") or "",
        postal_code=raw.get("zip") or "",
        country_code=(raw.get("country_iso2") or "").upper(),
        phone=raw.get("phone") or "",
    )


# ---- refunds ----------------------------------------------------------------------------------------


class _RefundItem(Base):
    item_type = fields.String(required=True)  # PRODUCT | SHIPPING | HANDLING | GIFT_WRAPPING | ORDER
    item_id = ident(minimum=0, load_default=0)
    quantity = fields.Integer(strict=True, load_default=0, allow_none=True)
    requested_amount = opt(Amount)


class _Refund(Base):
    id = ident(required=True)
    order_id = ident(required=True)
    created = fields.DateTime(required=True)
    reason = fields.String(load_default="", allow_none=True)
    total_amount = Amount(required=True)
    total_tax = Amount(load_default=Decimal(0))
    items = list_of(_RefundItem)


_REFUND_SCHEMA = _Refund()


def refund_from_bigcommerce(refund: dict, order: dict, store: str, restock: bool = False) -> Refund:
    """Map one V3 refund of `order` (as `order_from_bigcommerce` reads it) to the canonical Refund. A
    product refunded by quantity is valued at the line's net unit price and tax as the order charged
    them (its share of the line's discount off); amounts refunded without items are the adjustment, so the
    parts always add up to the refund's `total_amount`."""
    try:
        found = payloads.problem(refund)  # read from the API, not a checked delivery
        if found:
            raise MappingError(found)
        data = load(_REFUND_SCHEMA, refund, "a BigCommerce refund")
        parent = load(_SCHEMA, order, "a BigCommerce order")
        return _refund(data, parent, store, restock)
    except MappingError as exc:
        raise MappingError(f"BigCommerce refund {refund.get('id')}: {exc}") from None


def _refund(data: dict, order: dict, store: str, restock: bool) -> Refund:
    cur = _currency(order)
    products = {p["id"]: p for p in order["products"] or []}
    lines: list[RefundLine] = []
    shipping = Decimal(0)
    for n, item in enumerate(data["items"] or []):
        kind = item["item_type"].upper()
        if kind == "PRODUCT":
            product = products.get(item["item_id"])
            if product is None:
                raise MappingError(f"items[{n}]: order product {item['item_id']} is not on the order")
            quantity = item["quantity"] or 0
            if quantity > product["quantity"]:
                raise MappingError(f"items[{n}]: {quantity} refunded of {product['quantity']} ordered")
            share = Decimal(quantity) / product["quantity"] if product["quantity"] else Decimal(0)
            discount = sum((d["amount"] for d in product["applied_discounts"] or []), Decimal(0))
            unit = one_unit(cur)  # the currency's minor unit: a cent, a yen
            net = ((product["total_ex_tax"] - discount) * share).quantize(unit, ROUND_HALF_UP)
            tax = (product["total_tax"] * share).quantize(unit, ROUND_HALF_UP)
            if item["requested_amount"] is not None and not quantity:  # money only for the line
                net, tax = item["requested_amount"], Decimal(0)
            lines.append(
                RefundLine(
                    line_external_id=str(product["id"]),
                    sku=blank_to_none(product["sku"]),
                    quantity=quantity,
                    subtotal=Money(net, cur),
                    tax=Money(tax, cur),
                    restock=restock and quantity > 0,
                )
            )
        elif kind == "SHIPPING":
            shipping += item["requested_amount"] or Decimal(0)
    total = Money(data["total_amount"], cur)
    itemised = money_sum([line.subtotal + line.tax for line in lines], cur) + Money(shipping, cur)
    return Refund(
        source=SOURCE,
        store=store,
        order_external_id=str(order["id"]),
        external_id=str(data["id"]),
        created_at=as_utc(data["created"]),
        currency=cur,
        lines=tuple(lines),
        shipping=Money(shipping, cur),
        adjustment=total - itemised,
        total=total,
        reason=data["reason"] or "",
    )
