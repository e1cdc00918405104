"""Shopify REST order transactions (GET orders/{id}/transactions.json?in_shop_currency=true) -> Transactions.

Pure, no I/O, in the style of platforms.shopify.mapping. An order webhook carries no transactions, so the
connector reads them from the Admin API when an order becomes paid (connector.orders.pipeline); a split
tender (a gift card plus a card) is two transactions there, one per gateway.

Shopify semantics relied on (shopify.dev, REST Admin API, Transaction resource, 2026-01):
- `kind` is authorization, capture, sale, void or refund; `status` is success, pending, failure or
  error. Only successful sales and captures move money to the merchant (Order.received).
- "Transactions attached to multi-currency orders are in the presentment currency by default. To
  retrieve transactions in the shop currency, include the URL parameter in_shop_currency=true." A
  REST transaction has no `amount_set`: `amount` and `currency` are the only figures, so the client
  asks for shop currency and we refuse a transaction in any other currency rather than book it
  converted by guess.
- `authorization` is "the authorization code associated with the transaction" (e.g. a Stripe
  charge id `ch_…`): the processor's reference finance matches on. Gift cards pay through the
  gateway `gift_card` (Shopify's own refund examples) and may have no authorization.
- An order has at most 100 transactions, so one call returns them all (no pagination).
"""

from __future__ import annotations

from typing import Any

from marshmallow import fields

from mappings import payloads
from mappings.canonical import Money, Transaction
from mappings.errors import MappingError
from mappings.fields import Amount as _Amount
from mappings.fields import Base as _Base
from mappings.fields import Timestamp as _Timestamp
from mappings.fields import currency as _currency
from mappings.fields import ident as _id
from mappings.fields import load as _load
from mappings.fields import opt as _opt
from platforms.shopify.mapping import payment_method  # one gateway vocabulary for orders and transactions

_Transaction = _Base.from_dict(
    {
        "id": _id(required=True),
        "kind": fields.String(required=True),
        "status": fields.String(required=True),
        "gateway": _opt(),
        "amount": _Amount(required=True),
        "currency": _currency(required=True),
        "authorization": _opt(),
        "parent_id": _opt(_id),
        "processed_at": _opt(_Timestamp),
        "created_at": _opt(_Timestamp),
    },
    name="_Transaction",
)
_Transactions = _Base.from_dict(
    {"transactions": fields.List(fields.Nested(_Transaction), required=True)}, name="_Transactions"
)
_SCHEMA = _Transactions()


def transactions_from_shopify(payload: Any, shop_currency: str, order_ref: str) -> tuple[Transaction, ...]:
    """Map the body of GET orders/{id}/transactions.json (asked in shop currency), or raise MappingError.

    `order_ref` names the order in the message (e.g. "#1001"), since a person finds it by that."""
    # Read from the Admin API, not a stored webhook: the same refusal of NULs and absurd depth as a body.
    found = payloads.problem(payload)
    if found:
        raise MappingError(f"Shopify transactions of order {order_ref}: {found}")
    try:
        data = _load(_SCHEMA, payload, "Shopify order transactions")
    except MappingError as exc:
        raise MappingError(f"Shopify transactions of order {order_ref}: {exc}") from None
    return tuple(_transaction(i, raw, shop_currency, order_ref) for i, raw in enumerate(data["transactions"]))


def _transaction(index: int, raw: dict, shop_currency: str, order_ref: str) -> Transaction:
    if raw["currency"] != shop_currency:
        raise MappingError(
            f"Shopify transaction {raw['id']} of order {order_ref} (transactions[{index}]) is in {raw['currency']}, "
            f"not the shop currency {shop_currency}, although it was asked for in shop currency: nothing was "
            "booked; check the order's payments in the Shopify admin, then retry"
        )
    gateway = raw["gateway"] or ""
    return Transaction(
        external_id=str(raw["id"]),
        kind=raw["kind"],
        status=raw["status"],
        gateway=gateway,
        method=payment_method(gateway),
        amount=Money(raw["amount"], shop_currency),
        reference=(raw["authorization"] or "").strip() or None,
        processed_at=raw["processed_at"] or raw["created_at"],
        parent_id=None if raw["parent_id"] is None else str(raw["parent_id"]),
    )
