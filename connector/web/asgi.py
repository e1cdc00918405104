"""The web app as `connector web` (and so the Procfile) serves it:
`gunicorn --worker-class uvicorn_worker.UvicornWorker 'connector.web.asgi:create_asgi_app()'`.

Webhook deliveries are served on the event loop: no thread per request, and the inbox's group
commit waits on PostgreSQL without holding anything else up (connector.intake.inbox_writer.AsyncInbox). The
decisions are the WSGI receiver's own (connector.intake.webhooks.Intake), so both answer alike. Every
other request (pages, API) goes to the Flask app, run in a pool of threads.

Nothing a client does slowly holds one of those threads: a request's body is read here, on the loop,
within WEB_BODY_TIMEOUT seconds (408 after it, 413 over the size limit), and only a whole request is
handed to Flask. The health checks never queue behind pages: /healthz is answered on the loop and
/readyz on threads of its own.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

from a2wsgi import WSGIMiddleware
from a2wsgi.asgi_typing import HTTPScope, Receive, ReceiveEvent, Scope, Send
from flask import Flask

from connector.base import health
from connector.base.stores import MISS
from connector.intake import inbox, inbox_writer
from connector.intake.webhooks import BROKEN, PREFIX, UNAVAILABLE, Intake, Reply, reply_body
from connector.web.app import create_app

log = logging.getLogger(__name__)


class ClientGone(Exception):
    """The client hung up before its body arrived: there is nobody to answer."""


SLOW_BODY: Reply = (408, "the request body did not arrive in time")
BODYLESS = frozenset({"GET", "HEAD", "OPTIONS", "DELETE"})


class Connector:
    """The ASGI app: webhooks and health checks here, pages and API to Flask."""

    def __init__(self, flask_app: Flask, threads: int = 4):
        # a2wsgi types the environ as a TypedDict, Flask as the plain dict[str, Any] it is (PEP 3333)
        self.pages = WSGIMiddleware(flask_app, workers=threads)  # type: ignore[arg-type]  # environ: same dict
        self.intake = Intake(flask_app.extensions["connector.runtime"], flask_app.extensions["connector.stores"])
        self.writer = inbox_writer.AsyncInbox(self.intake.rt.engine, flask_app.extensions["connector.waker"].mark)
        self.body_timeout = self.intake.rt.settings.body_timeout_seconds
        self.checks = ThreadPoolExecutor(max_workers=2, thread_name_prefix="readyz")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] != "http":
            await self.pages(scope, receive, send)
        elif scope["path"].startswith(PREFIX):
            await self._webhook(scope, receive, send)
        elif scope["path"] in ("/healthz", "/readyz") and scope["method"] in ("GET", "HEAD"):
            await self._health(scope, send)
        else:
            await self._page(scope, receive, send)

    async def _webhook(self, scope: HTTPScope, receive: Receive, send: Send) -> None:
        try:
            status, message = await self.receive(scope, receive)
        except ClientGone:
            return
        except Exception:
            log.exception("webhook receiver: unexpected error on %s", scope["path"])
            status, message = BROKEN
        await answer(send, status, reply_body(status, message))

    async def _health(self, scope: HTTPScope, send: Send) -> None:
        if scope["path"] == "/healthz":
            document, status = health.LIVE, 200
        else:
            document, status = await asyncio.get_running_loop().run_in_executor(
                self.checks, health.readiness, self.intake.rt
            )
        await answer(send, status, json.dumps(document).encode(), head=scope["method"] == "HEAD")

    async def _page(self, scope: HTTPScope, receive: Receive, send: Send) -> None:
        """The page or API request, handed to Flask's threads only once its whole body is here."""
        if scope["method"] in BODYLESS and not _announces_body(scope["headers"]):
            await self.pages(scope, receive, send)
            return
        environ = headers_environ(scope["headers"])
        try:
            body = await self.read_body(environ, receive)
        except ClientGone:
            return
        if isinstance(body, tuple):
            status, message = body
            await answer(send, status, reply_body(status, message), close=True)
            return
        await self.pages(scope, replay(body, receive), send)

    async def read_body(self, environ: dict[str, str], receive: Receive) -> bytes | Reply:
        """The body within the time and size limits, or the answer that refuses it."""
        try:
            # asyncio.timeout, not wait_for: no task of its own for every request's body.
            async with asyncio.timeout(self.body_timeout):
                body = await read_body(environ, receive, self.intake.max_bytes)
        except TimeoutError:
            return SLOW_BODY
        return self.intake.too_large() if body is None else body

    async def receive(self, scope: HTTPScope, receive: Receive) -> Reply:
        target = self.intake.target(scope["path"][len(PREFIX) :], scope["method"])
        if isinstance(target[0], int):
            return target
        platform, slug = target
        cached = self.intake.directory.cached(slug)
        # On a MISS, a database read: off the loop, so other deliveries go on meanwhile.
        store = await asyncio.to_thread(self.intake.directory.get, slug) if cached is MISS else cached
        refusal = self.intake.store_refusal(store, platform, slug)
        if refusal is not None:
            return refusal
        assert store is not None  # store_refusal refuses a missing store
        environ = headers_environ(scope["headers"])
        body = await self.read_body(environ, receive)
        if isinstance(body, tuple):
            return body
        new_row = self.intake.row(platform, store, environ, body)
        if isinstance(new_row, tuple):
            return new_row
        try:
            event_id = await self.writer.record(new_row)
        except inbox.InboxUnavailable:
            return UNAVAILABLE
        return self.intake.stored(new_row, event_id)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.writer.close()
                self.checks.shutdown(wait=False)
                await send({"type": "lifespan.shutdown.complete"})
                return


async def answer(send: Send, status: int, body: bytes, head: bool = False, close: bool = False) -> None:
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", b"%d" % len(body)),
        (b"x-content-type-options", b"nosniff"),
        (b"cache-control", b"no-store"),
    ]
    if close:  # the rest of an unread body may still come: the connection cannot be reused
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else body})


def _announces_body(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    for name, value in headers:
        if name == b"transfer-encoding" or (name == b"content-length" and value.strip() not in (b"", b"0")):
            return True
    return False


def replay(body: bytes, receive: Receive) -> Receive:
    """A receive() that hands over the body already read, then passes on what the server says next
    (a disconnect)."""
    sent = False

    async def again() -> ReceiveEvent:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return again


def headers_environ(headers: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """ASGI headers as WSGI names them (HTTP_X_SHOPIFY_TOPIC, CONTENT_TYPE), repeats joined by commas."""
    environ: dict[str, str] = {}
    for raw_name, raw_value in headers:
        name = raw_name.decode("latin-1").upper().replace("-", "_")
        if name not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            name = "HTTP_" + name
        value = raw_value.decode("latin-1")
        environ[name] = f"{environ[name]},{value}" if name in environ else value
    return environ


async def read_body(environ: dict[str, str], receive: Receive, limit: int) -> bytes | None:
    """The body, or None when it is over `limit`: refused on its Content-Length before reading, or as
    soon as a body without one passes it."""
    try:
        if int(environ.get("CONTENT_LENGTH", "-1")) > limit:
            return None
    except ValueError:
        pass
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        if message["type"] != "http.request":  # none other comes on an HTTP connection: the body ends here
            return b"".join(parts)
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        parts.append(chunk)
        if not message.get("more_body"):
            return b"".join(parts)


def create_asgi_app() -> Connector:
    """The app of one gunicorn worker process."""
    app = create_app()
    door = Connector(app, threads=app.extensions["connector.runtime"].settings.web_threads)
    # What the process holds from here on (Flask, SQLAlchemy, the models: ~140,000 objects) lives as long as
    # it does: out of the collector's sight, a full collection takes well under a millisecond instead of
    # ~40-50 ms during which no delivery of the process is answered.
    gc.freeze()
    return door
