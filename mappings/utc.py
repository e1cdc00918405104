"""Timestamps in one convention: timezone-aware UTC in, UTC out, and a naive value read as UTC.

Everything the connector reads naive times from keeps UTC: SQLite through our column type, Tryton,
the ERP contracts ("ISO-8601; without a zone it is taken as UTC"), WooCommerce's `*_gmt` fields. So a
naive value means UTC everywhere in the code, never the machine's local time.
"""

from __future__ import annotations

from datetime import UTC, datetime


def as_utc(value: datetime) -> datetime:
    """The same instant, timezone-aware in UTC; a naive value is taken as UTC.

    OverflowError when the instant falls outside the years 1–9999 in UTC (0001-01-01T00:00+14:00)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def utc_text(value: datetime, *, zulu: bool = False) -> str:
    """ISO-8601 in UTC: `2026-11-20T15:16:12+00:00`, or `...Z` with `zulu` (the REST ERP contract's form)."""
    text = as_utc(value).isoformat()
    return text.replace("+00:00", "Z") if zulu else text


def parse_utc(text: str) -> datetime:
    """An ISO-8601 timestamp (a trailing `Z` accepted, no zone taken as UTC) as aware UTC; ValueError when
    it is not one."""
    try:
        return as_utc(datetime.fromisoformat(text.strip().replace("Z", "+00:00")))
    except OverflowError:
        raise ValueError(f"{text!r} is outside the years 1 to 9999 in UTC") from None
