"""The ASGI front door (`connector web`): the WSGI receiver's answers, and its own group commit on an
event loop. The spine, lifecycle and other tests already send their PostgreSQL deliveries through it
(tests/stack.py); these cover what only this door does."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import pytest
from sqlalchemy import create_engine, text

from connector.intake import inbox, inbox_writer
from connector.web.asgi import Connector
from platforms.signatures import sign
from tests.asgi_client import AsgiClient
from tests.conftest import load_fixture
from tests.stack import SECRET, STORE


def _signed(body: bytes, event_id: str, **extra: str) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-Shopify-Topic": "orders/create",
        "X-Shopify-Event-Id": event_id,
        "X-Shopify-Hmac-Sha256": sign(SECRET, body),
        **extra,
    }


BODY = json.dumps(load_fixture("shopify", "order_guest.json")).encode()
PATH = f"/webhooks/shopify/{STORE}"


@pytest.mark.parametrize("stack", ["postgres"], indirect=True)
def test_every_answer_of_the_contract(stack) -> None:  # type: ignore[no-untyped-def]
    client, limit = stack.asgi, stack.rt.settings.webhook_max_bytes
    answers = {
        "stored": client.post(PATH, BODY, _signed(BODY, "a-1")),
        "again": client.post(PATH, BODY, _signed(BODY, "a-1")),
        "forged": client.post(PATH, BODY, {**_signed(BODY, "a-2"), "X-Shopify-Hmac-Sha256": "bm9wZQ=="}),
        "unsigned": client.post(PATH, BODY, {"X-Shopify-Topic": "orders/create"}),
        "unknown store": client.post("/webhooks/shopify/nobody", BODY, _signed(BODY, "a-3")),
        "other platform": client.post("/webhooks/magento/acme", BODY, _signed(BODY, "a-4")),
        "extra path": client.post(PATH + "/more", BODY, _signed(BODY, "a-5")),
        "GET": client.get(PATH),
        "oversized": client.post(PATH, b"{" + b" " * limit + b"}", _signed(b"", "a-6")),
        # No Content-Length: refused as soon as the pieces pass the limit.
        "oversized, chunked": client.post(
            PATH, headers=_signed(b"", "a-7"), chunks=[b"{", b" " * (limit // 2), b" " * (limit // 2), b"}"]
        ),
        "chunked": client.post(PATH, headers=_signed(BODY, "a-8"), chunks=[BODY[:100], BODY[100:]]),
        "not JSON": client.post(PATH, b"{oops", _signed(b"{oops", "a-9")),
        "unprefixed headers": client.post(
            PATH,
            BODY,
            {"Shopify-Topic": "orders/create", "Shopify-Event-Id": "a-10", "Shopify-Hmac-Sha256": sign(SECRET, BODY)},
        ),
    }
    got = {case: (answer.status_code, answer.json["message"]) for case, answer in answers.items()}
    assert all(answer.is_json and answer.json["status"] == answer.status_code for answer in answers.values())
    assert got["stored"] == (200, "stored")
    assert got["again"] == (200, "duplicate delivery: already stored")
    assert got["forged"][0] == got["unsigned"][0] == 401
    assert got["unknown store"][0] == got["other platform"][0] == got["extra path"][0] == 404
    assert got["GET"][0] == 405
    assert got["oversized"][0] == got["oversized, chunked"][0] == 413
    assert got["chunked"] == (200, "stored") and got["unprefixed headers"] == (200, "stored")
    assert got["not JSON"][0] == 400 and "not valid JSON" in got["not JSON"][1]
    events = {e.dedupe_key.split(":", 1)[1]: e for e in stack.events()}
    assert sorted(events) == ["a-1", "a-10", "a-8", "a-9"]
    assert events["a-8"].body == BODY and events["a-1"].headers["X-Shopify-Event-Id"] == "a-1"
    assert (events["a-9"].status, events["a-9"].body) == ("failed", b"{oops")
    stack.run_jobs()
    assert [order.number for order in stack.erp_orders()] == [json.loads(BODY)["name"]]  # once, though sent 4 times


@pytest.mark.parametrize("stack", ["postgres"], indirect=True)
def test_concurrent_deliveries_share_commits_and_each_gets_its_own_answer(stack, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    client, writer = stack.asgi, stack.asgi.app.writer
    batches: list[int] = []
    commit = writer._commit

    async def counted(rows: list[dict]) -> list[int | None]:
        batches.append(len(rows))
        return await commit(rows)

    monkeypatch.setattr(writer, "_commit", counted)
    keys = [f"c-{n}" for n in range(60)]

    async def everyone() -> list:
        # Every delivery twice at once: the store's retry racing the original.
        return await asyncio.gather(
            *(client.arequest("POST", PATH, BODY, _signed(BODY, key)) for key in keys + keys[::-1])
        )

    answers = client.run(everyone())
    assert all(answer.status_code == 200 for answer in answers)
    messages = [answer.json["message"] for answer in answers]
    assert messages.count("stored") == len(keys) and messages.count("duplicate delivery: already stored") == len(keys)
    assert sorted(e.dedupe_key for e in stack.events()) == sorted(f"orders/create|event:{key}" for key in keys)
    assert sum(batches) == 2 * len(keys) and len(batches) < len(keys)  # rows went together, not one by one


@pytest.fixture
def writer(stack):  # type: ignore[no-untyped-def]
    if stack.kind != "postgres":
        pytest.skip("PostgreSQL only")
    return stack.asgi.app.writer


def _row(store_id: int, key: str) -> dict:
    return inbox.row(
        store_id=store_id, platform="shopify", topic="orders/create", dedupe_key=key, headers={}, body=b'{"id": 1}'
    )


def _store_id(stack) -> int:  # type: ignore[no-untyped-def]
    return stack.app.extensions["connector.stores"].get(STORE).id


async def _outcome(writer: inbox_writer.AsyncInbox, new_row: dict) -> object:
    try:
        return await writer.record(new_row)
    except inbox.InboxUnavailable as exc:
        return exc


@pytest.mark.parametrize("stack", ["postgres"], indirect=True)
def test_a_row_the_database_refuses_fails_alone(stack, writer) -> None:  # type: ignore[no-untyped-def]
    store_id, client = _store_id(stack), stack.asgi
    blocker = stack.rt.engine.connect()
    blocker.execute(text("LOCK TABLE inbox_events IN SHARE MODE"))  # inserts wait: the others queue up

    async def deliveries() -> list:
        first = asyncio.ensure_future(_outcome(writer, _row(store_id, "first")))
        await asyncio.sleep(0.2)
        # A row of a store that does not exist breaks the foreign key: it cannot be stored, the others can.
        rows = [_row(store_id, "a"), _row(987654, "bad"), _row(store_id, "b")]
        return await asyncio.gather(first, *(_outcome(writer, row) for row in rows))

    released = threading.Timer(0.6, blocker.rollback)
    released.start()
    first, a, bad, b = client.run(deliveries())
    released.join()
    blocker.close()
    assert isinstance(bad, inbox.InboxUnavailable) and "foreign key" in str(bad)
    assert all(isinstance(event_id, int) for event_id in (first, a, b))
    assert sorted(e.dedupe_key for e in stack.events()) == ["a", "b", "first"]


@pytest.mark.parametrize("stack", ["postgres"], indirect=True)
def test_deliveries_stuck_behind_a_locked_table_are_refused_and_the_next_ones_go_through(stack, writer) -> None:  # type: ignore[no-untyped-def]
    store_id, client = _store_id(stack), stack.asgi
    writer.WAIT_SECONDS = 0.3  # also the statement timeout of its connection
    writer._conn = None  # so the next connection takes it
    blocker = stack.rt.engine.connect()
    blocker.execute(text("LOCK TABLE inbox_events IN SHARE MODE"))

    async def spread_out() -> list:
        # Spread out, so some wait in the queue longer than they may while a batch is stuck.
        tasks = []
        for n in range(8):
            tasks.append(asyncio.ensure_future(_outcome(writer, _row(store_id, f"stuck-{n}"))))
            await asyncio.sleep(0.1)
        return await asyncio.gather(*tasks)

    started = time.monotonic()
    stuck = client.run(spread_out())
    assert time.monotonic() - started < 5
    blocker.rollback()
    blocker.close()
    assert all(isinstance(outcome, inbox.InboxUnavailable) for outcome in stuck), stuck

    async def next_ones() -> list:
        return await asyncio.gather(*(_outcome(writer, _row(store_id, f"after-{n}")) for n in range(4)))

    after = client.run(next_ones())
    assert all(isinstance(event_id, int) for event_id in after), after
    assert sorted(e.dedupe_key for e in stack.events()) == [f"after-{n}" for n in range(4)]


@pytest.mark.parametrize("stack", ["postgres"], indirect=True)
def test_inbox_database_unreachable_means_503_and_nothing_acknowledged(stack) -> None:  # type: ignore[no-untyped-def]
    door = stack.asgi.app
    door.writer = inbox_writer.AsyncInbox(
        create_engine("postgresql+psycopg://postgres@127.0.0.1:9/none"), lambda _s: None
    )
    answer = stack.asgi.post(PATH, BODY, _signed(BODY, "down-1"))
    assert (answer.status_code, answer.json["status"]) == (503, 503)
    assert stack.events() == []


def test_pages_and_health_checks_go_to_the_flask_app_and_sqlite_deliveries_work_too(sqlite_stack) -> None:  # type: ignore[no-untyped-def]
    client = AsgiClient(Connector(sqlite_stack.app))
    try:
        health = client.get("/healthz")
        assert health.status_code == 200 and health.json
        assert client.get("/api/v1/events").status_code == 401  # the Flask app's guard, not ours
        assert client.post(PATH, BODY, _signed(BODY, "lite-1")).status_code == 200
        assert client.post(PATH, BODY, _signed(BODY, "lite-1")).json["message"] == "duplicate delivery: already stored"
        assert [e.dedupe_key for e in sqlite_stack.events()] == ["orders/create|event:lite-1"]
    finally:
        client.close()


def test_lifespan_startup_and_shutdown_complete(sqlite_stack) -> None:  # type: ignore[no-untyped-def]
    door = Connector(sqlite_stack.app)
    incoming = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[str] = []

    async def receive() -> dict:
        return incoming.pop(0)

    async def send(message: dict) -> None:
        sent.append(message["type"])

    asyncio.run(door({"type": "lifespan"}, receive, send))
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


@pytest.mark.parametrize("stack", ["postgres"], indirect=True)
def test_a_connection_that_died_since_its_last_use_is_replaced_without_refusing_anyone(stack, writer) -> None:  # type: ignore[no-untyped-def]
    assert stack.asgi.post(PATH, BODY, _signed(BODY, "r-1")).status_code == 200
    with stack.rt.engine.connect() as admin:  # what a PostgreSQL restart or failover does to it
        admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": writer._conn.info.backend_pid})
    answer = stack.asgi.post(PATH, BODY, _signed(BODY, "r-2"))
    assert (answer.status_code, answer.json["message"]) == (200, "stored")
    assert len(stack.events()) == 2
