"""Helpers for the stock, shipment and receipt tests: point a test stack's stores at the fake storefronts,
and write what the ERP would write into its staging tables (erp_stock, erp_shipments, erp_receipts)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from werkzeug.serving import make_server

from adapters.erp.sql_contract import erp_receipts, erp_shipment_lines, erp_shipments, erp_stock, erp_undelivered
from connector.base.clients import forget
from connector.base.models import Store
from connector.setup.config_io import load_config, replace_mapping
from mappings.canonical import ErpRefund, Money, Receipt, Undelivered
from tests.erp_backends.sql import insert_offline_refund, receipt_row, undelivered_row
from tests.fakes.shopify import FakeShopify
from tests.fakes.woocommerce import FakeWooCommerce
from tests.stack import SECRET, STORE, WOO_SECRET, WOO_STORE, Stack

WOO_KEY, WOO_KEY_SECRET = "ck_test_0123456789", "cs_test_0123456789"  # what tests/stack.py configures


def configure(
    stack: Stack,
    shop: FakeShopify | None = None,
    woo: FakeWooCommerce | None = None,
    shopify_settings: dict | None = None,
    woo_settings: dict | None = None,
    erp: dict | None = None,
) -> None:
    """Point the stack's stores at the fakes (replacing their settings) and, optionally, the ERP entry."""
    stores: list[dict] = []
    if shop is not None:
        stores.append(
            {
                "slug": STORE,
                "platform": "shopify",
                "shop_domain": shop.shop_domain,
                "webhook_secret": SECRET,
                "access_token": shop.token,
                "api_version": "2026-01",
                "api_base_url": shop.url,
                **(shopify_settings or {}),
            }
        )
    if woo is not None:
        stores.append(
            {
                "slug": WOO_STORE,
                "platform": "woocommerce",
                "url": woo.url,
                "webhook_secret": WOO_SECRET,
                "consumer_key": WOO_KEY,
                "consumer_secret": WOO_KEY_SECRET,
                **(woo_settings or {}),
            }
        )
    doc: dict[str, Any] = {"stores": stores}
    if erp is not None:
        doc["erp"] = {"kind": "sql", "url": stack.erp_url, "lock_timeout_seconds": 0.2, **erp}
    load_config(stack.rt, json.dumps(doc))
    forget()  # cold clients: each test counts its own calls


def fake_woo(**options: Any) -> FakeWooCommerce:
    return FakeWooCommerce(consumer_key=WOO_KEY, consumer_secret=WOO_KEY_SECRET, **options)


def store_id(stack: Stack, slug: str) -> int:
    with stack.rt.sessions() as session:
        return session.scalars(select(Store.id).where(Store.slug == slug)).one()


def map_locations(stack: Stack, rows: Sequence[tuple[str | None, str, str]]) -> None:
    """(store slug or None, store location, warehouses)."""
    replace_mapping(stack.rt, "location", [{"store": s, "source": src, "target": tgt} for s, src, tgt in rows])


def map_priorities(stack: Stack, rows: Sequence[tuple[str, str]]) -> None:
    """(ERP SKU, store slugs and offline in the order that gets the units the shares' rounding leaves)."""
    replace_mapping(
        stack.rt, "stock_priority", [{"store": None, "source": sku, "target": order} for sku, order in rows]
    )


def set_erp_stock(stack: Stack, rows: Iterable[tuple[str, str, int, datetime]]) -> None:
    """Write (sku, warehouse, on_hand, updated_at) into erp_stock, as the ERP does."""
    rows = [{"sku": s, "warehouse": w, "on_hand": q, "updated_at": t} for s, w, q, t in rows]
    with stack.erp_engine.begin() as conn:
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        stmt = dialect.insert(erp_stock)
        stmt = stmt.on_conflict_do_update(
            index_elements=["sku", "warehouse"],
            set_={"on_hand": stmt.excluded.on_hand, "updated_at": stmt.excluded.updated_at},
        )
        conn.execute(stmt, rows)


def add_shipment(
    stack: Stack,
    ref: str,
    order_ref: str,
    lines: Sequence[tuple[str, int]],
    *,
    carrier: str = "",
    number: str = "",
    url: str = "",
    warehouse: str = "",
    at: datetime,
) -> None:
    with stack.erp_engine.begin() as conn:
        conn.execute(
            erp_shipments.insert().values(
                shipment_ref=ref,
                order_external_ref=order_ref,
                warehouse=warehouse,
                carrier=carrier,
                tracking_number=number,
                tracking_url=url,
                shipped_at=at,
                updated_at=at,
            )
        )
        conn.execute(
            erp_shipment_lines.insert(),
            [
                {"shipment_ref": ref, "line_no": n, "sku": sku, "quantity": q}
                for n, (sku, q) in enumerate(lines, start=1)
            ],
        )


def add_receipt(
    stack: Stack, ref: str, order_ref: str, amount: str, currency: str, *, at: datetime, reference: str = ""
) -> None:
    """Finance records money received for the order: a row in erp_receipts, as the ERP writes it."""
    receipt = Receipt(ref, order_ref, Money(Decimal(amount), currency), at, "cod", reference)
    with stack.erp_engine.begin() as conn:
        conn.execute(erp_receipts.insert().values(**receipt_row(receipt, at)))


def add_undelivered(stack: Stack, ref: str, order_ref: str, reason: str, *, at: datetime) -> None:
    """The warehouse records the order's parcel returned undelivered: a row in erp_undelivered, as the ERP
    writes it."""
    with stack.erp_engine.begin() as conn:
        conn.execute(erp_undelivered.insert().values(**undelivered_row(Undelivered(ref, order_ref, reason, at), at)))


def add_offline_refund(stack: Stack, refund: ErpRefund) -> None:
    """The ERP credits an order itself (a return at the counter): erp_refunds and its lines, as the ERP writes them."""
    with stack.erp_engine.begin() as conn:
        insert_offline_refund(conn, refund, refund.created_at)


class Served:
    """The stack's app on a real loopback HTTP server, for stores that deliver webhooks themselves."""

    def __init__(self, stack: Stack):
        self._server = make_server("127.0.0.1", 0, stack.app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
