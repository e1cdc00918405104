"""Shopify's webhooks at the door: base64 HMAC-SHA256 of the body in X-Shopify-Hmac-Sha256, deduped on the
event id Shopify repeats on every re-delivery."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from platforms.base import Delivery, Reply
from platforms.environ import environ_key, pick, signature_keys
from platforms.signatures import verify

SIGNATURE = "X-Shopify-Hmac-Sha256"
# Every header Shopify documents, in both delivery styles (the newer one drops the "X-").
HEADERS = (
    "Topic",
    "Hmac-Sha256",
    "Shop-Domain",
    "API-Version",
    "Webhook-Id",
    "Event-Id",
    "Triggered-At",
    "Sub-Topic",
    "Name",
)
# The newer unprefixed style first, so the X- one wins when a delivery has both.
_ENVIRON = {environ_key(f"{prefix}Shopify-{name}"): f"X-Shopify-{name}" for name in HEADERS for prefix in ("", "X-")}
_SIGNATURE = signature_keys(SIGNATURE)


class ShopifyReceiver:
    secret_headers: tuple[str, ...] = (SIGNATURE,)
    topic_header = "X-Shopify-Topic"

    def early_reply(self, environ: Mapping[str, str], body: bytes) -> Reply | None:
        return None

    def authentic(self, secret: str, environ: Mapping[str, str], body: bytes) -> bool:
        with_x, without_x = _SIGNATURE
        return verify(secret, body, environ.get(with_x) or environ.get(without_x))

    def identify(self, environ: Mapping[str, str], body: bytes, payload: object) -> Delivery:
        headers = pick(environ, _ENVIRON)
        topic = headers.get("X-Shopify-Topic", "")[:64]  # the column's width; real topics are short
        # Shopify's docs disagree on the idempotency key: event id first, webhook id as fallback.
        if headers.get("X-Shopify-Event-Id"):
            key = f"{topic}|event:{headers['X-Shopify-Event-Id']}"
        elif headers.get("X-Shopify-Webhook-Id"):
            key = f"{topic}|webhook:{headers['X-Shopify-Webhook-Id']}"
        else:
            key = f"{topic}|sha256:{hashlib.sha256(body).hexdigest()}"
        return Delivery(topic or "unknown", key, headers)

    def order_number(self, topic: str, payload: Mapping[str, object]) -> str | None:
        number = payload.get("name")  # "#1001", as the shop shows it
        return str(number)[:64] if isinstance(number, (str, int)) and topic.startswith("order") else None
