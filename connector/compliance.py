"""Privacy requests: export or erase what we hold about a customer, erase a shop.

Shopify's mandatory webhooks (`customers/data_request`, `customers/redact`, `shop/redact`) and, for
any store, `erase_customer` (the `connector customer erase` command and its API call): WooCommerce has
no privacy webhooks, so its merchants erase from here, as its own personal data eraser does.

What we hold about a person: the order webhooks we stored (raw payloads with names, emails,
addresses), the canonical orders kept on those events, the customer links (normalised email, phone,
store account id → ERP customer id) and, with the file-drop ERP, our ledger of the customers we wrote.
The ERP's own records are the merchant's system of record and are not ours to erase.

A person is found by the structured fields that hold people (the order's customer id, its emails and
phones, normalised) and by order id, never by searching the raw body: ann@ must not match joann@.
`shop/redact` erases a whole store, so it runs only once the store's Admin API confirms the app is
uninstalled (Shopify sends it 48 h after an uninstall), or once an admin confirms it on the console.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta

import orjson
from sqlalchemy import delete, select, update

from adapters.clock import utcnow
from connector.audit import audit
from connector.clients import shopify_client
from connector.db import rowcount
from connector.models import Approval, CustomerLink, CustomerMatch, InboxEvent, Store
from connector.runtime import Runtime, StoreInfo
from mappings.customers import normalise_email, normalise_phone
from mappings.topics import SHOPIFY_ORDER_TOPICS, SHOPIFY_RETURN_TOPICS, WOO_ORDER_TOPICS
from platforms.registry import platform

BATCH = 500
REQUEST_TOPICS = ("customers/data_request", "customers/redact", "shop/redact")
WEBHOOK_ACTOR = "Shopify webhook (event {event_id})"
KEPT_HEADERS = ("X-Shopify-Topic", "X-WC-Webhook-Topic")  # what a redacted event keeps of its headers


class NeedsConfirmation(Exception):
    """A destructive request that may be a replay: parked until an admin confirms it."""


@dataclass
class Person:
    """The identities a request or a stored payload names, normalised."""

    accounts: set[str] = field(default_factory=set)  # the store's customer ids
    emails: set[str] = field(default_factory=set)
    phones: set[str] = field(default_factory=set)
    orders: set[str] = field(default_factory=set)  # the store's order ids

    def add(
        self,
        *,
        account: object = None,
        emails: Iterable[object] = (),
        phones: Iterable[object] = (),
        orders: Iterable[object] = (),
    ) -> Person:
        if isinstance(account, int | str) and not isinstance(account, bool) and str(account) not in ("", "0"):
            self.accounts.add(str(account))
        self.emails |= {e for e in (normalise_email(v) for v in emails if isinstance(v, str)) if e}
        self.phones |= {p for p in (normalise_phone(v) for v in phones if isinstance(v, str)) if p}
        self.orders |= {str(o) for o in orders if isinstance(o, int | str) and not isinstance(o, bool)}
        return self

    def shares(self, other: Person) -> bool:
        return bool(
            self.accounts & other.accounts
            or self.emails & other.emails
            or self.phones & other.phones
            or self.orders & other.orders
        )

    def link_keys(self, platform: str, slug: str) -> list[str]:
        return (
            [f"email:{e}" for e in sorted(self.emails)]
            + [f"phone:{p}" for p in sorted(self.phones)]
            + [f"account:{platform}:{slug}:{a}" for a in sorted(self.accounts)]
        )


def _dict(value: object) -> dict:
    return value if isinstance(value, dict) else {}


def requested(payload: dict, orders_key: str) -> Person:
    """The person a Shopify privacy request names."""
    customer = _dict(payload.get("customer"))
    return Person().add(
        account=customer.get("id"),
        emails=[customer.get("email")],
        phones=[customer.get("phone")],
        orders=payload.get(orders_key) or [],
    )


def named_in(platform: str, topic: str, payload: dict) -> Person:
    """Who a stored payload names, read from the fields that hold people (docs/platforms.md#privacy-requests)."""
    if platform == "shopify" and topic in SHOPIFY_ORDER_TOPICS:
        customer = _dict(payload.get("customer"))
        return Person().add(
            account=customer.get("id"),
            orders=[payload.get("id")],
            emails=[payload.get("email"), payload.get("contact_email"), customer.get("email")],
            phones=[
                payload.get("phone"),
                customer.get("phone"),
                _dict(payload.get("billing_address")).get("phone"),
                _dict(payload.get("shipping_address")).get("phone"),
            ],
        )
    if platform == "shopify" and topic == "refunds/create":
        return Person().add(orders=[payload.get("order_id")])
    if platform == "shopify" and topic == "orders/edited":
        return Person().add(orders=[_dict(payload.get("order_edit")).get("order_id")])
    if platform == "shopify" and topic in SHOPIFY_RETURN_TOPICS:  # the buyer's own words ride on the order
        return Person().add(orders=[_dict(payload.get("order")).get("id"), payload.get("order_id")])
    if platform == "woocommerce" and topic in WOO_ORDER_TOPICS:
        billing = _dict(payload.get("billing"))
        return Person().add(
            account=payload.get("customer_id"),
            orders=[payload.get("id")],
            emails=[billing.get("email")],
            phones=[billing.get("phone"), _dict(payload.get("shipping")).get("phone")],
        )
    if platform == "woocommerce" and topic == "order.deleted":
        return Person().add(orders=[payload.get("id")])
    return Person()


def _events(rt: Runtime, store_id: int, skip_requests: bool = True) -> Iterator[tuple[InboxEvent, Person]]:
    """Each stored event of the store with the people its payload names."""
    last = 0
    while True:
        query = select(InboxEvent).where(InboxEvent.store_id == store_id, InboxEvent.id > last)
        if skip_requests:
            query = query.where(InboxEvent.topic.notin_(REQUEST_TOPICS))
        with rt.sessions() as session:
            batch = session.scalars(query.order_by(InboxEvent.id).limit(BATCH)).all()
        if not batch:
            return
        for event in batch:
            try:
                payload = orjson.loads(event.body)
            except orjson.JSONDecodeError:
                payload = None
            yield event, named_in(event.platform, event.topic, payload) if isinstance(payload, dict) else Person()
        last = batch[-1].id


def data_request(rt: Runtime, store: StoreInfo, payload: dict, event_id: int) -> dict:
    """Everything we hold about the customer, kept on this event for the merchant to hand over (until the
    daily prune erases exports older than EXPORT_DAYS)."""
    person = requested(payload, "orders_requested")
    found = [event for event, named in _events(rt, store.id) if person.shares(named)]
    keys = person.link_keys(store.platform, store.slug)
    with rt.sessions() as session:
        links = session.scalars(select(CustomerLink).where(CustomerLink.key.in_(keys))).all()
    _minimise_request(rt, event_id, payload)
    audit(
        rt,
        WEBHOOK_ACTOR.format(event_id=event_id),
        "privacy.data_request",
        store.slug,
        {"events": len(found), "links": len(links)},
    )
    return {
        "export": {
            "events": [
                {
                    "id": e.id,
                    "topic": e.topic,
                    "received_at": e.received_at.isoformat(),
                    "order": e.order_number,
                    "payload": e.body.decode("utf-8", "replace"),
                }
                for e in found
            ],
            "customer_links": [{"key": link.key, "erp_customer_id": link.erp_customer_id} for link in links],
        },
        "note": f"{len(found)} stored event(s) and {len(links)} customer link(s) about this customer",
    }


def customers_redact(rt: Runtime, store: StoreInfo, payload: dict, event_id: int) -> dict:
    result = _erase(rt, store, requested(payload, "orders_to_redact"), WEBHOOK_ACTOR.format(event_id=event_id))
    _minimise_request(rt, event_id, payload)
    return result


def erase_customer(
    rt: Runtime,
    slug: str,
    *,
    email: str | None = None,
    phone: str | None = None,
    account: str | None = None,
    actor: str,
) -> dict:
    """Erase what we hold about one customer of the store `slug` (any platform): ValueError when no valid
    identity is given, LookupError for an unknown store."""
    person = Person().add(account=account, emails=[email], phones=[phone])
    if not (person.accounts or person.emails or person.phones):
        raise ValueError("name the customer: a valid email, a phone of 6 digits or more, or the store's customer id")
    with rt.sessions() as session:
        row = session.scalars(select(Store).where(Store.slug == slug)).first()
        if row is None:
            raise LookupError(f"no store {slug!r}")
        store = rt.store_info(row)
    return _erase(rt, store, person, actor)


def _erase(rt: Runtime, store: StoreInfo, person: Person, actor: str) -> dict:
    matched = [(event.id, named) for event, named in _events(rt, store.id) if person.shares(named)]
    redacted = _redact(rt, [event_id for event_id, _ in matched])
    # What the matched orders name besides the request (a second email, a phone) is the same person's too.
    for _, named in matched:
        person.emails |= named.emails
        person.phones |= named.phones
    unlinked = _unlink(rt, person.link_keys(store.platform, store.slug))
    ledger = _forget_in_erp(rt, person)
    orders = {o for _, named in matched for o in named.orders} | person.orders
    _forget_held(rt, store.id, orders)
    note = f"redacted {redacted} stored event(s), removed {unlinked} customer link(s)" + (
        f", erased {ledger} customer(s) from the file-drop ledger" if ledger else ""
    )
    audit(rt, actor, "privacy.erase_customer", store.slug, {"events": redacted, "links": unlinked, "ledger": ledger})
    return {"note": note}


def _forget_held(rt: Runtime, store_id: int, orders: set[str] | None) -> None:
    """What the approval and customer-decision lists keep of these orders' buyers (None: every order of the
    store) goes; the decisions themselves, with who took them, stay."""
    with rt.sessions.begin() as session:
        for model, values in ((Approval, {"customer": ""}), (CustomerMatch, {"buyer": {}, "candidates": []})):
            query = update(model).where(model.store_id == store_id)
            if orders is not None:
                query = query.where(model.order_external_id.in_(sorted(orders)))
            session.execute(query.values(**values))


def shop_redact(rt: Runtime, store: StoreInfo, _payload: dict, event_id: int) -> dict:
    """48 h after the app was uninstalled: nothing personal of the shop's stays with us."""
    actor = confirmed_by(rt, event_id)
    if actor is None and uninstalled(store):
        actor = WEBHOOK_ACTOR.format(event_id=event_id)
    if actor is None:
        raise NeedsConfirmation(
            "shop/redact would erase every stored event of this store and deactivate it, but the store's Admin "
            "API still accepts our token, so the app is installed, and Shopify only sends shop/redact 48 h after "
            "an uninstall: this delivery may be a replay. Nothing was erased. If the merchant did uninstall, "
            "an admin can confirm it on this event's page"
        )
    everyone = Person()
    ids = []
    for event, named in _events(rt, store.id, skip_requests=False):
        if event.id != event_id:
            ids.append(event.id)
            everyone.emails |= named.emails
            everyone.phones |= named.phones
    redacted = _redact(rt, ids)
    with rt.sessions.begin() as session:
        unlinked = rowcount(
            session.execute(
                delete(CustomerLink).where(CustomerLink.key.like(f"account:{store.platform}:{store.slug}:%"))
            )
        )
        session.get_one(Store, store.id).active = False
    unlinked += _unlink(rt, everyone.link_keys(store.platform, store.slug))
    ledger = _forget_in_erp(rt, everyone)
    _forget_held(rt, store.id, None)
    detail = {"events": redacted, "links": unlinked, "ledger": ledger}
    audit(rt, actor, "privacy.shop_redact", store.slug, detail)
    return {
        "note": f"shop redacted by {actor}: {redacted} stored event(s) emptied, {unlinked} customer link(s) "
        f"removed, store deactivated",
        **detail,
    }


def uninstalled(store: StoreInfo) -> bool:
    """True when the Admin API refuses our token (the app is gone) or the store was disconnected by an
    uninstall already; False when it answers or we have no credentials to ask with. Network trouble is
    raised (retryable): we never guess on a destructive request."""

    if store.platform != "shopify":
        return False
    if store.disconnected_at is not None:
        return True
    if not platform(store.platform).has_api(store.settings, store.secrets):
        return False
    return not shopify_client(store).installed()


def confirmed_by(rt: Runtime, event_id: int) -> str | None:
    with rt.sessions() as session:
        event = session.get(InboxEvent, event_id)
        confirmed = (event.result or {}).get("confirmed_by") if event is not None else None
    return f"{confirmed} (confirmed event {event_id})" if confirmed else None


def _unlink(rt: Runtime, keys: list[str]) -> int:
    removed = 0
    for start in range(0, len(keys), BATCH):
        with rt.sessions.begin() as session:
            removed += rowcount(
                session.execute(delete(CustomerLink).where(CustomerLink.key.in_(keys[start : start + BATCH])))
            )
    return removed


def _forget_in_erp(rt: Runtime, person: Person) -> int:
    """Back ends that keep a ledger of people of their own (the file drop) erase them there too."""
    if not (person.emails or person.phones):
        return 0
    forget = getattr(rt.erp(), "forget_customers", None)
    return int(forget(sorted(person.emails), sorted(person.phones))) if forget else 0


def _minimise_request(rt: Runtime, event_id: int, payload: dict) -> None:
    """A request keeps what identifies it (ids), not the email and phone it carried."""
    kept = {
        key: payload[key]
        for key in ("shop_id", "shop_domain", "orders_requested", "orders_to_redact", "data_request")
        if key in payload
    }
    kept["customer"] = {"id": _dict(payload.get("customer")).get("id"), "email": None, "phone": None}
    with rt.sessions.begin() as session:
        event = session.get(InboxEvent, event_id)
        if event is not None:
            event.body = orjson.dumps(kept)


def _redact(rt: Runtime, event_ids: list[int]) -> int:
    """Keep each event's bookkeeping (ids, topic, status, times); drop every personal field."""
    for start in range(0, len(event_ids), BATCH):
        with rt.sessions.begin() as session:
            for event in session.scalars(select(InboxEvent).where(InboxEvent.id.in_(event_ids[start : start + BATCH]))):
                event.body = orjson.dumps({"redacted": True, "id": event.resource_id})
                event.headers = {k: v for k, v in (event.headers or {}).items() if k in KEPT_HEADERS}
                if event.result:
                    event.result = {k: v for k, v in event.result.items() if k in ("erp_ref", "done", "note")}
    return len(event_ids)


EXPORT_DAYS = 14  # Shopify gives the merchant 30 days from the request; they hand it over sooner


def expire_exports(rt: Runtime) -> int:
    """Erase data-request exports older than EXPORT_DAYS (the daily prune calls this)."""
    cutoff = utcnow() - timedelta(days=EXPORT_DAYS)
    with rt.sessions.begin() as session:
        events = session.scalars(
            select(InboxEvent).where(InboxEvent.topic == "customers/data_request", InboxEvent.processed_at < cutoff)
        ).all()
        expired = 0
        for event in events:
            if isinstance(event.result, dict) and "export" in event.result:
                event.result = {"note": f"export erased after {EXPORT_DAYS} days: {event.result.get('note', '')}"}
                expired += 1
    return expired
