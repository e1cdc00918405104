"""Store API clients for the background jobs (stock and shipments), kept per store for the process.

A Shopify client learns the shop's GraphQL bucket (size, restore rate, what it has left) from each
answer and the real cost of each call shape; keeping the client between sync runs keeps that
knowledge, so only the first call a worker ever makes can meet a throttle. A client is rebuilt when
the store's connection settings or secrets change. /config's "test connection" uses its own short-
timeout clients (connector.store_admin).
"""

from __future__ import annotations

import hashlib
import json
import threading
from typing import Any

from adapters.shopify_auth import ISSUED_KEYS
from adapters.storefront import StorefrontError
from connector.runtime import StoreInfo, current
from connector.tokens import StoreTokens, uses_app_credentials

_CLIENTS: dict[int, tuple[str, Any]] = {}
_LOCK = threading.Lock()


def _fingerprint(store: StoreInfo) -> str:
    relevant = {k: store.settings.get(k) for k in ("shop_domain", "api_version", "api_base_url", "url")}
    # A renewed token is not a new connection: the client keeps what it learned of the shop's limits.
    secrets = sorted((k, v) for k, v in store.secrets.items() if k not in ISSUED_KEYS)
    text = json.dumps([store.platform, relevant, secrets], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def sync_client(store: StoreInfo) -> Any:
    """The ShopifyClient or WooClient for this store (the same object while its settings hold)."""
    key = _fingerprint(store)
    with _LOCK:
        hit = _CLIENTS.get(store.id)
        if hit is not None and hit[0] == key:
            return hit[1]
    client = _build(store)
    with _LOCK:
        _CLIENTS[store.id] = (key, client)
    return client


def forget(store_id: int | None = None) -> None:
    """Drop cached clients (all, or one store's): tests and benchmarks start from a cold client."""
    with _LOCK:
        if store_id is None:
            _CLIENTS.clear()
        else:
            _CLIENTS.pop(store_id, None)


def _build(store: StoreInfo) -> Any:
    from connector.store_admin import refuse_disconnected

    refuse_disconnected(store)
    if store.platform == "shopify":
        from adapters.shopify import DEFAULT_API_VERSION, ShopifyClient

        token = store.secrets.get("access_token", "")
        tokens = StoreTokens(current(), store.id) if uses_app_credentials(store.settings, store.secrets) else None
        if not token and tokens is None:
            raise StorefrontError(
                f"store {store.slug} has no Admin API access token nor app client ID and secret: add them on /config",
                retryable=False,
            )
        return ShopifyClient(
            store.settings.get("shop_domain", ""),
            "" if tokens else token,
            str(store.settings.get("api_version") or DEFAULT_API_VERSION),
            timeout=30,
            api_base_url=store.settings.get("api_base_url") or None,
            tokens=tokens,
        )
    if store.platform == "woocommerce":
        from adapters.woocommerce import WooClient

        key, secret = store.secrets.get("consumer_key"), store.secrets.get("consumer_secret")
        if not key or not secret or not store.settings.get("url"):
            raise StorefrontError(
                f"store {store.slug} has no url, consumer key or secret: add them on /config", retryable=False
            )
        return WooClient(store.settings["url"], key, secret, timeout=30)
    raise StorefrontError(f"unknown platform {store.platform!r}", retryable=False)
