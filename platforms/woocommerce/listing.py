"""WooCommerce's orders modified after a time, listed by id (reconciliation and backfill)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any

from mappings.utc import as_utc
from platforms.woocommerce.api import WooClient
from platforms.woocommerce.receiver import state_key


class WooListing:
    topic = "order.updated"
    by_id = True

    def changed_since(self, client: WooClient, since: datetime, page_size: int | None) -> Iterator[dict]:
        return client.orders_modified_after(since - timedelta(seconds=1))  # modified_after is exclusive

    def changed_at(self, order: Mapping[str, Any]) -> datetime:
        return as_utc(datetime.fromisoformat(str(order["date_modified_gmt"])))  # GMT, naive

    def dedupe_key(self, order: Mapping[str, Any]) -> str:
        return state_key("order", order)  # exactly the receiver's key

    def number(self, order: Mapping[str, Any]) -> str | None:
        return str(order["number"])[:64] if order.get("number") is not None else None
