"""Magento through the whole connector: its orders polled on a schedule into the inbox and the SQL staging
ERP to the cent (taxes on top or included, a coupon, a guest, another currency), once under re-polling;
a credit memo and a cancellation into the ERP once; the store on /config and in `config load/dump`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal

import pytest

from adapters.erp.sql_contract import erp_credit_notes
from connector.jobs import schedules, store_job
from connector.setup.config_io import dump_config
from tests.fakes.magento_orders import Line
from tests.platform_drivers.magento import SLUG, MagentoDriver
from tests.stack import Stack
from tests.storefronts import store_id
from tests.test_api import sign_in


@pytest.fixture
def driver(stack: Stack) -> Iterator[MagentoDriver]:
    made = MagentoDriver(stack)
    made.configure()
    yield made
    made.stop()


def _erp_order(stack: Stack, entity_id: int):  # type: ignore[no-untyped-def]
    rows = [o for o in stack.erp_orders() if o.external_ref == f"magento:{SLUG}:{entity_id}"]
    assert len(rows) == 1, f"{len(rows)} ERP orders for Magento order {entity_id}"
    return rows[0]


def _poll(stack: Stack) -> None:
    """The poll as the scheduler runs it: through the queue, under the store's concurrency limit."""
    stack.rt.queue.enqueue(store_job, "reconcile", store_id(stack, SLUG))
    stack.run_jobs()
    stack.run_jobs()


def test_polled_orders_reach_the_erp_to_the_cent_once(stack: Stack, driver: MagentoDriver) -> None:
    fake = driver.store
    on_top = fake.add_order(
        [Line("MG-TEE", "20.00", qty=2, tax_rate="19", discount_percent="10"), Line("MG-MUG", "12.50", tax_rate="19")],
        shipping="5.00",
        shipping_tax_rate="19",
        coupon="SAVE10",
    )
    included = fake.add_order(
        [Line("MG-SCARF", "23.80", qty=3, tax_rate="19")], prices_incl_tax=True, guest=True, email="guest@example.com"
    )
    foreign = fake.add_order([Line("MG-MUG", "12.50", tax_rate="19")], order_currency="USD", rate="1.10")
    waiting = fake.add_order([Line("MG-MUG", "12.50")], state="pending_payment")  # at an off-site gateway
    for _ in range(3):  # and again: the same versions are duplicates at the inbox
        _poll(stack)
    for order in (on_top, included, foreign):
        row = _erp_order(stack, order["entity_id"])
        assert (row.total, row.currency) == (Decimal(str(order["base_grand_total"])), order["base_currency_code"])
        assert row.tax_total == Decimal(str(order["base_tax_amount"]))
    assert _erp_order(stack, included["entity_id"]).customer_email == "guest@example.com"
    assert not [o for o in stack.erp_orders() if o.external_ref.endswith(f":{waiting['entity_id']}")]
    assert len(stack.events()) == 4 and all(e.status != "failed" for e in stack.events())
    assert {e.headers.get("X-Connector-Source") for e in stack.events()} == {"poll"}

    fake.set_paid(waiting["entity_id"])  # paid at last: the next poll imports it
    _poll(stack)
    assert _erp_order(stack, waiting["entity_id"]).total == Decimal(str(waiting["base_grand_total"]))


def test_a_credit_memo_and_a_cancellation_reach_the_erp_once(stack: Stack, driver: MagentoDriver) -> None:
    fake = driver.store
    order = fake.add_order([Line("MG-TEE", "20.00", qty=2, tax_rate="19"), Line("MG-MUG", "12.50", tax_rate="19")])
    other = fake.add_order([Line("MG-MUG", "12.50", tax_rate="19")], payment="cashondelivery")
    _poll(stack)
    tee = next(i for i in order["items"] if i["sku"] == "MG-TEE")
    memo = fake.add_creditmemo(order["entity_id"], {tee["item_id"]: 1}, back_to_stock=True)
    fake.tick()
    _poll(stack)
    _poll(stack)
    notes = stack.erp_rows(erp_credit_notes)
    assert [(n.total, n.currency) for n in notes] == [(Decimal(str(memo["base_grand_total"])), "EUR")]

    fake.touch(other["entity_id"], state="canceled", status="canceled")
    _poll(stack)
    assert _erp_order(stack, other["entity_id"]).status == "cancelled"


def test_the_poll_is_scheduled_and_shown_instead_of_webhooks(stack: Stack, driver: MagentoDriver) -> None:
    found = {name: (args, every) for name, _, args, every in schedules(stack.rt)}
    assert found[f"poll:{SLUG}"] == (("reconcile", store_id(stack, SLUG)), 60)
    assert f"subscriptions:{SLUG}" not in found and f"reconcile:{SLUG}" not in found
    assert stack.client.post(f"/webhooks/magento/{SLUG}", data=b"{}").status_code == 404  # no door for it

    admin = sign_in(stack)
    page = admin.get(f"/config/stores/{SLUG}").get_data(as_text=True)
    assert "sends no webhooks" in page and "every 60 seconds" in page and "Webhooks and their health" not in page
    tested = admin.post(f"/config/stores/{SLUG}/test", data={"csrf_token": admin.csrf}, follow_redirects=True)
    assert "inventory source(s)" in tested.get_data(as_text=True)


def test_stores_of_the_new_platforms_round_trip_through_config_dump(stack: Stack, driver: MagentoDriver) -> None:
    dumped = dump_config(stack.rt)
    (entry,) = [s for s in json.loads(json.dumps(_yaml(dumped)))["stores"] if s["slug"] == SLUG]
    assert entry["platform"] == "magento" and entry["base_url"] == driver.store.url
    assert entry["access_token"] != driver.store.token  # masked


def _yaml(text: str) -> dict:
    import yaml

    loaded: dict = yaml.safe_load(text)
    return loaded


def test_the_store_form_adds_a_bigcommerce_and_a_magento_store(stack: Stack) -> None:
    admin = sign_in(stack)
    new = admin.get("/config/stores/new").get_data(as_text=True)
    for label in ("BigCommerce", "Magento", "Store hash", "Integration access token"):
        assert label in new
    made = admin.post(
        "/config/stores/new",
        data={
            "csrf_token": admin.csrf,
            "slug": "bc-form",
            "platform": "bigcommerce",
            "active": "on",
            "store_hash": "abc123",
            "bigcommerce-access_token": "bc-token-0123456789",
        },
    )
    assert made.status_code == 302, made.get_data(as_text=True)
    refused = admin.post(
        "/config/stores/new",
        data={
            "csrf_token": admin.csrf,
            "slug": "mage-form",
            "platform": "magento",
            "active": "on",
            "store_code": "x y",
        },
    )
    page = refused.get_data(as_text=True)
    assert refused.status_code == 400 and "required for a Magento store" in page and "a store view code" in page


def test_a_receipt_is_noted_once_on_an_order_shipped_before_it_was_paid(stack: Stack, driver: MagentoDriver) -> None:
    from datetime import UTC, datetime

    from sqlalchemy import update

    from connector.base.models import ReceiptDelivery
    from connector.sync.receipts import sync_receipts
    from tests.storefronts import add_receipt

    fake = driver.store
    order = fake.add_order([Line("MG-MUG", "12.50", tax_rate="19")], payment="cashondelivery")
    _poll(stack)
    fake.touch(order["entity_id"], state="processing", status="processing")  # shipped, not yet invoiced
    total = str(order["base_grand_total"])
    add_receipt(stack, "RC-9", f"magento:{SLUG}:{order['entity_id']}", total, "EUR", at=datetime.now(UTC))
    first = sync_receipts(stack.rt)
    assert first.outcomes["done"] == 1, first.summary()

    def noted() -> list[str]:
        return [h["comment"] for h in fake.orders[order["entity_id"]]["status_histories"] if "RC-9" in h["comment"]]

    assert len(noted()) == 1 and noted()[0].startswith("Payment of 20.83")
    # The answer was lost: the row is tried again and finds its comment, and adds none.
    with stack.rt.sessions.begin() as session:
        session.execute(update(ReceiptDelivery).values(status="pending"))
    again = sync_receipts(stack.rt)
    assert again.outcomes["done"] == 1 and len(noted()) == 1
