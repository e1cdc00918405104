"""The platform contract suite's BigCommerce: the fake store, thin webhooks with the secret header, absolute
inventory adjustments and V2 shipments."""

from __future__ import annotations

import json
from collections.abc import Sequence
from decimal import Decimal

from connector.base.clients import forget
from connector.setup.config_io import load_config
from platforms.bigcommerce.receiver import SECRET_HEADER
from tests.fakes.bigcommerce import FakeBigCommerce, Line
from tests.stack import Stack

SLUG, SECRET = "bc-store", "bc-webhook-secret-0123456789"


class BigCommerceDriver:
    platform, slug = "bigcommerce", SLUG

    def __init__(self, stack: Stack):
        self.stack, self.store = stack, FakeBigCommerce()
        self.variants: dict[str, int] = {}

    def configure(self) -> None:
        store = {
            "slug": SLUG,
            "platform": "bigcommerce",
            "store_hash": self.store.store_hash,
            "api_url": self.store.url,
            "access_token": self.store.token,
            "webhook_secret": SECRET,
        }
        erp = {"kind": "sql", "url": self.stack.erp_url, "lock_timeout_seconds": 0.2}
        load_config(self.stack.rt, json.dumps({"stores": [store], "erp": erp}))
        forget()

    def new_order(self) -> tuple[str, Decimal, Sequence[tuple[str, int]]]:
        # A coupon, tax on top (8.25%), shipping taxed too, a registered buyer.
        lines = [
            Line("BC-TEE-M", 2, Decimal("19.99"), discount=Decimal("4.00"), tax_rate=Decimal("8.25")),
            Line("BC-MUG", 1, Decimal("12.50"), tax_rate=Decimal("8.25")),
        ]
        oid = self.store.add_order(
            lines, shipping=Decimal("7.95"), shipping_tax_rate=Decimal("8.25"), customer_id=42, coupon="SAVE4"
        )
        return str(oid), Decimal(self.store.orders[oid]["total_inc_tax"]), [(li.sku, li.quantity) for li in lines]

    def deliver(self, order_id: str) -> None:
        body = json.dumps(self.store.thin("store/order/created", int(order_id), created_at=1_700_000_000)).encode()
        headers = {"Content-Type": "application/json", SECRET_HEADER: SECRET}
        answer = self.stack._sent(self.stack.webhooks.post(f"/webhooks/bigcommerce/{SLUG}", data=body, headers=headers))
        assert answer.status_code == 200, answer.get_data(as_text=True)

    def catch_up(self) -> None:
        from connector.sync.reconcile import reconcile_orders
        from tests.storefronts import store_id

        reconcile_orders(self.stack.rt, store_id(self.stack, SLUG))

    def sells(self, sku: str) -> None:
        if sku not in self.variants:
            self.variants[sku] = self.store.add_variant(sku, level=0)

    def stock_shown(self, sku: str) -> int | None:
        return self.store.levels.get((self.variants[sku], self.store.locations[0]["id"]))

    def tracking_shown(self, order_id: str) -> list[str]:
        return [s["tracking_number"] for s in self.store.parts[int(order_id)]["shipments"]]

    def stop(self) -> None:
        self.store.stop()
