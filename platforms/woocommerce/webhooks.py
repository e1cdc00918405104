"""WooCommerce's webhooks (REST `webhooks`, each signed with the secret we give it), and what "test
connection" reads."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adapters.storefront import StorefrontError
from platforms.webhooks import Connection, call

TOPICS = ("order.created", "order.updated", "order.deleted", "order.restored", "product.updated")


class WooSubscriptions:
    topics: tuple[str, ...] = TOPICS

    def hooks(self, client: Any) -> list[dict]:
        # A webhook WooCommerce disabled after failed deliveries says so in its status.
        return [
            {
                "id": h.get("id"),
                "topic": h.get("topic"),
                "address": h.get("delivery_url"),
                "status": str(h.get("status") or "active").lower(),
            }
            for h in call(client, "webhooks")() or []
        ]

    def ungranted(self, client: Any) -> dict[str, str]:
        return {}

    def create(self, client: Any, topic: str, address: str, secrets: Mapping[str, str]) -> None:
        secret = secrets.get("webhook_secret")
        if not secret:
            raise StorefrontError("the store has no webhook secret: set one first", retryable=False)
        call(client, "create_webhook")(topic, address, secret)

    def delete(self, client: Any, hook_id: str) -> None:
        call(client, "delete_webhook")(hook_id)


def test_connection(client: Any, settings: Mapping[str, Any]) -> Connection:
    call(client, "get")("orders", per_page=1)
    return Connection(f"Connected to {settings.get('url')}: the consumer key reads orders.")
