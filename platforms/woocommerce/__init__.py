"""WooCommerce behind the platform contract."""

from __future__ import annotations

from platforms.base import Platform
from platforms.woocommerce.listing import WooListing
from platforms.woocommerce.receiver import WooReceiver

PLATFORM = Platform(name="woocommerce", label="WooCommerce", receiver=WooReceiver(), orders=WooListing())
