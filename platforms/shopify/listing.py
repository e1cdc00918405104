"""Shopify's orders listed by their last change, oldest first (reconciliation and backfill)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from mappings.utc import as_utc
from platforms.shopify.api import ShopifyClient


class ShopifyListing:
    topic = "orders/updated"
    by_id = False

    def changed_since(self, client: ShopifyClient, since: datetime, page_size: int | None) -> Iterator[dict]:
        return client.orders_updated_since(since, limit=page_size or 250)

    def changed_at(self, order: Mapping[str, Any]) -> datetime:
        return as_utc(datetime.fromisoformat(str(order["updated_at"])))  # with the shop's offset

    def dedupe_key(self, order: Mapping[str, Any]) -> str:
        return f"orders/updated|reconcile:{order['id']}:{order['updated_at']}"

    def number(self, order: Mapping[str, Any]) -> str | None:
        return str(order["name"])[:64] if order.get("name") is not None else None
