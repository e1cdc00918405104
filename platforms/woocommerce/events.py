"""What WooCommerce's webhook topics mean, and how each payload is handed to the core."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mappings import cardnumbers
from platforms import topics
from platforms.base import ORDER, ORDER_DELETED, STOCK, Core, Named, Topic
from platforms.topics import WOO_ORDER_TOPICS
from platforms.woocommerce.api import WooClient
from platforms.woocommerce.mapping import order_from_woocommerce, refund_from_woocommerce

# WooCommerce creates "pending" orders before payment (abandoned at the gateway) and "failed" ones: those
# become ERP orders only once they move on.
IMPORT_STATUSES = ("processing", "on-hold", "completed")


def has_api(settings: Mapping[str, Any], secrets: Mapping[str, str]) -> bool:
    return bool(secrets.get("consumer_key") and secrets.get("consumer_secret") and settings.get("url"))


def check(topic: str, payload: dict, shop_domain: str | None) -> None:
    topics.check("woocommerce", topic, payload, shop_domain)


def _order(core: Core, payload: dict) -> dict:
    order = order_from_woocommerce(payload, core.store)
    result = core.take_order(order, str(payload.get("status")))
    # WooCommerce tells of refunds only by id and total inside the order: fetch each new one.
    refund_ids = [str(r.get("id")) for r in payload.get("refunds") or [] if isinstance(r, dict)]
    if refund_ids and "erp_ref" in result:
        client: WooClient | None = None
        for refund_id in refund_ids:
            if core.credited(order, refund_id):
                continue
            client = client or core.client()
            refund = refund_from_woocommerce(
                # Read by the worker, not through the inbox: its free text (the reason) is masked here.
                cardnumbers.mask_payload(client.get_refund(order.external_id, refund_id))[0],
                payload,
                core.store,
                restock=core.settings.get("restock_refunds") == "always",
            )
            result.setdefault("refunds", []).append(core.take_refund(refund))
    return result


def _dict(value: object) -> dict:
    return value if isinstance(value, dict) else {}


def named_in(topic: str, payload: dict) -> Named:
    """Who a stored payload names, read from the fields that hold people."""
    if topic in WOO_ORDER_TOPICS:
        billing = _dict(payload.get("billing"))
        return Named(
            accounts=(payload.get("customer_id"),),
            orders=(payload.get("id"),),
            emails=(billing.get("email"),),
            phones=(billing.get("phone"), _dict(payload.get("shipping")).get("phone")),
        )
    if topic == "order.deleted":
        return Named(orders=(payload.get("id"),))
    return Named()


def _deleted(core: Core, payload: dict) -> dict:
    return core.cancel_deleted(str(payload.get("id")))


def _product_updated(core: Core, payload: dict) -> dict:
    return core.stock_of_product(
        str(payload.get("id") or ""),
        str(payload.get("sku") or ""),
        payload.get("manage_stock") is True,
        payload.get("stock_quantity"),
    )


TOPICS: dict[str, Topic] = {
    **{topic: Topic(ORDER, _order) for topic in WOO_ORDER_TOPICS},
    "order.deleted": Topic(ORDER_DELETED, _deleted),
    "product.updated": Topic(STOCK, _product_updated),
}
