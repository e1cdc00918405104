"""Which platforms the connector serves: the one place that names them."""

from __future__ import annotations

from platforms import bigcommerce, magento, shopify, woocommerce
from platforms.base import Platform, Receiver

PLATFORMS: dict[str, Platform] = {
    p.name: p for p in (shopify.PLATFORM, woocommerce.PLATFORM, bigcommerce.PLATFORM, magento.PLATFORM)
}
# The platforms that send webhooks, by the name in /webhooks/<name>/<store>.
RECEIVERS: dict[str, Receiver] = {name: p.receiver for name, p in PLATFORMS.items() if p.receiver is not None}


def platform(name: str) -> Platform:
    """The platform a store is on (KeyError: one the connector does not serve)."""
    return PLATFORMS[name]


# Headers of stored deliveries that must never be shown whole (a signature and its body make a replay).
SECRET_HEADERS = frozenset(h for r in RECEIVERS.values() for h in r.secret_headers)
