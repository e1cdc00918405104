"""Webhook receivers: verify, store durably, acknowledge; the slow work happens in jobs.

Status codes (the product's contract): 200 accepted or duplicate, 401 bad or missing signature,
404 unknown store, 413 body over WEBHOOK_MAX_BYTES, 400 unreadable (still stored for the console
when the signature is good).
"""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass

from flask import Blueprint, Response, current_app, request
from werkzeug.exceptions import RequestEntityTooLarge

from connector import inbox
from connector.jobs import kick
from connector.runtime import Runtime, StoreInfo
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


def _shopify_headers() -> dict[str, str]:
    kept = {}
    for name in SHOPIFY_HEADERS:
        value = request.headers.get("X-Shopify-" + name) or request.headers.get("Shopify-" + name)
        if value is not None:
            kept["X-Shopify-" + name] = value
    for name in ("Content-Type", "User-Agent"):
        if name in request.headers:
            kept[name] = request.headers[name]
    return kept


def _shopify_delivery(body: bytes) -> Delivery:
    headers = _shopify_headers()
    topic = headers.get("X-Shopify-Topic", "")
    # Shopify's docs disagree on the idempotency key: event id first, webhook id as fallback.
    if "X-Shopify-Event-Id" in headers:
        key = f"{topic}|event:{headers['X-Shopify-Event-Id']}"
    elif "X-Shopify-Webhook-Id" in headers:
        key = f"{topic}|webhook:{headers['X-Shopify-Webhook-Id']}"
    else:
        key = f"{topic}|sha256:{hashlib.sha256(body).hexdigest()}"
    return Delivery(topic or "unknown", key, headers)


@bp.post("/webhooks/shopify/<slug>")
def shopify(slug: str) -> Response:
    return receive("shopify", slug, "X-Shopify-Hmac-Sha256", _shopify_delivery)


def receive(platform: str, slug: str, signature_header: str, identify) -> Response:  # type: ignore[no-untyped-def]
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
    if not verify(store.webhook_secret, body, signature):
        log.warning("%s store %s: rejected a delivery with a bad or missing signature", platform, slug)
        return _reply(401, "bad or missing signature")
    delivery = identify(body)
    payload, problem = _parse(body)
    resource_id = str(payload.get("id"))[:64] if isinstance(payload, dict) and "id" in payload else None
    event_id = inbox.record(
        rt.engine,
        store_id=store.id,
        platform=platform,
        topic=delivery.topic,
        dedupe_key=delivery.dedupe_key,
        headers=delivery.headers,
        body=body,
        resource_id=resource_id,
        status="failed" if problem else "pending",
        error=problem,
    )
    if event_id is None:
        return _reply(200, "duplicate delivery: already stored")
    if problem:
        return _reply(400, problem)
    _wake(rt, store)
    return _reply(200, "stored")


def _parse(body: bytes) -> tuple[object, str | None]:
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        return None, f"the body is not valid JSON ({exc}); it is kept here, nothing was imported"
    if not isinstance(payload, dict):
        return None, f"the body is JSON but not an object (got {type(payload).__name__}); nothing was imported"
    return payload, None


def _wake(rt: Runtime, store: StoreInfo) -> None:
    try:
        kick(rt, store.id)
    except Exception:  # the row is committed; the sweep will queue it if Redis is away
        log.exception("store %s: could not queue a drain; the sweep will pick the event up", store.slug)
