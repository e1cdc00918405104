"""One driver per storefront platform, so the platform contract suite (tests/test_platform_suite.py) runs
the same promises over every platform, as tests/erp_backends/ does for the ERP back ends.

A driver owns its fake store (tests/fakes/), points a test stack's store at it, and does what the store
or the merchant would: place a realistic order, deliver it (a webhook, or nothing for a store that is
polled), and read back what the connector wrote into the store (stock figures, shipments)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Protocol

DRIVERS = {
    "bigcommerce": "tests.platform_drivers.bigcommerce:BigCommerceDriver",
    "magento": "tests.platform_drivers.magento:MagentoDriver",
    "shopify": "tests.platform_drivers.shopify:ShopifyDriver",
    "woocommerce": "tests.platform_drivers.woocommerce:WooDriver",
}


class Driver(Protocol):
    platform: str
    slug: str

    def configure(self) -> None:
        """Point the stack's store at the fake (and the SQL staging ERP)."""

    def new_order(self) -> tuple[str, Decimal, Sequence[tuple[str, int]]]:
        """A realistic order placed in the store: (its id, its total, its (SKU, quantity) lines)."""

    def deliver(self, order_id: str) -> None:
        """The store tells the connector (its webhook; for a polled store, nothing: the poll finds it)."""

    def catch_up(self) -> None:
        """What finds orders the webhooks missed (reconciliation; for a polled store, the poll)."""

    def sells(self, sku: str) -> None:
        """The store sells this SKU (its stock is the connector's to write)."""

    def stock_shown(self, sku: str) -> int | None:
        """The figure the store shows for the SKU (at its one location)."""

    def tracking_shown(self, order_id: str) -> list[str]:
        """The tracking numbers the store shows on the order."""

    def stop(self) -> None: ...
