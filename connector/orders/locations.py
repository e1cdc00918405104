"""Store location ↔ ERP warehouses, from the merchant's `location` mapping table.

An entry maps a store location (its id, a global id ending in it, or its name; `default` for a store that
keeps one stock figure per item) to one or several ERP warehouses, comma-separated (`*`: all of
them). Entries made for the store win over entries for every store. Without any entry that applies, the
store's first active location sells from all warehouses (a one-figure store's figure does) — the common
single-warehouse, single-location case needs no setup.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import String, select
from sqlalchemy.types import TypeEngine

from adapters.storefront import StorefrontError
from connector.base.models import MappingEntry, StockMirror
from connector.base.runtime import Runtime, StoreInfo
from mappings.inventory import parse_warehouses
from platforms.registry import platform as platform_of
from platforms.stock import SINGLE_LOCATION


def _max_length(column_type: TypeEngine[Any]) -> int:
    if not isinstance(column_type, String) or column_type.length is None:
        raise TypeError(f"expected a String column of bounded length, got {column_type!r}")
    return column_type.length


WAREHOUSE_MAX = _max_length(StockMirror.__table__.c.warehouse.type)


@dataclass
class LocationMap:
    """{store location id: warehouses (None: all)}, ids as the platform's StockWriter.locations gives them."""

    warehouses: dict[str, frozenset[str] | None]
    names: dict[str, str] = field(default_factory=dict)  # location id -> name, when the store was asked
    note: str = ""  # what a person should know (a default was used)

    def for_warehouse(self, warehouse: str) -> list[str]:
        """The locations that sell from this warehouse (a shipment's origin), mapped ones first."""
        exact = [loc for loc, whs in self.warehouses.items() if whs is not None and warehouse in whs]
        return exact + [loc for loc, whs in self.warehouses.items() if whs is None]


def _entries(rt: Runtime, store_id: int) -> tuple[dict[str, str], dict[str, str]]:
    """(the store's own entries, entries for every store)."""
    own: dict[str, str] = {}
    shared: dict[str, str] = {}
    with rt.sessions() as session:
        for row in session.scalars(select(MappingEntry).where(MappingEntry.kind == "location")):
            if row.store_id == store_id:
                own[row.source.strip()] = row.target
            elif row.store_id is None:
                shared[row.source.strip()] = row.target
    return own, shared


def location_entries(rt: Runtime, store_id: int) -> tuple[dict[str, str], dict[str, str]]:
    return _entries(rt, store_id)


def planned_warehouses(platform: str, own: dict[str, str], shared: dict[str, str]) -> frozenset[frozenset[str] | None]:
    """The warehouse sets a store's locations sell from as the location table says, without asking the
    store: what store_locations resolves, but for entries naming a location the store no longer has.
    Every store reads the same answer for every other store, whichever syncs first."""
    if not platform_of(platform).stock.per_location:
        target = own.get(SINGLE_LOCATION, shared.get(SINGLE_LOCATION))
        return frozenset({parse_warehouses(target) if target is not None else None})
    for table in (own, shared):
        # (an entry for the location of one-figure stores is not one of this store's locations)
        targets = [target for source, target in table.items() if source != SINGLE_LOCATION]
        if targets:
            return frozenset(parse_warehouses(t) for t in targets)
    return frozenset({None})


def restock_warehouses(rt: Runtime, store: StoreInfo, location_ids: Iterable[str]) -> dict[str, str | None]:
    """For each store location, the one ERP warehouse its returns go back into, from the location table
    (read once) by the location's id; None (the ERP's own default) when unmapped, mapped to several
    warehouses, or named by name only (resolving names asks the store, which a refund must not wait for)."""
    own, shared = _entries(rt, store.id)

    def one(location_id: str) -> str | None:
        for table in (own, shared):
            for source, target in table.items():
                if _numeric(source) == location_id:
                    warehouses = parse_warehouses(target)
                    if warehouses is None or len(warehouses) != 1:
                        return None
                    (name,) = warehouses
                    # No warehouse the ERP reports is longer (StockMirror.warehouse): a longer name is a typo,
                    # and the staging contract's column could not take it, failing the whole credit note.
                    return name if len(name) <= WAREHOUSE_MAX else None
        return None

    return {location_id: one(location_id) for location_id in location_ids}


def _numeric(value: str) -> str | None:
    text = value.rsplit("/", 1)[-1]
    return text if text.isdigit() else None


def store_locations(
    rt: Runtime, store: StoreInfo, client: Any, entries: tuple[dict[str, str], dict[str, str]] | None = None
) -> LocationMap:
    own, shared = entries if entries is not None else _entries(rt, store.id)
    stock = platform_of(store.platform).stock
    if not stock.per_location:
        target = own.get(SINGLE_LOCATION, shared.get(SINGLE_LOCATION))
        return LocationMap({SINGLE_LOCATION: parse_warehouses(target) if target is not None else None})
    # Asked once per run: a mapping may name a location by name, or one that was since deactivated
    # (writing to it would fail the whole batch).
    names = stock.locations(client)
    by_name = {name.strip().lower(): ident for ident, name in names.items() if name}

    def resolve(source: str) -> str | None:
        ident = _numeric(source)  # an id, or a global id (gid://…/123) ending in one
        if ident is not None:
            return ident if ident in names else None
        return source.strip() if source.strip() in names else by_name.get(source.strip().lower())

    for table in (own, shared):  # the store's own entries, else the shared ones
        mapped, unknown = {}, []
        for source, target in table.items():
            ident = resolve(source)
            if ident is not None:
                mapped[ident] = parse_warehouses(target)
            else:
                unknown.append(source)
        if mapped:
            note = (
                f"location mapping names {', '.join(sorted(unknown))}, not an active location of this store: ignored"
                if unknown and table is own
                else ""
            )
            return LocationMap(mapped, names, note)
    if not names:
        raise StorefrontError(f"store {store.slug} has no active location to hold stock", retryable=False)
    first = next(iter(names))
    note = ""
    if len(names) > 1:
        note = (
            f"no location mapping: location {names[first] or first} sells from every warehouse and the "
            f"store's {len(names) - 1} other location(s) get nothing; map them on /config (table location)"
        )
    return LocationMap({first: None}, names, note)
