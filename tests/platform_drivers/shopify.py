"""The platform contract suite's Shopify: the fake shop, signed webhooks, GraphQL stock and fulfillments."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from tests.conftest import load_fixture
from tests.fakes.shopify import FakeShopify
from tests.stack import STORE, Stack
from tests.storefronts import configure


class ShopifyDriver:
    platform, slug = "shopify", STORE

    def __init__(self, stack: Stack):
        self.stack, self.shop = stack, FakeShopify()
        self.location = self.shop.add_location("Main")

    def configure(self) -> None:
        configure(self.stack, shop=self.shop, erp={})

    def new_order(self) -> tuple[str, Decimal, Sequence[tuple[str, int]]]:
        fixture = load_fixture("shopify", "order_guest.json")  # taxes included, shipping, a guest
        lines = [(li["sku"], li["quantity"]) for li in fixture["line_items"]]
        for sku, _ in lines:
            if sku not in self.shop.by_sku:
                self.shop.add_variants([sku])
        order_id = self.shop.add_order(lines)
        kept = ("id", "admin_graphql_api_id", "name", "order_number", "created_at", "updated_at", "line_items")
        made = self.shop.orders[order_id]
        # The fixture's money and people; the fake's ids, so its fulfillment orders match the lines.
        items = [
            {**fixed, "id": own["id"]} for fixed, own in zip(fixture["line_items"], made["line_items"], strict=True)
        ]
        self.shop.orders[order_id] = {**fixture, **{k: made[k] for k in kept}, "line_items": items}
        return str(order_id), Decimal(fixture["total_price"]), lines

    def deliver(self, order_id: str) -> None:
        answer = self.stack.post_shopify(
            self.shop.orders[int(order_id)], topic="orders/create", event_id=f"ev-{order_id}"
        )
        assert answer.status_code == 200, answer.get_data(as_text=True)

    def catch_up(self) -> None:
        from connector.sync.reconcile import reconcile_orders
        from tests.storefronts import store_id

        reconcile_orders(self.stack.rt, store_id(self.stack, self.slug))

    def sells(self, sku: str) -> None:
        if sku not in self.shop.by_sku:
            self.shop.add_variants([sku], available=0)

    def stock_shown(self, sku: str) -> int | None:
        return self.shop.level(self.shop.variant_by_sku(sku).inventory_item_id, self.location)

    def tracking_shown(self, order_id: str) -> list[str]:
        return [f["tracking_number"] for f in self.shop.fulfillments_of(int(order_id))]

    def stop(self) -> None:
        self.shop.stop()
