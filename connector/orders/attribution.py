"""Channel attribution of web orders (issue 16, item 4): who has the credit for each order in the ERP.

When an order first reaches the ERP, `decide_attribution` reads the owner the ERP gives the order's customer account
(ErpAdapter.customer_owner) and applies the store's rule (mappings.attribution); `record_attribution` keeps the result
in `order_attributions` in the commit that binds the order, so the ERP order and the report agree. Later
versions of the order keep that owner, rule and share (an owner reassigned in the ERP, or a rule changed
on /config, does not move the credit of orders already booked) and update the total. A replay reads
nothing and writes nothing. `report` sums the rows for the console's attribution page.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import cast

from sqlalchemy import Connection, Table, insert, select
from sqlalchemy.orm import Session

from adapters.erp import ErpAdapter
from adapters.prepared import Prepared
from connector.base.models import AuditEntry, ErpDocument, OrderAttribution, Store
from connector.base.runtime import Runtime, StoreInfo
from connector.base.upsert import insert_if_new
from mappings.attribution import Attribution, AttributionError, attribute, rule_of
from mappings.canonical import Order
from mappings.errors import MappingError


def decide_attribution(
    rt: Runtime, store: StoreInfo, order: Order, erp: ErpAdapter, customer_id: str, first: bool = False
) -> Attribution:
    """The order's attribution: the one it got when first written, else its account's owner under the rule.
    `first`: the ERP has no version of the order yet, so nothing is kept (the row is written in the commit
    that binds the order) and none is looked for."""
    if not first:
        with rt.autocommit() as session:
            kept = _row(session, store.id, order.external_id)
            if kept is not None:
                return Attribution(kept.owner, kept.rule, Decimal(kept.owner_share))
    try:
        rule, share = rule_of(store.settings)
    except AttributionError as exc:  # config load and the form refuse it; a row edited by hand may hold it
        raise MappingError(f"{exc}: fix the store's attribution rule on /config, then retry") from None
    if store.settings.get("customer_policy") == "guest_account" and order.customer.is_guest:
        return attribute(None, rule, share)  # the shared guest customer is nobody's account
    return attribute(erp.customer_owner(customer_id), rule, share)


def record_attribution(
    session: Session, store: StoreInfo, order: Order, attribution: Attribution, customer_id: str, first: bool = False
) -> None:
    """Keep the attribution of this version of the order (in the caller's transaction); an older version
    changes nothing. The first one that names an owner is in the audit log, as `order.attributed`.
    `first`: the order's first binding, so there is no row to update (a concurrent one fails the insert)."""
    row = None if first else _row(session, store.id, order.external_id, lock=True)
    total = order.totals.total
    if row is None:
        _first(session, store, order, attribution, customer_id)
    elif order.updated_at > row.source_updated_at:
        row.total, row.currency = total.amount, total.currency
        row.owner_credit = attribution.owner_credit(total).amount
        row.source_updated_at = order.updated_at


def _first(session: Session, store: StoreInfo, order: Order, attribution: Attribution, customer_id: str) -> None:
    """The order's row, unless a concurrent event of the same order recorded it first: that one stands (an
    INSERT that does nothing on the conflict, no savepoint: two round trips fewer on every new order)."""
    made = insert_if_new(session, OrderAttribution.__table__, _KEY, "id").first(
        session.connection(), _first_row(store, order, attribution, customer_id)
    )
    if made is not None and attribution.owner is not None:
        session.add(AuditEntry(**_audit_row(store, order, attribution, customer_id)))


def send_first_attribution(
    conn: Connection, store: StoreInfo, order: Order, attribution: Attribution, customer_id: str
) -> None:
    """`record_attribution` of the order's first binding, sent on the caller's `atomic` connection with the rest
    of that binding: when it names an owner, whether the row was made is read (a round trip) before its audit
    entry is sent."""
    made = insert_if_new(conn, OrderAttribution.__table__, _KEY, "id").send(
        conn, _first_row(store, order, attribution, customer_id)
    )
    if attribution.owner is not None and made.first() is not None:
        _AUDIT.send(conn, _audit_row(store, order, attribution, customer_id))


_KEY = ("store_id", "order_external_id")
_AUDIT = Prepared(insert(cast(Table, AuditEntry.__table__)))


def _first_row(store: StoreInfo, order: Order, attribution: Attribution, customer_id: str) -> dict:
    total = order.totals.total
    return {
        "store_id": store.id,
        "order_external_id": order.external_id,
        "order_number": order.number[:64],
        "erp_customer_id": customer_id[:255],
        "owner": attribution.owner,
        "rule": attribution.rule,
        "owner_share": attribution.owner_share,
        "currency": total.currency,
        "total": total.amount,
        "owner_credit": attribution.owner_credit(total).amount,
        "placed_at": order.placed_at,
        "source_updated_at": order.updated_at,
    }


def _audit_row(store: StoreInfo, order: Order, attribution: Attribution, customer_id: str) -> dict:
    """The audit entry of an order's first attribution to an owner (`order.attributed`)."""
    return {
        "actor": f"rules:{store.slug}",
        "action": "order.attributed",
        "target": f"{store.slug} {order.number}"[:255],
        "detail": {
            "owner": attribution.owner,
            "rule": attribution.rule,
            "owner_share": str(attribution.owner_share),
            "owner_credit": str(attribution.owner_credit(order.totals.total)),
            "erp_customer_id": customer_id,
        },
    }


def _row(session: Session, store_id: int, external_id: str, lock: bool = False) -> OrderAttribution | None:
    query = select(OrderAttribution).where(
        OrderAttribution.store_id == store_id, OrderAttribution.order_external_id == external_id
    )
    return session.scalars(query.with_for_update() if lock else query).first()


# ---- the report -------------------------------------------------------------------------------


@dataclass
class OwnerLine:
    """One owner's web orders in one currency (owner None: orders of accounts without an owner)."""

    owner: str | None
    currency: str
    orders: int = 0
    total: Decimal = Decimal(0)
    owner_credit: Decimal = Decimal(0)
    rules: set[str] = field(default_factory=set)

    @property
    def web_credit(self) -> Decimal:
        return self.total - self.owner_credit


@dataclass
class CurrencyReport:
    """Every owner's line in one currency and their sums; amounts of two currencies are never added."""

    currency: str
    lines: list[OwnerLine]

    @property
    def orders(self) -> int:
        return sum(line.orders for line in self.lines)

    @property
    def total(self) -> Decimal:
        return sum((line.total for line in self.lines), Decimal(0))

    @property
    def owner_credit(self) -> Decimal:
        return sum((line.owner_credit for line in self.lines), Decimal(0))

    @property
    def web_credit(self) -> Decimal:
        return self.total - self.owner_credit


def report(rt: Runtime, since: datetime, until: datetime, store: str | None = None) -> list[CurrencyReport]:
    """Web orders placed in [since, until) by attributed owner, per currency, summed exactly (Decimal, in
    Python: SQLite would add NUMERIC as floating point). Orders cancelled in the ERP are left out."""
    with rt.sessions() as session:
        query = (
            select(
                OrderAttribution.owner,
                OrderAttribution.rule,
                OrderAttribution.currency,
                OrderAttribution.total,
                OrderAttribution.owner_credit,
            )
            .join(Store, Store.id == OrderAttribution.store_id)
            .where(OrderAttribution.placed_at >= since, OrderAttribution.placed_at < until)
            .where(
                ~select(ErpDocument.id)
                .where(
                    ErpDocument.store_id == OrderAttribution.store_id,
                    ErpDocument.order_external_id == OrderAttribution.order_external_id,
                    ErpDocument.kind == "cancellation",
                )
                .exists()
            )
        )
        if store:
            query = query.where(Store.slug == store)
        rows = session.execute(query).all()
    return _summed(rows)


def _summed(rows: Iterable) -> list[CurrencyReport]:
    lines: dict[tuple[str, str | None], OwnerLine] = {}
    for row in rows:
        line = lines.setdefault((row.currency, row.owner), OwnerLine(row.owner, row.currency))
        line.orders += 1
        line.total += Decimal(row.total)
        line.owner_credit += Decimal(row.owner_credit)
        line.rules.add(row.rule)
    currencies = sorted({currency for currency, _ in lines})
    return [
        CurrencyReport(
            currency,
            sorted(
                (line for (cur, _), line in lines.items() if cur == currency),
                key=lambda line: (line.owner is None, line.owner or ""),
            ),
        )
        for currency in currencies
    ]
