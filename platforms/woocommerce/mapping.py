"""WooCommerce wc/v3 order and refund JSON (order.created/.updated/.restored webhooks) -> canonical.

Pure, no I/O, in the style of platforms.shopify.mapping: schemas describe only the fields we read, and
anything malformed or inconsistent becomes a MappingError naming the field path.

WooCommerce semantics relied on (docs/platforms.md#woocommerce-orders; the wc/v2 orders and refunds REST controllers
that wc/v3 inherits; the order's update_taxes/calculate_totals; UNVERIFIED: no source confirmed):
- Money is a decimal string formatted to the store's decimals, except `line_items[].price`, a JSON
  number the controller computes as line total / quantity (after coupons, unrounded: 25/3 arrives
  as 8.333333333333334). It is only cross-checked; the unit price comes from `subtotal`.
- Line, shipping and fee amounts exclude tax even when `prices_include_tax` is true, so the
  canonical order is always tax-exclusive: total = subtotal - discount + shipping + fees + tax.
- `discount_total` is the coupon discount before tax, i.e. the sum of line subtotal - total.
- `cart_tax` is the tax on line items and fees; `total_tax` = cart_tax + shipping_tax.
- Dates carry no offset; the `*_gmt` twins are UTC and the only ones read.
- An order's `refunds[].total` is a negative string; a refund's own line amounts and quantities
  are negative (quantity 0 when only money was refunded on a line), its `amount` positive, and each
  refunded line carries `_refunded_item_id` meta naming the order line (as in the REST docs'
  example; should a version or filter hide it, the product and variation ids must name the line).
- `tax_lines[].rate_percent` (a number, e.g. 19) is sent by current versions though the REST docs
  omit it; we require it rather than book a tax line without its rate.
- A refund does not say whether stock went back (UNVERIFIED: WooCommerce seems to keep only a
  running `_restock_refunded_items` count on the order line), so RefundLine.restock is always False.
- A fee-only order (no line items) is valid: WooCommerce lets merchants bill a bare fee.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from marshmallow import fields, validate

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
    RefundFee,
    RefundLine,
    ShippingLine,
    TaxLine,
    Totals,
    money_sum,
)
from mappings.currencies import check_minor_units, one_unit
from mappings.errors import MappingError
from mappings.fields import MAX_ID, Amount, Base, Timestamp, blank_to_none, currency, ident, list_of, load, opt

_Rates = dict[int, tuple[str, Decimal]]  # the order's tax_lines: rate_id -> (title, rate)
_FOUR_DP = Decimal("0.0001")  # the finest unit price we book; the exact figure stays in `subtotal`


class _TaxEntry(Amount):
    """A per-rate amount in `taxes[]`: raw, unformatted (string or number), "" when not applied.

    "" becomes None before loading, so it takes the allow_none path (marshmallow types a field's
    loaded value as never None, hence no `_deserialize` override)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(pre_load=_blank_is_none, **kwargs)


def _blank_is_none(value: Any) -> Any:
    return None if value == "" else value


def _signed(**kw: Any) -> Amount:
    return Amount(signed=True, required=True, **kw)


def _refunded(**kw: Any) -> Amount:
    """WooCommerce writes refunded amounts as negatives: a positive one is not a refund."""
    return Amount(
        signed=True,
        required=True,
        validate=validate.Range(
            max=0, error="Expected a negative amount (WooCommerce writes refunded amounts as negatives)."
        ),
        **kw,
    )


_GMT = {"naive_is_utc": True}
_Taxes = Base.from_dict(
    {"id": ident(required=True), "total": _TaxEntry(signed=True, max_places=17, allow_none=True, load_default=None)},
    name="_Taxes",
)
_TaxLine = Base.from_dict(
    {
        "rate_id": ident(required=True),
        "rate_code": opt(),
        "label": opt(),
        "tax_total": _signed(),
        "shipping_tax_total": _signed(),
        "rate_percent": Amount(required=True),
    },
    name="_TaxLine",
)
_LineItem = Base.from_dict(
    {
        "id": ident(required=True),
        "name": fields.String(required=True),
        "sku": opt(),
        "product_id": opt(ident, minimum=0),
        "variation_id": opt(ident, minimum=0),
        "quantity": fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=10**6)),
        "subtotal": Amount(required=True),
        "total": Amount(required=True),
        "total_tax": Amount(required=True),
        "taxes": list_of(_Taxes),
        "price": opt(Amount, max_places=17),
    },
    name="_LineItem",
)
_ShippingLine = Base.from_dict(
    {
        "method_id": opt(),
        "method_title": fields.String(required=True),
        "total": Amount(required=True),
        "total_tax": Amount(required=True),
        "taxes": list_of(_Taxes),
    },
    name="_ShippingLine",
)
_FeeLine = Base.from_dict(
    {"name": fields.String(required=True), "total": _signed(), "total_tax": _signed(), "taxes": list_of(_Taxes)},
    name="_FeeLine",
)
_CouponLine = Base.from_dict(
    {"code": fields.String(required=True), "discount": Amount(required=True)}, name="_CouponLine"
)
_OrderRefund = Base.from_dict({"id": ident(required=True), "total": _refunded()}, name="_OrderRefund")
_Meta = Base.from_dict(
    {"key": fields.String(required=True), "value": fields.Raw(allow_none=True, load_default=None)}, name="_Meta"
)
_Address = Base.from_dict(
    {
        key: opt()
        for key in (
            "first_name",
            "last_name",
            "company",
            "address_1",
            "address_2",
            "city",
            "state",
            "postcode",
            "country",
            "email",
            "phone",
        )
    },
    name="_Address",
)
_WooOrder = Base.from_dict(
    {
        "id": ident(required=True),
        "number": opt(),
        "status": fields.String(required=True),
        "currency": currency(required=True),
        "prices_include_tax": fields.Boolean(required=True),
        "customer_id": ident(minimum=0, required=True),
        "customer_note": opt(),
        "payment_method": opt(),
        "payment_method_title": opt(),
        "transaction_id": opt(),
        "date_created_gmt": Timestamp(required=True, **_GMT),
        "date_modified_gmt": Timestamp(required=True, **_GMT),
        "date_paid_gmt": opt(Timestamp, **_GMT),
        **{
            name: Amount(required=True)
            for name in ("discount_total", "shipping_total", "shipping_tax", "cart_tax", "total", "total_tax")
        },
        "billing": opt(fields.Nested, nested=_Address),
        "shipping": opt(fields.Nested, nested=_Address),
        "line_items": fields.List(fields.Nested(_LineItem), required=True),
        "tax_lines": list_of(_TaxLine),
        "shipping_lines": list_of(_ShippingLine),
        "fee_lines": list_of(_FeeLine),
        "coupon_lines": list_of(_CouponLine),
        "refunds": list_of(_OrderRefund),
        "meta_data": list_of(_Meta),
    },
    name="_WooOrder",
)
_SCHEMA = _WooOrder()


# ---- orders ------------------------------------------------------------------------------------------


def order_from_woocommerce(payload: object, store: str) -> Order:
    """Map one wc/v3 order to the canonical Order, or raise MappingError saying why not (for any JSON value:
    one that is no object is refused too)."""
    try:
        order = _order(load(_SCHEMA, payload, "a WooCommerce order"), store)
        check_minor_units(order)
        return order
    except MappingError as exc:
        raise MappingError(f"WooCommerce order {_order_ref(payload)}: {exc}") from None


def _order(data: dict, store: str) -> Order:
    cur = data["currency"]
    if not data["line_items"] and not data["fee_lines"]:
        raise MappingError("line_items: an order needs at least one line item or fee line")
    rates: _Rates = {
        t["rate_id"]: (t["label"] or t["rate_code"] or f"rate {t['rate_id']}", t["rate_percent"] / 100)
        for t in data["tax_lines"] or []
    }
    lines = tuple(_line(i, raw, cur, rates) for i, raw in enumerate(data["line_items"]))
    shipping = tuple(
        ShippingLine(
            code=raw["method_id"] or "",
            title=raw["method_title"],
            price=Money(raw["total"], cur),
            discount_total=Money.zero(cur),
            tax_lines=_taxes(raw, f"shipping_lines[{i}]", cur, rates),
        )
        for i, raw in enumerate(data["shipping_lines"] or [])
    )
    fees = tuple(
        FeeLine(
            title=raw["name"], amount=Money(raw["total"], cur), tax_lines=_taxes(raw, f"fee_lines[{i}]", cur, rates)
        )
        for i, raw in enumerate(data["fee_lines"] or [])
    )
    woo_status = data["status"]
    status = (
        "cancelled"
        if woo_status in ("cancelled", "failed", "trash")
        else "closed"
        if woo_status in ("completed", "refunded")
        else "open"
    )
    # Plugins keep their own data in meta; only public (no "_") plain strings mean anything to a person.
    attributes = {
        m["key"]: m["value"]
        for m in data["meta_data"] or []
        if isinstance(m["value"], str) and not m["key"].startswith("_")
    }
    attributes["prices_include_tax"] = "true" if data["prices_include_tax"] else "false"
    return Order(
        source="woocommerce",
        store=store,
        external_id=str(data["id"]),
        number=data["number"] or str(data["id"]),
        status=status,
        placed_at=data["date_created_gmt"],
        updated_at=data["date_modified_gmt"],
        currency=cur,
        taxes_included=False,
        customer=_customer(data),
        lines=lines,
        totals=_totals(data, lines, shipping, fees),
        payment=_payment(data),
        billing_address=_address(data["billing"]),
        shipping_address=_address(data["shipping"]),
        shipping_lines=shipping,
        fee_lines=fees,
        discounts=tuple(Discount(c["code"], "coupon", Money(c["discount"], cur)) for c in data["coupon_lines"] or []),
        tax_lines=tuple(
            TaxLine(
                rates[t["rate_id"]][0], rates[t["rate_id"]][1], Money(t["tax_total"] + t["shipping_tax_total"], cur)
            )
            for t in data["tax_lines"] or []
        ),
        cancel_reason="cancelled in WooCommerce" if woo_status == "cancelled" else None,
        note=data["customer_note"] or "",
        note_attributes=attributes,
    )


def _line(index: int, raw: dict, cur: str, rates: _Rates) -> OrderLine:
    path = f"line_items[{index}]"
    subtotal, total, quantity = raw["subtotal"], raw["total"], raw["quantity"]
    if total > subtotal:
        raise MappingError(f"{path}: total {total} (after coupons) exceeds subtotal {subtotal}")
    # `price` is total / quantity as a PHP float: it may only differ from the string total by rounding.
    # One minor unit of slack (a cent, a yen, a fils): where WooCommerce rounds pieces separately.
    if raw["price"] is not None and abs(raw["price"] * quantity - total) > one_unit(cur):
        raise MappingError(f"{path}: price {raw['price']} × quantity {quantity} does not match total {total}")
    exact = subtotal / quantity
    unit = exact.quantize(_FOUR_DP, rounding=ROUND_HALF_EVEN)
    return OrderLine(
        line_no=index + 1,
        external_id=str(raw["id"]),
        sku=blank_to_none(raw["sku"]),
        title=raw["name"],
        quantity=quantity,
        unit_price=Money(exact if unit == exact else unit, cur),
        discount_total=Money(subtotal - total, cur),
        tax_lines=_taxes(raw, path, cur, rates),
        product_id=_opt_id(raw["product_id"]),
        variant_id=_opt_id(raw["variation_id"]),
        subtotal=Money(subtotal, cur),
    )


def _taxes(raw: dict, path: str, cur: str, rates: _Rates) -> tuple[TaxLine, ...]:
    """Per-rate tax of one line, shipping or fee item, adding up to its (rounded) `total_tax`."""
    entries = [t for t in raw["taxes"] or [] if t["total"] is not None]
    for t in entries:
        if t["id"] not in rates:
            raise MappingError(f"{path}.taxes: rate {t['id']} is not among the order's tax_lines")
    declared = raw["total_tax"]
    if not entries:
        if declared:
            raise MappingError(f"{path}: total_tax is {declared} but taxes names no rate")
        return ()
    # Entries are raw (unrounded); the single-rate case, by far the commonest, needs no arithmetic.
    # Round each rate to the currency's minor unit (or the finer places the store itself writes).
    step = min(Decimal(1).scaleb(declared.as_tuple().exponent), one_unit(cur))
    amounts = [declared] if len(entries) == 1 else [t["total"].quantize(step) for t in entries]
    slack = declared - sum(amounts, Decimal(0))
    if abs(slack) > one_unit(cur) * len(entries):
        raise MappingError(f"{path}: taxes add up to {sum(t['total'] for t in entries)}, total_tax is {declared}")
    amounts[-1] += slack
    return tuple(TaxLine(*rates[t["id"]], Money(amount, cur)) for t, amount in zip(entries, amounts, strict=False))


def _totals(
    data: dict, lines: tuple[OrderLine, ...], shipping: tuple[ShippingLine, ...], fees: tuple[FeeLine, ...]
) -> Totals:
    cur = data["currency"]
    m = {
        name: Money(data[name], cur)
        for name in ("discount_total", "shipping_total", "shipping_tax", "cart_tax", "total", "total_tax")
    }
    subtotal = money_sum([line.gross for line in lines], cur)
    _agree(
        "line_items subtotal − total",
        money_sum([x.discount_total for x in lines], cur),
        "discount_total",
        m["discount_total"],
    )
    _agree("shipping_lines totals", money_sum([s.price for s in shipping], cur), "shipping_total", m["shipping_total"])
    _agree("cart_tax + shipping_tax", m["cart_tax"] + m["shipping_tax"], "total_tax", m["total_tax"])
    itemised = sum(
        (raw["total_tax"] for key in ("line_items", "shipping_lines", "fee_lines") for raw in data[key] or []),
        Decimal(0),
    )
    _agree("line, shipping and fee total_tax", Money(itemised, cur), "total_tax", m["total_tax"])
    fee_total = money_sum([f.amount for f in fees], cur)
    expected = subtotal - m["discount_total"] + m["shipping_total"] + fee_total + m["total_tax"]
    if expected != m["total"]:
        raise MappingError(
            f"totals do not reconcile: lines {subtotal.amount} − discounts {m['discount_total'].amount} + shipping "
            f"{m['shipping_total'].amount} + fees {fee_total.amount} + tax {m['total_tax'].amount} = {expected}, "
            f"WooCommerce total is {m['total']}"
        )
    return Totals(
        subtotal=subtotal,
        discount_total=m["discount_total"],
        shipping_total=m["shipping_total"],
        tax_total=m["total_tax"],
        total=m["total"],
        fee_total=fee_total if fees else None,
    )


def _agree(what: str, computed: Money, field: str, declared: Money) -> None:
    if computed != declared:
        raise MappingError(f"{what} add up to {computed}, but {field} is {declared}")


# ---- parties and payment ---------------------------------------------------------------------------


def _customer(data: dict) -> Customer:
    billing = data["billing"] or {}
    return Customer(
        email=blank_to_none(billing.get("email")),
        first_name=billing.get("first_name") or "",
        last_name=billing.get("last_name") or "",
        phone=blank_to_none(billing.get("phone")),
        external_id=str(data["customer_id"]) if data["customer_id"] else None,  # 0 = guest
        postcode=str(billing.get("postcode") or (data.get("shipping") or {}).get("postcode") or "").strip(),
    )


def _address(raw: dict | None) -> Address | None:
    # WooCommerce sends every key blank rather than omitting an address (virtual goods: no shipping).
    if raw is None or not any(blank_to_none(v) for k, v in raw.items() if k != "email"):
        return None
    text = {key: value or "" for key, value in raw.items()}
    return Address(
        first_name=text["first_name"],
        last_name=text["last_name"],
        company=text["company"],
        line1=text["address_1"],
        line2=text["address_2"],
        city=text["city"],
        region=text["state"],
        postal_code=text["postcode"],
        country_code=text["country"],
        phone=text["phone"],
    )


_CARD_GATEWAYS = (
    "stripe",
    "woocommerce_payments",
    "square",
    "braintree_credit_card",
    "authorize_net",
    "credit_card",
    "creditcard",
)


def _payment_method(gateway_id: str) -> str:
    """Our payment vocabulary from the gateway id WooCommerce stores, e.g. "ppcp-gateway"."""
    gid = gateway_id.lower()
    if gid == "cod":
        return "cod"
    if gid == "bacs":  # "Direct bank transfer"
        return "bank_transfer"
    if "paypal" in gid or "ppcp" in gid:  # before cards: "braintree_paypal" is PayPal
        return "paypal"
    return "card" if any(name in gid for name in _CARD_GATEWAYS) else "other"  # incl. cheque and ""


def _payment(data: dict) -> Payment:
    refunded = sum((-r["total"] for r in data["refunds"] or []), Decimal(0))
    paid_at, woo_status = data["date_paid_gmt"], data["status"]
    if woo_status == "refunded" or (refunded and refunded >= data["total"]):
        status = "refunded"
    elif refunded:
        status = "partially_refunded"
    elif paid_at is not None:
        status = "paid"  # COD stays pending until the merchant marks it paid (date_paid set)
    elif woo_status in ("cancelled", "failed"):
        status = "voided"
    else:
        status = "pending"
    method_id = data["payment_method"] or ""
    return Payment(
        status=status,
        gateway=data["payment_method_title"] or method_id,
        method=_payment_method(method_id),
        transaction_ref=blank_to_none(data["transaction_id"]),
        paid_at=paid_at,
    )


def _opt_id(value: int | None) -> str | None:
    return str(value) if value else None  # WooCommerce writes 0 for "no product / no variation"


def _order_ref(payload: Any) -> str:
    """How an error message names the order, from whatever the payload still offers."""
    number = payload.get("number") if isinstance(payload, dict) else None
    ident_ = payload.get("id") if isinstance(payload, dict) else None
    if isinstance(number, str) and number.strip():
        return f"#{number.strip()[:40]}"
    if type(ident_) is int and 0 < ident_ <= MAX_ID:
        return f"id {ident_}"
    return "(unidentified)"


# ---- refunds -----------------------------------------------------------------------------------------


_RefundLineItem = Base.from_dict(
    {
        "id": ident(required=True),
        "sku": opt(),
        "product_id": opt(ident, minimum=0),
        "variation_id": opt(ident, minimum=0),
        "quantity": fields.Integer(
            required=True,
            strict=True,
            validate=validate.Range(
                min=-(10**6), max=0, error="Expected zero or a negative quantity (WooCommerce refunds are negative)."
            ),
        ),
        "total": _refunded(),
        "total_tax": _refunded(),
        "meta_data": list_of(_Meta),
    },
    name="_RefundLineItem",
)
_RefundShipping = Base.from_dict({"total": _refunded(), "total_tax": _refunded()}, name="_RefundShipping")
_RefundFee = Base.from_dict(
    {"id": opt(ident), "name": opt(), "total": _signed(), "total_tax": _signed(), "meta_data": list_of(_Meta)},
    name="_RefundFee",
)
_WooRefund = Base.from_dict(
    {
        "id": ident(required=True),
        "date_created_gmt": Timestamp(required=True, **_GMT),
        "amount": Amount(required=True),
        "reason": opt(),
        "line_items": list_of(_RefundLineItem),
        "shipping_lines": list_of(_RefundShipping),
        "fee_lines": list_of(_RefundFee),
    },
    name="_WooRefund",
)
_OrderLineRef = Base.from_dict(
    {"id": ident(required=True), "product_id": opt(ident, minimum=0), "variation_id": opt(ident, minimum=0)},
    name="_OrderLineRef",
)
# Only what a refund needs from its order, so an unrelated flaw in the order cannot block it.
_RefundedOrder = Base.from_dict(
    {"id": ident(required=True), "currency": currency(required=True), "line_items": list_of(_OrderLineRef)},
    name="_RefundedOrder",
)
_REFUND_SCHEMA, _REFUNDED_ORDER_SCHEMA = _WooRefund(), _RefundedOrder()


# What a store's `restock_refunds` may say: the refund carries no restock flag of its own (WooCommerce
# restocks its own shelf when the admin ticks "Restock refunded items", but does not tell the API).
RESTOCK_RULES = ("never", "always")


def refund_from_woocommerce(refund: dict, order: dict, store: str, restock: bool = False) -> Refund:
    """Map one wc/v3 refund (GET /orders/<id>/refunds/<rid>) of `order` to the canonical Refund; `restock`
    (the store's `restock_refunds` rule) says whether refunded units go back into the ERP's stock."""
    try:
        parent = load(_REFUNDED_ORDER_SCHEMA, order, "a WooCommerce order")
    except MappingError as exc:
        raise MappingError(f"WooCommerce refund {_ref(refund)} of order {_order_ref(order)}: order {exc}") from None
    found = payloads.problem(refund)  # fetched from the REST API, not a checked webhook body
    if found:
        raise MappingError(f"WooCommerce refund {_ref(refund)} of order {_order_ref(order)}: {found}")
    try:
        return _refund(load(_REFUND_SCHEMA, refund, "a WooCommerce refund"), parent, store, restock)
    except MappingError as exc:
        raise MappingError(f"WooCommerce refund {_ref(refund)} of order {_order_ref(order)}: {exc}") from None


def _refund(data: dict, order: dict, store: str, restock: bool) -> Refund:
    cur = order["currency"]
    lines = tuple(
        RefundLine(
            line_external_id=_refunded_line_id(i, raw, order),
            sku=blank_to_none(raw["sku"]),
            quantity=-raw["quantity"],
            subtotal=Money(-raw["total"], cur),
            tax=Money(-raw["total_tax"], cur),
            restock=restock and raw["quantity"] != 0,
        )
        for i, raw in enumerate(data["line_items"] or [])
    )
    shipping = Money(-sum((s["total"] + s["total_tax"] for s in data["shipping_lines"] or []), Decimal(0)), cur)
    # Refunded fees are negative in WooCommerce, like everything else in a refund.
    fees = tuple(
        RefundFee(
            kind="fee",
            title=raw["name"] or "Fee",
            amount=Money(-raw["total"], cur),
            tax=Money(-raw["total_tax"], cur),
            source_line_id=_meta_value(raw, "_refunded_item_id"),
        )
        for raw in data["fee_lines"] or []
        if raw["total"] or raw["total_tax"]
    )
    total = Money(data["amount"], cur)
    itemised = money_sum([x.subtotal + x.tax for x in lines], cur) + shipping + money_sum([f.total for f in fees], cur)
    if (total - itemised).amount < -one_unit(cur):
        raise MappingError(
            f"refunded lines, shipping and fees add up to {itemised}, more than the refund amount {total}"
        )
    return Refund(
        source="woocommerce",
        store=store,
        order_external_id=str(order["id"]),
        external_id=str(data["id"]),
        created_at=data["date_created_gmt"],
        currency=cur,
        lines=lines,
        shipping=shipping,
        adjustment=total - itemised,
        total=total,
        reason=data["reason"] or "",
        fees=fees,
    )


def _meta_values(raw: dict, key: str) -> list:
    return [m["value"] for m in raw["meta_data"] or [] if m["key"] == key]


def _meta_value(raw: dict, key: str) -> str | None:
    values = _meta_values(raw, key)
    text = str(values[0]).strip() if values else ""
    return text[:40] or None


def _refunded_line_id(index: int, raw: dict, order: dict) -> str:
    path = f"line_items[{index}]"
    known = {line["id"] for line in order["line_items"] or []}
    meta = _meta_values(raw, "_refunded_item_id")
    if meta:
        value = str(meta[0]).strip()
        if not value.isdigit() or int(value) not in known:
            raise MappingError(f"{path}: _refunded_item_id {meta[0]!r} is not a line of the order")
        return value
    # No meta (older or filtered payloads): the product and variation must name exactly one line.
    matches = [
        line["id"]
        for line in order["line_items"] or []
        if (line["product_id"] or 0, line["variation_id"] or 0) == (raw["product_id"] or 0, raw["variation_id"] or 0)
    ]
    if len(matches) != 1:
        raise MappingError(
            f"{path}: no _refunded_item_id meta, and {len(matches)} order lines have product "
            f"{raw['product_id']} / variation {raw['variation_id']}"
        )
    return str(matches[0])


def _ref(refund: Any) -> str:
    ident_ = refund.get("id") if isinstance(refund, dict) else None
    return str(ident_) if type(ident_) is int and 0 < ident_ <= MAX_ID else "(unidentified)"
