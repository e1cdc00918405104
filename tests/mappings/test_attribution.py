"""The credit rule (mappings.attribution): who has the credit, and how much, to the currency's minor unit."""

from __future__ import annotations

from decimal import Decimal

import pytest

from mappings.attribution import AttributionError, attribute, parse_share, rule_of, share_text
from mappings.canonical import Money


@pytest.mark.parametrize(
    "rule, share, total, owner_credit",
    [
        ("owner", "0.5", Money(Decimal("205.65"), "USD"), Money(Decimal("205.65"), "USD")),
        ("web", "0.5", Money(Decimal("205.65"), "USD"), Money(Decimal("0"), "USD")),
        ("split", "0.5", Money(Decimal("205.65"), "USD"), Money(Decimal("102.83"), "USD")),  # 102.825, half up
        ("split", "0.3333", Money(Decimal("1001"), "JPY"), Money(Decimal("334"), "JPY")),  # 333.6333 -> 334 yen
        ("split", "0.25", Money(Decimal("10.005"), "KWD"), Money(Decimal("2.501"), "KWD")),
    ],
)
def test_the_rule_decides_the_owners_credit_and_the_web_channel_has_the_rest(rule, share, total, owner_credit):
    credit = attribute("REP-ANNA", rule, Decimal(share))
    assert credit.owner_credit(total) == owner_credit
    assert owner_credit + (total - owner_credit) == total  # the web channel's part: never a cent lost


def test_an_account_without_owner_leaves_the_credit_with_the_web_channel_whatever_the_rule():
    for owner in (None, "", "   "):
        credit = attribute(owner, "owner")
        assert (credit.owner, credit.owner_share, credit.channel) == (None, Decimal(0), "web")
        assert credit.owner_credit(Money(Decimal("99.99"), "EUR")) == Money(Decimal(0), "EUR")


def test_what_the_console_says_names_the_owner_and_the_split():
    total = Money(Decimal("205.65"), "USD")
    assert attribute("REP-ANNA", "split", Decimal("0.5")).describe(total) == (
        "attributed to owner REP-ANNA (channel web), credit 50/50 split with web (102.83 USD to the owner)"
    )
    assert "full credit to the owner" in attribute("REP-ANNA", "owner").describe()
    assert "credit to the web channel (rule web)" in attribute("REP-ANNA", "web").describe(total)
    assert "the account has no owner" in attribute(None, "split").describe(total)


@pytest.mark.parametrize("value, share", [("0.5", "0.5"), (0.25, "0.25"), ("0.3330", "0.333"), (" 0.1 ", "0.1")])
def test_a_split_share_is_read_as_decimal_text(value, share):
    assert share_text(parse_share(value)) == share


@pytest.mark.parametrize("value", ["0", "1", "-0.5", "1.5", "NaN", "half", "", True, None, [0.5], "0.12345"])
def test_a_share_outside_0_and_1_or_finer_than_4_decimals_is_refused(value):
    with pytest.raises(AttributionError):
        parse_share(value)


def test_no_rule_set_is_the_web_channels_and_a_split_without_share_is_half():
    assert rule_of({}) == ("web", Decimal("0.5"))
    assert rule_of({"attribution": "split", "split_owner_share": "0.4"}) == ("split", Decimal("0.4"))
    with pytest.raises(AttributionError):
        rule_of({"attribution": "rep"})
