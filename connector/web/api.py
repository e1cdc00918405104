"""The JSON API under /api/v1 (flask-smorest): the console's and config page's operations for
machines, described by the OpenAPI document at /api/v1/openapi.json. Sign-in and CSRF are the
same as for the pages (connector.web.auth); support may use the event routes, admins everything.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import current_app
from flask.views import MethodView
from flask_smorest import Api, Blueprint
from marshmallow import Schema, ValidationError, fields, validate
from sqlalchemy import select
from webargs.flaskparser import abort  # the very function flask_smorest.abort re-exports, typed (NoReturn)
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from connector.base.audit import audit
from connector.base.models import AuditEntry, InboxEvent, MappingEntry, Store
from connector.base.runtime import Runtime
from connector.base.stock import upsert_levels
from connector.jobs import queue_inventory_sync
from connector.orders import compliance, operations
from connector.orders.preview import preview_order
from connector.setup.config_io import ConfigError, dump_config, load_config, replace_mapping
from connector.web.auth import actor, csrf_token, current_user, requires
from connector.web.web_input import MAX_PAGE, loads_bounded, to_utc
from mappings.canonical import StockLevel
from mappings.merchant import KINDS as MAPPING_KINDS
from mappings.text_fields import Text

bp = Blueprint("api", __name__, url_prefix="/api/v1", description="Connector operations")


def rt() -> Runtime:
    return current_app.extensions["connector.runtime"]


class UtcDateTime(fields.AwareDateTime):
    """An ISO-8601 time with a zone, kept in UTC; refused when UTC would fall outside the years 1-9999."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> datetime:
        try:
            return to_utc(super()._deserialize(value, attr, data, **kwargs))
        except ValueError as exc:
            raise ValidationError(str(exc)) from None


STOCK_LIMIT = 10**14 - 1  # stock_levels.on_hand is NUMERIC(18, 4): 14 whole digits, 4 decimals


# ---- schemas ----------------------------------------------------------------------------------


class EventQuery(Schema):
    store = Text()
    topic = Text()
    status = fields.String(validate=validate.OneOf(operations.STATUSES))
    order = Text(metadata={"description": "order number (#1001) or the store's order id"})
    since = UtcDateTime()
    until = UtcDateTime()


class PageQuery(EventQuery):
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=MAX_PAGE))
    per_page = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))


class EventSummary(Schema):
    id = fields.Integer()
    store = fields.String()
    topic = fields.String()
    status = fields.String()
    attempts = fields.Integer()
    order_number = fields.String(allow_none=True)
    resource_id = fields.String(allow_none=True)
    received_at = fields.DateTime()
    processed_at = fields.DateTime(allow_none=True)
    next_attempt_at = fields.DateTime(allow_none=True)
    last_error = fields.String(allow_none=True)


class EventPage(Schema):
    items = fields.List(fields.Nested(EventSummary))
    total = fields.Integer()
    page = fields.Integer()
    per_page = fields.Integer()


class Attempt(Schema):
    number = fields.Integer()
    started_at = fields.DateTime()
    finished_at = fields.DateTime()
    outcome = fields.String()
    error = fields.String(allow_none=True)


class EventDetail(EventSummary):
    headers = fields.Dict()
    payload = fields.String(metadata={"description": "the body as received (text)"})
    result = fields.Dict(allow_none=True, metadata={"description": "canonical order and what the ERP got"})
    attempt_rows = fields.List(fields.Nested(Attempt), data_key="attempts_detail")
    timeline = fields.List(fields.Dict())


class SkipBody(Schema):
    reason = Text(required=True, blank=False, validate=validate.Length(min=1, max=operations.MAX_SKIP_REASON))


class BulkRetryBody(EventQuery):
    expected_count = fields.Integer(
        required=True,
        strict=True,
        metadata={  # strict: 1e-19 is not 0
            "description": "the count the person confirmed; refused if the filter now matches another number"
        },
    )


class Count(Schema):
    count = fields.Integer()


class ConfigText(Schema):
    yaml = Text(required=True, metadata={"description": "config as code, secrets masked on the way out"})


class MappingRow(Schema):
    store = Text(allow_none=True, load_default=None, metadata={"description": "slug; null: every store"})
    source = Text(required=True, blank=False, validate=validate.Length(min=1, max=255))
    target = Text(required=True, blank=False, validate=validate.Length(min=1, max=255))


class MappingTable(Schema):
    rows = fields.List(fields.Nested(MappingRow), required=True)


def _object_or_text(value: Any) -> None:
    if not isinstance(value, (dict, str)):
        raise ValidationError("an order payload: a JSON object, or its JSON text")


class PreviewBody(Schema):
    store = Text(required=True)
    payload = fields.Raw(
        required=True,
        validate=_object_or_text,
        metadata={
            "description": "an order payload (object or JSON text)",
            "oneOf": [{"type": "object"}, {"type": "string"}],
        },
    )


class PreviewResult(Schema):
    canonical = fields.Dict(metadata={"description": "the canonical order"})
    erp_kind = fields.String()
    erp_document = fields.Dict(allow_none=True, metadata={"description": "what the ERP would be sent"})
    erp_error = fields.String(metadata={"description": "why the ERP document could not be built"})
    error = fields.String(metadata={"description": "why the payload does not map"})


class PushedStockLevel(Schema):
    sku = Text(required=True, validate=validate.Length(min=1, max=128))
    warehouse = Text(
        load_default="",
        validate=validate.Length(max=64),
        metadata={"description": "empty when the ERP has one warehouse"},
    )
    # An ERP's float noise (0.30000000000000004) means 0.3: rounded here to the column's 4 decimals, openly.
    on_hand = fields.Decimal(
        required=True,
        places=4,
        validate=validate.Range(min=-STOCK_LIMIT, max=STOCK_LIMIT),
        metadata={
            "description": "a number; negative when back-ordered; kept to 4 decimals",
            # documented as numbers (apispec would write Decimal bounds as text)
            "minimum": -STOCK_LIMIT,
            "maximum": STOCK_LIMIT,
        },
    )
    updated_at = UtcDateTime(
        required=True,
        default_timezone=UTC,
        metadata={"description": "when the ERP counted it (ISO-8601; no zone: UTC)"},
    )


class StockPushBody(Schema):
    levels = fields.List(fields.Nested(PushedStockLevel), required=True, validate=validate.Length(min=1, max=10_000))


class StockPushResult(Schema):
    levels = fields.Integer(metadata={"description": "levels received"})
    changed = fields.Integer(metadata={"description": "of which new or different from what we held"})
    queued = fields.List(
        fields.String(),
        metadata={"description": "stores whose sync was queued now (one already queued is not queued twice)"},
    )


class Session(Schema):
    email = fields.String()
    role = fields.String()
    csrf_token = fields.String(metadata={"description": "send it as X-CSRF-Token on state-changing calls"})


class HourBar(Schema):
    hour = fields.String(metadata={"description": "the hour's start, ISO-8601 UTC"})
    succeeded = fields.Integer()
    failed = fields.Integer()


class ErpSilence(Schema):
    since = fields.String(metadata={"description": "ISO-8601: the first call that got no answer"})
    last = fields.String(metadata={"description": "ISO-8601: the latest"})
    reason = fields.String()


class Dashboard(Schema):
    counts = fields.Dict(keys=fields.String(), values=fields.Integer(), metadata={"description": "events by status"})
    backlog = fields.Integer()
    oldest_pending_seconds = fields.Integer(allow_none=True)
    hourly = fields.List(fields.Nested(HourBar))
    erp_unreachable = fields.Nested(
        ErpSilence,
        allow_none=True,
        metadata={
            "description": "set while the ERP does not answer (timeouts, refused connections); null when it does"
        },
    )


class AuditRow(Schema):
    at = fields.String(metadata={"description": "ISO-8601"})
    actor = fields.String()
    action = fields.String()
    target = fields.String()
    detail = fields.Dict(allow_none=True)


class AuditPage(Schema):
    items = fields.List(fields.Nested(AuditRow))


class Error(Schema):
    """Every error the API answers (also the sign-in guard's 401 and 403)."""

    status = fields.Integer(required=True, metadata={"description": "the HTTP status code"})
    message = fields.String(required=True)
    errors = fields.Dict(metadata={"description": "by location and field, when the input was invalid"})


def _summary(event: InboxEvent, slug: str) -> dict:
    return {**{k: getattr(event, k) for k in EventSummary().fields if k != "store"}, "store": slug}


def _filter(args: dict) -> operations.EventFilter:
    return operations.EventFilter(**{k: args.get(k) for k in ("store", "topic", "status", "order", "since", "until")})


@bp.route("/session")
@bp.response(200, Session)
def session_info() -> dict:
    """Who is signed in, and the CSRF token to send as X-CSRF-Token on state-changing calls."""

    user = current_user()
    if user is None:  # the sign-in guard answered 401 before
        abort(401, message="sign in first")
    return {"email": user.email, "role": user.role, "csrf_token": csrf_token()}


# ---- events (support) -------------------------------------------------------------------------


@bp.route("/events")
class Events(MethodView):
    decorators = [requires("support")]

    @bp.arguments(PageQuery, location="query")
    @bp.response(200, EventPage)
    def get(self, args: dict) -> dict:
        """Events, newest first, filtered and paged."""
        rows, total = operations.list_events(rt(), _filter(args), args["page"], args["per_page"])
        return {
            "items": [_summary(e, s) for e, s in rows],
            "total": total,
            "page": args["page"],
            "per_page": args["per_page"],
        }


@bp.route("/events/<int:event_id>")
class EventResource(MethodView):
    decorators = [requires("support")]

    @bp.response(200, EventDetail)
    def get(self, event_id: int) -> dict:
        """One event: raw payload, canonical order, attempts and the order's timeline."""
        detail = operations.event_detail(rt(), event_id)
        if detail is None:
            abort(404, message=f"no event {event_id}")
        event = detail["event"]
        return {
            **_summary(event, detail["store"]),
            "headers": operations.shown_headers(event.headers),
            "payload": event.body.decode("utf-8", "replace"),
            "result": event.result,
            "attempt_rows": detail["attempts"],
            "timeline": [
                {
                    "id": t.id,
                    "topic": t.topic,
                    "status": t.status,
                    "received_at": t.received_at.isoformat(),
                    "error": t.last_error,
                }
                for t in detail["timeline"]
            ],
        }


@bp.route("/events/<int:event_id>/retry", methods=["POST"])
@requires("support")
@bp.response(200, Count)
def retry_event(event_id: int) -> dict:
    """Retry one failed, skipped or ignored event with a fresh attempt budget."""
    return {"count": operations.retry_events(rt(), [event_id], actor=actor())}


@bp.route("/events/<int:event_id>/confirm", methods=["POST"])
@requires("admin")
@bp.response(200, Count)
def confirm_event(event_id: int) -> dict:
    """Confirm a parked destructive request (shop/redact, app/uninstalled) the store's API could not confirm: it
    runs now."""
    if not operations.confirm_event(rt(), event_id, actor()):
        abort(409, message=f"event {event_id} is not a parked shop/redact or app/uninstalled request")
    return {"count": 1}


@bp.route("/events/<int:event_id>/skip", methods=["POST"])
@requires("support")
@bp.arguments(SkipBody)
@bp.response(200, Count)
def skip_event(body: dict, event_id: int) -> dict:
    """Mark an event skipped, with the reason (kept for the audit)."""
    try:
        return {"count": int(operations.skip_event(rt(), event_id, body["reason"], actor()))}
    except ValueError as exc:  # a blank or over-long reason
        abort(422, message=str(exc))


@bp.route("/events/retry", methods=["POST"])
@requires("support")
@bp.arguments(BulkRetryBody)
@bp.response(200, Count)
def bulk_retry(body: dict) -> dict:
    """Retry every failed/skipped/ignored event matching the filter, once its count is confirmed."""
    flt = _filter(body)
    matching = operations.count_events(rt(), flt)
    if matching != body["expected_count"]:
        abort(
            409,
            message=f"the filter now matches {matching} events, not {body['expected_count']}; "
            "look again and confirm the new count",
        )
    return {"count": operations.retry_events(rt(), flt=flt, actor=actor())}


@bp.route("/dashboard")
@requires("support")
@bp.response(200, Dashboard)
def dashboard_route() -> dict:
    """Events by status, backlog, oldest pending age, processed and failed per hour (24 h)."""
    return operations.dashboard(rt())


@bp.route("/audit")
@requires("support")
@bp.response(200, AuditPage)
def audit_log() -> dict:
    """The latest audited actions."""
    with rt().sessions() as session:
        rows = session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(200)).all()
    return {
        "items": [
            {"at": r.at.isoformat(), "actor": r.actor, "action": r.action, "target": r.target, "detail": r.detail}
            for r in rows
        ]
    }


# ---- stock pushed by the ERP (bearer token, see connector.web.auth.TOKEN_ENDPOINTS) ----------------


@bp.route("/stock", methods=["POST"])
@bp.arguments(StockPushBody)
@bp.response(200, StockPushResult)
def push_stock(body: dict) -> dict:
    """For an ERP that pushes its stock: levels into the mirror, then a sync of every active store.

    Authenticated with `Authorization: Bearer <push_token>` (the ERP connection's secret `push_token`),
    not a session. A level older than the one held is ignored."""

    levels = [StockLevel(x["sku"], x["warehouse"], x["on_hand"], x["updated_at"]) for x in body["levels"]]
    changed = upsert_levels(rt(), levels)
    queued = []
    with rt().sessions() as session:
        stores = session.execute(select(Store.id, Store.slug).where(Store.active.is_(True)).order_by(Store.id)).all()
    for store_id, slug in stores:
        if queue_inventory_sync(rt(), store_id):
            queued.append(slug)
    return {"levels": len(levels), "changed": changed, "queued": queued}


# ---- configuration (admin) --------------------------------------------------------------------


@bp.route("/config")
class ConfigResource(MethodView):
    decorators = [requires("admin")]

    @bp.response(200, ConfigText)
    def get(self) -> dict:
        """Stores and the ERP connection as YAML, secrets masked."""
        return {"yaml": dump_config(rt())}

    @bp.arguments(ConfigText)
    @bp.response(200, Count)
    def put(self, body: dict) -> dict:
        """Create or update stores, the ERP and mapping tables from YAML (masked secrets keep their stored value;
        a mapping kind in the document replaces that table)."""
        try:
            counts = load_config(rt(), body["yaml"])
        except ConfigError as exc:
            abort(400, message=str(exc), errors=exc.messages if isinstance(exc.messages, dict) else None)
        audit(rt(), actor(), "config.load", "", counts)
        return {"count": counts["stores_created"] + counts["stores_updated"] + counts["erp"] + counts["mappings"]}


class ErasureBody(Schema):
    email = fields.String(load_default=None, validate=validate.Length(max=255))
    phone = fields.String(load_default=None, validate=validate.Length(max=64))
    account = fields.String(
        load_default=None, validate=validate.Length(max=64), metadata={"description": "the store's customer id"}
    )


class Note(Schema):
    note = fields.String()


@bp.route("/stores/<slug>/erasures", methods=["POST"])
@requires("admin")
@bp.arguments(ErasureBody)
@bp.response(200, Note)
def erase_customer(body: dict, slug: str) -> dict:
    """Erase what the connector holds about one customer of a store (WooCommerce's privacy eraser, for any
    store): stored webhooks redacted, customer links removed. The ERP's own records stay."""
    try:
        return compliance.erase_customer(rt(), slug, actor=actor(), **body)
    except LookupError as exc:
        abort(404, message=str(exc))
    except ValueError as exc:  # no field names anyone: a rule across fields the document cannot state
        abort(400, message=str(exc))


@bp.route("/mappings/<kind>")
class MappingResource(MethodView):
    decorators = [requires("admin")]

    @bp.response(200, MappingTable)
    def get(self, kind: str) -> dict:
        """One mapping table (sku, payment_method, shipping_method, tax, location, stock_priority)."""
        _check_kind(kind)
        with rt().sessions() as session:
            rows = session.execute(
                select(MappingEntry, Store.slug)
                .outerjoin(Store)
                .where(MappingEntry.kind == kind)
                .order_by(MappingEntry.source)
            ).all()
        return {"rows": [{"store": slug, "source": e.source, "target": e.target} for e, slug in rows]}

    @bp.arguments(MappingTable)
    @bp.response(200, Count)
    def put(self, body: dict, kind: str) -> dict:
        """Replace a mapping table."""
        _check_kind(kind)
        count = replace_mapping(rt(), kind, body["rows"])
        audit(rt(), actor(), "mapping.replace", kind, {"rows": count})
        return {"count": count}


def _check_kind(kind: str) -> None:
    if kind not in MAPPING_KINDS:
        abort(404, message=f"no mapping table {kind!r}; tables: {', '.join(MAPPING_KINDS)}")


@bp.route("/preview", methods=["POST"])
@requires("support")
@bp.arguments(PreviewBody)
@bp.response(200, PreviewResult)
def preview(body: dict) -> dict:
    """The canonical order and ERP document a payload would produce; nothing is written."""

    payload = body["payload"]
    if isinstance(payload, str):
        try:
            payload = loads_bounded(payload)
        except ValueError as exc:
            abort(400, message=f"payload is not valid JSON: {exc}")
        if not isinstance(payload, dict):
            abort(400, message="payload: a JSON object is expected (the order itself)")
    result = preview_order(rt(), body["store"], payload)
    if "error" in result and result.get("status") == 404:
        abort(404, message=result["error"])
    return result


def init_api(app: Any) -> Api:
    app.config.update(
        API_TITLE="Storefront connector",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api/v1",
        OPENAPI_JSON_PATH="openapi.json",
    )
    api = ConnectorApi(app)
    api.register_blueprint(bp)
    return api


class ConnectorApi(Api):
    """flask-smorest, with one error shape for every HTTP error the app answers (pages' 404s too)."""

    ERROR_SCHEMA = Error
    MESSAGES = {404: "no such page", 405: "method not allowed here", 500: "internal error; it has been logged"}

    def handle_http_exception(self, error: HTTPException) -> tuple[dict, int, dict]:
        data = getattr(error, "data", None) or {}
        code = error.code or 500
        message = data.get("message") or (
            error.description if error.description != type(error).description else self.MESSAGES.get(code, error.name)
        )
        errors = data.get("errors", data.get("messages"))
        if isinstance(errors, dict) and errors and "message" not in data:
            message = f"invalid input: {_first_problem(errors)}"
        payload: dict[str, Any] = {"status": code, "message": str(message)}
        if isinstance(errors, dict) and errors:
            payload["errors"] = errors
        headers = dict(data.get("headers") or {})
        if isinstance(error, MethodNotAllowed) and error.valid_methods:
            headers["Allow"] = ", ".join(error.valid_methods)
        return payload, code, headers


def _first_problem(errors: dict) -> str:
    """ "levels.0.on_hand: Must be …" from webargs' {"json": {"levels": {0: {"on_hand": [...]}}}}."""
    path: list[str] = []
    node: Any = errors
    while isinstance(node, dict) and node:
        key, node = next(iter(node.items()))
        if not path and key in ("json", "query", "form", "path", "headers", "cookies"):
            continue  # where, not what
        path.append(str(key))
    problem = node[0] if isinstance(node, list) and node else node
    more = " (and more, see errors)" if sum(1 for _ in _leaves(errors)) > 1 else ""
    return f"{'.'.join(path)}: {problem}{more}"


def _leaves(node: Any) -> Any:
    if isinstance(node, dict):
        for child in node.values():
            yield from _leaves(child)
    else:
        yield node


@bp.errorhandler(ValidationError)
def _validation(err: ValidationError) -> tuple[dict, int]:
    messages = err.messages if isinstance(err.messages, dict) else {"_schema": err.messages}
    return {"status": 400, "message": "invalid input", "errors": messages}, 400
