"""Magento 2 (Open Source and Adobe Commerce) behind the platform contract: no webhooks, its orders polled."""

from __future__ import annotations

from platforms.base import Platform
from platforms.magento import events, shipping
from platforms.magento.client import CONNECTION_SETTINGS, build_client, test_connection
from platforms.magento.form import FORM
from platforms.magento.listing import MagentoListing
from platforms.magento.mapping import order_from_magento
from platforms.magento.operations import MagentoOperations
from platforms.magento.stock import MagentoStock

PLATFORM = Platform(
    name="magento",
    label="Magento",
    receiver=None,  # Magento Open Source sends no webhooks: orders are polled (MagentoListing)
    orders=MagentoListing(),
    topics=events.TOPICS,
    to_order=order_from_magento,
    import_statuses=events.IMPORT_STATUSES,
    has_api=events.has_api,
    check=events.check,
    client=build_client,
    connection_settings=CONNECTION_SETTINGS,
    ship=shipping.ship,
    form=FORM,
    named_in=events.named_in,
    subscriptions=None,  # nothing to subscribe to: the poll is its schedule
    test_connection=test_connection,
    operations=MagentoOperations(),
    stock=MagentoStock(),
)
