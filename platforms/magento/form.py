"""A Magento store's settings and its form on /config."""

from __future__ import annotations

from marshmallow import validate

from mappings.text_fields import http_url, text
from platforms.forms import FormField, StoreForm
from platforms.magento.events import IMPORT_STATUSES, STATES

FORM = StoreForm(
    settings={
        "base_url": http_url(),  # the store's address; the REST API is under <base_url>/rest/
        "store_code": text(32, validate.Regexp(r"^[a-z0-9_]{1,32}$", error="a store view code, such as default")),
    },
    secrets=("access_token",),
    required=("base_url", "access_token"),
    shown=(
        FormField(
            "base_url",
            "Store address",
            "Such as https://shop.example.com (the REST API is under /rest/).",
            required=True,
        ),
        FormField("store_code", "Store view code (optional)", "Leave empty for the default store view."),
        FormField(
            "access_token",
            "Integration access token",
            "System › Extensions › Integrations: resources Sales, Catalog › Inventory; allow integration tokens as "
            "bearer tokens (Stores › Configuration › Services › OAuth).",
            secret=True,
            required=True,
        ),
    ),
    statuses=STATES,
    status_hint="Magento: the order state",
    default_import=", ".join(IMPORT_STATUSES),
)
