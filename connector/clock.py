"""The one clock: timezone-aware UTC everywhere.

Tests let time pass with `advance_to` instead of sleeping; a running connector never moves it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

_ahead = timedelta(0)  # how far this clock runs ahead of the system's (tests only)


def utcnow() -> datetime:
    return datetime.now(UTC) + _ahead


def advance_to(moment: datetime) -> None:
    """Move the clock on to `moment` (never back), as if the time until then had passed."""
    global _ahead
    _ahead += max(moment - utcnow(), timedelta(0))


def reset() -> None:
    """Back to the system's time."""
    global _ahead
    _ahead = timedelta(0)
