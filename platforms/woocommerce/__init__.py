"""WooCommerce behind the platform contract."""

from __future__ import annotations

from platforms.base import Platform
from platforms.woocommerce import events, shipping, webhooks
from platforms.woocommerce.client import CONNECTION_SETTINGS, build_client
from platforms.woocommerce.form import FORM
from platforms.woocommerce.listing import WooListing
from platforms.woocommerce.mapping import order_from_woocommerce
from platforms.woocommerce.operations import WooOperations
from platforms.woocommerce.receiver import WooReceiver
from platforms.woocommerce.stock import WooStock

PLATFORM = Platform(
    name="woocommerce",
    label="WooCommerce",
    receiver=WooReceiver(),
    orders=WooListing(),
    topics=events.TOPICS,
    to_order=order_from_woocommerce,
    import_statuses=events.IMPORT_STATUSES,
    has_api=events.has_api,
    check=events.check,
    client=build_client,
    connection_settings=CONNECTION_SETTINGS,
    ship=shipping.ship,
    form=FORM,
    named_in=events.named_in,
    subscriptions=webhooks.WooSubscriptions(),
    test_connection=webhooks.test_connection,
    operations=WooOperations(),
    stock=WooStock(),
)
