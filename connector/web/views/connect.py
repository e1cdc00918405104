"""Connecting a store by the platform's own approval: the admin's form and return page on /config, and
the public callback the store's server calls (connector.setup.woo_connect holds the logic)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, g, jsonify, redirect, render_template, request, url_for
from werkzeug.exceptions import RequestEntityTooLarge

from connector.base import connections
from connector.base.headers import send_forms_to_stores
from connector.setup import woo_connect
from connector.web.auth import actor, requires
from connector.web.views.common import rt
from connector.web.web_input import TooDeep, loads_bounded

bp = Blueprint("connect", __name__)
CALLBACK_ENDPOINT = "connect.woo_callback"


def _json(status: int, message: str, **extra: Any) -> Response:
    response = jsonify(status=status, message=message, **extra)
    response.status_code = status
    return response


@bp.before_app_request
def _bound_callback() -> Response | None:
    """Runs before the guard and the input checks (which would read a body up to the webhooks' limit and
    answer a deep one with an HTML page): the callback's body is bounded and parsed here."""
    if request.endpoint != CALLBACK_ENDPOINT:
        return None
    too_big = _json(413, f"the callback body is limited to {woo_connect.MAX_CALLBACK_BYTES} bytes")
    if (request.content_length or 0) > woo_connect.MAX_CALLBACK_BYTES:
        return too_big
    request.max_content_length = woo_connect.MAX_CALLBACK_BYTES  # a chunked body stops there too
    try:
        g.callback_body = loads_bounded(request.get_data(cache=True))
    except RequestEntityTooLarge:
        return too_big
    except TooDeep as exc:
        woo_connect.refused(rt(), f"the callback body is {exc}", request.remote_addr or "")
        return _json(400, f"the callback body is {exc}")
    except ValueError:  # not JSON: complete() refuses it, audited like any other
        g.callback_body = None
    return None


@bp.post(woo_connect.CALLBACK_PATH)
def woo_callback() -> Response:
    """The store's server with the new key; public (no session, no CSRF): the one-time id is the check."""
    try:
        connected = woo_connect.complete(rt(), g.get("callback_body"), request.remote_addr or "")
    except connections.ConnectionRefused as exc:
        return _json(400, str(exc))
    # 200 exactly, even when the webhooks failed: WooCommerce deletes the key on anything else.
    return _json(200, f"store {connected.slug} connected", webhooks_registered=connected.webhook_error is None)


# ---- the admin's side ---------------------------------------------------------------------------


def _form(values: dict, errors: dict, status: int = 200) -> tuple[str, int]:
    send_forms_to_stores()  # the form's answer sends the browser to the store's approval page
    return render_template(
        "config/connect.html",
        values=values,
        errors=errors,
        result=None,
        callback=woo_connect.callback_url(rt()),
        scope=woo_connect.SCOPE,
    ), status


@bp.get("/config/connect/woocommerce")
@requires("admin")
def woo_form() -> Any:
    return _form({"slug": request.args.get("slug", ""), "url": request.args.get("url", "")}, {})


@bp.post("/config/connect/woocommerce")
@requires("admin")
def woo_start() -> Any:
    values = {"slug": request.form.get("slug", ""), "url": request.form.get("url", "")}
    try:
        approval = woo_connect.begin(rt(), values["slug"], values["url"], actor())
    except woo_connect.ConnectError as exc:
        return _form(values, exc.errors, 400)
    return redirect(approval)


@bp.get(woo_connect.RETURN_PATH)
@requires("admin")
def woo_return() -> Any:
    """Where the store sends the merchant's browser: after our callback answered (success=1) or on deny."""
    found = connections.outcome_of(rt(), "woocommerce", request.args.get("user_id"))
    approved = request.args.get("success") == "1"
    if found is None:
        status, state = 404, "unknown"
    elif not approved:
        status, state = 200, "denied"
    elif found.get("outcome"):
        status, state = 200, "connected"
    else:  # WooCommerce redirects only after our callback answered 200: it never arrived
        status, state = 200, "missing"
    send_forms_to_stores()  # the page's form starts a connection again
    return render_template(
        "config/connect.html",
        values={},
        errors={},
        result={"state": state, **(found or {})},
        callback=woo_connect.callback_url(rt()),
        scope=woo_connect.SCOPE,
        store_url=url_for("config.store_page", slug=found["store_slug"]) if found else None,
    ), status
