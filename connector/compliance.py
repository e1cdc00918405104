"""Shopify's mandatory privacy webhooks: export or redact what we hold about a customer or a shop.

What we hold about a person: the order webhooks we stored (raw payloads with names, emails,
addresses), the canonical orders kept on those events, and the customer links (normalised email,
phone, store account id → ERP customer id). The ERP's own records are the merchant's system of
record and are not ours to erase; the README says so.
"""
from __future__ import annotations

import json
from collections.abc import Iterator

from sqlalchemy import delete, select

from connector.models import CustomerLink, InboxEvent, Store
from connector.runtime import Runtime, StoreInfo
from mappings.customers import normalise_email, normalise_phone

BATCH = 500
REDACTED_TOPICS = ("customers/data_request", "customers/redact", "shop/redact")


def _person(payload: dict) -> tuple[set[str], list[bytes], list[str]]:
    customer = payload.get("customer") if isinstance(payload.get("customer"), dict) else {}
    orders = {str(o) for key in ("orders_requested", "orders_to_redact") for o in payload.get(key) or []}
    needles = [v.encode() for v in (customer.get("email"), customer.get("phone")) if isinstance(v, str) and v]
    keys = []
    if email := normalise_email(customer.get("email")):
        keys.append(f"email:{email}")
    if phone := normalise_phone(customer.get("phone")):
        keys.append(f"phone:{phone}")
    return orders, needles, keys


def _events(rt: Runtime, store_id: int) -> Iterator[InboxEvent]:
    last = 0
    while True:
        with rt.sessions() as session:
            batch = session.scalars(select(InboxEvent).where(
                InboxEvent.store_id == store_id, InboxEvent.id > last,
                InboxEvent.topic.notin_(REDACTED_TOPICS)).order_by(InboxEvent.id).limit(BATCH)).all()
        if not batch:
            return
        yield from batch
        last = batch[-1].id


def _concerns(event: InboxEvent, orders: set[str], needles: list[bytes]) -> bool:
    lowered = event.body.lower()
    return event.resource_id in orders or any(n.lower() in lowered for n in needles)


def data_request(rt: Runtime, store: StoreInfo, payload: dict, _event_id: int) -> dict:
    """Everything we hold about the customer, kept on this event for the merchant to hand over."""
    orders, needles, keys = _person(payload)
    found = [e for e in _events(rt, store.id) if _concerns(e, orders, needles)]
    with rt.sessions() as session:
        links = session.scalars(select(CustomerLink).where(CustomerLink.key.in_(keys))).all() if keys else []
    return {
        "export": {
            "events": [{"id": e.id, "topic": e.topic, "received_at": e.received_at.isoformat(),
                        "order": e.order_number, "payload": e.body.decode("utf-8", "replace")} for e in found],
            "customer_links": [{"key": link.key, "erp_customer_id": link.erp_customer_id} for link in links],
        },
        "note": f"{len(found)} stored event(s) and {len(links)} customer link(s) about this customer",
    }


def customers_redact(rt: Runtime, store: StoreInfo, payload: dict, _event_id: int) -> dict:
    orders, needles, keys = _person(payload)
    redacted = _redact(rt, [e.id for e in _events(rt, store.id) if _concerns(e, orders, needles)])
    customer_id = (payload.get("customer") or {}).get("id") if isinstance(payload.get("customer"), dict) else None
    if customer_id is not None:
        keys.append(f"account:shopify:{store.slug}:{customer_id}")
    with rt.sessions.begin() as session:
        unlinked = session.execute(delete(CustomerLink).where(CustomerLink.key.in_(keys))).rowcount if keys else 0
    return {"note": f"redacted {redacted} stored event(s), removed {unlinked} customer link(s)"}


def shop_redact(rt: Runtime, store: StoreInfo, _payload: dict, _event_id: int) -> dict:
    """48 h after the app was uninstalled: nothing personal of the shop's stays with us."""
    redacted = _redact(rt, [e.id for e in _events(rt, store.id)])
    with rt.sessions.begin() as session:
        unlinked = session.execute(delete(CustomerLink).where(
            CustomerLink.key.like(f"account:shopify:{store.slug}:%"))).rowcount
        session.get(Store, store.id).active = False
    return {"note": f"shop redacted: {redacted} stored event(s) emptied, {unlinked} account link(s) removed, "
                    "store deactivated"}


def _redact(rt: Runtime, event_ids: list[int]) -> int:
    """Keep each event's bookkeeping (ids, topic, status, times); drop every personal field."""
    for start in range(0, len(event_ids), BATCH):
        with rt.sessions.begin() as session:
            for event in session.scalars(select(InboxEvent).where(InboxEvent.id.in_(event_ids[start:start + BATCH]))):
                event.body = json.dumps({"redacted": True, "id": event.resource_id}).encode()
                event.headers = {k: v for k, v in (event.headers or {}).items() if k in ("X-Shopify-Topic",)}
                if event.result:
                    event.result = {k: v for k, v in event.result.items() if k in ("erp_ref", "done", "note")}
    return len(event_ids)
