"""/console — support and admins: dashboard, events, an event's story, retry / bulk retry / skip, audit log."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from sqlalchemy import func, select

from connector.base.models import AuditEntry, InboxEvent, Store
from connector.orders import operations
from connector.orders.lifecycle import merchant_tables
from connector.web.auth import actor, requires
from connector.web.views.charts import hourly_bars
from connector.web.views.common import (
    error_page,
    parse_time,
    pretty_body,
    rt,
    scrub,
    secret_values,
    time_input,
    unconfirmed,
)
from connector.web.web_input import OutOfRange, page_number
from mappings import payloads
from mappings.canonical_json import order_to_json
from mappings.errors import MappingError
from mappings.merchant import apply_tables
from platforms.base import ORDER
from platforms.registry import platform

bp = Blueprint("console", __name__, url_prefix="/console")
PER_PAGE_CHOICES = (25, 50, 100)
FILTER_KEYS = ("store", "topic", "status", "order", "since", "until")


@bp.before_request
@requires("support", "approver")
def _signed_in_staff() -> None:
    return None


# ---- filters ----------------------------------------------------------------------------------


def _filter_from(args: Any) -> tuple[operations.EventFilter, dict[str, str], dict[str, str]]:
    """The event filter from query or form fields, the raw values (to show them again) and errors."""
    raw = {k: (args.get(k) or "").strip() for k in FILTER_KEYS}
    errors: dict[str, str] = {}
    status = raw["status"] or None
    if status and status not in operations.STATUSES:
        errors["status"] = f"one of {', '.join(operations.STATUSES)}"
        status = None
    times = {}
    for key in ("since", "until"):
        try:
            times[key] = parse_time(raw[key])
        except OutOfRange as exc:
            errors[key] = str(exc)
            times[key] = None
        except ValueError:
            errors[key] = "a date and time such as 2026-11-20T15:00 (UTC)"
            times[key] = None
    if times["since"]:
        raw["since"] = time_input(times["since"])
    if times["until"]:
        raw["until"] = time_input(times["until"])
    flt = operations.EventFilter(
        store=raw["store"] or None,
        topic=raw["topic"] or None,
        status=status,
        order=raw["order"] or None,
        since=times["since"],
        until=times["until"],
    )
    return flt, raw, errors


def _query(raw: dict[str, str], **extra: Any) -> dict[str, Any]:
    return {**{k: v for k, v in raw.items() if v}, **{k: v for k, v in extra.items() if v not in (None, "")}}


def _choices() -> tuple[list[str], list[str]]:
    with rt().sessions() as session:
        stores = list(session.scalars(select(Store.slug).order_by(Store.slug)))
        topics = list(session.scalars(select(InboxEvent.topic).distinct().order_by(InboxEvent.topic)))
    return stores, topics


# ---- dashboard --------------------------------------------------------------------------------


@bp.get("")
def dashboard() -> Any:
    data = operations.dashboard(rt())
    failures, failed_total = operations.list_events(rt(), operations.EventFilter(status="failed"), 1, 8)
    hidden = secret_values(rt()) if failures else []
    return render_template(
        "console/dashboard.html",
        data=data,
        chart=hourly_bars(data["hourly"]),
        failures=[(e, slug, scrub(e.last_error, hidden)) for e, slug in failures],
        failed_total=failed_total,
        processed_24h=sum(h["succeeded"] for h in data["hourly"]),
        failed_24h=sum(h["failed"] for h in data["hourly"]),
    )


# ---- events -----------------------------------------------------------------------------------


@bp.get("/events")
def events() -> Any:
    flt, raw, errors = _filter_from(request.args)
    page = page_number(request.args.get("page"))
    try:
        per_page = int(request.args.get("per_page", 50))
    except ValueError:
        per_page = 50
    per_page = per_page if per_page in PER_PAGE_CHOICES else 50
    rows, total = operations.list_events(rt(), flt, page, per_page)
    pages = max(1, (total + per_page - 1) // per_page)
    retryable = operations.count_retryable(rt(), flt)
    hidden = secret_values(rt()) if rows else []
    stores, topics = _choices()
    return render_template(
        "console/events.html",
        rows=[(e, slug, scrub(e.last_error, hidden)) for e, slug in rows],
        total=total,
        page=page,
        pages=pages,
        per_page=per_page,
        per_page_choices=PER_PAGE_CHOICES,
        raw=raw,
        errors=errors,
        statuses=operations.STATUSES,
        stores=stores,
        topics=topics,
        retryable=retryable,
        query=_query(raw),
        page_url=lambda n: url_for(
            "console.events", **_query(raw, per_page=per_page if per_page != 50 else None, page=n if n > 1 else None)
        ),
    ), 400 if errors else 200


def _confirm_page(raw: dict, count: int, errors: dict | None = None, status: int = 200) -> Any:
    return render_template(
        "console/bulk_retry.html", raw=raw, count=count, query=_query(raw), errors=errors or {}
    ), status


@bp.get("/events/retry")
def bulk_retry_confirm() -> Any:
    flt, raw, errors = _filter_from(request.args)
    if errors:
        return _confirm_page(raw, 0, errors, 400)
    return _confirm_page(raw, operations.count_retryable(rt(), flt))


@bp.post("/events/retry")
def bulk_retry() -> Any:
    flt, raw, errors = _filter_from(request.form)
    if errors:
        return _confirm_page(raw, 0, errors, 400)
    matching = operations.count_retryable(rt(), flt)
    refused = unconfirmed(request.form, matching, "event to retry")
    if refused is not None:
        return _confirm_page(raw, matching, *refused)
    if matching == 0:
        flash("Nothing to retry: no failed, skipped or ignored event matches the filter.", "info")
        return redirect(url_for("console.events", **_query(raw)))
    count = operations.retry_events(rt(), flt=flt, actor=actor())
    flash(f"Retrying {count} event{'s' if count != 1 else ''}: they are back in the queue.", "success")
    return redirect(url_for("console.events", **_query(raw)))


def _canonical_now(event: InboxEvent, slug: str) -> tuple[dict | None, str | None]:
    """For an event that did not record its canonical order: what the payload maps to today."""
    served = platform(event.platform)
    if served.kind(event.topic) != ORDER:
        return None, None
    try:
        payload = payloads.read(event.body)
    except payloads.UnreadablePayload as exc:
        return None, str(exc)

    try:
        order = apply_tables(served.to_order(payload, slug), merchant_tables(rt(), event.store_id))
    except (MappingError, KeyError, TypeError, ValueError) as exc:
        return None, f"it does not map: {exc}"
    return order_to_json(order), None


def _event_page(event_id: int, errors: dict | None = None, reason: str = "", status: int = 200) -> Any:
    detail = operations.event_detail(rt(), event_id)
    if detail is None:
        return error_page(404, f"no event {event_id}")
    event = detail["event"]
    payload, is_json = pretty_body(event.body)
    result = event.result or {}
    canonical = result.get("order") if isinstance(result.get("order"), dict) else None
    canonical_note = None
    if canonical is None:
        canonical, canonical_note = _canonical_now(event, detail["store"])
        if canonical is not None:
            canonical_note = (
                "Not recorded: the event has not succeeded. This is what the payload maps to now, "
                "with today's mapping tables."
            )
    hidden = secret_values(rt())
    return render_template(
        "console/event.html",
        event=event,
        store=detail["store"],
        attempts=detail["attempts"],
        timeline=detail["timeline"],
        link=detail["link"],
        documents=detail["documents"],
        receipts=detail["receipts"],
        undelivered=detail["undelivered"],
        erp_refunds=detail["erp_refunds"],
        payload=payload,
        is_json=is_json,
        result=result,
        canonical=canonical,
        canonical_note=canonical_note,
        last_error=scrub(event.last_error, hidden),
        scrub=lambda text: scrub(text, hidden),
        retryable=event.status in operations.RETRYABLE_STATES,
        skippable=event.status in ("pending", "failed", "ignored"),
        errors=errors or {},
        reason=reason,
        headers=operations.shown_headers(event.headers),
        confirmable=operations.confirmable(event),
    ), status


@bp.get("/events/<int:event_id>")
def event_page(event_id: int) -> Any:
    return _event_page(event_id)


@bp.post("/events/<int:event_id>/retry")
def retry_one(event_id: int) -> Any:
    count = operations.retry_events(rt(), [event_id], actor=actor())
    if count:
        flash(f"Event {event_id} is back in the queue with a fresh attempt budget.", "success")
    else:
        flash(f"Event {event_id} was not retried: only failed, skipped or ignored events can be.", "error")
    return redirect(url_for("console.event_page", event_id=event_id))


@bp.post("/events/<int:event_id>/confirm")
@requires("admin")
def confirm_one(event_id: int) -> Any:
    if operations.confirm_event(rt(), event_id, actor()):
        flash(f"Event {event_id} confirmed by you: it runs now, and the audit log names you.", "success")
    else:
        flash(
            f"Event {event_id} was not confirmed: only a parked shop/redact or app/uninstalled request can be.", "error"
        )
    return redirect(url_for("console.event_page", event_id=event_id))


@bp.post("/events/<int:event_id>/skip")
def skip_one(event_id: int) -> Any:
    reason = (request.form.get("reason") or "").strip()
    if not reason:
        return _event_page(event_id, {"reason": "say why the event is skipped (kept in the audit log)"}, status=400)
    if len(reason) > operations.MAX_SKIP_REASON:
        return _event_page(event_id, {"reason": f"at most {operations.MAX_SKIP_REASON} characters"}, reason, 400)
    if operations.skip_event(rt(), event_id, reason, actor()):
        flash(f"Event {event_id} skipped.", "success")
    else:
        flash(f"Event {event_id} was not skipped: only pending, failed or ignored events can be.", "error")
    return redirect(url_for("console.event_page", event_id=event_id))


# ---- audit log --------------------------------------------------------------------------------


@bp.get("/audit")
def audit_log() -> Any:
    per_page = 50
    page = page_number(request.args.get("page"))
    action = (request.args.get("action") or "").strip()
    who = (request.args.get("actor") or "").strip()
    query = select(AuditEntry)
    if action:
        query = query.where(AuditEntry.action == action)
    if who:
        query = query.where(AuditEntry.actor == who)
    with rt().sessions() as session:
        total = int(session.scalar(select(func.count()).select_from(query.subquery())) or 0)
        rows = session.scalars(query.order_by(AuditEntry.id.desc()).offset((page - 1) * per_page).limit(per_page)).all()
        actions = list(session.scalars(select(AuditEntry.action).distinct().order_by(AuditEntry.action)))
        actors = list(session.scalars(select(AuditEntry.actor).distinct().order_by(AuditEntry.actor)))
    pages = max(1, (total + per_page - 1) // per_page)
    raw = {"action": action, "actor": who}
    return render_template(
        "console/audit.html",
        rows=rows,
        total=total,
        page=page,
        pages=pages,
        raw=raw,
        actions=actions,
        actors=actors,
        page_url=lambda n: url_for("console.audit_log", **_query(raw, page=n if n > 1 else None)),
    )
