"""Stock figures the stores report by webhook: the store's side of `pushed_levels`.

A platform's stock topic (e.g. a product or an inventory level updated) is sent for every stock write,
ours included. A figure equal to what we last pushed for that item and location is the
echo of our own write: it is recorded as ignored ("our own write") and changes nothing. Any other
figure is a change made in the store (a sale, a merchant's correction) and becomes the store's
reported figure: the next sync compares its target with it, and a platform's compare-and-swap sends it
as the figure it expects. A figure that arrives late or out of order is corrected by the next write
(a store refuses a stale expected figure, and we re-read).
"""

from __future__ import annotations

from sqlalchemy import or_, select

from connector.base.models import PushedLevel, StoreVariant
from connector.base.runtime import Runtime, StoreInfo
from connector.base.upsert import upsert
from platforms.stock import SINGLE_LOCATION


def _level(rt: Runtime, store_id: int, sku: str, location: str) -> PushedLevel | None:
    with rt.sessions() as session:
        row = session.get(PushedLevel, (store_id, sku, location))
        if row is not None:
            session.expunge(row)
        return row


def _report(rt: Runtime, store_id: int, sku: str, location: str, quantity: int) -> dict:
    level = _level(rt, store_id, sku, location)
    if level is not None and level.pushed is not None and quantity == level.pushed:
        return {"ignored": True, "note": f"our own write: {sku} at {location} is {quantity}, what we pushed"}
    with rt.sessions.begin() as session:
        upsert(
            session,
            PushedLevel.__table__,
            [{"store_id": store_id, "sku": sku, "location": location, "reported": quantity}],
            ("store_id", "sku", "location"),
            ("reported",),
        )
    before = level.reported if level is not None else None
    return {
        "note": f"the store reports {quantity} of {sku} at {location} (was {before}, we pushed "
        f"{level.pushed if level is not None else None})",
        "reported": quantity,
        "sku": sku,
    }


def product_reported(rt: Runtime, store: StoreInfo, ident: str, sku: str, managed: bool, quantity: object) -> dict:
    """A product's own stock figure (one per product or variation, for a store that keeps one figure per item),
    with whether the store manages its stock: found by SKU, or by its id when the SKU was edited in the store."""
    with rt.sessions.begin() as session:
        row = None
        if sku:
            row = session.get(StoreVariant, (store.id, sku))
        if row is None and ident:  # the SKU was edited in the store: find the item by its id
            row = session.scalars(
                select(StoreVariant).where(
                    StoreVariant.store_id == store.id,
                    or_(
                        StoreVariant.variant_id == ident,
                        (StoreVariant.item_id == ident) & StoreVariant.variant_id.is_(None),
                    ),
                )
            ).first()
        if row is None or not row.item_id:
            return {
                "ignored": True,
                "note": f"product {ident} ({sku or 'no SKU'}) is not an item the stock sync writes",
            }
        row.manage_stock = managed  # a merchant may switch stock management on or off
        sku = row.sku
    if not managed:
        return {"ignored": True, "note": f"the store does not manage the stock of {sku}: it is not written"}
    if not isinstance(quantity, int | float) or isinstance(quantity, bool):
        return {"ignored": True, "note": f"no stock quantity for {sku} in the payload"}
    return _report(rt, store.id, sku, SINGLE_LOCATION, int(quantity))


def item_reported(rt: Runtime, store: StoreInfo, item_id: str, location: str, quantity: int) -> dict:
    """A stock item's figure at one store location (for a store that keeps stock per inventory item and location)."""
    with rt.sessions() as session:
        sku = session.scalars(
            select(StoreVariant.sku).where(StoreVariant.store_id == store.id, StoreVariant.item_id == item_id)
        ).first()
    if sku is None:
        return {"ignored": True, "note": f"inventory item {item_id} is not an item the stock sync writes"}
    return _report(rt, store.id, sku, location, quantity)
