"""The two pages people use: /config (admins: stores, ERP, mapping tables, sync rules, preview) and
/console (support and admins: dashboard, events, retries, skips, approvals, attribution, audit).
Server-rendered Flask and Jinja; the guard in connector.web.auth signs people in and checks CSRF before any
of this runs.
"""

from __future__ import annotations

from flask import Flask

from connector.base.logredact import install_log_redaction
from connector.web.views import common
from connector.web.views.approvals import bp as approvals_bp
from connector.web.views.attribution import bp as attribution_bp
from connector.web.views.config import bp as config_bp
from connector.web.views.connect import bp as connect_bp
from connector.web.views.connect_shopify import bp as connect_shopify_bp
from connector.web.views.console import bp as console_bp
from connector.web.views.customer_matches import bp as customers_bp
from mappings.canonical import FEE_LABELS


def register(app: Flask) -> None:

    app.register_blueprint(config_bp)
    app.register_blueprint(connect_shopify_bp)
    app.register_blueprint(console_bp)
    app.register_blueprint(approvals_bp)
    app.register_blueprint(customers_bp)
    app.register_blueprint(attribution_bp)
    app.register_blueprint(connect_bp)  # its body limit runs before the guard: registered before it
    app.jinja_env.filters.update(
        when=common.when,
        ago=common.ago,
        duration=common.duration,
        money=common.money,
        pretty=common.pretty_json,
        config_links=common.config_links,
        detail_pairs=common.detail_pairs,
    )
    app.jinja_env.globals["fee_labels"] = FEE_LABELS
    install_log_redaction()
