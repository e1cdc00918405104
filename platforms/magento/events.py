"""What a polled Magento order means, and how it is handed to the core.

Magento Open Source sends no webhooks: every version of an order the poll lists (platforms/magento/listing.py)
is one `order.polled` event, through the same inbox and dedupe as a webhook would be.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from marshmallow import INCLUDE, Schema, ValidationError, fields

from mappings import cardnumbers
from mappings.errors import MappingError
from platforms.base import ORDER, Core, Named, Topic
from platforms.magento.api import MagentoClient
from platforms.magento.listing import TOPIC
from platforms.magento.mapping import order_from_magento, refund_from_magento

# Magento's order states (the status labels on top of them are the merchant's own, so the state is what the
# import rule reads). pending_payment is an order waiting at an off-site gateway, most never paid;
# payment_review one the gateway or fraud filter holds; canceled one never to be; closed one refunded in
# full before it was ever imported: none of those becomes an ERP order. A "new" order is real: cash on
# delivery, bank transfer and check orders stay new until the merchant invoices them.
STATES = ("new", "pending_payment", "payment_review", "processing", "complete", "closed", "canceled", "holded")
IMPORT_STATUSES = ("new", "processing", "complete", "holded")


def has_api(settings: Mapping[str, Any], secrets: Mapping[str, str]) -> bool:
    return bool(settings.get("base_url") and secrets.get("access_token"))


class _Order(Schema):
    class Meta:
        unknown = INCLUDE

    entity_id = fields.Integer(strict=True, required=True)
    updated_at = fields.String(required=True)
    state = fields.String(required=True)
    base_currency_code = fields.String(required=True)
    items = fields.List(fields.Dict(), required=True)


_SHAPES = {TOPIC: _Order()}


def check(topic: str, payload: dict, shop_domain: str | None) -> None:
    """The polled order's shape, before anything acts on it (MappingError: nothing is done)."""
    schema = _SHAPES.get(topic)
    if schema is None:
        return  # no handler acts on it: recorded as ignored
    try:
        schema.load(payload)
    except ValidationError as exc:
        messages = exc.messages if isinstance(exc.messages, dict) else {"payload": exc.messages}
        problems = "; ".join(f"{name}: {why}" for name, why in list(messages.items())[:5])
        raise MappingError(
            f"this body is not a Magento order as its REST API lists them ({problems}); nothing was done"
        ) from None


def _refunded(payload: dict) -> bool:
    try:
        return Decimal(str(payload.get("base_total_refunded") or 0)) > 0
    except InvalidOperation:
        return False


def _order(core: Core, payload: dict) -> dict:
    order = order_from_magento(payload, core.store)
    result = core.take_order(order, str(payload.get("state")))
    # The listed order tells only how much was refunded: its credit memos are read when there is any.
    if "erp_ref" not in result or not _refunded(payload):
        return result
    client: MagentoClient = core.client()
    for memo in client.creditmemos(order.external_id):
        if core.credited(order, str(memo.get("entity_id"))):
            continue
        # Read by the worker, not through the inbox: its free text (the customer note) is masked here.
        refund = refund_from_magento(cardnumbers.mask_payload(memo)[0], payload, core.store)
        result.setdefault("refunds", []).append(core.take_refund(refund))
    return result


TOPICS: dict[str, Topic] = {TOPIC: Topic(ORDER, _order)}


def named_in(topic: str, payload: dict) -> Named:
    """Who a polled order names: its customer, its e-mail and its addresses' phones."""
    if topic != TOPIC:
        return Named()
    billing = payload.get("billing_address") if isinstance(payload.get("billing_address"), dict) else {}
    assignments = (payload.get("extension_attributes") or {}).get("shipping_assignments") or []
    shipping = ((assignments[0] or {}).get("shipping") or {}).get("address") or {} if assignments else {}
    return Named(
        accounts=(payload.get("customer_id"),),
        orders=(payload.get("entity_id"),),
        emails=(payload.get("customer_email"), (billing or {}).get("email")),
        phones=((billing or {}).get("telephone"), shipping.get("telephone") if isinstance(shipping, dict) else None),
    )
