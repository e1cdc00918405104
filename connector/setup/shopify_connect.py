"""Connecting a Shopify store by installing its app from a link: the authorization code grant.

An admin names the store (slug, `*.myshopify.com` host) and the app (its client ID and secret from the
Dev Dashboard). `begin` records a pending connection (connector.base.connections; the secret sealed in it)
and returns Shopify's authorize URL with a one-time `state`. Shopify sends the admin's browser back to
`/config/connect/shopify/callback` with `code, hmac, host, shop, state, timestamp`; `complete` checks,
in this order, that the state is one we issued and never used, that the query's HMAC is the app's,
that the request is fresh, that `shop` is a myshopify.com host and the one the admin named; only then is
the code exchanged for an offline token (expiring, with a refresh token, unless the admin said
otherwise), and the store saved with the token sealed beside the app's credentials.

From the ShopifyAPI package: the authorize URL (`Session.create_permission_url`) and the callback's
HMAC and age check (`Session.validate_params`, Shopify's own encoding of the sorted query). Ours: the
code exchange and refreshes (platforms.shopify.auth), since ShopifyAPI's `request_token` has no timeout,
only https, no expiring tokens and keeps the app's secret in class attributes shared by the process.
"""

from __future__ import annotations

import json
import re
from typing import Any

import shopify
from sqlalchemy import select

from adapters.clock import utcnow
from adapters.grants import ISSUED_KEYS, Grant
from connector import jobs
from connector.base import connections
from connector.base.connections import ConnectionRefused
from connector.base.models import Store
from connector.base.runtime import Runtime
from connector.orders import disconnect
from connector.setup.config_io import ConfigError, StoreConfig, load_config
from connector.sync import store_admin
from platforms.shopify import auth as shopify_auth
from platforms.shopify.webhooks import ALL_SCOPES

SHOP_HOST = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9-]*\.myshopify\.com$")
# What the connector asks a store for, by what uses it (docs/stores.md lists them with reasons).
CALLBACK_PATH = "/config/connect/shopify/callback"
API_VERSION = "2026-01"  # ShopifyAPI wants one to build a session; the authorize URL does not carry it


class CallbackRefused(Exception):
    """A callback that must not connect anything; the message says why (for the admin and the audit)."""


def _app(client_id: str, client_secret: str) -> type[shopify.Session]:
    # A class per app: ShopifyAPI keeps the key and secret on the class, shared by the whole process.
    return type("AppSession", (shopify.Session,), {"api_key": client_id, "secret": client_secret})


def begin(
    rt: Runtime,
    slug: str,
    shop: str,
    client_id: str,
    client_secret: str,
    actor: str,
    *,
    expiring: bool = True,
    api_base_url: str | None = None,
) -> str:
    """Shopify's authorize URL for this store and app; the admin's browser goes there."""
    shop, client_id, client_secret = shop.strip().lower(), client_id.strip(), client_secret.strip()
    if not client_id or not client_secret:
        raise ValueError("client_id: the app's client ID and secret, from the Dev Dashboard")
    _check(rt, slug, shop, client_id, client_secret)
    state = connections.start(
        rt,
        "shopify",
        slug,
        shop,
        actor,
        {
            "client_id": client_id,
            "sealed": rt.box.seal({"client_secret": client_secret}),
            "expiring": expiring,
            "api_base_url": api_base_url or None,
        },
    )
    redirect_uri = rt.settings.public_base_url.rstrip("/") + CALLBACK_PATH
    address = _app(client_id, "")(shop, API_VERSION).create_permission_url(list(ALL_SCOPES), redirect_uri, state)
    if api_base_url:  # a test or development shop: the same path and query, at its address
        address = api_base_url.rstrip("/") + address[len(f"https://{shop}") :]
    return address


def _check(rt: Runtime, slug: str, shop: str, client_id: str, client_secret: str) -> None:
    """Refuse, before anyone goes to Shopify, what saving the store would refuse at the end."""
    if not SHOP_HOST.match(shop):
        raise ValueError("shop: the store's myshopify.com host, such as acme-us.myshopify.com")
    problems = StoreConfig().validate(
        {
            "slug": slug,
            "platform": "shopify",
            "shop_domain": shop,
            "client_id": client_id,
            "client_secret": client_secret,
        }
    )
    for name in ("slug", "client_id", "client_secret"):
        if name in problems:
            raise ValueError(f"{name}: {problems[name][0]}")
    existing = store_admin.store_by_slug(rt, slug)
    if existing is not None and existing.platform != "shopify":
        raise ValueError(f"slug: a {existing.platform} store has this slug; choose another")


def complete(rt: Runtime, params: dict[str, str]) -> tuple[str, dict[str, Any]]:
    """Check the callback, exchange its code and save the store; (slug, what happened) or CallbackRefused."""
    try:
        pending = connections.claim(rt, "shopify", params.get("state"))
    except ConnectionRefused as exc:
        raise CallbackRefused(str(exc)) from None
    detail = pending.detail
    client_id, secret = detail["client_id"], rt.box.open(detail["sealed"])["client_secret"]
    if not _app(client_id, secret).validate_params(dict(params)):
        raise CallbackRefused("the hmac does not match the app secret, or the callback is over a day old")
    shop = params.get("shop", "")
    if not SHOP_HOST.match(shop):
        raise CallbackRefused(f"shop {shop[:100]!r} is not a myshopify.com store")
    if shop != pending.target:
        raise CallbackRefused(f"the callback names {shop}, not {pending.target}, the store this connection is for")
    grant = shopify_auth.exchange_code(
        shop,
        client_id,
        secret,
        params.get("code", ""),
        now=utcnow(),
        expiring=bool(detail.get("expiring")),
        base_url=detail.get("api_base_url"),
    )
    try:
        store_id = _save(rt, pending.store_slug, shop, client_id, secret, detail.get("api_base_url"), grant)
    except ValueError as exc:
        raise CallbackRefused(str(exc)) from None
    outcome: dict[str, Any] = {
        "started_by": pending.created_by,
        **_scopes(grant.scope),
        **_register(rt, pending.store_slug),
    }
    jobs.reconnected(rt, store_id)
    return pending.store_slug, outcome


def connect_own_app(
    rt: Runtime, slug: str, shop: str, client_id: str, client_secret: str, api_base_url: str | None = None
) -> dict[str, Any]:
    """The client credentials grant, for the merchant's own app (`connector store connect-shopify`): a
    first token (which proves the ID and secret: nothing is saved when Shopify refuses them), then the
    store saved with it, then the webhooks."""
    shop, client_id, client_secret = shop.strip().lower(), client_id.strip(), client_secret.strip()
    _check(rt, slug, shop, client_id, client_secret)
    grant = shopify_auth.client_credentials(shop, client_id, client_secret, now=utcnow(), base_url=api_base_url)
    store_id = _save(rt, slug, shop, client_id, client_secret, api_base_url, grant)
    outcome: dict[str, Any] = {**_scopes(grant.scope), **_register(rt, slug)}
    jobs.reconnected(rt, store_id)
    return outcome


def _scopes(granted: str) -> dict[str, Any]:
    return {"scopes": granted, "missing_scopes": sorted(set(ALL_SCOPES) - set(granted.split(",")))}


def _save(
    rt: Runtime, slug: str, shop: str, client_id: str, secret: str, api_base_url: str | None, grant: Grant
) -> int:
    """Create or update the store on its app's credentials and the token they gave; its id.
    Reconnecting keeps the store's rules and whether it is active: only the connection changes."""
    existing = store_admin.store_by_slug(rt, slug)
    if existing is not None and existing.platform != "shopify":  # made on /config while the admin was away
        raise ValueError(f"a {existing.platform} store took the slug {slug!r} meanwhile")
    entry: dict[str, Any] = {
        **(existing.settings if existing else {}),
        "slug": slug,
        "platform": "shopify",
        "active": existing.active if existing else True,
        "shop_domain": shop,
        "client_id": client_id,
        "client_secret": secret,
    }
    if api_base_url:
        entry["api_base_url"] = api_base_url
    try:
        load_config(rt, json.dumps({"stores": [entry]}))
    except ConfigError as exc:
        raise ValueError(f"the store could not be saved: {exc}") from None
    with rt.sessions.begin() as session:
        store = session.scalars(select(Store).where(Store.slug == slug).with_for_update()).one()
        kept = {k: v for k, v in rt.box.open(store.secrets).items() if k not in (disconnect.TOKEN, *ISSUED_KEYS)}
        store.secrets = rt.box.seal({**kept, **grant.as_secrets()})
        return store.id


def _register(rt: Runtime, slug: str) -> dict[str, Any]:
    webhooks, error = store_admin.register_connected(rt, slug)
    return {"webhooks": webhooks, "webhook_error": error}
