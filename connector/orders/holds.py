"""Orders held for a person before the ERP (issue 16: approval before the ERP).

The pipeline asks `gate` before an order's first ERP write. When the store's approval rules
(`mappings.approval`) catch the order, an `approvals` row records why and the event is `held`: it stays
in the inbox, out of the queue, until a person decides on the console:

- approve: the order's held events go back to pending and reach the ERP as any other order would;
  later events of the order pass the gate (the decision is remembered);
- reject, with a reason: the held events are ignored with that reason, later ones too, and the order is
  cancelled in the store (restocked) by a job that records its outcome on the row and can be retried.

An order the store cancels while it waits is withdrawn: nothing reaches the ERP. Every hold and
decision is in the audit log with its actor (`rules:<store>` for a hold).
"""

from __future__ import annotations

import dataclasses
from datetime import datetime

from sqlalchemy import ColumnElement, Connection, and_, bindparam, exists, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from adapters.clock import utcnow
from adapters.erp import ErpAdapter
from adapters.prepared import Prepared, Sent
from adapters.storefront import StorefrontError
from connector.base.audit import audit
from connector.base.db import rowcount
from connector.base.models import Approval, CustomerLink, CustomerMatch, InboxEvent
from connector.base.runtime import Runtime, StoreInfo
from connector.orders.customers import PossibleDuplicate, customer_keys
from mappings.approval import ApprovalRules, reasons, rules_from_setting
from mappings.canonical import Order
from mappings.customers import normalise_email, normalise_phone
from mappings.errors import MappingError
from platforms.base import RiskSource


class RiskPending(StorefrontError):
    """The store is still assessing the order's risk: try again shortly."""

    def __init__(self, number: str) -> None:
        super().__init__(
            f"the store's fraud analysis of order {number} is still running; the approval rules wait for it",
            retryable=True,
        )


# Asked before every order's first ERP write: built once (issue 18).
_APPROVAL = Prepared(
    select(Approval.status, Approval.reasons, Approval.decided_by, Approval.decision_reason).where(
        Approval.store_id == bindparam("store_id"), Approval.order_external_id == bindparam("external_id")
    )
)


def rules_of(store: StoreInfo) -> ApprovalRules:
    try:
        return rules_from_setting(store.settings.get("approval"))
    except ValueError as exc:  # config load and the form refuse it; a row edited by hand may still hold it
        raise MappingError(f"{exc}: fix the store's approval rules on /config, then retry") from None


def send_approval(conn: Connection, store_id: int, external_id: str) -> Sent:
    """The order's approval row, sent ahead with the order's other first reads (connector.orders.lifecycle), for
    `gate`."""
    return _APPROVAL.send(conn, {"store_id": store_id, "external_id": external_id})


def gate(
    rt: Runtime,
    store: StoreInfo,
    order: Order,
    erp: ErpAdapter,
    risk: RiskSource | None,
    approval: Sent | None = None,
) -> dict | None:
    """None when the order may go on to the ERP; otherwise the event's result: `held` while it awaits a
    decision, `ignored` once rejected or withdrawn. `approval`: the order's approval row as read ahead
    (`send_approval`); read here when not given."""
    decided = _decision(rt, store.id, order.external_id, approval)
    if decided is not None:
        status, by, said = decided
        if status == "approved":
            return None
        if status == "awaiting":
            if order.status == "cancelled":
                return _withdraw(rt, store, order)
            return {"held": True, "note": f"awaiting approval on the console ({said})"}
        return {"ignored": True, "note": f"{status} by {by}: {said}; not sent to the ERP"}
    if order.status == "cancelled":
        _withdraw_question(rt, store, order)
        return None  # the pipeline books nothing for it anyway
    rules = rules_of(store)
    if not rules.any:
        return None
    known = _known_customer(rt, order, erp) if rules.needs_customer_lookup else None
    level = risk() if rules.needs_risk and risk is not None else None
    if level == "pending":
        raise RiskPending(order.number)
    why = reasons(order, rules, known_customer=known, risk=level)
    if not why:
        return None
    total = order.totals.total
    held = Approval(
        store_id=store.id,
        order_external_id=order.external_id,
        order_number=order.number[:64],
        customer=(order.customer.name or order.customer.email or order.customer.phone or "")[:255],
        total=f"{total.amount} {total.currency}"[:48],
        reasons=why,
    )
    if not _recorded(rt, held):  # another event of the same order was held first: that row stands
        return gate(rt, store, order, erp, risk)
    audit(rt, f"rules:{store.slug}", "order.held", f"{store.slug} {order.number}", {"reasons": why})
    return {"held": True, "note": f"awaiting approval on the console ({'; '.join(why)})"}


def ask_about_customer(rt: Runtime, store: StoreInfo, order: Order, asked: PossibleDuplicate) -> dict:
    """Hold the order until a person says whether its buyer is one of the ERP's similar customers."""
    buyer = {
        "name": order.customer.name,
        "email": order.customer.email or "",
        "phone": order.customer.phone or "",
        "postcode": order.customer.postcode,
    }
    shown = [dataclasses.asdict(c) for c in asked.candidates]
    question = CustomerMatch(
        store_id=store.id,
        order_external_id=order.external_id,
        order_number=order.number[:64],
        customer_key=asked.keys[0],
        buyer=buyer,
        candidates=shown,
    )
    if _recorded(rt, question):  # else asked already, for an earlier event of this order: that question stands
        audit(rt, f"rules:{store.slug}", "customer.ask", f"{store.slug} {order.number}", {"candidates": len(shown)})
    names = ", ".join(f"{c.name} ({c.email or c.phone or 'no email'}, ERP {c.id})" for c in asked.candidates)
    return {
        "held": True,
        "note": (
            f"possible duplicate customer: {order.customer.name} at {order.customer.postcode} may be {names}; "
            "link or create on the console's customer decisions"
        ),
    }


def _recorded(rt: Runtime, row: Approval | CustomerMatch) -> bool:
    """Insert the row; False when one for the same order exists already (its unique key)."""
    try:
        with rt.sessions.begin() as session:
            session.add(row)
        return True
    except IntegrityError:
        return False


def _decision(rt: Runtime, store_id: int, external_id: str, approval: Sent | None) -> tuple[str, str, str] | None:
    if approval is None:
        with rt.autocommit_connection() as conn:
            row = _APPROVAL.first(conn, {"store_id": store_id, "external_id": external_id})
    else:
        row = approval.first()
    if row is None:
        return None
    if row.status == "awaiting":
        return row.status, "", "; ".join(row.reasons or [])
    return row.status, row.decided_by or "", row.decision_reason or ""


def _known_customer(rt: Runtime, order: Order, erp: ErpAdapter) -> bool:
    """Whether the customer has ordered before: linked by an earlier order, or already in the ERP."""
    keys = customer_keys(order)
    if keys:
        with rt.autocommit() as session:
            if session.scalar(select(func.count()).select_from(CustomerLink).where(CustomerLink.key.in_(keys))):
                return True
    email, phone = normalise_email(order.customer.email), normalise_phone(order.customer.phone)
    return bool((email or phone) and erp.find_customer(email, phone))


def _withdraw(rt: Runtime, store: StoreInfo, order: Order) -> dict:
    now = utcnow()
    with rt.sessions.begin() as session:
        session.execute(
            update(Approval)
            .where(
                Approval.store_id == store.id,
                Approval.order_external_id == order.external_id,
                Approval.status == "awaiting",
            )
            .values(status="withdrawn", decided_at=now, decided_by="store", decision_reason="cancelled in the store")
        )
        settle_held(session, store.id, [order.external_id], "withdrawn: the order was cancelled in the store")
    audit(rt, f"store:{store.slug}", "order.withdrawn", f"{store.slug} {order.number}")
    return {"ignored": True, "note": "cancelled in the store while awaiting approval; not sent to the ERP"}


def _withdraw_question(rt: Runtime, store: StoreInfo, order: Order) -> None:
    """An order cancelled in the store while a person was to say who its buyer is: nobody need say."""
    with rt.sessions.begin() as session:
        withdrawn = rowcount(
            session.execute(
                update(CustomerMatch)
                .where(
                    CustomerMatch.store_id == store.id,
                    CustomerMatch.order_external_id == order.external_id,
                    CustomerMatch.status == "awaiting",
                )
                .values(status="withdrawn", decided_at=utcnow(), decided_by="store")
            )
        )
        settle_held(session, store.id, [order.external_id], "withdrawn: the order was cancelled in the store")
    if withdrawn:
        audit(rt, f"store:{store.slug}", "customer.withdrawn", f"{store.slug} {order.number}")


def settle_held(session: Session, store_id: int, external_ids: list[str], note: str) -> None:
    """The order's held events end as ignored, with the note saying why (in the caller's transaction)."""
    session.execute(
        update(InboxEvent)
        .where(held_events(store_id, external_ids))
        .values(status="ignored", result={"note": note}, processed_at=utcnow())
    )


def release_held(session: Session, store_id: int, external_ids: list[str]) -> None:
    """The orders' held events go back to pending, with a fresh attempt budget (in the caller's transaction;
    the caller wakes the store's drain once it has committed)."""
    session.execute(
        update(InboxEvent)
        .where(held_events(store_id, external_ids))
        .values(status="pending", next_attempt_at=None, attempts_before_retry=InboxEvent.attempts)
    )


def release_if_answered(rt: Runtime, store_id: int, external_id: str | None, since: datetime) -> bool:
    """Called once an event's held outcome is committed: when a person answered the question about its order
    after `since` (the attempt's start) and none still awaits, the event goes back to pending (True) to be run
    again under the answer. That answer found no held event to release while the event was being worked on:
    without this, the event would stay held under an approval already given. (An answer from before the
    attempt releases nothing: the attempt saw it.)"""
    if not external_id:
        return False
    asked = (Approval.store_id == store_id) & (Approval.order_external_id == external_id)
    matched = (CustomerMatch.store_id == store_id) & (CustomerMatch.order_external_id == external_id)
    with rt.autocommit() as session:
        answered = session.scalar(
            select(
                ~exists().where(asked, Approval.status == "awaiting")
                & ~exists().where(matched, CustomerMatch.status == "awaiting")
                & (
                    exists().where(asked, Approval.decided_at >= since)
                    | exists().where(matched, CustomerMatch.decided_at >= since)
                )
            )
        )
    if not answered:
        return False
    with rt.sessions.begin() as session:
        release_held(session, store_id, [external_id])
    return True


def held_events(store_id: int, external_ids: list[str]) -> ColumnElement[bool]:
    """The held events of these orders of the store."""
    return and_(InboxEvent.store_id == store_id, InboxEvent.resource_id.in_(external_ids), InboxEvent.status == "held")
