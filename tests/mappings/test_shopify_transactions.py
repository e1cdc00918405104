"""Shopify order transactions -> canonical Transactions, and which of them brought money in."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from mappings.canonical import Money
from mappings.canonical_json import order_from_json, order_to_json
from mappings.errors import MappingError
from platforms.shopify.mapping import order_from_shopify
from platforms.shopify.transactions import transactions_from_shopify
from tests.conftest import load_fixture


def tx(id: int, kind: str, gateway: str, amount: str, status: str = "success", **extra) -> dict:  # type: ignore[no-untyped-def]
    """A transaction as GET orders/{id}/transactions.json lists it (shopify.dev, Transaction resource)."""
    return {
        "id": id,
        "order_id": 5987654321012,
        "kind": kind,
        "gateway": gateway,
        "status": status,
        "message": None,
        "created_at": "2026-11-20T10:15:58-05:00",
        "test": False,
        "authorization": extra.pop("authorization", None),
        "location_id": None,
        "user_id": None,
        "parent_id": extra.pop("parent_id", None),
        "processed_at": "2026-11-20T10:15:58-05:00",
        "device_id": None,
        "error_code": None,
        "source_name": "web",
        "receipt": {},
        "currency_exchange_adjustment": None,
        "amount": amount,
        "currency": extra.pop("currency", "USD"),
        "payment_id": "#1001.1",
        "manual_payment_gateway": False,
        "amount_rounding": None,
        "admin_graphql_api_id": f"gid://shopify/OrderTransaction/{id}",
        **extra,
    }


SPLIT = {
    "transactions": [
        tx(1068278501, "sale", "gift_card", "50.00"),
        tx(1068278502, "sale", "shopify_payments", "155.65", status="failure", error_code="card_declined"),
        tx(1068278503, "authorization", "shopify_payments", "155.65", authorization="ch_3QhAuth"),
        tx(1068278504, "capture", "shopify_payments", "155.65", authorization="ch_3QhAuth", parent_id=1068278503),
    ]
}


def test_a_gift_card_and_a_card_capture_are_the_money_received():
    order = order_from_shopify(load_fixture("shopify", "order_discount_multiline.json"), "acme-us")
    paid = dataclasses.replace(order, transactions=transactions_from_shopify(SPLIT, "USD", "#1001"))
    received = paid.received
    assert [(t.external_id, t.kind, t.gateway, t.method, t.amount, t.reference) for t in received] == [
        ("1068278501", "sale", "gift_card", "gift_card", Money(Decimal("50.00"), "USD"), None),
        ("1068278504", "capture", "shopify_payments", "card", Money(Decimal("155.65"), "USD"), "ch_3QhAuth"),
    ]
    # 50.00 + 155.65 = 205.65, the order's total_price.
    assert sum(t.amount.amount for t in received) == Decimal("205.65") == order.totals.total.amount
    assert received[0].processed_at == datetime(2026, 11, 20, 15, 15, 58, tzinfo=UTC)


def test_a_voided_capture_brings_nothing_in():
    body = {
        "transactions": [tx(1, "capture", "bogus", "10.00", parent_id=9), tx(2, "void", "bogus", "0.00", parent_id=1)]
    }
    order = order_from_shopify(load_fixture("shopify", "order_discount_multiline.json"), "acme-us")
    assert dataclasses.replace(order, transactions=transactions_from_shopify(body, "USD", "#1001")).received == ()


def test_a_transaction_not_in_the_shop_currency_is_refused_with_the_order_named():
    body = {"transactions": [tx(7, "sale", "shopify_payments", "78.79", currency="EUR")]}
    with pytest.raises(MappingError, match=r"transaction 7 of order #1187 .* is in EUR, not the shop currency USD"):
        transactions_from_shopify(body, "USD", "#1187")


def test_a_malformed_answer_names_the_field():
    body = {"transactions": [tx(7, "sale", "shopify_payments", "ten")]}
    with pytest.raises(MappingError, match=r"#1001: transactions\[0\]\.amount"):
        transactions_from_shopify(body, "USD", "#1001")


def test_transactions_round_trip_and_older_inbox_json_still_loads():
    order = order_from_shopify(load_fixture("shopify", "order_discount_multiline.json"), "acme-us")
    paid = dataclasses.replace(order, transactions=transactions_from_shopify(SPLIT, "USD", "#1001"))
    assert order_from_json(order_to_json(paid)) == paid
    older = order_to_json(order)
    del older["transactions"]  # JSON stored before orders had transactions
    assert order_from_json(older) == order


def test_a_transaction_holding_a_nul_is_refused_naming_where() -> None:
    # The Admin API's answer is not a checked webhook body: a NUL would otherwise reach the ERP's text columns.
    body = {"transactions": [tx(1068278501, "sale", "gift_card", "50.00", authorization="gc\x00-4417")]}
    with pytest.raises(MappingError) as info:
        transactions_from_shopify(body, "USD", "#1001")
    assert "Shopify transactions of order #1001: transactions[0].authorization holds a NUL character" in str(info.value)
