"""Accounts, sign-in, roles and CSRF: every page and API route needs a signed-in user, except the
webhooks (signed by the stores) and the health checks.

Roles: `admin` does everything; `support` uses the console only. Passwords are hashed with scrypt
(werkzeug). Sign-in is throttled per email and per client address. Sessions are Flask's signed
cookies (HttpOnly, SameSite=Lax, Secure behind https) carrying the user id and a session version
that a password change bumps. Every state-changing request carries the session's CSRF token, in a
form field or the X-CSRF-Token header.
"""
from __future__ import annotations

import functools
import hmac
import secrets
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from urllib.parse import urlparse

from flask import (Blueprint, Response, abort, current_app, g, jsonify, redirect, render_template, request,
                   session, url_for)
from sqlalchemy import select
from werkzeug.security import check_password_hash, generate_password_hash

from connector.clock import utcnow
from connector.models import AuditEntry, LoginFailure, User
from connector.runtime import Runtime

bp = Blueprint("auth", __name__)

ROLES = ("admin", "support")
# The stores' webhooks never reach this guard: connector.webhooks serves them in front of Flask.
PUBLIC_ENDPOINTS = {"auth.login", "healthz", "readyz", "static"}
# Machine endpoints authenticated by a bearer token instead of a session (no cookie, no CSRF): the
# endpoint -> the ERP connection secret that holds its token. A signed-in person without the token
# is refused too.
TOKEN_ENDPOINTS = {"api.push_stock": "push_token"}
UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
FAILURE_WINDOW = timedelta(minutes=15)
MAX_FAILURES = {"email": 5, "ip": 20}
MIN_PASSWORD = 10


class AccountError(ValueError):
    pass


# ---- accounts ---------------------------------------------------------------------------------


def add_user(rt: Runtime, email: str, password: str, role: str) -> User:
    email = email.strip().lower()
    if "@" not in email:
        raise AccountError("email: not an email address")
    if role not in ROLES:
        raise AccountError(f"role: must be one of {', '.join(ROLES)}")
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"password: at least {MIN_PASSWORD} characters")
    if password.strip().lower() == email:
        raise AccountError("password: must differ from the email")
    with rt.sessions.begin() as s:
        user = s.scalars(select(User).where(User.email == email)).first()
        if user is None:
            user = User(email=email, role=role, password_hash="", session_version=1)
            s.add(user)
        else:
            user.role, user.active = role, True
            user.session_version = (user.session_version or 1) + 1  # sign out its old sessions
        user.password_hash = generate_password_hash(password, method="scrypt")
    return user


def audit(rt: Runtime, actor: str, action: str, target: str = "", detail: dict | None = None) -> None:
    with rt.sessions.begin() as s:
        s.add(AuditEntry(actor=actor, action=action, target=target[:255], detail=detail))


def current_user() -> User | None:
    if "user" in g:
        return g.user
    g.user = None
    uid, version = session.get("uid"), session.get("ver")
    if uid is not None:
        rt: Runtime = current_app.extensions["connector.runtime"]
        with rt.sessions() as s:
            user = s.get(User, uid)
        if user is not None and user.active and user.session_version == version:
            g.user = user
    return g.user


def actor() -> str:
    user = current_user()
    return user.email if user else "anonymous"


# ---- CSRF -------------------------------------------------------------------------------------


def csrf_token() -> str:
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return session["csrf"]


def _csrf_ok() -> bool:
    expected = session.get("csrf")
    given = request.headers.get("X-CSRF-Token") or request.form.get("csrf_token") or ""
    return bool(expected) and hmac.compare_digest(expected.encode(), given.encode())


# ---- the guard --------------------------------------------------------------------------------


def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"


def guard() -> Response | None:
    """Runs before every request: default deny."""
    endpoint = request.endpoint or ""
    if endpoint in TOKEN_ENDPOINTS:
        return _bearer(TOKEN_ENDPOINTS[endpoint])
    if endpoint in PUBLIC_ENDPOINTS and endpoint != "auth.login":
        return None
    if request.method in UNSAFE_METHODS and not _csrf_ok():
        return _refuse(403, "missing or wrong CSRF token: reload the page and try again")
    if endpoint == "auth.login":
        return None
    if current_user() is None:
        if _wants_json():
            return _refuse(401, "sign in first")
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
    return None


def _bearer(secret_name: str) -> Response | None:
    """401 unless `Authorization: Bearer <token>` matches the ERP connection's secret (constant time)."""
    from connector.models import ErpConnection

    rt: Runtime = current_app.extensions["connector.runtime"]
    with rt.sessions() as s:
        conn = s.scalars(select(ErpConnection).where(ErpConnection.name == "default")).first()
        expected = rt.box.open(conn.secrets).get(secret_name, "") if conn is not None else ""
    scheme, _, given = (request.headers.get("Authorization") or "").partition(" ")
    if not expected:
        response = _refuse(401, f"no {secret_name} is configured for the ERP connection; set erp.{secret_name}")
    elif scheme.lower() != "bearer" or not hmac.compare_digest(expected.encode(), given.strip().encode()):
        response = _refuse(401, "missing or wrong bearer token")
    else:
        return None
    response.headers["WWW-Authenticate"] = 'Bearer realm="connector"'
    return response


def _refuse(status: int, message: str) -> Response:
    if _wants_json():
        response = jsonify(status=status, message=message)
        response.status_code = status
        return response
    return Response(render_template("error.html", status=status, message=message), status)


def requires(role: str) -> Callable:
    """Limit a view to a role (admin passes every check)."""

    def wrap(view: Callable) -> Callable:
        @functools.wraps(view)
        def checked(*args: Any, **kwargs: Any) -> Any:
            user = current_user()
            if user is None:
                abort(401)
            if user.role != "admin" and user.role != role:
                return _refuse(403, f"this needs the {role} role; ask an admin")
            return view(*args, **kwargs)

        return checked

    return wrap


# ---- sign-in and out --------------------------------------------------------------------------


def _throttled(rt: Runtime, keys: dict[str, str]) -> int:
    """Minutes to wait when any key has too many recent failures, else 0."""
    now = utcnow()
    with rt.sessions() as s:
        for kind, key in keys.items():
            row = s.get(LoginFailure, key)
            if row and row.window_start > now - FAILURE_WINDOW and row.count >= MAX_FAILURES[kind]:
                return int((row.window_start + FAILURE_WINDOW - now).total_seconds() // 60) + 1
    return 0


def _record_failure(rt: Runtime, keys: dict[str, str]) -> None:
    now = utcnow()
    with rt.sessions.begin() as s:
        for key in keys.values():
            row = s.get(LoginFailure, key)
            if row is None:
                s.add(LoginFailure(key=key, count=1, window_start=now))
            elif row.window_start <= now - FAILURE_WINDOW:
                row.count, row.window_start = 1, now
            else:
                row.count += 1


def _safe_next(target: str | None) -> str:
    if not target or not target.startswith("/") or target.startswith("//") or urlparse(target).netloc:
        return "/"
    return target


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    rt: Runtime = current_app.extensions["connector.runtime"]
    if request.method == "GET":
        return render_template("login.html", next=_safe_next(request.args.get("next")), error=None)
    email = (request.form.get("email") or "").strip().lower()
    keys = {"email": f"email:{email}", "ip": f"ip:{request.remote_addr}"}
    wait = _throttled(rt, keys)
    if wait:
        return render_template("login.html", next=_safe_next(request.form.get("next")),
                               error=f"Too many failed sign-ins. Try again in {wait} minute(s)."), 429
    with rt.sessions() as s:
        user = s.scalars(select(User).where(User.email == email)).first()
    password = request.form.get("password") or ""
    if user is None or not user.active or not check_password_hash(user.password_hash, password):
        _record_failure(rt, keys)
        return render_template("login.html", next=_safe_next(request.form.get("next")),
                               error="Wrong email or password."), 401
    with rt.sessions.begin() as s:
        s.get(User, user.id).last_login_at = utcnow()
        s.query(LoginFailure).filter(LoginFailure.key == keys["email"]).delete()
    session.clear()
    session.permanent = True
    session.update(uid=user.id, ver=user.session_version, csrf=secrets.token_urlsafe(32))
    audit(rt, user.email, "login")
    default = "/config" if user.role == "admin" else "/console"
    target = _safe_next(request.form.get("next"))
    return redirect(default if target == "/" else target)


@bp.post("/logout")
def logout() -> Response:
    session.clear()
    return redirect(url_for("auth.login"))
