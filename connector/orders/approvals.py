"""The approver's side of held orders: list them, approve (one, some, or all a filter matches, with the
count confirmed), or reject with a reason. See connector/orders/holds.py for how an order comes to be held."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Select, func, select, update

from adapters.backoff import backoff
from adapters.clock import utcnow
from adapters.storefront import StorefrontError
from connector.base.audit import audit
from connector.base.clients import sync_client
from connector.base.db import rowcount
from connector.base.models import Approval, Store
from connector.base.runtime import Runtime, current
from connector.orders.drains import kick
from connector.orders.holds import release_held, settle_held

MAX_REASON = 500  # a rejection's reason: a note for the store and the audit log, not a document
STATUSES = ("awaiting", "approved", "rejected", "withdrawn")


@dataclass(frozen=True)
class ApprovalFilter:
    store: str | None = None  # slug
    status: str | None = "awaiting"
    order: str | None = None  # number or the store's id
    since: datetime | None = None

    def apply(self, query: Select) -> Select:
        if self.store:
            query = query.where(Store.slug == self.store)
        if self.status:
            query = query.where(Approval.status == self.status)
        if self.order:
            bare = self.order.strip().lstrip("#")
            query = query.where(Approval.order_number.in_((bare, f"#{bare}")) | (Approval.order_external_id == bare))
        if self.since:
            query = query.where(Approval.created_at >= self.since)
        return query


def list_approvals(rt: Runtime, flt: ApprovalFilter, limit: int = 200) -> list[tuple[Approval, str]]:
    with rt.sessions() as session:
        rows = session.execute(
            flt.apply(select(Approval, Store.slug).join(Store, Store.id == Approval.store_id))
            .order_by(Approval.created_at, Approval.id)
            .limit(limit)
        ).all()
    return [(a, slug) for a, slug in rows]


def count_awaiting(rt: Runtime, flt: ApprovalFilter) -> int:
    flt = ApprovalFilter(store=flt.store, status="awaiting", order=flt.order, since=flt.since)
    with rt.sessions() as session:
        query = flt.apply(select(Approval.id).join(Store, Store.id == Approval.store_id))
        return int(session.scalar(select(func.count()).select_from(query.subquery())) or 0)


def approve(rt: Runtime, *, ids: Iterable[int] | None = None, flt: ApprovalFilter | None = None, actor: str) -> int:
    """Approve the awaiting orders named or matched: their held events go on to the ERP. Returns how many."""
    query = select(Approval.id, Approval.store_id, Approval.order_external_id, Approval.order_number).join(
        Store, Store.id == Approval.store_id
    )
    if ids is not None:
        query = query.where(Approval.id.in_(list(ids)), Approval.status == "awaiting")
    elif flt is not None:
        query = ApprovalFilter(store=flt.store, status="awaiting", order=flt.order, since=flt.since).apply(query)
    else:
        raise ValueError("name the approvals or give a filter")
    now = utcnow()
    with rt.sessions.begin() as session:
        rows = session.execute(query.with_for_update(of=Approval)).all()
        for row in rows:
            session.execute(
                update(Approval)
                .where(Approval.id == row.id, Approval.status == "awaiting")
                .values(status="approved", decided_at=now, decided_by=actor)
            )
            release_held(session, row.store_id, [row.order_external_id])
    for row in rows:
        audit(rt, actor, "order.approve", f"approval {row.id} order {row.order_number}")
    for store_id in sorted({r.store_id for r in rows}):
        kick(rt, store_id)
    return len(rows)


def reject(rt: Runtime, approval_id: int, reason: str, actor: str) -> bool:
    """Reject an awaiting order with a reason: never sent to the ERP, cancelled in the store by a job."""
    reason = reason.strip()
    if not reason:
        raise ValueError("say why the order is rejected: the store's cancellation and the audit log keep it")
    now = utcnow()
    with rt.sessions.begin() as session:
        row = session.scalars(
            select(Approval).where(Approval.id == approval_id, Approval.status == "awaiting").with_for_update()
        ).first()
        if row is None:
            return False
        row.status, row.decided_at, row.decided_by = "rejected", now, actor
        row.decision_reason, row.store_cancel = reason[:MAX_REASON], "pending"
        store_id, external_id, number = row.store_id, row.order_external_id, row.order_number
        settle_held(session, store_id, [external_id], f"rejected by {actor}: {reason[:MAX_REASON]}")
    audit(rt, actor, "order.reject", f"approval {approval_id} order {number}", {"reason": reason[:MAX_REASON]})
    rt.queue.enqueue(cancel_in_store, approval_id)
    return True


def cancel_in_store(approval_id: int) -> None:
    """Job: cancel a rejected order in its store, once (the clients read the order first: cancelled
    already is done). A store that does not answer is tried again later with backoff; a refusal is kept
    on the row with what to do, and the console can queue it again."""
    rt = current()
    with rt.sessions() as session:
        row = session.get(Approval, approval_id)
        if row is None or row.status != "rejected" or row.store_cancel == "done":
            return
        store = rt.store_info(session.get_one(Store, row.store_id))
        external_id, number, reason = row.order_external_id, row.order_number, row.decision_reason or ""
        tries = row.store_cancel_tries + 1
    outcome, error = "done", None
    try:
        sync_client(store).cancel_order(
            external_id,
            f"Rejected before the ERP by the connector's approvers: {reason}",
            notify=bool(store.settings.get("notify_customer", True)),
        )
    except StorefrontError as exc:
        if exc.retryable and tries < rt.settings.max_attempts:
            outcome, error = "pending", f"{exc}; trying again shortly"
            wait = backoff(tries, rt.settings.retry_base_seconds, rt.settings.retry_cap_seconds)
            rt.queue.enqueue(cancel_in_store, approval_id, at=utcnow() + timedelta(seconds=wait))
        else:
            outcome = "failed"
            error = f"{exc}. Cancel order {number} in the store by hand, or cancel it again from the approvals page"
    with rt.sessions.begin() as session:
        session.execute(
            update(Approval)
            .where(Approval.id == approval_id)
            .values(store_cancel=outcome, store_cancel_error=error, store_cancel_tries=tries)
        )
    if outcome != "pending":
        audit(rt, "system", f"order.store_cancel.{outcome}", f"approval {approval_id} order {number}", {"error": error})


def cancel_again(rt: Runtime, approval_id: int, actor: str) -> bool:
    """Queue the store cancellation of a rejected order whose cancellation failed, with a fresh budget."""
    with rt.sessions.begin() as session:
        changed = rowcount(
            session.execute(
                update(Approval)
                .where(Approval.id == approval_id, Approval.status == "rejected", Approval.store_cancel == "failed")
                .values(store_cancel="pending", store_cancel_error=None, store_cancel_tries=0)
            )
        )
    if changed:
        audit(rt, actor, "order.store_cancel.retry", f"approval {approval_id}")
        rt.queue.enqueue(cancel_in_store, approval_id)
    return bool(changed)
