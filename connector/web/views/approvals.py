"""/console/approvals — orders held by a store's approval rules: approve (one, or every one a filter
matches, with the count confirmed), or reject with a reason. Support sees them; approvers and admins decide."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from sqlalchemy import select

from connector.base.models import Store
from connector.orders import approvals
from connector.web.auth import actor, current_user, requires
from connector.web.views.common import parse_time, rt, time_input, unconfirmed
from connector.web.web_input import OutOfRange

bp = Blueprint("approvals", __name__, url_prefix="/console/approvals")
FILTER_KEYS = ("store", "status", "order", "since")


@bp.before_request
@requires("support", "approver")
def _signed_in_staff() -> None:
    return None


def _filter_from(args: Any) -> tuple[approvals.ApprovalFilter, dict[str, str], dict[str, str]]:
    raw = {k: (args.get(k) or "").strip() for k in FILTER_KEYS}
    errors: dict[str, str] = {}
    status = raw["status"] or "awaiting"
    if status != "any" and status not in approvals.STATUSES:
        errors["status"] = f"one of {', '.join(approvals.STATUSES)}, or any"
        status = "awaiting"
    since = None
    try:
        since = parse_time(raw["since"])
    except OutOfRange as exc:
        errors["since"] = str(exc)
    except ValueError:
        errors["since"] = "a date and time such as 2026-11-20T15:00 (UTC)"
    if since:
        raw["since"] = time_input(since)
    flt = approvals.ApprovalFilter(
        store=raw["store"] or None, status=None if status == "any" else status, order=raw["order"] or None, since=since
    )
    return flt, raw, errors


def _query(raw: dict[str, str]) -> dict[str, Any]:
    return {k: v for k, v in raw.items() if v}


def _may_decide() -> bool:
    user = current_user()
    return user is not None and user.role in ("admin", "approver")


def _list(errors: dict[str, str] | None = None, status: int = 200) -> Any:
    flt, raw, filter_errors = _filter_from(request.args if request.method == "GET" else request.form)
    with rt().sessions() as session:
        stores = list(session.scalars(select(Store.slug).order_by(Store.slug)))
    return render_template(
        "console/approvals.html",
        rows=approvals.list_approvals(rt(), flt),
        awaiting=approvals.count_awaiting(rt(), flt),
        raw=raw,
        errors={**filter_errors, **(errors or {})},
        stores=stores,
        statuses=approvals.STATUSES,
        query=_query(raw),
        may_decide=_may_decide(),
        max_reason=approvals.MAX_REASON,
    ), (400 if filter_errors else status)


@bp.get("")
def index() -> Any:
    return _list()


@bp.post("/<int:approval_id>/approve")
@requires("approver")
def approve_one(approval_id: int) -> Any:
    if approvals.approve(rt(), ids=[approval_id], actor=actor()):
        flash(f"Approved: the order goes on to the ERP (approval {approval_id}).", "success")
    else:
        flash(f"Approval {approval_id} was not awaiting a decision: nothing changed.", "error")
    return redirect(url_for("approvals.index", **_query(_filter_from(request.form)[1])))


@bp.post("/<int:approval_id>/reject")
@requires("approver")
def reject_one(approval_id: int) -> Any:
    reason = (request.form.get("reason") or "").strip()
    if not reason:
        return _list({f"reason-{approval_id}": "say why: the store's cancellation and the audit log keep it"}, 400)
    if len(reason) > approvals.MAX_REASON:
        return _list({f"reason-{approval_id}": f"at most {approvals.MAX_REASON} characters"}, 400)
    if approvals.reject(rt(), approval_id, reason, actor()):
        flash(
            f"Rejected: the order is not sent to the ERP and is being cancelled in the store (approval {approval_id}).",
            "success",
        )
    else:
        flash(f"Approval {approval_id} was not awaiting a decision: nothing changed.", "error")
    return redirect(url_for("approvals.index", **_query(_filter_from(request.form)[1])))


@bp.post("/<int:approval_id>/cancel-in-store")
@requires("approver")
def cancel_again(approval_id: int) -> Any:
    if approvals.cancel_again(rt(), approval_id, actor()):
        flash(f"The store cancellation of approval {approval_id} is queued again.", "success")
    else:
        flash(f"Approval {approval_id} has no failed store cancellation: nothing queued.", "error")
    return redirect(url_for("approvals.index", **_query(_filter_from(request.form)[1])))


def _confirm_page(raw: dict, count: int, errors: dict | None = None, status: int = 200) -> Any:
    return render_template(
        "console/bulk_approve.html", raw=raw, count=count, query=_query(raw), errors=errors or {}
    ), status


@bp.get("/approve")
@requires("approver")
def bulk_approve_confirm() -> Any:
    flt, raw, errors = _filter_from(request.args)
    if errors:
        return _confirm_page(raw, 0, errors, 400)
    return _confirm_page(raw, approvals.count_awaiting(rt(), flt))


@bp.post("/approve")
@requires("approver")
def bulk_approve() -> Any:
    flt, raw, errors = _filter_from(request.form)
    if errors:
        return _confirm_page(raw, 0, errors, 400)
    matching = approvals.count_awaiting(rt(), flt)
    refused = unconfirmed(request.form, matching, "order awaiting approval")
    if refused is not None:
        return _confirm_page(raw, matching, *refused)
    count = approvals.approve(rt(), flt=flt, actor=actor()) if matching else 0
    flash(f"Approved {count} order{'s' if count != 1 else ''}: they go on to the ERP.", "success")
    return redirect(url_for("approvals.index", **_query(raw)))
