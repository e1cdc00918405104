"""BigCommerce behind the platform contract."""

from __future__ import annotations

from platforms.base import Platform
from platforms.bigcommerce import events, shipping, webhooks
from platforms.bigcommerce.client import CONNECTION_SETTINGS, build_client
from platforms.bigcommerce.form import FORM
from platforms.bigcommerce.listing import BigCommerceListing
from platforms.bigcommerce.operations import BigCommerceOperations
from platforms.bigcommerce.receiver import BigCommerceReceiver
from platforms.bigcommerce.stock import BigCommerceStock

PLATFORM = Platform(
    name="bigcommerce",
    label="BigCommerce",
    receiver=BigCommerceReceiver(),
    orders=BigCommerceListing(),
    topics=events.TOPICS,
    to_order=events.to_order,
    import_statuses=events.IMPORT_STATUSES,
    has_api=events.has_api,
    check=events.check,
    client=build_client,
    connection_settings=CONNECTION_SETTINGS,
    ship=shipping.ship,
    form=FORM,
    named_in=events.named_in,
    installed=lambda client: bool(client.installed()),
    subscriptions=webhooks.BigCommerceSubscriptions(),
    test_connection=webhooks.test_connection,
    operations=BigCommerceOperations(),
    stock=BigCommerceStock(),
)
