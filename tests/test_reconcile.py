"""Reconciliation and housekeeping: missed orders, missing subscriptions, old events, backfills.

Over real HTTP against the fake Shopify and WooCommerce; the `stack` tests run on SQLite + the
embedded queue and on PostgreSQL + Redis + RQ.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from adapters.clock import utcnow
from adapters.storefront import StorefrontError
from connector.base.models import EventAttempt, InboxEvent, SyncCursor
from connector.jobs import prune_job, schedules, store_job
from connector.sync import reconcile
from connector.sync.reconcile import backfill, check_subscriptions, prune, reconcile_orders
from platforms.shopify.webhooks import TOPICS as SHOPIFY_TOPICS
from tests.conftest import load_fixture
from tests.fakes.shopify import FakeShopify
from tests.fakes.woocommerce import FakeWooCommerce
from tests.stack import STORE, WOO_STORE, Stack
from tests.storefronts import configure, store_id


def refs(stack: Stack) -> list[str]:
    return sorted(r.external_ref for r in stack.erp_orders())


def shopify_order(shop: FakeShopify, updated_at: datetime | None = None) -> int:
    """An order in the fake shop that the connector can import: the fixture's content, the fake's ids."""
    order_id = shop.add_order([("KRT-COT-L-IND", 2)], updated_at=updated_at)
    fixture = load_fixture("shopify", "order_guest.json")
    kept = {
        k: shop.orders[order_id][k]
        for k in ("id", "admin_graphql_api_id", "name", "order_number", "created_at", "updated_at")
    }
    shop.orders[order_id] = {**fixture, **kept}
    return order_id


# ---- WooCommerce: an order never delivered ------------------------------------------------------------


def test_a_woocommerce_order_never_delivered_reaches_the_erp(stack: Stack, woo: FakeWooCommerce) -> None:
    configure(stack, woo=woo)
    sid = store_id(stack, WOO_STORE)
    delivered = woo.add_order(doc=load_fixture("woocommerce", "order_cod_guest.json"))
    assert stack.post_woocommerce(woo.orders[delivered], topic="order.created").status_code == 200
    stack.run_jobs()
    assert refs(stack) == [f"woocommerce:{WOO_STORE}:{delivered}"]

    missed = woo.add_order(doc=load_fixture("woocommerce", "order_processing_coupon.json"))  # no webhook
    first = reconcile_orders(stack.rt, sid)
    assert (first["seen"], first["new"]) == (2, 1)  # the delivered one is a duplicate at the door
    stack.run_jobs()
    assert refs(stack) == sorted([f"woocommerce:{WOO_STORE}:{delivered}", f"woocommerce:{WOO_STORE}:{missed}"])
    assert [e.status for e in stack.events()] == ["succeeded", "succeeded"]

    # The cursor lags by the overlap, so the same orders are read again: no new event.
    second = reconcile_orders(stack.rt, sid)
    assert (second["seen"], second["new"]) == (2, 0)
    assert len(stack.events()) == 2

    # The webhook that finally arrives for the reconciled state is deduped at the door too.
    assert "duplicate" in stack.post_woocommerce(woo.orders[missed]).get_json()["message"]

    # Through the queue, as the scheduler runs it (under the store's concurrency limit).
    woo.orders[missed].update(woo._stamps("date_modified"))  # the order changes again
    woo.orders[missed]["date_modified_gmt"] = (
        datetime.fromisoformat(woo.orders[missed]["date_modified_gmt"]) + timedelta(seconds=5)
    ).isoformat()
    stack.rt.queue.enqueue(store_job, "reconcile", sid)
    stack.run_jobs()
    stack.run_jobs()
    assert len(stack.events()) == 3 and len(stack.erp_orders()) == 2


# ---- Shopify: missed by webhooks ------------------------------------------------------------------------


def test_a_shopify_order_missed_by_webhooks_is_imported_once(stack: Stack, shop: FakeShopify) -> None:
    configure(stack, shop=shop)
    sid = store_id(stack, STORE)
    delivered = shopify_order(shop)
    assert stack.post_shopify(shop.orders[delivered], topic="orders/create").status_code == 200
    stack.run_jobs()
    missed = shopify_order(shop)

    found = reconcile_orders(stack.rt, sid)
    assert (found["seen"], found["new"]) == (2, 2)  # Shopify's webhook keys are event ids: new here
    stack.run_jobs()
    assert refs(stack) == sorted([f"shopify:{STORE}:{delivered}", f"shopify:{STORE}:{missed}"])
    assert len(stack.erp_lines(f"shopify:{STORE}:{delivered}")) == len(stack.erp_lines(f"shopify:{STORE}:{missed}"))
    assert all(e.status != "failed" for e in stack.events())

    again = reconcile_orders(stack.rt, sid)
    assert again["new"] == 0 and len(stack.erp_orders()) == 2
    with stack.rt.sessions() as session:
        cursor = session.get(SyncCursor, f"store:{sid}:orders").cursor
    newest = max(datetime.fromisoformat(shop.orders[i]["updated_at"]) for i in (delivered, missed))
    assert datetime.fromisoformat(cursor) == newest - reconcile.OVERLAP


def test_a_reconciliation_the_store_throttles_throughout_lists_again_after_a_pause(
    stack: Stack, shop: FakeShopify, monkeypatch
) -> None:
    from connector.jobs import reconcile_job

    configure(stack, shop=shop)
    sid = store_id(stack, STORE)
    missed = shopify_order(shop)
    shop.fail_next(21, status=429, retry_after=0)  # every answer of the listing a 429, past the client's patience
    started = utcnow()

    told = reconcile_job(sid)

    assert told["retry_in"] == reconcile.THROTTLED_PAUSES[0] and "429" in told["reason"]
    (queued,) = [job for job in stack.rt.queue.scheduled() if job[1].endswith("reconcile_job")]
    at, _, args = queued
    assert args == (sid, 1) and at >= started + timedelta(seconds=reconcile.THROTTLED_PAUSES[0] - 1)  # RQ: whole s
    assert stack.events() == []
    reconcile_job(*args)  # its time come, the store answers: the missed order is fed
    stack.run_jobs()
    assert refs(stack) == [f"shopify:{STORE}:{missed}"]
    # The pauses spent, the failure is the job's (RQ keeps it with its reason), as before.
    shop.fail_next(21, status=429, retry_after=0)
    with pytest.raises(StorefrontError, match="429"):
        reconcile_job(sid, len(reconcile.THROTTLED_PAUSES))


def test_the_reconcile_command_waits_out_a_throttled_store(stack: Stack, monkeypatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from click.testing import CliRunner

    from connector import cli

    answers: list[object] = [StorefrontError("Shopify kept answering 429 to orders", retryable=True)]
    slept: list[float] = []

    def listing(rt, sid):  # type: ignore[no-untyped-def]
        if answers:
            raise answers.pop()  # type: ignore[misc]
        return {"seen": 1, "new": 1, "cursor": "2026-12-05T00:00:00+00:00"}

    monkeypatch.setattr(cli, "reconcile_orders", listing)
    monkeypatch.setattr(cli.time, "sleep", slept.append)
    env = stack.cli_env(tmp_path)
    try:
        result = CliRunner().invoke(cli.main, ["reconcile", STORE], env=env)
    finally:
        from connector.base.runtime import install

        install(stack.rt)
    assert result.exit_code == 0, result.output
    assert "listing again in 30 s" in result.output and f"{STORE}: 1 order(s) seen, 1 new event(s)" in result.output
    assert slept == [reconcile.THROTTLED_PAUSES[0]]


# ---- subscriptions -----------------------------------------------------------------------------------


def test_a_deleted_shopify_subscription_is_registered_again(stack: Stack, shop: FakeShopify) -> None:
    configure(stack, shop=shop)
    stack.rt.settings = stack.rt.settings.with_(public_base_url="https://connector.example")
    sid = store_id(stack, STORE)
    first = check_subscriptions(stack.rt, sid)
    assert first["error"] is None and first["created"] == list(SHOPIFY_TOPICS)
    assert check_subscriptions(stack.rt, sid)["created"] == []

    (hook_id,) = [i for i, h in shop.webhooks.items() if h["topic"] == "orders/updated"]
    del shop.webhooks[hook_id]  # Shopify removed it after failed deliveries
    stack.rt.queue.enqueue(store_job, "subscriptions", sid)
    stack.run_jobs()
    assert sorted(h["topic"] for h in shop.webhooks.values()) == sorted(SHOPIFY_TOPICS)
    assert all(h["address"] == f"https://connector.example/webhooks/shopify/{STORE}" for h in shop.webhooks.values())
    assert check_subscriptions(stack.rt, sid) == {"missing": [], "created": [], "removed": [], "error": None}

    # Without read_returns Shopify refuses the returns topics: only the merchant can fix that (the webhooks
    # page says how), so the hourly check does not try again and again.
    shop.legacy_scope = shop.legacy_scope.replace(",read_returns", "")
    for hook_id in [i for i, h in shop.webhooks.items() if h["topic"].startswith("returns/")]:
        del shop.webhooks[hook_id]
    assert check_subscriptions(stack.rt, sid) == {"missing": [], "created": [], "removed": [], "error": None}
    assert not any(h["topic"].startswith("returns/") for h in shop.webhooks.values())


# ---- prune -----------------------------------------------------------------------------------------


def test_prune_deletes_only_old_finished_events(stack: Stack) -> None:
    for name in ("order_cod_guest.json", "order_processing_coupon.json", "order_cancelled.json"):
        assert stack.post_woocommerce(load_fixture("woocommerce", name), topic="order.created").status_code == 200
    stack.post_woocommerce(b"not json")  # failed at the door
    stack.run_jobs()
    events = stack.events()
    assert [e.status for e in events] == ["succeeded", "succeeded", "succeeded", "failed"]
    old, recent, ignored, failed = (e.id for e in events)
    with stack.rt.sessions.begin() as session:
        session.execute(update(InboxEvent).where(InboxEvent.id == ignored).values(status="ignored"))
        long_ago = utcnow() - timedelta(days=40)
        session.execute(
            update(InboxEvent)
            .where(InboxEvent.id.in_([old, ignored, failed]))
            .values(received_at=long_ago, processed_at=long_ago)
        )
    assert prune(stack.rt, days=60) == 0
    assert prune(stack.rt) == 2  # CONNECTOR_RETENTION_DAYS' default, 30
    with stack.rt.sessions() as session:
        assert sorted(session.scalars(select(InboxEvent.id))) == [recent, failed]
        assert set(session.scalars(select(EventAttempt.event_id))) == {recent}
    stack.rt.queue.enqueue(prune_job, 0)
    stack.run_jobs()
    assert [e.id for e in stack.events()] == [failed]


# ---- backfill ----------------------------------------------------------------------------------------


def feed_failing_after(count: int, fed: list[int]):  # type: ignore[no-untyped-def]
    """reconcile.feed that feeds `count` orders, noting their ids in `fed`, then dies as a killed worker would."""
    real_feed = reconcile.feed

    def failing_feed(rt, store, order):  # type: ignore[no-untyped-def]
        if len(fed) == count:
            raise RuntimeError("worker killed")
        fed.append(order["id"])
        return real_feed(rt, store, order)

    return failing_feed


def test_backfill_resumes_after_an_interruption(
    stack: Stack, shop: FakeShopify, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(stack, shop=shop)
    sid = store_id(stack, STORE)
    start = datetime.now(UTC) - timedelta(days=10)
    ids = [shopify_order(shop, updated_at=start + timedelta(days=1, hours=n)) for n in range(5)]
    shopify_order(shop, updated_at=start - timedelta(days=1))  # before the backfill's date

    fed: list[int] = []
    with monkeypatch.context() as interrupted:
        interrupted.setattr(reconcile, "feed", feed_failing_after(3, fed))
        with pytest.raises(RuntimeError):
            backfill(stack.rt, sid, start, page_size=2)
    assert fed == ids[:3]
    state = json.loads(stack.rt.sessions().get(SyncCursor, f"store:{sid}:backfill").cursor)
    assert datetime.fromisoformat(state["from"]) == datetime.fromisoformat(shop.orders[ids[2]]["updated_at"])

    second = backfill(stack.rt, sid, start, page_size=2)
    assert (second["seen"], second["new"], second["resumed"]) == (3, 2, True)  # the 3rd again, deduped
    stack.run_jobs()
    assert refs(stack) == sorted(f"shopify:{STORE}:{i}" for i in ids)
    assert len(stack.events()) == 5

    restarted = backfill(stack.rt, sid, start, restart=True, page_size=2)
    assert (restarted["seen"], restarted["new"]) == (5, 0)


def test_backfill_resumes_woocommerce_by_id(
    sqlite_stack: Stack, woo: FakeWooCommerce, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = sqlite_stack
    configure(stack, woo=woo)
    sid = store_id(stack, WOO_STORE)
    monkeypatch.setattr("platforms.woocommerce.api.PER_PAGE", 2)
    start = datetime.now(UTC) - timedelta(days=5)
    ids = [
        woo.add_order(
            doc={**load_fixture("woocommerce", "order_cod_guest.json"), "id": 500 + n},
            modified=start + timedelta(hours=n + 1),
        )
        for n in range(4)
    ]
    with monkeypatch.context() as interrupted:
        interrupted.setattr(reconcile, "feed", feed_failing_after(2, []))
        with pytest.raises(RuntimeError):
            backfill(stack.rt, sid, start)
    second = backfill(stack.rt, sid, start)
    assert (second["seen"], second["new"], second["skipped"]) == (2, 2, 2)
    stack.run_jobs()
    assert refs(stack) == sorted(f"woocommerce:{WOO_STORE}:{i}" for i in ids)


def test_the_commands_and_the_schedules(sqlite_stack: Stack, shop: FakeShopify, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from click.testing import CliRunner

    from connector.cli import main

    stack = sqlite_stack
    configure(stack, shop=shop)
    start = datetime.now(UTC) - timedelta(days=3)
    for n in range(3):
        shopify_order(shop, updated_at=start + timedelta(hours=n))
    env = stack.cli_env(tmp_path)
    try:
        since = start.strftime("%Y-%m-%d")
        result = CliRunner().invoke(main, ["backfill", STORE, "--since", since, "--page-size", "2"], env=env)
        assert result.exit_code == 0, result.output
        assert f"{STORE}: 3 order(s) read, 3 new event(s)" in result.output
        result = CliRunner().invoke(main, ["backfill", STORE, "--since", since], env=env)
        assert "1 order(s) read, 0 new event(s); resumed an earlier run" in result.output, result.output
        result = CliRunner().invoke(main, ["reconcile", STORE], env=env)
        assert result.exit_code == 0 and f"{STORE}: 0 order(s) seen" in result.output, result.output
        result = CliRunner().invoke(main, ["prune", "--days", "0"], env=env)
        assert result.exit_code == 0 and "pruned 0 event(s) older than 0 day(s)" in result.output, result.output
        result = CliRunner().invoke(main, ["reconcile", "nope"], env=env)
        assert result.exit_code == 2 and "no store 'nope'" in result.output
        for wrong in ([], [STORE, "--all"]):  # one store, or all of them
            result = CliRunner().invoke(main, ["backfill", *wrong, "--since", since], env=env)
            assert result.exit_code == 2 and "name one STORE, or --all" in result.output, result.output
    finally:
        from connector.base.runtime import install

        install(stack.rt)
    assert len(stack.events()) == 3

    found = {name: (job, args, interval) for name, job, args, interval in schedules(stack.rt, 60)}
    sid = store_id(stack, STORE)
    assert found[f"reconcile:{STORE}"] == (store_job, ("reconcile", sid), 600)
    assert found[f"subscriptions:{STORE}"] == (store_job, ("subscriptions", sid), 3600)
    assert found["prune"] == (prune_job, (), 86400) and found["sweep"][2] == 60
