"""Shopify refunds/create JSON -> canonical Refund (platforms.shopify.refunds.refund_from_shopify).

The fixtures refund lines of tests/fixtures/shopify/order_discount_multiline.json (order #1001,
USD). They live in a subfolder because test_shopify.py maps every *.json directly in
tests/fixtures/shopify/ as an order.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from mappings.canonical import Money, Refund
from mappings.canonical_json import refund_from_json, refund_to_json
from mappings.errors import MappingError
from platforms.shopify.mapping import order_from_shopify
from platforms.shopify.refunds import refund_from_shopify
from tests.mappings.fuzz import DELETE, paths, replaced, survives

SHOPIFY = Path(__file__).resolve().parent.parent / "fixtures" / "shopify"
FIXTURES = SHOPIFY / "refunds"
ALL_FIXTURES = sorted(p.name for p in FIXTURES.glob("refund_*.json"))
STORE = "northwind"
ORDER_ID = "5987654321012"
SOCK, SHOE = "14123456789001", "14123456789002"


def load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def usd(amount: str) -> Money:
    return Money(Decimal(amount), "USD")


def bag(amount: str, currency: str = "USD") -> dict:
    return {
        "shop_money": {"amount": amount, "currency_code": currency},
        "presentment_money": {"amount": amount, "currency_code": currency},
    }


def refund(payload: dict) -> Refund:
    return refund_from_shopify(payload, STORE, "USD")


def error_of(payload: Any) -> str:
    with pytest.raises(MappingError) as info:
        refund_from_shopify(payload, STORE, "USD")
    return str(info.value)


def set_transaction_total(payload: dict, amount: str) -> None:
    payload["transactions"][0]["amount"] = amount


def test_fixture_set_is_complete() -> None:
    assert ALL_FIXTURES == ["refund_amount_only.json", "refund_partial_line.json", "refund_with_shipping.json"]


# ---- every fixture --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL_FIXTURES)
def test_total_equals_the_successful_transactions_to_the_cent(name: str) -> None:
    payload = load(name)
    moved = sum(
        Decimal(t["amount"]) for t in payload["transactions"] if t["kind"] == "refund" and t["status"] == "success"
    )
    assert moved > 0
    assert refund(payload).total == usd(str(moved))


@pytest.mark.parametrize("name", ALL_FIXTURES)
def test_parts_add_up_to_the_total_and_are_positive(name: str) -> None:
    result = refund(load(name))
    parts = [
        *(line.subtotal for line in result.lines),
        *(line.tax for line in result.lines),
        result.shipping,
        result.adjustment,
    ]
    assert sum(parts, Money.zero("USD")) == result.total
    assert all(m.amount >= 0 for m in (*parts, result.total)) and result.total.amount > 0
    assert {m.currency for m in (*parts, result.total)} == {result.currency} == {"USD"}
    assert all(line.quantity > 0 for line in result.lines)


@pytest.mark.parametrize("name", ALL_FIXTURES)
def test_round_trips_through_canonical_json(name: str) -> None:
    result = refund(load(name))
    assert refund_from_json(json.loads(json.dumps(refund_to_json(result)))) == result


@pytest.mark.parametrize("name", ALL_FIXTURES)
def test_identity_and_time(name: str) -> None:
    payload = load(name)
    result = refund(payload)
    assert (result.source, result.store, result.order_external_id) == ("shopify", STORE, ORDER_ID)
    assert result.external_id == str(payload["id"])
    assert result.external_ref == f"shopify:{STORE}:{ORDER_ID}:refund:{payload['id']}"
    assert result.created_at.tzinfo == UTC
    assert result.created_at == datetime.fromisoformat(payload["processed_at"])
    assert result.reason == payload["note"]


@pytest.mark.parametrize("name", ALL_FIXTURES)
def test_refunds_lines_of_the_order_fixture(name: str) -> None:
    """Each refunded line exists in order #1001, with its sku, for no more than it cost net."""
    order = order_from_shopify(json.loads((SHOPIFY / "order_discount_multiline.json").read_text()), STORE)
    assert refund(load(name)).order_external_id == order.external_id
    lines = {line.external_id: line for line in order.lines}
    for refunded in refund(load(name)).lines:
        line = lines[refunded.line_external_id]
        assert refunded.sku == line.sku and refunded.quantity <= line.quantity
        assert refunded.subtotal.amount * line.quantity <= line.line_total.amount * refunded.quantity
        assert refunded.tax.amount <= line.tax_total.amount


# ---- each fixture -----------------------------------------------------------------------------------


# ---- fees, tips and duties given back (fee_refund_*.json refund order_tip and order_duties) ---------


def fee_refund(name: str, currency: str) -> Refund:
    return refund_from_shopify(json.loads((FIXTURES / name).read_text()), STORE, currency)


def test_a_refunded_tip_is_a_tip_given_back_not_goods() -> None:
    """One beanie back (24.50 + NY tax 24.50 × 8.875 % = 2.174375 → 2.17) and the 7.35 tip: 34.02."""
    result = fee_refund("fee_refund_tip.json", "USD")
    [beanie] = result.lines
    assert (beanie.sku, beanie.quantity, beanie.subtotal, beanie.tax, beanie.restock) == (
        "BEANIE-MER-CHR",
        1,
        usd("24.50"),
        usd("2.17"),
        True,
    )
    [tip] = result.fees
    assert (tip.kind, tip.amount, tip.tax, tip.source_line_id) == ("tip", usd("7.35"), usd("0"), "15334455667790")
    assert result.fees_of("tip") == result.fee_total == usd("7.35")
    assert result.total == usd("34.02") and result.adjustment == usd("0")
    assert refund_from_json(json.loads(json.dumps(refund_to_json(result)))) == result


def test_refunded_duties_are_their_own_part_in_shop_money() -> None:
    """The scarf back with its duty, in GBP: 60.00 + GST 3.00 + duty 10.80 = 73.80 (129.15 CAD to the buyer)."""
    result = fee_refund("fee_refund_duties.json", "GBP")
    [duty] = result.fees
    gbp = lambda amount: Money(Decimal(amount), "GBP")  # noqa: E731
    assert (duty.kind, duty.amount, duty.title) == ("duty", gbp("10.80"), "Duty refunded (duty 9001)")
    assert result.fees_of("duty") == gbp("10.80") and result.total == gbp("73.80")
    assert [(line.sku, line.subtotal, line.tax) for line in result.lines] == [
        ("SCARF-LMB-GRY", gbp("60.00"), gbp("3.00"))
    ]


def test_refunded_duties_must_add_up_to_their_total() -> None:
    payload = json.loads((FIXTURES / "fee_refund_duties.json").read_text())
    payload["total_duties_set"] = bag("12.00", "GBP")
    with pytest.raises(
        MappingError, match="duties\\[\\] add up to 10.80 GBP, but total_duties_set.shop_money is 12.00"
    ):
        refund_from_shopify(payload, STORE, "GBP")


def test_a_duty_total_alone_is_one_refunded_duty() -> None:
    payload = json.loads((FIXTURES / "fee_refund_duties.json").read_text())
    payload["duties"] = []
    [duty] = refund_from_shopify(payload, STORE, "GBP").fees
    assert (duty.kind, duty.amount.amount) == ("duty", Decimal("10.80"))


def test_refunded_additional_fees_come_from_their_total() -> None:
    payload = load("refund_partial_line.json")
    payload["total_additional_fees_set"] = bag("0.28")
    set_transaction_total(payload, "12.23")
    result = refund(payload)
    assert [(f.kind, f.amount) for f in result.fees] == [("additional_fee", usd("0.28"))]
    assert result.total == usd("12.23")


def test_a_tip_given_back_that_the_transactions_do_not_cover_is_refused_naming_it() -> None:
    payload = json.loads((FIXTURES / "fee_refund_tip.json").read_text())
    payload["transactions"][0]["amount"] = "26.67"
    with pytest.raises(
        MappingError,
        match="lines 24.50 \\+ tax 2.17 \\+ shipping 0 \\+ tips 7.35 "
        "\\+ adjustment 0 = 34.02 USD, but its successful refund transactions "
        "add up to 26.67",
    ):
        refund_from_shopify(payload, STORE, "USD")


def test_partial_line_returns_one_sock_to_stock() -> None:
    result = refund(load("refund_partial_line.json"))
    [line] = result.lines
    assert (line.line_external_id, line.sku, line.quantity, line.restock) == (SOCK, "SOCK-MER-M-CHA", 1, True)
    assert (line.subtotal, line.tax) == (usd("11.25"), usd("0.70"))  # 12.50 less its 1.25 discount share
    assert (result.shipping, result.adjustment, result.total) == (usd("0"), usd("0"), usd("11.95"))
    assert result.created_at == datetime(2026, 11, 27, 14, 41, 5, tzinfo=UTC)


def test_with_shipping_counts_shipping_once_with_its_tax() -> None:
    result = refund(load("refund_with_shipping.json"))
    [line] = result.lines
    assert (line.line_external_id, line.sku, line.restock) == (SHOE, "SHOE-TR2-42-SLT", False)
    assert (line.subtotal, line.tax) == (usd("116.10"), usd("7.26"))
    assert result.shipping == usd("10.57")  # 9.95 + 0.62 tax, not again from refund_shipping_lines
    assert (result.adjustment, result.total) == (usd("0"), usd("133.93"))


def test_amount_only_refund_is_a_positive_adjustment() -> None:
    result = refund(load("refund_amount_only.json"))
    assert result.lines == ()
    assert (result.shipping, result.adjustment, result.total) == (usd("0"), usd("15.00"), usd("15.00"))
    assert result.reason == "Goodwill credit for the late delivery"


# ---- semantics ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("restock_type", "restock"), [("return", True), ("cancel", True), ("legacy_restock", True), ("no_restock", False)]
)
def test_restock_type(restock_type: str, restock: bool) -> None:
    payload = load("refund_partial_line.json")
    payload["refund_line_items"][0]["restock_type"] = restock_type
    assert refund(payload).lines[0].restock is restock


def test_unknown_restock_type() -> None:
    payload = load("refund_partial_line.json")
    payload["refund_line_items"][0]["restock_type"] = "restocked"
    assert "refund_line_items[0].restock_type: Must be one of" in error_of(payload)


def test_blank_sku_and_missing_line_item_become_none() -> None:
    payload = load("refund_partial_line.json")
    payload["refund_line_items"][0]["line_item"]["sku"] = "  "
    assert refund(payload).lines[0].sku is None
    del payload["refund_line_items"][0]["line_item"]
    assert refund(payload).lines[0].sku is None


def test_created_at_when_there_is_no_processed_at_and_empty_note() -> None:
    payload = load("refund_partial_line.json")
    payload["processed_at"], payload["note"] = None, None
    payload["created_at"] = "2026-11-27T10:00:00+01:00"
    result = refund(payload)
    assert result.created_at == datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
    assert result.reason == ""


def test_processed_at_wins_over_created_at() -> None:
    payload = load("refund_partial_line.json")
    payload["processed_at"] = "2026-11-01T00:00:00Z"
    assert refund(payload).created_at == datetime(2026, 11, 1, tzinfo=UTC)


def test_shipping_from_adjustments_alone() -> None:
    payload = load("refund_with_shipping.json")
    payload["refund_shipping_lines"] = []
    assert refund(payload).shipping == usd("10.57")


def test_shipping_from_refund_shipping_lines_alone_api_2024_10() -> None:
    """From 2024-10 shipping is no longer an order adjustment, and adjustments carry no kind."""
    payload = load("refund_with_shipping.json")
    payload["order_adjustments"] = []
    payload["refund_shipping_lines"][0]["tax_amount_set"] = bag("0.62")
    assert refund(payload).shipping == usd("10.57")


def test_shipping_lines_without_tax_cannot_explain_the_transaction() -> None:
    payload = load("refund_with_shipping.json")
    payload["order_adjustments"] = []
    message = error_of(payload)
    assert "shipping 9.95 + adjustment 0 = 133.31 USD" in message
    assert "successful refund transactions add up to 133.93 USD" in message


def test_shipping_described_twice_and_differently() -> None:
    payload = load("refund_with_shipping.json")
    payload["refund_shipping_lines"][0]["subtotal_amount_set"] = bag("5.00")
    message = error_of(payload)
    assert "refund_shipping_lines subtotals add up to 5.00 USD, shipping_refund adjustments to 9.95 USD" in message


def test_positive_shipping_refund_adjustment() -> None:
    payload = load("refund_with_shipping.json")
    adjustment = payload["order_adjustments"][0]
    adjustment["amount"], adjustment["amount_set"] = "9.95", bag("9.95")
    assert "order_adjustments[0].amount is 9.95, but a shipping_refund adjustment is negative" in error_of(payload)


def test_discrepancy_without_kind_api_2024_10() -> None:
    payload = load("refund_amount_only.json")
    del payload["order_adjustments"][0]["kind"]
    assert refund(payload).adjustment == usd("15.00")


def test_unknown_adjustment_kind() -> None:
    payload = load("refund_amount_only.json")
    payload["order_adjustments"][0]["kind"] = "duty_refund"
    assert "order_adjustments[0].kind: Must be one of" in error_of(payload)


def test_refunding_less_than_calculated_is_a_negative_adjustment() -> None:
    payload = load("refund_partial_line.json")
    payload["order_adjustments"] = [
        {
            "id": 1,
            "amount": "1.95",
            "tax_amount": "0.00",
            "kind": "refund_discrepancy",
            "amount_set": bag("1.95"),
            "tax_amount_set": bag("0.00"),
        }
    ]
    set_transaction_total(payload, "10.00")
    result = refund(payload)
    assert (result.adjustment, result.total) == (usd("-1.95"), usd("10.00"))


def test_restock_only_refund_moves_no_money() -> None:
    payload = load("refund_partial_line.json")
    line = payload["refund_line_items"][0]
    line["subtotal"], line["total_tax"] = 0.0, 0.0
    line["subtotal_set"], line["total_tax_set"] = bag("0.00"), bag("0.00")
    payload["transactions"] = []
    result = refund(payload)
    assert result.total == usd("0") and result.lines[0].restock and result.lines[0].quantity == 1


def test_plain_amounts_are_used_without_their_set_twins() -> None:
    payload = load("refund_partial_line.json")
    line = payload["refund_line_items"][0]
    del line["subtotal_set"], line["total_tax_set"]
    assert (refund(payload).lines[0].subtotal, refund(payload).total) == (usd("11.25"), usd("11.95"))


@pytest.mark.parametrize("status", ["pending", "failure", "error", None])
def test_only_successful_transactions_count(status: str | None) -> None:
    payload = load("refund_partial_line.json")
    payload["transactions"].append({**payload["transactions"][0], "id": 1, "status": status, "amount": "99.99"})
    assert refund(payload).total == usd("11.95")


def test_transactions_may_split_the_refund() -> None:
    payload = load("refund_partial_line.json")
    payload["transactions"].append({**payload["transactions"][0], "id": 1, "amount": "1.95"})
    set_transaction_total(payload, "10.00")
    assert refund(payload).total == usd("11.95")


def test_pending_refund_is_not_cross_checked() -> None:
    payload = load("refund_partial_line.json")
    payload["transactions"][0]["status"] = "pending"
    set_transaction_total(payload, "1.00")
    assert refund(payload).total == usd("11.95")


def test_presentment_currency_transactions_are_not_compared() -> None:
    payload = load("refund_partial_line.json")
    payload["transactions"][0]["currency"] = "EUR"
    set_transaction_total(payload, "10.98")
    assert refund(payload).total == usd("11.95")


# ---- malformed payloads -----------------------------------------------------------------------------


def test_missing_id() -> None:
    payload = load("refund_partial_line.json")
    del payload["id"]
    message = error_of(payload)
    assert message.startswith("Shopify refund (unidentified) of order id 5987654321012: ")
    assert "id: Missing data for required field." in message


def test_subtotal_that_is_not_a_number() -> None:
    payload = load("refund_partial_line.json")
    payload["refund_line_items"][0]["subtotal"] = "abc"
    message = error_of(payload)
    assert message.startswith("Shopify refund id 9101234567001 of order id 5987654321012: ")
    assert "refund_line_items[0].subtotal: Not a valid number." in message


def test_shop_money_subtotal_that_is_not_a_number() -> None:
    payload = load("refund_partial_line.json")
    payload["refund_line_items"][0]["subtotal_set"]["shop_money"]["amount"] = "abc"
    assert "refund_line_items[0].subtotal_set.shop_money.amount: Not a valid number." in error_of(payload)


def test_transaction_total_that_disagrees() -> None:
    payload = load("refund_partial_line.json")
    set_transaction_total(payload, "12.00")
    message = error_of(payload)
    assert "refund does not reconcile: lines 11.25 + tax 0.70 + shipping 0 + adjustment 0 = 11.95 USD" in message
    assert "successful refund transactions add up to 12.00 USD" in message


@pytest.mark.parametrize("key", ["created_at", "processed_at"])
def test_timestamp_without_offset(key: str) -> None:
    payload = load("refund_partial_line.json")
    payload[key] = "2026-11-27T09:41:05"
    assert f"{key}: Timestamp has no UTC offset" in error_of(payload)


@pytest.mark.parametrize("payload", [[], [{"id": 1}], "refund", None, 42])
def test_payload_that_is_not_an_object(payload: Any) -> None:
    assert "expected a JSON object (a Shopify refund)" in error_of(payload)


def test_list_where_an_object_belongs() -> None:
    payload = load("refund_with_shipping.json")
    payload["refund_line_items"][0] = [payload["refund_line_items"][0]]
    payload["order_adjustments"] = payload["order_adjustments"][0]
    message = error_of(payload)
    assert "refund_line_items[0]: Invalid input type." in message
    assert "order_adjustments: Not a valid list." in message


def test_plain_amount_disagreeing_with_its_shop_money_twin() -> None:
    payload = load("refund_partial_line.json")
    payload["refund_line_items"][0]["total_tax"] = 0.71
    assert "refund_line_items[0].total_tax is 0.71 but total_tax_set.shop_money.amount is 0.70" in error_of(payload)


def test_shop_money_in_another_currency() -> None:
    assert "subtotal_set.shop_money.currency_code is USD, but the shop currency is EUR" in str(
        pytest.raises(MappingError, refund_from_shopify, load("refund_partial_line.json"), STORE, "EUR").value
    )


def test_line_item_that_is_not_the_refunded_line() -> None:
    payload = load("refund_partial_line.json")
    payload["refund_line_items"][0]["line_item"]["id"] = int(SHOE)
    assert f"line_item.id is {SHOE}, but line_item_id is {SOCK}" in error_of(payload)


def test_negative_quantity() -> None:
    payload = load("refund_partial_line.json")
    payload["refund_line_items"][0]["quantity"] = -1
    assert "refund_line_items[0].quantity: Must be greater than or equal to 0" in error_of(payload)


def test_negative_total() -> None:
    payload = load("refund_partial_line.json")
    payload["order_adjustments"] = [{"amount": "20.00", "amount_set": bag("20.00"), "kind": "refund_discrepancy"}]
    assert "refund total is negative: lines 11.25 + tax 0.70" in error_of(payload)


def test_empty_object_names_the_missing_fields() -> None:
    message = error_of({})
    assert "(unidentified)" in message
    for key in ("id", "order_id", "created_at"):
        assert f"{key}: Missing data for required field." in message


@pytest.mark.parametrize("currency", ["usd", "", None, "EURO"])
def test_shop_currency_argument_is_a_caller_bug(currency: Any) -> None:
    with pytest.raises(ValueError, match="shop currency"):
        refund_from_shopify(load("refund_partial_line.json"), STORE, currency)


# ---- fuzz: any malformed value becomes a MappingError, never another exception ------------------------


def _survives(payload: dict) -> str | None:
    return survives(lambda: refund(payload), Refund)


@pytest.mark.parametrize("name", ALL_FIXTURES)
def test_fuzz_every_value(name: str) -> None:
    payload = load(name)
    hostile = [None, "x", [], {}, "", True, -1, 10**30, float("nan"), "1e400", "-0.01", DELETE]
    failures = [
        f"{path} <- {value!r}: {problem}"
        for path in paths(payload)
        for value in hostile
        if (problem := _survives(replaced(payload, path, value)))
    ]
    assert not failures, "\n".join(failures[:20])
