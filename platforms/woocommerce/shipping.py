"""A shipment told to a WooCommerce store: a note to the buyer, and completion once everything has shipped.

A customer note "Shipped N item(s) via CARRIER, tracking NUMBER: URL" for every shipment, and status
`completed` once the order's shipments together cover every line's quantity (lines without a SKU, such
as a gift wrap fee entered as a product, do not hold completion back).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from platforms.shipping import ShipCore, note_text
from platforms.woocommerce.api import WooClient

FINAL_STATUSES = {"completed", "cancelled", "refunded", "failed", "trash"}


def ship(core: ShipCore, order_id: str, ref: str, shipment: Mapping[str, Any]) -> str:
    client: WooClient = core.client()
    order = client.order(order_id)  # a deleted order fails here, before any note
    note = client.add_note(order_id, note_text(shipment), customer_note=True)
    if order.get("status") not in FINAL_STATUSES and core.all_shipped(order_id, _ordered(core, order)):
        client.complete_order(order_id)
    return str(note.get("id"))


def _ordered(core: ShipCore, order: dict) -> Counter[str]:
    """ERP SKU → units the order holds."""
    ordered: Counter[str] = Counter()
    for line in order.get("line_items") or []:
        if line.get("sku"):
            ordered[core.erp_sku(line["sku"])] += int(line.get("quantity") or 0)
    return ordered
