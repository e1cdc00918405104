"""The one clock: timezone-aware UTC everywhere, for the core and the adapters alike.

Tests let time pass with `advance_to` instead of sleeping; a running connector never moves it. It lives in
adapters/ (like adapters/backoff.py) because the adapters may not import the core, while the core may
import adapters: an ERP stamping a cancellation or judging an order's age reads the same clock as the
pipeline deciding when to retry.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

_ahead = timedelta(0)  # how far this clock runs ahead of the system's (tests only)


def utcnow() -> datetime:
    """Now, timezone-aware UTC (ahead of the system's clock only in tests that moved it)."""
    return datetime.now(UTC) + _ahead


def advance_to(moment: datetime) -> None:
    """Move the clock on to `moment` (never back), as if the time until then had passed."""
    global _ahead
    _ahead += max(moment - utcnow(), timedelta(0))


def reset() -> None:
    """Back to the system's time."""
    global _ahead
    _ahead = timedelta(0)
