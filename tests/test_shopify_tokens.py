"""Stores on a Shopify app's client ID and secret (Dev Dashboard apps, 2026): tokens that expire, renewed
once per expiry across every process, and never shown or logged."""

from __future__ import annotations

import json
import multiprocessing
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from adapters.storefront import StorefrontError
from connector.base.clients import forget, sync_client
from connector.base.models import Store
from connector.base.tokens import StoreTokens
from connector.setup.config_io import dump_config, load_config
from platforms.shopify.api import ShopifyClient
from tests.stack import SECRET, STORE
from tests.storefronts import store_id


def _connect(stack, shop, **extra) -> int:  # type: ignore[no-untyped-def]
    """The stack's Shopify store on the fake, connected with app credentials and no legacy token."""
    load_config(
        stack.rt,
        json.dumps(
            {
                "stores": [
                    {
                        "slug": STORE,
                        "platform": "shopify",
                        "shop_domain": shop.shop_domain,
                        "api_version": "2026-01",
                        "api_base_url": shop.url,
                        "client_id": shop.oauth.client_id,
                        "client_secret": shop.oauth.client_secret,
                        **extra,
                    }
                ]
            }
        ),
    )
    with stack.rt.sessions.begin() as session:  # drop the legacy token tests/stack.py configured
        store = session.scalars(select(Store).where(Store.slug == STORE)).one()
        store.secrets = stack.rt.box.seal(
            {k: v for k, v in stack.rt.box.open(store.secrets).items() if k not in ("access_token", "webhook_secret")}
        )
    forget()
    return store_id(stack, STORE)


def test_a_store_on_client_credentials_gets_a_token_and_keeps_it_sealed(sqlite_stack, shop):
    sid = _connect(sqlite_stack, shop)
    client = sync_client(sqlite_stack.rt.store_info(_row(sqlite_stack, sid)))
    assert client.locations() is not None and client.locations() is not None
    (issued,) = shop.oauth.issued  # one token for both calls
    assert issued.grant == "client_credentials"
    with sqlite_stack.rt.sessions() as session:
        raw = session.scalars(select(Store.secrets).where(Store.id == sid)).one()
        settings = session.scalars(select(Store.settings).where(Store.id == sid)).one()
    assert issued.token not in raw and issued.token not in json.dumps(settings)
    assert shop.oauth.client_secret not in dump_config(sqlite_stack.rt)
    assert issued.token not in dump_config(sqlite_stack.rt)


def test_deliveries_of_an_app_store_are_verified_with_its_client_secret(sqlite_stack, shop):
    _connect(sqlite_stack, shop)
    order = {"id": 1, "line_items": [], "currency": "USD"}
    assert sqlite_stack.post_shopify(order, secret=shop.oauth.client_secret).status_code == 200
    assert sqlite_stack.post_shopify(order, secret=SECRET, event_id="x").status_code == 401


def test_a_wrong_client_secret_is_refused_and_not_repeated_in_the_error(sqlite_stack, shop):
    sid = _connect(sqlite_stack, shop, client_secret="shpss_wrong_secret_1234")
    client = sync_client(sqlite_stack.rt.store_info(_row(sqlite_stack, sid)))
    with pytest.raises(StorefrontError) as caught:
        client.locations()
    assert "client ID and secret" in str(caught.value) and "shpss_wrong" not in str(caught.value)
    assert not caught.value.retryable and shop.oauth.issued == [] and shop.oauth.refused == 1


def test_a_token_refused_early_is_renewed_once_and_the_call_goes_through(sqlite_stack, shop):
    sid = _connect(sqlite_stack, shop)
    client = sync_client(sqlite_stack.rt.store_info(_row(sqlite_stack, sid)))
    client.locations()
    shop.oauth.issued[0].expires = time.monotonic() - 1  # Shopify ended it before its time
    assert client.locations() is not None
    assert [i.grant for i in shop.oauth.issued] == ["client_credentials", "client_credentials"]


def test_a_token_is_renewed_before_it_expires(sqlite_stack, shop):
    shop.oauth.ttl = 1.0
    sid = _connect(sqlite_stack, shop)
    client = sync_client(sqlite_stack.rt.store_info(_row(sqlite_stack, sid)))
    deadline = time.monotonic() + 3.2
    calls = 0
    while time.monotonic() < deadline:
        client.locations()
        calls += 1
    refused = shop.calls.get("401", 0)
    assert calls > 10 and 3 <= len(shop.oauth.issued) <= 5, len(shop.oauth.issued)
    assert refused == 0  # renewed a fifth of its life early: no call went out with a dead token


def _hammer(db_url: str, sid: int, base: str, domain: str, seconds: float, kind: str, out) -> None:  # type: ignore[no-untyped-def]
    """One worker process: the same calls a stock sync (GraphQL) or a reconciliation (REST) makes."""
    from connector.base.queue import EmbeddedJobQueue
    from connector.base.runtime import Runtime, install
    from connector.base.settings import Settings

    settings = Settings.from_env({}).with_(database_url=db_url, encryption_key="test-encryption-key")
    rt = install(Runtime.from_settings(settings, queue=EmbeddedJobQueue()))
    client = ShopifyClient(domain, "", api_base_url=base, tokens=StoreTokens(rt, sid), max_retries=0)
    calls, errors = 0, []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            if kind == "graphql":
                client.locations()
            else:
                list(client.orders_updated_since(datetime.now(UTC) - timedelta(days=1)))
            calls += 1
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
    out.put((kind, calls, errors))


@pytest.mark.process  # four worker processes
def test_expiring_tokens_under_load_renew_once_per_expiry_across_processes(stack, shop):
    if stack.kind != "postgres":
        pytest.skip("several processes share one store row: PostgreSQL's row lock is what serialises them")
    ttl, seconds, workers = 2, 6.0, 4  # Shopify gives expires_in in whole seconds
    shop.oauth.ttl = ttl
    # Rate limits are not under test here: four processes sharing one shop's buckets would otherwise
    # give up on throttling (each process predicts the bucket for itself), whatever their tokens.
    shop.set_budget(1_000_000, 1_000_000)
    shop.set_rest_bucket(1_000_000, 1_000_000)
    sid = _connect(stack, shop)
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    url = str(stack.rt.settings.database_url)
    procs = [
        ctx.Process(
            target=_hammer, args=(url, sid, shop.url, shop.shop_domain, seconds, "graphql" if n % 2 else "rest", out)
        )
        for n in range(workers)
    ]
    began = time.monotonic()
    for proc in procs:
        proc.start()
    results = [out.get(timeout=60) for _ in procs]
    # Each process hammers for `seconds` from its own start; spawned processes start up to seconds apart on
    # a loaded machine, so the tokens' span is the whole run's, not `seconds` (6 issued in 8.1 s was right).
    elapsed = time.monotonic() - began
    for proc in procs:
        proc.join(timeout=30)
    assert all(not errors for _, _, errors in results), results
    ours = sum(calls for _, calls, _ in results)
    served = shop.answered["graphql"] + shop.answered["GET orders"]
    assert ours > 4 * workers and served == ours  # every call answered once: none lost, none sent twice
    issued = sorted(i.issued for i in shop.oauth.issued)
    gaps = [b - a for a, b in zip(issued, issued[1:], strict=False)]
    # One renewal per expiry: a new token only once the last was four fifths through its life.
    assert all(gap >= ttl * 0.8 - 0.15 for gap in gaps), gaps
    assert len(issued) <= elapsed / (ttl * 0.8) + 2


def _row(stack, sid: int) -> Store:  # type: ignore[no-untyped-def]
    with stack.rt.sessions() as session:
        return session.get(Store, sid)
