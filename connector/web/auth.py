"""Accounts, sign-in, roles and CSRF: every page and API route needs a signed-in user, except the
webhooks (signed by the stores) and the health checks.

Roles: `admin` does everything; `support` uses the console only. Passwords are hashed with scrypt
(werkzeug); an unknown email costs the same hash check, so timing does not tell which accounts exist.

Sign-in is throttled, never locked: attempts are counted per account *and client address* (5 in 15
minutes), per address (20) and per account from browsers that have never signed in to it (30). The
owner's own browser carries a signed device cookie, so a stranger hammering the account from many
addresses slows only strangers. Each attempt is counted before its password is checked, in one
atomic statement, so concurrent tries cannot slip past the limit; a success takes its count back.
The client address is the TCP peer: X-Forwarded-For counts only from proxies named in
FORWARDED_ALLOW_IPS (see `connector web`).

Sessions are Flask's signed cookies (HttpOnly, SameSite=Lax, Secure behind https) naming a row of
user_sessions: signing out deletes it, and a password change deletes all of the user's, so a copied
cookie dies with its session. Every state-changing request carries the session's CSRF token, in a
form field or the X-CSRF-Token header.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from urllib.parse import urlparse

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from itsdangerous import BadData, URLSafeTimedSerializer
from sqlalchemy import case, delete, select, update
from werkzeug.security import check_password_hash, generate_password_hash
from werkzeug.wrappers import Response as BaseResponse  # what redirect() returns; flask's Response is one

from adapters.clock import utcnow
from connector.base.audit import audit
from connector.base.models import ErpConnection, LoginFailure, User, UserSession
from connector.base.runtime import Runtime
from connector.base.sign_ins import FAILURE_WINDOW
from connector.base.upsert import dialect_insert

bp = Blueprint("auth", __name__)

ROLES = ("admin", "support", "approver")  # an approver is support who may also approve held orders
# The stores' webhooks never reach this guard: connector.intake.webhooks serves them in front of Flask. The
# WooCommerce key callback does: the store's server calls it, and its one-time id is its check.
PUBLIC_ENDPOINTS = {"auth.login", "healthz", "readyz", "static", "favicon", "connect.woo_callback"}
# Machine endpoints authenticated by a bearer token instead of a session (no cookie, no CSRF): the
# endpoint -> the ERP connection secret that holds its token. A signed-in person without the token
# is refused too.
TOKEN_ENDPOINTS = {"api.push_stock": "push_token"}
UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
MAX_ATTEMPTS = {"pair": 5, "ip": 20, "account": 30}
MIN_PASSWORD = 10
SESSION_LIFETIME = timedelta(hours=12)
DEVICE_COOKIE = "connector_device"
DEVICE_LIFETIME = timedelta(days=180)


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
            s.execute(delete(UserSession).where(UserSession.user_id == user.id))
        user.password_hash = generate_password_hash(password, method="scrypt")
    return user


def current_user() -> User | None:
    if "user" in g:
        return g.user
    g.user = None
    uid, version, sid = session.get("uid"), session.get("ver"), session.get("sid")
    if uid is not None and isinstance(sid, str):
        rt: Runtime = current_app.extensions["connector.runtime"]
        with rt.sessions() as s:
            user = s.scalars(
                select(User)
                .join(UserSession, UserSession.user_id == User.id)
                .where(User.id == uid, UserSession.id == _digest(sid), UserSession.expires_at > utcnow())
            ).first()
        if user is not None and user.active and user.session_version == version:
            g.user = user
    return g.user


def _digest(token: str) -> str:
    # the table holds digests: a copy of it names no cookie that would work
    return hashlib.sha256(token.encode()).hexdigest()


def _start_session(rt: Runtime, user: User) -> None:
    sid = secrets.token_urlsafe(32)
    now = utcnow()
    with rt.sessions.begin() as s:
        s.get_one(User, user.id).last_login_at = now
        s.execute(delete(UserSession).where(UserSession.expires_at <= now))  # the expired ones go as others come
        s.add(UserSession(id=_digest(sid), user_id=user.id, created_at=now, expires_at=now + SESSION_LIFETIME))
    session.clear()
    session.permanent = True
    session.update(uid=user.id, ver=user.session_version, sid=sid, csrf=secrets.token_urlsafe(32))


def _end_session(rt: Runtime) -> None:
    sid = session.get("sid")
    if isinstance(sid, str):
        with rt.sessions.begin() as s:
            s.execute(delete(UserSession).where(UserSession.id == _digest(sid)))
    session.clear()


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
    if not expected:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())


# ---- the guard --------------------------------------------------------------------------------


def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"


def guard() -> BaseResponse | None:
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


def requires(*roles: str) -> Callable:
    """Limit a view to these roles (admin passes every check)."""

    def wrap(view: Callable) -> Callable:
        @functools.wraps(view)
        def checked(*args: Any, **kwargs: Any) -> Any:
            user = current_user()
            if user is None:
                abort(401)
            if user.role != "admin" and user.role not in roles:
                return _refuse(403, f"this needs the {' or '.join(roles)} role; ask an admin")
            return view(*args, **kwargs)

        return checked

    return wrap


# ---- sign-in and out --------------------------------------------------------------------------


def _take_attempt(rt: Runtime, keys: dict[str, str]) -> int:
    """Count this attempt under each key (atomically: concurrent tries each see their own count) and
    return the minutes to wait when any key is over its limit, else 0."""
    now = utcnow()
    fresh = LoginFailure.window_start <= now - FAILURE_WINDOW  # the stored window is over: start anew
    wait = 0
    with rt.sessions.begin() as s:
        for kind, key in keys.items():
            stmt = dialect_insert(s, LoginFailure.__table__).values(key=key, count=1, window_start=now)
            stmt = stmt.on_conflict_do_update(
                index_elements=["key"],
                set_={
                    "count": case((fresh, 1), else_=LoginFailure.count + 1),
                    "window_start": case((fresh, now), else_=LoginFailure.window_start),
                },
            ).returning(LoginFailure.count, LoginFailure.window_start)
            count, started = s.execute(stmt).one()
            if count > MAX_ATTEMPTS[kind]:
                wait = max(wait, int((started + FAILURE_WINDOW - now).total_seconds() // 60) + 1)
    return wait


def _give_back(rt: Runtime, keys: dict[str, str]) -> None:
    """A successful sign-in was no failure: its attempt is taken back (and the account's own count
    from this address is cleared)."""
    with rt.sessions.begin() as s:
        s.execute(delete(LoginFailure).where(LoginFailure.key == keys["pair"]))
        s.execute(
            update(LoginFailure)
            .where(LoginFailure.key.in_([k for n, k in keys.items() if n != "pair"]), LoginFailure.count > 0)
            .values(count=LoginFailure.count - 1)
        )


@functools.cache
def _decoy_hash() -> str:
    """A hash to check unknown emails against: the same scrypt work as for a real account."""
    return generate_password_hash(secrets.token_urlsafe(16), method="scrypt")


def _device_signer() -> URLSafeTimedSerializer:
    key = current_app.secret_key
    if key is None:  # create_app always sets SECRET_KEY (a development default when unset)
        raise RuntimeError("the app has no SECRET_KEY")
    return URLSafeTimedSerializer(key, salt="connector-device")


def _device_emails() -> list[str]:
    """The accounts this browser has signed in to (its signed device cookie), newest last."""
    try:
        emails = _device_signer().loads(
            request.cookies.get(DEVICE_COOKIE, ""), max_age=int(DEVICE_LIFETIME.total_seconds())
        )
    except BadData:
        return []
    return [e for e in emails if isinstance(e, str)] if isinstance(emails, list) else []


def _known_device(email: str) -> bool:
    return email in _device_emails()


def _remember_device(response: BaseResponse, email: str) -> BaseResponse:
    emails = [e for e in _device_emails() if e != email][-4:]
    response.set_cookie(
        DEVICE_COOKIE,
        _device_signer().dumps([*emails, email]),
        max_age=int(DEVICE_LIFETIME.total_seconds()),
        httponly=True,
        samesite="Lax",
        secure=current_app.config["SESSION_COOKIE_SECURE"],
        path="/login",
    )
    return response


def _safe_next(target: str | None) -> str:
    if not target or not target.startswith("/") or target.startswith("//") or urlparse(target).netloc:
        return "/"
    return target


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    rt: Runtime = current_app.extensions["connector.runtime"]
    if request.method == "GET":
        return render_template("login.html", next=_safe_next(request.args.get("next")), error=None, email="")
    email = (request.form.get("email") or "").strip().lower()[:255]
    address = request.remote_addr or "unknown"
    keys = {"pair": f"pair:{email}|{address}", "ip": f"ip:{address}"}
    if not _known_device(email):
        keys["account"] = f"account:{email}"
    wait = _take_attempt(rt, keys)
    if wait:
        return render_template(
            "login.html",
            next=_safe_next(request.form.get("next")),
            error=f"Too many sign-in attempts. Try again in {wait} minute{'' if wait == 1 else 's'}.",
            email=email,
        ), 429
    with rt.sessions() as s:
        user = s.scalars(select(User).where(User.email == email)).first()
    password = request.form.get("password") or ""
    matches = check_password_hash(user.password_hash if user is not None else _decoy_hash(), password)
    if user is None or not user.active or not matches:
        # For the admins' audit log (the person is told only "wrong email or password"); never the password.
        why = "no such user" if user is None else "account disabled" if not user.active else "wrong password"
        audit(rt, email or "(no email)", "login.failed", "", {"from": address, "why": why})
        return render_template(
            "login.html", next=_safe_next(request.form.get("next")), error="Wrong email or password.", email=email
        ), 401
    _give_back(rt, keys)
    _start_session(rt, user)
    audit(rt, user.email, "login")
    default = "/config" if user.role == "admin" else "/console"
    target = _safe_next(request.form.get("next"))
    return _remember_device(redirect(default if target == "/" else target), user.email)


@bp.post("/logout")
def logout() -> BaseResponse:
    _end_session(current_app.extensions["connector.runtime"])
    return redirect(url_for("auth.login"))
