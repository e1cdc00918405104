"""Pending store connections: one-time ids for the platforms' approval callbacks."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

from connector.base import connections
from connector.base.connections import ConnectionRefused


def test_an_id_is_claimed_once_and_names_its_connection(sqlite_stack):
    token = connections.start(
        sqlite_stack.rt,
        "shopify",
        "new-shop",
        "new-shop.myshopify.com",
        "admin@example.com",
        {"scopes": ["read_orders"]},
    )
    pending = connections.claim(sqlite_stack.rt, "shopify", token)
    assert (pending.store_slug, pending.target, pending.detail) == (
        "new-shop",
        "new-shop.myshopify.com",
        {"scopes": ["read_orders"]},
    )
    with pytest.raises(ConnectionRefused, match="used already"):
        connections.claim(sqlite_stack.rt, "shopify", token)


@pytest.mark.parametrize(
    "case, reason",
    [
        ("unknown", "unknown"),
        ("platform", "belongs to a shopify"),
        ("expired", "more than 30 minutes ago"),
        ("empty", "no connection id"),
    ],
)
def test_a_callback_without_its_pending_connection_is_refused_with_why(sqlite_stack, case, reason):
    token = connections.start(
        sqlite_stack.rt,
        "shopify",
        "s",
        "s.myshopify.com",
        "admin@example.com",
        lifetime=timedelta(seconds=-1) if case == "expired" else connections.LIFETIME,
    )
    given = {"unknown": "not-a-real-id", "empty": ""}.get(case, token)
    with pytest.raises(ConnectionRefused, match=reason):
        connections.claim(sqlite_stack.rt, "woocommerce" if case == "platform" else "shopify", given)


@pytest.mark.parametrize("stack", ["postgres"], indirect=True)
def test_two_racing_callbacks_with_one_id_make_one_connection(stack):
    token = connections.start(stack.rt, "woocommerce", "w", "https://shop.example", "admin@example.com")

    def attempt(_: int) -> str:
        try:
            return connections.claim(stack.rt, "woocommerce", token).store_slug
        except ConnectionRefused:
            return "refused"

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(attempt, range(8)))
    assert outcomes.count("w") == 1 and outcomes.count("refused") == 7
