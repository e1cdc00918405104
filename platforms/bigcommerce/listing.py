"""BigCommerce's orders modified since a time, oldest change first (reconciliation and backfill)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

from mappings.utc import as_utc
from platforms.bigcommerce.api import BigCommerceClient


class BigCommerceListing:
    topic = "store/order/updated"
    by_id = False

    def changed_since(self, client: BigCommerceClient, since: datetime, page_size: int | None) -> Iterator[dict]:
        return client.orders_modified_since(since, page_size)

    def changed_at(self, order: Mapping[str, Any]) -> datetime:
        return as_utc(parsedate_to_datetime(str(order["date_modified"])))

    def dedupe_key(self, order: Mapping[str, Any]) -> str:
        # date_modified is to the second; the status and refunded amount tell two changes in one second apart.
        return f"order:{order['id']}:{order['date_modified']}:{order.get('status_id')}:{order.get('refunded_amount')}"

    def number(self, order: Mapping[str, Any]) -> str | None:
        return str(order["id"])[:64]
