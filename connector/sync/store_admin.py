"""What /config asks of a store: "test connection", "register webhooks" and the webhooks' health.

Talks to the stores through their platform's `Subscriptions` and `test_connection`
(platforms/<name>/webhooks.py); everything they raise is a StorefrontError whose message is shown to the
admin as is. A platform whose orders are polled has no webhooks: its page shows the poll instead.

The subscriptions point at `settings.public_base_url + /webhooks/<platform>/<slug>`. Health per
topic: is there a subscription for our address (and is it active), and when did we last receive a
delivery of that topic (the latest inbox event).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select

from adapters.storefront import StorefrontError
from connector.base.clients import interactive_client
from connector.base.logredact import redact
from connector.base.models import ErpConnection, InboxEvent, Store
from connector.base.runtime import Runtime, StoreInfo
from mappings.utc import as_utc
from platforms.registry import platform
from platforms.webhooks import Subscriptions

log = logging.getLogger(__name__)

TIMEOUT = 10  # seconds per request: a person is waiting for the page


def webhook_address(rt: Runtime, store: StoreInfo) -> str:
    return f"{rt.settings.public_base_url.rstrip('/')}/webhooks/{store.platform}/{store.slug}"


def _ours(store: StoreInfo, address: str | None) -> bool:
    """A subscription that delivers to this store's receiver, whatever base URL it names."""
    return bool(address) and str(address).rstrip("/").endswith(f"/webhooks/{store.platform}/{store.slug}")


# ---- connection checks ------------------------------------------------------------------------


def test_connection(rt: Runtime, store: StoreInfo) -> str:
    """A cheap authenticated read; returns what a person should see, raises StorefrontError."""
    found = platform(store.platform).test_connection(interactive_client(rt, store), store.settings)
    return found.message + (scope_report(rt, store, found.granted) if found.granted is not None else "")


def _subscriptions(store: StoreInfo) -> Subscriptions | None:
    return platform(store.platform).subscriptions


def needed_scopes(rt: Runtime, store: StoreInfo) -> dict[str, tuple[str, ...]]:
    """The scopes of the features switched on for this store, by feature (none: its platform has none)."""
    scopes = platform(store.platform).scopes or {}
    if not scopes:
        return {}
    wanted = {"orders": scopes["orders"], "returns": scopes["returns"]}
    if str(store.settings.get("inventory_interval_minutes", "")).strip() not in ("0", "0.0"):
        wanted["inventory"] = scopes["inventory"]
    with rt.sessions() as session:
        erp = session.scalars(select(ErpConnection).where(ErpConnection.name == "default")).first()
    settings = (erp.settings or {}) if erp is not None else None
    features = (
        ("fulfillment", "shipments_interval_minutes"),
        ("receipts", "receipts_interval_minutes"),
        ("undelivered", "undelivered_interval_minutes"),
    )
    for feature, interval in features:
        if settings is not None and str(settings.get(interval, "")).strip() not in ("0", "0.0"):
            wanted[feature] = scopes[feature]
    return wanted


def scope_report(rt: Runtime, store: StoreInfo, granted: list[str]) -> str:
    """What the store granted, and what the switched-on features still lack (named, per feature)."""
    have = set(granted)
    missing = {feature: [s for s in scopes if s not in have] for feature, scopes in needed_scopes(rt, store).items()}
    gaps = "; ".join(f"{feature}: {', '.join(names)}" for feature, names in missing.items() if names)
    if not gaps:
        return f" Every scope the switched-on features need is granted ({len(have)} granted)."
    return (
        f" Missing scopes — {gaps}. Add them to the app (Dev Dashboard) and connect it again; until then "
        "those features fail."
    )


# ---- webhooks ---------------------------------------------------------------------------------


def last_deliveries(rt: Runtime, store_id: int) -> dict[str, datetime]:
    """The latest event we received, per topic, for a store."""
    with rt.sessions() as session:
        rows = session.execute(
            select(InboxEvent.topic, func.max(InboxEvent.received_at))
            .where(InboxEvent.store_id == store_id)
            .group_by(InboxEvent.topic)
        ).all()
    return {topic: as_utc(at) for topic, at in rows if at is not None}


@dataclass
class TopicHealth:
    topic: str
    subscribed: bool = False
    active: bool = False
    hook_id: str | None = None
    status: str | None = None
    last_delivery: datetime | None = None
    needs: str | None = None  # the scope the store has not granted, without which the store refuses the topic

    @property
    def ok(self) -> bool:
        return self.subscribed and self.active


@dataclass
class WebhookHealth:
    address: str
    topics: list[TopicHealth]
    others: list[dict] = field(default_factory=list)  # subscriptions not pointing at us (or stale ones of ours)
    error: str | None = None  # the store could not be asked: only our own side is known
    checked: bool = False

    @property
    def ok(self) -> bool:
        return self.checked and all(t.ok for t in self.topics)


def webhook_health(rt: Runtime, store: StoreInfo, ask_store: bool = True) -> WebhookHealth:
    address = webhook_address(rt, store)
    seen = last_deliveries(rt, store.id)
    subscriptions = _subscriptions(store)
    topics = (
        [TopicHealth(topic, last_delivery=seen.get(topic)) for topic in subscriptions.topics] if subscriptions else []
    )
    health = WebhookHealth(address, topics)
    if not ask_store or subscriptions is None:
        return health
    try:
        client = interactive_client(rt, store)
        hooks, ungranted = subscriptions.hooks(client), subscriptions.ungranted(client)
    except StorefrontError as exc:
        health.error = str(exc)
        return health
    health.checked = True
    wanted = {t.topic: t for t in topics}
    for topic, scope in ungranted.items():
        wanted[topic].needs = scope
    for hook in hooks:
        entry = wanted.get(hook["topic"])
        if entry is not None and hook["address"] == address:
            if not entry.active:  # an active one wins over a disabled duplicate
                entry.subscribed, entry.hook_id, entry.status = True, str(hook["id"]), hook["status"]
                entry.active = hook["status"] == "active"
        else:
            health.others.append({**hook, "ours": _ours(store, hook["address"])})
    return health


def store_by_slug(rt: Runtime, slug: str) -> StoreInfo | None:
    with rt.sessions() as session:
        store = session.scalars(select(Store).where(Store.slug == slug)).first()
        return rt.store_info(store) if store is not None else None


def register_connected(rt: Runtime, slug: str) -> tuple[dict[str, list[str]], str | None]:
    """A just-connected store's webhooks: (what was done, None), or ({}, why not). The store stays
    connected either way; its webhooks page registers them again."""
    try:
        store = store_by_slug(rt, slug)
        if store is None:  # removed meanwhile
            raise LookupError(f"no store {slug!r}")
        return register_webhooks(rt, store), None
    except Exception as exc:
        error = redact(str(exc)) or type(exc).__name__
        log.warning("store %s connected, but registering its webhooks failed: %s", slug, error)
        return {}, error


def register_webhooks(rt: Runtime, store: StoreInfo) -> dict[str, list[str]]:
    """Subscribe our address to every topic the connector handles; replace stale subscriptions of ours
    (an old base URL, or a webhook the store disabled after failed deliveries)."""
    done: dict[str, list[str]] = {"created": [], "existing": [], "removed": [], "skipped": []}
    subscriptions = _subscriptions(store)
    if subscriptions is None:  # its orders are polled
        return done
    client = interactive_client(rt, store)
    address = webhook_address(rt, store)
    hooks = subscriptions.hooks(client)
    ungranted = subscriptions.ungranted(client)
    for topic in subscriptions.topics:
        if topic in ungranted:  # the store would refuse it; the webhooks page says which scope to add
            done["skipped"].append(f"{topic} (needs the {ungranted[topic]} scope)")
            continue
        mine = [h for h in hooks if h["topic"] == topic and h["address"] == address]
        if any(h["status"] == "active" for h in mine):
            done["existing"].append(topic)
        else:
            subscriptions.create(client, topic, address, store.secrets)
            done["created"].append(topic)
        stale = [
            h
            for h in hooks
            if h["topic"] == topic
            and _ours(store, h["address"])
            and (h["address"] != address or h["status"] != "active")
        ]
        for hook in stale:
            try:
                subscriptions.delete(client, hook["id"])
                done["removed"].append(f"{topic} → {hook['address']}")
            except StorefrontError as exc:  # the new subscription is in place; an old one lingers
                log.warning("store %s: could not remove a stale %s subscription: %s", store.slug, topic, exc)
    return done
