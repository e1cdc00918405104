"""The ERP's stock, mirrored: read stock changes since the cursor into `stock_levels`.

The mirror is what the inventory sync computes from, so a store sync never waits on the ERP and the
ERP is read once for all stores. Each row keeps the ERP's own time (`erp_updated_at`: reservations
placed after it are not in the figure yet) and the time we saw it change (`changed_at`: what a
store's incremental sync looks for). Rows are upserted on (sku, warehouse), so reading the same
page twice changes nothing; the cursor is saved only after the page's rows are committed, so a crash
in between reads that page again instead of losing it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TypeVar

from sqlalchemy import and_, or_, select, tuple_

from adapters.clock import utcnow
from connector.base.models import StockMirror, SyncCursor
from connector.base.runtime import Runtime
from connector.base.upsert import chunked, custom_plans, upsert
from mappings.canonical import StockLevel

log = logging.getLogger(__name__)
T = TypeVar("T")

STOCK_CURSOR = "erp:stock"
PAGE = 1000  # rows asked of the ERP per call
MAX_PAGES = 10_000  # a safety stop for an ERP whose cursor never settles


@dataclass
class StockReadReport:
    pages: int = 0
    rows: int = 0  # levels the ERP gave
    changed: int = 0  # of which new or different from the mirror

    def __str__(self) -> str:
        return f"{self.rows} stock row(s) read in {self.pages} page(s), {self.changed} changed"


def read_erp_stock(rt: Runtime, page_size: int = PAGE) -> StockReadReport:
    """Pull every stock change the ERP has after our cursor into the mirror."""
    erp = rt.erp()
    report = StockReadReport()
    cursor = load_cursor(rt, STOCK_CURSOR)
    for _ in range(MAX_PAGES):
        levels, following = erp.stock_changes(cursor, limit=page_size)
        if levels:
            report.pages += 1
            report.rows += len(levels)
            report.changed += upsert_levels(rt, levels)
        if following is not None and following != cursor:
            save_cursor(rt, STOCK_CURSOR, following)  # after the rows' commit, never before
        if not levels or following is None or following == cursor:
            return report
        cursor = following
    log.warning("stock read stopped after %d pages; the rest comes on the next run", MAX_PAGES)
    return report


def upsert_levels(rt: Runtime, levels: Sequence[StockLevel]) -> int:
    """Write levels into the mirror; return how many were new or changed. `changed_at` moves only when
    the quantity or the ERP's time changed, and an older figure never replaces a newer one (the push
    endpoint may deliver out of order)."""
    latest: dict[tuple[str, str], StockLevel] = {}
    for level in levels:  # the same row twice in one page: the newest wins
        key = (level.sku, level.warehouse or "")
        if key not in latest or level.updated_at >= latest[key].updated_at:
            latest[key] = level
    now = utcnow()
    rows: list[dict] = []
    with rt.sessions.begin() as session:
        custom_plans(session)
        known: dict[tuple[str, str], tuple[Decimal, datetime]] = {}
        for part in chunked(sorted(latest)):
            for r in session.execute(
                select(StockMirror.sku, StockMirror.warehouse, StockMirror.on_hand, StockMirror.erp_updated_at).where(
                    tuple_(StockMirror.sku, StockMirror.warehouse).in_(list(part))
                )
            ):
                known[(r.sku, r.warehouse)] = (Decimal(r.on_hand), r.erp_updated_at)
        for key, level in latest.items():
            before = known.get(key)
            on_hand = Decimal(level.on_hand)
            if before is not None and (
                before[1] > level.updated_at or (before[0] == on_hand and before[1] == level.updated_at)
            ):
                continue
            rows.append(
                {
                    "sku": key[0],
                    "warehouse": key[1],
                    "on_hand": on_hand,
                    "erp_updated_at": level.updated_at,
                    "changed_at": now,
                }
            )
        table = StockMirror.__table__
        upsert(
            session,
            table,
            rows,
            ("sku", "warehouse"),
            ("on_hand", "erp_updated_at", "changed_at"),
            where=lambda t, new: and_(
                t.c.erp_updated_at <= new.erp_updated_at,
                or_(t.c.on_hand != new.on_hand, t.c.erp_updated_at != new.erp_updated_at),
            ),
        )
    return len(rows)


def read_pages(
    rt: Runtime,
    name: str,
    fetch: Callable[[str | None, int], tuple[list[T], str | None]],
    record: Callable[[list[T]], None],
    page: int,
) -> None:
    """Read one ERP feed (shipments, receipts) from its saved cursor on: each page is recorded, committed,
    before the cursor moves past it, so a crash in between reads the page again instead of losing it."""
    cursor = load_cursor(rt, name)
    for _ in range(MAX_PAGES):
        found, following = fetch(cursor, page)
        if found:
            record(found)
        if following is not None and following != cursor:
            save_cursor(rt, name, following)
        if not found or following is None or following == cursor:
            return
        cursor = following
    log.warning("%s read stopped after %d pages; the rest comes on the next run", name, MAX_PAGES)


def load_cursor(rt: Runtime, name: str) -> str | None:
    with rt.sessions() as session:
        row = session.get(SyncCursor, name)
        return row.cursor if row is not None else None


def save_cursor(rt: Runtime, name: str, value: str | None) -> None:
    with rt.sessions.begin() as session:
        upsert(
            session,
            SyncCursor.__table__,
            [{"name": name, "cursor": value, "updated_at": utcnow()}],
            ("name",),
            ("cursor", "updated_at"),
        )


def load_json_cursor(rt: Runtime, name: str) -> dict:
    raw = load_cursor(rt, name)
    try:
        value = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
