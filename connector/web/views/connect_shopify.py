"""/config/connect/shopify: install the store's Shopify app from a link (connector.setup.shopify_connect).

The callback is an admin page like the rest of /config: the browser coming back from Shopify carries
the admin's session, so a callback link sent to someone else, or forged, connects nothing. Every
refused callback is audited with its reason.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, redirect, render_template, request

from adapters.storefront import StorefrontError
from connector.base.audit import audit
from connector.base.headers import send_forms_to_stores
from connector.setup import shopify_connect
from connector.setup.shopify_connect import CallbackRefused
from connector.web.auth import actor, requires
from connector.web.views.common import rt
from platforms.shopify.webhooks import SCOPES

bp = Blueprint("connect_shopify", __name__, url_prefix="/config/connect/shopify")
FIELDS = ("slug", "shop", "client_id", "api_base_url")


@bp.before_request
@requires("admin")
def _admins_only() -> None:
    send_forms_to_stores()
    return None


@bp.route("", methods=["GET", "POST"])
def start() -> Any:
    values = {name: (request.form.get(name) or "").strip() for name in FIELDS}
    if request.method == "GET":
        return render_template("config/connect_shopify.html", values=values, error=None, scopes=SCOPES)
    try:
        address = shopify_connect.begin(
            rt(),
            values["slug"].lower(),
            values["shop"],
            values["client_id"],
            request.form.get("client_secret") or "",
            actor(),
            expiring=request.form.get("expiring") != "off",
            api_base_url=values["api_base_url"] or None,
        )
    except ValueError as exc:
        return render_template("config/connect_shopify.html", values=values, error=str(exc), scopes=SCOPES), 400
    audit(rt(), actor(), "store.connect_started", values["slug"], {"platform": "shopify", "shop": values["shop"]})
    return redirect(address)


@bp.get("/callback")
def callback() -> Any:
    params = dict(request.args.items())
    try:
        slug, outcome = shopify_connect.complete(rt(), params)
    except (CallbackRefused, StorefrontError) as exc:
        audit(
            rt(),
            actor(),
            "store.connect_refused",
            str(params.get("shop", ""))[:255],
            {"platform": "shopify", "reason": str(exc), "address": request.remote_addr},
        )
        return render_template("config/connect_shopify_done.html", slug=None, outcome=None, error=str(exc)), 400
    audit(
        rt(),
        f"{outcome['started_by']} (Shopify install)",
        "store.connect",
        slug,
        {"platform": "shopify", "scopes": outcome["scopes"], "missing_scopes": outcome["missing_scopes"]},
    )
    return render_template("config/connect_shopify_done.html", slug=slug, outcome=outcome, error=None)
