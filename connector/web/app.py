"""The Flask app factory: nothing is built at import time."""

from __future__ import annotations

import logging

from flask import Flask, Request, Response, jsonify, redirect, url_for
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from werkzeug.wrappers import Response as BaseResponse  # what redirect() returns

from connector.base import health
from connector.base.headers import install_headers
from connector.base.runtime import Runtime, install
from connector.base.settings import Settings
from connector.base.stores import StoreDirectory
from connector.base.waker import Waker
from connector.intake.inbox_writer import Inbox
from connector.intake.webhooks import WebhookReceiver
from connector.orders.drains import kick
from connector.web import auth, web_input
from connector.web.api import init_api
from connector.web.api_holds import bp as holds_api
from connector.web.views import register as register_pages

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> Flask:
    if runtime is None:
        runtime = Runtime.from_settings(settings or Settings.from_env())
    install(runtime)
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=runtime.settings.secret_key,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=runtime.settings.public_base_url.startswith("https://"),
        SESSION_COOKIE_NAME="connector_session",
        PERMANENT_SESSION_LIFETIME=auth.SESSION_LIFETIME,
        # Werkzeug enforces it while reading a body without Content-Length (chunked uploads).
        MAX_CONTENT_LENGTH=runtime.settings.webhook_max_bytes,
    )
    app.extensions["connector.runtime"] = runtime
    directory = app.extensions["connector.stores"] = StoreDirectory(runtime)
    waker = Waker(lambda store_id: _wake(runtime, store_id))
    app.extensions["connector.waker"] = waker
    writer = app.extensions["connector.inbox"] = Inbox(runtime.engine, waker.mark)
    # Flask documents replacing wsgi_app to add WSGI middleware; its types declare a method
    app.wsgi_app = WebhookReceiver(app.wsgi_app, runtime, directory, writer)  # type: ignore[method-assign]  # as documented
    app.session_interface = QuietSessionInterface()

    app.register_blueprint(auth.bp)

    init_api(app).register_blueprint(holds_api)

    register_pages(app)
    app.before_request(auth.guard)
    app.before_request(web_input.check_request)  # after the sign-in guard: a stranger still gets 401
    app.register_error_handler(web_input.BadInput, web_input.refusal)
    app.jinja_env.globals.update(csrf_token=auth.csrf_token, current_user=auth.current_user)
    install_headers(app)

    @app.get("/")
    def home() -> BaseResponse:
        user = auth.current_user()
        return redirect("/config" if user is not None and user.role == "admin" else "/console")

    @app.get("/favicon.ico")
    def favicon() -> BaseResponse:  # browsers ask for it on every site, whatever the page links
        return redirect(url_for("static", filename="favicon.svg"), 301)

    @app.get("/healthz")
    def healthz() -> Response:
        return jsonify(health.LIVE)

    @app.get("/readyz")
    def readyz() -> tuple[Response, int]:
        document, status = health.readiness(runtime)
        return jsonify(document), status

    return app


def _wake(rt: Runtime, store_id: int) -> None:

    kick(rt, store_id)


class QuietSessionInterface(SecureCookieSessionInterface):
    """No session for the health checks: they never sign in (the webhooks never reach Flask)."""

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if request.path.startswith(("/healthz", "/readyz")):
            return self.null_session_class()
        return super().open_session(app, request)
