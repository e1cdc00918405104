"""The REST/JSON back end against the fake REST ERP (tests/fakes/rest_erp.py) over real HTTP."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

from adapters.erp import build_erp
from adapters.erp.rest import RestErp
from mappings.canonical import ErpRefund, Receipt, Shipment, StockLevel, Undelivered
from tests.fakes.rest_erp import FakeRestErp
from tests.money_cases import CREDITED_KEYS
from tests.money_cases import MONEY_KEYS as BOOKED

TOKEN = "erp-harness-token"


class RestHarness:
    kind = "rest"
    validates_skus = True
    knows_warehouses = False
    default_warehouse = None

    def __init__(self, tmp_path: Path | None = None):
        # strict: an ERP that validates SKUs knows none until add_products() names them
        self.fake = FakeRestErp(token=TOKEN, strict_skus=True)
        self._adapter: RestErp | None = None

    def adapter(self) -> RestErp:
        if self._adapter is None:
            cfg = self.config()
            settings = {k: v for k, v in cfg.items() if k not in ("kind", "token")}
            self._adapter = build_erp("rest", settings, {"token": cfg["token"]})  # type: ignore[assignment]
        return self._adapter  # type: ignore[return-value]

    def config(self) -> dict:
        return {
            "kind": "rest",
            "base_url": self.fake.url,
            "auth": {"type": "bearer"},
            "token": TOKEN,
            "timeout_seconds": 2,
            "max_tries": 2,
            "retry_base_seconds": 0.05,
            "max_wait_seconds": 0.5,
        }

    def add_products(self, skus: list[str]) -> None:
        self.fake.add_products(skus)

    def seed_stock(self, levels: list[StockLevel]) -> None:
        self.fake.seed_stock(levels)

    def seed_shipment(self, shipment: Shipment) -> None:
        self.fake.add_shipment(shipment)

    def seed_offline_refund(self, refund: ErpRefund) -> ErpRefund:
        self.fake.add_refund(refund)
        return refund

    def seed_receipt(self, receipt: Receipt) -> str:
        self.fake.add_receipt(receipt)
        return receipt.ref

    def seed_undelivered(self, parcel: Undelivered) -> str:
        self.fake.add_undelivered(parcel)
        return parcel.ref

    def mark_imported(self, order_ref: str) -> None:
        """The ERP side takes the order: from now on the connector may no longer edit it."""
        self.fake.set_status(order_ref, "imported")

    def booked(self, order_ref: str) -> dict:
        """The order's money as this ERP holds it (what its import reads), amounts as Decimals."""
        doc = self.fake.orders[order_ref]
        presentment = doc["presentment"] or {"currency": None, "total": None}
        return {
            **{key: Decimal(doc["totals"][key]) for key in BOOKED if key in doc["totals"]},
            "presentment_currency": presentment["currency"],
            "presentment_total": presentment["total"] and Decimal(presentment["total"]),
        }

    def credited(self, refund_ref: str) -> dict:
        """The credit note's money as this ERP holds it, amounts as Decimals."""
        note = self.fake.credit_notes[refund_ref]
        return {key: Decimal(note[key]) for key in CREDITED_KEYS}

    def set_owner(self, customer_id: str, owner: str) -> None:
        self.fake.set_owner(customer_id, owner)

    def add_warehouse(self, code: str) -> None:
        return None

    def returned_to(self, refund_ref: str) -> dict[str, str | None]:
        return {
            line["sku"]: line["warehouse"] for line in self.fake.credit_notes[refund_ref]["lines"] if line["restock"]
        }

    @contextlib.contextmanager
    def down(self) -> Iterator[None]:
        self.fake.down = True
        try:
            yield
        finally:
            self.fake.down = False

    def close(self) -> None:
        if self._adapter is not None:
            self._adapter.close()
        self.fake.stop()
