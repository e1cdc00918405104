"""Each ERP back end as the contract tests drive it: a clean ERP, its adapter, and the ERP's own side.

A harness module per back end (sql.py, rest.py, files.py, tryton.py) defines a class with this
shape; `tests/test_erp_contract.py` runs one suite over all of them, so each behaves the same.
"""

from __future__ import annotations

import contextlib
from typing import Protocol

from adapters.erp.base import ErpAdapter
from mappings.canonical import ErpRefund, Receipt, Shipment, StockLevel, Undelivered


class ErpHarness(Protocol):
    kind: str  # sql | rest | files | tryton
    validates_skus: bool  # the ERP refuses an order line whose SKU it does not know
    # The ERP has its own list of warehouses and one per return (Tryton), rather than keeping whatever
    # warehouse each credit-note line names for its import to resolve (sql, rest, files).
    knows_warehouses: bool
    default_warehouse: str | None  # where returned units go when the refund names no warehouse

    def adapter(self) -> ErpAdapter:
        """An adapter connected to this (clean) ERP."""

    def config(self) -> dict:
        """The `erp:` section of the connector's configuration that reaches this ERP."""

    def add_products(self, skus: list[str]) -> None:
        """Make these SKUs known to the ERP (a no-op for ERPs that take any SKU)."""

    def seed_stock(self, levels: list[StockLevel]) -> None:
        """The ERP side: record these stock levels as changed now."""

    def seed_shipment(self, shipment: Shipment) -> None:
        """The ERP side: record a shipment of an order the connector pushed."""

    def seed_undelivered(self, parcel: Undelivered) -> str:
        """The ERP side: the warehouse records the order's parcel returned undelivered; returns its ref as the
        ERP reads it back (Tryton names it after the customer shipment it cancels)."""

    def seed_receipt(self, receipt: Receipt) -> str:
        """The ERP side: finance records money received for an order the connector pushed; returns the
        receipt's ref as the ERP reads it back (Tryton names it after the invoice it pays in full, so the
        amount there is the invoice's, whatever `receipt` says)."""

    def set_owner(self, customer_id: str, owner: str) -> None:
        """The ERP side: the ERP team gives this customer account an owner (a sales rep, agent or region)."""

    def seed_offline_refund(self, refund: ErpRefund) -> ErpRefund:
        """The ERP side: the ERP credits an order the connector pushed itself (a return at the counter); returns
        the credit note as the ERP reads it back (Tryton names it after the return sale and dates it when the
        returns desk made it; everything else is `refund`'s)."""

    def add_warehouse(self, code: str) -> None:
        """Make this warehouse known to the ERP (a no-op for ERPs that keep any warehouse name)."""

    def returned_to(self, refund_ref: str) -> dict[str, str | None]:
        """{SKU: the warehouse the ERP puts it back into} for the restocked units of the credit note."""

    def staff_note(self, refund_ref: str) -> str:
        """What the credit note tells the ERP's staff (ERPs that know their warehouses)."""

    def down(self) -> contextlib.AbstractContextManager[None]:
        """The ERP is unreachable (or refuses writes) for the duration of the block."""

    def close(self) -> None:
        """Stop whatever the harness started."""
