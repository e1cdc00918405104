"""The platform contract suite's Magento: the fake store, no webhooks (its orders are polled), MSI source
items and shipments with tracks."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal

from connector.base.clients import forget
from connector.setup.config_io import load_config
from tests.fakes.magento import FakeMagento
from tests.fakes.magento_orders import Line
from tests.stack import Stack

SLUG = "mage-store"


class MagentoDriver:
    platform, slug = "magento", SLUG

    def __init__(self, stack: Stack):
        # The fake's clock starts now: a first poll looks a day back.
        self.stack, self.store = stack, FakeMagento(start=datetime.now(UTC))

    def configure(self) -> None:
        store = {"slug": SLUG, "platform": "magento", "base_url": self.store.url, "access_token": self.store.token}
        erp = {"kind": "sql", "url": self.stack.erp_url, "lock_timeout_seconds": 0.2}
        load_config(self.stack.rt, json.dumps({"stores": [store], "erp": erp}))
        forget()

    def new_order(self) -> tuple[str, Decimal, Sequence[tuple[str, int]]]:
        # 10 % off by a coupon, 19 % VAT on top, taxed shipping, a registered buyer.
        lines = [
            Line("MG-TEE", "20.00", qty=2, tax_rate="19", discount_percent="10"),
            Line("MG-MUG", "12.50", qty=1, tax_rate="19"),
        ]
        order = self.store.add_order(lines, shipping="5.00", shipping_tax_rate="19", coupon="SAVE10")
        total = Decimal(str(order["base_grand_total"]))
        return str(order["entity_id"]), total, [(ln.sku, ln.qty) for ln in lines]

    def deliver(self, order_id: str) -> None:
        self.catch_up()  # Magento tells nobody: the poll finds it

    def catch_up(self) -> None:
        from connector.sync.reconcile import reconcile_orders
        from tests.storefronts import store_id

        reconcile_orders(self.stack.rt, store_id(self.stack, SLUG))

    def sells(self, sku: str) -> None:
        self.store.source_items.setdefault(
            (sku, "default"), {"sku": sku, "source_code": "default", "quantity": 0, "status": 0}
        )

    def stock_shown(self, sku: str) -> int | None:
        found = self.store.source_items.get((sku, "default"))
        return int(found["quantity"]) if found is not None else None

    def tracking_shown(self, order_id: str) -> list[str]:
        return [
            t["track_number"]
            for s in self.store.shipments.values()
            if s["order_id"] == int(order_id)
            for t in s["tracks"]
        ]

    def stop(self) -> None:
        self.store.stop()
