"""Privacy requests: export or erase what we hold about a customer, erase a shop.

A platform's privacy webhooks (requests for a customer's data, to redact a customer, to redact a
shop) and, for any store, `erase_customer` (the `connector customer erase` command and its API
call): a platform without privacy webhooks has its merchants erase from here.

What we hold about a person: the order webhooks we stored (raw payloads with names, emails,
addresses), the canonical orders kept on those events, the customer links (normalised email, phone,
store account id → ERP customer id) and, with the file-drop ERP, our ledger of the customers we wrote.
The ERP's own records are the merchant's system of record and are not ours to erase.

A person is found by the structured fields that hold people (the order's customer id, its emails and
phones, normalised; which fields is the platform's `named_in`) and by order id, never by searching the
raw body: ann@ must not match joann@. `shop/redact` erases a whole store, so it runs only once the
store's API confirms the app is uninstalled (it is sent 48 h after an uninstall), or once an admin
confirms it on the console.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta

import orjson
from sqlalchemy import delete, select, update

from adapters.clock import utcnow
from connector.base.audit import audit
from connector.base.clients import sync_client
from connector.base.db import rowcount
from connector.base.models import Approval, CustomerLink, CustomerMatch, InboxEvent, Store
from connector.base.runtime import Runtime, StoreInfo
from mappings.customers import normalise_email, normalise_phone
from platforms.base import Named
from platforms.registry import PLATFORMS, RECEIVERS, platform

BATCH = 500
REQUEST_TOPICS = ("customers/data_request", "customers/redact", "shop/redact")
# What a redacted event keeps of its headers: the one naming its topic.
KEPT_HEADERS = frozenset(r.topic_header for r in RECEIVERS.values() if r.topic_header)


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
        accounts: Iterable[object] = (),
        emails: Iterable[object] = (),
        phones: Iterable[object] = (),
        orders: Iterable[object] = (),
    ) -> Person:
        self.accounts |= {
            str(a) for a in accounts if isinstance(a, int | str) and not isinstance(a, bool) and str(a) not in ("", "0")
        }
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


def webhook_actor(store: StoreInfo, event_id: int) -> str:
    """Who the audit log says acted on a store's webhook."""
    return f"{platform(store.platform).label} webhook (event {event_id})"


def person(named: Named) -> Person:
    return Person().add(accounts=named.accounts, emails=named.emails, phones=named.phones, orders=named.orders)


def named_in(platform_name: str, topic: str, payload: dict) -> Person:
    """Who a stored payload names (docs/platforms.md#privacy-requests)."""
    found = PLATFORMS.get(platform_name)
    return person(found.named_in(topic, payload)) if found is not None else Person()


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


def data_request(rt: Runtime, store: StoreInfo, payload: dict, named: Named, event_id: int) -> dict:
    """Everything we hold about the customer, kept on this event for the merchant to hand over (until the
    daily prune erases exports older than EXPORT_DAYS)."""
    wanted = person(named)
    found = [event for event, found_named in _events(rt, store.id) if wanted.shares(found_named)]
    keys = wanted.link_keys(store.platform, store.slug)
    with rt.sessions() as session:
        links = session.scalars(select(CustomerLink).where(CustomerLink.key.in_(keys))).all()
    _minimise_request(rt, event_id, payload)
    audit(
        rt,
        webhook_actor(store, event_id),
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


def customers_redact(rt: Runtime, store: StoreInfo, payload: dict, named: Named, event_id: int) -> dict:
    result = _erase(rt, store, person(named), webhook_actor(store, event_id))
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
    person = Person().add(accounts=[account], emails=[email], phones=[phone])
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


def shop_redact(rt: Runtime, store: StoreInfo, _payload: dict, _named: Named, event_id: int) -> dict:
    """48 h after the app was uninstalled: nothing personal of the shop's stays with us."""
    actor = confirmed_by(rt, event_id)
    if actor is None and uninstalled(store):
        actor = webhook_actor(store, event_id)
    if actor is None:
        raise NeedsConfirmation(
            "shop/redact would erase every stored event of this store and deactivate it, but the store's Admin "
            "API still accepts our token, so the app is installed, and the platform sends shop/redact only 48 h after "
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

    found = platform(store.platform)
    if found.installed is None:  # its API cannot tell
        return False
    if store.disconnected_at is not None:
        return True
    if not found.has_api(store.settings, store.secrets):
        return False
    return not found.installed(sync_client(store))


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


EXPORT_DAYS = 14  # the platform gives the merchant 30 days from the request; they hand it over sooner


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
