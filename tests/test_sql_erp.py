"""The SQL staging contract grows without breaking an ERP that implemented an earlier version of it."""
from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from sqlalchemy import select, text

from adapters.erp.sql import OPTIONAL_ORDER_COLUMNS, SqlStagingErp, erp_orders
from mappings.shopify import order_from_shopify
from tests.conftest import load_fixture


def test_an_erp_without_the_newer_columns_still_takes_orders_with_every_fee_in_fee_total(tmp_path: Path) -> None:
    erp = SqlStagingErp(f"sqlite:///{tmp_path / 'old-erp.db'}")
    erp.create_tables()
    with erp.engine.begin() as conn:
        for column in OPTIONAL_ORDER_COLUMNS:
            conn.execute(text(f"ALTER TABLE erp_orders DROP COLUMN {column}"))
    order = order_from_shopify(load_fixture("shopify", "order_tip.json"), "acme-us")

    erp.push_order(order, erp.create_customer(order.customer, "shopify:acme-us:customer:1"))

    with erp.engine.connect() as conn:
        row = conn.execute(select(erp_orders.c.total, erp_orders.c.fee_total, erp_orders.c.subtotal,
                                  erp_orders.c.shipping_total, erp_orders.c.tax_total)).one()
    # 49.00 of goods + 6.00 shipping + 4.35 tax + the 7.35 tip, which the older contract knows as a fee
    assert (row.total, row.fee_total) == (Decimal("66.70"), Decimal("7.35"))
    assert row.subtotal + row.shipping_total + row.tax_total + row.fee_total == row.total
    erp.close()
