"""Shopify's privacy webhooks: we export or erase what we hold about a customer or a shop."""

from __future__ import annotations

import json

from sqlalchemy import select

from connector.base.models import Approval, CustomerLink, CustomerMatch, Store
from tests.conftest import load_fixture
from tests.storefronts import configure


def _setup(stack):  # type: ignore[no-untyped-def]
    guest = load_fixture("shopify", "order_guest.json")
    other = load_fixture("shopify", "order_discount_multiline.json")
    stack.post_shopify(guest)
    stack.post_shopify(other)
    stack.run_jobs()
    return guest, other


def test_a_data_request_exports_what_we_hold_about_the_customer(sqlite_stack):
    guest, _ = _setup(sqlite_stack)
    request = {
        "shop_id": 1,
        "shop_domain": "acme-us.myshopify.com",
        "orders_requested": [guest["id"]],
        "customer": {"id": 9, "email": guest["email"], "phone": None},
        "data_request": {"id": 77},
    }
    sqlite_stack.post_shopify(request, topic="customers/data_request")
    sqlite_stack.run_jobs()
    event = sqlite_stack.events()[-1]
    assert event.status == "succeeded"
    exported = event.result["export"]
    assert [e["order"] for e in exported["events"]] == [guest["name"]]
    assert guest["email"] in exported["events"][0]["payload"]
    assert any(link["key"] == f"email:{guest['email'].lower()}" for link in exported["customer_links"])


def test_a_customer_redaction_erases_their_payloads_and_links_only(sqlite_stack):
    guest, other = _setup(sqlite_stack)
    redact = {
        "shop_id": 1,
        "shop_domain": "acme-us.myshopify.com",
        "orders_to_redact": [guest["id"]],
        "customer": {"id": 9, "email": guest["email"], "phone": guest["billing_address"]["phone"]},
    }
    sqlite_stack.post_shopify(redact, topic="customers/redact")
    sqlite_stack.run_jobs()
    events = {e.resource_id: e for e in sqlite_stack.events()}
    erased = events[str(guest["id"])]
    assert guest["email"].encode() not in erased.body and b"redacted" in erased.body
    assert "order" not in (erased.result or {})
    assert other["email"].encode().lower() in events[str(other["id"])].body.lower()
    with sqlite_stack.rt.sessions() as session:
        keys = set(session.scalars(select(CustomerLink.key)))
    assert not any(guest["email"].lower() in key for key in keys)
    assert any(other["email"].lower() in key for key in keys)
    request = json.loads(sqlite_stack.events()[-1].body)  # the request keeps its ids, not the person's data
    assert request["customer"] == {"id": 9, "email": None, "phone": None}
    assert request["orders_to_redact"] == [guest["id"]]


def test_a_shop_redaction_empties_every_payload_and_deactivates_the_store(sqlite_stack, shop):
    configure(sqlite_stack, shop)
    guest, other = _setup(sqlite_stack)
    shop.token = "revoked"  # the app was uninstalled: the Admin API refuses our token
    sqlite_stack.post_shopify({"shop_id": 1, "shop_domain": shop.shop_domain}, topic="shop/redact")
    sqlite_stack.run_jobs()
    for event in sqlite_stack.events()[:2]:
        assert b"@" not in event.body
    with sqlite_stack.rt.sessions() as session:
        assert session.scalars(select(Store.active).where(Store.slug == "acme-us")).one() is False


def test_a_compliance_webhook_with_a_bad_signature_gets_401(sqlite_stack):
    response = sqlite_stack.post_shopify({"shop_id": 1}, topic="shop/redact", secret="wrong")
    assert response.status_code == 401


def test_a_customer_redaction_also_erases_their_returns_and_what_the_console_shows_of_them(sqlite_stack):
    _, other = _setup(sqlite_stack)  # the return fixtures are of `other`'s order (#1001)
    for topic, name in (("returns/request", "request"), ("returns/close", "close")):
        sqlite_stack.post_shopify(load_fixture("shopify", f"returns/{name}.json"), topic=topic)
    sqlite_stack.run_jobs()
    redact = {
        "shop_id": 1,
        "shop_domain": "acme-us.myshopify.com",
        "orders_to_redact": [other["id"]],
        "customer": {"id": 10, "email": other["email"], "phone": None},
    }
    sqlite_stack.post_shopify(redact, topic="customers/redact")
    sqlite_stack.run_jobs()
    returns = [e for e in sqlite_stack.events() if e.topic.startswith("returns/")]
    assert len(returns) == 2
    for event in returns:  # the buyer's own words ("Runs a size small") go with the rest
        assert b"Runs a size small" not in event.body and "return" not in (event.result or {})


def test_a_customer_redaction_erases_the_buyer_from_the_approval_and_customer_decision_lists(sqlite_stack):
    stack = sqlite_stack
    with stack.rt.sessions.begin() as session:
        store = session.scalars(select(Store).where(Store.slug == "acme-us")).one()
        store.settings = {**store.settings, "approval": {"tags": ["wholesale"]}}
    held = load_fixture("shopify", "order_discount_multiline.json")  # tagged wholesale: held for approval
    asked = load_fixture("shopify", "order_guest.json")
    stack.post_shopify(held)
    stack.run_jobs()
    with stack.rt.sessions.begin() as session:  # as connector.orders.holds records a possible duplicate
        session.add(
            CustomerMatch(
                store_id=store.id,
                order_external_id=str(asked["id"]),
                order_number=asked["name"],
                customer_key=f"email:{asked['email'].lower()}",
                buyer={"name": "Guest Buyer", "email": asked["email"]},
                candidates=[{"id": "7", "name": "Guest Buyer", "email": "other@example.com"}],
            )
        )
    for order in (held, asked):
        redact = {"shop_id": 1, "shop_domain": "acme-us.myshopify.com", "orders_to_redact": [order["id"]]}
        stack.post_shopify(
            {**redact, "customer": {"id": 9, "email": order["email"], "phone": None}}, topic="customers/redact"
        )
    stack.run_jobs()
    with stack.rt.sessions() as session:
        (approval,) = session.scalars(select(Approval)).all()
        (match,) = session.scalars(select(CustomerMatch)).all()
        assert (approval.customer, approval.status) == ("", "awaiting")
        assert (match.buyer, match.candidates) == ({}, [])
