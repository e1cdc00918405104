"""A shipment told to a BigCommerce store: one V2 order shipment with its tracking, its lines placed on the
order's products by SKU. The shipment's comments carry the ERP's ref, so an attempt whose answer was lost
is recognised on the next one (by that ref, or by its tracking number) and nothing ships twice."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from platforms.bigcommerce.api import BigCommerceClient
from platforms.operations import StoreProblem
from platforms.shipping import ShipCore, place, wanted


def ship(core: ShipCore, order_id: str, ref: str, shipment: Mapping[str, Any]) -> str:
    client: BigCommerceClient = core.client()
    mark = f"ERP shipment {ref}"
    number = str(shipment.get("tracking_number") or "")
    for made in client.shipments(order_id):
        if mark in str(made.get("comments") or "") or (number and made.get("tracking_number") == number):
            return str(made["id"])  # an earlier attempt's, whose answer was lost
    order = client.order(order_id)
    if order is None:
        raise StoreProblem(f"shipment {ref}: BigCommerce has no order {order_id} any more; nothing to ship")
    units = wanted(shipment)
    if not units:
        raise StoreProblem(f"shipment {ref} has no lines: nothing to ship")
    rows = [
        (p["id"], str(p.get("sku") or ""), int(p["quantity"]) - int(p.get("quantity_shipped") or 0))
        for p in order["products"]
    ]
    items = place(core, ref, f"BigCommerce order {order_id}", units, rows)
    addresses = order.get("shipping_addresses") or []
    if not addresses:
        raise StoreProblem(f"shipment {ref}: BigCommerce order {order_id} has no shipping address to ship to")
    made = client.create_shipment(
        order_id, int(addresses[0]["id"]), items, number, str(shipment.get("carrier") or ""), mark
    )
    return str(made.get("id"))
