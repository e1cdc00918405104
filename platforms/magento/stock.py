"""Stock in a Magento store with MSI: a quantity per (SKU, source), written as absolute source items
(`POST /V1/inventory/source-items`), in stock when above zero. The SKU is the item: Magento finds source
items by SKU. A source item lookup also tells what the store shows (its reported figures). Absolute
figures make a repeated call harmless; a call refused for one item is halved until the item is found."""

from __future__ import annotations

from collections.abc import Sequence

from adapters.storefront import StorefrontError
from platforms.magento.api import MagentoClient
from platforms.stock import Planned, StockRun, StoreItem, VariantRef


class MagentoStock:
    write_op = "POST inventory/source-items"
    per_location = True  # sources are the locations
    whole_catalogue = False
    max_split = 32

    def find(self, client: MagentoClient, skus: Sequence[str] | None) -> list[StoreItem]:
        rows = client.search("inventory/source-items", []) if skus is None else client.source_items(skus)
        levels: dict[str, dict[str, int]] = {}
        for row in rows:
            sku = str(row.get("sku") or "")
            if sku:
                levels.setdefault(sku, {})[str(row.get("source_code"))] = int(float(row.get("quantity") or 0))
        return [StoreItem(VariantRef(sku, sku, None, True), shown) for sku, shown in levels.items()]

    def locations(self, client: MagentoClient) -> dict[str, str]:
        return {
            str(s["source_code"]): str(s.get("name") or s["source_code"])
            for s in client.sources()
            if s.get("enabled", True) in (True, 1, "1")
        }

    def write(self, run: StockRun, client: MagentoClient, plan: list[Planned]) -> None:
        try:
            client.set_source_items([(p.variant.item_id, p.location, p.target) for p in plan])
        except StorefrontError as exc:
            if exc.retryable:
                raise
            if len(plan) > 1 and run.splits < self.max_split:
                run.splits += 1
                middle = len(plan) // 2
                self.write(run, client, plan[:middle])
                self.write(run, client, plan[middle:])
                return
            for p in plan:
                run.skip(f"refused by the store: {exc}", p.sku)
            return
        run.confirmed(plan)
