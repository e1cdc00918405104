"""The platform contract's stock seam: how a store's items are found by SKU and how stock figures are written.

The core (connector.sync.inventory) decides *what* each (store SKU, location) should show; a platform's
`StockWriter` knows how its store holds stock (per location, or one figure per item), how items are
found, and how figures are written, reporting each outcome back through a `StockRun`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from adapters.storefront import StorefrontError

# The one "location" of a store that keeps one stock figure per item (WooCommerce).
SINGLE_LOCATION = "default"


@dataclass(frozen=True)
class VariantRef:
    """The store item that sells a SKU, as the store names it."""

    sku: str  # the store's SKU
    item_id: str  # what stock is written on: an inventory item, a product, a variant ("": the store has no such SKU)
    variant_id: str | None  # the variant or variation, when the item has one
    manage_stock: bool  # False: the store does not count this item's stock (never written)

    @property
    def exists(self) -> bool:
        return bool(self.item_id)


@dataclass(frozen=True)
class StoreItem:
    """One SKU as a catalogue lookup found it, with the figures the store showed for it when the lookup tells
    (a location id → quantity), which are the store's reported figures."""

    ref: VariantRef
    levels: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Planned:
    """A figure to write: the target for a store SKU at a location."""

    sku: str  # the store's SKU
    location: str  # the store's location id (SINGLE_LOCATION for a one-figure store)
    variant: VariantRef
    target: int
    reported: int | None  # the store's figure, when known (a compare-and-swap's expected value)


class LocationsChanged(StorefrontError):
    """A location we wrote to is gone from the store: its locations are read again on the next run."""

    def __init__(self, message: str):
        super().__init__(message, retryable=True)


class StockRun(Protocol):
    """What a platform's writer reports back to the core during one sync run of one store."""

    @property
    def store_id(self) -> int: ...

    @property
    def slug(self) -> str: ...

    splits: int  # calls spent isolating items the store refused (the writer counts its own)
    stale_retries: int
    write_calls: int  # set by a writer whose client does not count its writes per operation

    def confirmed(self, done: Sequence[Planned], written: bool = True) -> None:
        """The store shows these figures now (`written` False: it already did, nothing was written)."""

    def reported(self, figures: Mapping[tuple[str, str], int]) -> None:
        """What the store showed when asked, per (store SKU, location)."""

    def skip(self, reason: str, sku: str) -> None:
        """A figure not written, and why (a person reads the reason)."""

    def incomplete(self, message: str) -> None:
        """Something is left to write: the run's SKUs are recomputed next time."""


class StockWriter(Protocol):
    write_op: str  # the client call that writes stock, as its stats count calls
    per_location: bool  # stock is held per store location (else one figure per item, at SINGLE_LOCATION)
    whole_catalogue: bool  # the store has no search by several SKUs: items are found by reading the catalogue
    max_split: int  # halvings one run may spend finding refused items

    def find(self, client: Any, skus: Sequence[str] | None) -> list[StoreItem]:
        """The store's items for these SKUs (None: every item); SKUs the store lacks are left out."""

    def locations(self, client: Any) -> dict[str, str]:
        """The store's active locations that can hold stock: {id: name} (only asked when per_location)."""

    def write(self, run: StockRun, client: Any, plan: list[Planned]) -> None:
        """Write these figures, reporting each outcome through `run`. A retryable StorefrontError propagates
        (the run is redone); LocationsChanged when a location is gone."""
