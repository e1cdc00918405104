"""BigCommerce's webhooks (V3 hooks): each created with the store's webhook secret as a custom header, which
BigCommerce sends with every delivery and the door checks; and what "test connection" reads."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adapters.storefront import StorefrontError
from platforms.bigcommerce.events import ORDER_SCOPES
from platforms.bigcommerce.receiver import SECRET_HEADER
from platforms.webhooks import Connection, call

TOPICS = (*ORDER_SCOPES, "store/order/archived", "store/app/uninstalled")


class BigCommerceSubscriptions:
    topics: tuple[str, ...] = TOPICS

    def hooks(self, client: Any) -> list[dict]:
        # A hook BigCommerce deactivated after failed deliveries says so (is_active false): it is replaced.
        return [
            {
                "id": h.get("id"),
                "topic": h.get("scope"),
                "address": h.get("destination"),
                "status": "active" if h.get("is_active") else "inactive",
            }
            for h in call(client, "hooks")() or []
        ]

    def ungranted(self, client: Any) -> dict[str, str]:
        return {}

    def create(self, client: Any, topic: str, address: str, secrets: Mapping[str, str]) -> None:
        secret = secrets.get("webhook_secret")
        if not secret:
            raise StorefrontError("the store has no webhook secret: set one first", retryable=False)
        call(client, "create_hook")(topic, address, {SECRET_HEADER: secret})

    def delete(self, client: Any, hook_id: str) -> None:
        call(client, "delete_hook")(hook_id)


def test_connection(client: Any, settings: Mapping[str, Any]) -> Connection:
    locations = call(client, "locations")()
    names = ", ".join(str(loc.get("label") or loc.get("code")) for loc in locations[:10])
    return Connection(
        f"Connected to BigCommerce store {settings.get('store_hash')}: the API account reads {len(locations)} "
        f"inventory location(s){': ' + names if names else ''}."
    )
