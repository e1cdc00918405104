"""Which orders wait for a person before the ERP (pure): the merchant's approval rules.

A store's setting `approval` holds the rules; an order any rule catches is held "awaiting approval"
with every reason that caught it, so the approver sees why at a glance:

    approval:
      cod_above: 500          # cash on delivery above this order total (shop currency)
      first_order: true       # a customer the ERP does not know yet
      countries_differ: true  # billing and shipping countries differ
      tags: [wholesale]       # any of these order tags (case does not matter)
      risk: high              # the store's fraud risk at or above: low | medium | high

No setting, or an empty one, holds nothing: today's behaviour.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from mappings.canonical import Order

RISK_LEVELS = ("none", "low", "medium", "high")  # Shopify's RiskAssessmentResult, least to most severe
MAX_AMOUNT = Decimal("99999999999999.9999")  # the largest amount NUMERIC(18, 4) holds
RULE_NAMES = ("cod_above", "first_order", "countries_differ", "tags", "risk")


class RulesError(ValueError):
    """The approval setting cannot be read: the message names the rule and what it takes."""


@dataclass(frozen=True)
class ApprovalRules:
    cod_above: Decimal | None = None
    first_order: bool = False
    countries_differ: bool = False
    tags: tuple[str, ...] = ()
    risk: str | None = None  # hold at or above this level

    @property
    def any(self) -> bool:
        return bool(self.cod_above is not None or self.first_order or self.countries_differ or self.tags or self.risk)

    @property
    def needs_customer_lookup(self) -> bool:
        return self.first_order

    @property
    def needs_risk(self) -> bool:
        return self.risk is not None


def rules_from_setting(value: Any) -> ApprovalRules:
    """The rules a store's `approval` setting holds; RulesError naming the first one that is wrong."""
    if value in (None, "", {}):
        return ApprovalRules()
    if not isinstance(value, dict):
        raise RulesError("approval: a mapping of rules (cod_above, first_order, countries_differ, tags, risk)")
    unknown = sorted(set(value) - set(RULE_NAMES))
    if unknown:
        raise RulesError(f"approval: unknown rule {unknown[0]!r}; the rules are {', '.join(RULE_NAMES)}")
    cod_above = value.get("cod_above")
    if cod_above not in (None, ""):
        try:
            cod_above = Decimal(str(cod_above))
        except InvalidOperation:
            raise RulesError(f"approval.cod_above: an amount such as 500 or 499.99, not {cod_above!r}") from None
        if not cod_above.is_finite() or cod_above < 0:
            raise RulesError("approval.cod_above: an amount of 0 or more")
        # An order total is NUMERIC(18, 4) wherever it is kept; "1e999999" would be written out as a million digits.
        if cod_above > MAX_AMOUNT:
            raise RulesError(f"approval.cod_above: at most {MAX_AMOUNT} (no order total is larger)")
    else:
        cod_above = None
    flags = {}
    for name in ("first_order", "countries_differ"):
        flag = value.get(name, False)
        if not isinstance(flag, bool):
            raise RulesError(f"approval.{name}: true or false")
        flags[name] = flag
    tags = value.get("tags") or []
    if isinstance(tags, str):
        tags = tags.split(",")
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise RulesError("approval.tags: a list of order tags, e.g. [wholesale]")
    risk = value.get("risk")
    if risk in (None, ""):
        risk = None
    elif not isinstance(risk, str) or risk.lower() not in RISK_LEVELS[1:]:
        raise RulesError(f"approval.risk: one of {', '.join(RISK_LEVELS[1:])}")
    else:
        risk = risk.lower()
    return ApprovalRules(
        cod_above=cod_above,
        first_order=flags["first_order"],
        countries_differ=flags["countries_differ"],
        tags=tuple(sorted({t.strip().lower() for t in tags if t.strip()})),
        risk=risk,
    )


def rules_to_setting(rules: ApprovalRules) -> dict[str, Any]:
    """The setting that reads back as these rules (what `config dump` and the form show)."""
    out: dict[str, Any] = {}
    if rules.cod_above is not None:
        out["cod_above"] = format(rules.cod_above, "f")
    if rules.first_order:
        out["first_order"] = True
    if rules.countries_differ:
        out["countries_differ"] = True
    if rules.tags:
        out["tags"] = list(rules.tags)
    if rules.risk:
        out["risk"] = rules.risk
    return out


def reasons(order: Order, rules: ApprovalRules, *, known_customer: bool | None, risk: str | None) -> list[str]:
    """Why this order waits for approval; empty when no rule catches it. `known_customer` is whether
    the ERP already has the customer (None: not looked up), `risk` the store's assessment (None: none)."""
    found = []
    total = order.totals.total
    if rules.cod_above is not None and order.payment.method == "cod" and total.amount > rules.cod_above:
        found.append(f"cash on delivery of {total.amount} {total.currency}, above {rules.cod_above}")
    if rules.first_order and known_customer is False:
        who = order.customer.email or order.customer.phone or order.customer.name or "the customer"
        found.append(f"first order from a new customer ({who})")
    if rules.countries_differ:
        billing = (order.billing_address.country_code or "") if order.billing_address else ""
        shipping = (order.shipping_address.country_code or "") if order.shipping_address else ""
        if billing and shipping and billing.upper() != shipping.upper():
            found.append(f"billing country {billing.upper()} differs from shipping country {shipping.upper()}")
    matched = sorted({t.lower() for t in order.tags} & set(rules.tags))
    if matched:
        found.append(f"tagged {', '.join(matched)}")
    if rules.risk and risk and RISK_LEVELS.index(risk) >= RISK_LEVELS.index(rules.risk):
        found.append(f"the store rates its fraud risk {risk}")
    return found


def risk_level(summary: dict | None) -> str | None:
    """The most severe level of a Shopify order's risk summary (`risk { recommendation assessments { riskLevel } }`):
    none | low | medium | high, "pending" while an assessment is still running, None when there is none.
    A recommendation to cancel counts as high, one to investigate as medium."""
    if not isinstance(summary, dict):
        return None
    levels = [str(a.get("riskLevel") or "").lower() for a in summary.get("assessments") or [] if isinstance(a, dict)]
    if "pending" in levels:
        return "pending"
    known = [level for level in levels if level in RISK_LEVELS]
    recommendation = str(summary.get("recommendation") or "").upper()
    known += {"CANCEL": ["high"], "INVESTIGATE": ["medium"]}.get(recommendation, [])
    return max(known, key=RISK_LEVELS.index) if known else None
