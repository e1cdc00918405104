"""Webhook receivers: verify, store durably, acknowledge; the slow work happens in jobs.

Status codes (the product's contract): 200 accepted or duplicate, 401 bad or missing signature,
404 unknown store, 413 body over WEBHOOK_MAX_BYTES, 400 unreadable (still stored for the console
when the signature is good).
"""
from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass

import orjson
from flask import Blueprint, Response, current_app, request
from werkzeug.exceptions import RequestEntityTooLarge

from connector import inbox
from connector.runtime import Runtime
from connector.signatures import verify
from connector.stores import StoreDirectory

log = logging.getLogger(__name__)
bp = Blueprint("webhooks", __name__)

# Every header Shopify documents, in both delivery styles (the newer one drops the "X-").
SHOPIFY_HEADERS = ("Topic", "Hmac-Sha256", "Shop-Domain", "API-Version", "Webhook-Id", "Event-Id",
                   "Triggered-At", "Sub-Topic", "Name")


@dataclass(frozen=True)
class Delivery:
    topic: str
    dedupe_key: str
    headers: dict[str, str]


def _reply(status: int, message: str) -> Response:
    return Response(json.dumps({"status": status, "message": message}), status, mimetype="application/json")


_SHOPIFY_ENVIRON = {f"HTTP_{prefix}SHOPIFY_{name.upper().replace('-', '_')}": f"X-Shopify-{name}"
                    for name in SHOPIFY_HEADERS for prefix in ("", "X_")}
_KEPT_ENVIRON = {"CONTENT_TYPE": "Content-Type", "HTTP_USER_AGENT": "User-Agent"}


def _shopify_headers() -> dict[str, str]:
    # Read straight from the WSGI environ: one pass, no case-insensitive lookups per name.
    kept = {}
    for key, value in request.environ.items():
        name = _SHOPIFY_ENVIRON.get(key) or _KEPT_ENVIRON.get(key)
        if name is not None and (name not in kept or key.startswith("HTTP_X_")):
            kept[name] = value
    return kept


def _shopify_delivery(body: bytes, _payload: object) -> Delivery:
    headers = _shopify_headers()
    topic = headers.get("X-Shopify-Topic", "")[:64]  # the column's width; real topics are short
    # Shopify's docs disagree on the idempotency key: event id first, webhook id as fallback.
    if headers.get("X-Shopify-Event-Id"):
        key = f"{topic}|event:{headers['X-Shopify-Event-Id']}"
    elif headers.get("X-Shopify-Webhook-Id"):
        key = f"{topic}|webhook:{headers['X-Shopify-Webhook-Id']}"
    else:
        key = f"{topic}|sha256:{hashlib.sha256(body).hexdigest()}"
    return Delivery(topic or "unknown", key, headers)


WOO_HEADERS = ("Source", "Topic", "Resource", "Event", "Signature", "ID", "Delivery-ID")


def _woo_delivery(body: bytes, payload: object) -> Delivery:
    headers = {f"X-WC-Webhook-{n}": request.headers[f"X-WC-Webhook-{n}"] for n in WOO_HEADERS
               if f"X-WC-Webhook-{n}" in request.headers}
    for name in ("Content-Type", "User-Agent"):
        if name in request.headers:
            headers[name] = request.headers[name]
    topic = headers.get("X-WC-Webhook-Topic", "")[:64]
    resource = topic.split(".", 1)[0]
    data = payload if isinstance(payload, dict) else {}
    # The delivery id changes on every send and the payload is built at delivery time: the same
    # state of a resource is what repeats, so that is the key (never the delivery id).
    if "id" in data and data.get("date_modified_gmt"):
        key = f"{resource}:{data['id']}:{data['date_modified_gmt']}"
        if resource == "product":  # our stock write and a sale within one second are two states
            key += f":{data.get('stock_quantity')}"
    elif "id" in data and topic.endswith(".deleted"):
        key = f"{topic}:{data['id']}"
    else:
        key = f"{topic}|sha256:{hashlib.sha256(body).hexdigest()}"
    return Delivery(topic or "unknown", key, headers)


@bp.post("/webhooks/shopify/<slug>")
def shopify(slug: str) -> Response:
    return receive("shopify", slug, "X-Shopify-Hmac-Sha256", _shopify_delivery)


@bp.post("/webhooks/woocommerce/<slug>")
def woocommerce(slug: str) -> Response:
    return receive("woocommerce", slug, "X-WC-Webhook-Signature", _woo_delivery, ping=_is_woo_ping)


def _is_woo_ping(body: bytes) -> bool:
    """WooCommerce's check when a webhook is saved: form-encoded webhook_id=N, no X-WC headers."""
    return (not any(h.lower().startswith("x-wc-webhook-") for h in request.headers.keys())
            and re.fullmatch(rb"webhook_id=\d{1,20}", body.strip()) is not None)


def receive(platform: str, slug: str, signature_header: str, identify, ping=None) -> Response:  # type: ignore[no-untyped-def]
    rt: Runtime = current_app.extensions["connector.runtime"]
    directory: StoreDirectory = current_app.extensions["connector.stores"]
    store = directory.get(slug)
    if store is None or store.platform != platform:
        return _reply(404, f"no active {platform} store {slug!r}")
    limit = rt.settings.webhook_max_bytes
    if request.content_length is not None and request.content_length > limit:
        return _reply(413, f"body over {limit} bytes")
    try:
        body = request.get_data(cache=False)
    except RequestEntityTooLarge:
        return _reply(413, f"body over {limit} bytes")
    signature = request.headers.get(signature_header) or request.headers.get(signature_header[2:])
    if not signature and ping is not None and ping(body):
        return _reply(200, "ping acknowledged")
    if not verify(store.webhook_secret, body, signature):
        log.warning("%s store %s: rejected a delivery with a bad or missing signature", platform, slug)
        return _reply(401, "bad or missing signature")
    payload, problem = _parse(body)
    delivery = identify(body, payload)
    data = payload if isinstance(payload, dict) else {}
    resource_id = str(data["id"])[:64] if "id" in data else None
    # Known before processing, so support can find an order's events even when they failed.
    number = data.get("name") if platform == "shopify" else data.get("number")
    order_number = str(number)[:64] if isinstance(number, (str, int)) and delivery.topic.startswith("order") else None
    writer: inbox.Inbox = current_app.extensions["connector.inbox"]
    try:
        event_id = writer.record(inbox.row(
            store_id=store.id,
            platform=platform,
            topic=delivery.topic,
            dedupe_key=delivery.dedupe_key,
            headers=delivery.headers,
            body=body,
            resource_id=resource_id,
            order_number=order_number,
            status="failed" if problem else "pending",
            error=problem,
        ))
    except inbox.InboxUnavailable:
        # Not stored, so not acknowledged: the store will deliver it again.
        return _reply(503, "storage unavailable; deliver again later")
    if event_id is None:
        return _reply(200, "duplicate delivery: already stored")
    if problem:
        return _reply(400, problem)
    return _reply(200, "stored")


def _parse(body: bytes) -> tuple[object, str | None]:
    try:
        payload = orjson.loads(body)  # the same JSON as json.loads, several times faster on 15 kB
    except orjson.JSONDecodeError as exc:
        return None, f"the body is not valid JSON ({exc}); it is kept here, nothing was imported"
    if not isinstance(payload, dict):
        return None, f"the body is JSON but not an object (got {type(payload).__name__}); nothing was imported"
    return payload, None
