"""Polled Magento orders: each version once through the inbox's dedupe, and its handler
(platforms/magento/listing.py, events.py)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from connector.sync.reconcile import OVERLAP
from mappings.canonical import Order, Refund
from mappings.errors import MappingError
from platforms.base import ORDER
from platforms.magento import PLATFORM
from platforms.magento.api import MagentoClient
from platforms.magento.events import IMPORT_STATUSES, check, has_api
from platforms.magento.listing import TOPIC, state_key
from platforms.registry import platform
from tests.fakes.magento import FakeMagento
from tests.fakes.magento_orders import Line


@pytest.fixture
def store() -> Iterator[FakeMagento]:
    fake = FakeMagento()
    yield fake
    fake.stop()


class Poller:
    """What the core's reconciliation does with a listing: orders changed since the cursor into the inbox
    (a set of dedupe keys), the cursor moved to the newest change less the overlap."""

    def __init__(self, fake: FakeMagento):
        self.client = MagentoClient(fake.url, fake.token, sleep=lambda s: None)
        self.inbox: dict[str, dict] = {}
        self.cursor = fake.now - timedelta(days=1)

    def poll(self) -> list[dict]:
        listing = PLATFORM.orders
        new: list[dict] = []
        newest: datetime | None = None
        for order in listing.changed_since(self.client, self.cursor, 2):
            key = listing.dedupe_key(order)
            if key not in self.inbox:
                self.inbox[key] = order
                new.append(order)
            changed = listing.changed_at(order)
            newest = changed if newest is None or changed > newest else newest
        if newest is not None:
            self.cursor = max(self.cursor, newest - OVERLAP)
        return new


def test_polling_sees_each_version_of_an_order_once(store: FakeMagento) -> None:
    a, b, c = (store.add_order([Line("MUG", "10.00")]) for _ in range(3))
    poller = Poller(store)
    assert [o["entity_id"] for o in poller.poll()] == [a["entity_id"], b["entity_id"], c["entity_id"]]
    assert poller.poll() == []  # the overlap re-reads them: duplicates at the door
    store.touch(b["entity_id"], state="holded", status="holded")
    assert [(o["entity_id"], o["state"]) for o in poller.poll()] == [(b["entity_id"], "holded")]
    # Released within the same second: updated_at is the same, the version is not.
    store.touch(b["entity_id"], same_second=True, state="processing", status="processing")
    assert [(o["entity_id"], o["state"]) for o in poller.poll()] == [(b["entity_id"], "processing")]
    store.tick(600)  # past the overlap: the cursor has moved on, the next change is still seen
    store.set_paid(a["entity_id"])
    store.add_creditmemo(a["entity_id"], {a["items"][0]["item_id"]: 1})
    assert [o["entity_id"] for o in poller.poll()] == [a["entity_id"]]
    assert poller.poll() == []
    assert len(poller.inbox) == 6


def test_the_dedupe_key_is_stable_for_a_version_and_new_for_another(store: FakeMagento) -> None:
    order = store.add_order([Line("MUG", "10.00", 2)])
    key = state_key(order)
    assert key.startswith(f"order:{order['entity_id']}:{order['updated_at']}:")
    assert state_key(dict(order)) == key and state_key({**order, "id": order["entity_id"]}) == key
    for change in (
        {"state": "canceled"},
        {"status": "fraud"},
        {"base_total_refunded": 5.0},
        {"base_total_paid": 25.0},
        {"updated_at": "2026-11-20 09:00:09"},
    ):
        assert state_key({**order, **change}) != key, change
    shipped = {**order, "items": [{**order["items"][0], "qty_shipped": 2}]}
    assert state_key(shipped) == key  # what the ERP is not told about makes no new event


def test_the_listing_names_orders_as_the_core_reads_them(store: FakeMagento) -> None:
    order = store.add_order([Line("MUG", "10.00")])
    listing = platform("magento").orders
    (listed,) = list(listing.changed_since(MagentoClient(store.url, store.token), store.now - timedelta(hours=1), None))
    assert listed["id"] == order["entity_id"]  # the inbox's resource id
    assert listing.topic == TOPIC and not listing.by_id
    assert listing.changed_at(listed) == datetime(2026, 11, 20, 9, 0, 1, tzinfo=UTC)
    assert listing.number(listed) == order["increment_id"]


def test_the_platform_as_the_core_sees_it() -> None:
    assert PLATFORM.receiver is None and PLATFORM.kind(TOPIC) == ORDER
    assert PLATFORM.import_statuses == IMPORT_STATUSES
    assert "pending_payment" not in IMPORT_STATUSES and "new" in IMPORT_STATUSES
    assert has_api({"base_url": "https://shop.example"}, {"access_token": "t"})
    assert not has_api({"base_url": "https://shop.example"}, {})
    client = PLATFORM.client(
        "eu",
        {"base_url": "https://shop.example/", "store_code": "de"},
        {"access_token": "t"},
        {"timeout": 10, "max_retries": 1, "retry_base": 0.2},
        lambda: None,
    )
    assert client.api == "https://shop.example/rest/de/V1" and client.max_retries == 1
    with pytest.raises(Exception, match="no Magento base URL or integration access token"):
        PLATFORM.client("eu", {}, {}, {}, lambda: None)


def test_a_body_that_is_no_listed_order_is_refused(store: FakeMagento) -> None:
    order = store.add_order([Line("MUG", "10.00")])
    check(TOPIC, order, None)
    with pytest.raises(MappingError, match="not a Magento order.*items"):
        check(TOPIC, {k: v for k, v in order.items() if k != "items"}, None)
    check("something.else", {}, None)  # no handler: recorded as ignored


class FakeCore:
    """The core as a handler sees it: what was taken, and which credit memos the ERP has."""

    def __init__(self, client: MagentoClient):
        self.store = "eu"
        self.settings: dict[str, Any] = {}
        self.has_api = True
        self._client = client
        self.orders: list[tuple[Order, str]] = []
        self.refunds: list[Refund] = []

    def client(self) -> MagentoClient:
        return self._client

    def take_order(self, order: Order, status: str, transactions: object = None, risk: object = None) -> dict:
        self.orders.append((order, status))
        return {"erp_ref": f"SO-{order.external_id}"}

    def credited(self, order: Order, refund_id: str) -> bool:
        return any(r.external_id == refund_id for r in self.refunds)

    def take_refund(self, refund: Refund) -> dict:
        self.refunds.append(refund)
        return {"credit_note": f"CN-{refund.external_id}"}


def test_a_polled_order_is_taken_and_its_new_credit_memos_once(store: FakeMagento) -> None:
    order = store.add_order([Line("MUG", "10.00", 3, "19")], payment="braintree")
    core = FakeCore(MagentoClient(store.url, store.token, sleep=lambda s: None))
    handle = PLATFORM.topics[TOPIC].handle
    result = handle(core, store.orders[order["entity_id"]])  # type: ignore[arg-type]
    assert "refunds" not in result and store.hits["GET creditmemos"] == 0  # nothing refunded: nothing read
    item = order["items"][0]["item_id"]
    store.add_creditmemo(order["entity_id"], {item: 1}, back_to_stock=True)
    handle(core, store.orders[order["entity_id"]])  # type: ignore[arg-type]
    store.add_creditmemo(order["entity_id"], {item: 1})
    result = handle(core, store.orders[order["entity_id"]])  # type: ignore[arg-type]
    assert [r.total.amount for r in core.refunds] == [Decimal("11.90")] * 2  # 10.00 + 1.90 tax each
    assert [r.lines[0].restock for r in core.refunds] == [True, False]
    assert len(result["refunds"]) == 1  # the first memo was credited already
    assert [status for _, status in core.orders] == ["processing"] * 3
    assert core.orders[0][0].totals.total.amount == Decimal("41.65")  # 30.00 + 5.70 + shipping 5.00 + 0.95
