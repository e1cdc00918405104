"""WooCommerce's webhooks at the door: base64 HMAC-SHA256 of the body in X-WC-Webhook-Signature, deduped on
the state of the resource (WooCommerce builds the payload at delivery time and never repeats a delivery id)."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

from platforms.base import Delivery, Reply
from platforms.environ import environ_key, pick, signature_keys
from platforms.signatures import verify

SIGNATURE = "X-WC-Webhook-Signature"
HEADERS = ("Source", "Topic", "Resource", "Event", "Signature", "ID", "Delivery-ID")
_ENVIRON = {environ_key(f"X-WC-Webhook-{name}"): f"X-WC-Webhook-{name}" for name in HEADERS}
_SIGNATURE = signature_keys(SIGNATURE)


def state_key(resource: str, data: Mapping[str, Any]) -> str:
    """The inbox key of one state of a resource: its id and modification time, which WooCommerce keeps to
    the second only, and what changes within one second: a product's stock (our write and a sale), an
    order's status, payment, total, lines and refunds (checkout then the gateway's "paid" in one request)."""
    key = f"{resource}:{data['id']}:{data['date_modified_gmt']}"
    if resource == "product":
        return f"{key}:{data.get('stock_quantity')}"
    if resource != "order":
        return key
    lines, refunds = data.get("line_items"), data.get("refunds")
    lines = lines if isinstance(lines, list) else []
    refunds = refunds if isinstance(refunds, list) else []
    state = [
        data.get("status"),
        data.get("total"),
        data.get("date_paid_gmt"),
        sorted(str(r.get("id")) for r in refunds if isinstance(r, dict)),
        [(ln.get("id"), ln.get("quantity")) for ln in lines if isinstance(ln, dict)],
    ]
    digest = hashlib.sha256(json.dumps(state, default=str).encode()).hexdigest()[:16]
    return f"{key}:{digest}"


class WooReceiver:
    secret_headers: tuple[str, ...] = (SIGNATURE,)
    topic_header = "X-WC-Webhook-Topic"

    def _signature(self, environ: Mapping[str, str]) -> str | None:
        with_x, without_x = _SIGNATURE
        return environ.get(with_x) or environ.get(without_x)

    def early_reply(self, environ: Mapping[str, str], body: bytes) -> Reply | None:
        """WooCommerce's check when a webhook is saved: form-encoded webhook_id=N, no X-WC headers."""
        if (
            not self._signature(environ)
            and not any(key.startswith("HTTP_X_WC_WEBHOOK_") for key in environ)
            and re.fullmatch(rb"webhook_id=\d{1,20}", body.strip()) is not None
        ):
            return 200, "ping acknowledged"
        return None

    def authentic(self, secret: str, environ: Mapping[str, str], body: bytes) -> bool:
        return verify(secret, body, self._signature(environ))

    def identify(self, environ: Mapping[str, str], body: bytes, payload: object) -> Delivery:
        headers = pick(environ, _ENVIRON)
        topic = headers.get("X-WC-Webhook-Topic", "")[:64]
        resource = topic.split(".", 1)[0]
        data = payload if isinstance(payload, dict) else {}
        # The delivery id changes on every send and the payload is built at delivery time: the same
        # state of a resource is what repeats, so that is the key (never the delivery id).
        if "id" in data and data.get("date_modified_gmt"):
            key = state_key(resource, data)
        elif "id" in data and topic.endswith(".deleted"):
            key = f"{topic}:{data['id']}"
        else:
            key = f"{topic}|sha256:{hashlib.sha256(body).hexdigest()}"
        return Delivery(topic or "unknown", key, headers)

    def order_number(self, topic: str, payload: Mapping[str, object]) -> str | None:
        number = payload.get("number")
        return str(number)[:64] if isinstance(number, (str, int)) and topic.startswith("order") else None
