"""The ERP back ends' edges: amounts finer than a currency keeps, values longer than the ERP keeps.

A careless or hostile store sends them signed; the connector must refuse them with the field named,
and write nothing to the ERP (no customer left behind by an order that then fails).
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from mappings.currencies import minor_unit


def _order(
    price: str = "19.99",
    quantity: int = 1,
    *,
    name: str = "#1001",
    sku: str = "MUG-01",
    phone: str | None = None,
    currency: str = "USD",
    total: str | None = None,
) -> dict:
    gross = str(Decimal(price) * quantity)
    return {
        "id": 820982911946154508,
        "name": name,
        "email": "ann@example.com",
        "phone": phone,
        "created_at": "2026-11-20T10:00:00-05:00",
        "updated_at": "2026-11-20T10:00:00-05:00",
        "currency": currency,
        "taxes_included": False,
        "financial_status": "pending",
        "total_line_items_price": gross,
        "total_discounts": "0",
        "total_tax": "0",
        "total_price": total or gross,
        "line_items": [{"id": 1, "title": "Mug", "quantity": quantity, "price": price, "sku": sku}],
        "customer": {
            "id": 115310627314723954,
            "email": "ann@example.com",
            "first_name": "Ann",
            "last_name": "Lee",
            "phone": phone,
        },
    }


def _parked_reason(stack) -> str:  # type: ignore[no-untyped-def]
    stack.run_jobs(include_delayed=True)
    (event,) = stack.events()
    assert event.status == "failed", (event.status, event.last_error)
    return event.last_error or ""


def test_an_amount_finer_than_the_currency_is_refused_with_the_field_named(stack) -> None:  # type: ignore[no-untyped-def]
    assert stack.post_shopify(_order("0.33333333", 3)).status_code == 200
    reason = _parked_reason(stack)
    assert "line 1 unit price 0.33333333 USD has more decimals than USD's 2" in reason
    assert stack.erp_orders() == [] and stack.erp_customers() == []  # never rounded into the ERP


@pytest.mark.parametrize(
    "currency, price, fits",
    [
        ("JPY", "1000.00", True),
        ("JPY", "999.5", False),
        ("KWD", "1.125", True),
        ("KWD", "1.1255", False),
        ("USD", "0.10", True),
    ],
)
def test_each_currency_keeps_its_own_minor_unit(stack, currency, price, fits) -> None:  # type: ignore[no-untyped-def]
    stack.post_shopify(_order(price, currency=currency))
    stack.run_jobs(include_delayed=True)
    (event,) = stack.events()
    if fits:
        assert event.status == "succeeded", event.last_error
        assert stack.erp_orders()[0].total == Decimal(price)
    else:
        assert event.status == "failed"
        assert f"has more decimals than {currency}'s {minor_unit(currency)}" in event.last_error


@pytest.mark.parametrize(
    "overrides, field, limit",
    [
        ({"name": "#" + "9" * 100}, "order number", 64),
        ({"sku": "S" * 300}, "line 1 SKU", 128),
        ({"phone": "+1" + "5" * 100}, "customer phone", 64),
    ],
)
def test_an_over_long_value_names_its_field_and_writes_nothing(stack, overrides, field, limit) -> None:  # type: ignore[no-untyped-def]
    stack.post_shopify(_order(**overrides))
    reason = _parked_reason(stack)
    assert field in reason and f"holds at most {limit}" in reason, reason
    assert "+1555" not in reason  # a personal value is measured, not repeated
    # Checked before any write: no ERP customer is left behind by the refused order.
    assert stack.erp_customers() == [] and stack.erp_orders() == []


# ---- an ERP that accepts a connection and never answers ------------------------------------------------


@pytest.fixture
def tarpit():  # type: ignore[no-untyped-def]
    """A TCP port that accepts every connection and never says a word."""
    import socket
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held: list[socket.socket] = []

    def hold() -> None:
        while True:
            try:
                held.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=hold, daemon=True).start()
    yield server.getsockname()[1]
    server.close()
    for conn in held:
        conn.close()


def _erp_section(stack, url: str, **timeouts: float) -> None:  # type: ignore[no-untyped-def]
    import json

    from sqlalchemy import select

    from connector.base.models import ErpConnection
    from connector.setup.config_io import load_config

    with stack.rt.sessions() as session:
        kind = session.scalars(select(ErpConnection)).one().kind
    load_config(stack.rt, json.dumps({"erp": {"kind": kind, "url": url, **timeouts}}))


@pytest.mark.parametrize("stack", ["postgres"], indirect=True)
def test_an_erp_that_never_answers_holds_one_event_for_its_timeout_then_the_batch_waits(stack, tarpit) -> None:  # type: ignore[no-untyped-def]
    import time

    from sqlalchemy import update

    from connector.base.models import InboxEvent
    from connector.orders.drains import kick
    from tests.test_api import sign_in

    _erp_section(
        stack, f"postgresql://erp:s3cret-pw@127.0.0.1:{tarpit}/erp", connect_timeout_seconds=2, timeout_seconds=2
    )
    for n in range(5):
        stack.post_shopify(_order(name=f"#{2001 + n}") | {"id": 9100 + n})
    started = time.monotonic()
    stack.run_jobs()
    assert time.monotonic() - started < 8  # one 2 s wait, not five (nor the job's 120 s timeout)

    first, *rest = stack.events()
    assert (first.status, first.attempts) == ("pending", 1)
    assert f"the ERP database at 127.0.0.1:{tarpit} did not answer a connection within 2s" in first.last_error
    assert "s3cret-pw" not in first.last_error and "internal error" not in first.last_error
    assert all((e.status, e.attempts, e.last_error) == ("pending", 0, None) for e in rest)
    assert all(e.next_attempt_at is not None for e in rest)  # waiting, not hammering the ERP

    ready = stack.client.get("/readyz")
    assert ready.status_code == 200  # the webhook door stays in service: deliveries keep being stored
    assert ready.json["erp"].startswith("not answering since") and f"127.0.0.1:{tarpit}" in ready.json["erp"]
    admin = sign_in(stack)
    assert "did not answer" in admin.get("/api/v1/dashboard").json["erp_unreachable"]["reason"]
    assert "The ERP is not answering" in admin.get("/console").get_data(as_text=True)

    _erp_section(stack, stack.erp_url)  # the ERP is back
    with stack.rt.sessions.begin() as session:
        session.execute(update(InboxEvent).values(next_attempt_at=None))
    kick(stack.rt, first.store_id)
    stack.run_jobs(include_delayed=True)
    assert sorted(o.external_ref for o in stack.erp_orders()) == sorted(f"shopify:acme-us:{9100 + n}" for n in range(5))
    assert stack.client.get("/readyz").json["erp"] == "ok"
    assert admin.get("/api/v1/dashboard").json["erp_unreachable"] is None
