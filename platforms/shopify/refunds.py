"""Shopify REST refund JSON (the refunds/create webhook body) -> canonical Refund.

Pure, no I/O, in the style of platforms.shopify.mapping: marshmallow schemas describe only the fields we
read, and anything malformed or inconsistent becomes a MappingError naming the field path. Money
is shop money: every amount comes from its `*_set.shop_money` twin when present (which must be in
the shop currency the caller passes), else from the plain field, and the two must agree.

Shopify semantics relied on (docs/platforms.md#shopify-refunds and the REST Refund resource; the ones marked
UNVERIFIED were not confirmed against a live shop):
- `refund_line_items[].subtotal(_set)` is what is refunded for that line before tax, i.e. after
  its share of discounts (Shopify's own example: price 199.00, allocation 3.33 -> subtotal 195.67);
  `total_tax(_set)` is the tax refunded with it. Plain `subtotal`/`total_tax` are JSON numbers in
  real payloads (195.67), the `_set` twins decimal strings. Prices are taken as tax-exclusive:
  UNVERIFIED for shops with taxes_included, where `subtotal` may already contain the tax; such a
  refund then fails the transaction cross-check below loudly rather than being booked wrongly.
- `restock_type` is one of no_restock, cancel, return, legacy_restock; the last three put units
  back into stock, at the line's `location_id` (a return's restock location).
- Order adjustments are signed from the order's point of view: a shipping refund of 5.00 is
  `amount: "-5.00"`. A `refund_discrepancy` is negative when more was refunded than Shopify
  calculated (an amount-only refund) and positive when less was (UNVERIFIED beyond the doc's
  description "the difference between the calculated and the actual refund"). We negate both, so
  Refund.shipping is positive and Refund.adjustment is positive when more money went back.
  `tax_amount` counts in both (for a discrepancy it is normally 0.00).
- Shipping appears in two shapes. Up to API 2024-07 it is an order adjustment of kind
  `shipping_refund` (amount and tax_amount). From 2024-10 the refunds/create payload drops
  `kind` and leaves shipping out of `order_adjustments` altogether; it is in
  `refund_shipping_lines[].subtotal_amount_set` (plus `tax_amount_set`, which GraphQL's
  RefundShippingLine has but the REST doc does not list: read when present, else 0 -- UNVERIFIED).
  Shopify's own REST example carries BOTH shapes for one shipping refund (-5.00 adjustment and a
  5.00 shipping line), so: when any `shipping_refund` adjustment exists it is the source (it states
  the tax) and the shipping lines must agree with it before tax; otherwise the shipping lines are.
  An adjustment without `kind` is therefore a discrepancy; an unknown kind is an error.
- Transactions of kind `refund` and status `success` are the money that actually moved; pending
  or failed ones and other kinds are ignored. Their `currency` is the presentment currency on
  multi-currency orders, so they are compared with the shop-money total only when every counted
  transaction is in the shop currency; they include any fees given back.
- Duties given back are `duties[]` (`{duty_id, amount_set}`), adding up to `total_duties_set`;
  each becomes a refunded fee of kind `duty`. A refunded tip is a refund line item whose
  `line_item` is a tip line (`tip_payment_gateway`/`tip_payment_method` set, as on the order):
  it becomes a refunded fee of kind `tip`, never goods. Additional fees given back are read from
  `total_additional_fees_set` as one refunded fee (the itemised `additional_fees[]` shape is
  UNVERIFIED, so it is not read).
"""

from __future__ import annotations

import re
from typing import Any

from marshmallow import fields, validate

from mappings.canonical import Money, Refund, RefundFee, RefundLine, money_sum
from mappings.errors import MappingError
from mappings.fields import MAX_ID, Amount, Base, MoneySet, Timestamp, blank_to_none, ident, list_of, load, opt
from mappings.fields import currency as iso_currency
from platforms.shopify.mapping import fee_parts, money_at, priced

_RESTOCKING = frozenset({"return", "cancel", "legacy_restock"})
_RESTOCK_TYPES = ("no_restock", *sorted(_RESTOCKING))
_SHIPPING, _DISCREPANCY = "shipping_refund", "refund_discrepancy"


def _signed(name: str) -> dict[str, fields.Field]:
    """An order adjustment amount ("-5.00") and its `*_set` twin."""
    return {name: opt(Amount, signed=True), f"{name}_set": opt(MoneySet, signed=True)}


_RefundedItem = Base.from_dict(
    {"id": opt(ident), "sku": opt(), "title": opt(), "tip_payment_gateway": opt(), "tip_payment_method": opt()},
    name="_RefundedItem",
)
# Shopify writes a duty's id as a number here and as a string on the order's line item.
_RefundDuty = Base.from_dict(
    {"duty_id": fields.Raw(load_default=None, allow_none=True), "amount_set": MoneySet(required=True)},
    name="_RefundDuty",
)
_RefundLineItem = Base.from_dict(
    {
        "id": opt(ident),
        "line_item_id": ident(required=True),
        "quantity": fields.Integer(required=True, strict=True, validate=validate.Range(min=0, max=10**6)),
        "restock_type": fields.String(required=True, validate=validate.OneOf(_RESTOCK_TYPES)),
        "location_id": opt(ident),
        **priced("subtotal"),
        **priced("total_tax"),
        "line_item": opt(fields.Nested, nested=_RefundedItem),
    },
    name="_RefundLineItem",
)
_OrderAdjustment = Base.from_dict(
    {
        "id": opt(ident),
        "kind": opt(validate=validate.OneOf((_SHIPPING, _DISCREPANCY))),
        "reason": opt(),
        **_signed("amount"),
        **_signed("tax_amount"),
    },
    name="_OrderAdjustment",
)
_RefundShippingLine = Base.from_dict(
    {
        "id": opt(ident),
        "shipping_line_id": opt(ident),
        **priced("subtotal_amount"),
        **priced("tax_amount"),
    },
    name="_RefundShippingLine",
)
_Transaction = Base.from_dict(
    {
        "id": opt(ident),
        "kind": opt(),
        "status": opt(),
        "amount": Amount(required=True),
        "currency": opt(iso_currency),
        "gateway": opt(),
        "parent_id": opt(ident),
    },
    name="_Transaction",
)
_ShopifyRefund = Base.from_dict(
    {
        "id": ident(required=True),
        "order_id": ident(required=True),
        "created_at": Timestamp(required=True),
        "processed_at": opt(Timestamp),
        "note": opt(),
        "refund_line_items": list_of(_RefundLineItem),
        "transactions": list_of(_Transaction),
        "order_adjustments": list_of(_OrderAdjustment),
        "refund_shipping_lines": list_of(_RefundShippingLine),
        "duties": list_of(_RefundDuty),
        "total_duties_set": opt(MoneySet),
        "total_additional_fees_set": opt(MoneySet),
    },
    name="_ShopifyRefund",
)
_SCHEMA = _ShopifyRefund()  # built once, as in platforms.shopify.mapping


# ---- mapping ---------------------------------------------------------------------------------------


def refund_from_shopify(payload: dict, store: str, currency: str) -> Refund:
    """Map one refunds/create body to the canonical Refund, or raise MappingError saying why not.

    `currency` is the order's shop currency (from the stored order): the refund payload does not
    state it, and every shop_money amount must be in it.
    """
    if not (isinstance(currency, str) and re.fullmatch(r"[A-Z]{3}", currency)):
        raise ValueError(f"currency must be the order's ISO 4217 shop currency, got {currency!r}")
    try:
        return _refund(load(_SCHEMA, payload, "a Shopify refund"), store, currency)
    except MappingError as exc:
        raise MappingError(f"Shopify refund {_refund_ref(payload)}: {exc}") from None


def _refund(data: dict, store: str, cur: str) -> Refund:
    items = list(enumerate(data["refund_line_items"] or []))
    lines = tuple(_line(i, raw, cur) for i, raw in items if not _is_tip(raw))
    fees = (*(_tip(i, raw, cur) for i, raw in items if _is_tip(raw)), *_duties(data, cur), *_additional_fees(data, cur))
    adjustments = data["order_adjustments"] or []
    shipping = _shipping(adjustments, data["refund_shipping_lines"] or [], cur)
    adjustment = Money.zero(cur) - money_sum(
        [_adjustment_total(i, raw, cur) for i, raw in enumerate(adjustments) if raw["kind"] != _SHIPPING], cur
    )
    subtotal = money_sum([line.subtotal for line in lines], cur)
    tax = money_sum([line.tax for line in lines], cur)
    total = subtotal + tax + shipping + money_sum([f.total for f in fees], cur) + adjustment
    breakdown = (
        f"lines {subtotal.amount} + tax {tax.amount} + shipping {shipping.amount} "
        + "".join(f"+ {label} {amount.amount} " for label, amount in fee_parts(fees, lambda f: f.total, cur))
        + f"+ adjustment {adjustment.amount} = {total}"
    )
    if total.amount < 0:
        raise MappingError(f"refund total is negative: {breakdown}")
    _check_transactions(data["transactions"] or [], total, breakdown)
    return Refund(
        source="shopify",
        store=store,
        order_external_id=str(data["order_id"]),
        external_id=str(data["id"]),
        created_at=data["processed_at"] or data["created_at"],
        currency=cur,
        lines=lines,
        shipping=shipping,
        adjustment=adjustment,
        total=total,
        reason=data["note"] or "",
        fees=fees,
    )


def _additional_fees(data: dict, cur: str) -> tuple[RefundFee, ...]:
    if data["total_additional_fees_set"] is None:
        return ()
    amount = money_at(data, "total_additional_fees", cur, "")
    return (
        (RefundFee(kind="additional_fee", title="Additional fees refunded", amount=amount, tax=Money.zero(cur)),)
        if amount.amount
        else ()
    )


def _is_tip(raw: dict) -> bool:
    item = raw["line_item"] or {}
    return bool(item.get("tip_payment_gateway") or item.get("tip_payment_method"))


def _tip(index: int, raw: dict, cur: str) -> RefundFee:
    """A tip line given back: money owed to staff, not goods, so it never restocks anything."""
    path = f"refund_line_items[{index}]."
    return RefundFee(
        kind="tip",
        title=(raw["line_item"] or {}).get("title") or "Tip",
        amount=money_at(raw, "subtotal", cur, path),
        tax=money_at(raw, "total_tax", cur, path),
        source_line_id=str(raw["line_item_id"]),
    )


def _duties(data: dict, cur: str) -> tuple[RefundFee, ...]:
    duties = []
    for i, raw in enumerate(data["duties"] or []):
        shop = raw["amount_set"]["shop_money"]
        if shop["currency_code"] != cur:
            raise MappingError(
                f"duties[{i}].amount_set.shop_money.currency_code is {shop['currency_code']}, "
                f"but the shop currency is {cur}"
            )
        if shop["amount"]:
            duty_id = str(raw["duty_id"])[:40] if isinstance(raw["duty_id"], (int, str)) else ""
            title = f"Duty refunded (duty {duty_id})" if duty_id else "Duty refunded"
            duties.append(RefundFee(kind="duty", title=title, amount=Money(shop["amount"], cur), tax=Money.zero(cur)))
    if data["total_duties_set"] is None:
        return tuple(duties)
    declared = money_at(data, "total_duties", cur, "")
    itemised = money_sum([d.amount for d in duties], cur)
    if not duties and declared.amount:  # only the total came: one line for all of it
        return (RefundFee(kind="duty", title="Duties refunded", amount=declared, tax=Money.zero(cur)),)
    if itemised != declared:
        raise MappingError(
            f"refunded duties do not reconcile: duties[] add up to {itemised}, "
            f"but total_duties_set.shop_money is {declared}"
        )
    return tuple(duties)


def _line(index: int, raw: dict, cur: str) -> RefundLine:
    path = f"refund_line_items[{index}]."
    item = raw["line_item"] or {}
    if item.get("id") is not None and item["id"] != raw["line_item_id"]:
        raise MappingError(f"{path}line_item.id is {item['id']}, but line_item_id is {raw['line_item_id']}")
    return RefundLine(
        line_external_id=str(raw["line_item_id"]),
        sku=blank_to_none(item.get("sku")),
        quantity=raw["quantity"],
        subtotal=money_at(raw, "subtotal", cur, path),
        tax=money_at(raw, "total_tax", cur, path),
        restock=raw["restock_type"] in _RESTOCKING,
        location_id=str(raw["location_id"]) if raw["restock_type"] in _RESTOCKING and raw["location_id"] else None,
    )


def _adjustment_total(index: int, raw: dict, cur: str) -> Money:
    """amount + tax_amount of one order adjustment, signed as Shopify writes it."""
    path = f"order_adjustments[{index}]."
    return money_at(raw, "amount", cur, path) + money_at(raw, "tax_amount", cur, path, required=False)


def _shipping(adjustments: list[dict], shipping_lines: list[dict], cur: str) -> Money:
    """Refunded shipping including its tax, positive; see the module docstring for the two shapes."""
    from_lines = [
        (
            money_at(raw, "subtotal_amount", cur, f"refund_shipping_lines[{i}]."),
            money_at(raw, "tax_amount", cur, f"refund_shipping_lines[{i}].", required=False),
        )
        for i, raw in enumerate(shipping_lines)
    ]
    if not any(raw["kind"] == _SHIPPING for raw in adjustments):
        return money_sum([subtotal + tax for subtotal, tax in from_lines], cur)
    before_tax, total = Money.zero(cur), Money.zero(cur)
    for i, raw in enumerate(adjustments):
        if raw["kind"] != _SHIPPING:
            continue
        path = f"order_adjustments[{i}]."
        for name in ("amount", "tax_amount"):
            value = money_at(raw, name, cur, path, required=name == "amount")
            if value.amount > 0:
                raise MappingError(
                    f"{path}{name} is {value.amount}, but a shipping_refund adjustment is "
                    f"negative (the shipping refunded, from the order's point of view)"
                )
        before_tax = before_tax - money_at(raw, "amount", cur, path)
        total = total - _adjustment_total(i, raw, cur)
    if from_lines:
        stated = money_sum([subtotal for subtotal, _ in from_lines], cur)
        if stated != before_tax:
            raise MappingError(
                f"shipping refund described twice and differently: refund_shipping_lines subtotals "
                f"add up to {stated}, shipping_refund adjustments to {before_tax} (before tax)"
            )
    return total


def _check_transactions(transactions: list[dict], total: Money, breakdown: str) -> None:
    """The refund must equal the money that moved, when the transactions say so in shop currency."""
    moved = [t for t in transactions if t["kind"] == "refund" and t["status"] == "success"]
    if not moved or any(t["currency"] != total.currency for t in moved):
        return  # nothing moved (restock only, or still pending), or in another currency
    paid = money_sum([Money(t["amount"], total.currency) for t in moved], total.currency)
    if paid != total:
        raise MappingError(
            f"refund does not reconcile: {breakdown}, but its successful refund transactions add up to {paid}"
        )


def _refund_ref(payload: Any) -> str:
    """How an error message names the refund, from whatever the payload still offers."""

    def valid(value: Any) -> bool:
        return type(value) is int and 0 < value <= MAX_ID

    refund_id = payload.get("id") if isinstance(payload, dict) else None
    order = payload.get("order_id") if isinstance(payload, dict) else None
    name = f"id {refund_id}" if valid(refund_id) else "(unidentified)"
    return f"{name} of order id {order}" if valid(order) else name
