"""One meaning for a naive timestamp everywhere: UTC, whatever the machine's time zone."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta, timezone

import pytest

from mappings.utc import as_utc, parse_utc, utc_text


@pytest.fixture
def far_from_utc():
    """The machine's local time is UTC−10: a naive value read as local time would be ten hours off."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = "Pacific/Honolulu"
    time.tzset()
    yield
    if before is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = before
    time.tzset()


def test_a_naive_time_is_utc_not_local_time(far_from_utc):
    assert as_utc(datetime(2026, 11, 20, 15, 16, 12)) == datetime(2026, 11, 20, 15, 16, 12, tzinfo=UTC)
    assert utc_text(datetime(2026, 11, 20, 15, 16, 12)) == "2026-11-20T15:16:12+00:00"
    assert parse_utc("2026-11-20T15:16:12") == datetime(2026, 11, 20, 15, 16, 12, tzinfo=UTC)


def test_an_aware_time_keeps_its_instant():
    paris = timezone(timedelta(hours=1))
    assert as_utc(datetime(2026, 11, 20, 16, 16, 12, tzinfo=paris)) == datetime(2026, 11, 20, 15, 16, 12, tzinfo=UTC)
    assert utc_text(datetime(2026, 11, 20, 16, 16, 12, tzinfo=paris), zulu=True) == "2026-11-20T15:16:12Z"
    assert parse_utc(" 2026-11-20T15:16:12Z ") == datetime(2026, 11, 20, 15, 16, 12, tzinfo=UTC)


@pytest.mark.parametrize("text", ["yesterday", "", "2026-13-01T00:00:00", "0001-01-01T00:00:00+14:00"])
def test_what_is_not_a_time_in_utc_is_a_value_error(text):
    with pytest.raises(ValueError):
        parse_utc(text)
