"""The SQL staging back end on a SQLite file (the PostgreSQL flavour runs in the integration tests)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, select
from sqlalchemy.engine import Connection

from adapters.erp.sql import SqlStagingErp
from adapters.erp.sql_contract import (
    erp_credit_note_lines,
    erp_credit_notes,
    erp_customers,
    erp_orders,
    erp_receipts,
    erp_refund_lines,
    erp_refunds,
    erp_shipment_lines,
    erp_shipments,
    erp_stock,
    erp_undelivered,
)
from mappings.canonical import ErpRefund, Receipt, Shipment, StockLevel, Undelivered
from tests.money_cases import CREDITED_KEYS
from tests.money_cases import MONEY_KEYS as BOOKED


@contextlib.contextmanager
def sqlite_locked(url: str) -> Iterator[None]:
    """Another program holds the SQLite ERP's write lock: writes time out ("database is locked")."""
    locker = create_engine(url, isolation_level="AUTOCOMMIT")
    with locker.connect() as conn:
        conn.exec_driver_sql("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            conn.exec_driver_sql("ROLLBACK")
    locker.dispose()


def receipt_row(receipt: Receipt, updated_at: datetime) -> dict:
    """The erp_receipts row finance's side of the ERP writes for this receipt."""
    return {
        "receipt_ref": receipt.ref,
        "order_external_ref": receipt.order_ref,
        "amount": receipt.amount.amount,
        "currency": receipt.amount.currency,
        "method": receipt.method,
        "reference": receipt.reference,
        "received_at": receipt.received_at,
        "updated_at": updated_at,
    }


def undelivered_row(parcel: Undelivered, updated_at: datetime) -> dict:
    """The erp_undelivered row the warehouse's side of the ERP writes for this returned parcel."""
    return {
        "return_ref": parcel.ref,
        "order_external_ref": parcel.order_ref,
        "reason": parcel.reason,
        "returned_at": parcel.returned_at,
        "updated_at": updated_at,
    }


def insert_offline_refund(conn: Connection, refund: ErpRefund, updated_at: datetime) -> None:
    """The ERP credits an order itself: its erp_refunds row and lines (never erp_credit_notes, ours)."""
    conn.execute(
        erp_refunds.insert().values(
            refund_ref=refund.ref,
            order_external_ref=refund.order_ref,
            currency=refund.total.currency,
            shipping=refund.shipping.amount,
            total=refund.total.amount,
            reason=refund.reason,
            created_at=refund.created_at,
            updated_at=updated_at,
        )
    )
    for n, ln in enumerate(refund.lines, start=1):
        conn.execute(
            erp_refund_lines.insert().values(
                refund_ref=refund.ref,
                line_no=n,
                sku=ln.sku,
                quantity=ln.quantity,
                amount=ln.amount.amount,
                restock=ln.restock,
                warehouse=ln.warehouse or None,
            )
        )


class SqlHarness:
    kind = "sql"
    validates_skus = False
    knows_warehouses = False
    default_warehouse = None

    def __init__(self, tmp_path: Path):
        self.url = f"sqlite:///{tmp_path / 'erp-staging.db'}"
        self._adapter = SqlStagingErp(self.url, lock_timeout=0.2)
        self._adapter.create_tables()

    def adapter(self) -> SqlStagingErp:
        return self._adapter

    def config(self) -> dict:
        return {"kind": "sql", "url": self.url, "lock_timeout_seconds": 0.2}

    def add_products(self, skus: list[str]) -> None:
        return None

    def seed_stock(self, levels: list[StockLevel]) -> None:
        now = datetime.now(UTC)
        with self._adapter.engine.begin() as conn:
            for level in levels:
                conn.execute(
                    erp_stock.delete().where(erp_stock.c.sku == level.sku, erp_stock.c.warehouse == level.warehouse)
                )
                conn.execute(
                    erp_stock.insert().values(
                        sku=level.sku, warehouse=level.warehouse, on_hand=level.on_hand, updated_at=now
                    )
                )

    def seed_shipment(self, shipment: Shipment) -> None:
        now = datetime.now(UTC)
        with self._adapter.engine.begin() as conn:
            conn.execute(
                erp_shipments.insert().values(
                    shipment_ref=shipment.ref,
                    order_external_ref=shipment.order_ref,
                    warehouse=shipment.warehouse,
                    carrier=shipment.carrier,
                    tracking_number=shipment.tracking_number,
                    tracking_url=shipment.tracking_url,
                    shipped_at=shipment.shipped_at,
                    updated_at=now,
                )
            )
            conn.execute(
                erp_shipment_lines.insert(),
                [
                    {"shipment_ref": shipment.ref, "line_no": n, "sku": line.sku, "quantity": line.quantity}
                    for n, line in enumerate(shipment.lines, start=1)
                ],
            )

    def seed_offline_refund(self, refund: ErpRefund) -> ErpRefund:
        with self._adapter.engine.begin() as conn:
            insert_offline_refund(conn, refund, datetime.now(UTC))
        return refund

    def seed_receipt(self, receipt: Receipt) -> str:
        with self._adapter.engine.begin() as conn:
            conn.execute(erp_receipts.insert().values(**receipt_row(receipt, datetime.now(UTC))))
        return receipt.ref

    def seed_undelivered(self, parcel: Undelivered) -> str:
        with self._adapter.engine.begin() as conn:
            conn.execute(erp_undelivered.insert().values(**undelivered_row(parcel, datetime.now(UTC))))
        return parcel.ref

    def booked(self, order_ref: str) -> dict:
        """The order's money as this ERP holds it (what its import reads), amounts as Decimals."""
        with self._adapter.engine.connect() as conn:
            row = conn.execute(select(erp_orders).where(erp_orders.c.external_ref == order_ref)).one()._mapping
        return {key: row[key] for key in BOOKED}

    def credited(self, refund_ref: str) -> dict:
        """The credit note's money as this ERP holds it, amounts as Decimals."""
        with self._adapter.engine.connect() as conn:
            row = conn.execute(select(erp_credit_notes).where(erp_credit_notes.c.external_ref == refund_ref)).one()
        return {key: row._mapping[key] for key in CREDITED_KEYS}

    def set_owner(self, customer_id: str, owner: str) -> None:
        with self._adapter.engine.begin() as conn:
            conn.execute(erp_customers.update().where(erp_customers.c.id == int(customer_id)).values(owner=owner))

    def add_warehouse(self, code: str) -> None:
        return None

    def returned_to(self, refund_ref: str) -> dict[str, str | None]:
        lines = erp_credit_note_lines
        with self._adapter.engine.connect() as conn:
            rows = conn.execute(
                select(lines.c.sku, lines.c.warehouse).where(
                    lines.c.credit_note_ref == refund_ref, lines.c.restock.is_(True)
                )
            ).all()
        return {row.sku: row.warehouse for row in rows}

    def down(self) -> contextlib.AbstractContextManager[None]:
        return sqlite_locked(self.url)

    def close(self) -> None:
        self._adapter.close()
