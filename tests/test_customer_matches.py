"""A possible duplicate customer (the same name and postcode, another email) is neither merged nor duplicated
silently: the order waits until a person links the buyer to the ERP's customer or makes a new one, and
that decision is kept for the buyer's next orders."""

from __future__ import annotations

import copy
from datetime import UTC, datetime

from sqlalchemy import insert, select

from adapters.erp.sql_contract import erp_customers
from connector.base.models import AuditEntry, CustomerMatch
from tests.conftest import load_fixture
from tests.stack import Stack
from tests.test_api import SUPPORT, sign_in
from tests.test_pages import form_post, html

ORDER = load_fixture("shopify", "order_discount_multiline.json")  # Dana Whitfield, Dana.Whitfield@Example.com, 02116


def order(order_id: int) -> dict:
    payload = copy.deepcopy(ORDER)
    payload.update(id=order_id, name=f"#{order_id}", order_number=order_id)
    return payload


def known_offline(stack: Stack, postcode: str = "02116") -> int:
    """A customer the sales team booked long ago, with another email."""
    now = datetime(2024, 3, 1, tzinfo=UTC)
    with stack.erp_engine.begin() as conn:
        conn.execute(
            insert(erp_customers).values(
                email="dana@oldmail.example",
                name="DANA whitfield",
                phone=None,
                external_ids="",
                postcode=postcode,
                created_at=now,
                updated_at=now,
            )
        )
        return conn.execute(select(erp_customers.c.id)).scalar_one()


def matches(stack: Stack) -> list[CustomerMatch]:
    with stack.rt.sessions() as session:
        found = list(session.scalars(select(CustomerMatch).order_by(CustomerMatch.id)))
        session.expunge_all()
    return found


def audited(stack: Stack, action: str) -> list[str]:
    with stack.rt.sessions() as session:
        return list(session.scalars(select(AuditEntry.actor).where(AuditEntry.action == action)))


def test_the_buyer_is_linked_to_the_erps_customer_once_a_person_says_so(stack: Stack) -> None:
    offline_id = known_offline(stack)
    stack.post_shopify(order(8001))
    stack.run_jobs()
    assert stack.erp_orders() == [] and len(stack.erp_customers()) == 1  # neither duplicated nor merged
    assert [e.status for e in stack.events()] == ["held"]
    (asked,) = matches(stack)
    assert asked.status == "awaiting" and [c["id"] for c in asked.candidates] == [str(offline_id)]
    assert asked.buyer["email"] == "Dana.Whitfield@Example.com"

    support = sign_in(stack, SUPPORT, "support")
    page = html(support.get("/console/customers"))
    assert "#8001" in page and "dana@oldmail.example" in page
    stranger = form_post(support, f"/console/customers/{asked.id}", {"decision": "link:999"}, follow_redirects=True)
    assert "not one of those offered" in html(stranger) and matches(stack)[0].status == "awaiting"
    done = form_post(
        support, f"/console/customers/{asked.id}", {"decision": f"link:{offline_id}"}, follow_redirects=True
    )
    assert "Linked to ERP customer" in html(done)
    stack.run_jobs(include_delayed=True)

    (row,) = stack.erp_orders()
    assert row.customer_id == offline_id and len(stack.erp_customers()) == 1
    assert audited(stack, "customer.link") == [SUPPORT[0]]

    # Remembered: the buyer's next order goes straight to the same customer, asking nobody.
    stack.post_shopify(order(8002))
    stack.run_jobs()
    assert [r.customer_id for r in stack.erp_orders()] == [offline_id, offline_id]
    assert len(matches(stack)) == 1


def test_somebody_else_gets_a_new_customer_and_keeps_it(stack: Stack) -> None:
    offline_id = known_offline(stack)
    stack.post_shopify(order(8011))
    stack.post_shopify(order(8012))  # a second order of the same buyer waits too
    stack.run_jobs()
    assert [m.status for m in matches(stack)] == ["awaiting", "awaiting"]
    support = sign_in(stack, SUPPORT, "support")
    form_post(support, f"/console/customers/{matches(stack)[0].id}", {"decision": "new"})
    again = form_post(support, f"/console/customers/{matches(stack)[0].id}", {"decision": "new"}, follow_redirects=True)
    assert "decided meanwhile" in html(again)
    stack.run_jobs(include_delayed=True)

    customers = stack.erp_customers()
    assert len(customers) == 2 and [m.status for m in matches(stack)] == ["created", "created"]
    new_id = next(c.id for c in customers if c.id != offline_id)
    assert sorted(r.customer_id for r in stack.erp_orders()) == [new_id, new_id]  # one new customer, not two
    stack.post_shopify(order(8013))
    stack.run_jobs()
    assert len(stack.erp_customers()) == 2 and len(stack.erp_orders()) == 3
    assert audited(stack, "customer.create") == [SUPPORT[0]]


def test_the_same_name_elsewhere_is_not_asked_about(stack: Stack) -> None:
    known_offline(stack, postcode="94105")
    stack.post_shopify(order(8021))
    stack.run_jobs()
    assert len(stack.erp_orders()) == 1 and len(stack.erp_customers()) == 2 and matches(stack) == []


def test_the_api_decides_as_the_console_does(stack: Stack) -> None:
    offline_id = known_offline(stack)
    stack.post_shopify(order(8031))
    stack.run_jobs()
    support = sign_in(stack, SUPPORT, "support")
    headers = {"X-CSRF-Token": support.csrf}
    (asked,) = support.get("/api/v1/customer-matches").json["items"]
    assert [c["id"] for c in asked["candidates"]] == [str(offline_id)]
    stranger = support.post(f"/api/v1/customer-matches/{asked['id']}", json={"link_to": "42"}, headers=headers)
    assert stranger.status_code == 422 and "not one of those offered" in stranger.json["message"]
    linked = support.post(f"/api/v1/customer-matches/{asked['id']}", json={"link_to": str(offline_id)}, headers=headers)
    assert linked.json == {"count": 1}
    stack.run_jobs(include_delayed=True)
    assert [r.customer_id for r in stack.erp_orders()] == [offline_id]


def test_an_order_cancelled_in_the_store_while_its_buyer_is_in_question_is_withdrawn(stack: Stack) -> None:
    known_offline(stack)
    stack.post_shopify(order(8041))
    stack.run_jobs()
    cancelled = {**order(8041), "cancelled_at": "2026-11-20T12:00:00-05:00", "updated_at": "2026-11-20T12:00:00-05:00"}
    stack.post_shopify(cancelled, topic="orders/cancelled")
    stack.run_jobs()
    (withdrawn,) = matches(stack)
    assert withdrawn.status == "withdrawn" and [e.status for e in stack.events()] == ["ignored", "succeeded"]
    assert stack.erp_orders() == [] and len(stack.erp_customers()) == 1
