"""A Shopify store whose app is uninstalled: disconnected once Shopify confirms it, never on a replayed
body alone; nothing calls it while disconnected; connecting again reads back what was missed."""

from __future__ import annotations

from sqlalchemy import select

from connector.base.models import AuditEntry, Store
from tests.stack import STORE
from tests.storefronts import store_id
from tests.test_api import sign_in
from tests.test_shopify_tokens import _connect

SHOP_BODY = {
    "id": 548380009,
    "name": "Fake shop",
    "myshopify_domain": "fake-shop.myshopify.com",
    "domain": "shop.example.com",
    "email": "owner@example.com",
    "plan_name": "basic",
}


def _row(stack, sid: int) -> Store:  # type: ignore[no-untyped-def]
    with stack.rt.sessions() as session:
        return session.get(Store, sid)


def test_an_uninstall_shopify_confirms_disconnects_the_store_and_stops_calls(sqlite_stack, shop):
    sid = _connect(sqlite_stack, shop)
    shop.oauth.client_secret = "shpss_rotated_after_uninstall"  # the app is gone: no token is issued any more
    shop.oauth.issued.clear()
    assert (
        sqlite_stack.post_shopify(SHOP_BODY, topic="app/uninstalled", secret="shpss_fake_client_secret").status_code
        == 200
    )
    sqlite_stack.run_jobs()
    (event,) = sqlite_stack.events()
    assert event.status == "succeeded", event.last_error
    store = _row(sqlite_stack, sid)
    secrets = sqlite_stack.rt.box.open(store.secrets)
    assert store.disconnected_at is not None and store.active  # shop/redact still comes in 48 h
    assert "issued_token" not in secrets and "access_token" not in secrets and "client_id" in store.settings
    with sqlite_stack.rt.sessions() as session:
        (entry,) = session.scalars(select(AuditEntry).where(AuditEntry.action == "store.disconnected"))
    assert entry.actor == f"Shopify webhook (event {event.id})"

    admin = sign_in(sqlite_stack)
    page = admin.get("/config").get_data(as_text=True)
    assert "disconnected" in page and "install it again" in page
    test = admin.post(f"/config/stores/{STORE}/test", data={"csrf_token": admin.csrf}, follow_redirects=True)
    assert "is disconnected" in test.get_data(as_text=True)


def test_a_replayed_uninstall_of_a_working_store_changes_nothing_until_an_admin_confirms(sqlite_stack, shop):
    sid = _connect(sqlite_stack, shop)
    assert (
        sqlite_stack.post_shopify(SHOP_BODY, topic="app/uninstalled", secret=shop.oauth.client_secret).status_code
        == 200
    )
    sqlite_stack.run_jobs()
    (event,) = sqlite_stack.events()
    assert event.status == "failed" and "may be a replay" in event.last_error
    assert _row(sqlite_stack, sid).disconnected_at is None
    admin = sign_in(sqlite_stack)
    assert admin.post(f"/api/v1/events/{event.id}/confirm", headers={"X-CSRF-Token": admin.csrf}).status_code == 200
    sqlite_stack.run_jobs(include_delayed=True)
    assert _row(sqlite_stack, sid).disconnected_at is not None


def test_an_uninstall_body_for_another_shop_is_refused(sqlite_stack, shop):
    _connect(sqlite_stack, shop)
    other = {**SHOP_BODY, "myshopify_domain": "someone-else.myshopify.com"}
    sqlite_stack.post_shopify(other, topic="app/uninstalled", secret=shop.oauth.client_secret)
    sqlite_stack.run_jobs()
    (event,) = sqlite_stack.events()
    assert event.status == "failed" and "someone-else" in event.last_error


def test_a_disconnected_store_is_connected_again_from_its_install_link_and_its_gap_read_back(sqlite_stack, shop):
    from tests.test_shopify_connect import SLUG, _approve, _local, _start

    admin, install_url = _start(sqlite_stack, shop)
    assert admin.get(_local(_approve(install_url))).status_code == 200
    sid = store_id(sqlite_stack, SLUG)
    from connector.orders.disconnect import disconnect

    disconnect(sqlite_stack.rt, sid, "test")
    with sqlite_stack.rt.sessions.begin() as session:
        session.get(Store, sid).settings = {**session.get(Store, sid).settings, "safety_stock": 3}
    _admin, install_url = _start(sqlite_stack, shop, admin=admin)
    assert admin.get(_local(_approve(install_url))).status_code == 200
    store = _row(sqlite_stack, sid)
    assert store.disconnected_at is None and store.settings["safety_stock"] == 3  # its rules kept
    assert "issued_token" in sqlite_stack.rt.box.open(store.secrets)
    before = shop.calls["GET orders"] + shop.calls.get("graphql orders", 0)
    sqlite_stack.run_jobs()  # the reconciliation queued on reconnecting reads the store's orders
    assert shop.calls["GET orders"] + shop.calls.get("graphql orders", 0) > before, dict(shop.calls)
