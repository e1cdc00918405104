"""Stock in a Shopify store: per location, on each variant's inventory item.

Written with `inventorySetQuantities` (name "available") in calls of at most 250 quantities, each with
`changeFromQuantity` = the store's figure when we know it (compare-and-swap; null skips the check) and an
idempotency key per (store, run, batch). A CHANGE_FROM_QUANTITY_STALE refusal (the store sold or was
restocked meanwhile) re-reads those levels and writes again, once, what still differs. A call refused for
one item is halved until the item is found (at most `max_split` halvings a run).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import replace

from adapters.storefront import StorefrontError
from platforms.shopify.api import QuantityStaleError, ShopifyClient, numeric_id, to_gid
from platforms.stock import LocationsChanged, Planned, StockRun, StoreItem, VariantRef


class ShopifyStock:
    write_op = "inventorySetQuantities"
    per_location = True
    whole_catalogue = False
    max_split = 32  # one refused item in 250 takes about 16

    def find(self, client: ShopifyClient, skus: Sequence[str] | None) -> list[StoreItem]:
        return [
            StoreItem(VariantRef(sku, str(numeric_id(item_gid)), str(numeric_id(variant_gid)), True))
            for sku, (variant_gid, item_gid) in client.variants_by_sku(None if skus is None else list(skus)).items()
        ]

    def locations(self, client: ShopifyClient) -> dict[str, str]:
        return {
            str(numeric_id(loc["id"])): str(loc.get("name") or "")
            for loc in client.locations()
            if loc.get("active", True)
        }

    def write(self, run: StockRun, client: ShopifyClient, plan: list[Planned]) -> None:
        key = uuid.uuid4().hex[:12]
        # Compare-and-swap rows first: an API version before 2026-01 sends them as a group of their own,
        # and keeping our order equal to the client's lets a partial failure be mapped back to rows.
        plan = sorted(plan, key=lambda p: p.reported is None)
        start = n = 0
        while start < len(plan):
            # As many as one call can carry: 250, or what the shop's bucket holds once the client knows it.
            size = client.set_batch_size()
            self._batch(run, client, plan[start : start + size], f"stock:{run.store_id}:{key}:{n}", stale_retry=True)
            start, n = start + size, n + 1

    def _batch(self, run: StockRun, client: ShopifyClient, batch: list[Planned], key: str, stale_retry: bool) -> None:
        try:
            client.set_available(
                [(p.variant.item_id, p.location, p.target, p.reported) for p in batch],
                idempotency_key=key,
                reason="correction",
                reference_uri=f"connector://stock-sync/{run.slug}",
            )
        except QuantityStaleError as exc:
            done = sum(r["count"] for r in exc.completed)
            run.confirmed(batch[:done])
            if stale_retry:
                self._after_stale(run, client, batch[done:], key)
            else:
                run.incomplete(
                    f"{len(batch) - done} level(s) kept changing in the store while we wrote them; "
                    "the next run tries again"
                )
            return
        except StorefrontError as exc:
            if exc.retryable:
                raise
            if "INVALID_LOCATION" in str(exc):  # a location was removed since we read them: read them again
                raise LocationsChanged(f"{exc}; the store's locations are read again on the next run") from exc
            if len(batch) > 1 and run.splits < self.max_split:  # one refused item fails the whole call: halve
                run.splits += 1
                middle = len(batch) // 2
                self._batch(run, client, batch[:middle], key + "a", stale_retry)
                self._batch(run, client, batch[middle:], key + "b", stale_retry)
                return
            for p in batch:  # (past max_split a refused batch is reported whole rather than searched)
                run.skip(f"refused by the store: {exc}", p.sku)
            return
        run.confirmed(batch)

    def _after_stale(self, run: StockRun, client: ShopifyClient, batch: list[Planned], key: str) -> None:
        """The store's figures moved since we learned them: read them, write again what still differs."""
        run.stale_retries += 1
        now = client.available_by_sku(sorted({p.sku for p in batch}))
        figures: dict[tuple[str, str], int] = {}
        retry: list[Planned] = []
        already: list[Planned] = []
        for p in batch:
            current = now.get(p.sku, {}).get(to_gid("Location", p.location))
            if current is not None:
                figures[(p.sku, p.location)] = current
            if current == p.target:
                already.append(p)  # the store shows our figure already: nothing to write
            else:
                retry.append(replace(p, reported=current))
        run.reported(figures)
        run.confirmed(already, written=False)
        if retry:
            retry.sort(key=lambda p: p.reported is None)
            self._batch(run, client, retry, key + ":reread", stale_retry=False)
