"""WooCommerce REST API v3 client: one wrapper around the `woocommerce` library's requests calls.

The library returns raw responses and retries nothing; this wrapper turns them into data or a
StorefrontError that says whether trying again can help.
"""
from __future__ import annotations

from typing import Any

import requests
from woocommerce import API

from adapters.storefront import StorefrontError


class WooClient:
    def __init__(self, url: str, consumer_key: str, consumer_secret: str, timeout: float = 15):
        # Over https the library uses Basic auth; over plain http (a test double) it signs OAuth 1.0a.
        self.api = API(url=url, consumer_key=consumer_key, consumer_secret=consumer_secret, version="wc/v3",
                       timeout=timeout)
        self.url = url

    def get(self, endpoint: str, **params: Any) -> Any:
        try:
            response = self.api.get(endpoint, params=params or None)
        except requests.RequestException as exc:
            raise StorefrontError(f"WooCommerce at {self.url} unreachable: {type(exc).__name__}",
                                  retryable=True) from exc
        return _body(response, f"GET {endpoint}")

    def get_refund(self, order_id: str, refund_id: str) -> dict:
        return self.get(f"orders/{order_id}/refunds/{refund_id}")


def _body(response: requests.Response, what: str) -> Any:
    if response.status_code == 429 or response.status_code >= 500:
        raise StorefrontError(f"WooCommerce answered {response.status_code} to {what}; will retry", retryable=True)
    if response.status_code in (401, 403):
        raise StorefrontError(f"WooCommerce refused our API keys ({response.status_code}) for {what}: check the "
                              "store's consumer key and secret on /config", retryable=False)
    if response.status_code >= 400:
        try:
            message = response.json().get("message", "")
        except ValueError:
            message = response.text[:200]
        raise StorefrontError(f"WooCommerce answered {response.status_code} to {what}: {message}", retryable=False)
    try:
        return response.json()
    except ValueError:
        raise StorefrontError(f"WooCommerce sent a non-JSON answer to {what}", retryable=True) from None
