"""The approval rules, read and applied (pure)."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest

from mappings.approval import RulesError, reasons, risk_level, rules_from_setting, rules_to_setting
from mappings.canonical import Address, Money
from platforms.shopify.mapping import order_from_shopify
from tests.conftest import load_fixture

ORDER = order_from_shopify(load_fixture("shopify", "order_discount_multiline.json"), "acme-us")


def cod(order, total: str):  # type: ignore[no-untyped-def]
    return dataclasses.replace(
        order,
        payment=dataclasses.replace(order.payment, method="cod"),
        totals=dataclasses.replace(order.totals, total=Money(Decimal(total), order.currency)),
    )


def test_no_rule_holds_nothing():
    rules = rules_from_setting(None)
    assert not rules.any and reasons(ORDER, rules, known_customer=False, risk="high") == []


@pytest.mark.parametrize("total, held", [("500.00", False), ("500.01", True)])
def test_cash_on_delivery_above_the_limit(total, held):
    rules = rules_from_setting({"cod_above": 500})
    assert bool(reasons(cod(ORDER, total), rules, known_customer=None, risk=None)) is held
    card = dataclasses.replace(cod(ORDER, "900"), payment=ORDER.payment)
    assert reasons(card, rules, known_customer=None, risk=None) == []


def test_countries_differ_and_tags_and_new_customers():
    rules = rules_from_setting({"countries_differ": True, "tags": "B2B, Wholesale", "first_order": True})
    abroad = dataclasses.replace(ORDER, shipping_address=Address(country_code="ca"))
    assert reasons(abroad, rules, known_customer=False, risk=None) == [
        "first order from a new customer (Dana.Whitfield@Example.com)",
        "billing country US differs from shipping country CA",
        "tagged wholesale",
    ]
    assert reasons(dataclasses.replace(ORDER, tags=()), rules, known_customer=True, risk=None) == []


@pytest.mark.parametrize(
    "summary, level",
    [
        (None, None),
        ({"recommendation": "NONE", "assessments": []}, None),
        ({"recommendation": "ACCEPT", "assessments": [{"riskLevel": "LOW"}]}, "low"),
        ({"recommendation": "INVESTIGATE", "assessments": [{"riskLevel": "LOW"}]}, "medium"),
        ({"recommendation": "CANCEL", "assessments": []}, "high"),
        ({"recommendation": "NONE", "assessments": [{"riskLevel": "HIGH"}, {"riskLevel": "PENDING"}]}, "pending"),
    ],
)
def test_the_most_severe_risk_counts(summary, level):
    assert risk_level(summary) == level


def test_risk_at_or_above_the_level():
    rules = rules_from_setting({"risk": "Medium"})
    assert reasons(ORDER, rules, known_customer=None, risk="low") == []
    assert reasons(ORDER, rules, known_customer=None, risk="high") == ["the store rates its fraud risk high"]


@pytest.mark.parametrize(
    "setting, message",
    [
        ("yes", "a mapping of rules"),
        ({"cod_above": "lots"}, "an amount such as 500"),
        ({"cod_above": -1}, "0 or more"),
        ({"cod_above": "NaN"}, "0 or more"),
        ({"cod_above": "1e999999"}, "at most 99999999999999.9999"),
        ({"first_order": "yes"}, "true or false"),
        ({"tags": [1]}, "a list of order tags"),
        ({"risk": "extreme"}, "one of low, medium, high"),
        ({"riks": "high"}, "unknown rule 'riks'"),
    ],
)
def test_a_wrong_setting_is_refused_with_what_it_takes(setting, message):
    with pytest.raises(RulesError, match=message):
        rules_from_setting(setting)


def test_the_setting_reads_back_as_written():
    rules = rules_from_setting({"cod_above": "499.90", "tags": ["Wholesale", "wholesale "], "risk": "HIGH"})
    assert rules_to_setting(rules) == {"cod_above": "499.90", "tags": ["wholesale"], "risk": "high"}
    assert rules_from_setting(rules_to_setting(rules)) == rules
