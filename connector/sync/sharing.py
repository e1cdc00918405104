"""Stock that several stores sell from, as the settings describe it: which active stores sell from which
warehouses (the location table, no store asked), their shares and priorities, offline's rank and the
per-SKU priority orders — what the stock sync splits by (mappings.allocation), and what an edit of
the configuration is checked against: shares of stores with a common warehouse add up to at most 1.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from connector.base.models import ErpConnection, MappingEntry, Store
from connector.base.runtime import Runtime
from connector.orders.locations import planned_warehouses
from mappings.allocation import ShareConflict, Sharer, share_conflicts, sharing

PRIORITY_KIND = "stock_priority"  # the per-SKU table: ERP SKU → store slugs and `offline`, first goes first


@dataclass(frozen=True)
class StockRules:
    sharers: tuple[Sharer, ...]
    offline_priority: int | None
    orders: dict[str, str]  # ERP SKU → its own priority order
    _groups: dict = field(default_factory=dict, compare=False, repr=False)

    def group(self, warehouses: frozenset[str] | None) -> list[Sharer] | None:
        """The stores that split what these warehouses hold (None: no split can be trusted there)."""
        if warehouses not in self._groups:
            self._groups[warehouses] = sharing(self.sharers, warehouses)
        return self._groups[warehouses]

    def fingerprint(self) -> list:
        """What every store's figures depend on beyond its own settings: a change recomputes every SKU."""
        return [
            [
                [
                    s.store,
                    str(s.share),
                    str(s.safety),
                    s.priority,
                    sorted(sorted(w) if w else ["*"] for w in s.sells_from),
                ]
                for s in self.sharers
            ],
            self.offline_priority,
            sorted(self.orders.items()),
        ]


def _decimal(value: Any) -> Decimal | None:
    if value in (None, ""):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def whole(value: Any) -> int | None:
    """A priority as stored (the loader made it an int; an older or hand-written value may not be)."""
    if isinstance(value, bool):
        return None
    try:
        return int(str(value)) if value not in (None, "") else None
    except ValueError:
        return None


def sharers(session: Session) -> list[Sharer]:
    """Every active store, with the warehouse sets its locations sell from."""
    own: dict[int, dict[str, str]] = {}
    shared: dict[str, str] = {}
    for store_id, source, target in session.execute(
        select(MappingEntry.store_id, MappingEntry.source, MappingEntry.target).where(MappingEntry.kind == "location")
    ):
        (shared if store_id is None else own.setdefault(store_id, {}))[source.strip()] = target
    found = []
    for store in session.scalars(select(Store).where(Store.active.is_(True)).order_by(Store.slug)):
        settings = store.settings or {}
        found.append(
            Sharer(
                store.slug,
                _decimal(settings.get("allocation_share")),
                _decimal(settings.get("safety_stock")) or Decimal(0),
                whole(settings.get("stock_priority")),
                planned_warehouses(store.platform, own.get(store.id, {}), shared),
            )
        )
    return found


def stock_rules(rt: Runtime) -> StockRules:
    with rt.sessions() as session:
        found = sharers(session)
        erp = session.scalars(select(ErpConnection).where(ErpConnection.name == "default")).first()
        orders = dict(
            session.execute(
                select(MappingEntry.source, MappingEntry.target).where(MappingEntry.kind == PRIORITY_KIND)
            ).all()
        )
    offline = whole((erp.settings or {}).get("offline_stock_priority")) if erp is not None else None
    return StockRules(tuple(found), offline, {k.strip(): v for k, v in orders.items()})


def share_problems(session: Session, involving: set[str] | None = None) -> list[ShareConflict]:
    """Shares adding up to more than 1 among stores with a common warehouse, as the session sees it
    (flushed: an edit is checked before its transaction commits)."""
    session.flush()
    return share_conflicts(sharers(session), involving)
