"""What BigCommerce's webhook scopes mean. Its webhooks carry only ids, so an order's handler reads the order
(and its refunds) from the API; an order listed by reconciliation comes whole."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mappings.canonical import Order
from mappings.errors import MappingError
from platforms.base import ORDER, ORDER_DELETED, UNINSTALL, Core, Named, Topic
from platforms.bigcommerce.api import BigCommerceClient
from platforms.bigcommerce.mapping import order_from_bigcommerce, refund_from_bigcommerce

ORDER_SCOPES = ("store/order/created", "store/order/updated", "store/order/statusUpdated")
# The statuses of real orders (a checkout that was not finished is Incomplete or Pending; one held for a
# fraud review is Manual Verification Required until a person clears it).
IMPORT_STATUSES = (
    "Awaiting Payment",
    "Awaiting Fulfillment",
    "Awaiting Shipment",
    "Awaiting Pickup",
    "Partially Shipped",
    "Shipped",
    "Completed",
    "Partially Refunded",
)


def has_api(settings: Mapping[str, Any], secrets: Mapping[str, str]) -> bool:
    return bool(settings.get("store_hash") and secrets.get("access_token"))


def _thin_id(payload: Mapping[str, Any]) -> str | None:
    data = payload.get("data")
    if isinstance(data, dict) and isinstance(data.get("id"), int) and not isinstance(data.get("id"), bool):
        return str(data["id"])
    return None


def _whole(payload: Mapping[str, Any]) -> bool:
    return isinstance(payload.get("id"), int) and "total_inc_tax" in payload


def check(topic: str, payload: dict, shop_domain: str | None) -> None:
    if _whole(payload):
        return
    if payload.get("scope") != topic or _thin_id(payload) is None:
        raise MappingError(
            f"this body is not a BigCommerce {topic} webhook (a scope naming its topic and data.id); nothing was done"
        )


def to_order(payload: object, store: str) -> Order:
    """A listed order as canonical; a webhook carries only the order's id (read when the event is processed)."""
    if isinstance(payload, dict) and not _whole(payload) and _thin_id(payload) is not None:
        raise MappingError(
            f"a BigCommerce webhook carries only order {_thin_id(payload)}'s id: the order is read from the store "
            "when the event is processed"
        )
    return order_from_bigcommerce(payload, store)


def _order(core: Core, payload: dict) -> dict:
    client: BigCommerceClient = core.client()
    raw = payload if _whole(payload) else client.order(_thin_id(payload) or "")
    if raw is None:
        return {"ignored": True, "note": f"order {_thin_id(payload)} is no longer in the store"}
    order = order_from_bigcommerce(raw, core.store)
    result = core.take_order(order, str(raw.get("status") or ""))
    if "erp_ref" in result and str(raw.get("payment_status") or "").lower() in ("partially refunded", "refunded"):
        for refund in client.refunds(order.external_id):
            if core.credited(order, str(refund.get("id"))):
                continue
            taken = refund_from_bigcommerce(
                refund, raw, core.store, restock=core.settings.get("restock_refunds") == "always"
            )
            result.setdefault("refunds", []).append(core.take_refund(taken))
    return result


def _archived(core: Core, payload: dict) -> dict:
    return core.cancel_deleted(_thin_id(payload) or "")


def named_in(topic: str, payload: dict) -> Named:
    """A thin webhook names only an order; a listed order names its buyer too."""
    if _whole(payload):
        found = payload.get("billing_address")
        billing: dict = found if isinstance(found, dict) else {}
        return Named(
            accounts=(payload.get("customer_id"),),
            orders=(payload.get("id"),),
            emails=(billing.get("email"),),
            phones=(billing.get("phone"),),
        )
    return Named(orders=(_thin_id(payload),)) if topic.startswith("store/order/") else Named()


TOPICS: dict[str, Topic] = {
    **{scope: Topic(ORDER, _order) for scope in ORDER_SCOPES},
    "store/order/archived": Topic(ORDER_DELETED, _archived),
    "store/app/uninstalled": Topic(UNINSTALL, lambda core, payload: core.uninstalled(payload)),
}
