"""A Shopify store's Admin API client, from its settings and secrets."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from adapters.storefront import StorefrontError
from platforms.shopify.api import DEFAULT_API_VERSION, ShopifyClient
from platforms.shopify.events import uses_app_credentials

CONNECTION_SETTINGS = ("shop_domain", "api_version", "api_base_url")


def build_client(
    slug: str,
    settings: Mapping[str, Any],
    secrets: Mapping[str, str],
    patience: Mapping[str, Any],
    tokens: Callable[[], Any],
) -> ShopifyClient:
    """With the app's client ID and secret, tokens are issued and renewed by the token keeper; else the
    store's Admin API access token."""
    token = secrets.get("access_token", "")
    keeper = tokens() if uses_app_credentials(settings, secrets) else None
    if not token and keeper is None:
        raise StorefrontError(
            f"store {slug} has no Admin API access token nor app client ID and secret: add them on its "
            "settings page, or connect it with “Connect a Shopify store”",
            retryable=False,
        )
    return ShopifyClient(
        settings.get("shop_domain", ""),
        "" if keeper else token,
        str(settings.get("api_version") or DEFAULT_API_VERSION),
        api_base_url=settings.get("api_base_url") or None,
        tokens=keeper,
        **patience,
    )
