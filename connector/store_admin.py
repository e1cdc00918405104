"""What /config asks of a store: "test connection", "register webhooks" and the webhooks' health.

Talks to the stores through adapters.shopify.ShopifyClient and adapters.woocommerce.WooClient;
everything they raise is a StorefrontError whose message is shown to the admin as is. Methods the
clients may not have yet are looked up defensively, so a missing one is a readable error, not a
crash of the page.

The subscriptions point at `settings.public_base_url + /webhooks/<platform>/<slug>`. Health per
topic: is there a subscription for our address (and is it active), and when did we last receive a
delivery of that topic (the latest inbox event).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from adapters.storefront import StorefrontError
from connector.clients import interactive_client
from connector.logredact import redact
from connector.models import ErpConnection, InboxEvent, Store
from connector.runtime import Runtime, StoreInfo
from mappings.topics import SHOPIFY_RETURN_TOPICS
from mappings.utc import as_utc

log = logging.getLogger(__name__)

SHOPIFY_TOPICS = (
    "orders/create",
    "orders/updated",
    "orders/paid",
    "orders/cancelled",
    "refunds/create",
    "orders/edited",  # what an edit changed, for people to see (the order itself comes as an update)
    *SHOPIFY_RETURN_TOPICS,  # returns on their way back, for people to see (the money comes as a refund)
    "inventory_levels/update",  # the store's own stock changes: see connector.reported
    "app/uninstalled",
)  # the store disconnects: connector.disconnect
# Topics Shopify lets an app subscribe to only with a scope beyond the orders' own.
TOPIC_SCOPES = dict.fromkeys(SHOPIFY_RETURN_TOPICS, "read_returns")
WOO_TOPICS = ("order.created", "order.updated", "order.deleted", "order.restored", "product.updated")
TOPICS = {"shopify": SHOPIFY_TOPICS, "woocommerce": WOO_TOPICS}
TIMEOUT = 10  # seconds per request: a person is waiting for the page


def webhook_address(rt: Runtime, store: StoreInfo) -> str:
    return f"{rt.settings.public_base_url.rstrip('/')}/webhooks/{store.platform}/{store.slug}"


def _ours(store: StoreInfo, address: str | None) -> bool:
    """A subscription that delivers to this store's receiver, whatever base URL it names."""
    return bool(address) and str(address).rstrip("/").endswith(f"/webhooks/{store.platform}/{store.slug}")


def _method(client: Any, name: str) -> Any:
    method = getattr(client, name, None)
    if not callable(method):
        raise StorefrontError(
            f"the {type(client).__name__} in this build has no {name}(); the connector cannot "
            f"do this for the store yet",
            retryable=False,
        )
    return method


# ---- connection checks ------------------------------------------------------------------------


def test_connection(rt: Runtime, store: StoreInfo) -> str:
    """A cheap authenticated read; returns what a person should see, raises StorefrontError."""
    client = interactive_client(rt, store)
    if store.platform == "shopify":
        locations = _method(client, "locations")()
        names = ", ".join(f"{loc.get('name')} ({_short_id(loc.get('id'))})" for loc in locations[:10])
        more = f" and {len(locations) - 10} more" if len(locations) > 10 else ""
        return (
            f"Connected to {store.settings.get('shop_domain')}: the token reads "
            f"{len(locations)} location(s){': ' + names + more if names else ''}."
            + scope_report(rt, store, _method(client, "granted_scopes")())
        )
    _method(client, "get")("orders", per_page=1)
    return f"Connected to {store.settings.get('url')}: the consumer key reads orders."


def _ungranted(client: Any, store: StoreInfo) -> dict[str, str]:
    """{topic: the scope it needs that the store has not granted}."""
    if store.platform != "shopify":
        return {}
    granted = set(_method(client, "granted_scopes")())
    return {topic: scope for topic, scope in TOPIC_SCOPES.items() if scope not in granted}


def needed_scopes(rt: Runtime, store: StoreInfo) -> dict[str, tuple[str, ...]]:
    """The Shopify scopes of the features switched on for this store, by feature."""
    from connector.shopify_connect import SCOPES

    wanted = {"orders": SCOPES["orders"], "returns": SCOPES["returns"]}
    if str(store.settings.get("inventory_interval_minutes", "")).strip() not in ("0", "0.0"):
        wanted["inventory"] = SCOPES["inventory"]
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
            wanted[feature] = SCOPES[feature]
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


def _short_id(value: Any) -> str:
    text = str(value or "")
    return text.rsplit("/", 1)[-1] if text.startswith("gid://") else text


# ---- webhooks ---------------------------------------------------------------------------------


def _hooks(client: Any) -> list[dict]:
    """Every subscription on the store as {id, topic, address, status}; secrets never kept."""
    found = []
    for hook in _method(client, "webhooks")() or []:
        found.append(
            {
                "id": hook.get("id"),
                "topic": hook.get("topic"),
                "address": hook.get("address")
                or hook.get("delivery_url")
                or hook.get("uri")
                or hook.get("callbackUrl"),
                "status": str(hook.get("status") or "active").lower(),
            }
        )
    return found


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
    needs: str | None = None  # the scope the store has not granted, without which Shopify refuses the topic

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
    topics = [TopicHealth(topic, last_delivery=seen.get(topic)) for topic in TOPICS.get(store.platform, ())]
    health = WebhookHealth(address, topics)
    if not ask_store:
        return health
    try:
        client = interactive_client(rt, store)
        hooks, ungranted = _hooks(client), _ungranted(client, store)
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
    (an old base URL, or a WooCommerce webhook that was disabled after failed deliveries)."""
    client = interactive_client(rt, store)
    address = webhook_address(rt, store)
    hooks = _hooks(client)
    done: dict[str, list[str]] = {"created": [], "existing": [], "removed": [], "skipped": []}
    ungranted = _ungranted(client, store)
    for topic in TOPICS[store.platform]:
        if topic in ungranted:  # Shopify would refuse it; the webhooks page says which scope to add
            done["skipped"].append(f"{topic} (needs the {ungranted[topic]} scope)")
            continue
        mine = [h for h in hooks if h["topic"] == topic and h["address"] == address]
        if any(h["status"] == "active" for h in mine):
            done["existing"].append(topic)
        else:
            if store.platform == "shopify":
                _method(client, "create_webhook")(topic, address)
            else:
                secret = store.secrets.get("webhook_secret")
                if not secret:
                    raise StorefrontError("the store has no webhook secret: set one first", retryable=False)
                _method(client, "create_webhook")(topic, address, secret)
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
                _method(client, "delete_webhook")(hook["id"])
                done["removed"].append(f"{topic} → {hook['address']}")
            except StorefrontError as exc:  # the new subscription is in place; an old one lingers
                log.warning("store %s: could not remove a stale %s subscription: %s", store.slug, topic, exc)
    return done
