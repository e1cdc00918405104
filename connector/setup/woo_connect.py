"""Connecting a WooCommerce store through its key approval (WooCommerce's `/wc-auth/v1/authorize`).

The merchant's browser goes to the store with our `user_id` (a one-time id from connector.base.connections)
and two addresses. Once the merchant approves, the *store's server* POSTs the new REST key as JSON to
`callback_url`; only when that answers exactly 200 does it send the browser on to `return_url`
(WooCommerce deletes the key when the callback fails). So the callback is where the store is saved,
and it answers 200 once the store is saved even if registering its webhooks then fails: that failure
is kept for the return page instead of costing the merchant the key.

The callback carries no signature: the one-time id is all that ties it to the admin who started the
connection, so it is claimed atomically (a replay or a forgery is refused and audited) and the store's
address is the one recorded when the connection started, never anything the callback says.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

from connector.base import connections
from connector.base.audit import audit
from connector.base.crypto import mask
from connector.base.logredact import redact
from connector.base.runtime import Runtime
from connector.setup.config_io import ConfigError, StoreConfig, load_config
from connector.sync import store_admin

log = logging.getLogger(__name__)

PLATFORM = "woocommerce"
APP_NAME = "Storefront connector"
# Orders are read; stock levels, order statuses and tracking notes are written back.
SCOPE = "read_write"
RETURN_PATH = "/config/connect/woocommerce/return"
CALLBACK_PATH = "/connect/woocommerce/callback"
MAX_CALLBACK_BYTES = 16 * 1024  # the store sends five short fields
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}
# WooCommerce makes them 'ck_'/'cs_' + a 40-hex sha1; other lengths are tolerated, short or odd ones not.
KEY_PATTERN = {
    "consumer_key": re.compile(r"^ck_[0-9A-Za-z]{20,100}$"),
    "consumer_secret": re.compile(r"^cs_[0-9A-Za-z]{20,100}$"),
}


class ConnectError(ValueError):
    """The connection cannot start; `errors` maps a form field (slug, url, or _form) to why."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


@dataclass
class Connected:
    """What a callback did: the store saved (created or updated) and how registering its webhooks went."""

    slug: str
    created: bool
    webhooks: dict[str, list[str]] = field(default_factory=dict)
    webhook_error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "slug": self.slug,
            "created": self.created,
            "webhooks": self.webhooks,
            "webhook_error": self.webhook_error,
        }


def _base(rt: Runtime) -> str:
    return rt.settings.public_base_url.rstrip("/")


def callback_url(rt: Runtime) -> str:
    return _base(rt) + CALLBACK_PATH


def return_url(rt: Runtime) -> str:
    return _base(rt) + RETURN_PATH


def plaintext_allowed(url: str) -> bool:
    """http is for a connector (or store) on this machine only: tests and development."""
    host = (urlsplit(url).hostname or "").lower()
    if host in LOCAL_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_start(rt: Runtime, slug: str, url: str) -> dict[str, str]:
    # The store form's own rules (StoreConfig): the same slug and address a typed-in store must have.
    problems = StoreConfig().validate({"slug": slug, "platform": PLATFORM, "url": url, "webhook_secret": "-"})
    errors: dict[str, str] = {name: str((problems[name] or [""])[0]) for name in ("slug", "url") if name in problems}
    if not slug:
        errors["slug"] = "required"
    if not url:
        errors["url"] = "required: the store's address, e.g. https://shop.example.com"
    elif "url" not in errors and urlsplit(url).query:
        errors["url"] = "the store's address only, without ?query"
    existing = store_admin.store_by_slug(rt, slug) if "slug" not in errors else None
    if existing is not None and existing.platform != PLATFORM:
        errors["slug"] = f"a {existing.platform} store has this slug; choose another"
    callback = callback_url(rt)
    if not callback.startswith("https://") and not plaintext_allowed(callback):
        errors["_form"] = (
            f"WooCommerce sends the key only to an https address, and ours is {callback}: set "
            "PUBLIC_BASE_URL to the connector's public https address"
        )
    return errors


def begin(rt: Runtime, slug: str, store_url: str, actor: str) -> str:
    """Record (and audit) a pending connection; the store's approval address to send the merchant to.
    Raises ConnectError naming the field at fault."""
    slug, url = (slug or "").strip().lower(), (store_url or "").strip().rstrip("/")
    errors = _check_start(rt, slug, url)
    if errors:
        raise ConnectError(errors)
    token = connections.start(rt, PLATFORM, slug, url, actor)
    audit(rt, actor, "store.connect_start", slug, {"platform": PLATFORM, "url": url})
    query = urlencode(
        {
            "app_name": APP_NAME,
            "scope": SCOPE,
            "user_id": token,
            "return_url": return_url(rt),
            "callback_url": callback_url(rt),
        }
    )
    return f"{url}/wc-auth/v1/authorize?{query}"


# ---- the store's callback -----------------------------------------------------------------------


def _checked_body(body: Any) -> dict[str, str]:
    """The callback's fields, or ConnectionRefused saying what is wrong (never echoing the secret)."""
    if not isinstance(body, dict):
        raise connections.ConnectionRefused("the callback is not a JSON object")
    token = body.get("user_id")
    if not isinstance(token, str) or not token:
        raise connections.ConnectionRefused("no connection id (user_id) in the callback")
    for name, pattern in KEY_PATTERN.items():
        value = body.get(name)
        if not isinstance(value, str) or not pattern.match(value):
            raise connections.ConnectionRefused(
                f"{name} is missing or not a WooCommerce key ({pattern.pattern[1:4]} and 20 to 100 letters or digits)"
            )
    if body.get("key_permissions") != SCOPE:
        raise connections.ConnectionRefused(
            f"the key's permissions are {str(body.get('key_permissions'))[:20]!r}, "
            f"not {SCOPE!r}: the connector writes stock and order statuses"
        )
    return {
        "user_id": token,
        "consumer_key": body["consumer_key"],
        "consumer_secret": body["consumer_secret"],
        "key_id": str(body.get("key_id", ""))[:20],
    }


def complete(rt: Runtime, body: Any, remote: str = "") -> Connected:
    """Save the store a valid callback names and register its webhooks; ConnectionRefused (audited as
    store.connect_refused) for anything that is not the answer to a pending connection of ours."""
    try:
        fields_ = _checked_body(body)
        pending = connections.claim(rt, PLATFORM, fields_["user_id"])
    except connections.ConnectionRefused as exc:
        refused(rt, str(exc), remote)
        raise
    try:
        connected = _save(rt, pending, fields_)
    except connections.ConnectionRefused as exc:
        refused(rt, str(exc), remote, pending.store_slug)
        raise
    _register(rt, connected)
    audit(
        rt,
        f"{pending.created_by} (WooCommerce key approval)",
        "store.connect",
        connected.slug,
        {
            "url": pending.target,
            "created": connected.created,
            "consumer_key": mask(fields_["consumer_key"]),
            "key_id": fields_["key_id"],
            "remote": remote,
            "webhooks": connected.webhooks,
            "webhook_error": connected.webhook_error,
        },
    )
    connections.record_outcome(rt, fields_["user_id"], connected.as_dict())
    return connected


def refused(rt: Runtime, reason: str, remote: str, slug: str = "") -> None:
    log.warning("WooCommerce connection callback from %s refused: %s", remote or "?", reason)
    audit(
        rt,
        f"woocommerce callback from {remote or '?'}",
        "store.connect_refused",
        slug,
        {"reason": reason, "remote": remote},
    )


def _save(rt: Runtime, pending: connections.Pending, given: dict[str, str]) -> Connected:
    existing = store_admin.store_by_slug(rt, pending.store_slug)
    if existing is not None and existing.platform != PLATFORM:  # made on /config while the merchant approved
        raise connections.ConnectionRefused(
            f"a {existing.platform} store took the slug {pending.store_slug!r} meanwhile"
        )
    entry = {
        **(existing.settings if existing else {}),
        "slug": pending.store_slug,
        "platform": PLATFORM,
        "active": existing.active if existing else True,
        "url": pending.target,
        "consumer_key": given["consumer_key"],
        "consumer_secret": given["consumer_secret"],
        # A reconnected store keeps its secret: its subscriptions already sign with it.
        "webhook_secret": (existing.secrets.get("webhook_secret") if existing else None) or secrets.token_urlsafe(32),
    }
    try:
        load_config(rt, json.dumps({"stores": [entry]}))
    except ConfigError as exc:
        raise connections.ConnectionRefused(f"the store could not be saved: {redact(str(exc))}") from None
    return Connected(pending.store_slug, existing is None)


def _register(rt: Runtime, connected: Connected) -> None:
    connected.webhooks, connected.webhook_error = store_admin.register_connected(rt, connected.slug)
