"""A WooCommerce store's settings and its form on /config."""

from __future__ import annotations

from marshmallow import fields, validate

from mappings.text_fields import http_url
from platforms.forms import FormField, StoreForm
from platforms.woocommerce.mapping import RESTOCK_RULES

RESTOCK_LABELS = {
    "never": "never — a person checks returned goods in the ERP (default)",
    "always": "always — refunded units go back into the ERP's stock",
}

FORM = StoreForm(
    settings={
        "url": http_url(),  # the store's address
        # WooCommerce's refund says nothing of restocking: the merchant's rule for the ERP credit note.
        "restock_refunds": fields.String(validate=validate.OneOf(RESTOCK_RULES)),
    },
    secrets=("consumer_key", "consumer_secret", "webhook_secret"),
    required=("url", "webhook_secret"),
    shown=(
        FormField("url", "Store address", "Such as https://shop.example.com.", required=True),
        FormField("consumer_key", "REST API consumer key", "ck_…", secret=True),
        FormField("consumer_secret", "REST API consumer secret", "cs_…", secret=True),
        FormField(
            "webhook_secret",
            "Webhook secret",
            "Sent to WooCommerce when the webhooks are registered.",
            secret=True,
            required=True,
        ),
        FormField(
            "restock_refunds",
            "Refunded items go back into stock",
            "WooCommerce does not tell the connector whether an admin restocked a refund: this rule decides each "
            "ERP credit note's restock flag.",
            choices=RESTOCK_LABELS,
            default="never",
            brief="Refunds restock",
        ),
    ),
    statuses=("pending", "processing", "on-hold", "completed", "cancelled", "refunded", "failed"),
    status_hint="WooCommerce: the order status",
    default_import="processing, on-hold, completed",
    only_here={
        "restock_refunds": "a WooCommerce rule: the refunds of the other platforms say themselves which items went "
        "back into stock"
    },
)
