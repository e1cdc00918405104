"""Shopify behind the platform contract."""

from __future__ import annotations

from mappings.shopify import order_from_shopify
from platforms.base import Platform
from platforms.shopify import events
from platforms.shopify.listing import ShopifyListing
from platforms.shopify.receiver import ShopifyReceiver

PLATFORM = Platform(
    name="shopify",
    label="Shopify",
    receiver=ShopifyReceiver(),
    orders=ShopifyListing(),
    topics=events.TOPICS,
    to_order=order_from_shopify,
    import_statuses=None,  # Shopify creates the order when checkout completes: every order is real
    has_api=events.has_api,
    check=events.check,
)
