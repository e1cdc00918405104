"""Which ERP customer an order belongs to, by the store's policy.

Policies (store setting `customer_policy`):
- `match` (default): one ERP customer per person across guest and account checkouts and across
  stores: the store account id, then the normalised email, then the normalised phone. A buyer none of
  these finds, but whose name and postcode the ERP has under other contact details, is a possible
  duplicate: neither merged nor duplicated silently, the order waits (PossibleDuplicate) until a person
  links it to one of those customers or makes a new one, and that decision is kept for the buyer.
- `always_new`: a new ERP customer for every order (an ERP that deduplicates on its own).
- `guest_account`: account holders are matched as above; every guest checkout is booked on one
  shared "web guest" customer (set `guest_customer_id` to use an existing ERP customer).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import BindParameter, Connection, and_, bindparam, delete, exists, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from adapters.clock import utcnow
from adapters.erp import ErpAdapter, RetryableErpError
from adapters.erp.base import ErpCustomerView
from adapters.prepared import Prepared, Sent
from connector.base.db import rowcount
from connector.base.models import CustomerLink, CustomerMatch, InboxEvent
from connector.base.runtime import Runtime, StoreInfo
from mappings.canonical import Customer, Order
from mappings.customers import normalise_email, normalise_phone

POLICIES = ("match", "always_new", "guest_account")
CLAIM_SECONDS = 60  # a claim of no event older than this belonged to a worker that died mid-way
CLAIM_WAIT_SECONDS = 2.0  # how long an order waits on another worker creating its buyer before it is retried

# The statements of every order's buyer, built once (building one costs more Python than sending it) and sent by
# the driver on PostgreSQL (adapters.prepared; issue 18).
_KEYS: BindParameter[list[str]] = bindparam("keys", expanding=True)
_LINKS = Prepared(select(CustomerLink.key, CustomerLink.erp_customer_id).where(CustomerLink.key.in_(_KEYS)))
_DECISION = Prepared(
    select(CustomerMatch.status, CustomerMatch.erp_customer_id)
    .where(CustomerMatch.customer_key.in_(_KEYS), CustomerMatch.status.in_(("linked", "created")))
    .order_by(CustomerMatch.decided_at.desc(), CustomerMatch.id.desc())
    .limit(1)
)
_CLAIMS: dict[int, Prepared] = {}  # by the number of keys claimed


def _claim_of(count: int) -> Prepared:
    """One INSERT of `count` claims (rows without a customer), all or nothing though each statement commits on its
    own; built once per count (a buyer has one to three keys). Not an executemany: that is a statement per row."""
    statement = _CLAIMS.get(count)
    if statement is None:
        row: dict[str, object] = {
            "erp_customer_id": None,
            "claimed_by": bindparam("claimed_by"),
            "claimed_at": bindparam("claimed_at"),
        }
        statement = _CLAIMS[count] = Prepared(
            insert(CustomerLink).values([{**row, "key": bindparam(f"key{n}")} for n in range(count)])
        )
    return statement


_LINK_CLAIMED = Prepared(
    update(CustomerLink)
    .where(CustomerLink.key.in_(_KEYS), CustomerLink.erp_customer_id.is_(None))
    .values(erp_customer_id=bindparam("customer_id"))
)


def customer_keys(order: Order) -> list[str]:
    keys = []
    if order.customer.external_id:
        keys.append(f"account:{order.source}:{order.store}:{order.customer.external_id}")
    if email := normalise_email(order.customer.email):
        keys.append(f"email:{email}")
    if phone := normalise_phone(order.customer.phone):
        keys.append(f"phone:{phone}")
    return keys


@dataclass(frozen=True)
class Ahead:
    """The buyer's links and a person's decision about them, sent ahead with the order's other first reads
    (connector.orders.lifecycle): what `resolve_customer` reads first, one round trip for all of them."""

    keys: list[str]
    links: Sent
    decision: Sent


def send_lookups(conn: Connection, store: StoreInfo, order: Order) -> Ahead | None:
    """Send the reads `resolve_customer` starts with, under the store's policy; None when it reads none."""
    if store.settings.get("customer_policy", "match") != "match":
        return None
    keys = customer_keys(order)
    if not keys:
        return None
    return Ahead(keys, _LINKS.send(conn, {"keys": keys}), _DECISION.send(conn, {"keys": keys}))


def resolve_customer(
    rt: Runtime,
    store: StoreInfo,
    order: Order,
    erp: ErpAdapter,
    event_id: int | None = None,
    ahead: Ahead | None = None,
) -> str:
    """The ERP customer of the order's buyer; `event_id` is the event being processed (a claim on the buyer's
    keys lasts while its lease does); `ahead`: its first reads, sent ahead (`send_lookups`)."""
    policy = store.settings.get("customer_policy", "match")
    if policy == "always_new":
        return erp.create_customer(order.customer, f"{order.external_ref}:customer")
    if policy == "guest_account" and order.customer.is_guest:
        if store.settings.get("guest_customer_id"):
            return str(store.settings["guest_customer_id"])
        guest = Customer(email=None, first_name="Web", last_name="guest")
        return _linked(rt, ["guest"], lambda: erp.create_customer(guest, "guest"), lambda: None, event_id)
    keys = customer_keys(order)
    if not keys:  # nothing to recognise the buyer by: a customer of their own
        return erp.create_customer(order.customer, f"{order.external_ref}:customer")
    email, phone = normalise_email(order.customer.email), normalise_phone(order.customer.phone)
    if ahead is not None and ahead.keys != keys:
        ahead = None  # read for other keys (cannot happen under one policy): read again
    return _linked(
        rt,
        keys,
        lambda: _create_unless_similar(rt, erp, order, keys, ahead),
        lambda: erp.find_customer(email, phone),
        event_id,
        ahead,
    )


class PossibleDuplicate(Exception):
    """The ERP has customers with the buyer's name and postcode but other contact details: a person decides."""

    def __init__(self, candidates: list[ErpCustomerView], keys: list[str]) -> None:
        super().__init__(f"{len(candidates)} ERP customer(s) with the same name and postcode")
        self.candidates, self.keys = candidates, keys


def _create_unless_similar(rt: Runtime, erp: ErpAdapter, order: Order, keys: list[str], ahead: Ahead | None) -> str:
    """A new ERP customer for a buyer the ERP does not know by account, email or phone, unless it has
    someone of the same name at the same postcode: then the person's decision, or PossibleDuplicate."""
    decided = _decided(ahead.decision.first()) if ahead is not None else decision_for(rt, keys)
    if decided is not None:
        status, customer_id = decided
        if status == "linked" and customer_id:
            return customer_id
        return erp.create_customer(order.customer, keys[0])
    similar = erp.similar_customers(order.customer.name, order.customer.postcode)
    if similar:
        raise PossibleDuplicate(similar, keys)
    return erp.create_customer(order.customer, keys[0])


def decision_for(rt: Runtime, keys: list[str]) -> tuple[str, str | None] | None:
    """What a person decided for a buyer with any of these keys: ("linked", ERP id) or ("created", None)."""
    with rt.autocommit_connection() as conn:
        return _decided(_DECISION.first(conn, {"keys": keys}))


def _decided(row: Any | None) -> tuple[str, str | None] | None:
    return (row.status, row.erp_customer_id) if row else None


def _linked(
    rt: Runtime,
    keys: list[str],
    create: Callable[[], str],
    find: Callable[[], str | None],
    event_id: int | None,
    ahead: Ahead | None = None,
) -> str:
    """The ERP customer linked to any of `keys`, else found in the ERP, else created once (`ahead`: the links as
    read ahead, for the first look)."""
    give_up, pause = time.monotonic() + CLAIM_WAIT_SECONDS, 0.01
    links = ahead.links.all() if ahead is not None else None
    while True:
        known, unlinked = _known(rt, keys, links)
        links = None  # a second look reads again
        if known is not None:
            _link(rt, unlinked, known)
            return known
        # Every key is claimed, not only the first: one buyer's first orders from two stores have different
        # account keys but the same email, and each alone would find no customer and create one.
        if _claim(rt, keys, event_id):
            break
        # Another worker is creating this buyer (two of their orders taken at once): it is done in
        # milliseconds, so look again shortly rather than retry the event seconds later.
        if time.monotonic() + pause > give_up:
            raise RetryableErpError(f"customer {keys[0]} is being created by another worker; trying again shortly")
        time.sleep(pause)
        pause = min(pause * 2, 0.25)
    try:
        customer_id = find() or create()
    except Exception:
        with rt.sessions.begin() as session:
            session.execute(
                delete(CustomerLink).where(CustomerLink.key.in_(keys), CustomerLink.erp_customer_id.is_(None))
            )
        raise
    _link_claimed(rt, keys, customer_id)
    return customer_id


def _known(rt: Runtime, keys: list[str], links: list[Any] | None = None) -> tuple[str | None, list[str]]:
    """(the ERP customer the first linked key names, or None; the keys not linked yet). A key linked already
    keeps its link (the first link wins): only the others need writing. `links`: the keys' rows, read already."""
    if links is None:
        with rt.autocommit_connection() as conn:
            links = _LINKS.all(conn, {"keys": keys})
    linked = {link.key: link.erp_customer_id for link in links if link.erp_customer_id}
    unlinked = [key for key in keys if key not in linked]
    return next((linked[key] for key in keys if key in linked), None), unlinked


def _claim(rt: Runtime, keys: list[str], event_id: int | None) -> bool:
    """All the keys for this worker (a row without a customer yet), or none of them: another worker holds one.
    A claim left by a worker that died is taken over: its event no longer holds a lease (the sweep hands the
    event on), an earlier attempt of this very event left it, or, for a claim of no event, CLAIM_SECONDS passed."""
    now = utcnow()
    claim = _claim_of(len(keys))
    claims = {"claimed_by": event_id, "claimed_at": now, **{f"key{n}": key for n, key in enumerate(keys)}}
    try:  # a buyer nobody holds, the usual case: one INSERT of every key
        with rt.autocommit_connection() as conn:
            claim.run(conn, claims)
        return True
    except IntegrityError:
        pass
    holder_alive = exists().where(
        InboxEvent.id == CustomerLink.claimed_by, InboxEvent.status == "processing", InboxEvent.locked_until > now
    )
    left = or_(
        and_(CustomerLink.claimed_by.is_(None), CustomerLink.claimed_at < now - timedelta(seconds=CLAIM_SECONDS)),
        and_(CustomerLink.claimed_by.is_not(None), ~holder_alive),
        *([CustomerLink.claimed_by == event_id] if event_id is not None else []),
    )
    try:  # a key is held: by a live worker (this fails again), or left behind (taken over)
        with rt.sessions.begin() as session:
            session.execute(
                delete(CustomerLink).where(CustomerLink.key.in_(keys), CustomerLink.erp_customer_id.is_(None), left)
            )
            claim.run(session.connection(), claims)
        return True
    except IntegrityError:
        return False


def _link_claimed(rt: Runtime, keys: list[str], customer_id: str) -> None:
    """Link the keys this worker claimed: one UPDATE, unless a claim was taken over meanwhile (then key by key)."""
    if not keys:
        return
    with rt.autocommit_connection() as conn:
        linked = _LINK_CLAIMED.run(conn, {"keys": keys, "customer_id": customer_id})
    if linked < len(keys):
        _link(rt, keys, customer_id)


def _link(rt: Runtime, keys: list[str], customer_id: str) -> None:
    if not keys:
        return
    # One transaction, a savepoint per key: a key linked meanwhile by another worker keeps its link.
    with rt.sessions.begin() as session:
        for key in keys:
            try:
                with session.begin_nested():
                    updated = rowcount(
                        session.execute(
                            update(CustomerLink)
                            .where(CustomerLink.key == key, CustomerLink.erp_customer_id.is_(None))
                            .values(erp_customer_id=customer_id)
                        )
                    )
                    if not updated and session.get(CustomerLink, key) is None:
                        session.add(CustomerLink(key=key, erp_customer_id=customer_id))
                        session.flush()
            except IntegrityError:
                pass  # linked meanwhile by another worker; the first link wins
