"""Which storefront item sells a SKU: resolved through the store's API by SKU, cached in `store_variants`.

What an item is, and how a store is searched, is its platform's (platforms.stock.StockWriter): a
variant and the inventory item stock is set on, per location; or a product, or a variation and its
parent product, with whether the store manages its stock (an item whose stock the store does not
manage is never written).

Missing SKUs are looked up when a sync needs them: a few by SKU search, many by reading the whole
catalogue (cheaper past one page's worth; a platform without a multi-SKU search always reads the
catalogue, which may also give each item's current stock: the store's reported figure). A SKU the
store does not have is remembered as such (`item_id` "") for a day, so a SKU the ERP stocks but the
store does not sell costs no lookup per run; a full sync looks again.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from adapters.clock import utcnow
from connector.base.models import PushedLevel, StoreVariant
from connector.base.runtime import Runtime, StoreInfo
from connector.base.upsert import chunked, custom_plans, upsert
from platforms.registry import platform
from platforms.stock import VariantRef

CATALOGUE_THRESHOLD = 250  # more missing SKUs than this: read the whole catalogue instead of searching
NOT_FOUND_TTL = timedelta(days=1)


def cached(rt: Runtime, store_id: int, skus: Sequence[str]) -> dict[str, tuple[VariantRef, Any]]:
    """{sku: (ref, resolved_at)} from the cache."""
    found: dict[str, tuple[VariantRef, Any]] = {}
    with rt.sessions() as session:
        custom_plans(session)
        for part in chunked(sorted(set(skus))):
            for row in session.scalars(
                select(StoreVariant).where(StoreVariant.store_id == store_id, StoreVariant.sku.in_(list(part)))
            ):
                found[row.sku] = (VariantRef(row.sku, row.item_id, row.variant_id, row.manage_stock), row.resolved_at)
    return found


def resolve(
    rt: Runtime, store: StoreInfo, client: Any, skus: Sequence[str], full: bool = False
) -> dict[str, VariantRef]:
    """Every SKU's storefront item, looking up through the client those the cache lacks (or, on a full
    sync, those it remembers as absent)."""
    known = cached(rt, store.id, skus)
    stale_before = utcnow() - NOT_FOUND_TTL
    missing = [s for s in skus if s not in known or (not known[s][0].exists and (full or known[s][1] < stale_before))]
    if missing:
        refresh(rt, store, client, missing)
        known.update(cached(rt, store.id, missing))
    return {s: known[s][0] for s in skus if s in known}


def refresh(rt: Runtime, store: StoreInfo, client: Any, skus: Sequence[str] | None = None) -> int:
    """Look SKUs up in the store (None: the whole catalogue, e.g. to warm the cache) and cache what was
    found, and what was not. Returns the number of SKUs found."""
    stock = platform(store.platform).stock
    whole = skus is None or len(skus) > CATALOGUE_THRESHOLD or stock.whole_catalogue
    now = utcnow()
    rows: list[dict] = []
    reported: list[dict] = []
    found = {item.ref.sku: item for item in stock.find(client, None if whole else list(skus or ()))}
    for sku, item in found.items():
        ref = item.ref
        rows.append(
            {
                "store_id": store.id,
                "sku": sku,
                "item_id": ref.item_id,
                "variant_id": ref.variant_id,
                "manage_stock": ref.manage_stock,
                "resolved_at": now,
            }
        )
        # What the store shows now: its reported figures.
        reported += [
            {"store_id": store.id, "sku": sku, "location": loc, "reported": qty} for loc, qty in item.levels.items()
        ]
    for sku in skus or ():
        if sku not in found:  # remembered as absent, looked for again after NOT_FOUND_TTL
            rows.append(
                {
                    "store_id": store.id,
                    "sku": sku,
                    "item_id": "",
                    "variant_id": None,
                    "manage_stock": False,
                    "resolved_at": now,
                }
            )
    with rt.sessions.begin() as session:
        upsert(
            session,
            StoreVariant.__table__,
            rows,
            ("store_id", "sku"),
            ("item_id", "variant_id", "manage_stock", "resolved_at"),
        )
        upsert(session, PushedLevel.__table__, reported, ("store_id", "sku", "location"), ("reported",))
    return len(found)
