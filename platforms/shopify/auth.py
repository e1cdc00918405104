"""Shopify Admin API tokens for apps made in the Dev Dashboard (the only kind a merchant can make since 2026).

Three requests to one endpoint, `POST https://{shop}/admin/oauth/access_token`
(docs/platforms.md#shopify-app-credentials):
- the client credentials grant (the merchant's own app): client ID and secret → a token of about 24 h;
- the authorization code grant's exchange (installing from a link): the callback's code → an offline
  token, expiring (with a refresh token) when the app asks for that;
- the refresh of an expiring offline token.
Each answer becomes a `Grant` with absolute expiry times. A refused credential (400/401/403) is
`CredentialsRefused`, permanent: a person must fix the client ID or secret; anything else is a
retryable StorefrontError. No token or secret ever goes into a message.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import requests

from adapters.grants import Grant
from adapters.storefront import AccessRevoked, StorefrontError


class CredentialsRefused(AccessRevoked):
    """Shopify refused the client ID, secret, code or refresh token (the app is gone, or they are wrong)."""


def token_url(shop_domain: str, base_url: str | None = None) -> str:
    """Where the shop's token endpoint is (`base_url`: a fake in tests, as ShopifyClient's api_base_url)."""
    base = base_url or (shop_domain if shop_domain.startswith(("http://", "https://")) else f"https://{shop_domain}")
    return f"{base.rstrip('/')}/admin/oauth/access_token"


def client_credentials(
    shop_domain: str,
    client_id: str,
    client_secret: str,
    *,
    now: datetime,
    base_url: str | None = None,
    timeout: float = 10,
    session: requests.Session | None = None,
) -> Grant:
    return _request(
        token_url(shop_domain, base_url),
        {"grant_type": "client_credentials", "client_id": client_id, "client_secret": client_secret},
        "the client ID and secret",
        now,
        timeout,
        session,
    )


def exchange_code(
    shop_domain: str,
    client_id: str,
    client_secret: str,
    code: str,
    *,
    now: datetime,
    expiring: bool = False,
    base_url: str | None = None,
    timeout: float = 10,
    session: requests.Session | None = None,
) -> Grant:
    form = {"client_id": client_id, "client_secret": client_secret, "code": code}
    if expiring:
        form["expiring"] = "1"
    return _request(token_url(shop_domain, base_url), form, "the authorization code", now, timeout, session)


def refresh(
    shop_domain: str,
    client_id: str,
    client_secret: str,
    refresh_token: str,
    *,
    now: datetime,
    base_url: str | None = None,
    timeout: float = 10,
    session: requests.Session | None = None,
) -> Grant:
    return _request(
        token_url(shop_domain, base_url),
        {
            "grant_type": "refresh_token",
            "client_id": client_id,
            "client_secret": client_secret,
            "refresh_token": refresh_token,
        },
        "the refresh token",
        now,
        timeout,
        session,
    )


def _request(
    url: str, form: dict[str, str], what: str, now: datetime, timeout: float, session: requests.Session | None
) -> Grant:
    try:
        response = (session or requests).post(url, data=form, timeout=timeout, headers={"Accept": "application/json"})
    except requests.RequestException as exc:
        raise StorefrontError(
            f"Shopify's token endpoint did not answer ({type(exc).__name__}); trying again later", retryable=True
        ) from None
    if response.status_code in (400, 401, 403):
        raise CredentialsRefused(
            f"Shopify refused {what} ({response.status_code}): check the app's client ID and "
            "secret on /config, and that the app is installed on this store"
        )
    if response.status_code >= 300:
        raise StorefrontError(
            f"Shopify's token endpoint answered {response.status_code}; trying again later",
            retryable=response.status_code >= 500 or response.status_code == 429,
        )
    try:
        body = response.json()
        token = str(body["access_token"])
    except (ValueError, KeyError, TypeError):
        raise StorefrontError("Shopify's token endpoint answered without an access token", retryable=True) from None
    return Grant(
        access_token=token,
        scope=str(body.get("scope") or ""),
        issued_at=now,
        expires_at=_after(now, body.get("expires_in")),
        refresh_token=body.get("refresh_token"),
        refresh_expires_at=_after(now, body.get("refresh_token_expires_in")),
    )


def _after(now: datetime, seconds: object) -> datetime | None:
    if isinstance(seconds, int | float) and not isinstance(seconds, bool) and seconds > 0:
        return now + timedelta(seconds=float(seconds))
    return None
