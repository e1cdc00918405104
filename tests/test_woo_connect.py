"""Connecting a WooCommerce store through WooCommerce's key approval (wc-auth): the admin starts it on
/config, the merchant approves on the (fake) store, the store's server sends the key to our callback,
and only then is the browser sent back. Replays, forgeries, expired and malformed callbacks are
refused (400, audited), and the consumer secret is never shown or logged."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from sqlalchemy import select

from connector.base import connections
from connector.base.models import AuditEntry, Store
from connector.setup.woo_connect import CALLBACK_PATH, RETURN_PATH, SCOPE, begin
from platforms.woocommerce.webhooks import TOPICS as WOO_TOPICS
from tests.conftest import load_fixture
from tests.fakes.woocommerce import FakeWooCommerce
from tests.stack import Stack
from tests.storefronts import Served, fake_woo
from tests.test_api import ADMIN, sign_in

SLUG = "acme-woo"
Live = tuple[Stack, Served, FakeWooCommerce]


@pytest.fixture
def live(stack: Stack) -> Iterator[Live]:
    """The connector on a real port (the store's server calls it back) and a fake WooCommerce store."""
    served = Served(stack)
    stack.rt.settings = stack.rt.settings.with_(public_base_url=served.url)
    woo = fake_woo()
    try:
        yield stack, served, woo
    finally:
        woo.stop()
        served.stop()


@pytest.fixture
def quiet(sqlite_stack: Stack) -> Stack:
    sqlite_stack.rt.settings = sqlite_stack.rt.settings.with_(public_base_url="https://connector.example")
    return sqlite_stack


def _start(client, url: str, slug: str = SLUG) -> str:  # type: ignore[no-untyped-def]
    answer = client.post("/config/connect/woocommerce", data={"slug": slug, "url": url, "csrf_token": client.csrf})
    assert answer.status_code == 302, answer.get_data(as_text=True)
    return answer.headers["Location"]


def _approval_form(approval_url: str) -> tuple[str, dict[str, str]]:
    """What the merchant's browser does on the store: open the approval page, read its form."""
    page = requests.get(approval_url, timeout=5)
    assert page.status_code == 200 and "Approve" in page.text and "Deny" in page.text
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.text))
    return f"{urlsplit(approval_url).scheme}://{urlsplit(approval_url).netloc}", fields


def _press(approval_url: str, button: str) -> requests.Response:
    base, fields = _approval_form(approval_url)
    return requests.post(f"{base}/wc-auth/v1/{button}", data=fields, allow_redirects=False, timeout=30)


def _audit(stack: Stack, action: str) -> list[AuditEntry]:
    with stack.rt.sessions() as session:
        return list(session.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)))


def _stores(stack: Stack) -> set[str]:
    with stack.rt.sessions() as session:
        return set(session.scalars(select(Store.slug)))


def _callback(stack: Stack, body: dict | bytes, **headers: str):  # type: ignore[no-untyped-def]
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return stack.app.test_client().post(
        CALLBACK_PATH, data=data, headers={"Content-Type": "application/json", **headers}
    )


def _keys(user_id: str, **changes: object) -> dict:
    return {
        "key_id": 7,
        "user_id": user_id,
        "consumer_key": "ck_" + "a1" * 20,
        "consumer_secret": "cs_" + "b2" * 20,
        "key_permissions": "read_write",
        **changes,
    }


# ---- the whole flow, on both stacks -----------------------------------------------------------------


def test_an_admin_connects_a_store_and_its_orders_flow(live: Live, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    stack, served, woo = live
    admin = sign_in(stack)
    approval = _start(admin, woo.url)
    query = {k: v[0] for k, v in parse_qs(urlsplit(approval).query).items()}
    assert approval.startswith(f"{woo.url}/wc-auth/v1/authorize?")
    assert query["scope"] == SCOPE and query["return_url"] == served.url + RETURN_PATH
    assert query["callback_url"] == served.url + CALLBACK_PATH and len(query["user_id"]) >= 40

    approved = _press(approval, "access_granted")
    assert approved.status_code == 302, approved.text
    back = urlsplit(approved.headers["Location"])
    assert f"{back.scheme}://{back.netloc}{back.path}" == served.url + RETURN_PATH
    assert parse_qs(back.query) == {"success": ["1"], "user_id": [query["user_id"]]}
    assert [c["status"] for c in woo.approval.callbacks] == [200]  # the key came before the browser

    with stack.rt.sessions() as session:
        store = session.scalars(select(Store).where(Store.slug == SLUG)).one()
        sealed, info = store.secrets, stack.rt.store_info(store)
    (issued,) = [k for k in woo.keys if k != woo.consumer_key]
    secret = woo.keys[issued]
    assert info.platform == "woocommerce" and info.settings["url"] == woo.url
    assert info.secrets["consumer_key"] == issued and info.secrets["consumer_secret"] == secret
    assert issued not in sealed and secret not in sealed and len(info.secrets["webhook_secret"]) >= 40

    hooks = list(woo.webhooks.values())
    assert sorted(h["topic"] for h in hooks) == sorted(WOO_TOPICS)
    assert {h["delivery_url"] for h in hooks} == {f"{served.url}/webhooks/woocommerce/{SLUG}"}
    assert {h["secret"] for h in hooks} == {info.secrets["webhook_secret"]}

    page = admin.get(back.path + "?" + back.query)
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "Connected" in html and "order.created" in html

    (entry,) = _audit(stack, "store.connect")
    assert entry.actor == f"{ADMIN[0]} (WooCommerce key approval)" and entry.target == SLUG
    assert sorted(entry.detail["webhooks"]["created"]) == sorted(WOO_TOPICS)

    # The merchant changes an order in WooCommerce: the store signs the delivery with our new secret.
    order = load_fixture("woocommerce", "order_processing_coupon.json")
    oid = woo.add_order(doc=order)
    changed = requests.put(
        f"{woo.url}/wp-json/wc/v3/orders/{oid}", json={"customer_note": "gift wrap"}, auth=(issued, secret), timeout=5
    )
    assert changed.status_code == 200
    woo.wait_for_deliveries()
    assert [d["status"] for d in woo.deliveries] == [200]
    stack.app.extensions["connector.waker"].flush()
    stack.run_jobs()
    (event,) = [e for e in stack.events() if e.topic == "order.updated"]
    assert event.status == "succeeded"
    assert len(stack.erp_orders()) == 1

    # Nothing shows the consumer secret: logs, audit log, pages, the API.
    assert "/wc-auth/v1" in caplog.text or "wp-json" in caplog.text  # the logs did see the exchange
    for text in (
        caplog.text,
        json.dumps([a.detail for a in _audit(stack, "store.connect")]),
        html,
        admin.get("/config").get_data(as_text=True),
        admin.get("/api/v1/config").get_data(as_text=True),
        admin.get(f"/config/stores/{SLUG}").get_data(as_text=True),
        admin.get("/api/v1/audit").get_data(as_text=True),
    ):
        assert secret not in text and issued not in text


def test_the_merchant_denies_and_nothing_is_connected(live: Live) -> None:
    stack, served, woo = live
    admin = sign_in(stack)
    denied = _press(_start(admin, woo.url), "access_denied")
    assert denied.status_code == 302 and "success=0" in denied.headers["Location"]
    page = admin.get(urlsplit(denied.headers["Location"]).path + "?" + urlsplit(denied.headers["Location"]).query)
    assert page.status_code == 200 and "Not approved" in page.get_data(as_text=True)
    assert SLUG not in _stores(stack) and woo.approval.callbacks == [] and list(woo.keys) == [woo.consumer_key]


def test_an_approval_for_a_forged_id_is_refused_and_the_store_drops_the_key(live: Live) -> None:
    stack, served, woo = live
    approval = _start(sign_in(stack), woo.url)
    forged = approval.replace(parse_qs(urlsplit(approval).query)["user_id"][0], "forged-by-someone-else-000000")
    answer = _press(forged, "access_granted")
    assert answer.status_code == 401 and "unable to send the consumer data" in answer.text
    assert [c["status"] for c in woo.approval.callbacks] == [400]
    assert list(woo.keys) == [woo.consumer_key]  # WooCommerce deletes a key its callback refused
    assert SLUG not in _stores(stack)
    (refusal,) = _audit(stack, "store.connect_refused")
    assert "unknown" in refusal.detail["reason"] and refusal.detail["remote"] == "127.0.0.1"


# ---- the callback's refusals ----------------------------------------------------------------------


def test_a_replayed_callback_is_refused_and_a_failed_registration_is_kept(quiet: Stack) -> None:
    stack = quiet
    token = urlsplit(begin(stack.rt, SLUG, "http://127.0.0.1:9", "admin@example.com")).query
    user_id = parse_qs(token)["user_id"][0]
    first = _callback(stack, _keys(user_id))
    assert first.status_code == 200 and first.json["webhooks_registered"] is False
    assert SLUG in _stores(stack)
    (connected,) = _audit(stack, "store.connect")
    assert connected.detail["webhook_error"] and not connected.detail["webhooks"]
    assert connections.outcome_of(stack.rt, "woocommerce", user_id)["outcome"]["webhook_error"]

    again = _callback(stack, _keys(user_id, consumer_key="ck_" + "c3" * 20))
    assert again.status_code == 400 and "used already" in again.json["message"]
    (refusal,) = _audit(stack, "store.connect_refused")
    assert "replayed" in refusal.detail["reason"] and refusal.detail["remote"]
    with stack.rt.sessions() as session:
        store = session.scalars(select(Store).where(Store.slug == SLUG)).one()
        assert stack.rt.box.open(store.secrets)["consumer_key"] == "ck_" + "a1" * 20  # the replay changed nothing


def test_a_forged_callback_is_refused_audited_and_creates_nothing(quiet: Stack) -> None:
    stack = quiet
    answer = _callback(stack, _keys("made-up-connection-id-0000000000000000000"))
    assert answer.status_code == 400 and "unknown" in answer.json["message"]
    assert SLUG not in _stores(stack)
    (refusal,) = _audit(stack, "store.connect_refused")
    assert refusal.actor.startswith("woocommerce callback from") and "cs_" not in json.dumps(refusal.detail)


def test_a_callback_for_an_expired_connection_is_refused(quiet: Stack) -> None:
    stack = quiet
    token = connections.start(
        stack.rt, "woocommerce", SLUG, "https://shop.example", "admin@example.com", lifetime=timedelta(seconds=-1)
    )
    answer = _callback(stack, _keys(token))
    assert answer.status_code == 400 and "30 minutes" in answer.json["message"]
    assert SLUG not in _stores(stack) and len(_audit(stack, "store.connect_refused")) == 1


@pytest.mark.parametrize(
    "change, why",
    [
        ({"key_permissions": "read"}, "permissions"),
        ({"consumer_key": "ck_short"}, "consumer_key"),
        ({"consumer_key": "xx_" + "a1" * 20}, "consumer_key"),
        ({"consumer_secret": None}, "consumer_secret"),
        ({"user_id": 12}, "user_id"),
    ],
)
def test_a_callback_with_an_unusable_key_is_refused_without_spending_the_connection(
    quiet: Stack, change: dict, why: str
) -> None:
    stack = quiet
    user_id = parse_qs(urlsplit(begin(stack.rt, SLUG, "http://127.0.0.1:9", "admin@example.com")).query)["user_id"][0]
    answer = _callback(stack, {**_keys(user_id), **change})
    assert answer.status_code == 400 and why in answer.json["message"]
    assert "b2b2" not in answer.get_data(as_text=True) and SLUG not in _stores(stack)
    assert _callback(stack, _keys(user_id)).status_code == 200  # the merchant's approval still works


@pytest.mark.parametrize(
    "body, status",
    [
        (b"not json", 400),
        (b"[1, 2]", 400),
        (b"[" * 100 + b"]" * 100, 400),
        (b"", 400),
        (b'{"user_id": "' + b"x" * 17000 + b'"}', 413),
    ],
)
def test_a_malformed_or_oversized_callback_is_a_clean_refusal(quiet: Stack, body: bytes, status: int) -> None:
    answer = _callback(quiet, body)
    assert answer.status_code == status and answer.is_json and answer.json["message"]


def test_the_callback_needs_no_session_and_no_csrf_but_the_pages_do(quiet: Stack) -> None:
    anonymous = quiet.app.test_client()
    assert anonymous.post(CALLBACK_PATH, json={}).status_code == 400  # not 401/403: the store has no session
    assert anonymous.get("/config/connect/woocommerce").status_code == 302
    assert anonymous.get(RETURN_PATH + "?success=1&user_id=x").status_code == 302
    admin = sign_in(quiet)
    assert admin.post("/config/connect/woocommerce", data={"slug": SLUG, "url": "https://s.example"}).status_code == 403


# ---- the form and the command ------------------------------------------------------------------------


def test_the_form_refuses_bad_slugs_urls_and_an_http_callback_off_this_machine(quiet: Stack) -> None:
    admin = sign_in(quiet)
    assert "Connect a WooCommerce store" in admin.get("/config").get_data(as_text=True)
    for slug, url, field in (
        ("Bad Slug!", "https://s.example", "slug"),
        (SLUG, "ftp://s.example", "url"),
        ("acme-us", "https://s.example", "slug"),
    ):  # acme-us is a Shopify store
        answer = admin.post("/config/connect/woocommerce", data={"slug": slug, "url": url, "csrf_token": admin.csrf})
        assert answer.status_code == 400 and 'aria-invalid="true"' in answer.get_data(as_text=True), field
    quiet.rt.settings = quiet.rt.settings.with_(public_base_url="http://connector.example")
    answer = admin.post(
        "/config/connect/woocommerce", data={"slug": SLUG, "url": "https://s.example", "csrf_token": admin.csrf}
    )
    assert answer.status_code == 400 and "PUBLIC_BASE_URL" in answer.get_data(as_text=True)


def test_the_return_page_for_an_unknown_id_says_so(quiet: Stack) -> None:
    admin = sign_in(quiet)
    answer = admin.get(RETURN_PATH + "?success=1&user_id=nobody-started-this")
    assert answer.status_code == 404 and "Unknown connection" in answer.get_data(as_text=True)


def test_the_command_prints_the_approval_link(quiet: Stack, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from click.testing import CliRunner

    from connector.cli import main

    env = {
        "DATABASE_URL": str(quiet.rt.settings.database_url),
        "CONNECTOR_ENCRYPTION_KEY": "test-encryption-key",
        "CONNECTOR_INSTANCE_PATH": str(tmp_path / "instance"),
        "PUBLIC_BASE_URL": "https://connector.example",
    }
    result = CliRunner().invoke(main, ["store", "connect-woocommerce", SLUG, "https://shop.example.com/"], env=env)
    assert result.exit_code == 0, result.output
    (link,) = [line for line in result.output.splitlines() if line.startswith("https://")]
    assert link.startswith("https://shop.example.com/wc-auth/v1/authorize?")
    query = {k: v[0] for k, v in parse_qs(urlsplit(link).query).items()}
    assert query["scope"] == "read_write" and query["app_name"]
    assert query["return_url"] == "https://connector.example/config/connect/woocommerce/return"
    assert query["callback_url"] == "https://connector.example/connect/woocommerce/callback"
    assert connections.outcome_of(quiet.rt, "woocommerce", query["user_id"])["store_slug"] == SLUG
    (started,) = _audit(quiet, "store.connect_start")
    assert started.actor.startswith("cli:")
    refused = CliRunner().invoke(main, ["store", "connect-woocommerce", "Not A Slug", "https://s.example"], env=env)
    assert refused.exit_code == 2 and "slug" in refused.output
