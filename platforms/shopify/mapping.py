"""Shopify REST Admin order JSON (orders/create, /updated, /paid, /cancelled webhooks) -> Order.

Pure, no I/O. Marshmallow schemas describe only the fields we read; anything malformed or
inconsistent becomes a MappingError naming the field path, because a support person has to find
the problem in the Shopify admin from that message alone.

Shopify semantics relied on (docs/platforms.md#shopify-orders; the discount one is documented but not verified
against a live shop with a shipping discount):
- Plain amounts (`price`, `total_price`, ...) are shop currency and equal their `*_set.shop_money`
  twin. We prefer the twin and insist that the two agree.
- `total_discounts` is every discount: line discounts (order-level ones are allocated to lines in
  `discount_allocations`) plus shipping discounts (allocated on `shipping_lines`). That is exactly
  canonical Totals.discount_total, so we take it as is and cross-check it against the allocations.
- `total_shipping_price_set` is shipping before its discounts, i.e. the sum of
  `shipping_lines[].price`. Hence total_price = total_line_items_price - total_discounts +
  shipping + total_tax, without the tax term when taxes_included (prices already contain it),
  + tips + duties + additional fees (below).
- A tip is a line item that carries `tip_payment_gateway`/`tip_payment_method` ("present only on
  tips"); `total_tip_received` is their sum. It becomes a fee line of kind tip, never goods. Shopify
  documents `total_line_items_price` as the sum of all line items, so we accept it with or without
  the tip lines (either way the canonical subtotal is the goods alone).
- Import duties are `line_items[].duties[]` (shop money in `price_set.shop_money`, or `shop_money`
  in older payloads), adding up to `original_total_duties_set`; each becomes a fee line of kind duty
  naming its line. With `duties_included` they are inside the prices already and are not added.
- `original_total_additional_fees_set` (API 2023-04+) is what Shopify charges beyond duties and taxes,
  e.g. Colorado's retail delivery fee: one fee line of kind additional_fee (REST gives only the total).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

from marshmallow import fields, validate

from mappings.canonical import (
    Address,
    Customer,
    Discount,
    FeeLine,
    Money,
    Order,
    OrderLine,
    Payment,
    ShippingLine,
    TaxLine,
    Totals,
    money_sum,
)
from mappings.currencies import check_minor_units
from mappings.errors import MappingError
from mappings.fields import MAX_ID as _MAX_ID
from mappings.fields import Amount as _Amount
from mappings.fields import Base as _Base
from mappings.fields import MoneySet
from mappings.fields import Timestamp as _Timestamp
from mappings.fields import blank_to_none as _blank_to_none
from mappings.fields import currency as _currency
from mappings.fields import ident as _id
from mappings.fields import list_of as _list
from mappings.fields import load as _load
from mappings.fields import opt as _opt

# ---- schemas: only what we read (fields shared with WooCommerce live in mappings.fields) ------------


_MoneyBag = _Base.from_dict(
    {"amount": _Amount(required=True), "currency_code": _currency(required=True)}, name="_MoneyBag"
)


def priced(name: str, presentment: bool = False) -> dict[str, fields.Field]:
    """A plain shop-currency amount and its `*_set` twin: either may be absent, not both. Only the order total's
    presentment twin is read (Order.presentment_total)."""
    return {name: _opt(_Amount), f"{name}_set": _opt(MoneySet, presentment=presentment)}


_TaxLine = _Base.from_dict(
    {"title": fields.String(required=True), "rate": _Amount(required=True), **priced("price")}, name="_TaxLine"
)
_Allocation = _Base.from_dict(priced("amount"), name="_Allocation")
_Duty = _Base.from_dict(
    {
        **priced("price"),
        "shop_money": _opt(fields.Nested, nested=_MoneyBag),
        "harmonized_system_code": _opt(),
        "country_code_of_origin": _opt(),
        "tax_lines": _list(_TaxLine),
    },
    name="_Duty",
)
_LineItem = _Base.from_dict(
    {
        "id": _id(required=True),
        "product_id": _opt(_id),
        "variant_id": _opt(_id),
        "sku": _opt(),
        "title": fields.String(required=True),
        "variant_title": _opt(),
        "quantity": fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=10**6)),
        "current_quantity": _opt(fields.Integer, strict=True, validate=validate.Range(min=0, max=10**6)),
        **priced("price"),
        **priced("total_discount"),
        "discount_allocations": _list(_Allocation),
        "tax_lines": _list(_TaxLine),
        "requires_shipping": _opt(fields.Boolean),
        "tip_payment_gateway": _opt(),
        "tip_payment_method": _opt(),
        "duties": _list(_Duty),
    },
    name="_LineItem",
)
_ShippingLine = _Base.from_dict(
    {
        "code": _opt(),
        "title": fields.String(required=True),
        **priced("price"),
        "discount_allocations": _list(_Allocation),
        "tax_lines": _list(_TaxLine),
    },
    name="_ShippingLine",
)
_DiscountCode = _Base.from_dict(
    {"code": fields.String(required=True), "type": fields.String(required=True), "amount": _Amount(required=True)},
    name="_DiscountCode",
)
_NoteAttribute = _Base.from_dict({"name": fields.String(required=True), "value": _opt()}, name="_NoteAttribute")
_Address = _Base.from_dict(
    {
        key: _opt()
        for key in (
            "first_name",
            "last_name",
            "company",
            "address1",
            "address2",
            "city",
            "province",
            "province_code",
            "zip",
            "country_code",
            "phone",
        )
    },
    name="_Address",
)
_Customer = _Base.from_dict(
    {"id": _id(required=True), "email": _opt(), "first_name": _opt(), "last_name": _opt(), "phone": _opt()},
    name="_Customer",
)
_ShopifyOrder = _Base.from_dict(
    {
        "id": _id(required=True),
        "name": _opt(),
        "order_number": _opt(fields.Integer, strict=True),
        "email": _opt(),
        "contact_email": _opt(),
        "phone": _opt(),
        "created_at": _Timestamp(required=True),
        "updated_at": _Timestamp(required=True),
        "cancelled_at": _opt(_Timestamp),
        "closed_at": _opt(_Timestamp),
        "cancel_reason": _opt(),
        "currency": _currency(required=True),
        "presentment_currency": _opt(_currency),
        "taxes_included": fields.Boolean(required=True),
        "duties_included": _opt(fields.Boolean),
        "total_tip_received": _opt(_Amount),
        "original_total_duties_set": _opt(MoneySet),
        "original_total_additional_fees_set": _opt(MoneySet),
        **priced("total_line_items_price"),
        **priced("total_discounts"),
        **priced("total_tax"),
        **priced("total_price", presentment=True),
        "total_shipping_price_set": _opt(MoneySet),
        "line_items": fields.List(
            fields.Nested(_LineItem),
            required=True,
            validate=validate.Length(min=1, error="An order needs at least one line item."),
        ),
        "shipping_lines": _list(_ShippingLine),
        "discount_codes": _list(_DiscountCode),
        "tax_lines": _list(_TaxLine),
        "note_attributes": _list(_NoteAttribute),
        "financial_status": _opt(),
        "gateway": _opt(),
        "payment_gateway_names": fields.List(fields.String(), allow_none=True, load_default=list),
        "customer": _opt(fields.Nested, nested=_Customer),
        "billing_address": _opt(fields.Nested, nested=_Address),
        "shipping_address": _opt(fields.Nested, nested=_Address),
        "note": _opt(),
        "tags": _opt(),
    },
    name="_ShopifyOrder",
)
_SCHEMA = _ShopifyOrder()  # built once: instantiating the nested schemas costs more than a load


# ---- mapping ---------------------------------------------------------------------------------------


def order_from_shopify(payload: object, store: str) -> Order:
    """Map one Shopify REST order to the canonical Order, or raise MappingError saying why not (for any JSON
    value: one that is no object is refused too)."""
    try:
        order = _order(_load(_SCHEMA, payload, "a Shopify order"), store)
        check_minor_units(order)
        return order
    except MappingError as exc:
        raise MappingError(f"Shopify order {_order_ref(payload)}: {exc}") from None


def _order(data: dict, store: str) -> Order:
    cur = data["currency"]
    goods = [(i, raw) for i, raw in enumerate(data["line_items"]) if not _is_tip(raw)]
    lines = tuple(_line(n, i, raw, cur) for n, (i, raw) in enumerate(goods, start=1))
    shipping = tuple(_shipping_line(i, raw, cur) for i, raw in enumerate(data["shipping_lines"] or []))
    fees = (*_tips(data, cur), *_duties(data, cur), *_additional_fees(data, cur))
    status = "cancelled" if data["cancelled_at"] else "closed" if data["closed_at"] else "open"
    presentment_currency, presentment_total = _presentment(data)
    return Order(
        source="shopify",
        store=store,
        external_id=str(data["id"]),
        number=_number(data),
        status=status,
        placed_at=data["created_at"],
        updated_at=data["updated_at"],
        currency=cur,
        taxes_included=data["taxes_included"],
        customer=_customer(data),
        lines=lines,
        totals=_totals(data, lines, shipping, fees),
        payment=_payment(data),
        billing_address=_address(data["billing_address"]),
        shipping_address=_address(data["shipping_address"]),
        shipping_lines=shipping,
        fee_lines=fees,
        discounts=tuple(Discount(d["code"], d["type"], Money(d["amount"], cur)) for d in data["discount_codes"] or []),
        tax_lines=_tax_lines(data["tax_lines"], cur, ""),
        presentment_currency=presentment_currency,
        presentment_total=presentment_total,
        cancel_reason=data["cancel_reason"] or None,
        note=data["note"] or "",
        note_attributes={a["name"]: a["value"] or "" for a in data["note_attributes"] or []},
        tags=tuple(tag.strip() for tag in (data["tags"] or "").split(",") if tag.strip()),
    )


def money_at(obj: dict, name: str, cur: str, path: str, required: bool = True) -> Money:
    """The shop-money amount of `name`, preferring its `*_set.shop_money` twin."""
    twin, plain = obj.get(f"{name}_set"), obj.get(name)
    if twin is not None:
        shop = twin["shop_money"]
        if shop["currency_code"] != cur:
            raise MappingError(
                f"{path}{name}_set.shop_money.currency_code is {shop['currency_code']}, but the shop currency is {cur}"
            )
        if plain is not None and plain != shop["amount"]:
            raise MappingError(f"{path}{name} is {plain} but {name}_set.shop_money.amount is {shop['amount']}")
        return Money(shop["amount"], cur)
    if plain is None and required:
        raise MappingError(f"{path}{name}: missing (neither {name} nor {name}_set is present)")
    return Money(plain if plain is not None else Decimal(0), cur)


def _source(obj: dict, name: str) -> str:
    return f"{name}_set.shop_money" if obj.get(f"{name}_set") is not None else name


def _tax_lines(raws: list | None, cur: str, path: str) -> tuple[TaxLine, ...]:
    return tuple(
        TaxLine(t["title"], t["rate"], money_at(t, "price", cur, f"{path}tax_lines[{i}]."))
        for i, t in enumerate(raws or [])
    )


def _allocated(raws: list | None, cur: str, path: str) -> Money:
    return money_sum(
        [money_at(a, "amount", cur, f"{path}discount_allocations[{i}].") for i, a in enumerate(raws or [])], cur
    )


def _line(line_no: int, index: int, raw: dict, cur: str) -> OrderLine:
    path = f"line_items[{index}]."
    unit_price = money_at(raw, "price", cur, path)
    gross = unit_price * raw["quantity"]
    # discount_allocations are the per-line truth; the older total_discount is often "0.00" even
    # when allocations exist, so it only stands in when a payload carries no allocations.
    if raw["discount_allocations"]:
        discount = _allocated(raw["discount_allocations"], cur, path)
    else:
        discount = money_at(raw, "total_discount", cur, path, required=False)
    if discount.amount > gross.amount:
        raise MappingError(f"{path[:-1]}: discounts {discount} exceed quantity × price {gross}")
    current = raw["current_quantity"]
    if current is not None and current > raw["quantity"]:
        raise MappingError(
            f"{path}current_quantity {current} is more than quantity {raw['quantity']}: an edit "
            "that adds units adds a line of its own"
        )
    return OrderLine(
        line_no=line_no,
        external_id=str(raw["id"]),
        sku=raw["sku"] or None,
        title=raw["title"],
        quantity=raw["quantity"],
        unit_price=unit_price,
        discount_total=discount,
        tax_lines=_tax_lines(raw["tax_lines"], cur, path),
        product_id=_opt_id(raw["product_id"]),
        variant_id=_opt_id(raw["variant_id"]),
        variant_title=raw["variant_title"] or "",
        requires_shipping=raw["requires_shipping"] is not False,
        removed=raw["quantity"] - current if current is not None else 0,
    )


def _shipping_line(index: int, raw: dict, cur: str) -> ShippingLine:
    path = f"shipping_lines[{index}]."
    return ShippingLine(
        code=raw["code"] or "",
        title=raw["title"],
        price=money_at(raw, "price", cur, path),
        discount_total=_allocated(raw["discount_allocations"], cur, path),
        tax_lines=_tax_lines(raw["tax_lines"], cur, path),
    )


def _is_tip(raw: dict) -> bool:
    return bool(raw["tip_payment_gateway"] or raw["tip_payment_method"])


def _tips(data: dict, cur: str) -> tuple[FeeLine, ...]:
    tips = tuple(
        FeeLine(
            title=raw["title"],
            amount=money_at(raw, "price", cur, f"line_items[{i}].") * raw["quantity"],
            kind="tip",
            source_line_id=str(raw["id"]),
        )
        for i, raw in enumerate(data["line_items"])
        if _is_tip(raw)
    )
    received = data["total_tip_received"]
    if received is None or (not tips and not received):
        return tips
    if not tips:  # a tip known only from the order's total: still money the customer paid
        return (FeeLine(title="Tip", amount=Money(received, cur), kind="tip"),)
    lines_total = money_sum([t.amount for t in tips], cur)
    if lines_total.amount != received:
        raise MappingError(
            f"tips do not reconcile: the tip line items add up to {lines_total}, but total_tip_received is {received}"
        )
    return tips


def _duties(data: dict, cur: str) -> tuple[FeeLine, ...]:
    if data["duties_included"]:
        return ()  # the buyer paid them inside the prices: nothing to add
    duties: list[FeeLine] = []
    for i, raw in enumerate(data["line_items"]):
        for j, duty in enumerate(raw["duties"] or []):
            path = f"line_items[{i}].duties[{j}]."
            amount = _duty_amount(duty, cur, path)
            if amount.amount:
                origin = ", ".join(
                    f"{label} {value}"
                    for label, value in (
                        ("HS", duty["harmonized_system_code"]),
                        ("origin", duty["country_code_of_origin"]),
                    )
                    if value
                )
                duties.append(
                    FeeLine(
                        title=f"Duty: {raw['title']}" + (f" ({origin})" if origin else ""),
                        amount=amount,
                        tax_lines=_tax_lines(duty["tax_lines"], cur, path),
                        kind="duty",
                        source_line_id=str(raw["id"]),
                    )
                )
    if data["original_total_duties_set"] is None:
        return tuple(duties)
    declared = money_at(data, "original_total_duties", cur, "")
    if not duties and declared.amount:  # only the order's total came: one line for all of it
        return (FeeLine(title="Duties", amount=declared, kind="duty"),)
    itemised = money_sum([d.amount for d in duties], cur)
    if itemised != declared:
        raise MappingError(
            f"duties do not reconcile: line_items[].duties add up to {itemised}, "
            f"but original_total_duties_set.shop_money is {declared}"
        )
    return tuple(duties)


def _duty_amount(duty: dict, cur: str, path: str) -> Money:
    shop = duty["shop_money"]  # older payloads put the money on the duty itself
    if shop is None:
        return money_at(duty, "price", cur, path)
    if shop["currency_code"] != cur:
        raise MappingError(f"{path}shop_money.currency_code is {shop['currency_code']}, but the shop currency is {cur}")
    return Money(shop["amount"], cur)


def _additional_fees(data: dict, cur: str) -> tuple[FeeLine, ...]:
    if data["original_total_additional_fees_set"] is None:
        return ()
    amount = money_at(data, "original_total_additional_fees", cur, "")
    return (FeeLine(title="Additional fees", amount=amount, kind="additional_fee"),) if amount.amount else ()


def _totals(
    data: dict, lines: tuple[OrderLine, ...], shipping: tuple[ShippingLine, ...], fees: tuple[FeeLine, ...]
) -> Totals:
    cur = data["currency"]
    subtotal, discounts, tax, total = (
        money_at(data, name, cur, "")
        for name in ("total_line_items_price", "total_discounts", "total_tax", "total_price")
    )
    gross = money_sum([line.gross for line in lines], cur)
    tip_lines = money_sum([f.amount for f in fees if f.kind == "tip" and f.source_line_id], cur)
    if subtotal not in (gross, gross + tip_lines):
        with_tips = f" (tip lines {tip_lines.amount} aside)" if tip_lines.amount else ""
        raise MappingError(
            f"line_items: quantity × price adds up to {gross}{with_tips}, "
            f"but {_source(data, 'total_line_items_price')} is {subtotal}"
        )
    shipping_total = money_sum([s.price for s in shipping], cur)
    if data["total_shipping_price_set"] is not None:
        declared = money_at(data, "total_shipping_price", cur, "")
        if declared != shipping_total:
            raise MappingError(
                f"shipping_lines prices add up to {shipping_total}, "
                f"but total_shipping_price_set.shop_money is {declared}"
            )
    # Orders without any allocation (created before Shopify added them) cannot be cross-checked.
    allocated = money_sum([*(x.discount_total for x in lines), *(s.discount_total for s in shipping)], cur)
    if allocated.amount and allocated != discounts:
        raise MappingError(
            f"discounts do not reconcile: allocated to lines and shipping {allocated}, "
            f"but {_source(data, 'total_discounts')} is {discounts}"
        )
    tax_term = Money.zero(cur) if data["taxes_included"] else tax
    fee_total = money_sum([f.amount for f in fees], cur)
    expected = gross - discounts + shipping_total + tax_term + fee_total
    if expected != total:
        tax_text = f"tax {tax.amount} (included in prices)" if data["taxes_included"] else f"tax {tax.amount}"
        fee_text = "".join(f" + {label} {amount.amount}" for label, amount in fee_parts(fees, lambda f: f.amount, cur))
        raise MappingError(
            f"totals do not reconcile: lines {gross.amount} − discounts {discounts.amount} + shipping "
            f"{shipping_total.amount} + {tax_text}{fee_text} = {expected}, "
            f"Shopify {_source(data, 'total_price')} is {total} (a difference of {(total - expected).amount})"
        )
    return Totals(
        subtotal=gross,
        discount_total=discounts,
        shipping_total=shipping_total,
        tax_total=tax,
        total=total,
        fee_total=fee_total if fees else None,
    )


# How a reconciliation message names each kind of fee it adds (plain fees are never Shopify's).
_FEE_PARTS = (("tip", "tips"), ("duty", "duties"), ("additional_fee", "additional fees"))


def fee_parts(fees: Sequence[Any], amount_of: Callable[[Any], Money], cur: str) -> list[tuple[str, Money]]:
    """(label, sum) of each kind of fee present, in a fixed order, for an order's or a refund's message."""
    return [
        (label, money_sum([amount_of(f) for f in fees if f.kind == kind], cur))
        for kind, label in _FEE_PARTS
        if any(f.kind == kind for f in fees)
    ]


def _presentment(data: dict) -> tuple[str | None, Money | None]:
    declared, twin = data["presentment_currency"], data["total_price_set"]
    money = twin.get("presentment_money") if twin else None
    if money is None:
        return declared, None
    if declared and money["currency_code"] != declared:
        raise MappingError(
            f"total_price_set.presentment_money.currency_code is {money['currency_code']}, "
            f"but presentment_currency is {declared}"
        )
    return money["currency_code"], Money(money["amount"], money["currency_code"])


# ---- parties, payment, identity ------------------------------------------------------------------


def _opt_id(value: int | None) -> str | None:
    return None if value is None else str(value)


def _customer(data: dict) -> Customer:
    raw = data["customer"]
    billing, shipping = data["billing_address"] or {}, data["shipping_address"] or {}
    postcode = str(billing.get("zip") or shipping.get("zip") or "").strip()
    if raw is not None:
        return Customer(
            email=_blank_to_none(raw["email"]) or _blank_to_none(data["email"]),
            first_name=raw["first_name"] or "",
            last_name=raw["last_name"] or "",
            phone=_blank_to_none(raw["phone"]),
            external_id=str(raw["id"]),
            postcode=postcode,
        )
    # Guest checkout: the order and its addresses are all we know about the buyer.
    named = billing or shipping
    phones = (billing.get("phone"), shipping.get("phone"), data["phone"])
    return Customer(
        email=_blank_to_none(data["email"]) or _blank_to_none(data["contact_email"]),
        first_name=named.get("first_name") or "",
        last_name=named.get("last_name") or "",
        phone=next((p for p in phones if _blank_to_none(p)), None),
        external_id=None,
        postcode=postcode,
    )


def _address(raw: dict | None) -> Address | None:
    if raw is None:
        return None
    text = {key: value or "" for key, value in raw.items()}
    return Address(
        first_name=text["first_name"],
        last_name=text["last_name"],
        company=text["company"],
        line1=text["address1"],
        line2=text["address2"],
        city=text["city"],
        region=text["province_code"] or text["province"],
        postal_code=text["zip"],
        country_code=text["country_code"],
        phone=text["phone"],
    )


_CARD_GATEWAYS = {
    "shopify_payments",
    "bogus",
    "stripe",
    "braintree",
    "authorize_net",
    "adyen",
    "checkout_com",
    "worldpay",
    "square",
}


def payment_method(gateway: str) -> str:
    """Our payment vocabulary from Shopify's free-text gateway name, e.g. "Cash on Delivery (COD)"."""
    words = re.sub(r"[^a-z0-9]+", " ", gateway.lower()).strip()
    if re.search(r"\bcod\b", words) or "cash on delivery" in words:  # a word, not "barcode"
        return "cod"
    if "paypal" in words:
        return "paypal"
    if words in ("manual", "gift card"):
        return words.replace(" ", "_")
    if re.search(r"\bbank\b", words):  # "Bank Deposit", "bank_transfer"
        return "bank_transfer"
    return "card" if words.replace(" ", "_") in _CARD_GATEWAYS else "other"


def _payment(data: dict) -> Payment:
    names = [name for name in data["payment_gateway_names"] or [] if name]
    gateway = names[0] if names else data["gateway"] or ""
    # An order webhook carries no transaction, so there is no reference to record yet.
    return Payment(
        status=data["financial_status"] or "pending",
        gateway=gateway,
        method=payment_method(gateway),
        transaction_ref=None,
    )


def _number(data: dict) -> str:
    if data["name"]:
        return data["name"]
    if data["order_number"] is not None:
        return str(data["order_number"])
    raise MappingError("name: missing, and there is no order_number to fall back on")


def _order_ref(payload: Any) -> str:
    """How an error message names the order, from whatever the payload still offers."""
    name = payload.get("name") if isinstance(payload, dict) else None
    ident = payload.get("id") if isinstance(payload, dict) else None
    if isinstance(name, str) and name.strip():
        return name.strip()[:40]
    if type(ident) is int and 0 < ident <= _MAX_ID:
        return f"id {ident}"
    return "(unidentified)"


def order_edit_summary(payload: dict) -> tuple[str, str]:
    """(the order's id, what an orders/edited body says changed, in words). The body has passed
    platforms.topics' check, so its shape holds."""
    edit = payload["order_edit"]
    changes = edit.get("line_items") or {}
    parts = [
        f"{sign}{abs(int(change['delta']))} of line {change['id']}"
        for key, sign in (("additions", "+"), ("removals", "−"))
        for change in changes.get(key) or []
    ]
    return str(edit["order_id"]), ", ".join(parts[:20]) + (f" and {len(parts) - 20} more" if len(parts) > 20 else "")
