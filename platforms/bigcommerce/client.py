"""A BigCommerce store's API client, from its settings (store hash, API address) and its API token."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from adapters.storefront import StorefrontError
from platforms.bigcommerce.api import API_URL, BigCommerceClient

CONNECTION_SETTINGS = ("store_hash", "api_url")


def build_client(
    slug: str,
    settings: Mapping[str, Any],
    secrets: Mapping[str, str],
    patience: Mapping[str, Any],
    tokens: Callable[[], Any],
) -> BigCommerceClient:
    if not settings.get("store_hash") or not secrets.get("access_token"):
        raise StorefrontError(
            f"store {slug} has no store hash or API account access token: add them on its settings page",
            retryable=False,
        )
    return BigCommerceClient(
        settings["store_hash"], secrets["access_token"], settings.get("api_url") or API_URL, **patience
    )
