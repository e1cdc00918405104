"""A small JSON-RPC client for Tryton (trytond 8.x), with `requests` and no Tryton library.

- `POST <url>/<database>/rpc/` with `{"id", "method", "params"}`; params end with the context.
- Login: `common.db.login` with `[username, {"password": ...}]` answers `[user_id, session, ...]`;
  later calls send `Authorization: Session base64("<username>:<user_id>:<session>")`. Sessions
  expire after a few idle minutes: a 401 logs in again once and repeats the call.
- The user's preferences (`model.res.user.get_preferences`) are the context of every call: without
  the company in it a sale cannot be quoted.
- Decimal, date, datetime, time, timedelta and bytes travel as `{"__class__": ..., ...}` objects.

Failures become the contract's errors: anything a retry may fix (refused connection, timeout, 5xx,
a locked database, Tryton's ConcurrencyException) is RetryableErpError; what a person must change
(a UserError raised by Tryton's own validation, a refused login, a missing database) is
PermanentErpError with Tryton's message.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import threading
from decimal import Decimal
from typing import Any

import requests

from adapters.erp.base import ErpUnreachable, PermanentErpError, RetryableErpError

_TRANSIENT_WORDS = (
    "database is locked",
    "locked",
    "timeout",
    "timed out",
    "could not serialize",
    "deadlock",
    "operationalerror",
)


def _encode(obj: Any) -> Any:
    if isinstance(obj, Decimal):
        return {"__class__": "Decimal", "decimal": str(obj)}
    if isinstance(obj, dt.datetime):
        if obj.tzinfo is not None:  # Tryton stores naive UTC timestamps
            obj = obj.astimezone(dt.UTC).replace(tzinfo=None)
        return {
            "__class__": "datetime",
            "year": obj.year,
            "month": obj.month,
            "day": obj.day,
            "hour": obj.hour,
            "minute": obj.minute,
            "second": obj.second,
            "microsecond": obj.microsecond,
        }
    if isinstance(obj, dt.date):
        return {"__class__": "date", "year": obj.year, "month": obj.month, "day": obj.day}
    if isinstance(obj, dt.time):
        return {
            "__class__": "time",
            "hour": obj.hour,
            "minute": obj.minute,
            "second": obj.second,
            "microsecond": obj.microsecond,
        }
    if isinstance(obj, dt.timedelta):
        return {"__class__": "timedelta", "seconds": obj.total_seconds()}
    if isinstance(obj, (bytes, bytearray)):
        return {"__class__": "bytes", "base64": base64.encodebytes(bytes(obj)).decode()}
    if isinstance(obj, (set, frozenset)):
        return list(obj)
    raise TypeError(f"{type(obj).__name__} cannot be sent to Tryton")


def _decode(dct: dict) -> Any:
    kind = dct.get("__class__")
    if kind == "Decimal":
        return Decimal(dct["decimal"])
    if kind == "datetime":
        return dt.datetime(
            dct["year"], dct["month"], dct["day"], dct["hour"], dct["minute"], dct["second"], dct["microsecond"]
        )
    if kind == "date":
        return dt.date(dct["year"], dct["month"], dct["day"])
    if kind == "time":
        return dt.time(dct["hour"], dct["minute"], dct["second"], dct["microsecond"])
    if kind == "timedelta":
        return dt.timedelta(seconds=dct["seconds"])
    if kind == "bytes":
        return base64.decodebytes(dct["base64"].encode())
    return dct


class TrytonUserError(PermanentErpError):
    """Tryton refused the call with a UserError/UserWarning: its message is in the exception text."""

    def __init__(self, message: str, tryton_message: str):
        super().__init__(message)
        self.tryton_message = tryton_message


class TrytonRpc:
    """One logged-in user on one database. Thread-safe enough: calls share a requests.Session."""

    def __init__(
        self,
        url: str,
        database: str,
        username: str,
        password: str,
        connect_timeout: float = 5,
        read_timeout: float = 60,
    ):
        if not url or not database or not username or not password:
            raise PermanentErpError(
                "the tryton ERP connection needs url, database, username and password: "
                "set erp.url, erp.database, erp.username and the erp.password secret"
            )
        self.url = url.rstrip("/")
        self.database = database
        self.username = username
        self._password = password
        self.timeout = (connect_timeout, read_timeout)
        self._http = requests.Session()
        self._auth: str | None = None
        self._context: dict | None = None
        self._lock = threading.Lock()
        self._ids = 0

    # ---- public -------------------------------------------------------------------------------

    @property
    def context(self) -> dict:
        if self._context is None:
            self.login()
        assert self._context is not None
        return self._context

    def login(self) -> None:
        result = self._post(
            "common.db.login", [self.username, {"password": self._password}], auth=False, action="log in"
        )
        if not isinstance(result, list) or len(result) < 2:
            raise PermanentErpError(
                f"Tryton answered the login of {self.username!r} with {result!r}; "
                "check the url points at a Tryton server"
            )
        user_id, session = result[0], result[1]
        token = base64.b64encode(f"{self.username}:{user_id}:{session}".encode()).decode()
        with self._lock:
            self._auth = f"Session {token}"
        preferences = self._post("model.res.user.get_preferences", [True, {}], action="read the user preferences")
        with self._lock:
            self._context = dict(preferences)

    def call(self, model: str, method: str, *args: Any, context: dict | None = None, action: str = "") -> Any:
        """`model.<model>.<method>(*args, context)` with the user's preferences as context."""
        ctx = dict(self.context)
        if context:
            ctx.update(context)
        return self._call(f"model.{model}.{method}", [*args, ctx], action or f"call {model}.{method}")

    def wizard(
        self, name: str, state: str, data: dict, active_model: str, active_ids: list[int], action: str = ""
    ) -> Any:
        """Run one wizard transition the way the client does: create, execute(state), delete."""
        ctx = dict(self.context, active_model=active_model, active_id=active_ids[0], active_ids=active_ids)
        what = action or f"run the {name} wizard"
        session_id, _start, _end = self._call(f"wizard.{name}.create", [ctx], what)
        try:
            return self._call(f"wizard.{name}.execute", [session_id, data, state, ctx], what)
        finally:
            try:
                self._call(f"wizard.{name}.delete", [session_id, ctx], what)
            except RetryableErpError:
                pass

    def server_version(self) -> str:
        return str(self._post("common.server.version", [], auth=False, action="reach the server", path="/rpc/"))

    def close(self) -> None:
        self._http.close()

    # ---- internals ----------------------------------------------------------------------------

    def _call(self, method: str, params: list, action: str) -> Any:
        if self._auth is None:
            self.login()
        try:
            return self._post(method, params, action=action)
        except _SessionExpired:
            self.login()
            return self._post(method, params, action=action)

    def _post(self, method: str, params: list, action: str, auth: bool = True, path: str | None = None) -> Any:
        with self._lock:
            self._ids += 1
            request_id = self._ids
            headers = {"Content-Type": "application/json"}
            if auth and self._auth:
                headers["Authorization"] = self._auth
        body = json.dumps({"id": request_id, "method": method, "params": params}, default=_encode)
        where = f"{self.url}{path or f'/{self.database}/rpc/'}"
        try:
            response = self._http.post(where, data=body.encode(), headers=headers, timeout=self.timeout)
        except requests.ConnectTimeout as exc:
            raise ErpUnreachable(
                f"Tryton at {self.url} did not accept a connection within {self.timeout[0]:g}s "
                f"while trying to {action}; the connector will try again later"
            ) from exc
        except requests.Timeout as exc:
            raise ErpUnreachable(
                f"Tryton at {self.url} did not answer within {self.timeout[1]:g}s while trying to "
                f"{action}; the connector will try again later"
            ) from exc
        except requests.RequestException as exc:
            raise ErpUnreachable(
                f"Tryton at {self.url} is unreachable while trying to {action}: {_short(exc)}"
            ) from exc
        status = response.status_code
        if status == 401:
            if auth and method != "common.db.login":
                raise _SessionExpired()
            raise PermanentErpError(
                f"Tryton refused the login of user {self.username!r} on database "
                f"{self.database!r}: check erp.username and the erp.password secret"
            )
        if status == 403:
            raise PermanentErpError(
                f"Tryton forbids user {self.username!r} to {action} ({method}): give the "
                "user the access rights in Tryton (or fix the login), then retry"
            )
        if status == 404:
            raise PermanentErpError(
                f"Tryton at {self.url} has no database {self.database!r} (HTTP 404 while "
                f"trying to {action}): check erp.url and erp.database"
            )
        if status in (409, 423, 429) or status >= 500:
            raise RetryableErpError(f"Tryton answered HTTP {status} while trying to {action}: {_short(response.text)}")
        if status >= 400:
            raise PermanentErpError(f"Tryton answered HTTP {status} while trying to {action}: {_short(response.text)}")
        try:
            payload = json.loads(response.text, object_hook=_decode)
        except ValueError as exc:
            raise RetryableErpError(
                f"Tryton answered something that is not JSON while trying to {action}: {_short(response.text)}"
            ) from exc
        if isinstance(payload, dict) and payload.get("error") is not None:
            raise _error(payload["error"], action)
        return payload.get("result") if isinstance(payload, dict) else payload


class _SessionExpired(Exception):
    pass


def _short(value: object, limit: int = 300) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[:limit] + "…"


def _error(error: Any, action: str) -> Exception:
    """Turn the `error` member of a JSON-RPC answer into the contract's error."""
    if isinstance(error, list) and error and isinstance(error[0], str):
        kind, detail = error[0], error[1] if len(error) > 1 else ""
        if kind in ("UserError", "UserWarning") and isinstance(detail, list):
            parts = detail[1:] if kind == "UserWarning" else detail
            message = " ".join(str(p).strip() for p in parts[:2] if p and isinstance(p, str))
            return TrytonUserError(f"Tryton refused to {action}: {message}", message)
        if kind == "ConcurrencyException":
            return RetryableErpError(f"Tryton reports a concurrent change while trying to {action}: {_short(detail)}")
        if kind == "LoginException":
            return PermanentErpError(
                f"Tryton asks for more login details while trying to {action} "
                f"({_short(detail)}): use a user with a plain password"
            )
        text = kind  # a server-side exception: (str(exc), traceback)
        if any(word in text.lower() for word in _TRANSIENT_WORDS):
            return RetryableErpError(f"Tryton could not {action} for now: {_short(text)}")
        return PermanentErpError(
            f"Tryton failed while trying to {action}: {_short(text)} (an error inside Tryton: see the trytond log)"
        )
    return PermanentErpError(f"Tryton failed while trying to {action}: {_short(error)}")
