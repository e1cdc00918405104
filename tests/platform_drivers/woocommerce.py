"""The platform contract suite's WooCommerce: the fake store, signed webhooks, product stock and notes."""

from __future__ import annotations

import re
from collections.abc import Sequence
from decimal import Decimal

from tests.conftest import load_fixture
from tests.stack import WOO_STORE, Stack
from tests.storefronts import configure, fake_woo


class WooDriver:
    platform, slug = "woocommerce", WOO_STORE

    def __init__(self, stack: Stack):
        self.stack, self.woo = stack, fake_woo()
        self.products: dict[str, int] = {}

    def configure(self) -> None:
        configure(self.stack, woo=self.woo, erp={})

    def new_order(self) -> tuple[str, Decimal, Sequence[tuple[str, int]]]:
        fixture = load_fixture("woocommerce", "order_processing_coupon.json")  # a coupon, taxes excluded, shipping
        fixture.pop("id", None)
        order_id = self.woo.add_order(doc=fixture)
        lines = [(li["sku"], li["quantity"]) for li in fixture["line_items"] if li.get("sku")]
        return str(order_id), Decimal(fixture["total"]), lines

    def deliver(self, order_id: str) -> None:
        answer = self.stack.post_woocommerce(self.woo.orders[int(order_id)], topic="order.created")
        assert answer.status_code == 200, answer.get_data(as_text=True)

    def catch_up(self) -> None:
        from connector.sync.reconcile import reconcile_orders
        from tests.storefronts import store_id

        reconcile_orders(self.stack.rt, store_id(self.stack, self.slug))

    def sells(self, sku: str) -> None:
        if sku not in self.products:
            self.products[sku] = self.woo.add_products([sku], stock=0)[0]

    def stock_shown(self, sku: str) -> int | None:
        return self.woo.stock_of(self.products[sku])

    def tracking_shown(self, order_id: str) -> list[str]:
        notes = [n["note"] for n in self.woo.notes[int(order_id)] if n["customer_note"]]
        return [m.group(1) for note in notes if (m := re.search(r"tracking (\S+?)[:.]", note))]

    def stop(self) -> None:
        self.woo.stop()
