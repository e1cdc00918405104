"""Shopify's webhook subscriptions (GraphQL webhookSubscriptions), the app scopes each feature needs, and
what "test connection" reads."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from platforms.topics import SHOPIFY_RETURN_TOPICS
from platforms.webhooks import Connection, call, short_id

TOPICS = (
    "orders/create",
    "orders/updated",
    "orders/paid",
    "orders/cancelled",
    "refunds/create",
    "orders/edited",  # what an edit changed, for people to see (the order itself comes as an update)
    *SHOPIFY_RETURN_TOPICS,  # returns on their way back, for people to see (the money comes as a refund)
    "inventory_levels/update",  # the store's own stock changes: see connector.orders.reported
    "app/uninstalled",  # the store disconnects: connector.orders.disconnect
)
# Topics Shopify lets an app subscribe to only with a scope beyond the orders' own.
TOPIC_SCOPES = dict.fromkeys(SHOPIFY_RETURN_TOPICS, "read_returns")

# The access scopes each feature needs.
SCOPES: dict[str, tuple[str, ...]] = {
    "orders": ("read_orders", "read_customers"),
    "returns": ("read_returns",),  # returns/* webhooks: what is on its way back, and why
    "inventory": ("read_products", "read_inventory", "write_inventory", "read_locations"),
    "fulfillment": ("read_merchant_managed_fulfillment_orders", "write_merchant_managed_fulfillment_orders"),
    "receipts": ("write_orders",),  # orderMarkAsPaid, when finance records COD and bank-transfer money in the ERP
    "undelivered": ("write_orders",),  # orderCancel, when the ERP records a parcel returned undelivered
}
ALL_SCOPES = tuple(dict.fromkeys(scope for scopes in SCOPES.values() for scope in scopes))


class ShopifySubscriptions:
    topics: tuple[str, ...] = TOPICS

    def hooks(self, client: Any) -> list[dict]:
        return [
            {"id": h.get("id"), "topic": h.get("topic"), "address": h.get("address"), "status": "active"}
            for h in call(client, "webhooks")() or []
        ]

    def ungranted(self, client: Any) -> dict[str, str]:
        granted = set(call(client, "granted_scopes")())
        return {topic: scope for topic, scope in TOPIC_SCOPES.items() if scope not in granted}

    def create(self, client: Any, topic: str, address: str, secrets: Mapping[str, str]) -> None:
        call(client, "create_webhook")(topic, address)  # signed with the app's secret: nothing to give

    def delete(self, client: Any, hook_id: str) -> None:
        call(client, "delete_webhook")(hook_id)


def test_connection(client: Any, settings: Mapping[str, Any]) -> Connection:
    locations = call(client, "locations")()
    names = ", ".join(f"{loc.get('name')} ({short_id(loc.get('id'))})" for loc in locations[:10])
    more = f" and {len(locations) - 10} more" if len(locations) > 10 else ""
    return Connection(
        f"Connected to {settings.get('shop_domain')}: the token reads "
        f"{len(locations)} location(s){': ' + names + more if names else ''}.",
        call(client, "granted_scopes")(),
    )
