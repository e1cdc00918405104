"""A Shopify store's settings and its form on /config."""

from __future__ import annotations

from marshmallow import validate

from mappings.text_fields import HOST_MAX, ID_MAX, http_url, text
from platforms.forms import FormField, StoreForm

FORM = StoreForm(
    settings={
        "shop_domain": text(
            HOST_MAX,
            validate.Regexp(
                r"^[a-z0-9][a-z0-9.-]*\.[a-z0-9-]{2,}$",
                error="a host name such as acme-us.myshopify.com (no https://)",
            ),
        ),
        "api_version": text(
            16, validate.Regexp(r"^(\d{4}-(01|04|07|10)|unstable)$", error="a Shopify API version such as 2026-01")
        ),
        "api_base_url": http_url(),  # where the Admin API lives, when not at the shop's domain
        "client_id": text(ID_MAX),  # a Dev Dashboard app's; its client_secret is a secret
    },
    secrets=("access_token", "webhook_secret", "client_secret"),
    required=("shop_domain", "webhook_secret"),
    stands_in={"webhook_secret": "client_secret"},  # an app signs its webhooks with its client secret
    shown=(
        FormField("shop_domain", "Shop domain", "Such as acme-us.myshopify.com (no https://).", required=True),
        FormField("api_version", "Admin API version", "Such as 2026-01.", default="2026-01"),
        FormField("api_base_url", "Admin API address (optional)", "Leave empty for https://<shop domain>."),
        FormField(
            "access_token",
            "Admin API access token",
            "shpat_…; needs read_orders, write_inventory, write_fulfillments.",
            secret=True,
        ),
        FormField(
            "webhook_secret",
            "Webhook signing secret",
            "The app's client secret: Shopify signs each delivery with it.",
            secret=True,
            required=True,
        ),
    ),
    statuses=("pending", "authorized", "partially_paid", "paid", "partially_refunded", "refunded", "voided"),
    status_hint="Shopify: the financial status",
    default_import="every order",
    lower_case=("shop_domain",),
)
