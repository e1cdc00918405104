"""Shopify REST Admin order JSON (orders/create, /updated, /paid, /cancelled webhooks) -> Order.

Pure: no I/O. The payload is validated with marshmallow schemas that describe only the fields we
read; anything malformed or inconsistent becomes a MappingError naming the field path, because a
support person has to find the problem in the Shopify admin from that message alone.

Shopify semantics this module relies on (see also PLATFORMS.md §3):
- Every plain amount (`price`, `total_price`, ...) is in the shop currency; its `*_set.shop_money`
  twin is the same value. We prefer the twin and insist the two agree.
- `total_discounts` is every discount on the order: line discounts (order-level ones are allocated
  to lines in `discount_allocations`) *plus* shipping discounts (allocated to `shipping_lines`).
  That matches canonical Totals.discount_total, so we take it as is and cross-check it against the
  allocations. Old orders without `discount_allocations` skip that cross-check.
- `total_shipping_price_set` is shipping before its discounts (tax included when taxes_included),
  i.e. the sum of `shipping_lines[].price`; we cross-check the two.
- Hence total_price = total_line_items_price - total_discounts + shipping + total_tax, without
  the tax term when taxes_included (prices and shipping already contain it).
"""
from __future__ import annotations

import re
from datetime import timezone
from decimal import Decimal
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

from mappings.canonical import (Address, Customer, Discount, Money, Order, OrderLine, Payment,
                                ShippingLine, TaxLine, Totals, money_sum)
from mappings.errors import MappingError

_AMOUNT = re.compile(r"\d{1,13}(\.\d{1,8})?")
_MAX_ID = 2**63 - 1  # Shopify ids are int64; also keeps str(id) cheap and safe
_MAX_ERRORS = 5  # a support person needs the first few problems, not a wall of text


# ---- fields --------------------------------------------------------------------------------------


class _Amount(fields.Decimal):
    """A non-negative decimal amount or rate: Shopify sends "19.99" (rates as JSON numbers)."""

    def _validated(self, value: Any) -> Decimal:
        if isinstance(value, str) and not _AMOUNT.fullmatch(value):
            raise self.make_error("invalid", input=value)
        number = super()._validated(value)
        # Bounds keep later arithmetic from overflowing on absurd input such as 1e400.
        if not number.is_finite() or number < 0 or number >= Decimal(10) ** 13:
            raise ValidationError("Not a plausible non-negative amount.")
        if number.as_tuple().exponent < -8:  # type: ignore[operator]
            raise ValidationError("Too many decimal places.")
        return number


class _Timestamp(fields.DateTime):
    """ISO-8601 with a UTC offset, returned in UTC; a naive time is ambiguous, so rejected."""

    def _deserialize(self, value, attr, data, **kwargs):  # type: ignore[no-untyped-def]
        parsed = super()._deserialize(value, attr, data, **kwargs)
        if parsed.utcoffset() is None:
            raise ValidationError("Timestamp has no UTC offset (expected e.g. 2026-11-20T10:15:00-05:00).")
        try:
            return parsed.astimezone(timezone.utc)
        except OverflowError as exc:
            raise ValidationError("Timestamp out of range.") from exc


class _Text(fields.Field):
    """A note attribute value: text, though apps sometimes store numbers or booleans."""

    def _deserialize(self, value, attr, data, **kwargs):  # type: ignore[no-untyped-def]
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str) or (isinstance(value, (int, float)) and abs(value) < 1e18):
            return str(value)
        raise ValidationError("Not a text value.")


def _id(**kw: Any) -> fields.Integer:
    return fields.Integer(strict=True, validate=validate.Range(min=1, max=_MAX_ID), **kw)


def _currency(**kw: Any) -> fields.String:
    return fields.String(validate=validate.Regexp(r"[A-Z]{3}\Z", error="Not an ISO 4217 currency code."), **kw)


def _opt(field_cls: type[fields.Field] = fields.String, **kw: Any) -> fields.Field:
    return field_cls(allow_none=True, load_default=None, **kw)


def _list(schema: type[Schema]) -> fields.List:
    return fields.List(fields.Nested(schema), allow_none=True, load_default=list)


# ---- schemas: only the fields we read -------------------------------------------------------------


class _Base(Schema):
    class Meta:
        unknown = EXCLUDE


class _MoneyBag(_Base):
    amount = _Amount(required=True)
    currency_code = _currency(required=True)


class _MoneySet(_Base):
    shop_money = fields.Nested(_MoneyBag, required=True)
    presentment_money = _opt(fields.Nested, nested=_MoneyBag)


def _priced(name: str) -> dict[str, fields.Field]:
    """A plain shop-currency amount and its `*_set` twin; either may be absent (not both)."""
    return {name: _opt(_Amount), f"{name}_set": _opt(fields.Nested, nested=_MoneySet)}


_TaxLine = _Base.from_dict({"title": fields.String(required=True), "rate": _Amount(required=True),
                            **_priced("price")}, name="_TaxLine")
_Allocation = _Base.from_dict(_priced("amount"), name="_Allocation")
_LineItem = _Base.from_dict({
    "id": _id(required=True), "product_id": _opt(_id), "variant_id": _opt(_id),
    "sku": _opt(), "title": fields.String(required=True), "variant_title": _opt(),
    "quantity": fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=10**6)),
    **_priced("price"), **_priced("total_discount"),
    "discount_allocations": _list(_Allocation), "tax_lines": _list(_TaxLine),
    "requires_shipping": _opt(fields.Boolean),
}, name="_LineItem")
_ShippingLine = _Base.from_dict({
    "code": _opt(), "title": fields.String(required=True), **_priced("price"),
    "discount_allocations": _list(_Allocation), "tax_lines": _list(_TaxLine),
}, name="_ShippingLine")
_DiscountCode = _Base.from_dict({"code": fields.String(required=True), "type": fields.String(required=True),
                                 "amount": _Amount(required=True)}, name="_DiscountCode")
_NoteAttribute = _Base.from_dict({"name": fields.String(required=True), "value": _opt(_Text)},
                                 name="_NoteAttribute")
_Address = _Base.from_dict({key: _opt() for key in (
    "first_name", "last_name", "company", "address1", "address2", "city", "province",
    "province_code", "zip", "country_code", "phone")}, name="_Address")
_Customer = _Base.from_dict({"id": _id(required=True), "email": _opt(), "first_name": _opt(),
                             "last_name": _opt(), "phone": _opt()}, name="_Customer")
_ShopifyOrder = _Base.from_dict({
    "id": _id(required=True), "name": _opt(), "order_number": _opt(fields.Integer, strict=True),
    "email": _opt(), "contact_email": _opt(), "phone": _opt(),
    "created_at": _Timestamp(required=True), "updated_at": _Timestamp(required=True),
    "cancelled_at": _opt(_Timestamp), "closed_at": _opt(_Timestamp), "cancel_reason": _opt(),
    "currency": _currency(required=True), "presentment_currency": _opt(_currency),
    "taxes_included": fields.Boolean(required=True),
    **_priced("total_line_items_price"), **_priced("total_discounts"), **_priced("total_tax"),
    **_priced("total_price"), "total_shipping_price_set": _opt(fields.Nested, nested=_MoneySet),
    "line_items": fields.List(fields.Nested(_LineItem), required=True,
                              validate=validate.Length(min=1, error="An order needs at least one line item.")),
    "shipping_lines": _list(_ShippingLine), "discount_codes": _list(_DiscountCode),
    "tax_lines": _list(_TaxLine), "note_attributes": _list(_NoteAttribute),
    "financial_status": _opt(), "gateway": _opt(),
    "payment_gateway_names": fields.List(fields.String(), allow_none=True, load_default=list),
    "customer": _opt(fields.Nested, nested=_Customer),
    "billing_address": _opt(fields.Nested, nested=_Address),
    "shipping_address": _opt(fields.Nested, nested=_Address),
    "note": _opt(), "tags": _opt(),
}, name="_ShopifyOrder")
_SCHEMA = _ShopifyOrder()  # built once: instantiating the nested schemas costs more than a load


# ---- public entry point ---------------------------------------------------------------------------


def order_from_shopify(payload: dict, store: str) -> Order:
    """Map one Shopify REST order to the canonical Order, or raise MappingError saying why not."""
    ref = _order_ref(payload)
    try:
        if not isinstance(payload, dict):
            raise MappingError(f"payload: expected a JSON object (a Shopify order), got {type(payload).__name__}")
        try:
            data = _SCHEMA.load(payload)
        except ValidationError as exc:
            problems = _flatten(exc.messages)
            more = f" (and {len(problems) - _MAX_ERRORS} more)" if len(problems) > _MAX_ERRORS else ""
            raise MappingError("; ".join(problems[:_MAX_ERRORS]) + more) from None
        return _order(data, store)
    except MappingError as exc:
        raise MappingError(f"Shopify order {ref}: {exc}") from None


def _order(data: dict, store: str) -> Order:
    cur = data["currency"]
    lines = tuple(_line(i, raw, cur) for i, raw in enumerate(data["line_items"]))
    shipping = tuple(_shipping_line(i, raw, cur) for i, raw in enumerate(data["shipping_lines"] or []))
    status = "cancelled" if data["cancelled_at"] else "closed" if data["closed_at"] else "open"
    presentment_currency, presentment_total = _presentment(data)
    return Order(
        source="shopify", store=store, external_id=str(data["id"]), number=_number(data),
        status=status, placed_at=data["created_at"], updated_at=data["updated_at"], currency=cur,
        taxes_included=data["taxes_included"], customer=_customer(data), lines=lines,
        totals=_totals(data, lines, shipping), payment=_payment(data),
        billing_address=_address(data["billing_address"]),
        shipping_address=_address(data["shipping_address"]), shipping_lines=shipping,
        discounts=tuple(Discount(d["code"], d["type"], Money(d["amount"], cur))
                        for d in data["discount_codes"] or []),
        tax_lines=_tax_lines(data["tax_lines"], cur, ""),
        presentment_currency=presentment_currency, presentment_total=presentment_total,
        cancel_reason=data["cancel_reason"] or None, note=data["note"] or "",
        note_attributes={a["name"]: a["value"] or "" for a in data["note_attributes"] or []},
        tags=tuple(tag.strip() for tag in (data["tags"] or "").split(",") if tag.strip()),
    )


# ---- money ----------------------------------------------------------------------------------------


def _money(obj: dict, name: str, cur: str, path: str, required: bool = True) -> Money:
    """The shop-money amount of `name`, preferring its `*_set.shop_money` twin."""
    twin, plain = obj.get(f"{name}_set"), obj.get(name)
    if twin is not None:
        shop = twin["shop_money"]
        if shop["currency_code"] != cur:
            raise MappingError(f"{path}{name}_set.shop_money.currency_code is {shop['currency_code']}, "
                               f"but the shop currency is {cur}")
        if plain is not None and plain != shop["amount"]:
            raise MappingError(f"{path}{name} is {plain} but {name}_set.shop_money.amount is {shop['amount']}")
        return Money(shop["amount"], cur)
    if plain is None:
        if not required:
            return Money.zero(cur)
        raise MappingError(f"{path}{name}: missing (neither {name} nor {name}_set is present)")
    return Money(plain, cur)


def _source(obj: dict, name: str) -> str:
    return f"{name}_set.shop_money" if obj.get(f"{name}_set") is not None else name


def _tax_lines(raws: list | None, cur: str, path: str) -> tuple[TaxLine, ...]:
    return tuple(TaxLine(t["title"], t["rate"], _money(t, "price", cur, f"{path}tax_lines[{i}]."))
                 for i, t in enumerate(raws or []))


def _allocated(raws: list | None, cur: str, path: str) -> Money:
    return money_sum([_money(a, "amount", cur, f"{path}discount_allocations[{i}].")
                      for i, a in enumerate(raws or [])], cur)


def _line(index: int, raw: dict, cur: str) -> OrderLine:
    path = f"line_items[{index}]."
    unit_price = _money(raw, "price", cur, path)
    # discount_allocations is the per-line truth; the older total_discount is usually "0.00" even
    # when allocations exist, so it is only a fallback for payloads that carry no allocations.
    if raw["discount_allocations"]:
        discount = _allocated(raw["discount_allocations"], cur, path)
    else:
        discount = _money(raw, "total_discount", cur, path, required=False)
    if discount.amount > (unit_price * raw["quantity"]).amount:
        raise MappingError(f"{path[:-1]}: discounts {discount} exceed quantity × price "
                           f"{unit_price * raw['quantity']}")
    return OrderLine(
        line_no=index + 1, external_id=str(raw["id"]), sku=raw["sku"] or None, title=raw["title"],
        quantity=raw["quantity"], unit_price=unit_price, discount_total=discount,
        tax_lines=_tax_lines(raw["tax_lines"], cur, path),
        product_id=_opt_id(raw["product_id"]), variant_id=_opt_id(raw["variant_id"]),
        variant_title=raw["variant_title"] or "",
        requires_shipping=raw["requires_shipping"] is not False,
    )


def _shipping_line(index: int, raw: dict, cur: str) -> ShippingLine:
    path = f"shipping_lines[{index}]."
    return ShippingLine(code=raw["code"] or "", title=raw["title"], price=_money(raw, "price", cur, path),
                        discount_total=_allocated(raw["discount_allocations"], cur, path),
                        tax_lines=_tax_lines(raw["tax_lines"], cur, path))


def _totals(data: dict, lines: tuple[OrderLine, ...], shipping: tuple[ShippingLine, ...]) -> Totals:
    cur = data["currency"]
    subtotal = _money(data, "total_line_items_price", cur, "")
    discounts = _money(data, "total_discounts", cur, "")
    tax = _money(data, "total_tax", cur, "")
    total = _money(data, "total_price", cur, "")
    gross = money_sum([line.gross for line in lines], cur)
    if gross != subtotal:
        raise MappingError(f"line_items: quantity × price adds up to {gross}, "
                           f"but {_source(data, 'total_line_items_price')} is {subtotal}")
    shipping_sum = money_sum([s.price for s in shipping], cur)
    shipping_total = shipping_sum
    if data["total_shipping_price_set"] is not None:
        shipping_total = _money(data, "total_shipping_price", cur, "")
        if shipping_total != shipping_sum:
            raise MappingError(f"shipping_lines prices add up to {shipping_sum}, "
                               f"but total_shipping_price_set.shop_money is {shipping_total}")
    _check_allocations(data, lines, shipping, discounts)
    tax_term = Money.zero(cur) if data["taxes_included"] else tax
    expected = subtotal - discounts + shipping_total + tax_term
    if expected != total:
        tax_text = f"tax {tax.amount} (included in prices)" if data["taxes_included"] else f"tax {tax.amount}"
        raise MappingError(
            f"totals do not reconcile: lines {subtotal.amount} − discounts {discounts.amount} + shipping "
            f"{shipping_total.amount} + {tax_text} = {expected}, Shopify {_source(data, 'total_price')} is {total}")
    return Totals(subtotal=subtotal, discount_total=discounts, shipping_total=shipping_total,
                  tax_total=tax, total=total)


def _check_allocations(data: dict, lines: tuple[OrderLine, ...], shipping: tuple[ShippingLine, ...],
                       discounts: Money) -> None:
    """Allocated line + shipping discounts must add up to total_discounts (when allocations exist)."""
    cur = data["currency"]
    on_lines = money_sum([line.discount_total for line in lines], cur)
    on_shipping = money_sum([s.discount_total for s in shipping], cur)
    has_allocations = any(raw["discount_allocations"] for raw in data["line_items"]) or any(
        raw["discount_allocations"] for raw in data["shipping_lines"] or [])
    if (has_allocations or on_lines.amount) and on_lines + on_shipping != discounts:
        raise MappingError(f"discounts do not reconcile: allocated to lines {on_lines.amount} + to shipping "
                           f"{on_shipping.amount} = {on_lines + on_shipping}, but "
                           f"{_source(data, 'total_discounts')} is {discounts}")


def _presentment(data: dict) -> tuple[str | None, Money | None]:
    declared = data["presentment_currency"]
    twin = data["total_price_set"]
    money = twin["presentment_money"] if twin else None
    if money is None:
        return declared, None
    if declared and money["currency_code"] != declared:
        raise MappingError(f"total_price_set.presentment_money.currency_code is {money['currency_code']}, "
                           f"but presentment_currency is {declared}")
    return money["currency_code"], Money(money["amount"], money["currency_code"])


# ---- parties, payment, identity -------------------------------------------------------------------


def _blank_to_none(value: str | None) -> str | None:
    return value if value and value.strip() else None


def _opt_id(value: int | None) -> str | None:
    return None if value is None else str(value)


def _customer(data: dict) -> Customer:
    raw = data["customer"]
    if raw is not None:
        return Customer(email=_blank_to_none(raw["email"]) or _blank_to_none(data["email"]),
                        first_name=raw["first_name"] or "", last_name=raw["last_name"] or "",
                        phone=_blank_to_none(raw["phone"]), external_id=str(raw["id"]))
    # Guest checkout: the order and its addresses are all we know about the buyer.
    billing, shipping = data["billing_address"] or {}, data["shipping_address"] or {}
    named = billing or shipping
    phones = (billing.get("phone"), shipping.get("phone"), data["phone"])
    return Customer(email=_blank_to_none(data["email"]) or _blank_to_none(data["contact_email"]),
                    first_name=named.get("first_name") or "", last_name=named.get("last_name") or "",
                    phone=next((p for p in phones if _blank_to_none(p)), None), external_id=None)


def _address(raw: dict | None) -> Address | None:
    if raw is None:
        return None
    text = {key: value or "" for key, value in raw.items()}
    return Address(first_name=text.get("first_name", ""), last_name=text.get("last_name", ""),
                   company=text.get("company", ""), line1=text.get("address1", ""),
                   line2=text.get("address2", ""), city=text.get("city", ""),
                   region=text.get("province_code") or text.get("province", ""),
                   postal_code=text.get("zip", ""), country_code=text.get("country_code", ""),
                   phone=text.get("phone", ""))


_CARD_GATEWAYS = {"shopify_payments", "bogus", "stripe", "braintree", "authorize_net", "adyen",
                  "checkout_com", "worldpay", "square"}


def _payment_method(gateway: str) -> str:
    """Our payment vocabulary from Shopify's free-text gateway name (e.g. "Cash on Delivery (COD)")."""
    words = re.sub(r"[^a-z0-9]+", " ", gateway.lower()).strip()
    if re.search(r"\bcod\b", words) or "cash on delivery" in words:
        return "cod"
    if "paypal" in words:
        return "paypal"
    if words == "gift card":
        return "gift_card"
    if words == "manual":
        return "manual"
    if re.search(r"\bbank\b", words):  # "Bank Deposit", "bank_transfer"
        return "bank_transfer"
    return "card" if words.replace(" ", "_") in _CARD_GATEWAYS else "other"


def _payment(data: dict) -> Payment:
    names = [name for name in data["payment_gateway_names"] or [] if name]
    gateway = names[0] if names else data["gateway"] or ""
    # The webhook carries no transaction, so there is no reference to record yet.
    return Payment(status=data["financial_status"] or "pending", gateway=gateway,
                   method=_payment_method(gateway), transaction_ref=None)


def _number(data: dict) -> str:
    if data["name"]:
        return data["name"]
    if data["order_number"] is not None:
        return str(data["order_number"])
    raise MappingError("name: missing, and there is no order_number to fall back on")


def _order_ref(payload: Any) -> str:
    """How the error message names the order, from whatever the payload still offers."""
    if isinstance(payload, dict):
        name, ident = payload.get("name"), payload.get("id")
        if isinstance(name, str) and name.strip():
            return name.strip()[:40]
        if isinstance(ident, int) and not isinstance(ident, bool) and 0 < ident <= _MAX_ID:
            return f"id {ident}"
    return "(unidentified)"


def _flatten(messages: Any, path: str = "") -> list[str]:
    """marshmallow's nested error dict -> ["line_items[1].price: Not a valid number.", ...]."""
    if isinstance(messages, dict):
        return [msg for key, sub in messages.items() for msg in _flatten(sub, _join(path, key))]
    if isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        return [f"{path or 'payload'}: {' '.join(messages)}"]
    if isinstance(messages, list):
        return [msg for sub in messages for msg in _flatten(sub, path)]
    return [f"{path or 'payload'}: {messages}"]


def _join(path: str, key: Any) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    if key == "_schema":
        return path
    return f"{path}.{key}" if path else str(key)
