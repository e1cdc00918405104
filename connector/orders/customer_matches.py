"""The person's side of possible duplicate customers (see connector.orders.customers): link the buyer to one of the
ERP's similar customers, or make a new customer. The decision is kept for the buyer (their customer key),
so their later orders are not asked about again, and it releases every order of theirs that waits."""

from __future__ import annotations

from sqlalchemy import select

from adapters.clock import utcnow
from connector.base.audit import audit
from connector.base.models import CustomerMatch, Store
from connector.base.runtime import Runtime
from connector.orders.drains import kick
from connector.orders.holds import release_held

STATUSES = ("awaiting", "linked", "created", "withdrawn")


def list_matches(rt: Runtime, status: str | None = "awaiting", limit: int = 200) -> list[tuple[CustomerMatch, str]]:
    query = select(CustomerMatch, Store.slug).join(Store, Store.id == CustomerMatch.store_id)
    if status:
        query = query.where(CustomerMatch.status == status)
    with rt.sessions() as session:
        rows = session.execute(query.order_by(CustomerMatch.created_at, CustomerMatch.id).limit(limit)).all()
    return [(match, slug) for match, slug in rows]


class NotACandidate(ValueError):
    """The customer to link to is not one the ERP offered for this buyer."""


def decide(rt: Runtime, match_id: int, link_to: str | None, actor: str) -> bool:
    """Link the buyer to the ERP customer `link_to` (one of the candidates shown), or, with None, make them
    a new customer. False when the match is not awaiting a decision (decided meanwhile)."""
    now = utcnow()
    with rt.sessions.begin() as session:
        match = session.scalars(
            select(CustomerMatch)
            .where(CustomerMatch.id == match_id, CustomerMatch.status == "awaiting")
            .with_for_update()
        ).first()
        if match is None:
            return False
        if link_to is not None and link_to not in {str(c.get("id")) for c in match.candidates or []}:
            raise NotACandidate(f"ERP customer {link_to} is not one of those offered for order {match.order_number}")
        status = "linked" if link_to is not None else "created"
        # Every order of this buyer that waits gets the same answer.
        same_buyer = session.scalars(
            select(CustomerMatch).where(
                CustomerMatch.customer_key == match.customer_key, CustomerMatch.status == "awaiting"
            )
        ).all()
        released: list[tuple[int, str]] = []
        for row in same_buyer:
            row.status, row.erp_customer_id, row.decided_by, row.decided_at = status, link_to, actor, now
            release_held(session, row.store_id, [row.order_external_id])
            released.append((row.store_id, row.order_number))
        key, number = match.customer_key, match.order_number
    detail = {"linked_to": link_to} if link_to else {"new_customer": True}
    audit(rt, actor, f"customer.{'link' if link_to else 'create'}", f"{key} (order {number})", detail)
    for store_id in sorted({store_id for store_id, _ in released}):
        kick(rt, store_id)
    return True
