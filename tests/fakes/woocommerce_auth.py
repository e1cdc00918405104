"""The fake WooCommerce's key approval, `/wc-auth/v1/...`, as woocommerce/woocommerce
`includes/class-wc-auth.php` does it:

- GET `authorize` needs `app_name`, `scope` (read, write or read_write), `user_id`, `return_url` and
  `callback_url`; a missing one, a bad scope or URL, or a `callback_url` that is not https answers 401
  "Error: …" (the fake lets http through for localhost/127.0.0.1: tests run there). The merchant is taken
  as signed in to WordPress (the real store first sends them to its login page). It shows the approval
  page: Approve and Deny, each a form posting to the fake itself with a one-time nonce.
- Approve (`access_granted`) creates a key `ck_`/`cs_` + 40 hex with the scope as its permissions, POSTs
  `{"key_id", "user_id", "consumer_key", "consumer_secret", "key_permissions"}` as JSON to `callback_url`
  (timeout 60 s), and only when that answers exactly 200 redirects the browser to `return_url` with
  `success=1&user_id=…`; anything else deletes the key and answers 401 "Error: An error occurred in the
  request and at the time were unable to send the consumer data."
- Deny (`access_denied`) redirects to `return_url` with `success=0&user_id=…` (the real page links there).
Differences (unverified or simplified): the real approve control is a GET link carrying `wc_auth_nonce`,
and the real callback POST follows redirects (WordPress's default); the fake posts without following.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from collections.abc import Callable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import requests
from flask import Flask, Response, redirect, request
from markupsafe import escape

from tests.fakes.woocommerce_webhooks import php_json

REQUIRED = ("app_name", "scope", "user_id", "return_url", "callback_url")
SCOPES = ("read", "write", "read_write")
LOCAL_HOSTS = ("localhost", "127.0.0.1")


class AuthError(Exception):
    pass


def _with_query(url: str, **params: str) -> str:
    """add_query_arg(): the return_url keeps its own query and gains ours."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in params]
    return urlunsplit(parts._replace(query=urlencode([*query, *params.items()])))


def _rand_hash() -> str:
    return hashlib.sha1(secrets.token_bytes(32)).hexdigest()  # wc_rand_hash()


class KeyApproval:
    """Adds the wc-auth routes to `app`; issued keys go into `keys` (consumer key -> secret) and
    `permissions` (consumer key -> read, write or read_write), which the REST API checks."""

    def __init__(self, app: Flask, keys: dict[str, str], permissions: dict[str, str], lock: threading.RLock):
        self.keys, self.permissions, self._lock = keys, permissions, lock
        self.callbacks: list[dict] = []  # each callback POST: url, user_id, key_id, status (no secret)
        self._nonces: set[str] = set()
        self._key_ids = 0
        routes: list[tuple[str, str, Callable[[], Response]]] = [
            ("authorize", "GET", self._authorize),
            ("access_granted", "POST", self._granted),
            ("access_denied", "POST", self._denied),
        ]
        for route, method, view in routes:
            app.add_url_rule(
                f"/wc-auth/v1/{route}", endpoint=f"wc-auth {route}", view_func=self._wp_die(view), methods=[method]
            )

    @staticmethod
    def _wp_die(view: Callable[[], Response]) -> Callable[[], Response]:
        def wrapped() -> Response:
            try:
                return view()
            except AuthError as exc:  # wp_die( 'Error: …' ) with response 401
                return Response(f"<p>Error: {escape(str(exc))}.</p>", status=401, mimetype="text/html")

        wrapped.__name__ = view.__name__
        return wrapped

    @staticmethod
    def _params() -> dict[str, str]:
        given = request.values
        for name in REQUIRED:
            if not given.get(name):
                raise AuthError(f"Missing parameter {name}")
        params = {name: given[name] for name in REQUIRED}
        if params["scope"] not in SCOPES:
            raise AuthError(f"Invalid scope {params['scope']}")
        for name in ("return_url", "callback_url"):
            parts = urlsplit(params[name])
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise AuthError(f"The {params[name]} is not a valid URL")
        callback = urlsplit(params["callback_url"])
        if callback.scheme != "https" and callback.hostname not in LOCAL_HOSTS:
            raise AuthError("The callback_url needs to be over SSL")
        return params

    def _authorize(self) -> Response:
        params = self._params()
        nonce = secrets.token_hex(8)
        with self._lock:
            self._nonces.add(nonce)
        hidden = "".join(f'<input type="hidden" name="{k}" value="{escape(v)}">' for k, v in params.items())
        html = (
            f"<!doctype html><title>Connect</title><h1>{escape(params['app_name'])} would like to connect to "
            f"your store</h1><p>This will give it <b>{escape(params['scope'])}</b> access.</p>"
            f'<p>Logged in as admin</p><form method="post" action="/wc-auth/v1/access_granted">{hidden}'
            f'<input type="hidden" name="wc_auth_nonce" value="{nonce}">'
            '<button type="submit">Approve</button>'
            '<button type="submit" formaction="/wc-auth/v1/access_denied">Deny</button></form>'
        )
        return Response(html, mimetype="text/html")

    def _take_nonce(self) -> None:
        nonce = request.form.get("wc_auth_nonce", "")
        with self._lock:
            if nonce not in self._nonces:
                raise AuthError("Invalid nonce verification")
            self._nonces.discard(nonce)

    def _granted(self) -> Response:
        params = self._params()
        self._take_nonce()
        key, secret = f"ck_{_rand_hash()}", f"cs_{_rand_hash()}"
        with self._lock:
            self._key_ids += 1
            key_id = self._key_ids
            self.keys[key], self.permissions[key] = secret, params["scope"]
        data = {
            "key_id": key_id,
            "user_id": params["user_id"],
            "consumer_key": key,
            "consumer_secret": secret,
            "key_permissions": params["scope"],
        }
        try:  # no lock held: the app's callback may call this store's REST API with the new key
            status: int | str = requests.post(
                params["callback_url"],
                data=php_json(data),
                timeout=60,
                allow_redirects=False,
                headers={"Content-Type": "application/json;charset=UTF-8"},
            ).status_code
        except requests.RequestException as exc:
            status = type(exc).__name__
        with self._lock:
            self.callbacks.append(
                {"url": params["callback_url"], "user_id": params["user_id"], "key_id": key_id, "status": status}
            )
            if status != 200:  # maybe_delete_key()
                self.keys.pop(key, None)
                self.permissions.pop(key, None)
        if status != 200:
            raise AuthError("An error occurred in the request and at the time were unable to send the consumer data")
        return redirect(_with_query(params["return_url"], success="1", user_id=params["user_id"]))

    def _denied(self) -> Response:
        params = self._params()
        self._take_nonce()
        return redirect(_with_query(params["return_url"], success="0", user_id=params["user_id"]))
