"""The web app as `connector web` (and so the Procfile) serves it:
`gunicorn --worker-class uvicorn_worker.UvicornWorker 'connector.asgi:create_asgi_app()'`.

Webhook deliveries are served on the event loop: no thread per request, and the inbox's group
commit waits on PostgreSQL without holding anything else up (connector.inbox.AsyncInbox). The
decisions are the WSGI receiver's own (connector.webhooks.Intake), so both answer alike. Every
other request (pages, API, health checks) goes to the Flask app, run in a pool of threads.
"""
from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable

from a2wsgi import WSGIMiddleware
from flask import Flask

from connector import inbox
from connector.stores import MISS
from connector.webhooks import BROKEN, PREFIX, UNAVAILABLE, Intake, Reply, reply_body

log = logging.getLogger(__name__)

Scope = dict
Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]


class ClientGone(Exception):
    """The client hung up before its body arrived: there is nobody to answer."""


class Connector:
    """The ASGI app: webhooks here, everything else to Flask."""

    def __init__(self, flask_app: Flask, threads: int = 4):
        self.pages = WSGIMiddleware(flask_app, workers=threads)
        self.intake = Intake(flask_app.extensions["connector.runtime"], flask_app.extensions["connector.stores"])
        self.writer = inbox.AsyncInbox(self.intake.rt.engine, flask_app.extensions["connector.waker"].mark)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] != "http" or not scope["path"].startswith(PREFIX):
            await self.pages(scope, receive, send)
        else:
            await self._webhook(scope, receive, send)

    async def _webhook(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            status, message = await self.receive(scope, receive)
        except ClientGone:
            return
        except Exception:
            log.exception("webhook receiver: unexpected error on %s", scope["path"])
            status, message = BROKEN
        body = reply_body(status, message)
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]})
        await send({"type": "http.response.body", "body": body})

    async def receive(self, scope: Scope, receive: Receive) -> Reply:
        target = self.intake.target(scope["path"][len(PREFIX):], scope["method"])
        if isinstance(target[0], int):
            return target  # type: ignore[return-value]
        platform, slug = target
        store = self.intake.directory.cached(slug)
        if store is MISS:  # a database read: off the loop, so other deliveries go on meanwhile
            store = await asyncio.to_thread(self.intake.directory.get, slug)
        refusal = self.intake.store_refusal(store, platform, slug)  # type: ignore[arg-type]
        if refusal is not None:
            return refusal
        environ = headers_environ(scope["headers"])
        body = await read_body(environ, receive, self.intake.max_bytes)
        if body is None:
            return self.intake.too_large()
        new_row = self.intake.row(platform, store, environ, body)  # type: ignore[arg-type]
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
                await send({"type": "lifespan.shutdown.complete"})
                return


def headers_environ(headers: list[tuple[bytes, bytes]]) -> dict[str, str]:
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
    parts, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        parts.append(chunk)
        if not message.get("more_body"):
            return b"".join(parts)


def create_asgi_app() -> Connector:
    from connector.app import create_app

    return Connector(create_app(), threads=int(os.environ.get("WEB_THREADS", "4")))
