"""Shopify's expiring Admin API tokens: the client credentials grant for a store connected with its app's client
ID and secret, or a refresh of an expiring offline token from the install link."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from adapters.grants import Grant
from platforms.shopify import auth as shopify_auth
from platforms.shopify.events import uses_app_credentials


class ShopifyTokens:
    def issued(self, settings: Mapping[str, Any], secrets: Mapping[str, str]) -> bool:
        return uses_app_credentials(settings, secrets)

    def issue(
        self, settings: Mapping[str, Any], secrets: Mapping[str, str], held: Grant | None, now: datetime
    ) -> Grant:
        domain, base = str(settings.get("shop_domain", "")), settings.get("api_base_url") or None
        client_id, client_secret = str(settings["client_id"]), secrets["client_secret"]
        if (
            held is not None
            and held.refresh_token
            and (held.refresh_expires_at is None or now < held.refresh_expires_at)
        ):
            return shopify_auth.refresh(domain, client_id, client_secret, held.refresh_token, now=now, base_url=base)
        return shopify_auth.client_credentials(domain, client_id, client_secret, now=now, base_url=base)


def _unexpired(expires_at: datetime | None, now: datetime) -> bool:
    return expires_at is None or now < expires_at
