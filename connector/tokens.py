"""One valid Admin API token per Shopify store, shared by every web and worker process.

A store connected with a legacy token (`access_token`, `shpat_…` pasted by hand) uses it as it is. A
store connected with its app's client ID and secret (the client credentials grant), or through the
install link with an expiring offline token, keeps the token it was issued sealed with its secrets,
with its expiry. The token is renewed a fifth of its life before it ends, and once more after a 401,
by one process at a time: the renewer holds the store row's lock (SELECT … FOR UPDATE on PostgreSQL;
on SQLite a lock in this process, `connector run` being one process), and the others wait for it and
then read the new token instead of asking for one of their own. Tokens are never logged.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable

from sqlalchemy import select

from adapters import shopify_auth
from adapters.clock import utcnow
from adapters.shopify_auth import Grant
from adapters.storefront import StorefrontError
from connector.models import Store
from connector.runtime import Runtime
from platforms.shopify.events import uses_app_credentials

log = logging.getLogger(__name__)
_PROCESS_LOCKS: defaultdict[int, threading.Lock] = defaultdict(threading.Lock)


class StoreTokens:
    """What a ShopifyClient asks for its token: `current()` before a call, `renew(refused)` after a 401."""

    def __init__(self, rt: Runtime, store_id: int):
        self.rt, self.store_id = rt, store_id

    def current(self) -> tuple[str, Grant | None]:
        """The token to send now (renewed first when it is about to expire) and the grant it came from
        (None for a legacy token, which never expires)."""
        settings, secrets = self._store()
        if not uses_app_credentials(settings, secrets):
            return secrets.get("access_token", ""), None
        grant = Grant.from_secrets(secrets)
        if grant is not None and grant.fresh(utcnow()):
            return grant.access_token, grant
        return self._renew(lambda held: not held.fresh(utcnow()))

    def renew(self, refused: str) -> tuple[str, Grant | None]:
        """After Shopify answered 401 to `refused`: a new token, unless another process renewed already."""
        if not uses_app_credentials(*self._store()):
            raise StorefrontError(
                "Shopify refused the store's access token (401): the app was uninstalled or the "
                "token revoked; reconnect the store on /config",
                retryable=False,
            )
        return self._renew(lambda held: held.access_token == refused)

    def _renew(self, still_needed: Callable[[Grant], bool]) -> tuple[str, Grant | None]:
        """A new grant from Shopify, unless a stored one no longer `still_needed` replacing (another process
        renewed it while we waited for the lock)."""
        with _PROCESS_LOCKS[self.store_id], self.rt.sessions.begin() as session:
            store = session.scalars(select(Store).where(Store.id == self.store_id).with_for_update()).one()
            secrets = self.rt.box.open(store.secrets)
            held = Grant.from_secrets(secrets)
            if held is not None and not still_needed(held):
                return held.access_token, held  # another process renewed it while we waited for the lock
            grant = self._ask(store, secrets, held)
            store.secrets = self.rt.box.seal({**secrets, **grant.as_secrets()})
        log.info("store %s: new Admin API token, valid until %s", store.slug, grant.expires_at or "revoked")
        return grant.access_token, grant

    def _ask(self, store: Store, secrets: dict[str, str], held: Grant | None) -> Grant:
        settings = store.settings or {}
        domain, base = str(settings.get("shop_domain", "")), settings.get("api_base_url") or None
        now = utcnow()
        if (
            held is not None
            and held.refresh_token
            and (held.refresh_expires_at is None or now < held.refresh_expires_at)
        ):
            return shopify_auth.refresh(
                domain, str(settings["client_id"]), secrets["client_secret"], held.refresh_token, now=now, base_url=base
            )
        return shopify_auth.client_credentials(
            domain, str(settings["client_id"]), secrets["client_secret"], now=now, base_url=base
        )

    def _store(self) -> tuple[dict, dict[str, str]]:
        with self.rt.sessions() as session:
            settings, sealed = session.execute(
                select(Store.settings, Store.secrets).where(Store.id == self.store_id)
            ).one()
        return settings or {}, self.rt.box.open(sealed)
