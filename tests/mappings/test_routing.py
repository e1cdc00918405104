"""The routing rules, read and applied (pure): which warehouse ships an order, or each of its lines."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest

from mappings.canonical import Address
from mappings.routing import RoutingError, route, rules_from_setting, rules_to_setting
from platforms.shopify.mapping import order_from_shopify
from tests.conftest import load_fixture

# Three lines: 3 x SOCK-MER-M-CHA, 1 x SHOE-TR2-42-SLT, 2 of a line without SKU; ships to Boston, US-MA.
ORDER = order_from_shopify(load_fixture("shopify", "order_discount_multiline.json"), "acme-us")
SOCK, SHOE = "SOCK-MER-M-CHA", "SHOE-TR2-42-SLT"
RULES = {"by_destination": {"DE": "BER", "US-CA": "LAX", "US": "NYC", "*": "MAIN"}, "warehouses": ["MAIN", "BER"]}


def to(country: str, region: str = ""):  # type: ignore[no-untyped-def]
    return dataclasses.replace(ORDER, shipping_address=Address(country_code=country, region=region))


def stock(**by_warehouse: dict[str, int]) -> dict[tuple[str, str], Decimal]:
    return {(sku, w): Decimal(n) for w, levels in by_warehouse.items() for sku, n in levels.items()}


def checked(**extra):  # type: ignore[no-untyped-def]
    return rules_from_setting({**RULES, "stock_check": True, **extra})


def test_no_rule_routes_nothing():
    rules = rules_from_setting(None)
    assert not rules.any
    assert route(ORDER, rules, {}).warehouse is None


@pytest.mark.parametrize(
    "country, region, warehouse, reason",
    [
        ("DE", "BE", "BER", "destination DE"),
        ("de", "", "BER", "destination DE"),  # the store's case does not matter
        ("US", "CA", "LAX", "destination US-CA"),  # the region's rule before the country's
        ("US", "MA", "NYC", "destination US"),
        ("FR", "", "MAIN", "any destination"),
        ("", "", "MAIN", "any destination"),  # no shipping address: the catch-all
    ],
)
def test_the_destination_names_the_warehouse(country, region, warehouse, reason):
    routing = route(to(country, region), rules_from_setting(RULES), {})
    assert (routing.warehouse, routing.reason) == (warehouse, reason)
    assert {w for _, w in routing.lines} == {warehouse} and not routing.split
    assert routing.describe() == f"routed to {warehouse} ({reason})"


def test_a_destination_without_rule_and_no_catch_all_leaves_the_erp_default():
    routing = route(to("FR"), rules_from_setting({"by_destination": {"DE": "BER"}}), {})
    assert routing.warehouse is None
    assert routing.describe() == "not routed: the ERP's default warehouse (no routing rule for the destination)"


def test_with_stock_check_the_destinations_warehouse_ships_when_it_has_every_line():
    available = stock(BER={SOCK: 3, SHOE: 1}, MAIN={SOCK: 9, SHOE: 9})
    routing = route(to("DE"), checked(), available)
    assert routing.warehouse == "BER"
    assert routing.describe() == "routed to BER (destination DE, stock for every line)"


def test_with_stock_check_the_first_warehouse_with_every_line_ships_in_the_listed_order():
    available = stock(BER={SOCK: 2, SHOE: 1}, MAIN={SOCK: 3, SHOE: 0}, NYC={SOCK: 9})
    assert "no warehouse has stock for every line" in route(to("DE"), checked(), available).reason
    available[(SHOE, "MAIN")] = Decimal(1)
    routing = route(to("DE"), checked(), available)
    assert (routing.warehouse, routing.reason) == ("MAIN", "destination DE, stock for every line, not at BER")
    # The same SKU on two lines counts once with both quantities.
    twice = dataclasses.replace(to("DE"), lines=(*ORDER.lines, dataclasses.replace(ORDER.lines[0], external_id="x")))
    routing = route(twice, checked(), available)  # 6 socks wanted: MAIN has 3, BER 2, NYC no shoe
    assert routing.warehouse == "BER"
    assert routing.reason.endswith("no warehouse has stock for every line: the destination's BER")


def test_no_warehouse_with_every_line_and_no_split_ships_from_the_destinations_warehouse():
    available = stock(BER={SOCK: 3}, MAIN={SHOE: 1})
    routing = route(to("DE"), checked(), available)
    assert routing.warehouse == "BER" and not routing.split
    assert "no warehouse has stock for every line" in routing.reason
    bare = rules_from_setting({"warehouses": ["MAIN", "BER"], "stock_check": True})
    assert route(to("DE"), bare, available).warehouse is None  # no destination rule: the ERP's default


def test_split_ships_each_line_from_the_first_warehouse_with_stock_for_it():
    available = stock(BER={SOCK: 3}, MAIN={SHOE: 1})
    routing = route(to("DE"), checked(split=True), available)
    assert routing.split and routing.warehouse == "BER"  # the first line's
    assert routing.line_warehouse(ORDER.lines[0]) == "BER"
    assert routing.line_warehouse(ORDER.lines[1]) == "MAIN"
    assert routing.line_warehouse(ORDER.lines[2]) == "BER"  # no SKU: ships with the order
    assert routing.reason == f"destination DE, split: {SOCK} from BER, {SHOE} from MAIN"
    # A line added later (an order edit) ships with the order.
    assert routing.line_warehouse(dataclasses.replace(ORDER.lines[0], external_id="new")) == "BER"


def test_split_takes_what_earlier_lines_took_and_names_a_line_no_warehouse_has():
    available = stock(BER={SOCK: 4}, MAIN={SOCK: 3})
    twice = dataclasses.replace(
        to("DE"), lines=(ORDER.lines[0], dataclasses.replace(ORDER.lines[0], external_id="x"), ORDER.lines[1])
    )
    routing = route(twice, checked(split=True), available)
    assert [w for _, w in routing.lines] == ["BER", "MAIN", "BER"]  # 3 from BER leave 1 there; the shoe: none
    assert routing.reason.endswith(f"no stock anywhere for {SHOE}")


def test_lines_that_ship_nothing_are_not_checked():
    digital = dataclasses.replace(
        to("DE"), lines=tuple(dataclasses.replace(line, requires_shipping=False) for line in ORDER.lines)
    )
    routing = route(digital, checked(), {})
    assert routing.warehouse == "BER" and routing.reason == "destination DE, nothing to check stock for"


def test_the_same_order_and_stock_always_give_the_same_routing():
    available = stock(BER={SOCK: 3}, MAIN={SHOE: 1}, NYC={SOCK: 1})
    first = route(to("US", "MA"), checked(split=True), available)
    assert all(route(to("US", "MA"), checked(split=True), dict(reversed(available.items()))) == first for _ in range(5))


def test_the_setting_comes_back_as_written():
    setting = {**RULES, "stock_check": True, "split": True}
    assert rules_to_setting(rules_from_setting(setting)) == setting
    assert rules_from_setting({"by_destination": {"us-ca": " LAX "}, "warehouses": "MAIN, BER"}) == rules_from_setting(
        {"by_destination": {"US-CA": "LAX"}, "warehouses": ["MAIN", "BER"]}
    )


@pytest.mark.parametrize(
    "setting, message",
    [
        ("BER", "routing: a mapping of rules"),
        ({"by_country": {}}, "routing: unknown rule 'by_country'"),
        ({"by_destination": ["DE"]}, "routing.by_destination: a mapping"),
        ({"by_destination": {"Germany": "BER"}}, "routing.by_destination: 'Germany' is no destination"),
        ({"by_destination": {"DE": ""}}, "routing.by_destination.DE: a warehouse code"),
        ({"by_destination": {"DE": "B" * 65}}, "routing.by_destination.DE: a warehouse code of 1 to 64"),
        ({"by_destination": {"DE": "BER", "de": "MAIN"}}, "routing.by_destination: a destination is listed twice"),
        ({"warehouses": {"MAIN": 1}}, "routing.warehouses: a list"),
        ({"warehouses": ["MAIN", 7]}, "routing.warehouses: a warehouse code"),
        ({"stock_check": "yes"}, "routing.stock_check: true or false"),
        ({"split": True}, "routing.split: only with stock_check: true"),
    ],
)
def test_a_wrong_setting_is_refused_naming_the_rule(setting, message):
    with pytest.raises(RoutingError) as caught:
        rules_from_setting(setting)
    assert str(caught.value).startswith(message)
