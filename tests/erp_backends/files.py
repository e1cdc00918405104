"""The file-drop back end on temporary folders; the harness plays the ERP's side by writing CSVs."""

from __future__ import annotations

import contextlib
import csv
import io
import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from adapters.erp.files import (
    OWNER_COLUMNS,
    OWNERS_FILE,
    RECEIPT_COLUMNS,
    REFUND_COLUMNS,
    SHIPMENT_COLUMNS,
    STOCK_COLUMNS,
    UNDELIVERED_COLUMNS,
    FileDropErp,
    safe_name,
)
from mappings.canonical import ErpRefund, Receipt, Shipment, StockLevel, Undelivered
from tests.money_cases import CREDITED_KEYS
from tests.money_cases import MONEY_KEYS as BOOKED


class FilesHarness:
    kind = "files"
    validates_skus = False
    knows_warehouses = False
    default_warehouse = None

    def __init__(self, tmp_path: Path, delimiter: str = ",", encoding: str = "utf-8"):
        self.root = tmp_path / "erp-files"
        self.outbound = self.root / "outbound"
        self.inbound = self.root / "inbound"
        self.state = self.root / ".connector-state"  # the default place, spelled out for the tests
        for folder in (self.outbound, self.inbound):
            folder.mkdir(parents=True, exist_ok=True)
        self.delimiter, self.encoding = delimiter, encoding
        self._adapter = FileDropErp(self.outbound, self.inbound, delimiter=delimiter, encoding=encoding, lock_timeout=2)
        self._sequence = 0
        self.owners: dict[str, str] = {}

    def adapter(self) -> FileDropErp:
        return self._adapter

    def config(self) -> dict:
        return {
            "kind": "files",
            "outbound": str(self.outbound),
            "inbound": str(self.inbound),
            "state": str(self.state),
            "delimiter": self.delimiter,
            "encoding": self.encoding,
        }

    def add_products(self, skus: list[str]) -> None:
        return None

    def seed_stock(self, levels: list[StockLevel]) -> None:
        now = datetime.now(UTC).isoformat()
        self.drop_inbound(
            "stock",
            [STOCK_COLUMNS] + [(level.sku, level.warehouse, format(level.on_hand, "f"), now) for level in levels],
        )

    def seed_shipment(self, shipment: Shipment) -> None:
        head = (
            shipment.ref,
            shipment.order_ref,
            shipment.carrier,
            shipment.tracking_number,
            shipment.tracking_url,
            shipment.shipped_at.isoformat(),
            shipment.warehouse,
        )
        self.drop_inbound(
            "shipment",
            [SHIPMENT_COLUMNS]
            + [(*head, str(n), line.sku, str(line.quantity)) for n, line in enumerate(shipment.lines, start=1)],
        )

    def seed_offline_refund(self, refund: ErpRefund) -> ErpRefund:
        head = (
            refund.ref,
            refund.order_ref,
            refund.total.currency,
            format(refund.shipping.amount, "f"),
            format(refund.total.amount, "f"),
            refund.reason,
            refund.created_at.isoformat(),
        )
        rows = [
            (*head, str(n), ln.sku, str(ln.quantity), format(ln.amount.amount, "f"), _bool(ln.restock), ln.warehouse)
            for n, ln in enumerate(refund.lines, start=1)
        ]
        self.drop_inbound("refund", [REFUND_COLUMNS, *(rows or [(*head, "", "", "", "", "", "")])])
        return refund

    def seed_receipt(self, receipt: Receipt) -> str:
        row = (
            receipt.ref,
            receipt.order_ref,
            format(receipt.amount.amount, "f"),
            receipt.amount.currency,
            receipt.method,
            receipt.reference,
            receipt.received_at.isoformat(),
        )
        self.drop_inbound("receipt", [RECEIPT_COLUMNS, row])
        return receipt.ref

    def seed_undelivered(self, parcel: Undelivered) -> str:
        row = (parcel.ref, parcel.order_ref, parcel.reason, parcel.returned_at.isoformat())
        self.drop_inbound("undelivered", [UNDELIVERED_COLUMNS, row])
        return parcel.ref

    def booked(self, order_ref: str) -> dict:
        """The order's money as this ERP holds it (what its import reads), amounts as Decimals."""
        with open(self.outbound / f"order-{safe_name(order_ref)}.csv", encoding=self.encoding, newline="") as f:
            head = next(csv.DictReader(f, delimiter=self.delimiter))
        return {
            key: head[key] if key == "presentment_currency" else Decimal(head[key]) if head[key] else None
            for key in BOOKED
        }

    def credited(self, refund_ref: str) -> dict:
        """The credit note's money as its CSV says (every row repeats the head), amounts as Decimals."""
        with open(self.outbound / f"creditnote-{safe_name(refund_ref)}.csv", encoding=self.encoding, newline="") as f:
            head = next(csv.DictReader(f, delimiter=self.delimiter))
        return {key: Decimal(head[key]) for key in CREDITED_KEYS}

    def set_owner(self, customer_id: str, owner: str) -> None:
        """The ERP replaces its whole list of owned accounts, as the contract asks."""
        self.owners[customer_id] = owner
        self.drop_inbound("", [OWNER_COLUMNS, *sorted(self.owners.items())], name=OWNERS_FILE)

    def add_warehouse(self, code: str) -> None:
        return None

    def returned_to(self, refund_ref: str) -> dict[str, str | None]:
        with open(self.outbound / f"creditnote-{safe_name(refund_ref)}.csv", encoding=self.encoding, newline="") as f:
            rows = list(csv.DictReader(f, delimiter=self.delimiter))
        return {row["sku"]: row["restock_warehouse"] or None for row in rows if row["restock"] == "true"}

    def drop_inbound(self, prefix: str, rows: list[tuple], name: str | None = None) -> str:
        """Write a CSV the way the ERP must: a dot-prefixed temporary name, then a rename; names sort by time."""
        if name is None:
            self._sequence += 1
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
            name = f"{prefix}-{stamp}-{self._sequence:06d}.csv"
        buffer = io.StringIO()
        csv.writer(buffer, delimiter=self.delimiter, lineterminator="\r\n").writerows(rows)
        temp = self.inbound / f".{name}.part"
        with open(temp, "wb") as f:
            f.write(buffer.getvalue().encode(self.encoding))
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, self.inbound / name)
        return name

    @contextlib.contextmanager
    def down(self) -> Iterator[None]:
        # Tests run as root, so taking permissions away stops nothing: the folder is replaced by a file.
        away = self.root / "outbound.away"
        os.replace(self.outbound, away)
        self.outbound.write_text("not a folder: the share is unmounted\n")
        try:
            yield
        finally:
            self.outbound.unlink()
            os.replace(away, self.outbound)

    def close(self) -> None:
        self._adapter.close()
        shutil.rmtree(self.root, ignore_errors=True)


def _bool(value: bool) -> str:
    return "true" if value else "false"
