"""Shopify behind the platform contract."""

from __future__ import annotations

from adapters.grants import ISSUED_KEYS
from platforms.base import Platform
from platforms.shopify import events, shipping, webhooks
from platforms.shopify.client import CONNECTION_SETTINGS, build_client
from platforms.shopify.form import FORM
from platforms.shopify.listing import ShopifyListing
from platforms.shopify.mapping import order_from_shopify
from platforms.shopify.operations import ShopifyOperations
from platforms.shopify.receiver import ShopifyReceiver
from platforms.shopify.stock import ShopifyStock
from platforms.shopify.tokens import ShopifyTokens

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
    client=build_client,
    connection_settings=CONNECTION_SETTINGS,
    ship=shipping.ship,
    form=FORM,
    named_in=events.named_in,
    installed=lambda client: bool(client.installed()),
    subscriptions=webhooks.ShopifySubscriptions(),
    test_connection=webhooks.test_connection,
    scopes=webhooks.SCOPES,
    operations=ShopifyOperations(),
    stock=ShopifyStock(),
    issued_secrets=ISSUED_KEYS,
    tokens=ShopifyTokens(),
)
