"""A shipment told to a Magento store: `POST /V1/order/{id}/ship` with its items and tracks. Magento's ship
is not idempotent, so the shipment carries the ERP's ref in a comment, and the order's shipments are read
first: one whose comment carries the ref is ours from an attempt whose answer was lost."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from platforms.magento.api import MagentoClient
from platforms.operations import StoreProblem
from platforms.shipping import ShipCore, place, wanted


def ship(core: ShipCore, order_id: str, ref: str, shipment: Mapping[str, Any]) -> str:
    client: MagentoClient = core.client()
    mark = f"ERP shipment {ref}"
    found = client.find_shipment(order_id, mark)
    if found is not None:
        return str(found.get("entity_id"))
    order = client.order(order_id)
    if order is None:
        raise StoreProblem(f"shipment {ref}: Magento has no order {order_id} any more; nothing to ship")
    units = wanted(shipment)
    if not units:
        raise StoreProblem(f"shipment {ref} has no lines: nothing to ship")
    # The shippable rows: a configurable's parent row carries the child's SKU; its child row is not shipped.
    rows = [
        (i["item_id"], str(i.get("sku") or ""), _left(i))
        for i in order.get("items") or []
        if not i.get("parent_item_id")
    ]
    items = place(core, ref, f"Magento order {order_id}", units, rows)
    number = str(shipment.get("tracking_number") or "")
    carrier = str(shipment.get("carrier") or "")
    tracks = [(number, carrier or "Tracking", "custom")] if number else []
    made = client.ship(order_id, items, tracks, comment=mark, notify=core.notify_customer)
    return str(made)


def _left(item: Mapping[str, Any]) -> int:
    """Units of an order row still to ship."""
    return int(
        float(item.get("qty_ordered") or 0) - float(item.get("qty_shipped") or 0) - float(item.get("qty_canceled") or 0)
    )
