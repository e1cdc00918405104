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

from collections.abc import Mapping
from typing import Any, Protocol


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
