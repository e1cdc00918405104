"""The Magento REST client against the fake store over HTTP (platforms/magento/api.py)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from werkzeug.datastructures import MultiDict

from adapters.storefront import AccessRevoked, StorefrontError
from platforms.magento.api import MagentoClient, filled, search_params
from tests.fakes.magento import FakeMagento
from tests.fakes.magento_orders import Line

SINCE = datetime(2026, 11, 20, 0, 0, tzinfo=UTC)


@pytest.fixture(params=["last", "empty"])
def store(request: pytest.FixtureRequest) -> Iterator[FakeMagento]:
    """Magento up to 2.3 answers a page past the end with the last page again; 2.4 with nothing."""
    fake = FakeMagento(past_end=request.param)
    yield fake
    fake.stop()


def client(fake: FakeMagento, **options: object) -> MagentoClient:
    return MagentoClient(fake.url, fake.token, timeout=5, sleep=lambda s: None, **options)  # type: ignore[arg-type]


def test_search_pages_end_on_total_count_even_when_magento_repeats_the_last_page(store: FakeMagento) -> None:
    store.sources.update({f"s{n:03d}": {"source_code": f"s{n:03d}", "name": f"Shop {n}"} for n in range(24)})
    found = list(client(store, page_size=10).search("inventory/sources", []))
    assert len(found) == 25 and len({s["source_code"] for s in found}) == 25
    assert [(page, count) for name, page, count in store.pages_served] == [(1, 10), (2, 10), (3, 5)]


def test_orders_are_listed_from_a_time_oldest_change_first_each_once(store: FakeMagento) -> None:
    old = store.add_order([Line("MUG", "10.00")])
    store.tick(3600)
    ids = [store.add_order([Line("MUG", "10.00")])["entity_id"] for _ in range(7)]
    store.touch(ids[0])  # changed last: listed last
    since = datetime.fromisoformat(old["updated_at"]).replace(tzinfo=UTC).replace(minute=30)
    listed = [o["entity_id"] for o in client(store).orders_updated_since(since, page_size=3)]
    assert listed == ids[1:] + ids[:1]
    assert old["entity_id"] not in listed
    assert store.hits["GET orders"] == 3  # 3 + 3 + 1, each page asked as page 1 after the last order seen


def test_an_order_updated_while_the_listing_pages_is_not_skipped(store: FakeMagento) -> None:
    """With page numbers, the order touched after page 1 moves to the end and every later order moves back
    one place: the first of page 2 would be missed. The keyset listing sees every order."""
    ids = [store.add_order([Line("MUG", "10.00")])["entity_id"] for _ in range(6)]
    store.after_list = lambda: None if store.touch(ids[0]) else None
    listed = [o["entity_id"] for o in client(store).orders_updated_since(SINCE, page_size=3)]
    assert set(listed) == set(ids)
    assert listed[-1] == ids[0] and listed.count(ids[0]) == 2  # its old version, then its new one


def test_orders_sharing_one_second_are_all_listed(store: FakeMagento) -> None:
    first = store.add_order([Line("MUG", "10.00")])
    same = [store.add_order([Line("MUG", "10.00")])["entity_id"] for _ in range(4)]
    for entity_id in [first["entity_id"], *same]:
        store.touch(entity_id, same_second=True)
    listed = [o["entity_id"] for o in client(store).orders_updated_since(SINCE, page_size=2)]
    assert listed == sorted([first["entity_id"], *same])


def test_a_store_that_ignores_the_filters_cannot_make_the_listing_loop(store: FakeMagento) -> None:
    for _ in range(3):
        store.add_order([Line("MUG", "10.00")])
    store.orders[999] = {**store.orders[101], "entity_id": 1, "updated_at": "2020-01-01 00:00:00"}
    original = store._search

    def unfiltered(name: str, rows: list[dict], args: object) -> dict:
        answer = original(name, rows, MultiDict())
        return {**answer, "total_count": 99}

    store._search = unfiltered  # type: ignore[method-assign,assignment]
    with pytest.raises(StorefrontError, match="did not apply the search filters"):
        list(client(store).orders_updated_since(SINCE, page_size=2))


def test_search_criteria_as_magento_reads_them() -> None:
    params = dict(
        search_params(
            [[("updated_at", "2026-11-20 09:00:00", "gteq")], [("a", 1, "gt"), ("b", 2, "gt")]],
            [("updated_at", "ASC")],
            50,
            1,
        )
    )
    assert params["searchCriteria[filter_groups][1][filters][1][field]"] == "b"
    assert params["searchCriteria[filter_groups][0][filters][0][condition_type]"] == "gteq"
    assert params["searchCriteria[sortOrders][0][direction]"] == "ASC"
    assert (params["searchCriteria[pageSize]"], params["searchCriteria[currentPage]"]) == ("50", "1")
    assert search_params([]) == [("searchCriteria", "")]
    assert filled("No such entity with %fieldName = %fieldValue", {"fieldName": "id", "fieldValue": 5}) == (
        "No such entity with id = 5"
    )
    assert filled('The "%1" value for "%2" is wrong.', ["x", "sku"]) == 'The "x" value for "sku" is wrong.'


def test_a_refused_token_says_how_to_allow_it(store: FakeMagento) -> None:
    with pytest.raises(AccessRevoked) as caught:
        MagentoClient(store.url, "a token the store does not take", sleep=lambda s: None).order(1)
    text = str(caught.value)
    assert "isn't authorized to access Magento_Sales::actions_view" in text
    assert "Allow OAuth Access Tokens to be used as standalone Bearer tokens" in text
    assert not caught.value.retryable


def test_errors_retries_and_missing_orders(store: FakeMagento) -> None:
    order = store.add_order([Line("MUG", "10.00")])
    magento = client(store)
    store.fail_next(2, 503)
    assert (magento.order(order["entity_id"]) or {}).get("increment_id") == order["increment_id"]
    assert magento.stats.retries == 2 and magento.stats.calls["GET orders/<id>"] == 3
    assert magento.order(424242) is None
    store.fail_next(4, 500)
    with pytest.raises(StorefrontError) as caught:
        magento.order(order["entity_id"])
    assert caught.value.retryable
    with pytest.raises(StorefrontError, match="without its JSON error: is the base URL"):
        MagentoClient(store.url + "/shop", store.token, sleep=lambda s: None).order(1)


def test_a_shipment_is_not_resent_after_a_failure(store: FakeMagento) -> None:
    order = store.add_order([Line("MUG", "10.00", 2)])
    magento = client(store)
    store.fail_next(1, 502)
    with pytest.raises(StorefrontError) as caught:
        magento.ship(order["entity_id"], [(order["items"][0]["item_id"], 1)])
    assert caught.value.retryable  # the caller looks for the shipment, then ships again
    assert magento.stats.calls["POST order/<id>/ship"] == 1 and magento.stats.retries == 0
    assert magento.shipments(order["entity_id"]) == []


def test_ship_and_read_the_comment_back(store: FakeMagento) -> None:
    order = store.add_order([Line("MUG", "10.00", 2), Line("TEE-M", "20.00", 1, parent_sku="TEE")], payment="braintree")
    mug, tee = order["items"][0]["item_id"], order["items"][1]["item_id"]
    magento = client(store)
    first = magento.ship(order["entity_id"], [(mug, 1)], [("1Z999", "UPS", "ups")], "ERP shipment SH-1", notify=True)
    second = magento.ship(order["entity_id"], [(mug, 1), (tee, 1)], comment="ERP shipment SH-2")
    shipments = magento.shipments(order["entity_id"])
    assert [s["entity_id"] for s in shipments] == [first, second]
    assert shipments[0]["tracks"][0]["track_number"] == "1Z999"
    assert [c["comment"] for c in shipments[1]["comments"]] == ["ERP shipment SH-2"]
    found = magento.find_shipment(order["entity_id"], "SH-1")
    assert found is not None and found["entity_id"] == first
    assert magento.find_shipment(order["entity_id"], "SH-3") is None
    assert store.emails == [("shipment", first)]
    assert store.orders[order["entity_id"]]["state"] == "complete"
    with pytest.raises(StorefrontError, match="shipment of 1 of MUG: 0 left to ship") as caught:
        magento.ship(order["entity_id"], [(mug, 1)])
    assert not caught.value.retryable


def test_cancel_comment_and_credit_memos(store: FakeMagento) -> None:
    order = store.add_order([Line("MUG", "10.00", 2)])
    paid = store.add_order([Line("MUG", "10.00", 2)], payment="braintree")
    store.add_creditmemo(paid["entity_id"], {paid["items"][0]["item_id"]: 1})
    magento = client(store)
    assert magento.add_comment(order["entity_id"], "held for the warehouse")
    assert store.orders[order["entity_id"]]["status_histories"][0]["is_customer_notified"] == 0
    assert magento.cancel(order["entity_id"]) is True
    assert store.orders[order["entity_id"]]["state"] == "canceled"
    assert magento.cancel(order["entity_id"]) is False
    assert magento.cancel(paid["entity_id"]) is False  # invoiced: a credit memo, not a cancellation
    memos = magento.creditmemos(paid["entity_id"])
    assert [m["order_id"] for m in memos] == [paid["entity_id"]]
    assert magento.creditmemos(order["entity_id"]) == []


def test_source_items_read_and_written_in_chunks(store: FakeMagento) -> None:
    store.sources["berlin"] = {"source_code": "berlin", "name": "Berlin"}
    magento = client(store)
    rows = [(f"SKU-{n:03d}", "berlin", n % 3) for n in range(120)] + [("SKU-000", "default", Decimal("2.5"))]
    assert magento.set_source_items(rows, chunk=50) == 121
    assert store.hits["POST inventory/source-items"] == 3
    assert store.source_items[("SKU-001", "berlin")] == {
        "sku": "SKU-001",
        "source_code": "berlin",
        "quantity": 1.0,
        "status": 1,
    }
    assert store.source_items[("SKU-003", "berlin")]["status"] == 0  # none left: out of stock
    found = magento.source_items(f"SKU-{n:03d}" for n in range(60))
    assert len(found) == 61 and store.hits["GET inventory/source-items"] == 2  # 50 SKUs a query
    assert {s["source_code"] for s in magento.sources()} == {"default", "berlin"}
    with pytest.raises(StorefrontError, match='Validation Failed: Source with code "nowhere" does not exist'):
        magento.set_source_items([("SKU-001", "nowhere", 1)])


def test_a_store_code_is_part_of_the_path(store: FakeMagento) -> None:
    client(store, store_code="de").sources()
    assert store.store_codes[-1] == "de"
