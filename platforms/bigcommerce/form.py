"""A BigCommerce store's settings and its form on /config."""

from __future__ import annotations

from marshmallow import validate

from mappings.text_fields import http_url, text
from platforms.bigcommerce.events import IMPORT_STATUSES
from platforms.forms import FormField, StoreForm

FORM = StoreForm(
    settings={
        "store_hash": text(32, validate.Regexp(r"^[a-z0-9]{1,32}$", error="the store hash, such as abc123def")),
        "api_url": http_url(),  # where the API lives, when not at https://api.bigcommerce.com
    },
    secrets=("access_token", "webhook_secret"),
    required=("store_hash", "access_token", "webhook_secret"),
    generated=("webhook_secret",),
    shown=(
        FormField(
            "store_hash",
            "Store hash",
            "From the API path https://api.bigcommerce.com/stores/<store hash>/v3/ (lower-case letters and digits).",
            required=True,
        ),
        FormField("api_url", "API address (optional)", "Leave empty for https://api.bigcommerce.com."),
        FormField(
            "access_token",
            "API account access token",
            "Store-level API account with Orders (modify), Products (modify), Information & settings (read-only).",
            secret=True,
            required=True,
        ),
        FormField(
            "webhook_secret",
            "Webhook secret",
            "Leave empty and the connector makes one: BigCommerce sends it back with every webhook as a header.",
            secret=True,
        ),
    ),
    statuses=(
        "Pending",
        "Awaiting Payment",
        "Awaiting Fulfillment",
        "Awaiting Shipment",
        "Awaiting Pickup",
        "Partially Shipped",
        "Shipped",
        "Completed",
        "Partially Refunded",
        "Refunded",
        "Cancelled",
        "Declined",
        "Manual Verification Required",
        "Disputed",
    ),
    status_hint="BigCommerce: the order status",
    default_import=", ".join(IMPORT_STATUSES),
)
