"""Which warehouse ships (issue 16, item 6): the store's routing rules applied to an order before the ERP.

`route_order` decides once, before the order's first ERP write: from the shipping address and, with
`stock_check`, from the connector's mirror of the ERP's stock (`stock_levels`) less what other orders
hold that the ERP has not counted yet (`reservations`, as the inventory sync does). The decision is
committed to `order_routings`, with its `order.routed` audit entry by `rules:<store>`, before the ERP
write, so a retry after a crash, a replay and every later version of the order carry the same
warehouse even when stock has moved since. A shipment to a store with locations reads it back (`order_warehouse`)
when the ERP's shipment names no warehouse.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal

from sqlalchemy import and_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from connector.base.models import AuditEntry, OrderRouting, Reservation, StockMirror
from connector.base.runtime import Runtime, StoreInfo
from connector.base.upsert import chunked
from mappings.canonical import Order
from mappings.errors import MappingError
from mappings.inventory import StockRow, location_target
from mappings.routing import Routing, RoutingError, RoutingRules, route, rules_from_setting


def route_order(rt: Runtime, store: StoreInfo, order: Order, first: bool) -> tuple[Order, Routing | None]:
    """The order with its ship-from warehouses set, and the routing (None: the ERP's default, as before
    routing: a store without rules, or an order the ERP had before its store had any)."""
    if first and store.settings.get("routing") in (None, "", {}):
        # A new order of a store without rules: the ERP's default warehouse, with no read (a routing an earlier
        # attempt kept under rules removed since then no longer applies to an order the ERP has not taken).
        return order, None
    with rt.autocommit() as session:
        kept = _row(session, store.id, order.external_id)
    if kept is not None:
        return routed(order, _routing(kept)), _routing(kept)
    if not first:
        return order, None
    try:
        rules = rules_from_setting(store.settings.get("routing"))
    except RoutingError as exc:  # config load and the form refuse it; a row edited by hand may hold it
        raise MappingError(f"{exc}: fix the store's routing rules on /config, then retry") from None
    if not rules.any:
        return order, None
    available = _available(rt, store, order, rules) if rules.stock_check else {}
    routing = _record(rt, store, order, route(order, rules, available))
    return routed(order, routing), routing


def routed(order: Order, routing: Routing) -> Order:
    return dataclasses.replace(
        order,
        warehouse=routing.warehouse,
        lines=tuple(dataclasses.replace(line, warehouse=routing.line_warehouse(line)) for line in order.lines),
    )


def order_warehouse(rt: Runtime, store_id: int, order_external_id: str, skus: Iterable[str] = ()) -> str | None:
    """The warehouse the order was routed to (None: not routed); of a split order, the one these SKUs were
    routed to when that is a single warehouse."""
    with rt.sessions() as session:
        row = _row(session, store_id, order_external_id)
    if row is None:
        return None
    wanted = set(skus)
    found = {warehouse for _, sku, warehouse in row.lines if sku in wanted and warehouse}
    return found.pop() if len(found) == 1 else row.warehouse


def _record(rt: Runtime, store: StoreInfo, order: Order, routing: Routing) -> Routing:
    """Keep the first decision; a concurrent worker's, committed first, is the one that stands."""
    skus = {line.external_id: line.sku for line in order.lines}
    try:
        with rt.sessions.begin() as session:
            session.add(
                OrderRouting(
                    store_id=store.id,
                    order_external_id=order.external_id,
                    warehouse=routing.warehouse,
                    lines=[[line, skus.get(line), warehouse] for line, warehouse in routing.lines],
                    reason=routing.reason[:1000],
                )
            )
            session.add(
                AuditEntry(
                    actor=f"rules:{store.slug}",
                    action="order.routed",
                    target=f"{store.slug} {order.number}"[:255],
                    detail={
                        "warehouse": routing.warehouse,
                        "reason": routing.reason,
                        **({"lines": dict(routing.lines)} if routing.split else {}),
                    },
                )
            )
    except IntegrityError:
        with rt.sessions() as session:
            kept = _row(session, store.id, order.external_id)
        if kept is None:
            raise
        return _routing(kept)
    return routing


def _routing(row: OrderRouting) -> Routing:
    return Routing(row.warehouse, tuple((str(line), warehouse) for line, _, warehouse in row.lines), row.reason)


def _row(session: Session, store_id: int, external_id: str) -> OrderRouting | None:
    return session.scalars(
        select(OrderRouting).where(OrderRouting.store_id == store_id, OrderRouting.order_external_id == external_id)
    ).first()


def _available(rt: Runtime, store: StoreInfo, order: Order, rules: RoutingRules) -> dict[tuple[str, str], Decimal]:
    """Free stock per (sku, warehouse) for the order's SKUs: the mirrored figure less the units of other
    orders placed after the ERP counted it. A unit held by an order routed to one warehouse lowers that
    warehouse only; one of an order without routing lowers every warehouse (we cannot tell which ships it)."""
    skus = sorted({line.sku for line in order.lines if line.sku})
    rows: dict[tuple[str, str], StockRow] = {}
    held: dict[str, list[tuple[int, datetime, str | None]]] = {}
    with rt.sessions() as session:
        for part in chunked(skus):
            for r in session.execute(
                select(StockMirror.sku, StockMirror.warehouse, StockMirror.on_hand, StockMirror.erp_updated_at).where(
                    StockMirror.sku.in_(list(part))
                )
            ):
                rows[(r.sku, r.warehouse)] = StockRow(r.warehouse, Decimal(r.on_hand), r.erp_updated_at)
            for r in session.execute(
                select(Reservation.sku, Reservation.quantity, Reservation.placed_at, OrderRouting.lines)
                .outerjoin(
                    OrderRouting,
                    and_(
                        OrderRouting.store_id == Reservation.store_id,
                        OrderRouting.order_external_id == Reservation.order_external_id,
                    ),
                )
                .where(Reservation.sku.in_(list(part)), Reservation.released.is_(False))
                .where(~and_(Reservation.store_id == store.id, Reservation.order_external_id == order.external_id))
            ):
                held.setdefault(r.sku, []).append((int(r.quantity), r.placed_at, _held_in(r.lines, r.sku)))
    available: dict[tuple[str, str], Decimal] = {}
    for (sku, warehouse), row in rows.items():
        reservations = [(q, at) for q, at, w in held.get(sku, []) if w in (None, warehouse)]
        free = location_target([row], None, reservations, Decimal(0), Decimal(1))
        available[(sku, warehouse)] = Decimal(free or 0)
    return available


def _held_in(lines: Iterable | None, sku: str) -> str | None:
    """The one warehouse a routed order ships this SKU from; None when unrouted or spread over several."""
    found = {warehouse for _, line_sku, warehouse in lines or () if line_sku == sku}
    return found.pop() if len(found) == 1 else None
