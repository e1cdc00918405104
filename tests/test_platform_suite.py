"""One contract, every storefront platform: the same promises, checked the same way on each, through the
whole connector (its door or its poll, the inbox, the pipeline, the SQL staging ERP, the stock and
shipment syncs) against each platform's fake store over real HTTP, on both stacks."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from connector.base.stock import read_erp_stock
from connector.sync.fulfillment import sync_shipments
from connector.sync.inventory import sync_inventory
from tests.platform_drivers import DRIVERS, Driver
from tests.stack import Stack
from tests.storefronts import add_shipment, set_erp_stock, store_id

AT = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.fixture(params=sorted(DRIVERS))
def driver(request: pytest.FixtureRequest, stack: Stack) -> Iterator[Driver]:
    module_name, class_name = DRIVERS[request.param].split(":")
    made: Driver = getattr(importlib.import_module(module_name), class_name)(stack)
    made.configure()
    yield made
    made.stop()


def _ref(driver: Driver, order_id: str) -> str:
    return f"{driver.platform}:{driver.slug}:{order_id}"


def _in_erp(stack: Stack, ref: str) -> list:
    return [o for o in stack.erp_orders() if o.external_ref == ref]


def test_an_order_reaches_the_erp_once_to_the_cent(stack: Stack, driver: Driver) -> None:
    order_id, total, _ = driver.new_order()
    driver.deliver(order_id)
    stack.run_jobs()
    driver.deliver(order_id)  # delivered again, and listed again by reconciliation (or the next poll)
    driver.catch_up()
    stack.run_jobs()
    (row,) = _in_erp(stack, _ref(driver, order_id))
    assert row.total == total
    assert all(e.status not in ("failed", "dead") for e in stack.events())


def test_a_missed_order_is_found(stack: Stack, driver: Driver) -> None:
    order_id, total, _ = driver.new_order()  # its webhook never comes
    driver.catch_up()
    stack.run_jobs()
    (row,) = _in_erp(stack, _ref(driver, order_id))
    assert row.total == total


def test_stock_goes_back(stack: Stack, driver: Driver) -> None:
    driver.sells("SUITE-SKU-1")
    set_erp_stock(stack, [("SUITE-SKU-1", "MAIN", 7, AT)])
    read_erp_stock(stack.rt)
    report = sync_inventory(stack.rt, store_id(stack, driver.slug), full=True)
    assert report.complete and report.changes == 1, report.summary()
    assert driver.stock_shown("SUITE-SKU-1") == 7
    again = sync_inventory(stack.rt, store_id(stack, driver.slug))
    assert again.changes == 0  # nothing differs: nothing written


def test_a_shipment_goes_back_once(stack: Stack, driver: Driver) -> None:
    order_id, _, lines = driver.new_order()
    driver.deliver(order_id)
    stack.run_jobs()
    add_shipment(stack, "SUITE-SHIP-1", _ref(driver, order_id), list(lines), carrier="UPS", number="1ZSUITE1", at=AT)
    first = sync_shipments(stack.rt)
    assert first.outcomes["done"] == 1, first.summary()
    sync_shipments(stack.rt)  # a second run finds nothing new to tell
    assert driver.tracking_shown(order_id) == ["1ZSUITE1"]
