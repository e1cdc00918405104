"""Store API clients for the background jobs (stock and shipments), kept per store for the process.

A client may learn the store's rate limits from each answer (e.g. a GraphQL bucket's size, restore
rate and what it has left, and the real cost of each call shape); keeping the client between sync runs
keeps that knowledge, so only the first call a worker ever makes can meet a throttle. A client is rebuilt when
the store's connection settings or secrets change. /config's pages use fresh short-timeout clients
(interactive_client). Every client is made by build_client, or by the Runtime's client_factory (tests).
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from typing import Any, Literal

from adapters.storefront import StorefrontError
from connector.base.runtime import Runtime, StoreInfo, current
from connector.base.tokens import StoreTokens
from platforms.registry import platform

StorefrontClient = Any  # the store's platform's own client (platforms/<name>/client.py builds it)
Purpose = Literal["sync", "interactive"]
ClientFactory = Callable[[Runtime, StoreInfo, Purpose], StorefrontClient]
# How long a client waits and how often it retries, by who is waiting: a job can wait out a slow store
# (the pipeline retries later anyway); a person on /config wants an answer, or the reason, in seconds.
PATIENCE: dict[str, dict[str, Any]] = {
    "sync": {"timeout": 30},
    "interactive": {"timeout": 10, "max_retries": 1, "retry_base": 0.2},
}

_CLIENTS: dict[int, tuple[str, StorefrontClient]] = {}
_LOCK = threading.Lock()


def _fingerprint(store: StoreInfo) -> str:
    served = platform(store.platform)
    relevant = {k: store.settings.get(k) for k in served.connection_settings}
    # A renewed token is not a new connection: the client keeps what it learned of the shop's limits.
    secrets = sorted((k, v) for k, v in store.secrets.items() if k not in served.issued_secrets)
    text = json.dumps([store.platform, relevant, secrets], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def sync_client(store: StoreInfo) -> StorefrontClient:
    """The API client for this store's jobs (the same object while its settings hold)."""
    key = _fingerprint(store)
    with _LOCK:
        hit = _CLIENTS.get(store.id)
        if hit is not None and hit[0] == key:
            return hit[1]
    rt = current()
    client = _factory(rt)(rt, store, "sync")
    with _LOCK:
        _CLIENTS[store.id] = (key, client)
    return client


def forget(store_id: int | None = None) -> None:
    """Drop cached clients (all, or one store's): tests and benchmarks start from a cold client."""
    with _LOCK:
        if store_id is None:
            _CLIENTS.clear()
        else:
            _CLIENTS.pop(store_id, None)


def build_client(rt: Runtime, store: StoreInfo, purpose: Purpose = "sync") -> StorefrontClient:
    """The store's API client, as its platform builds it: the one place a client is made (Runtime.client_factory
    may stand in for it). A job's client waits and retries; a person's ("interactive", /config) answers
    within seconds."""
    refuse_disconnected(store)
    try:
        served = platform(store.platform)
    except KeyError:
        raise StorefrontError(f"unknown platform {store.platform!r}", retryable=False) from None
    client: StorefrontClient = served.client(
        store.slug, store.settings, store.secrets, PATIENCE[purpose], lambda: StoreTokens(rt, store.id)
    )
    return client


def interactive_client(rt: Runtime, store: StoreInfo) -> StorefrontClient:
    """A fresh client with short timeouts and one retry, for a person waiting on a page."""
    return _factory(rt)(rt, store, "interactive")


def _factory(rt: Runtime) -> ClientFactory:
    return rt.client_factory or build_client


def refuse_disconnected(store: StoreInfo) -> None:
    if store.disconnected_at is not None:
        raise StorefrontError(
            f"store {store.slug} is disconnected: its app was uninstalled on "
            f"{store.disconnected_at:%Y-%m-%d %H:%M} UTC. Install the app again and connect it "
            "on /config",
            retryable=False,
        )
