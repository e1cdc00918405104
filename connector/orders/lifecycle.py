"""An order's life in the ERP: created, paid, edited, cancelled, refunded — applied in order, once.

The storefront is the system of record for orders and payments, so every order event carries the
order's whole current state; we compare it with what the ERP already has (the bindings in
`order_links` and `erp_documents`) and make only the missing ERP writes. A payload older than the
version already applied changes nothing. Each ERP write is idempotent on its own key, and its
binding is committed at once, so a replay after a crash finds what was done.

Payments: one ERP payment per transaction that brought money in (a gift card and a card are two),
keyed `{external_ref}:payment:{transaction id}`, once the order is paid. When the store tells no
transactions (a platform that tells none; a store without API credentials) the order gets one payment
of its total, keyed `{external_ref}:payment`, as before. An order that already has that single
payment never gets transaction payments for the same money; once every transaction payment is
booked, a `payments` binding says so, so later events of the order ask the store nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from adapters.clock import utcnow
from adapters.erp import ErpAdapter, OrderResult, PaymentRecord
from adapters.erp.base import PaysWithOrder
from adapters.prepared import Prepared
from connector.base.models import ErpDocument, InboxEvent, MappingEntry, OfflineRefund, OrderLink, Reservation
from connector.base.runtime import Runtime, StoreInfo
from connector.base.upsert import insert_if_new
from connector.orders.attribution import decide_attribution, record_attribution, send_first_attribution
from connector.orders.customers import PossibleDuplicate, resolve_customer, send_lookups
from connector.orders.holds import ask_about_customer, gate, send_approval
from connector.orders.routing import route_order
from mappings.attribution import Attribution
from mappings.canonical import Order, Refund, Transaction, money_sum
from mappings.merchant import MerchantTables
from mappings.refund_notes import PREFIX, names_credit_note
from platforms.base import RiskSource, TransactionSource
from platforms.registry import platform

PAID = ("paid", "partially_refunded", "refunded")

# The statements every order runs, built once (building one costs more Python than sending it) and sent by the
# driver on PostgreSQL (adapters.prepared; issue 18).
_LINK = Prepared(
    select(OrderLink.external_ref, OrderLink.erp_ref, OrderLink.currency, OrderLink.source_updated_at).where(
        OrderLink.store_id == bindparam("store_id"), OrderLink.external_id == bindparam("external_id")
    )
)
_BIND_DOCUMENT = Prepared(insert(ErpDocument))
_RESERVE = Prepared(insert(cast(Table, Reservation.__table__)))  # the rows as one executemany, no ORM objects


def apply_order(
    rt: Runtime,
    store: StoreInfo,
    order: Order,
    raw_status: str,
    event_id: int,
    transactions: TransactionSource | None = None,
    risk: RiskSource | None = None,
) -> dict:
    """Bring the ERP in line with this version of the order; return what was done, for the console.
    `transactions` is called only when the order's payments are due and not yet all in the ERP; `risk`
    only when the store's approval rules look at the order's fraud risk."""
    # The order's link, its approval and its buyer's links and decision, read together: one round trip instead of
    # one each (issue 18). Only the link is always wanted; the others are cheap index reads.
    with rt.atomic() as conn:
        sent = _LINK.send(conn, {"store_id": store.id, "external_id": order.external_id})
        approval = send_approval(conn, store.id, order.external_id)
        ahead = send_lookups(conn, store, order)
    link = sent.first()
    if link is not None and order.updated_at < link.source_updated_at:
        return {"erp_ref": link.erp_ref, "note": "stale: the ERP already has a newer version"}
    erp = rt.erp()
    done: list[str] = []
    if link is not None and order.updated_at == link.source_updated_at:
        # This version's order was written, but an attempt may have failed before its payment or
        # cancellation was: make what it still lacks (nothing, for a plain repeat).
        with rt.autocommit() as session:
            bound = _bound_documents(session, store.id, order.external_id)
        _documents(rt, store, order, erp, event_id, bound, done, transactions)
        return {
            "erp_ref": link.erp_ref,
            "done": done,
            "note": "repeated: the ERP already has this version" if not done else "",
        }
    if link is None:
        allowed = store.settings.get("import_statuses", platform(store.platform).import_statuses)
        if allowed is not None and raw_status not in allowed and order.status != "cancelled":
            return {"note": f"not imported: status {raw_status} (this store imports {', '.join(allowed)})"}
        held = gate(rt, store, order, erp, risk, approval)  # the merchant's approval rules, before any ERP write
        if held is not None:
            return held
        if order.status == "cancelled":
            return {"note": "cancelled before it reached the ERP: nothing to book"}
    erp.check_order(order)  # before any write: a refused order leaves no customer behind
    try:
        customer_id = resolve_customer(rt, store, order, erp, event_id, ahead)
    except PossibleDuplicate as asked:  # neither merged nor duplicated silently: a person decides
        return ask_about_customer(rt, store, order, asked)
    order, routing = route_order(rt, store, order, first=link is None)  # kept from the first write
    credit = decide_attribution(rt, store, order, erp, customer_id, first=link is None)
    paid_with = _payments_with_order(erp, order, transactions) if link is None else []
    if paid_with:  # the order and its payments in one ERP commit
        written = cast(PaysWithOrder, erp).push_order(order, customer_id, credit, [p for *_, p in paid_with])
    else:
        written = erp.push_order(order, customer_id, credit)
    done.append("created" if written.created else "updated" if written.updated else "unchanged")
    made = _Written(order, written, credit, customer_id, event_id, paid_with)
    first = _bind_first(rt, store, made, done) if link is None else None
    documents = first if first is not None else _bind(rt, store, made, done, known=link is not None)
    _documents(rt, store, order, erp, event_id, documents, done, transactions)
    result = {
        "erp_ref": written.erp_ref,
        "done": done,
        "note": written.note,
        "attribution": credit.describe(order.totals.total),
        **({"routing": routing.describe()} if routing is not None else {}),
    }
    removed = [f"{line.removed} × {line.sku or line.title}" for line in order.lines if line.removed]
    if removed:
        # The ERP order keeps the units as placed (so its total stays the store's); the store refunds them,
        # which reaches the ERP as a credit note. The stock held for the order no longer counts them.
        result["edits"] = (
            f"taken off by an order edit: {', '.join(removed)}; no longer held in stock, "
            "credited when the store refunds them"
        )
    return result


PaidWith = list[tuple[str, str, str, PaymentRecord]]  # (kind, key, what was done, payment): see _payments_with_order


@dataclasses.dataclass(frozen=True)
class _Written:
    """An order version the ERP was just given, and what its binding keeps with it."""

    order: Order
    result: OrderResult
    credit: Attribution
    customer_id: str
    event_id: int
    paid_with: PaidWith  # the payments written with the order

    def payments(self) -> list[tuple[str, str, str, str]]:
        """(kind, key, what was done, ERP ref) of each payment written with the order."""
        return [
            (kind, key, said, erp_ref)
            for (kind, key, said, _), erp_ref in zip(self.paid_with, self.result.payments, strict=True)
        ]


def _bind_first(rt: Runtime, store: StoreInfo, made: _Written, done: list[str]) -> dict[tuple[str, str], str] | None:
    """The order's first binding, its attribution, the stock it holds and the bindings of the payments written with
    it, sent together and committed as one (one round trip on PostgreSQL, where a transaction of them took six); the
    documents now bound. None when a concurrent event of the order bound it first: then nothing of this was
    written but what that event's binding already holds (its insert does nothing on the conflict; stock held twice
    is refused, taking the whole commit back), and the order is bound as a known one (`_bind`)."""
    order, bound = made.order, {}
    try:
        with rt.atomic() as conn:
            link = insert_if_new(conn, OrderLink.__table__, ("store_id", "external_id"), "id").send(
                conn, _link_row(store.id, order, made.result.erp_ref, made.event_id)
            )
            send_first_attribution(conn, store, order, made.credit, made.customer_id)
            _RESERVE.many(conn, _reservation_rows(store.id, order))
            documents = insert_if_new(conn, ErpDocument.__table__, ("store_id", "kind", "key"), "id")
            sent = [
                documents.send(conn, _document_row(store.id, order.external_id, kind, key, erp_ref, made.event_id))
                for kind, key, _, erp_ref in made.payments()
            ]
    except IntegrityError:
        return None
    if link.first() is None:
        return None
    for (kind, key, said, erp_ref), document in zip(made.payments(), sent, strict=True):
        if document.first() is not None:
            done.append(said)
        bound[kind, key] = erp_ref
    return bound


def _bind(rt: Runtime, store: StoreInfo, made: _Written, done: list[str], known: bool) -> dict[tuple[str, str], str]:
    """The order's binding (made, or moved to this version), its attribution, the stock it holds and the payments
    written with it, in one commit; the documents bound to the order. `known`: a link was read before the write."""
    order = made.order
    with rt.sessions.begin() as session:
        first = _bind_order(session, store.id, order, made.result.erp_ref, made.event_id, known=known)
        record_attribution(session, store, order, made.credit, made.customer_id, first=not known)
        _reserve(session, store.id, order, first)
        # Read here, not in a session of its own; none yet when this made the order's first binding (a payment
        # or cancellation is bound only once its order is).
        bound = {} if first else _bound_documents(session, store.id, order.external_id)
        for kind, key, said, erp_ref in made.payments():
            if _bind_if_new(session, store.id, order.external_id, kind, key, erp_ref, made.event_id):
                done.append(said)
            bound[kind, key] = erp_ref
    return bound


def _payments_with_order(
    erp: ErpAdapter, order: Order, transactions: TransactionSource | None
) -> list[tuple[str, str, str, PaymentRecord]]:
    """The payments a new order's ERP write can carry, as (kind, key, what was done, payment): those `_payments`
    would book next, when the back end books them in the order's transaction and the store need not be asked
    which they are. [] otherwise: then they are booked after the order, as before."""
    if not getattr(erp, "books_payments_with_order", False) or order.payment.status not in PAID:
        return []
    if transactions is not None and not order.transactions:
        return []  # the store is asked for them once the order is in
    ref, received = order.external_ref, order.received
    if not received:
        return [("payment", f"{ref}:payment", "payment recorded", _payment(order, f"{ref}:payment"))]
    if money_sum([tx.amount for tx in received], order.currency) != order.totals.total:
        return []  # the gap is noted by _payments
    return [
        (
            "payment",
            key := f"{ref}:payment:{tx.external_id}",
            f"payment recorded: {tx.amount} by {tx.method} via {tx.gateway or 'unknown gateway'}",
            _transaction_payment(order, tx, key),
        )
        for tx in received
    ]


def _bind_if_new(
    session: Session, store_id: int, order_external_id: str, kind: str, key: str, erp_ref: str, event_id: int
) -> bool:
    """Bind an ERP document in the caller's transaction unless a concurrent replay bound it first."""
    made = insert_if_new(session, ErpDocument.__table__, ("store_id", "kind", "key"), "id").first(
        session.connection(), _document_row(store_id, order_external_id, kind, key, erp_ref, event_id)
    )
    return made is not None


def _document_row(store_id: int, order_external_id: str, kind: str, key: str, erp_ref: str, event_id: int) -> dict:
    """An erp_documents row: the binding of one ERP document to its store order."""
    return {
        "store_id": store_id,
        "order_external_id": order_external_id,
        "kind": kind,
        "key": key,
        "erp_ref": erp_ref,
        "event_id": event_id,
    }


def _bound_documents(session: Session, store_id: int, order_external_id: str) -> dict[tuple[str, str], str]:
    """The ERP documents bound to the order so far, by (kind, key): one read for all that the order's event
    asks (its payment, its cancellation)."""
    rows = session.execute(
        select(ErpDocument.kind, ErpDocument.key, ErpDocument.erp_ref).where(
            ErpDocument.store_id == store_id, ErpDocument.order_external_id == order_external_id
        )
    )
    return {(kind, key): erp_ref for kind, key, erp_ref in rows}


def _missing_documents(bound: dict[tuple[str, str], str], order: Order) -> tuple[bool, bool]:
    """Whether this version of the order still needs its payment, and its cancellation, in the ERP."""
    ref = order.external_ref
    pay = (
        order.payment.status in PAID
        and ("payment", f"{ref}:payment") not in bound
        and ("payments", f"{ref}:payments") not in bound
    )
    cancel = order.status == "cancelled" and ("cancellation", f"{ref}:cancel") not in bound
    return pay, cancel


def _documents(
    rt: Runtime,
    store: StoreInfo,
    order: Order,
    erp: ErpAdapter,
    event_id: int,
    bound: dict[tuple[str, str], str],
    done: list[str],
    transactions: TransactionSource | None = None,
) -> None:
    """Make the order's payment and cancellation where this version needs them and `bound` (the order's
    documents as just read) lacks them. A concurrent replay that binds one meanwhile is caught by the
    binding's unique key, and the ERP write is idempotent on its key."""

    def once(kind: str, key: str, write: Callable[[str], str]) -> bool:
        if (kind, key) in bound:
            return False
        return _make_bound(rt, store, order.external_id, kind, key, event_id, write)[0]

    pay, cancel = _missing_documents(bound, order)
    if pay:
        if transactions is not None and not order.transactions:
            order = dataclasses.replace(order, transactions=transactions())
        _payments(order, erp, bound, once, done)
    if cancel:
        reason = order.cancel_reason or "cancelled in the store"
        if once(
            "cancellation",
            f"{order.external_ref}:cancel",
            lambda _key: str(erp.cancel_order(order.external_ref, reason)),
        ):
            done.append(f"cancelled ({reason})")


def _payments(
    order: Order,
    erp: ErpAdapter,
    bound: dict[tuple[str, str], str],
    once: Callable[[str, str, Callable[[str], str]], bool],
    done: list[str],
) -> None:
    """One ERP payment per transaction received, or one for the order total when there are none; `once`
    makes and binds a document unless `bound` has it."""
    ref = order.external_ref
    received = order.received
    if not received:
        # A payment per transaction already booked (the store has since lost them?): never add a lump.
        split = any(kind == "payment" and key.startswith(f"{ref}:payment:") for kind, key in bound)
        if not split and once("payment", f"{ref}:payment", lambda key: erp.record_payment(_payment(order, key))):
            done.append("payment recorded")
        return
    for tx in received:
        if once("payment", f"{ref}:payment:{tx.external_id}", _transaction_writer(erp, order, tx)):
            done.append(f"payment recorded: {tx.amount} by {tx.method} via {tx.gateway or 'unknown gateway'}")
    total = money_sum([tx.amount for tx in received], order.currency)
    if total != order.totals.total:
        # Booked as received all the same: the ERP must show the money that moved, and a person the gap.
        done.append(f"note: the payments received add up to {total}, the order total is {order.totals.total}")
    # Every transaction payment is in: later events of this order need not read the store again.
    once("payments", f"{ref}:payments", lambda _key: f"{len(received)} payments")


def apply_refund(rt: Runtime, store: StoreInfo, refund: Refund, event_id: int) -> dict:
    erp = rt.erp()
    order_ref = refund.external_ref.split(":refund:")[0]
    ours = _erp_credit_note(rt, store.id, refund)
    if ours is not None:
        # The connector made this store refund from the ERP's own credit note (connector.sync.erp_refunds): the
        # ERP has it already. Bound here too, for a webhook that overtakes the sync's own binding.
        _once_keyed(rt, store, refund.order_external_id, "credit_note", refund.external_ref, event_id, lambda _k: ours)
        return {
            "credit_note": ours,
            "done": [],
            "note": f"the ERP's own credit note {ours}, refunded in the store by the connector: not credited again",
        }
    made = _once_keyed(
        rt,
        store,
        refund.order_external_id,
        "credit_note",
        refund.external_ref,
        event_id,
        lambda _key: erp.create_credit_note(refund, order_ref),
    )
    return {
        "credit_note": made[1],
        "done": ["credit note created"] if made[0] else [],
        "note": "" if made[0] else "this refund was already credited",
    }


def _erp_credit_note(rt: Runtime, store_id: int, refund: Refund) -> str | None:
    """The ERP credit note this store refund was made from, when its note names one of ours."""
    if not refund.reason.startswith(PREFIX):
        return None
    with rt.autocommit() as session:
        refs = session.scalars(
            select(OfflineRefund.refund_ref).where(
                OfflineRefund.store_id == store_id, OfflineRefund.order_external_id == refund.order_external_id
            )
        ).all()
    return next((ref for ref in refs if names_credit_note(refund.reason, ref)), None)


def cancel_deleted(rt: Runtime, store: StoreInfo, external_id: str, event_id: int) -> dict:
    """An order deleted (trashed) in the store is cancelled in the ERP, if it got there."""
    link = _link(rt, store.id, external_id)
    if link is None:
        return {"note": "deleted before it reached the ERP: nothing to cancel"}
    erp = rt.erp()
    reason = f"deleted in {store.platform}"
    with rt.sessions.begin() as session:
        session.execute(
            update(Reservation)
            .where(
                Reservation.store_id == store.id,
                Reservation.order_external_id == external_id,
                Reservation.released.is_(False),
            )
            .values(released=True, changed_at=utcnow())
        )
    made = _once_keyed(
        rt,
        store,
        external_id,
        "cancellation",
        f"{link.external_ref}:cancel",
        event_id,
        lambda _key: str(erp.cancel_order(link.external_ref, reason)),
    )
    return {"erp_ref": link.erp_ref, "done": [f"cancelled ({reason})"] if made[0] else []}


def credited(rt: Runtime, store_id: int, order: Order, refund_id: str) -> bool:
    with rt.autocommit() as session:
        return _bound(session, store_id, "credit_note", f"{order.external_ref}:refund:{refund_id}") is not None


def merchant_tables(rt: Runtime, store_id: int) -> MerchantTables:
    """The mapping tables for a store: entries for every store first, then the store's own (read once
    per batch of a drain, see Runtime.batch)."""
    return rt.per_batch(("merchant_tables", store_id), lambda: _read_tables(rt, store_id))


def _read_tables(rt: Runtime, store_id: int) -> MerchantTables:
    with rt.autocommit() as session:
        rows = session.execute(
            select(MappingEntry.kind, MappingEntry.source, MappingEntry.target, MappingEntry.store_id).where(
                or_(MappingEntry.store_id.is_(None), MappingEntry.store_id == store_id)
            )
        ).all()
    rows = sorted(rows, key=lambda r: r.store_id is not None)
    return MerchantTables.from_rows([(r.kind, r.source, r.target) for r in rows])


def erp_ref_of(rt: Runtime, store_id: int, external_id: str) -> str | None:
    link = _link(rt, store_id, external_id)
    return link.erp_ref if link is not None else None


def order_as_taken(rt: Runtime, store_id: int, external_id: str) -> tuple[str | None, dict]:
    """(the ERP ref, the canonical order as the ERP last took it, as JSON: {} when no event holds it)."""
    with rt.autocommit() as session:
        link = session.scalars(
            select(OrderLink).where(OrderLink.store_id == store_id, OrderLink.external_id == external_id)
        ).first()
        if link is None:
            return None, {}
        result = session.scalar(select(InboxEvent.result).where(InboxEvent.id == link.last_event_id)) or {}
        order = result.get("order") if isinstance(result, dict) else None
        return link.erp_ref, order if isinstance(order, dict) else {}


def order_currency(rt: Runtime, store_id: int, external_id: str) -> str | None:
    link = _link(rt, store_id, external_id)
    return link.currency if link is not None else None


def _payment(order: Order, key: str) -> PaymentRecord:
    return PaymentRecord(
        key=key,
        order_ref=order.external_ref,
        amount=order.totals.total,
        method=order.payment.method or "other",
        gateway=order.payment.gateway,
        transaction_ref=order.payment.transaction_ref,
        paid_at=order.payment.paid_at or order.updated_at,
    )


def _transaction_writer(erp: ErpAdapter, order: Order, tx: Transaction) -> Callable[[str], str]:
    """Records one received transaction as a payment, under the key _once_keyed gives it."""
    return lambda key: erp.record_payment(_transaction_payment(order, tx, key))


def _transaction_payment(order: Order, tx: Transaction, key: str) -> PaymentRecord:
    return PaymentRecord(
        key=key,
        order_ref=order.external_ref,
        amount=tx.amount,
        method=tx.method or "other",
        gateway=tx.gateway,
        transaction_ref=tx.reference,
        paid_at=tx.processed_at or order.payment.paid_at or order.updated_at,
    )


def _link(rt: Runtime, store_id: int, external_id: str) -> Any | None:
    """The order's binding as last written: a row of its external_ref, erp_ref, currency and source_updated_at."""
    with rt.autocommit_connection() as conn:
        return _LINK.first(conn, {"store_id": store_id, "external_id": external_id})


def _bind_order(session: Session, store_id: int, order: Order, erp_ref: str, event_id: int, known: bool) -> bool:
    """Record the store order ↔ ERP document link at once, so the ERP id is never lost; True when this made
    the order's first binding. `known`: a link was read before the ERP write (else none is looked for: the
    insert does nothing when a concurrent event of the order bound it first, and that link is updated)."""
    if not known:
        made = insert_if_new(session, OrderLink.__table__, ("store_id", "external_id"), "id").first(
            session.connection(), _link_row(store_id, order, erp_ref, event_id)
        )
        if made is not None:
            return True
    link = session.scalars(
        select(OrderLink)
        .where(OrderLink.store_id == store_id, OrderLink.external_id == order.external_id)
        .with_for_update()
    ).one()
    if order.updated_at > link.source_updated_at:
        link.erp_ref, link.source_updated_at, link.last_event_id = erp_ref, order.updated_at, event_id
    return False


def _link_row(store_id: int, order: Order, erp_ref: str, event_id: int) -> dict:
    return {
        "store_id": store_id,
        "external_id": order.external_id,
        "external_ref": order.external_ref,
        "erp_ref": erp_ref,
        "currency": order.currency,
        "source_updated_at": order.updated_at,
        "last_event_id": event_id,
    }


def _reservation_rows(store_id: int, order: Order) -> list[dict]:
    """The rows of the stock a newly bound order holds: its units by SKU."""
    each = {
        "store_id": store_id,
        "order_external_id": order.external_id,
        "placed_at": order.placed_at,
        "released": order.status == "cancelled",
        "changed_at": utcnow(),  # tells the inventory sync which SKUs to recompute
    }
    return [{**each, "sku": sku, "quantity": quantity} for sku, quantity in _wanted(order).items()]


def _wanted(order: Order) -> dict[str, int]:
    wanted: dict[str, int] = {}
    for line in order.lines:
        if line.sku and line.current_quantity:  # units an edit took off are not held
            wanted[line.sku] = wanted.get(line.sku, 0) + line.current_quantity
    return wanted


def _reserve(session: Session, store_id: int, order: Order, first: bool) -> None:
    """Hold the order's units against stock until the ERP's own figure shows them (see inventory). `first`:
    the order's first binding, made in this transaction: no unit of it is held yet (only here are units
    held, in the transaction that binds the order), so none is looked for."""
    if first:  # every row is new: one INSERT of them all, no ORM objects to flush
        _RESERVE.many(session.connection(), _reservation_rows(store_id, order))
        return
    wanted = _wanted(order)
    released = order.status == "cancelled"
    now = utcnow()  # changed_at tells the inventory sync which SKUs to recompute
    mine = (Reservation.store_id == store_id, Reservation.order_external_id == order.external_id)
    held = {r.sku: r for r in session.scalars(select(Reservation).where(*mine))}
    for sku, quantity in wanted.items():
        row = held.pop(sku, None)
        if row is None:
            session.add(
                Reservation(
                    store_id=store_id,
                    order_external_id=order.external_id,
                    sku=sku,
                    quantity=quantity,
                    placed_at=order.placed_at,
                    released=released,
                    changed_at=now,
                )
            )
        elif (row.quantity, row.released) != (quantity, released):
            row.quantity, row.released, row.changed_at = quantity, released, now
    for row in held.values():  # a line edited away holds nothing any more
        if not row.released:
            row.released, row.changed_at = True, now


def _bound(session: Session, store_id: int, kind: str, key: str) -> str | None:
    """The ERP ref of the document bound to this key, if one is."""
    return session.scalars(
        select(ErpDocument.erp_ref).where(
            ErpDocument.store_id == store_id, ErpDocument.kind == kind, ErpDocument.key == key
        )
    ).first()


def _once_keyed(
    rt: Runtime,
    store: StoreInfo,
    order_external_id: str,
    kind: str,
    key: str,
    event_id: int,
    write: Callable[[str], str],
) -> tuple[bool, str]:
    """Make an ERP document unless its binding exists; the ERP write itself is idempotent on key."""
    with rt.autocommit() as session:
        existing = _bound(session, store.id, kind, key)
    if existing is not None:
        return False, existing
    return _make_bound(rt, store, order_external_id, kind, key, event_id, write)


def _make_bound(
    rt: Runtime,
    store: StoreInfo,
    order_external_id: str,
    kind: str,
    key: str,
    event_id: int,
    write: Callable[[str], str],
) -> tuple[bool, str]:
    """Make the ERP document and commit its binding at once; False when a concurrent replay bound it first."""
    erp_ref = write(key)
    try:
        with rt.autocommit_connection() as conn:  # one INSERT: it commits on its own
            _BIND_DOCUMENT.run(conn, _document_row(store.id, order_external_id, kind, key, erp_ref, event_id))
    except IntegrityError:
        return False, erp_ref  # bound meanwhile by a concurrent replay of the same write
    return True, erp_ref
