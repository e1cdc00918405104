"""A Magento store's REST client, from its settings and secrets."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from adapters.storefront import StorefrontError
from platforms.magento.api import MagentoClient
from platforms.webhooks import Connection

# The store view code is part of every URL (/rest/<code>/V1): another code is another client.
CONNECTION_SETTINGS = ("base_url", "store_code")


def build_client(
    slug: str,
    settings: Mapping[str, Any],
    secrets: Mapping[str, str],
    patience: Mapping[str, Any],
    tokens: Callable[[], Any],
) -> MagentoClient:
    token, base_url = secrets.get("access_token"), settings.get("base_url")
    if not token or not base_url:
        raise StorefrontError(
            f"store {slug} has no Magento base URL or integration access token: add them on its settings page "
            "(System > Extensions > Integrations in Magento's admin shows the access token once activated)",
            retryable=False,
        )
    return MagentoClient(str(base_url), token, store_code=settings.get("store_code") or None, **patience)


def test_connection(client: Any, settings: Mapping[str, Any]) -> Connection:
    sources = client.sources()
    names = ", ".join(str(s.get("name") or s.get("source_code")) for s in sources[:10])
    return Connection(
        f"Connected to {settings.get('base_url')}: the integration token reads {len(sources)} inventory "
        f"source(s){': ' + names if names else ''}. Orders are polled (Magento sends no webhooks)."
    )
