"""The one jittered backoff every retry in the connector draws its waits from (adapters/backoff.py)."""

from __future__ import annotations

import pytest

from adapters.backoff import backoff


def test_the_step_doubles_from_the_base_and_stops_at_the_cap() -> None:
    def top(lo: float, hi: float) -> float:
        return hi

    assert [backoff(n, 30, 3600, draw=top) for n in range(1, 10)] == [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]
    assert backoff(0, 30, 3600, draw=top) == 30  # a first try counted from zero waits one step too
    assert backoff(10_000, 0.25, draw=top) > 1e18  # no cap (the REST ERP keeps a budget instead): no overflow


@pytest.mark.parametrize(
    "base, cap, jitter, attempts",
    [
        (30, 3600, (0.5, 1.0), 12),  # the pipeline between an event's attempts
        (0.25, 10.0, (0.5, 1.5), 8),  # the Shopify client inside a call
        (0.5, 10.0, (0.5, 1.5), 8),  # the WooCommerce client inside a call
        (0.25, float("inf"), (0.5, 1.0), 6),  # the REST ERP inside a call
    ],
)
def test_every_wait_is_jittered_within_its_range_and_never_past_the_cap(base, cap, jitter, attempts) -> None:  # type: ignore[no-untyped-def]
    for attempt in range(1, attempts + 1):
        step = min(cap, base * 2 ** (attempt - 1))
        waits = {backoff(attempt, base, cap, jitter) for _ in range(200)}
        assert len(waits) > 1  # drawn, not fixed
        assert all(step * jitter[0] <= wait <= min(cap, step * jitter[1]) for wait in waits), (attempt, waits)


def test_the_draw_can_be_given() -> None:
    assert backoff(3, 1.0, 10.0, (0.5, 1.0), draw=lambda lo, hi: lo) == 2.0
