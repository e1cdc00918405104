"""/console/attribution — web orders and their amounts by attributed owner over a period, per currency.

The figures are the connector's own record of what it wrote to the ERP (connector.orders.attribution): each
order's total, the owner's credit under the rule it was booked with, and the web channel's rest."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from flask import Blueprint, render_template, request
from sqlalchemy import select

from adapters.clock import utcnow
from connector.base.models import Store
from connector.orders.attribution import report
from connector.web.auth import requires
from connector.web.views.common import rt
from mappings.currencies import one_unit

bp = Blueprint("attribution", __name__, url_prefix="/console/attribution")


@bp.before_request
@requires("support", "approver")
def _signed_in_staff() -> None:
    return None


def _day(raw: str, name: str, errors: dict[str, str]) -> date | None:
    try:
        return date.fromisoformat(raw)
    except ValueError:
        errors[name] = "a date such as 2026-11-01"
        return None


def _period(args: Any) -> tuple[date, date, dict[str, str], dict[str, str]]:
    """The first and last day (UTC, both included), the raw fields and their errors; this month by default."""
    today = utcnow().date()
    raw = {k: (args.get(k) or "").strip() for k in ("from", "to", "store")}
    errors: dict[str, str] = {}
    first = _day(raw["from"], "from", errors) if raw["from"] else today.replace(day=1)
    last = _day(raw["to"], "to", errors) if raw["to"] else today
    first, last = first or today.replace(day=1), last or today
    if not errors and last < first:
        errors["to"] = "on or after the first day"
    if last >= date.max - timedelta(days=1):
        errors["to"] = "a date before 9999-12-30"
    raw["from"], raw["to"] = raw["from"] or first.isoformat(), raw["to"] or last.isoformat()
    return first, last, raw, errors


def amount(value: Decimal, currency: str) -> str:
    """An amount in its currency's minor unit (the sums are exact; this only drops the stored 4th decimal)."""
    return f"{format(value.quantize(one_unit(currency)), 'f')} {currency}"


@bp.get("")
def index() -> Any:
    first, last, raw, errors = _period(request.args)
    with rt().sessions() as session:
        stores = list(session.scalars(select(Store.slug).order_by(Store.slug)))
    if raw["store"] and raw["store"] not in stores:
        errors["store"] = "no such store"
    currencies = []
    if not errors:
        since = datetime.combine(first, time(), tzinfo=UTC)
        until = datetime.combine(last + timedelta(days=1), time(), tzinfo=UTC)
        currencies = report(rt(), since, until, raw["store"] or None)
    return render_template(
        "console/attribution.html",
        currencies=currencies,
        raw=raw,
        errors=errors,
        stores=stores,
        amount=amount,
    ), (400 if errors else 200)
