"""A WooCommerce store's REST API client, from its settings and secrets."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from adapters.storefront import StorefrontError
from platforms.woocommerce.api import WooClient

CONNECTION_SETTINGS = ("url",)


def build_client(
    slug: str,
    settings: Mapping[str, Any],
    secrets: Mapping[str, str],
    patience: Mapping[str, Any],
    tokens: Callable[[], Any],
) -> WooClient:
    key, secret = secrets.get("consumer_key"), secrets.get("consumer_secret")
    if not key or not secret or not settings.get("url"):
        raise StorefrontError(
            f"store {slug} has no url, REST API consumer key or secret: add them on its settings page",
            retryable=False,
        )
    return WooClient(settings["url"], key, secret, **patience)
