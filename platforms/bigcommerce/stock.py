"""Stock in a BigCommerce store: per inventory location, on each catalog variant, written as absolute figures
(`PUT /v3/inventory/adjustments/absolute`, up to 2,000 items a call). Absolute figures make a repeated call
harmless. A call refused for one item is halved until the item is found (at most `max_split` halvings)."""

from __future__ import annotations

from collections.abc import Sequence

from adapters.storefront import StorefrontError
from platforms.bigcommerce.api import BigCommerceClient
from platforms.stock import LocationsChanged, Planned, StockRun, StoreItem, VariantRef


class BigCommerceStock:
    write_op = "PUT v3/inventory/adjustments/absolute"
    per_location = True
    whole_catalogue = False
    max_split = 32

    def find(self, client: BigCommerceClient, skus: Sequence[str] | None) -> list[StoreItem]:
        found: dict[str, StoreItem] = {}
        for variant in client.variants(None if skus is None else list(skus)):
            sku = str(variant.get("sku") or "")
            if sku and sku not in found:  # the first of duplicated SKUs wins
                ident = str(variant["id"])
                found[sku] = StoreItem(VariantRef(sku, ident, ident, True))
        return list(found.values())

    def locations(self, client: BigCommerceClient) -> dict[str, str]:
        return {
            str(loc["id"]): str(loc.get("label") or loc.get("code") or "")
            for loc in client.locations()
            if loc.get("is_active", True)
        }

    def write(self, run: StockRun, client: BigCommerceClient, plan: list[Planned]) -> None:
        self._batch(run, client, plan)

    def _batch(self, run: StockRun, client: BigCommerceClient, batch: list[Planned]) -> None:
        try:
            run.write_calls += client.set_stock(
                [(int(p.variant.item_id), int(p.location), p.target) for p in batch], reason=f"stock sync {run.slug}"
            )
        except StorefrontError as exc:
            if exc.retryable:
                raise
            if "location" in str(exc).lower() and len(batch) == 1:
                raise LocationsChanged(f"{exc}; the store's locations are read again on the next run") from exc
            if len(batch) > 1 and run.splits < self.max_split:
                run.splits += 1
                middle = len(batch) // 2
                self._batch(run, client, batch[:middle])
                self._batch(run, client, batch[middle:])
                return
            for p in batch:
                run.skip(f"refused by the store: {exc}", p.sku)
            return
        run.confirmed(batch)
