"""Magento's orders listed by their last change, oldest first: the only way its orders arrive (Magento Open
Source sends no webhooks), each listed version an event through the same inbox and dedupe."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from mappings.utc import as_utc
from platforms.magento.api import MagentoClient

TOPIC = "order.polled"


def state_key(order: Mapping[str, Any]) -> str:
    """The inbox key of one version of an order: its id and updated_at, which Magento keeps to the second
    only, and what may change within that second (the state after a payment or an invoice, a credit memo,
    a cancellation: several saves of one request)."""
    lines = order.get("items")
    state = [
        order.get("state"),
        order.get("status"),
        order.get("base_grand_total"),
        order.get("base_total_paid"),
        order.get("base_total_refunded"),
        order.get("base_total_canceled"),
        [
            (i.get("item_id"), i.get("qty_ordered"), i.get("qty_refunded"), i.get("qty_canceled"))
            for i in (lines if isinstance(lines, list) else [])
            if isinstance(i, dict)
        ],
    ]
    digest = hashlib.sha256(json.dumps(state, default=str).encode()).hexdigest()[:16]
    return f"order:{order['entity_id']}:{order['updated_at']}:{digest}"


class MagentoListing:
    topic = TOPIC
    by_id = False

    def changed_since(self, client: MagentoClient, since: datetime, page_size: int | None) -> Iterator[dict]:
        for order in client.orders_updated_since(since, page_size):
            # The core names a listed resource by its "id"; a Magento order's is its entity_id.
            yield {**order, "id": order["entity_id"]}

    def changed_at(self, order: Mapping[str, Any]) -> datetime:
        return as_utc(datetime.fromisoformat(str(order["updated_at"])))  # UTC, naive, to the second

    def dedupe_key(self, order: Mapping[str, Any]) -> str:
        return state_key(order)

    def number(self, order: Mapping[str, Any]) -> str | None:
        number = order.get("increment_id")
        return str(number)[:64] if number is not None else None
