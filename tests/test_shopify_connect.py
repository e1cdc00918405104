"""Connecting a Shopify store by installing its app from a link (the authorization code grant), against
the fake shop's install page and token endpoint: the whole round trip, and the callbacks that must not
connect anything."""

from __future__ import annotations

import json
import logging
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
import requests
from sqlalchemy import select

from connector.base.models import AuditEntry, Store
from connector.setup.shopify_connect import ALL_SCOPES
from platforms.shopify.webhooks import TOPICS as SHOPIFY_TOPICS
from tests.fakes.shopify_oauth import TokenEndpoint
from tests.test_api import ADMIN, sign_in

SLUG = "new-shop"


def _start(stack, shop, admin=None, **form):  # type: ignore[no-untyped-def]
    """The admin's form on /config; the address Shopify's install page is at."""
    stack.rt.settings = stack.rt.settings.with_(public_base_url="https://connector.example")  # Shopify wants https
    admin = admin or sign_in(stack)
    shop.oauth.scope = ",".join(ALL_SCOPES)
    answer = admin.post(
        "/config/connect/shopify",
        data={
            "csrf_token": admin.csrf,
            "slug": SLUG,
            "shop": shop.shop_domain,
            "client_id": shop.oauth.client_id,
            "client_secret": shop.oauth.client_secret,
            "api_base_url": shop.url,
            **form,
        },
    )
    assert answer.status_code == 302, answer.get_data(as_text=True)[:500]
    return admin, answer.headers["Location"]


def _approve(install_url: str) -> str:
    """The merchant on Shopify's page: sees the scopes, clicks Install; where Shopify sends the browser."""
    page = requests.get(install_url, timeout=5)
    assert page.status_code == 200 and "read_orders" in page.text
    form = dict(parse_qsl(urlsplit(install_url).query))
    back = requests.post(
        install_url.split("?")[0], data={**form, "decision": "install"}, allow_redirects=False, timeout=5
    )
    assert back.status_code == 302
    return back.headers["Location"]


def _local(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def _audit(stack, action: str) -> list[AuditEntry]:  # type: ignore[no-untyped-def]
    with stack.rt.sessions() as session:
        return list(session.scalars(select(AuditEntry).where(AuditEntry.action == action)))


def _store(stack) -> Store | None:  # type: ignore[no-untyped-def]
    with stack.rt.sessions() as session:
        return session.scalars(select(Store).where(Store.slug == SLUG)).first()


@pytest.mark.parametrize("stack", ["sqlite", "postgres"], indirect=True)
def test_install_link_round_trip_connects_the_store_and_its_orders_flow(stack, shop, caplog):
    caplog.set_level(logging.DEBUG)
    admin, install_url = _start(stack, shop)
    query = dict(parse_qsl(urlsplit(install_url).query))
    assert install_url.startswith(f"{shop.url}/admin/oauth/authorize?")
    assert query["client_id"] == shop.oauth.client_id and query["scope"] == ",".join(ALL_SCOPES)
    assert query["redirect_uri"] == stack.rt.settings.public_base_url + "/config/connect/shopify/callback"
    assert shop.oauth.client_secret not in install_url

    callback = _approve(install_url)
    page = admin.get(_local(callback))
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and f"Store {SLUG} connected" in text, text[:800]
    assert "Missing</dt><dd>none" in text and "Webhooks</dt><dd>registered" in text

    store = _store(stack)
    secrets = stack.rt.box.open(store.secrets)
    (issued,) = shop.oauth.issued
    assert issued.grant == "authorization_code" and issued.expires is not None  # an expiring offline token
    assert secrets["issued_token"] == issued.token and secrets["issued_refresh_token"].startswith("shprt_")
    assert store.settings["client_id"] == shop.oauth.client_id and store.platform == "shopify"
    assert {h["topic"] for h in shop.webhooks.values()} >= {"orders/create", "orders/updated"}
    (done,) = _audit(stack, "store.connect")
    assert done.actor == f"{ADMIN[0]} (Shopify install)" and done.target == SLUG

    shown = text + admin.get("/config").get_data(as_text=True) + json.dumps(admin.get("/api/v1/config").json)
    shown += json.dumps([a.detail for a in _audit(stack, "store.connect") + _audit(stack, "store.connect_started")])
    shown += caplog.text  # every log line of the exchange
    assert caplog.records  # the exchange was logged: the check below reads real lines
    for secret in (shop.oauth.client_secret, issued.token, secrets["issued_refresh_token"]):
        assert secret not in shown

    order = {"id": 4401, "name": "#4401", "currency": "USD", "line_items": []}
    assert stack.post_shopify(order, store=SLUG, secret=shop.oauth.client_secret).status_code == 200


def test_a_replayed_callback_connects_nothing_more_and_is_audited(sqlite_stack, shop):
    admin, install_url = _start(sqlite_stack, shop)
    callback = _approve(install_url)
    assert admin.get(_local(callback)).status_code == 200
    again = admin.get(_local(callback))
    assert again.status_code == 400 and "used already" in again.get_data(as_text=True)
    (refused,) = _audit(sqlite_stack, "store.connect_refused")
    assert "used already" in refused.detail["reason"] and refused.actor == ADMIN[0]
    assert len(shop.oauth.issued) == 1  # the code was not exchanged twice


def _forged(callback: str, **changes: str) -> str:
    query = dict(parse_qsl(urlsplit(callback).query))
    return f"{urlsplit(callback).path}?{urlencode({**query, **changes})}"


@pytest.mark.parametrize(
    "change, reason",
    [
        ({"code": "attacker-code"}, "hmac does not match"),
        ({"hmac": "0" * 64}, "hmac does not match"),
        ({"state": "a-state-we-never-issued"}, "unknown"),
        ({"timestamp": "1500000000"}, "over a day old"),
    ],
)
def test_a_forged_callback_is_refused_audited_and_connects_nothing(sqlite_stack, shop, change, reason):
    admin, install_url = _start(sqlite_stack, shop)
    callback = _approve(install_url)
    answer = admin.get(_forged(callback, **change))
    assert answer.status_code == 400 and reason in answer.get_data(as_text=True)
    assert _store(sqlite_stack) is None and shop.oauth.issued == []
    (refused,) = _audit(sqlite_stack, "store.connect_refused")
    assert reason in refused.detail["reason"] and refused.detail["address"]


@pytest.mark.parametrize(
    "shop_host, reason",
    [("evil.example.com", "is not a myshopify.com store"), ("other-shop.myshopify.com", "not fake-shop.myshopify.com")],
)
def test_a_callback_for_another_shop_is_refused_even_when_signed(sqlite_stack, shop, shop_host, reason):
    admin, install_url = _start(sqlite_stack, shop)
    query = dict(parse_qsl(urlsplit(_approve(install_url)).query))
    query.pop("hmac")
    signed = TokenEndpoint(shop.oauth.client_id, shop.oauth.client_secret).signed_query({**query, "shop": shop_host})
    answer = admin.get(f"/config/connect/shopify/callback?{urlencode(signed)}")
    assert answer.status_code == 400 and reason in answer.get_data(as_text=True)
    assert _store(sqlite_stack) is None


def test_a_callback_without_the_admins_session_connects_nothing(sqlite_stack, shop):
    _admin, install_url = _start(sqlite_stack, shop)
    callback = _approve(install_url)
    stranger = sqlite_stack.app.test_client()
    answer = stranger.get(_local(callback))
    assert answer.status_code == 302 and "/login" in answer.headers["Location"]
    assert _store(sqlite_stack) is None


def test_the_form_refuses_a_host_that_is_not_a_shopify_store(sqlite_stack, shop):
    admin = sign_in(sqlite_stack)
    answer = admin.post(
        "/config/connect/shopify",
        data={
            "csrf_token": admin.csrf,
            "slug": SLUG,
            "shop": "shop.example.com",
            "client_id": "x",
            "client_secret": "y",
        },
    )
    assert answer.status_code == 400 and "myshopify.com host" in answer.get_data(as_text=True)


# ---- the operator's way: `connector store connect-shopify` ----------------------------------------


def _cli(stack, *args: str, secret: str):  # type: ignore[no-untyped-def]
    from click.testing import CliRunner

    from connector.cli import main

    env = {
        "DATABASE_URL": str(stack.rt.settings.database_url),
        "CONNECTOR_ENCRYPTION_KEY": "test-encryption-key",
        "PUBLIC_BASE_URL": "https://connector.example",
        "SHOPIFY_CLIENT_SECRET": secret,
    }
    return CliRunner().invoke(main, ["store", *args], env=env)


def test_the_cli_connects_an_own_app_store_with_client_credentials(sqlite_stack, shop):
    shop.oauth.scope = ",".join(ALL_SCOPES)
    result = _cli(
        sqlite_stack,
        "connect-shopify",
        "cli-shop",
        shop.shop_domain,
        "--client-id",
        shop.oauth.client_id,
        "--api-base-url",
        shop.url,
        secret=shop.oauth.client_secret,
    )
    assert result.exit_code == 0, result.output
    assert "connected cli-shop" in result.output and f"webhooks: {len(SHOPIFY_TOPICS)} created" in result.output
    with sqlite_stack.rt.sessions() as session:
        store = session.scalars(select(Store).where(Store.slug == "cli-shop")).one()
    (issued,) = shop.oauth.issued
    assert issued.grant == "client_credentials"
    assert sqlite_stack.rt.box.open(store.secrets)["issued_token"] == issued.token
    assert shop.oauth.client_secret not in result.output and issued.token not in result.output


def test_the_cli_says_a_wrong_client_secret_is_refused_without_showing_it(sqlite_stack, shop):
    result = _cli(
        sqlite_stack,
        "connect-shopify",
        "cli-shop",
        shop.shop_domain,
        "--client-id",
        shop.oauth.client_id,
        "--api-base-url",
        shop.url,
        secret="shpss_not_the_secret_0000",
    )
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert "refused" in result.output.lower() and "shpss_not_the_secret_0000" not in result.output
    with sqlite_stack.rt.sessions() as session:  # nothing half-connected is left behind
        assert session.scalars(select(Store).where(Store.slug == "cli-shop")).first() is None


def test_the_cli_prints_an_install_link_for_an_admin_to_open(sqlite_stack, shop):
    result = _cli(
        sqlite_stack,
        "connect-shopify",
        "cli-shop",
        shop.shop_domain,
        "--client-id",
        shop.oauth.client_id,
        "--install-link",
        secret=shop.oauth.client_secret,
    )
    assert result.exit_code == 0, result.output
    link = result.output.strip().splitlines()[-1]
    query = dict(parse_qsl(urlsplit(link).query))
    assert link.startswith(f"https://{shop.shop_domain}/admin/oauth/authorize?") and query["state"]
    assert query["redirect_uri"] == "https://connector.example/config/connect/shopify/callback"


# ---- what the store granted, on /config ---------------------------------------------------------


def test_test_connection_names_the_scopes_a_switched_on_feature_lacks(sqlite_stack, shop):
    admin, install_url = _start(sqlite_stack, shop)
    # No write_inventory, no read_returns.
    shop.oauth.scope = "read_orders,read_customers,read_products,read_inventory,read_locations"
    assert admin.get(_local(_approve(install_url))).status_code == 200
    tested = admin.post(f"/config/stores/{SLUG}/test", data={"csrf_token": admin.csrf}, follow_redirects=True)
    text = tested.get_data(as_text=True)
    assert (
        "Missing scopes — returns: read_returns; inventory: write_inventory; "
        "fulfillment: read_merchant_managed_fulfillment_orders"
    ) in text
    assert "receipts: write_orders" in text  # marking orders paid from the ERP's receipts
    # Shopify refuses returns/* without read_returns: not subscribed, and the webhooks page says what to add.
    assert not any(h["topic"].startswith("returns/") for h in shop.webhooks.values())
    assert any(h["topic"] == "orders/create" for h in shop.webhooks.values())
    page = admin.get(f"/config/stores/{SLUG}/webhooks").get_data(as_text=True)
    assert page.count("needs the read_returns scope") == 6

    with sqlite_stack.rt.sessions.begin() as session:  # stock sync switched off: its scopes are not asked for
        store = session.scalars(select(Store).where(Store.slug == SLUG)).one()
        store.settings = {**store.settings, "inventory_interval_minutes": 0}
    shop.oauth.scope += (
        ",read_merchant_managed_fulfillment_orders,write_merchant_managed_fulfillment_orders,read_returns,write_orders"
    )
    shop.oauth.issued.clear()
    from connector.base.clients import forget
    from connector.base.tokens import StoreTokens

    forget()
    with sqlite_stack.rt.sessions() as session:
        sid = session.scalars(select(Store.id).where(Store.slug == SLUG)).one()
    StoreTokens(sqlite_stack.rt, sid).renew(refused=sqlite_stack.rt.box.open(store.secrets)["issued_token"])
    tested = admin.post(f"/config/stores/{SLUG}/test", data={"csrf_token": admin.csrf}, follow_redirects=True)
    assert "Every scope the switched-on features need is granted" in tested.get_data(as_text=True)


def test_a_slug_that_is_bad_or_another_platforms_is_refused_before_going_to_shopify(sqlite_stack, shop):
    admin = sign_in(sqlite_stack)
    for slug, reason in (("Not A Slug!", "lower-case letters"), ("acme-us", "woocommerce store has this slug")):
        if slug == "acme-us":
            with sqlite_stack.rt.sessions.begin() as session:
                session.scalars(select(Store).where(Store.slug == slug)).one().platform = "woocommerce"
        answer = admin.post(
            "/config/connect/shopify",
            data={
                "csrf_token": admin.csrf,
                "slug": slug,
                "shop": shop.shop_domain,
                "client_id": "x",
                "client_secret": "y",
            },
        )
        assert answer.status_code == 400 and reason in answer.get_data(as_text=True)


def test_a_client_secret_one_past_its_limit_is_refused_before_going_to_shopify(sqlite_stack, shop):
    from mappings.text_fields import SECRET_MAX

    admin = sign_in(sqlite_stack)
    for secret, status in (("s" * (SECRET_MAX + 1), 400), ("s" * SECRET_MAX, 302)):
        answer = admin.post(
            "/config/connect/shopify",
            data={
                "csrf_token": admin.csrf,
                "slug": SLUG,
                "shop": shop.shop_domain,
                "client_id": "x",
                "client_secret": secret,
            },
        )
        assert answer.status_code == status
    assert "client_secret: at most" in admin.post(
        "/config/connect/shopify",
        data={
            "csrf_token": admin.csrf,
            "slug": SLUG,
            "shop": shop.shop_domain,
            "client_id": "x",
            "client_secret": "s" * (SECRET_MAX + 1),
        },
    ).get_data(as_text=True)
