"""Shopify behind the platform contract."""

from __future__ import annotations

from platforms.base import Platform
from platforms.shopify.listing import ShopifyListing
from platforms.shopify.receiver import ShopifyReceiver

PLATFORM = Platform(name="shopify", label="Shopify", receiver=ShopifyReceiver(), orders=ShopifyListing())
