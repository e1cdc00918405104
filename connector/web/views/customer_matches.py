"""/console/customers — orders whose buyer may be a customer the ERP already has: a person links them to
one of the ERP's similar customers or makes a new one (support, approvers and admins)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for

from connector.orders import customer_matches
from connector.web.auth import actor, requires
from connector.web.views.common import rt

bp = Blueprint("customers", __name__, url_prefix="/console/customers")


@bp.before_request
@requires("support", "approver")
def _signed_in_staff() -> None:
    return None


@bp.get("")
def index() -> Any:
    status = (request.args.get("status") or "awaiting").strip()
    if status not in (*customer_matches.STATUSES, "any"):
        status = "awaiting"
    return render_template(
        "console/customers.html",
        rows=customer_matches.list_matches(rt(), None if status == "any" else status),
        status=status,
        statuses=customer_matches.STATUSES,
    )


@bp.post("/<int:match_id>")
def decide(match_id: int) -> Any:
    choice = (request.form.get("decision") or "").strip()
    if choice != "new" and not choice.startswith("link:"):
        flash("Choose one of the ERP's customers, or a new customer.", "error")
        return redirect(url_for("customers.index"))
    link_to = choice.removeprefix("link:") if choice != "new" else None
    try:
        done = customer_matches.decide(rt(), match_id, link_to, actor())
    except customer_matches.NotACandidate as exc:
        flash(f"Nothing changed: {exc}.", "error")
        return redirect(url_for("customers.index"))
    if not done:
        flash("Nothing changed: this order's customer was decided meanwhile.", "error")
    elif link_to:
        flash(
            f"Linked to ERP customer {link_to}: the order goes on to the ERP, and so will their next ones.", "success"
        )
    else:
        flash("A new ERP customer is made for them: the order goes on to the ERP.", "success")
    return redirect(url_for("customers.index"))
