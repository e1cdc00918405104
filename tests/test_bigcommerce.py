"""BigCommerce: its orders mapped to the cent, its thin webhooks at the door, refunds and cancellations into
the ERP once, its hooks registered, and its API client's rate limits — against the fake store over HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from email.utils import format_datetime

import pytest

from adapters.erp.sql_contract import erp_credit_notes
from adapters.storefront import AccessRevoked
from connector.base.clients import forget
from connector.sync.reconcile import check_subscriptions
from connector.sync.store_admin import register_webhooks, store_by_slug
from mappings.errors import MappingError
from platforms.bigcommerce.api import BigCommerceClient
from platforms.bigcommerce.mapping import order_from_bigcommerce, refund_from_bigcommerce
from platforms.bigcommerce.receiver import SECRET_HEADER
from tests.fakes.bigcommerce import FakeBigCommerce, Line
from tests.platform_drivers.bigcommerce import SECRET, SLUG, BigCommerceDriver
from tests.stack import Stack
from tests.storefronts import store_id

TEE = Line("BC-TEE-M", 2, Decimal("19.99"), discount=Decimal("4.00"), tax_rate=Decimal("8.25"))
MUG = Line("BC-MUG", 1, Decimal("12.50"), tax_rate=Decimal("8.25"))


@pytest.fixture
def bc() -> Iterator[FakeBigCommerce]:
    fake = FakeBigCommerce()
    yield fake
    fake.stop()


# ---- the mapping ---------------------------------------------------------------------------------


def test_an_order_with_a_coupon_and_tax_on_top_reconciles_to_the_cent(bc: FakeBigCommerce) -> None:
    oid = bc.add_order(
        [TEE, MUG], shipping=Decimal("7.95"), shipping_tax_rate=Decimal("8.25"), customer_id=42, coupon="SAVE4"
    )
    order = order_from_bigcommerce(bc.full(oid), "bc")
    # 39.98 + 12.50 − 4.00 + 7.95 = 56.43 net; tax 8.25 % of 35.98, 12.50 and 7.95, each rounded: 2.97 + 1.03 + 0.66
    assert (order.taxes_included, order.totals.subtotal.amount, order.totals.discount_total.amount) == (
        False,
        Decimal("52.48"),
        Decimal("4.00"),
    )
    assert (order.totals.shipping_total.amount, order.totals.tax_total.amount) == (Decimal("7.95"), Decimal("4.66"))
    assert order.totals.total.amount == Decimal("61.09") == Decimal(bc.orders[oid]["total_inc_tax"])
    assert [(li.sku, li.quantity, li.discount_total.amount) for li in order.lines] == [
        ("BC-TEE-M", 2, Decimal("4.00")),
        ("BC-MUG", 1, Decimal("0")),
    ]
    assert [d.code for d in order.discounts] == ["SAVE4"]
    assert order.customer.external_id == "42" and order.number == str(oid) and order.status == "open"


def test_prices_entered_with_tax_are_booked_taxes_included(bc: FakeBigCommerce) -> None:
    vat = Line("BC-SCARF", 3, Decimal("24.00"), tax_rate=Decimal("20"))
    oid = bc.add_order(
        [vat], shipping=Decimal("4.80"), shipping_tax_rate=Decimal("20"), prices_include_tax=True, currency="GBP"
    )
    order = order_from_bigcommerce(bc.full(oid), "bc")
    assert order.taxes_included and order.currency == "GBP"
    assert order.totals.total.amount == Decimal("76.80")  # 72.00 + 4.80, tax inside
    assert order.totals.tax_total.amount == Decimal("12.80")  # 12.00 on the scarves, 0.80 on shipping
    assert sum(t.amount.amount for t in order.lines[0].tax_lines) == Decimal("12.00")


def test_a_guest_and_a_cancelled_order(bc: FakeBigCommerce) -> None:
    oid = bc.add_order([MUG], customer_id=0, status_id=5, payment_method="Cash on Delivery", payment_status="")
    order = order_from_bigcommerce(bc.full(oid), "bc")
    assert order.customer.is_guest and order.customer.email == "buyer@example.com"
    assert (order.status, order.cancel_reason, order.payment.method) == ("cancelled", "cancelled in BigCommerce", "cod")


def test_totals_that_do_not_add_up_are_refused_with_the_difference(bc: FakeBigCommerce) -> None:
    oid = bc.add_order([TEE])
    tampered = bc.full(oid)
    tampered["total_inc_tax"] = "99.0000"
    with pytest.raises(MappingError, match=r"BigCommerce order \d+: totals do not reconcile.*99"):
        order_from_bigcommerce(tampered, "bc")
    with pytest.raises(MappingError, match="expected a JSON object"):
        order_from_bigcommerce(["not", "an", "order"], "bc")


def test_a_refund_of_one_unit_is_its_net_price_and_tax(bc: FakeBigCommerce) -> None:
    oid = bc.add_order([TEE, MUG], customer_id=42, coupon="SAVE4")
    tee = bc.parts[oid]["products"][0]
    rid = bc.add_refund(oid, [{"item_type": "PRODUCT", "item_id": tee["id"], "quantity": 1}], Decimal("19.47"))
    refund = refund_from_bigcommerce(bc.refunds[oid][0], bc.full(oid), "bc", restock=True)
    (line,) = refund.lines
    # one of two tees: half of (39.98 − 4.00) and half of its 2.97 tax
    assert (line.quantity, line.subtotal.amount, line.tax.amount, line.restock) == (
        1,
        Decimal("17.99"),
        Decimal("1.49"),
        True,
    )
    assert refund.external_id == str(rid) and refund.total.amount == Decimal("19.47")
    assert refund.adjustment.amount == Decimal("-0.01")  # what went back, less the parts: nothing lost
    parts = sum((ln.subtotal.amount + ln.tax.amount for ln in refund.lines), refund.shipping.amount)
    assert parts + refund.adjustment.amount == refund.total.amount


# ---- through the connector ------------------------------------------------------------------------


@pytest.fixture
def driver(stack: Stack) -> Iterator[BigCommerceDriver]:
    made = BigCommerceDriver(stack)
    made.configure()
    yield made
    made.stop()


def _post(stack: Stack, body: dict, secret: str | None = SECRET):  # type: ignore[no-untyped-def]
    headers = {"Content-Type": "application/json", **({SECRET_HEADER: secret} if secret is not None else {})}
    return stack._sent(stack.webhooks.post(f"/webhooks/bigcommerce/{SLUG}", data=json.dumps(body), headers=headers))


def test_a_webhook_without_the_secret_header_stores_nothing(stack: Stack, driver: BigCommerceDriver) -> None:
    oid, _, _ = driver.new_order()
    for secret in (None, "wrong-secret", ""):
        assert _post(stack, driver.store.thin("store/order/created", int(oid)), secret).status_code == 401
    assert stack.events() == []


def test_a_refund_and_a_cancellation_reach_the_erp_once(stack: Stack, driver: BigCommerceDriver) -> None:
    oid, _, _ = driver.new_order()
    driver.deliver(oid)
    stack.run_jobs()
    tee = driver.store.parts[int(oid)]["products"][0]
    driver.store.add_refund(int(oid), [{"item_type": "PRODUCT", "item_id": tee["id"], "quantity": 1}], Decimal("19.47"))
    updated = driver.store.thin("store/order/updated", int(oid))
    for _ in range(2):  # BigCommerce retries with the same payload: one event
        assert _post(stack, updated).status_code == 200
    stack.run_jobs()
    driver.catch_up()  # the order listed again, as reconciliation reads it
    stack.run_jobs()
    notes = stack.erp_rows(erp_credit_notes)
    assert [(n.total, n.currency) for n in notes] == [(Decimal("19.47"), "USD")]

    driver.store.touch(int(oid), status_id=5)
    assert _post(stack, driver.store.thin("store/order/statusUpdated", int(oid))).status_code == 200
    stack.run_jobs()
    (row,) = [o for o in stack.erp_orders() if o.external_ref == f"bigcommerce:{SLUG}:{oid}"]
    assert row.status == "cancelled"
    assert all(e.status in ("succeeded", "ignored") for e in stack.events()), [
        (e.topic, e.status) for e in stack.events()
    ]


def test_a_guests_order_with_prices_entered_with_tax_reaches_the_erp_to_the_cent(
    stack: Stack, driver: BigCommerceDriver
) -> None:
    scarf = Line("BC-SCARF", 3, Decimal("24.00"), tax_rate=Decimal("20"))
    oid = driver.store.add_order(
        [scarf], shipping=Decimal("4.80"), shipping_tax_rate=Decimal("20"), prices_include_tax=True, currency="GBP"
    )
    driver.deliver(str(oid))
    stack.run_jobs()
    (row,) = [o for o in stack.erp_orders() if o.external_ref == f"bigcommerce:{SLUG}:{oid}"]
    assert (row.total, row.tax_total, row.taxes_included, row.currency) == (
        Decimal("76.80"),
        Decimal("12.80"),
        True,
        "GBP",
    )
    assert row.customer_email == "buyer@example.com"  # a guest: no store account, found by e-mail


def test_an_order_read_with_a_nul_character_is_parked_with_where_it_is(stack: Stack, driver: BigCommerceDriver) -> None:
    oid, _, _ = driver.new_order()
    driver.store.orders[int(oid)]["customer_message"] = "leave at\x00the door"  # what the API answers
    driver.deliver(oid)
    stack.run_jobs()
    (event,) = stack.events()
    assert event.status == "failed" and "customer_message" in event.last_error and "NUL" in event.last_error
    assert stack.erp_orders() == []


def test_hooks_are_registered_with_the_secret_header_and_replaced_when_deactivated(
    stack: Stack, driver: BigCommerceDriver
) -> None:
    store = store_by_slug(stack.rt, SLUG)
    assert store is not None
    done = register_webhooks(stack.rt, store)
    hooks = list(driver.store.hooks.values())
    assert sorted(h["scope"] for h in hooks) == sorted(done["created"])
    assert {h["headers"][SECRET_HEADER] for h in hooks} == {SECRET}
    assert all(h["destination"].endswith(f"/webhooks/bigcommerce/{SLUG}") for h in hooks)

    first = hooks[0]
    first["is_active"] = False  # BigCommerce deactivates a hook after failed deliveries
    found = check_subscriptions(stack.rt, store_id(stack, SLUG))
    assert found["missing"] == [first["scope"]] and found["created"] == [first["scope"]]
    assert first["id"] not in driver.store.hooks  # the dead one is gone, a live one stands in
    assert sum(h["scope"] == first["scope"] and h["is_active"] for h in driver.store.hooks.values()) == 1


def test_a_store_without_a_webhook_secret_gets_one_made(stack: Stack, bc: FakeBigCommerce) -> None:
    from connector.setup.config_io import load_config

    load_config(
        stack.rt,
        json.dumps(
            {
                "stores": [
                    {"slug": "bc-new", "platform": "bigcommerce", "store_hash": bc.store_hash, "access_token": bc.token}
                ]
            }
        ),
    )
    forget()
    store = store_by_slug(stack.rt, "bc-new")
    assert store is not None and len(store.secrets["webhook_secret"]) >= 32


# ---- the API client -----------------------------------------------------------------------------------


def test_the_client_waits_out_a_spent_window_instead_of_meeting_429s(bc: FakeBigCommerce) -> None:
    bc.quota, bc.window_ms = 3, 400
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        import time

        time.sleep(seconds)

    client = BigCommerceClient(bc.store_hash, bc.token, bc.url, sleep=sleep)
    for _ in range(7):
        client.locations()
    assert bc.calls["429"] == 0 and client.stats.throttled == 0
    assert slept and client.stats.waited > 0


def test_a_429_waits_the_reset_it_names(bc: FakeBigCommerce) -> None:
    bc.quota, bc.window_ms = 1, 300
    first = BigCommerceClient(bc.store_hash, bc.token, bc.url)
    other = BigCommerceClient(bc.store_hash, bc.token, bc.url)  # another process: it never saw the window spent
    first.locations()
    assert other.locations() and other.stats.throttled == 1 and other.stats.waited > 0


def test_paging_and_a_revoked_token(bc: FakeBigCommerce) -> None:
    for n in range(300):
        bc.add_variant(f"SKU-{n}")
    client = BigCommerceClient(bc.store_hash, bc.token, bc.url)
    assert len(client.variants()) == 300 and bc.calls["GET v3/catalog/variants"] == 2
    assert [v["sku"] for v in client.variants(["SKU-7", "SKU-299", "NOPE"])] == ["SKU-7", "SKU-299"]
    with pytest.raises(AccessRevoked):
        BigCommerceClient(bc.store_hash, "revoked", bc.url).locations()
    assert not BigCommerceClient(bc.store_hash, "revoked", bc.url).installed()


def test_an_order_changed_while_the_listing_pages_pushes_no_other_past_it(bc: FakeBigCommerce) -> None:
    from datetime import UTC, datetime, timedelta

    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    ids = [bc.add_order([MUG], modified=start + timedelta(seconds=n)) for n in range(5)]
    touched: list[int] = []

    def change_the_first() -> None:  # after the first page, the first order is edited: it moves to the end
        if not touched:
            touched.append(ids[0])
            order = bc.orders[ids[0]]
            order["date_modified"] = format_datetime(start + timedelta(minutes=5), usegmt=True)

    bc.after_list = change_the_first
    client = BigCommerceClient(bc.store_hash, bc.token, bc.url)
    listed = [o["id"] for o in client.orders_modified_since(start, page_size=2)]
    assert sorted(set(listed)) == sorted(ids) and len(listed) == len(set(listed))
