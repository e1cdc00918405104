"""Signed bodies used against us: replayed under another topic, carrying NUL, nested deep, or naming
someone whose email merely contains another's. Only the body is signed
(docs/platforms.md#only-the-body-is-signed): every test here sends a body whose signature verifies."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from connector.base.models import AuditEntry, CustomerLink, Store
from connector.sync.reconcile import prune
from tests.conftest import load_fixture
from tests.stack import STORE
from tests.storefronts import configure
from tests.test_api import SUPPORT, sign_in


def _order_then_replay(stack, topic: str):  # type: ignore[no-untyped-def]
    order = load_fixture("shopify", "order_guest.json")
    body = json.dumps(order).encode()
    assert stack.post_shopify(body).status_code == 200
    stack.run_jobs()
    # The same signed bytes under another topic and a fresh event id: it verifies, so it is stored.
    assert stack.post_shopify(body, topic=topic, event_id="replayed").status_code == 200
    stack.run_jobs()
    return order, {e.topic: e for e in stack.events()}


def _store_active(stack) -> bool:  # type: ignore[no-untyped-def]
    with stack.rt.sessions() as session:
        return session.scalars(select(Store.active).where(Store.slug == STORE)).one()


def _links(stack) -> set[str]:  # type: ignore[no-untyped-def]
    with stack.rt.sessions() as session:
        return set(session.scalars(select(CustomerLink.key)))


def test_a_signed_order_replayed_as_shop_redact_erases_nothing(stack):
    links = None
    order, events = _order_then_replay(stack, "shop/redact")
    replay = events["shop/redact"]
    assert replay.status == "failed" and "not a shopify shop/redact payload" in replay.last_error
    assert order["email"].encode() in events["orders/create"].body
    assert _store_active(stack)
    links = _links(stack)
    assert f"email:{order['email'].lower()}" in links


def test_a_signed_order_replayed_as_customers_redact_erases_nothing(stack):
    order, events = _order_then_replay(stack, "customers/redact")
    assert events["customers/redact"].status == "failed"
    assert "orders_to_redact" in events["customers/redact"].last_error
    assert order["email"].encode() in events["orders/create"].body
    assert f"email:{order['email'].lower()}" in _links(stack)


def test_a_customers_redact_body_replayed_as_shop_redact_is_refused(stack):
    order = load_fixture("shopify", "order_guest.json")
    stack.post_shopify(order)
    stack.run_jobs()
    # A genuine request carries shop_id and shop_domain too: only its extra fields tell it apart.
    request = {
        "shop_id": 1,
        "shop_domain": "acme-us.myshopify.com",
        "orders_to_redact": [],
        "customer": {"id": 5, "email": "someone@example.com", "phone": None},
    }
    stack.post_shopify(request, topic="shop/redact")
    stack.run_jobs()
    replay = stack.events()[-1]
    assert replay.status == "failed" and "customer" in replay.last_error
    assert _store_active(stack) and order["email"].encode() in stack.events()[0].body


def test_a_data_request_body_replayed_as_customers_redact_is_refused(sqlite_stack):
    order = load_fixture("shopify", "order_guest.json")
    sqlite_stack.post_shopify(order)
    sqlite_stack.run_jobs()
    request = {
        "shop_id": 1,
        "shop_domain": "acme-us.myshopify.com",
        "orders_requested": [order["id"]],
        "customer": {"id": 5, "email": order["email"], "phone": None},
        "data_request": {"id": 9},
    }
    sqlite_stack.post_shopify(request, topic="customers/redact")
    sqlite_stack.run_jobs()
    assert sqlite_stack.events()[-1].status == "failed"
    assert order["email"].encode() in sqlite_stack.events()[0].body


def test_a_privacy_request_for_another_shop_is_refused(sqlite_stack):
    order = load_fixture("shopify", "order_guest.json")
    sqlite_stack.post_shopify(order)
    sqlite_stack.run_jobs()
    request = {
        "shop_id": 1,
        "shop_domain": "other-shop.myshopify.com",
        "orders_to_redact": [order["id"]],
        "customer": {"id": 5, "email": order["email"], "phone": None},
    }
    sqlite_stack.post_shopify(request, topic="customers/redact")
    sqlite_stack.run_jobs()
    refused = sqlite_stack.events()[-1]
    assert refused.status == "failed" and "other-shop.myshopify.com" in refused.last_error
    assert order["email"].encode() in sqlite_stack.events()[0].body


def test_a_woocommerce_order_replayed_as_order_deleted_cancels_nothing(stack):
    order = load_fixture("woocommerce", "order_processing_coupon.json")
    body = json.dumps(order).encode()
    stack.post_woocommerce(body, topic="order.created")
    stack.run_jobs()
    prune(stack.rt, days=0)  # a month later the delivery is pruned: the same bytes are no longer a duplicate
    assert stack.post_woocommerce(body, topic="order.deleted").status_code == 200
    stack.run_jobs()
    (replay,) = stack.events()
    assert replay.status == "failed" and "not a woocommerce order.deleted payload" in replay.last_error
    assert stack.erp_orders()[0].status != "cancelled"


def test_shop_redact_while_the_app_is_installed_waits_for_an_admin(sqlite_stack, shop):
    configure(sqlite_stack, shop)
    order = load_fixture("shopify", "order_guest.json")
    sqlite_stack.post_shopify(order)
    sqlite_stack.run_jobs()
    # Well formed and for this shop, but our token still works: Shopify would not send it now.
    sqlite_stack.post_shopify({"shop_id": 1, "shop_domain": shop.shop_domain}, topic="shop/redact")
    sqlite_stack.run_jobs()
    parked = sqlite_stack.events()[-1]
    assert parked.status == "failed" and "may be a replay" in parked.last_error
    assert _store_active(sqlite_stack) and order["email"].encode() in sqlite_stack.events()[0].body

    support = sign_in(sqlite_stack, SUPPORT, "support")
    refused = support.post(f"/api/v1/events/{parked.id}/confirm", headers={"X-CSRF-Token": support.csrf})
    assert refused.status_code == 403 and _store_active(sqlite_stack)

    admin = sign_in(sqlite_stack)
    assert admin.post(f"/api/v1/events/{parked.id}/confirm", headers={"X-CSRF-Token": admin.csrf}).status_code == 200
    sqlite_stack.run_jobs()
    assert sqlite_stack.events()[-1].status == "succeeded"
    assert not _store_active(sqlite_stack) and b"@" not in sqlite_stack.events()[0].body
    with sqlite_stack.rt.sessions() as session:
        actors = {
            e.actor for e in session.scalars(select(AuditEntry).where(AuditEntry.action == "privacy.shop_redact"))
        }
    assert actors == {f"admin@example.com (confirmed event {parked.id})"}


def test_shop_redact_after_an_uninstall_runs_and_the_audit_names_the_webhook(stack, shop):
    configure(stack, shop)
    order = load_fixture("shopify", "order_guest.json")
    stack.post_shopify(order)
    stack.run_jobs()
    shop.token = "uninstalled"  # every call now gets 401, as after an uninstall
    stack.post_shopify({"shop_id": 1, "shop_domain": shop.shop_domain}, topic="shop/redact")
    stack.run_jobs()
    request = stack.events()[-1]
    assert request.status == "succeeded"
    assert not _store_active(stack) and b"@" not in stack.events()[0].body
    assert not any(key.startswith(("email:", "phone:")) for key in _links(stack))
    with stack.rt.sessions() as session:
        entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "privacy.shop_redact")).one()
    assert entry.actor == f"Shopify webhook (event {request.id})" and entry.target == STORE


def test_support_sees_signature_headers_masked(sqlite_stack):
    order = load_fixture("shopify", "order_guest.json")
    sqlite_stack.post_shopify(order)
    event = sqlite_stack.events()[0]
    signature = event.headers["X-Shopify-Hmac-Sha256"]
    support = sign_in(sqlite_stack, SUPPORT, "support")
    shown = support.get(f"/api/v1/events/{event.id}").json["headers"]
    assert shown["X-Shopify-Hmac-Sha256"] != signature and signature[-4:] in shown["X-Shopify-Hmac-Sha256"]
    page = support.get(f"/console/events/{event.id}").get_data(as_text=True)
    assert signature not in page


# ---- 2. NUL in a signed body -------------------------------------------------------------------


def test_a_nul_in_a_shopify_order_name_is_stored_and_parked_with_the_field(stack):
    order = load_fixture("shopify", "order_guest.json")
    order["name"] = "#10\u000001"
    response = stack.post_shopify(order)
    assert response.status_code == 200
    stack.run_jobs()
    (event,) = stack.events()
    assert event.status == "failed" and "name holds a NUL character" in event.last_error
    assert event.order_number == "#10\ufffd01"
    assert json.loads(event.body)["name"] == "#10\u000001"  # the bytes as signed


def test_a_nul_in_woocommerce_number_or_modified_time_is_stored_not_refused(stack):
    for field in ("number", "date_modified_gmt"):
        order = load_fixture("woocommerce", "order_processing_coupon.json")
        order[field] = order[field] + "\u0000x"
        assert stack.post_woocommerce(order, topic="order.created").status_code == 200, field
    stack.run_jobs()
    events = stack.events()
    assert len(events) == 2 and all(e.status == "failed" and "NUL" in e.last_error for e in events)
    assert stack.erp_orders() == []


def test_a_nul_in_a_field_name_or_a_line_is_parked_not_retried(stack):
    order = load_fixture("shopify", "order_guest.json")
    order["line_items"][0]["sku"] = "SKU\u0000"
    order["note_attributes"] = [{"na\u0000me": "x"}]
    assert stack.post_shopify(order).status_code == 200
    stack.run_jobs()
    (event,) = stack.events()
    assert event.status == "failed" and event.attempts == 1 and "NUL" in event.last_error


# ---- 7. bodies nested deep ----------------------------------------------------------------------


def test_a_body_nested_1000_deep_is_parked_at_once_and_its_page_renders(stack):
    order = json.dumps(load_fixture("shopify", "order_guest.json"))
    deep = '{"a": ' * 1000 + "{}" + "}" * 1000  # json.dumps itself cannot write this
    assert stack.post_shopify(f'{order[:-1]}, "note_attributes": {deep}}}'.encode()).status_code == 200
    stack.run_jobs()
    (event,) = stack.events()
    assert event.status == "failed" and event.attempts == 1 and "nested more than" in event.last_error
    support = sign_in(stack, SUPPORT, "support")
    assert support.get(f"/console/events/{event.id}").status_code == 200
    assert support.get(f"/api/v1/events/{event.id}").status_code == 200


# ---- 3. compliance matches people, not substrings -----------------------------------------------


def _customer_order(order: dict, order_id: int, email: str) -> dict:
    return {
        **order,
        "id": order_id,
        "name": f"#{order_id}",
        "email": email,
        "contact_email": email,
        "phone": None,
        "customer": {**(order.get("customer") or {}), "id": order_id, "email": email, "phone": None},
        "billing_address": {**order["billing_address"], "phone": None},
        "shipping_address": {**(order.get("shipping_address") or order["billing_address"]), "phone": None},
    }


def test_a_redaction_for_ann_leaves_joann_and_mariann_alone(stack):
    base = load_fixture("shopify", "order_guest.json")
    for order_id, email in ((101, "ann@example.com"), (102, "joann@example.com"), (103, "mariann@example.com")):
        stack.post_shopify(_customer_order(base, order_id, email))
    stack.run_jobs()
    export = {
        "shop_id": 1,
        "shop_domain": "acme-us.myshopify.com",
        "orders_requested": [],
        "customer": {"id": 999, "email": "ANN@example.com ", "phone": None},
        "data_request": {"id": 1},
    }
    stack.post_shopify(export, topic="customers/data_request")
    stack.run_jobs()
    exported = stack.events()[-1].result["export"]["events"]
    assert [e["order"] for e in exported] == ["#101"]

    redact = {
        "shop_id": 1,
        "shop_domain": "acme-us.myshopify.com",
        "orders_to_redact": [],
        "customer": {"id": 999, "email": "ann@example.com", "phone": None},
    }
    stack.post_shopify(redact, topic="customers/redact")
    stack.run_jobs()
    bodies = {e.resource_id: e.body for e in stack.events()}
    assert b"ann@example.com" not in bodies["101"]
    assert b"joann@example.com" in bodies["102"] and b"mariann@example.com" in bodies["103"]
    assert {"email:joann@example.com", "email:mariann@example.com"} <= _links(stack)
    assert "email:ann@example.com" not in _links(stack)


# ---- 12. what privacy requests leave behind -----------------------------------------------------


@pytest.mark.sqlite  # builds its stack itself
def test_a_customer_redaction_empties_the_file_drop_ledger_too(tmp_path):
    from tests.conftest import _sqlite  # noqa: F401  (the same stack, with the file-drop ERP)
    from tests.erp_backends.files import FilesHarness
    from tests.stack import build_stack

    harness = FilesHarness(tmp_path)
    stack = build_stack(
        "sqlite",
        tmp_path,
        f"sqlite:///{tmp_path / 'c.db'}",
        f"sqlite:///{tmp_path / 'e.db'}",
        erp_config=harness.config(),
    )
    try:
        order = load_fixture("shopify", "order_guest.json")
        stack.post_shopify(order)
        stack.run_jobs()
        email = order["email"].lower().encode()
        ledger = harness.state / "customers"
        assert any(email in p.read_bytes() for p in ledger.glob("*.json"))
        redact = {
            "shop_id": 1,
            "shop_domain": "acme-us.myshopify.com",
            "orders_to_redact": [order["id"]],
            "customer": {"id": None, "email": order["email"], "phone": None},
        }
        stack.post_shopify(redact, topic="customers/redact")
        stack.run_jobs()
        assert stack.events()[-1].status == "succeeded"
        assert "file-drop ledger" in stack.events()[-1].result["note"]
        assert not any(email in p.read_bytes() for p in ledger.rglob("*.json"))
        assert not list((ledger / "by-email").glob("*.json"))
    finally:
        stack.close()
        harness.close()


def test_a_woocommerce_customer_is_erased_by_api_and_by_command(stack):
    from click.testing import CliRunner

    from connector.cli import main

    first = load_fixture("woocommerce", "order_processing_coupon.json")
    second = load_fixture("woocommerce", "order_cod_guest.json")
    for order in (first, second):
        stack.post_woocommerce(order, topic="order.created")
    stack.run_jobs()
    email = first["billing"]["email"]
    admin = sign_in(stack)
    support = sign_in(stack, SUPPORT, "support")
    url = "/api/v1/stores/acme-eu/erasures"
    assert support.post(url, json={"email": email}, headers={"X-CSRF-Token": support.csrf}).status_code == 403
    assert admin.post(url, json={}, headers={"X-CSRF-Token": admin.csrf}).status_code == 400
    assert (
        admin.post(
            "/api/v1/stores/nope/erasures", json={"email": email}, headers={"X-CSRF-Token": admin.csrf}
        ).status_code
        == 404
    )
    answer = admin.post(url, json={"email": email.upper()}, headers={"X-CSRF-Token": admin.csrf})
    assert answer.status_code == 200 and "redacted 1 stored event" in answer.json["note"]
    bodies = {e.resource_id: e.body for e in stack.events()}
    assert email.encode() not in bodies[str(first["id"])]
    assert second["billing"]["email"].encode() in bodies[str(second["id"])]
    assert f"email:{email.lower()}" not in _links(stack)
    with stack.rt.sessions() as session:
        entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "privacy.erase_customer")).one()
    assert entry.actor == "admin@example.com" and entry.target == "acme-eu"

    env = {"DATABASE_URL": str(stack.rt.settings.database_url), "CONNECTOR_ENCRYPTION_KEY": "test-encryption-key"}
    result = CliRunner().invoke(main, ["customer", "erase", "acme-eu", "--phone", second["billing"]["phone"]], env=env)
    assert result.exit_code == 0, result.output
    assert "redacted 1 stored event" in result.output
    assert second["billing"]["email"].encode() not in {e.resource_id: e.body for e in stack.events()}[str(second["id"])]
    assert CliRunner().invoke(main, ["customer", "erase", "acme-eu"], env=env).exit_code == 2


def test_privacy_exports_are_erased_after_their_days(sqlite_stack):
    from datetime import timedelta

    from adapters.clock import utcnow
    from connector.base.models import InboxEvent
    from connector.orders.compliance import EXPORT_DAYS

    order = load_fixture("shopify", "order_guest.json")
    sqlite_stack.post_shopify(order)
    request = {
        "shop_id": 1,
        "shop_domain": "acme-us.myshopify.com",
        "orders_requested": [order["id"]],
        "customer": {"id": 5, "email": order["email"], "phone": None},
        "data_request": {"id": 9},
    }
    sqlite_stack.post_shopify(request, topic="customers/data_request")
    sqlite_stack.run_jobs()
    exported = sqlite_stack.events()[-1]
    assert exported.result["export"]["events"] and order["email"].encode() not in exported.body
    with sqlite_stack.rt.sessions.begin() as session:
        session.get(InboxEvent, exported.id).processed_at = utcnow() - timedelta(days=EXPORT_DAYS + 1)
    prune(sqlite_stack.rt, days=365)
    assert "export" not in sqlite_stack.events()[-1].result
