"""Webhook receivers: verify, store durably, acknowledge; the slow work happens in jobs.

Status codes (the product's contract): 200 accepted or duplicate, 401 bad or missing signature,
404 unknown store, 413 body over WEBHOOK_MAX_BYTES, 400 unreadable (still stored for the console
when the signature is good), 405 for anything but POST, 503 when the delivery cannot be stored.

This is the hottest path of the product (every order, every stock change of every store), so it is
served in front of Flask: no request context, routing or session for a request that needs none of
them. `Intake` holds the decisions; two front doors use them: `connector.web.asgi` (what `connector web`
serves, on an event loop) and `WebhookReceiver` here, WSGI middleware (`connector run`, tests and
`connector.web.wsgi:app`). Everything else goes on to the Flask app.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable, Iterable

import orjson

from connector.base.runtime import Runtime, StoreInfo
from connector.base.stores import StoreDirectory
from connector.intake import inbox, inbox_writer
from platforms.registry import RECEIVERS

log = logging.getLogger(__name__)

PREFIX = "/webhooks/"
StartResponse = Callable[..., object]


Reply = tuple[int, str]


class Intake:
    """The receiver's decisions, shared by both front doors (WSGI here, ASGI in connector.web.asgi): which
    store, whether to read the body, whether it is signed, and the inbox row it becomes."""

    def __init__(self, runtime: Runtime, directory: StoreDirectory):
        self.rt, self.directory = runtime, directory

    @staticmethod
    def target(rest: str, method: str) -> tuple[str, str] | Reply:
        """(platform, slug) from the path after /webhooks/, or the refusal."""
        platform, _, slug = rest.partition("/")
        if platform not in RECEIVERS or not slug or "/" in slug:
            return 404, "no such page"
        if method != "POST":
            return 405, "method not allowed here"
        return platform, slug

    @staticmethod
    def store_refusal(store: StoreInfo | None, platform: str, slug: str) -> Reply | None:
        if store is None or store.platform != platform:
            return 404, f"no active {platform} store {slug!r}"
        return None

    @property
    def max_bytes(self) -> int:
        return self.rt.settings.webhook_max_bytes

    def too_large(self) -> Reply:
        return 413, f"body over {self.max_bytes} bytes"

    def row(self, platform: str, store: StoreInfo, environ: dict, body: bytes) -> dict | Reply:
        """The inbox row for a signed delivery, or the answer for one that must not be stored.
        `environ` holds the request headers the WSGI way (HTTP_X_WEBHOOK_TOPIC, CONTENT_TYPE)."""
        receiver = RECEIVERS[platform]
        early = receiver.early_reply(environ, body)
        if early is not None:
            return early
        if not receiver.authentic(store.webhook_secret, environ, body):
            log.warning("%s store %s: rejected a delivery with a bad or missing signature", platform, store.slug)
            return 401, "bad or missing signature"
        payload, problem = _parse(body)
        delivery = receiver.identify(environ, body, payload)
        data = payload if isinstance(payload, dict) else {}
        resource_id = str(data["id"])[:64] if "id" in data else None
        # Known before processing, so support can find an order's events even when they failed.
        order_number = receiver.order_number(delivery.topic, data)
        stored, headers = inbox.without_card_data(store, delivery.topic, order_number, body, payload, delivery.headers)
        return inbox.row(
            store_id=store.id,
            platform=platform,
            topic=delivery.topic,
            dedupe_key=delivery.dedupe_key,
            headers=headers,
            body=stored,
            resource_id=resource_id,
            order_number=order_number,
            status="failed" if problem else "pending",
            error=problem,
        )

    @staticmethod
    def stored(new_row: dict, event_id: int | None) -> Reply:
        if event_id is None:
            return 200, "duplicate delivery: already stored"
        if new_row["status"] == "failed":
            return 400, new_row["last_error"]
        return 200, "stored"


UNAVAILABLE: Reply = (503, "storage unavailable; deliver again later")  # not stored: the store sends it again
BROKEN: Reply = (500, "internal error; it has been logged")  # a bug: the store sends it again


class WebhookReceiver:
    """WSGI middleware: POST /webhooks/<platform>/<store> here, every other request to `app`."""

    def __init__(self, app: Callable, runtime: Runtime, directory: StoreDirectory, writer: inbox_writer.Inbox):
        self.app, self.writer = app, writer
        self.intake = Intake(runtime, directory)

    def __call__(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if not path.startswith(PREFIX):
            return self.app(environ, start_response)
        try:
            status, message = self.receive(environ, path[len(PREFIX) :])
        except Exception:
            log.exception("webhook receiver: unexpected error on %s", path)
            status, message = BROKEN
        body = reply_body(status, message)
        start_response(
            f"{status} {_REASONS[status]}", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        )
        return [body]

    def receive(self, environ: dict, rest: str) -> Reply:
        target = self.intake.target(rest, environ.get("REQUEST_METHOD", ""))
        if isinstance(target[0], int):
            return target
        platform, slug = target
        store = self.intake.directory.get(slug)
        refusal = self.intake.store_refusal(store, platform, slug)
        if refusal is not None:
            return refusal
        assert store is not None  # store_refusal refuses a missing store
        body = _read_body(environ, self.intake.max_bytes)
        if body is None:
            return self.intake.too_large()
        new_row = self.intake.row(platform, store, environ, body)
        if isinstance(new_row, tuple):
            return new_row
        try:
            event_id = self.writer.record(new_row)
        except inbox.InboxUnavailable:
            return UNAVAILABLE
        return self.intake.stored(new_row, event_id)


@functools.lru_cache(maxsize=256)  # the hot answers ("stored", "duplicate ...") are the same every time
def reply_body(status: int, message: str) -> bytes:
    return json.dumps({"status": status, "message": message}).encode()


def _read_body(environ: dict, limit: int) -> bytes | None:
    """The body, or None when it is over `limit`: refused at once on its Content-Length, or as soon as a
    chunked body (the server then sets wsgi.input_terminated) passes it."""
    stream = environ["wsgi.input"]
    try:
        length = int(environ.get("CONTENT_LENGTH") or -1)
    except ValueError:
        length = -1
    if length >= 0:
        return None if length > limit else stream.read(length)
    if not environ.get("wsgi.input_terminated"):
        return b""  # neither a length nor a terminated stream: reading could hang
    parts, size = [], 0
    while chunk := stream.read(65536):
        size += len(chunk)
        if size > limit:
            return None
        parts.append(chunk)
    return b"".join(parts)


_REASONS = {
    200: "OK",
    400: "BAD REQUEST",
    401: "UNAUTHORIZED",
    404: "NOT FOUND",
    405: "METHOD NOT ALLOWED",
    413: "REQUEST ENTITY TOO LARGE",
    500: "INTERNAL SERVER ERROR",
    503: "SERVICE UNAVAILABLE",
}


def _parse(body: bytes) -> tuple[object, str | None]:
    try:
        payload = orjson.loads(body)  # the same JSON as json.loads, several times faster on 15 kB
    except orjson.JSONDecodeError as exc:
        return None, f"the body is not valid JSON ({exc}); it is kept here, nothing was imported"
    if not isinstance(payload, dict):
        return None, f"the body is JSON but not an object (got {type(payload).__name__}); nothing was imported"
    return payload, None
