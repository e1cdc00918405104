"""The platform contract's shipment seam: how an ERP shipment is told to the store, once.

The core (connector.sync.fulfillment) records each shipment per store before any call and claims it for
each attempt; the platform's `Shipper` makes the store show it (a fulfillment with tracking, a note and
completion, a shipment with tracks) and returns the store's id for what it made. An attempt whose
answer was lost must be recognised on the next one (by the tracking number, or by the shipment ref the
attempt left in the store), so a shipment is never shown twice.

A shipment is the JSON the core keeps of it: {ref, order_ref, warehouse, carrier, tracking_number,
tracking_url, lines: [{sku, quantity}]} (ERP SKUs).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from platforms.operations import StoreProblem


class ShipCore(Protocol):
    """What the core tells a platform's shipper about the store, the order and the run (read once per run)."""

    settings: Mapping[str, Any]  # the store's settings
    notify_customer: bool  # the store setting: whether the store emails the buyer about what we do

    def client(self) -> Any: ...

    def store_skus(self, erp_sku: str) -> set[str]:
        """The store SKUs that sell this ERP SKU (the SKU mapping)."""

    def erp_sku(self, store_sku: str) -> str:
        """The ERP SKU a store SKU sells (the SKU mapping)."""

    def routed_warehouse(self, order_id: str, wanted: Mapping[str, int]) -> str | None:
        """The warehouse the order's lines were routed to (connector.orders.routing), if any."""

    def locations_for(self, warehouse: str) -> list[str]:
        """The store locations that sell from this warehouse (the `location` mapping), mapped ones first."""

    def all_shipped(self, order_id: str, ordered: Mapping[str, int]) -> bool:
        """Whether this order's shipments together cover these quantities (ERP SKU → units ordered)."""


class Shipper(Protocol):
    def __call__(self, core: ShipCore, order_id: str, ref: str, shipment: Mapping[str, Any]) -> str:
        """Make the store show this shipment of its order (`ref`: the ERP's shipment ref); the store's id for
        it. StoreProblem when a person must act; StorefrontError when the store failed."""


def wanted(shipment: Mapping[str, Any]) -> dict[str, int]:
    """ERP SKU → units this shipment carries."""
    found: dict[str, int] = {}
    for line in shipment.get("lines") or []:
        found[line["sku"]] = found.get(line["sku"], 0) + int(line["quantity"])
    return {sku: q for sku, q in found.items() if q > 0}


def place(
    core: ShipCore, ref: str, order_label: str, units: Mapping[str, int], rows: Sequence[tuple[Any, str, int]]
) -> list[tuple[Any, int]]:
    """The shipment's units (ERP SKU → quantity) placed on the order's rows (row id, store SKU, units left to
    ship) by the SKU mapping: [(row id, quantity)]. StoreProblem naming the first SKU the rows cannot hold."""
    left = {row_id: free for row_id, _, free in rows}
    picks: list[tuple[Any, int]] = []
    for sku, quantity in units.items():
        skus, need = core.store_skus(sku), quantity
        for row_id, store_sku, _ in rows:
            take = min(need, left[row_id]) if store_sku in skus else 0
            if take > 0:
                picks.append((row_id, take))
                left[row_id] -= take
                need -= take
        if need:
            raise StoreProblem(
                f"shipment {ref}: {quantity} x {sku} is more than {order_label} has left to ship of that SKU; check "
                "the SKU mapping or whether it was shipped by hand, then run `connector sync-shipments --retry-failed`"
            )
    return picks


def note_text(shipment: Mapping[str, Any]) -> str:
    """How a shipment reads in a note to the buyer."""
    count = sum(int(line["quantity"]) for line in shipment.get("lines") or [])
    text = f"Shipped {count} item(s)"
    if shipment.get("carrier"):
        text += f" via {shipment['carrier']}"
    if shipment.get("tracking_number"):
        text += f", tracking {shipment['tracking_number']}"
    if shipment.get("tracking_url"):
        text += f": {shipment['tracking_url']}"
    return text + ("" if shipment.get("tracking_url") else ".")
