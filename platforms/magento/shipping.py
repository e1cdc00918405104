"""A shipment told to a Magento store: `POST /V1/order/{id}/ship` with its items and tracks. Magento's ship
is not idempotent, so the shipment carries the ERP's ref in a comment, and the order's shipments are read
first: one whose comment carries the ref is ours from an attempt whose answer was lost."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from platforms.magento.api import MagentoClient
from platforms.operations import StoreProblem
from platforms.shipping import ShipCore, wanted


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
    rows = [i for i in order.get("items") or [] if not i.get("parent_item_id")]
    left = {
        i["item_id"]: int(
            float(i.get("qty_ordered") or 0) - float(i.get("qty_shipped") or 0) - float(i.get("qty_canceled") or 0)
        )
        for i in rows
    }
    items: list[tuple[int | str, int]] = []
    for sku, quantity in units.items():
        skus, need = core.store_skus(sku), quantity
        for row in rows:
            take = min(need, left[row["item_id"]]) if row.get("sku") in skus else 0
            if take > 0:
                items.append((row["item_id"], take))
                left[row["item_id"]] -= take
                need -= take
        if need:
            raise StoreProblem(
                f"shipment {ref}: {quantity} x {sku} is more than Magento order {order_id} has left to ship of that "
                "SKU; check the SKU mapping or whether it was shipped by hand, then run "
                "`connector sync-shipments --retry-failed`"
            )
    number = str(shipment.get("tracking_number") or "")
    carrier = str(shipment.get("carrier") or "")
    tracks = [(number, carrier or "Tracking", "custom")] if number else []
    made = client.ship(order_id, items, tracks, comment=mark, notify=core.notify_customer)
    return str(made)
