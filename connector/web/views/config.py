"""/config — admins only: stores, the ERP connection, mapping tables, sync rules and the mapping preview."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from marshmallow import ValidationError
from sqlalchemy import select

from adapters.erp import ErpError
from adapters.storefront import StorefrontError
from connector.base.audit import audit
from connector.base.crypto import mask
from connector.base.models import ErpConnection, InboxEvent, MappingEntry, Store
from connector.base.runtime import StoreInfo
from connector.jobs import poll_seconds
from connector.orders.preview import preview_order
from connector.setup.config_io import replace_mapping
from connector.sync import store_admin
from connector.web.auth import actor, requires
from connector.web.views import forms
from connector.web.views.common import error_page, pretty_body, rt, scrub, secret_values
from connector.web.web_input import loads_bounded, row_id
from mappings.merchant import KINDS as MAPPING_KINDS
from platforms.registry import platform

bp = Blueprint("config", __name__, url_prefix="/config")
BLANK_MAPPING_ROWS = 1
STOCK_RULES = ("active", "safety_stock", "allocation_share", "stock_priority")  # what a stock split depends on


@bp.before_request
@requires("admin")
def _admins_only() -> None:
    return None


# ---- reading ----------------------------------------------------------------------------------


def _stores() -> list[StoreInfo]:
    with rt().sessions() as session:
        return [rt().store_info(s) for s in session.scalars(select(Store).order_by(Store.slug))]


def _store(slug: str) -> StoreInfo | None:
    with rt().sessions() as session:
        store = session.scalars(select(Store).where(Store.slug == slug)).first()
        return rt().store_info(store) if store is not None else None


def _erp() -> tuple[str | None, dict, dict]:
    with rt().sessions() as session:
        conn = session.scalars(select(ErpConnection).where(ErpConnection.name == "default")).first()
        if conn is None:
            return None, {}, {}
        return conn.kind, dict(conn.settings or {}), rt().box.open(conn.secrets)


def _mapping_rows() -> dict[str, list[dict]]:
    tables: dict[str, list[dict]] = {kind: [] for kind in MAPPING_KINDS}
    with rt().sessions() as session:
        for entry, slug in session.execute(
            select(MappingEntry, Store.slug)
            .outerjoin(Store)
            .order_by(MappingEntry.kind, Store.slug, MappingEntry.source)
        ):
            tables.setdefault(entry.kind, []).append({"store": slug, "source": entry.source, "target": entry.target})
    return tables


def _masked(secrets: dict) -> dict[str, str]:
    return {k: mask(v) or "••••" for k, v in secrets.items() if v}


def _overview(
    status: int = 200,
    mapping_kind: str | None = None,
    mapping_rows: list[dict] | None = None,
    mapping_errors: dict | None = None,
) -> Any:
    stores = _stores()
    latest = {s.slug: max(store_admin.last_deliveries(rt(), s.id).values(), default=None) for s in stores}
    kind, settings, secrets = _erp()
    tables = _mapping_rows()
    if mapping_kind is not None:
        tables[mapping_kind] = mapping_rows or []
    html = render_template(
        "config/index.html",
        stores=stores,
        latest=latest,
        masked={s.slug: _masked(s.secrets) for s in stores},
        erp_kind=kind,
        erp_settings=_erp_display(kind, settings),
        erp_secrets=_masked(secrets),
        tables=tables,
        mapping_kind=mapping_kind,
        mapping_errors=mapping_errors or {},
        info=forms.MAPPING_INFO,
        blank_rows=BLANK_MAPPING_ROWS,
        payment_methods=forms.PAYMENT_METHODS,
        kinds=MAPPING_KINDS,
        kind_labels=forms.ERP_KIND_LABELS,
        platform_labels=forms.PLATFORM_LABELS,
        rules=_rules,
        address_of=_address,
        polled=_polled,
    )
    return html, status


def _erp_display(kind: str | None, settings: dict) -> list[tuple[str, str]]:
    shown = []
    for key, value in settings.items():
        if key in ("url",):
            continue
        shown.append((key, json.dumps(value) if isinstance(value, (dict, list)) else str(value)))
    return shown


def _address(store: StoreInfo) -> str:
    """Where the store is, as its form's first field names it (its domain or its site's address)."""
    shown = platform(store.platform).form.shown
    return str(store.settings.get(shown[0].name) or "—") if shown else "—"


def _polled(store: StoreInfo) -> int | None:
    """Seconds between polls of a store whose platform sends no webhooks (None: it sends webhooks)."""
    return poll_seconds(store) if platform(store.platform).receiver is None else None


def _rules(store: StoreInfo) -> list[tuple[str, str]]:
    s = store.settings
    statuses = s.get("import_statuses") or platform(store.platform).import_statuses
    return [
        ("Imports", ", ".join(statuses) if statuses else "every order"),
        ("Customers", s.get("customer_policy", "match")),
        *((f.brief, str(s.get(f.name, f.default))) for f in platform(store.platform).form.shown if f.brief),
        ("Inventory every", f"{s['inventory_interval_minutes']} min" if s.get("inventory_interval_minutes") else "—"),
        ("Safety stock", str(s.get("safety_stock", "—"))),
        ("Allocation share", f"{float(s['allocation_share']):.0%}" if s.get("allocation_share") is not None else "—"),
        ("Stock priority", str(s["stock_priority"]) if s.get("stock_priority") is not None else "—"),
    ]


@bp.get("")
def index() -> Any:
    return _overview()


# ---- stores -----------------------------------------------------------------------------------


def _store_form(store: StoreInfo | None, values: dict, errors: dict, status: int = 200) -> Any:
    return render_template(
        "config/store.html",
        store=store,
        values=values,
        errors=errors,
        masked=_masked(store.secrets) if store else {},
        platforms=forms.PLATFORMS,
        platform_labels=forms.PLATFORM_LABELS,
        statuses=forms.IMPORT_STATUSES,
        default_import=forms.DEFAULT_IMPORT,
        policies=forms.POLICY_LABELS,
        attribution_rules=forms.ATTRIBUTION_LABELS,
        forms_of=forms.PLATFORM_FORMS,
        secret_fields=forms.SECRET_FIELDS,
        address=store_admin.webhook_address(rt(), store) if store else None,
        polled=_polled(store) if store else None,
    ), status


def _posted_values(store: StoreInfo | None) -> dict:
    """The form as posted, for showing it again next to its errors (secret fields never come back)."""
    values = forms.store_values(store)
    secret_names = {n for f in forms.SECRET_FIELDS.values() for n in f}
    for key in request.form:
        if key == "csrf_token" or key.startswith("import_statuses") or key.rpartition("-")[2] in secret_names:
            continue
        values[key] = request.form.get(key)
    platform = store.platform if store else request.form.get("platform", "shopify")
    values["active"] = request.form.get("active") in ("on", "true", "1", "yes")
    values["import_statuses"] = request.form.getlist(f"import_statuses-{platform}")
    values["approval"] = forms.posted_approval(request.form)  # as typed, right or wrong
    values["routing"] = forms.posted_routing(request.form)
    return values


@bp.route("/stores/new", methods=["GET", "POST"])
def new_store() -> Any:
    if request.method == "GET":
        values = forms.store_values(None)
        if request.args.get("platform") in forms.PLATFORMS:
            values["platform"] = request.args["platform"]
        return _store_form(None, values, {})
    result = forms.parse_store(request.form, None, {s.slug for s in _stores()})
    if result.ok:
        forms.save_store(rt(), result)
    if not result.ok:
        return _store_form(None, _posted_values(None), result.errors, 400)
    assert result.entry is not None  # parse_store sets the entry of a form without errors
    slug = result.entry["slug"]
    audit(
        rt(),
        actor(),
        "store.create",
        slug,
        {
            "platform": result.entry["platform"],
            "secrets_set": list(result.changed_secrets),
        },
    )
    flash(f"Store {slug} added. Next: test the connection and register its webhooks.", "success")
    return redirect(url_for("config.store_page", slug=slug))


@bp.route("/stores/<slug>", methods=["GET", "POST"])
def store_page(slug: str) -> Any:
    store = _store(slug)
    if store is None:
        return error_page(404, f"no store {slug!r}")
    if request.method == "GET":
        return _store_form(store, forms.store_values(store), {})
    result = forms.parse_store(request.form, store, set())
    if result.ok:
        forms.save_store(rt(), result)
    if not result.ok:
        return _store_form(store, _posted_values(store), result.errors, 400)
    # Compared with the store as its form showed it (its defaults included), not its stored settings alone.
    entry, before = result.entry or {}, forms.store_values(store)
    changed = forms.changed_settings(store, entry)
    # how the stock split changed, value by value: who got the last unit is read from here later
    stock = {k: [before.get(k), entry.get(k)] for k in changed if k in STOCK_RULES}
    audit(
        rt(),
        actor(),
        "store.update",
        slug,
        {"changed": changed, "secrets_set": list(result.changed_secrets), **({"stock": stock} if stock else {})},
    )
    flash(f"Store {slug} saved.", "success")
    return redirect(url_for("config.store_page", slug=slug))


@bp.post("/stores/<slug>/test")
def test_store(slug: str) -> Any:
    store = _store(slug)
    if store is None:
        return error_page(404, f"no store {slug!r}")
    hidden = secret_values(rt())
    try:
        message = store_admin.test_connection(rt(), store)
        flash(scrub(message, hidden), "success")
        outcome = "ok"
    except StorefrontError as exc:
        flash(f"Connection test failed: {scrub(str(exc), hidden)}", "error")
        outcome = "failed"
    audit(rt(), actor(), "store.test", slug, {"outcome": outcome})
    back = request.form.get("back") or ""
    return redirect(back if back.startswith("/config") else url_for("config.store_page", slug=slug))


@bp.get("/stores/<slug>/webhooks")
def webhooks_page(slug: str) -> Any:
    store = _store(slug)
    if store is None:
        return error_page(404, f"no store {slug!r}")
    health = store_admin.webhook_health(rt(), store)
    if health.error:
        health.error = scrub(health.error, secret_values(rt()))
    return render_template("config/webhooks.html", store=store, health=health, platform_labels=forms.PLATFORM_LABELS)


@bp.post("/stores/<slug>/webhooks")
def register_webhooks(slug: str) -> Any:
    store = _store(slug)
    if store is None:
        return error_page(404, f"no store {slug!r}")
    try:
        done = store_admin.register_webhooks(rt(), store)
    except StorefrontError as exc:
        flash(f"Registering webhooks failed: {scrub(str(exc), secret_values(rt()))}", "error")
        audit(rt(), actor(), "store.webhooks", slug, {"outcome": "failed"})
        return redirect(url_for("config.webhooks_page", slug=slug))
    parts = []
    if done["created"]:
        parts.append(f"created {', '.join(done['created'])}")
    if done["existing"]:
        parts.append(f"already there: {', '.join(done['existing'])}")
    if done["removed"]:
        parts.append(f"removed {len(done['removed'])} stale subscription(s)")
    if done.get("skipped"):
        parts.append(f"not subscribed: {', '.join(done['skipped'])}; add the scope to the app and connect again")
    flash(f"Webhooks for {slug}: {'; '.join(parts)}.", "success")
    audit(rt(), actor(), "store.webhooks", slug, done)
    return redirect(url_for("config.webhooks_page", slug=slug))


# ---- the ERP connection -----------------------------------------------------------------------


def _erp_form(values: dict, kind: str | None, errors: dict, status: int = 200) -> Any:
    _, _, secrets = _erp()
    return render_template(
        "config/erp.html",
        values=values,
        kind=kind,
        errors=errors,
        masked=_masked(secrets),
        fields=forms.ERP_FIELDS,
        labels=forms.ERP_KIND_LABELS,
    ), status


@bp.route("/erp", methods=["GET", "POST"])
def erp_page() -> Any:
    kind, settings, secrets = _erp()
    if request.method == "GET":
        return _erp_form(forms.erp_values(kind, settings), kind or "sql", {})
    result = forms.parse_erp(request.form, kind, settings, secrets)
    if result.ok:
        forms.save_erp(rt(), result)
    chosen = request.form.get("kind") or kind or "sql"
    if not result.ok:
        posted = {
            f.name: request.form.get(f"{chosen}-{f.name}", "") for f in forms.ERP_FIELDS.get(chosen, ()) if not f.secret
        }
        posted["offline_stock_priority"] = request.form.get("offline_stock_priority", "")
        return _erp_form(posted, chosen, result.errors, 400)
    saved = _erp()[1]
    stock = {k: [settings.get(k), saved.get(k)] for k in ("offline_stock_priority",) if settings.get(k) != saved.get(k)}
    audit(
        rt(),
        actor(),
        "erp.update",
        chosen,
        {"secrets_set": list(result.changed_secrets), **({"stock": stock} if stock else {})},
    )
    flash("ERP connection saved. Test it with the button above.", "erp-success")
    return redirect(url_for("config.index") + "#erp")


@bp.post("/erp/test")
def test_erp() -> Any:
    hidden = secret_values(rt())
    try:
        message = rt().erp().test_connection()
        flash(f"ERP connection works: {scrub(message, hidden)}", "erp-success")
        outcome = "ok"
    except ErpError as exc:
        flash(f"ERP connection test failed: {scrub(str(exc), hidden)}", "erp-error")
        outcome = "failed"
    except Exception as exc:  # an adapter that cannot even be built (bad settings): say what
        flash(f"ERP connection test failed: {type(exc).__name__}: {scrub(str(exc), hidden)}", "erp-error")
        outcome = "failed"
    audit(rt(), actor(), "erp.test", "", {"outcome": outcome})
    return redirect(url_for("config.index") + "#erp")


# ---- mapping tables ---------------------------------------------------------------------------


@bp.post("/mappings/<kind>")
def save_mapping(kind: str) -> Any:
    if kind not in MAPPING_KINDS:
        return error_page(404, f"no mapping table {kind!r}")
    shown, rows, errors = forms.parse_mapping(request.form, {s.slug for s in _stores()})
    if not errors:
        try:
            replace_mapping(rt(), kind, rows)
        except ValidationError as exc:
            messages = exc.messages.get("rows", [exc.messages]) if isinstance(exc.messages, dict) else exc.messages
            errors = {-1: {"_table": "; ".join(str(m) for m in messages)}}
    if errors:
        flash(f"{forms.MAPPING_INFO[kind]['title']}: nothing saved, see the marked rows.", "error")
        return _overview(400, kind, shown, errors)
    audit(rt(), actor(), "mapping.replace", kind, {"rows": len(rows)})
    flash(f"{forms.MAPPING_INFO[kind]['title']} saved ({len(rows)} row{'s' if len(rows) != 1 else ''}).", "success")
    return redirect(url_for("config.index") + "#" + forms.MAPPING_INFO[kind]["anchor"])


# ---- mapping preview --------------------------------------------------------------------------


def _recent_events() -> Sequence[Any]:
    with rt().sessions() as session:
        return session.execute(
            select(
                InboxEvent.id,
                InboxEvent.topic,
                InboxEvent.order_number,
                InboxEvent.resource_id,
                InboxEvent.received_at,
                Store.slug,
            )
            .join(Store, Store.id == InboxEvent.store_id)
            .where(
                InboxEvent.topic.in_(
                    (
                        "orders/create",
                        "orders/updated",
                        "orders/paid",
                        "orders/cancelled",
                        "order.created",
                        "order.updated",
                        "order.restored",
                    )
                )
            )
            .order_by(InboxEvent.id.desc())
            .limit(50)
        ).all()


@bp.route("/preview", methods=["GET", "POST"])
def preview() -> Any:
    stores = _stores()
    values = {
        "store": request.values.get("store") or (stores[0].slug if stores else ""),
        "payload": request.form.get("payload", ""),
        "event": request.values.get("event", ""),
    }
    errors: dict[str, str] = {}
    result = None
    source = None
    event_id = values["event"].strip()
    if event_id and (request.method == "GET" or not values["payload"].strip()):
        number = row_id(event_id) or -1
        with rt().sessions() as session:
            row = session.execute(
                select(InboxEvent, Store.slug)
                .join(Store, Store.id == InboxEvent.store_id)
                .where(InboxEvent.id == number)
            ).first()
        if row is None:
            errors["event"] = f"no event {event_id}"
        else:
            values["store"] = row[1]
            values["payload"] = pretty_body(row[0].body)[0]
            source = f"event {number} ({row[1]}, {row[0].topic})"
    status = 200
    if request.method == "POST" or source:
        if not values["store"] or values["store"] not in {s.slug for s in stores}:
            errors["store"] = "choose a store"
        payload: Any = None
        if not values["payload"].strip():
            errors.setdefault("payload", "paste an order payload (JSON) or pick a stored event")
        else:
            try:
                payload = loads_bounded(values["payload"])
            except ValueError as exc:
                errors["payload"] = f"not valid JSON: {exc}"
            else:
                if not isinstance(payload, dict):
                    errors["payload"] = "a JSON object is expected (the order itself)"
        if not errors:
            result = preview_order(rt(), values["store"], payload)
            hidden = secret_values(rt())
            for key in ("error", "erp_error"):
                if result.get(key):
                    result[key] = scrub(result[key], hidden)
    if errors:
        status = 400
    return render_template(
        "config/preview.html",
        stores=stores,
        values=values,
        errors=errors,
        result=result,
        source=source,
        events=_recent_events(),
    ), status
