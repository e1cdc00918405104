"""The REST/JSON ERP back end against the fake REST ERP over real HTTP on 127.0.0.1.

Header details of the other auth schemes and path overrides are checked with `responses`.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from email.utils import format_datetime
from pathlib import Path

import pytest
import responses

from adapters.erp import build_erp
from adapters.erp.base import ErpUnreachable, PaymentRecord, PermanentErpError, RetryableErpError
from adapters.erp.rest import RestErp, _retry_after
from mappings.canonical import Money, Order, Shipment, ShipmentLine, StockLevel
from mappings.erp_rest import credit_note_document, order_document, payment_document
from platforms.shopify.mapping import order_from_shopify
from platforms.shopify.refunds import refund_from_shopify
from tests.erp_backends.rest import RestHarness
from tests.fakes.clock import FakeClock
from tests.fakes.rest_erp import FakeRestErp

FIXTURES = Path(__file__).parent / "fixtures" / "shopify"
TOKEN = "t0ken"


def shopify_order() -> Order:
    return order_from_shopify(json.loads((FIXTURES / "order_discount_multiline.json").read_text()), "acme-us")


def skus(order: Order) -> list[str]:
    return [line.sku for line in order.lines if line.sku]


@pytest.fixture
def fake() -> Iterator[FakeRestErp]:
    server = FakeRestErp(token=TOKEN)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def clock() -> FakeClock:
    """The adapters' waits between tries: recorded, not slept (`clock.slept`)."""
    return FakeClock()


@pytest.fixture
def make(fake: FakeRestErp, clock: FakeClock) -> Iterator:  # type: ignore[type-arg]
    made: list[RestErp] = []

    def build(**overrides) -> RestErp:  # type: ignore[no-untyped-def]
        options = {
            "token": TOKEN,
            "timeout_seconds": 2,
            "max_tries": 3,
            "retry_base_seconds": 0.01,
            "sleep": clock.sleep,
            **overrides,
        }
        adapter = RestErp(overrides.pop("base_url", fake.url), **{k: v for k, v in options.items() if k != "base_url"})
        made.append(adapter)
        return adapter

    yield build
    for adapter in made:
        adapter.close()


@pytest.fixture
def erp(make) -> RestErp:  # type: ignore[no-untyped-def]
    return make()


def pushed(fake: FakeRestErp, erp: RestErp, order: Order | None = None) -> tuple[Order, str]:
    order = order or shopify_order()
    fake.add_products(skus(order))
    customer_id = erp.create_customer(order.customer, "email:dana.whitfield@example.com")
    return order, customer_id


# ---- wire format ---------------------------------------------------------------------------------


def test_documents_carry_decimals_as_strings_and_utc_times() -> None:
    order = shopify_order()
    doc = order_document(order, "C7")

    def walk(value, path=""):  # type: ignore[no-untyped-def]
        assert not isinstance(value, float), f"{path} is a float"
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, f"{path}.{k}")
        elif isinstance(value, list):
            for n, v in enumerate(value):
                walk(v, f"{path}[{n}]")

    walk(doc)
    assert doc["totals"] == {
        "subtotal": "204.00",
        "discount_total": "20.40",
        "shipping_total": "9.95",
        "tax_total": "12.10",
        "fee_total": "0",
        "tip_total": "0",
        "duty_total": "0",
        "additional_fee_total": "0",
        "total": "205.65",
    }
    assert doc["presentment"] == {"currency": "USD", "total": "205.65"}
    assert doc["customer_id"] == "C7" and doc["external_ref"] == "shopify:acme-us:5987654321012"
    assert doc["source_updated_at"] == "2026-11-20T15:16:12Z" and doc["placed_at"].endswith("Z")
    assert [(ln["sku"], ln["quantity"], ln["unit_price"], ln["line_total"]) for ln in doc["lines"]] == [
        ("SOCK-MER-M-CHA", "3", "12.50", "33.75"),
        ("SHOE-TR2-42-SLT", "1", "129.00", "116.10"),
        (None, "2", "18.75", "33.75"),
    ]
    assert json.loads(json.dumps(doc)) == doc

    payment = payment_document(
        PaymentRecord("k", order.external_ref, Money(Decimal("1E+1"), "USD"), "card", "shopify", None, order.placed_at)
    )
    assert payment["amount"] == "10" and payment["paid_at"].endswith("Z")

    refund = refund_from_shopify(
        json.loads((FIXTURES / "refunds" / "refund_partial_line.json").read_text()), "acme-us", "USD"
    )
    note = credit_note_document(refund, order.external_ref)
    walk(note)
    assert note["external_ref"] == refund.external_ref and note["issued_at"].endswith("Z")
    assert note["lines"][0]["quantity"] == "1" and note["lines"][0]["subtotal"] == "11.25"


# ---- orders --------------------------------------------------------------------------------------


def test_create_is_idempotent_on_external_ref(fake: FakeRestErp, erp: RestErp) -> None:
    order, customer_id = pushed(fake, erp)
    first = erp.push_order(order, customer_id)
    second = erp.push_order(order, customer_id)

    assert first.created and not second.created and second.note == "the ERP already has this version"
    assert first.erp_ref == second.erp_ref
    assert list(fake.orders) == [order.external_ref]
    posts = fake.requests_to("/orders", "POST")
    assert [p.idempotency_key for p in posts] == [order.external_ref]
    # the ref travels percent-encoded and arrives whole
    assert fake.hits[f"/orders/{order.external_ref}"] == 2
    view = erp.get_order(order.external_ref)
    assert view is not None and view.status == "new" and view.total == Decimal("205.65")
    assert view.customer_id == customer_id and [ln.sku for ln in view.lines] == skus(order) + [None]


def test_a_lost_answer_is_replayed_not_booked_twice(fake: FakeRestErp, erp: RestErp) -> None:
    order, customer_id = pushed(fake, erp)
    fake.fail_next(2, status=503, after_processing=True)  # the GET's answer and the POST's are lost
    result = erp.push_order(order, customer_id)

    assert result.created and len(fake.orders) == 1
    posts = fake.requests_to("/orders", "POST")
    assert len(posts) == 2 and {p.idempotency_key for p in posts} == {order.external_ref}


def test_update_while_editable(fake: FakeRestErp, erp: RestErp) -> None:
    order, customer_id = pushed(fake, erp)
    erp.push_order(order, customer_id)
    line = dataclasses.replace(order.lines[0], quantity=5)
    newer = dataclasses.replace(
        order, lines=(line, *order.lines[1:]), updated_at=order.updated_at + timedelta(minutes=5)
    )

    result = erp.push_order(newer, customer_id)

    assert result.updated and not result.created and result.note == ""
    stored = fake.orders[order.external_ref]
    assert stored["lines"][0]["quantity"] == "5" and stored["source_updated_at"] == "2026-11-20T15:21:12Z"
    puts = fake.requests_to(f"/orders/{order.external_ref}", "PUT")
    assert [p.idempotency_key for p in puts] == [f"{order.external_ref}:v2026-11-20T15:21:12Z"]

    older = dataclasses.replace(order, updated_at=order.updated_at + timedelta(minutes=1))
    stale = erp.push_order(older, customer_id)
    assert not stale.updated and stale.note == "the ERP already has this version"
    assert fake.orders[order.external_ref]["lines"][0]["quantity"] == "5"


def test_no_edit_once_the_erp_imported_it(fake: FakeRestErp, erp: RestErp) -> None:
    order, customer_id = pushed(fake, erp)
    erp.push_order(order, customer_id)
    fake.set_status(order.external_ref, "imported")
    newer = dataclasses.replace(order, note="leave at the door", updated_at=order.updated_at + timedelta(hours=1))

    result = erp.push_order(newer, customer_id)

    assert not result.updated and result.note == "the ERP order is imported; the change was recorded, not applied"
    assert fake.orders[order.external_ref]["note"] != "leave at the door"
    assert fake.requests_to(f"/orders/{order.external_ref}", "PUT") == []


def test_unknown_sku_is_permanent_and_names_it(fake: FakeRestErp, erp: RestErp) -> None:
    order, customer_id = pushed(fake, erp)
    fake.products = {"SOCK-MER-M-CHA"}
    with pytest.raises(PermanentErpError, match="unknown SKU SHOE-TR2-42-SLT") as caught:
        erp.push_order(order, customer_id)
    assert "HTTP 422" in str(caught.value)
    assert len(fake.requests_to("/orders", "POST")) == 1  # not retried
    fake.add_products(["SHOE-TR2-42-SLT"])  # fixed in the ERP: the same key now succeeds
    assert erp.push_order(order, customer_id).created


def test_payments_cancel_and_credit_notes(fake: FakeRestErp, erp: RestErp) -> None:
    order, customer_id = pushed(fake, erp)
    ref = order.external_ref
    erp.push_order(order, customer_id)
    payment = PaymentRecord(f"{ref}:payment", ref, order.totals.total, "card", "shopify", "tx-1", order.placed_at)

    first, again = erp.record_payment(payment), erp.record_payment(payment)
    assert first == again and len(fake.payments) == 1
    view = erp.get_order(ref)
    assert view is not None and view.payment_status == "paid" and view.paid_total == Decimal("205.65")

    refund = refund_from_shopify(
        json.loads((FIXTURES / "refunds" / "refund_partial_line.json").read_text()), "acme-us", "USD"
    )
    note = erp.create_credit_note(refund, ref)
    assert erp.create_credit_note(refund, ref) == note and len(fake.credit_notes) == 1
    view = erp.get_order(ref)
    assert view is not None and view.payment_status == "partially_refunded"
    assert view.credited_total == refund.total.amount
    assert fake.credit_notes[refund.external_ref]["lines"][0]["order_line_no"] == 1

    assert erp.cancel_order(ref, "customer changed their mind") is True
    assert erp.cancel_order(ref, "customer changed their mind") is False
    assert fake.orders[ref]["status"] == "cancelled"
    keys = [e.idempotency_key for e in fake.log if e.method in ("POST", "PUT")]
    assert keys.count(f"{ref}:cancel") == 2 and keys.count(refund.external_ref) == 2


def test_writes_on_an_unknown_order_are_permanent(erp: RestErp) -> None:
    assert erp.get_order("shopify:acme-us:404") is None
    with pytest.raises(PermanentErpError, match="no order shopify:acme-us:404"):
        erp.cancel_order("shopify:acme-us:404", "x")


def test_customers_found_by_email_then_phone(fake: FakeRestErp, erp: RestErp) -> None:
    order = shopify_order()
    assert erp.find_customer(order.customer.email, order.customer.phone) is None
    customer_id = erp.create_customer(order.customer, "email:dana.whitfield@example.com")
    assert fake.customers[customer_id]["email"] == "dana.whitfield@example.com"
    assert erp.find_customer("DANA.Whitfield@example.com ", None) == customer_id
    assert erp.find_customer(None, "+1 617 555 0142") == customer_id
    assert fake.requests_to("/customers", "POST")[0].idempotency_key == "customer:email:dana.whitfield@example.com"
    nobody = dataclasses.replace(order.customer, email=None, phone=None, first_name="", last_name="")
    with pytest.raises(PermanentErpError, match="no customer email, phone or name"):
        erp.create_customer(nobody, "x")


# ---- retries ---------------------------------------------------------------------------------------


def test_503_twice_then_success_honours_retry_after(fake: FakeRestErp, erp: RestErp, clock: FakeClock) -> None:
    fake.fail_next(2, status=503, retry_after=1)
    assert "reachable" in erp.test_connection()
    assert clock.slept == [1, 1]  # the Retry-After each time, no backoff of its own on top
    assert fake.hits["/health"] == 3


def test_429_honours_retry_after(fake: FakeRestErp, erp: RestErp, clock: FakeClock) -> None:
    order, customer_id = pushed(fake, erp)
    fake.fail_next(1, status=429, retry_after=1)
    assert erp.push_order(order, customer_id).created
    assert clock.slept == [1]


def test_retry_after_as_http_date() -> None:
    soon = datetime.now(UTC) + timedelta(seconds=5)
    assert 3 <= (_retry_after(format_datetime(soon, usegmt=True)) or 0) <= 5
    assert _retry_after("7") == 7 and _retry_after("soon") is None and _retry_after(None) is None


def backoff_ranges(base: float, waits: int) -> list[tuple[float, float]]:
    """Where each jittered wait between tries must fall: half to all of base·2^(n−1)."""
    return [(base * 2**n / 2, base * 2**n) for n in range(waits)]


def within(slept: list[float], ranges: list[tuple[float, float]]) -> bool:
    return len(slept) == len(ranges) and all(lo <= wait <= hi for wait, (lo, hi) in zip(slept, ranges, strict=True))


def test_persistent_503_is_retryable_and_bounded(fake: FakeRestErp, erp: RestErp, clock: FakeClock) -> None:
    fake.down, fake.down_retry_after = True, None  # no Retry-After: short jittered backoff
    with pytest.raises(RetryableErpError, match="HTTP 503") as caught:
        erp.stock_changes(None)
    assert "3 tries" in str(caught.value) and "try again later" in str(caught.value)
    assert fake.hits["/stock"] == 3
    assert within(clock.slept, backoff_ranges(0.01, 2)), clock.slept  # a wait between tries, none after the last


def test_a_retry_after_beyond_the_budget_is_not_slept(fake: FakeRestErp, erp: RestErp, clock: FakeClock) -> None:
    fake.fail_next(1, status=503, retry_after=120)
    with pytest.raises(RetryableErpError, match="asked to wait 120s"):
        erp.test_connection()
    assert clock.slept == [] and fake.hits["/health"] == 1


def test_backoff_without_retry_after_is_short(fake: FakeRestErp, make, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    erp = make(retry_base_seconds=0.05, max_tries=4)
    fake.fail_next(3, status=502)
    erp.test_connection()
    assert fake.hits["/health"] == 4
    assert within(clock.slept, backoff_ranges(0.05, 3)), clock.slept  # 0.025–0.05, 0.05–0.1, 0.1–0.2
    assert clock.waited <= 0.35


def test_a_timeout_ends_the_call_at_once_as_unreachable(fake: FakeRestErp, make, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    erp = make(timeout_seconds=0.2, max_tries=3)
    fake.delay = 1.0
    with pytest.raises(ErpUnreachable, match=r"did not answer within 0.2s while trying to read"):
        erp.get_order("shopify:acme-us:1")
    assert clock.slept == []  # not tried again inside the call: no wait, one request
    assert sum(fake.hits.values()) == 1


def test_a_refused_connection_is_retryable(make) -> None:  # type: ignore[no-untyped-def]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    erp = make(base_url=f"http://127.0.0.1:{port}", max_tries=2)
    with pytest.raises(ErpUnreachable, match=f"cannot reach the ERP at http://127.0.0.1:{port}"):
        erp.test_connection()


# ---- authentication ----------------------------------------------------------------------------------


def test_wrong_token_is_permanent_about_credentials(fake: FakeRestErp, make) -> None:  # type: ignore[no-untyped-def]
    erp = make(token="wrong")
    with pytest.raises(PermanentErpError, match=r"HTTP 401.*check the ERP bearer credentials on /config"):
        erp.test_connection()
    assert fake.hits["/health"] == 1
    assert fake.log[0].authorization == "Bearer wrong"


def test_api_key_and_basic_auth_headers() -> None:
    with responses.RequestsMock() as rsps:
        rsps.get("http://erp.test/health", json={"status": "ok"})
        RestErp("http://erp.test", auth_type="api_key", api_key="k-123").test_connection()
        RestErp("http://erp.test/", auth_type="api_key", auth_header="X-ERP-Key", api_key="k-456").test_connection()
        RestErp("http://erp.test", auth_type="basic", username="connector", password="s3cret").test_connection()
        rsps.get("http://erp.test/health", status=403, json={"message": "forbidden"})
        with pytest.raises(PermanentErpError, match=r"HTTP 403.*check the ERP api_key credentials on /config"):
            RestErp("http://erp.test", auth_type="api_key", api_key="bad").test_connection()
        headers = [call.request.headers for call in rsps.calls]
    assert headers[0]["X-API-Key"] == "k-123" and "Authorization" not in headers[0]
    assert headers[1]["X-ERP-Key"] == "k-456" and "X-API-Key" not in headers[1]
    assert headers[2]["Authorization"] == "Basic " + base64.b64encode(b"connector:s3cret").decode()


def test_missing_credentials_are_reported_by_name() -> None:
    with pytest.raises(PermanentErpError, match="basic auth but has no password: set erp.password"):
        build_erp("rest", {"base_url": "http://erp.test", "auth": {"type": "basic"}, "username": "u"}, {})
    with pytest.raises(PermanentErpError, match="unknown ERP auth type 'oauth'"):
        build_erp("rest", {"base_url": "http://erp.test", "auth": {"type": "oauth"}}, {})
    with pytest.raises(PermanentErpError, match="base_url"):
        build_erp("rest", {"auth": {"type": "bearer"}}, {"token": "t"})


def test_path_overrides_and_encoded_refs() -> None:
    erp = build_erp(
        "rest",
        {
            "base_url": "http://erp.test/api",
            "paths": {"order": "/v2/sales-orders/{ref}"},
            "auth": {"type": "api_key", "header": "X-Key"},
        },
        {"api_key": "k"},
    )
    with responses.RequestsMock() as rsps:
        rsps.get("http://erp.test/api/v2/sales-orders/shopify%3Aacme-us%3A1", status=404, json={"message": "no"})
        assert erp.get_order("shopify:acme-us:1") is None
        assert rsps.calls[0].request.headers["X-Key"] == "k"
    with pytest.raises(PermanentErpError, match=r"must contain \{ref\}"):
        RestErp("http://erp.test", auth_type="none", paths={"cancel": "/cancel"})


# ---- what the ERP writes for us ------------------------------------------------------------------------


def test_stock_changes_since_a_cursor(fake: FakeRestErp, erp: RestErp) -> None:
    assert erp.stock_changes(None) == ([], None)
    for sku, on_hand in (("SOCK-MER-M-CHA", 40), ("SHOE-TR2-42-SLT", 7), ("CAP-01", 0)):
        fake.set_stock(sku, "main", on_hand)

    first, cursor = erp.stock_changes(None, limit=2)
    assert [(s.sku, s.on_hand) for s in first] == [("SOCK-MER-M-CHA", Decimal(40)), ("SHOE-TR2-42-SLT", Decimal(7))]
    assert cursor and first[0].updated_at.tzinfo is not None
    rest, cursor2 = erp.stock_changes(cursor, limit=2)
    assert [s.sku for s in rest] == ["CAP-01"]
    assert erp.stock_changes(cursor2) == ([], cursor2)  # nothing new: the cursor stays

    fake.set_stock("SOCK-MER-M-CHA", "main", "38.5")
    changed, cursor3 = erp.stock_changes(cursor2)
    assert [(s.sku, s.on_hand) for s in changed] == [("SOCK-MER-M-CHA", Decimal("38.5"))] and cursor3 != cursor2
    assert fake.requests_to("/stock")[-1].path == "/stock"


def test_shipments_since_a_cursor(fake: FakeRestErp, erp: RestErp) -> None:
    shipped = datetime(2026, 11, 21, 9, 30, tzinfo=UTC)
    fake.add_shipment(
        Shipment(
            "SH-1",
            "shopify:acme-us:1",
            (ShipmentLine("SOCK-MER-M-CHA", 3),),
            shipped,
            carrier="UPS",
            tracking_number="1Z999",
            tracking_url="https://ups.test/1Z999",
            warehouse="main",
        )
    )
    found, cursor = erp.shipments(None)
    assert found == [
        Shipment(
            "SH-1",
            "shopify:acme-us:1",
            (ShipmentLine("SOCK-MER-M-CHA", 3),),
            shipped,
            carrier="UPS",
            tracking_number="1Z999",
            tracking_url="https://ups.test/1Z999",
            warehouse="main",
        )
    ]
    assert erp.shipments(cursor) == ([], cursor)
    fake.add_shipment(Shipment("SH-2", "shopify:acme-us:2", (ShipmentLine("CAP-01", 1),), shipped))
    later, _ = erp.shipments(cursor)
    assert [s.ref for s in later] == ["SH-2"] and later[0].carrier == ""


def test_a_malformed_answer_is_permanent(make) -> None:  # type: ignore[no-untyped-def]
    with responses.RequestsMock() as rsps:
        rsps.get(
            "http://erp.test/stock",
            json={
                "items": [{"sku": "A", "warehouse": "W", "on_hand": "x", "updated_at": "2026-11-21T09:30:00Z"}],
                "next": "1",
            },
        )
        with pytest.raises(PermanentErpError, match=r"items\[0\].on_hand is not a decimal"):
            RestErp("http://erp.test", auth_type="none").stock_changes(None)


# ---- the contract-suite harness --------------------------------------------------------------------------


def test_harness_builds_from_its_config_and_goes_down() -> None:
    harness = RestHarness()
    try:
        erp = harness.adapter()
        assert "reachable" in erp.test_connection()
        order = shopify_order()
        customer_id = erp.create_customer(order.customer, "email:dana.whitfield@example.com")
        with pytest.raises(PermanentErpError, match="unknown SKU"):  # validates SKUs: none known yet
            erp.push_order(order, customer_id)
        harness.add_products(skus(order))
        assert erp.push_order(order, customer_id).created
        harness.seed_stock([StockLevel("CAP-01", "main", Decimal(3), datetime.now(UTC))])
        assert [s.sku for s in erp.stock_changes(None)[0]] == ["CAP-01"]
        clock = FakeClock()
        erp._sleep = clock.sleep  # built from its config, like the connector builds it: no sleep to pass in
        with harness.down(), pytest.raises(RetryableErpError, match="HTTP 503"):
            erp.get_order(order.external_ref)
        assert clock.slept == []  # down says Retry-After: 1, beyond the harness's 0.5 s budget: not slept
        assert erp.get_order(order.external_ref) is not None
    finally:
        harness.close()
