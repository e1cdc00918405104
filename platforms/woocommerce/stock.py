"""Stock in a WooCommerce store: one figure per product or variation, written only where the store manages it.

WooCommerce has no search by several SKUs, so items are found by reading the catalogue, which also gives
each item's current figure (the store's reported one). Figures are written with products/batch and
variations/batch of at most 100.
"""

from __future__ import annotations

from collections.abc import Sequence

from platforms.stock import SINGLE_LOCATION, Planned, StockRun, StoreItem, VariantRef
from platforms.woocommerce.api import WooClient


class WooStock:
    write_op = "POST products/batch"
    per_location = False
    whole_catalogue = True
    max_split = 0

    def find(self, client: WooClient, skus: Sequence[str] | None) -> list[StoreItem]:
        items = []
        for sku, (product_id, variation_id, manage, quantity) in client.products_by_sku().items():
            managed = manage is True  # False, or "parent": the store keeps this item's stock elsewhere
            ref = VariantRef(sku, str(product_id), None if variation_id is None else str(variation_id), managed)
            shown = {SINGLE_LOCATION: int(quantity)} if managed and quantity is not None else {}
            items.append(StoreItem(ref, shown))
        return items

    def locations(self, client: WooClient) -> dict[str, str]:
        return {SINGLE_LOCATION: ""}

    def write(self, run: StockRun, client: WooClient, plan: list[Planned]) -> None:
        by_id = {int(p.variant.variant_id or p.variant.item_id): p for p in plan}  # WordPress post ids are unique
        result = client.set_stock([(int(p.variant.item_id), _variation(p), p.target) for p in plan])
        run.write_calls = result.batches
        run.confirmed([by_id[i] for i in result.updated if i in by_id])
        for error in result.errors:
            planned = by_id.get(int(error.get("id") or 0))
            run.skip(
                f"refused by the store: {error.get('code')}: {error.get('message')}",
                planned.sku if planned else str(error.get("id")),
            )


def _variation(p: Planned) -> int | None:
    return int(p.variant.variant_id) if p.variant.variant_id else None
