"""A shipment told to a Shopify store: one fulfillment with its tracking.

The order's fulfillment orders are read and the shipment's lines (SKU, quantity) are placed on their open
line items, preferring the fulfillment orders whose location sells from the shipment's warehouse (the
`location` mapping; a shipment naming none: the warehouse the order was routed to) and keeping to one
location, as one fulfillment must. One `fulfillmentCreate` per shipment, with its tracking (company,
number, url) and `notifyCustomer` from the store setting. fulfillmentCreate has no idempotency key; an
attempt whose answer was lost is recognised next time by the tracking number.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from platforms.operations import StoreProblem
from platforms.shipping import ShipCore, wanted
from platforms.shopify.api import ShopifyClient

OPEN_FO = {"OPEN", "IN_PROGRESS"}


def ship(core: ShipCore, order_id: str, ref: str, shipment: Mapping[str, Any]) -> str:
    client: ShopifyClient = core.client()
    units = wanted(shipment)
    if not units:
        raise StoreProblem(f"shipment {ref} has no lines: nothing to fulfil")
    candidates = {sku: core.store_skus(sku) for sku in units}
    every_fo = client.fulfillment_orders(order_id)
    fos = [fo for fo in every_fo if fo["status"] in OPEN_FO]
    at: dict[str, list[dict]] = {}
    for fo in fos:
        at.setdefault(_number(fo["location_id"] or ""), []).append(fo)
    preferred: list[str] = []
    # A shipment naming no warehouse left the one the order was routed to, if any.
    warehouse = shipment.get("warehouse") or core.routed_warehouse(order_id, units)
    if warehouse and len(at) > 1:  # only worth asking the store when there is a choice
        preferred = [loc for loc in core.locations_for(warehouse) if loc in at]
    for loc in preferred + [loc for loc in at if loc not in preferred]:
        picks = _allocate(at[loc], units, candidates)
        if picks is not None:
            tracking = (
                shipment.get("carrier") or None,
                shipment.get("tracking_number") or None,
                shipment.get("tracking_url") or None,
            )
            made = client.create_fulfillment(picks, tracking, notify_customer=core.notify_customer, ref=ref)
            return str(made["id"])
    number = shipment.get("tracking_number")
    if number and every_fo:  # a previous attempt whose answer was lost may have made it
        existing = client.existing_fulfillment(every_fo[0]["id"], number)
        if existing is not None:
            return str(existing["id"])
    open_lines = {li["sku"]: li["remaining"] for fo in fos for li in fo["line_items"] if li["remaining"]}
    raise StoreProblem(
        f"shipment {ref}: Shopify order {order_id} has no open fulfillment order at one "
        f"location holding {', '.join(f'{q} x {s}' for s, q in units.items())} (still to fulfil: "
        f"{', '.join(f'{q} x {s}' for s, q in open_lines.items()) or 'nothing'}). Check the SKU mapping, whether "
        "the order was fulfilled by hand, or move its fulfillment orders to one location; then run "
        "`connector sync-shipments --retry-failed`"
    )


def _number(value: str) -> str:
    return str(value).rsplit("/", 1)[-1]


def _allocate(
    fos: list[dict], units: dict[str, int], candidates: dict[str, set[str]]
) -> list[tuple[str, list[tuple[str, int]]]] | None:
    """Place every shipment line on these fulfillment orders' open line items, or None if they cannot
    hold it all."""
    used: Counter[str] = Counter()
    picks: dict[str, list[tuple[str, int]]] = {}
    for sku, quantity in units.items():
        need = quantity
        for fo in fos:
            for li in fo["line_items"]:
                free = li["remaining"] - used[li["id"]]
                if need and free > 0 and (li.get("sku") or "") in candidates[sku]:
                    take = min(need, free)
                    used[li["id"]] += take
                    picks.setdefault(fo["id"], []).append((li["id"], take))
                    need -= take
        if need:
            return None
    return list(picks.items())
