"""Shopify returns/* bodies -> what the console shows (platforms.shopify.returns), and the topic check
that keeps other bodies out (platforms.topics)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mappings.errors import MappingError
from platforms import topics
from platforms.shopify.returns import ReturnNotice, return_from_shopify
from tests.mappings.fuzz import HOSTILE, paths, replaced, survives

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "shopify"
SKUS = {"14123456789001": "SOCK-MER-M-CHA", "14123456789002": "SHOE-TR2-42-SLT"}


def load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def test_a_requested_return_names_each_line_its_quantity_and_the_buyers_reason():
    notice = return_from_shopify(load("returns/request.json"))
    assert (notice.return_id, notice.name, notice.order_id, notice.status) == (
        "3547267221",
        "#1001-R1",
        "5987654321012",
        "requested",
    )
    assert [(line.line_item_id, line.quantity, line.reason, line.note) for line in notice.lines] == [
        ("14123456789001", 2, "size_too_small", "Runs a size small"),
        ("14123456789002", 1, "defective", "Sole came loose"),
    ]
    assert notice.describe(SKUS) == (
        "#1001-R1 requested: 2 × SOCK-MER-M-CHA (size too small, 'Runs a size small'), "
        "1 × SHOE-TR2-42-SLT (defective, 'Sole came loose')"
    )
    # Without the order's lines (the order never reached the connector) the line ids stand in.
    assert notice.describe().startswith("#1001-R1 requested: 2 × line 14123456789001 (size too small")


def test_close_names_its_order_by_order_id_and_decline_says_why():
    closed = return_from_shopify(load("returns/close.json"))
    assert (closed.order_id, closed.status, closed.lines) == ("5987654321012", "closed", ())
    assert closed.describe(SKUS) == "return 3547267221 closed"
    declined = return_from_shopify(load("returns/decline.json"))
    assert declined.describe() == (
        "return 3547267221 declined; declined: return period ended, Bought 95 days ago; our window is 30 days"
    )


def test_lines_the_body_counts_but_does_not_list_and_exchanges_are_said():
    body = load("returns/approve.json")
    body.update(
        total_return_line_items=5,
        total_exchange_line_items=1,
        exchange_line_items=[{"id": 1, "admin_graphql_api_id": "gid://shopify/ExchangeLineItem/1"}],
    )
    body["return_line_items"][1]["fulfillment_line_item"] = None  # a line we cannot name
    notice = return_from_shopify(body)
    assert notice.status == "open" and len(notice.lines) == 1 and notice.more_lines == 4
    assert notice.describe(SKUS) == (
        "#1001-R1 open: 2 × SOCK-MER-M-CHA (size too small, 'Runs a size small'), "
        "4 more line(s); 1 exchange line(s) sent in their place"
    )


@pytest.mark.parametrize(
    "topic,name",
    [
        ("returns/request", "request"),
        ("returns/approve", "approve"),
        ("returns/decline", "decline"),
        ("returns/close", "close"),
        ("returns/cancel", "close"),
        ("returns/reopen", "close"),
    ],
)
def test_each_returns_topic_takes_its_documented_body(topic, name):
    topics.check("shopify", topic, load(f"returns/{name}.json"))


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(load("order_discount_multiline.json"), id="an order"),
        pytest.param(load("refunds/fee_refund_tip.json"), id="a refund"),
        pytest.param({**load("returns/request.json"), "status": "shipped"}, id="an unknown status"),
        pytest.param({k: v for k, v in load("returns/request.json").items() if k != "order"}, id="no order"),
        pytest.param({**load("returns/close.json"), "order_id": "5987654321012"}, id="order id as text"),
    ],
)
def test_other_bodies_under_a_returns_topic_are_refused(body):
    with pytest.raises(MappingError, match="not a shopify returns/approve payload"):
        topics.check("shopify", "returns/approve", body)


def test_hostile_values_in_a_return_are_refused_or_read_never_crash():
    payload = load("returns/request.json")

    def read(body: dict) -> ReturnNotice:
        topics.check("shopify", "returns/request", body)
        return return_from_shopify(body)

    problems = [
        f"{path} = {value!r}: {problem}"
        for path in paths(payload)
        for value in HOSTILE
        if (problem := survives(lambda path=path, value=value: read(replaced(payload, path, value)), ReturnNotice))
    ]
    assert problems == []
