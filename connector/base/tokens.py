"""One valid API token per store, shared by every web and worker process.

A store whose platform issues expiring tokens (platforms/<name>/tokens.py: e.g. a store connected with its app's
client ID and secret, or through an install link) keeps the token it was issued sealed
with its secrets, with its expiry; any other store uses the token it was given (`access_token`) as it is.
The token is renewed a fifth of its life before it ends, and once more after a 401, by one process at a
time: the renewer holds the store row's lock (SELECT … FOR UPDATE on PostgreSQL;
on SQLite a lock in this process, `connector run` being one process), and the others wait for it and
then read the new token instead of asking for one of their own. Tokens are never logged.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable

from sqlalchemy import select

from adapters.clock import utcnow
from adapters.grants import Grant
from adapters.storefront import StorefrontError
from connector.base.models import Store
from connector.base.runtime import Runtime
from platforms.registry import platform

log = logging.getLogger(__name__)
_PROCESS_LOCKS: defaultdict[int, threading.Lock] = defaultdict(threading.Lock)


class StoreTokens:
    """What a store's client asks for its token: `current()` before a call, `renew(refused)` after a 401."""

    def __init__(self, rt: Runtime, store_id: int):
        self.rt, self.store_id = rt, store_id

    def current(self) -> tuple[str, Grant | None]:
        """The token to send now (renewed first when it is about to expire) and the grant it came from
        (None for a legacy token, which never expires)."""
        name, settings, secrets = self._store()
        tokens = platform(name).tokens
        if tokens is None or not tokens.issued(settings, secrets):
            return secrets.get("access_token", ""), None
        grant = Grant.from_secrets(secrets)
        if grant is not None and grant.fresh(utcnow()):
            return grant.access_token, grant
        return self._renew(lambda held: not held.fresh(utcnow()))

    def renew(self, refused: str) -> tuple[str, Grant | None]:
        """After the store answered 401 to `refused`: a new token, unless another process renewed already."""
        name, settings, secrets = self._store()
        tokens = platform(name).tokens
        if tokens is None or not tokens.issued(settings, secrets):
            raise StorefrontError(
                f"{platform(name).label} refused the store's access token (401): the app was uninstalled or the "
                "token revoked; reconnect the store on /config",
                retryable=False,
            )
        return self._renew(lambda held: held.access_token == refused)

    def _renew(self, still_needed: Callable[[Grant], bool]) -> tuple[str, Grant | None]:
        """A new grant from the platform, unless a stored one no longer `still_needed` replacing (another process
        renewed it while we waited for the lock)."""
        with _PROCESS_LOCKS[self.store_id], self.rt.sessions.begin() as session:
            store = session.scalars(select(Store).where(Store.id == self.store_id).with_for_update()).one()
            secrets = self.rt.box.open(store.secrets)
            held = Grant.from_secrets(secrets)
            if held is not None and not still_needed(held):
                return held.access_token, held  # another process renewed it while we waited for the lock
            tokens = platform(store.platform).tokens
            if tokens is None:  # (renew() and current() asked the platform first)
                raise StorefrontError(f"store {store.slug}: its platform issues no tokens", retryable=False)
            grant = tokens.issue(store.settings or {}, secrets, held, utcnow())
            store.secrets = self.rt.box.seal({**secrets, **grant.as_secrets()})
        log.info("store %s: new API token, valid until %s", store.slug, grant.expires_at or "revoked")
        return grant.access_token, grant

    def _store(self) -> tuple[str, dict, dict[str, str]]:
        with self.rt.sessions() as session:
            name, settings, sealed = session.execute(
                select(Store.platform, Store.settings, Store.secrets).where(Store.id == self.store_id)
            ).one()
        return name, settings or {}, self.rt.box.open(sealed)
