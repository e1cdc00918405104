"""What a store may sell: the ERP's stock less what is promised, kept back and shared (pure).

For one SKU at one store location:
    sellable = floor((Σ on hand in the location's warehouses − reserved − safety stock) × share)
never below zero. `reserved` is what orders already took that the ERP's figure does not show yet
(orders placed after the ERP last counted the SKU); `share` is the store's allocation of a
warehouse that several stores sell from. Rounding down means the shares never add up to more than
the stock; who gets the units it leaves over is mappings.allocation's business.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal


def sellable(on_hand: Decimal, reserved: Decimal, safety_stock: Decimal, share: Decimal = Decimal(1)) -> int:
    free = on_hand - reserved - safety_stock
    if free <= 0 or share <= 0:
        return 0
    return max(0, math.floor(free * min(share, Decimal(1))))


@dataclass(frozen=True)
class StockRow:
    """One mirrored ERP figure: what a warehouse holds of a SKU and when the ERP counted it."""

    warehouse: str
    on_hand: Decimal
    updated_at: datetime


def location_target(
    rows: Sequence[StockRow],
    warehouses: frozenset[str] | None,
    reservations: Sequence[tuple[int, datetime]],
    safety_stock: Decimal,
    share: Decimal,
) -> int | None:
    """What a store location may sell of one SKU, from the ERP rows of its warehouses (None: all).

    `reservations` are (quantity, placed_at) of every unreleased order line of the SKU, in any store;
    only those placed after the ERP last counted the SKU in these warehouses are subtracted — older
    ones are already in the ERP's figure. None when the ERP has no row for these warehouses: then we
    have nothing to say about the SKU there, which is not the same as zero.
    """
    stock = location_stock(rows, warehouses, reservations)
    return None if stock is None else sellable(stock, Decimal(0), safety_stock, share)


def location_stock(
    rows: Sequence[StockRow], warehouses: frozenset[str] | None, reservations: Sequence[tuple[int, datetime]]
) -> Decimal | None:
    """Σ on hand in these warehouses less what orders took that the ERP's figure does not show yet: what
    every store selling from them counts before its own safety stock (location_target)."""
    picked = [r for r in rows if warehouses is None or r.warehouse in warehouses]
    if not picked:
        return None
    newest = max(r.updated_at for r in picked)
    reserved = sum((q for q, placed_at in reservations if placed_at > newest), 0)
    return sum((r.on_hand for r in picked), Decimal(0)) - reserved


def store_skus(erp_sku: str, sku_map: Mapping[str, str]) -> list[str]:
    """The store SKUs that sell this ERP SKU: those the merchant's table maps to it (store SKU → ERP SKU),
    and the ERP SKU itself unless the table maps that store SKU elsewhere."""
    found = sorted(s for s, target in sku_map.items() if target == erp_sku and s != erp_sku)
    if sku_map.get(erp_sku, erp_sku) == erp_sku:
        found.insert(0, erp_sku)
    return found


def parse_warehouses(target: str) -> frozenset[str] | None:
    """A location mapping's target: warehouses separated by commas; "*" (or nothing) means all of them."""
    names = frozenset(w.strip() for w in target.split(",") if w.strip())
    return None if not names or "*" in names else names
