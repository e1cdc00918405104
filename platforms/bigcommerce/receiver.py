"""BigCommerce's webhooks at the door: thin payloads, authenticated by the secret header the connector set
when it created the hook, deduped on the payload BigCommerce sends again unchanged on every retry."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from platforms.base import Delivery, Reply
from platforms.environ import environ_key, pick

# Sent by BigCommerce with every delivery of a hook we created: the store's webhook secret.
SECRET_HEADER = "X-Connector-Secret"
_SECRET = environ_key(SECRET_HEADER)
_ENVIRON = {_SECRET: SECRET_HEADER}


class BigCommerceReceiver:
    secret_headers: tuple[str, ...] = (SECRET_HEADER,)
    topic_header = ""  # the topic travels in the body (`scope`)

    def early_reply(self, environ: Mapping[str, str], body: bytes) -> Reply | None:
        return None

    def authentic(self, secret: str, environ: Mapping[str, str], body: bytes) -> bool:
        given = environ.get(_SECRET) or ""
        return bool(secret) and bool(given) and hmac.compare_digest(given.encode(), secret.encode())

    def identify(self, environ: Mapping[str, str], body: bytes, payload: object) -> Delivery:
        data = payload if isinstance(payload, dict) else {}
        scope = str(data.get("scope") or "")[:64]
        found = data.get("data")
        resource: dict = found if isinstance(found, dict) else {}
        # A retry sends the same payload, `hash` and `created_at` included: the payload is the event.
        digest = str(data.get("hash") or "")[:64] or hashlib.sha256(body).hexdigest()
        key = f"{scope}|{resource.get('type')}:{resource.get('id')}|{digest}"
        return Delivery(scope or "unknown", key, pick(environ, _ENVIRON))

    def order_number(self, topic: str, payload: Mapping[str, object]) -> str | None:
        data = payload.get("data")
        if topic.startswith("store/order/") and isinstance(data, dict) and isinstance(data.get("id"), int | str):
            return str(data["id"])[:64]
        number = payload.get("id")  # a listed order: the whole order
        return str(number)[:64] if isinstance(number, int | str) and "total_inc_tax" in payload else None
