"""Who gets the credit for a web order (pure): the web channel, the owner of the buyer's ERP account, or both.

A web order whose customer is an existing ERP account with an owner (a sales rep, an agent, a region)
carries the channel `web` and that owner into the ERP; the store's rule decides the credit:

    attribution: split        # owner | web | split; no setting: web
    split_owner_share: 0.5    # split only: the owner's share, more than 0 and less than 1

`owner` gives the owner the whole credit, `web` keeps it with the web channel (the owner is still
named), `split` gives the owner `split_owner_share` of it and the web channel the rest. An order whose
account has no owner (every customer the connector created for a web order) is the web channel's.
The owner's credit is the order total times the share, rounded half up to the currency's minor unit;
the web channel's is the rest, so the two always add up to the total.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from mappings.canonical import Money
from mappings.currencies import one_unit

CHANNEL = "web"
RULES = ("owner", "web", "split")
DEFAULT_RULE = "web"  # no rule set: nobody is credited who was not before
DEFAULT_SPLIT = Decimal("0.5")
OWNER_MAX = 255  # characters of an owner's name or code kept


class AttributionError(ValueError):
    """A store's attribution setting cannot be read: the message says what it takes."""


@dataclass(frozen=True)
class Attribution:
    owner: str | None  # the account's owner, None when it has none
    rule: str  # the store's rule when the order was first attributed: owner | web | split
    owner_share: Decimal  # the owner's part of the credit, 0 to 1; the web channel has the rest
    channel: str = CHANNEL

    def owner_credit(self, total: Money) -> Money:
        """The owner's part of this total; the web channel's is total - this."""
        if not self.owner_share:
            return Money.zero(total.currency)
        exact = total.amount * self.owner_share
        return Money(exact.quantize(one_unit(total.currency), rounding=ROUND_HALF_UP), total.currency)

    def describe(self, total: Money | None = None) -> str:
        """For the console and the ERP's people: "attributed to owner REP-ANNA, credit 50/50 split with web"."""
        if self.owner is None:
            return f"channel {self.channel}: the account has no owner, the {self.channel} channel has the credit"
        owner = f"owner {self.owner}"
        if self.owner_share == 1:
            credit = "full credit to the owner"
        elif not self.owner_share:
            credit = f"credit to the {self.channel} channel (rule {self.rule})"
        else:
            percent = _percent(self.owner_share)
            credit = f"credit {percent}/{_percent(1 - self.owner_share)} split with {self.channel}"
        amount = f" ({self.owner_credit(total)} to the owner)" if total is not None and self.owner_share else ""
        return f"attributed to {owner} (channel {self.channel}), {credit}{amount}"


def attribute(owner: str | None, rule: str, split_share: Decimal = DEFAULT_SPLIT) -> Attribution:
    """The attribution of an order whose ERP account has this owner, under the store's rule."""
    owner = (owner or "").strip()[:OWNER_MAX] or None
    if owner is None:
        return Attribution(None, rule, Decimal(0))
    share = {"owner": Decimal(1), "web": Decimal(0)}.get(rule, split_share)
    return Attribution(owner, rule, share)


def rule_of(settings: dict[str, Any]) -> tuple[str, Decimal]:
    """The store's rule and split share (its settings were validated when they were saved)."""
    rule = settings.get("attribution") or DEFAULT_RULE
    if rule not in RULES:
        raise AttributionError(f"attribution: one of {', '.join(RULES)}, not {rule!r}")
    share = settings.get("split_owner_share")
    return rule, (parse_share(share) if share not in (None, "") else DEFAULT_SPLIT)


def parse_share(value: Any) -> Decimal:
    """A split share as written in YAML or a form ("0.5", 0.5, "0.333"): more than 0 and less than 1."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float, Decimal)):
        raise AttributionError("a share such as 0.5 (the owner's half)")
    try:
        share = Decimal(str(value).strip())
    except InvalidOperation:
        raise AttributionError(f"a share such as 0.5 (the owner's half), not {value!r}") from None
    if not share.is_finite() or not 0 < share < 1:
        raise AttributionError("more than 0 and less than 1 (0.5 = half to the owner, half to web)")
    if share != share.quantize(Decimal("0.0001")):
        raise AttributionError("at most 4 decimals, such as 0.3333")
    return share


def share_text(share: Decimal) -> str:
    """A share as the setting keeps it: plain decimal text, no trailing zeros ("0.5", "0.3333")."""
    return format(share.normalize(), "f")


def _percent(share: Decimal) -> str:
    return share_text(share * 100)
