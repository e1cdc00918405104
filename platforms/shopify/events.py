"""What Shopify's webhook topics mean, and how each payload is handed to the core."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from adapters.erp import RetryableErpError
from adapters.storefront import StorefrontError
from mappings.approval import risk_level
from mappings.canonical import Order, Transaction
from platforms import topics
from platforms.base import (
    ORDER,
    ORDER_EDIT,
    PRIVACY,
    REFUND,
    RETURN,
    STOCK,
    UNINSTALL,
    Core,
    Named,
    RiskSource,
    Topic,
    TransactionSource,
)
from platforms.shopify.api import ShopifyClient
from platforms.shopify.mapping import order_edit_summary, order_from_shopify
from platforms.shopify.refunds import refund_from_shopify
from platforms.shopify.returns import return_from_shopify
from platforms.shopify.transactions import transactions_from_shopify
from platforms.topics import SHOPIFY_ORDER_TOPICS, SHOPIFY_RETURN_TOPICS


def has_api(settings: Mapping[str, Any], secrets: Mapping[str, str]) -> bool:
    """An Admin API access token, or the app's client ID and secret to get one (a store may send webhooks
    without either)."""
    return bool(secrets.get("access_token") or uses_app_credentials(settings, secrets))


def uses_app_credentials(settings: Mapping[str, Any], secrets: Mapping[str, str]) -> bool:
    """A store connected with its app's client ID (a setting) and client secret (a secret)."""
    return bool(settings.get("client_id") and secrets.get("client_secret"))


def check(topic: str, payload: dict, shop_domain: str | None) -> None:
    topics.check("shopify", topic, payload, shop_domain)


def _order(core: Core, payload: dict) -> dict:
    order = order_from_shopify(payload, core.store)
    status = str(payload.get("financial_status"))
    if not core.has_api:  # its orders keep one payment for their total, and no risk is read
        return core.take_order(order, status)
    return core.take_order(order, status, _transactions(core, order), _risk(core, order))


def _risk(core: Core, order: Order) -> RiskSource:
    """The order's fraud risk for the approval rules (its webhook carries none)."""
    return lambda: risk_level(core.client().order_risk(order.external_id))


def _transactions(core: Core, order: Order) -> TransactionSource:
    """The order's transactions, read when its payments are due (its webhook carries none)."""

    def read() -> tuple[Transaction, ...]:
        client: ShopifyClient = core.client()
        try:
            body = client.order_transactions(order.external_id)
        except StorefrontError as exc:
            raise StorefrontError(
                f"could not read the transactions of order {order.number} from Shopify to book its payments "
                f"({exc}); the order is in the ERP, its payments follow once Shopify answers",
                exc.retryable,
            ) from None
        return transactions_from_shopify(body, order.currency, order.number)

    return read


def _refund(core: Core, payload: dict) -> dict:
    order_id = str(payload.get("order_id"))
    currency = core.order_currency(order_id)
    if currency is None:
        raise RetryableErpError(
            f"refund of order {order_id} arrived before its order reached the ERP; waiting for the order"
        )
    refund = refund_from_shopify(payload, core.store, currency)
    locations = {line.location_id for line in refund.lines if line.location_id}
    if locations:  # the units go back to a store location: which warehouse?
        warehouse = core.warehouses_of(locations)
        lines = tuple(dataclasses.replace(ln, warehouse=warehouse.get(ln.location_id or "")) for ln in refund.lines)
        refund = dataclasses.replace(refund, lines=lines)
    return core.take_refund(refund)


def _order_edit(core: Core, payload: dict) -> dict:
    """Recorded for people to see: Shopify sends the edited order itself as orders/updated with every edit,
    and that is what the ERP follows (or records, once the ERP has taken the order over)."""
    order_id, changes = order_edit_summary(payload)
    return {
        "erp_ref": core.erp_ref_of(order_id),
        "edits": changes or "no line changes",
        "note": f"order {order_id} was edited in the store; the ERP follows from the order's own update",
    }


AFTER_RETURN = {
    "requested": "the ERP is told nothing until the return is processed into a refund",
    "open": "the goods are on their way back; the credit note follows from the refund",
    "closed": "done in the store; a refund, if any, reached the ERP as a credit note",
    "declined": "nothing comes back",
    "canceled": "nothing comes back",
}


def _return(core: Core, payload: dict) -> dict:
    """Recorded against its order for people to see: a return moves no money or stock until it is
    processed, and that comes as a refund (its credit note, the units restocked where the store says)."""
    notice = return_from_shopify(payload)
    erp_ref, order = core.order_as_taken(notice.order_id)
    skus = {
        str(line.get("external_id")): str(line.get("sku") or line.get("title") or "")
        for line in order.get("lines") or []
        if isinstance(line, dict)
    }
    return {
        "erp_ref": erp_ref,
        "order_number": order.get("number") or None,
        "return": notice.describe(skus),
        "note": f"order {notice.order_id}: return {notice.status}; {AFTER_RETURN[notice.status]}",
    }


def _inventory_level(core: Core, payload: dict) -> dict:
    item, location = payload.get("inventory_item_id"), payload.get("location_id")
    quantity = payload.get("available")
    if item is None or location is None or not isinstance(quantity, int) or isinstance(quantity, bool):
        return {"ignored": True, "note": "not an inventory level with an available quantity"}
    return core.stock_of_item(str(item), str(location), quantity)


def _privacy(request: str, orders_key: str) -> Any:
    return lambda core, payload: core.privacy(request, payload, requested(payload, orders_key))


def _dict(value: object) -> dict:
    return value if isinstance(value, dict) else {}


def requested(payload: dict, orders_key: str) -> Named:
    """The person a privacy request names."""
    customer = _dict(payload.get("customer"))
    return Named(
        accounts=(customer.get("id"),),
        emails=(customer.get("email"),),
        phones=(customer.get("phone"),),
        orders=tuple(payload.get(orders_key) or ()),
    )


def named_in(topic: str, payload: dict) -> Named:
    """Who a stored payload names, read from the fields that hold people (docs/platforms.md#privacy-requests)."""
    if topic in SHOPIFY_ORDER_TOPICS:
        customer = _dict(payload.get("customer"))
        return Named(
            accounts=(customer.get("id"),),
            orders=(payload.get("id"),),
            emails=(payload.get("email"), payload.get("contact_email"), customer.get("email")),
            phones=(
                payload.get("phone"),
                customer.get("phone"),
                _dict(payload.get("billing_address")).get("phone"),
                _dict(payload.get("shipping_address")).get("phone"),
            ),
        )
    if topic == "refunds/create":
        return Named(orders=(payload.get("order_id"),))
    if topic == "orders/edited":
        return Named(orders=(_dict(payload.get("order_edit")).get("order_id"),))
    if topic in SHOPIFY_RETURN_TOPICS:  # the buyer's own words ride on the order
        return Named(orders=(_dict(payload.get("order")).get("id"), payload.get("order_id")))
    return Named()


TOPICS: dict[str, Topic] = {
    **{topic: Topic(ORDER, _order) for topic in SHOPIFY_ORDER_TOPICS},
    "refunds/create": Topic(REFUND, _refund),
    "orders/edited": Topic(ORDER_EDIT, _order_edit),
    **{topic: Topic(RETURN, _return) for topic in SHOPIFY_RETURN_TOPICS},
    "inventory_levels/update": Topic(STOCK, _inventory_level),
    "customers/data_request": Topic(PRIVACY, _privacy("data_request", "orders_requested")),
    "customers/redact": Topic(PRIVACY, _privacy("customers_redact", "orders_to_redact")),
    "shop/redact": Topic(PRIVACY, _privacy("shop_redact", "")),
    "app/uninstalled": Topic(UNINSTALL, lambda core, payload: core.uninstalled(payload)),
}
