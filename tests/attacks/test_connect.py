"""The WooCommerce key callback seen by an attacker: it is public and unsigned (the store's server calls
it), so forged ids, replays of a real callback, and odd or oversized bodies are sent to `connector web`
as served in production. Each gets a 4xx with a JSON reason, is audited, and changes no store."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import requests
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from connector.base.models import AuditEntry, Store
from connector.setup.woo_connect import CALLBACK_PATH
from tests.test_processes import connector

KEY, SECRET = "ck_" + "d4" * 20, "cs_" + "e5" * 20


def _body(user_id: str, **changes: object) -> dict:
    return {
        "key_id": 3,
        "user_id": user_id,
        "consumer_key": KEY,
        "consumer_secret": SECRET,
        "key_permissions": "read_write",
        **changes,
    }


def _rows(served, model, *where):  # type: ignore[no-untyped-def]
    engine = create_engine(served.env["DATABASE_URL"].replace("postgresql://", "postgresql+psycopg://"))
    try:
        with Session(engine) as session:
            return list(session.scalars(select(model).where(*where)))
    finally:
        engine.dispose()


def _post(served, body: object, **kwargs: object) -> requests.Response:  # type: ignore[no-untyped-def]
    data = body if isinstance(body, (bytes, type(x for x in ()))) else json.dumps(body).encode()
    return requests.post(
        served.url(CALLBACK_PATH),
        data=data,
        timeout=10,  # type: ignore[arg-type]
        headers={"Content-Type": "application/json;charset=UTF-8"},
        **kwargs,
    )


def test_forged_and_replayed_callbacks_are_refused_and_audited(served):  # type: ignore[no-untyped-def]
    forged = _post(served, _body("guessed-connection-id-0123456789abcdefghijk"))
    assert forged.status_code == 400 and "unknown" in forged.json()["message"]
    nul = _post(served, _body("a\u0000b", key_permissions="read\u0000"))
    assert nul.status_code == 400 and nul.json()["message"]

    printed = connector(served.env, "store", "connect-woocommerce", "target-shop", "http://127.0.0.1:9").stdout
    user_id = parse_qs(urlsplit(printed.strip().splitlines()[-1]).query)["user_id"][0]
    real = _post(served, _body(user_id))
    assert real.status_code == 200 and real.json()["webhooks_registered"] is False  # no store listens on :9
    replayed = _post(served, _body(user_id, consumer_key="ck_" + "f6" * 20, consumer_secret="cs_" + "f6" * 20))
    assert replayed.status_code == 400 and "used already" in replayed.json()["message"]

    refusals = _rows(served, AuditEntry, AuditEntry.action == "store.connect_refused")
    assert len(refusals) == 3 and all(r.detail["remote"] == "127.0.0.1" for r in refusals)
    assert all(SECRET not in json.dumps(r.detail) for r in refusals)
    (store,) = _rows(served, Store, Store.slug == "target-shop")
    assert SECRET not in (store.secrets or "") and store.settings["url"] == "http://127.0.0.1:9"


def test_odd_and_oversized_callbacks_are_refused_without_a_500(served):  # type: ignore[no-untyped-def]
    for body in (b"{", b"[" * 5000 + b"]" * 5000, b'"just a string"', b"\xff\xfe", b"{}"):
        answer = _post(served, body)
        assert answer.status_code == 400 and answer.json()["message"], (body[:20], answer.text[:200])
    big = _post(served, b'{"user_id": "' + b"x" * 20_000 + b'"}')
    assert big.status_code == 413
    chunked = _post(served, (b'{"user_id": "' + b"x" * 1000 + b'"}' if i == 0 else b" " * 1000 for i in range(40)))
    assert chunked.status_code in (400, 413) and chunked.status_code != 500
    # Any other method is not the callback: the guard sends a stranger to the sign-in page.
    assert requests.get(served.url(CALLBACK_PATH), timeout=5, allow_redirects=False).status_code in (302, 405)
    assert _rows(served, Store) == []
