"""Which storefront item sells a SKU: resolved through the store's API by SKU, cached in `store_variants`.

Shopify: the variant and its inventory item (stock is set on the item, per location). WooCommerce:
the product, or the variation and its parent product, with `manage_stock` (an item whose stock the
store does not manage — or that its parent product manages — is never written).

Missing SKUs are looked up when a sync needs them: a few by SKU search (Shopify, 50 to a query), many
by reading the whole catalogue (cheaper past one page's worth; WooCommerce has no multi-SKU search,
so it always reads the catalogue, which also gives each item's current stock: the store's reported
figure). A SKU the store does not have is remembered as such (`item_id` "") for a day, so a SKU the
ERP stocks but the store does not sell costs no lookup per run; a full sync looks again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from adapters.clock import utcnow
from adapters.shopify import numeric_id
from connector.models import PushedLevel, StoreVariant
from connector.runtime import Runtime, StoreInfo
from connector.upsert import chunked, custom_plans, upsert

WOO_LOCATION = "default"  # a WooCommerce store has one stock figure per item: its only "location"
CATALOGUE_THRESHOLD = 250  # more missing SKUs than this: read the whole catalogue instead of searching
NOT_FOUND_TTL = timedelta(days=1)


@dataclass(frozen=True)
class VariantRef:
    sku: str  # the store's SKU
    item_id: str  # Shopify inventory item id; WooCommerce product id ("" : the store has no such SKU)
    variant_id: str | None  # Shopify variant id; WooCommerce variation id (None: a simple product)
    manage_stock: bool

    @property
    def exists(self) -> bool:
        return bool(self.item_id)


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
    whole = skus is None or len(skus) > CATALOGUE_THRESHOLD or store.platform == "woocommerce"
    now = utcnow()
    rows: list[dict] = []
    reported: list[dict] = []
    if store.platform == "shopify":
        found = client.variants_by_sku(None if whole else list(skus or ()))
        for sku, (variant_gid, item_gid) in found.items():
            rows.append(
                {
                    "store_id": store.id,
                    "sku": sku,
                    "item_id": str(numeric_id(item_gid)),
                    "variant_id": str(numeric_id(variant_gid)),
                    "manage_stock": True,
                    "resolved_at": now,
                }
            )
    else:
        products = client.products_by_sku()
        found = products
        for sku, (product_id, variation_id, manage, quantity) in products.items():
            managed = manage is True  # False, or "parent": the store keeps this item's stock elsewhere
            rows.append(
                {
                    "store_id": store.id,
                    "sku": sku,
                    "item_id": str(product_id),
                    "variant_id": None if variation_id is None else str(variation_id),
                    "manage_stock": managed,
                    "resolved_at": now,
                }
            )
            if managed and quantity is not None:  # what the store shows now: its reported figure
                reported.append({"store_id": store.id, "sku": sku, "location": WOO_LOCATION, "reported": int(quantity)})
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
