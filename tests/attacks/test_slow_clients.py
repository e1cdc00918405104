"""Slow clients against `connector web` as it runs: bodies that never finish hold no page thread, and
the health checks answer whatever the page pool is doing."""

from __future__ import annotations

import functools
import socket
import time

import requests

from tests.attacks.conftest import BODY_TIMEOUT


def _stalled_login(served) -> socket.socket:  # type: ignore[no-untyped-def]
    """A POST /login that announces 100,000 bytes and sends 7."""
    host, port = served.address.split(":")
    sock = socket.create_connection((host, int(port)))
    sock.sendall(
        b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        b"Content-Length: 100000\r\n\r\nemail=a"
    )
    return sock


def test_stalled_bodies_hold_no_page_thread_and_are_refused_in_time(served):
    stalled = [_stalled_login(served) for _ in range(12)]
    try:
        time.sleep(0.5)  # every one of them has sent its headers and its 7 bytes
        for path, wanted in (("/healthz", 200), ("/readyz", 200), ("/api/v1/session", 401), ("/login", 200)):
            started = time.monotonic()
            reply = requests.get(served.url(path), timeout=BODY_TIMEOUT)
            assert reply.status_code == wanted, (path, reply.text)
            assert time.monotonic() - started < 1.5, path
        deadline = time.monotonic() + BODY_TIMEOUT + 5
        for sock in stalled:
            sock.settimeout(max(0.1, deadline - time.monotonic()))
            answer = b"".join(iter(functools.partial(sock.recv, 4096), b""))  # until the server closes it
            assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
            assert b"did not arrive in time" in answer
    finally:
        for sock in stalled:
            sock.close()


def test_a_page_body_over_the_limit_is_refused_before_it_is_read(served):
    reply = requests.post(
        served.url("/login"),
        data=b"x" * (3 * 1024 * 1024),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=10,
    )
    assert reply.status_code == 413


def test_a_whole_body_still_reaches_the_page(served):
    reply = requests.post(served.url("/login"), data={"email": "nobody@example.com", "password": "x"}, timeout=10)
    assert reply.status_code in (200, 400, 401, 403), reply.status_code  # the page answered, not the door
    assert "did not arrive" not in reply.text


def test_a_webhook_whose_body_never_finishes_gets_408_and_stores_nothing(sqlite_stack):
    import asyncio

    from connector.web.asgi import Connector

    door = Connector(sqlite_stack.app)
    door.body_timeout = 0.3
    sent: list[dict] = []

    async def receive() -> dict:
        if not sent and not getattr(receive, "started", False):
            receive.started = True  # type: ignore[attr-defined]
            return {"type": "http.request", "body": b'{"id": 1', "more_body": True}
        await asyncio.sleep(3600)  # the rest never comes
        return {}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/webhooks/shopify/acme-us",
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", b"5000"),
            (b"x-shopify-topic", b"orders/create"),
            (b"x-shopify-hmac-sha256", b"x"),
        ],
    }
    asyncio.run(asyncio.wait_for(door(scope, receive, send), 5))
    assert sent[0]["status"] == 408
    assert sqlite_stack.events() == []
