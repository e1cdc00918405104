"""Store lookup for the hot path: a short-lived in-process cache of decrypted store settings."""

from __future__ import annotations

import enum
import threading
import time
from typing import Final, Literal

from sqlalchemy import select

from connector.base.models import Store
from connector.base.runtime import Runtime, StoreInfo


class _Miss(enum.Enum):
    MISS = "miss"


MISS: Final = _Miss.MISS  # cached(): the cache does not know the slug (an enum member, so `is MISS` narrows)
TTL_SECONDS = 5.0  # a store added or edited on /config is seen by every web process within this


class StoreDirectory:
    def __init__(self, rt: Runtime, ttl: float = TTL_SECONDS):
        self.rt = rt
        self.ttl = ttl
        self._cache: dict[str, tuple[float, StoreInfo | None]] = {}
        self._lock = threading.Lock()

    def cached(self, slug: str) -> StoreInfo | None | Literal[_Miss.MISS]:
        """The store if the cache knows it (None: known not to exist), else MISS: no database call."""
        hit = self._cache.get(slug)
        return hit[1] if hit is not None and hit[0] > time.monotonic() else MISS

    def get(self, slug: str) -> StoreInfo | None:
        now = time.monotonic()
        hit = self._cache.get(slug)
        if hit is not None and hit[0] > now:
            return hit[1]
        with self.rt.sessions() as session:
            store = session.scalars(select(Store).where(Store.slug == slug)).first()
            info = self.rt.store_info(store) if store is not None and store.active else None
        with self._lock:
            if len(self._cache) > 10_000:  # slugs are attacker-chosen: keep the cache bounded
                self._cache.clear()
            self._cache[slug] = (now + self.ttl, info)
        return info
