"""The backup and restore drill of the docs/backup.md ("Backup and restore"), for real on PostgreSQL, Redis and RQ.

Orders reach the ERP; the connector's database is dumped with `pg_dump -Fc`; more happens (a new order,
a payment); the database is lost (dropped, Redis flushed too), restored with `pg_restore`, migrated and
backfilled from the dump time with the same commands an operator types; then every order is in the
ERP exactly once, as the store has it, and the connector knows each one again.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import create_engine, func, select, text

from adapters.erp.sql_contract import erp_customers, erp_order_lines, erp_orders, erp_payments
from connector.base.models import ErpDocument, InboxEvent, OrderLink
from connector.base.runtime import install
from connector.cli import main
from tests.conftest import PG_ADMIN_URL, REDIS_URL
from tests.fakes.shopify import FakeShopify
from tests.fakes.woocommerce import FakeWooCommerce
from tests.stack import STORE, WOO_STORE, Stack, build_stack
from tests.storefronts import configure
from tests.test_reconcile import shopify_order

MARGIN = timedelta(minutes=10)  # docs/backup.md's margin before the dump's time


def admin(sql: str) -> None:
    engine = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(sql))
    finally:
        engine.dispose()


def disconnect_all(name: str) -> None:
    admin(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")


@pytest.fixture
def drill(pg_databases: tuple[str, str], tmp_path: Path) -> Iterator[tuple[Stack, str]]:
    """A stack on a connector database of its own (this test drops it), and that database's name."""
    _, erp_url = pg_databases
    name = f"connector_drill_{uuid.uuid4().hex[:8]}"
    admin(f'CREATE DATABASE "{name}"')
    url = f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    stack = build_stack("postgres", tmp_path, url, erp_url, redis_url=REDIS_URL, pg_admin_url=PG_ADMIN_URL)
    try:
        yield stack, name
    finally:
        stack.close()
        disconnect_all(name)
        admin(f'DROP DATABASE IF EXISTS "{name}"')


def connector(stack: Stack, tmp_path: Path, *args: str) -> Result:
    """`connector ARGS` as an operator runs it, against the stack's database and Redis."""
    env = {
        "DATABASE_URL": stack.rt.settings.database_url,
        "REDIS_URL": REDIS_URL,
        "CONNECTOR_ENCRYPTION_KEY": "test-encryption-key",
        "CONNECTOR_INSTANCE_PATH": str(tmp_path / "instance"),
    }
    try:
        result = CliRunner().invoke(main, list(args), env=env)
    finally:
        install(stack.rt)  # the command installed a runtime of its own
    assert result.exit_code == 0, result.output
    return result


def libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def erp_state(stack: Stack) -> dict:
    """What the ERP holds, comparable between two moments."""
    with stack.erp_engine.connect() as conn:
        return {
            "orders": [
                (r.external_ref, r.total, r.payment_status, r.status)
                for r in conn.execute(select(erp_orders).order_by(erp_orders.c.external_ref))
            ],
            "lines": conn.execute(select(func.count()).select_from(erp_order_lines)).scalar_one(),
            "payments": sorted((r.order_external_ref, r.amount) for r in conn.execute(select(erp_payments))),
            "customers": conn.execute(select(func.count()).select_from(erp_customers)).scalar_one(),
        }


def test_a_restored_database_and_a_backfill_leave_every_order_in_the_erp_once(
    drill: tuple[Stack, str], shop: FakeShopify, woo: FakeWooCommerce, tmp_path: Path
) -> None:
    stack, name = drill
    configure(stack, shop=shop, woo=woo)
    earlier = datetime.now(UTC) - timedelta(hours=2)
    a, b = shopify_order(shop, updated_at=earlier), shopify_order(shop, updated_at=earlier)
    for order_id in (a, b):
        assert stack.post_shopify(shop.orders[order_id]).status_code == 200
    stack.run_jobs()
    refs = {order_id: f"shopify:{STORE}:{order_id}" for order_id in (a, b)}
    assert [(r.external_ref, r.payment_status) for r in stack.erp_orders()] == [
        (refs[a], "pending"),
        (refs[b], "pending"),
    ]

    # The nightly backup.
    dumped_at = datetime.now(UTC)
    dump = tmp_path / "connector.dump"
    subprocess.run(["pg_dump", "-Fc", "-f", str(dump), libpq(stack.rt.settings.database_url)], check=True, timeout=120)

    # After the dump: a new order, and B is paid.
    c = shopify_order(shop, updated_at=datetime.now(UTC))
    refs[c] = f"shopify:{STORE}:{c}"
    shop.orders[b]["financial_status"] = "paid"
    shop.touch_order(b, updated_at=datetime.now(UTC))
    assert stack.post_shopify(shop.orders[c]).status_code == 200
    assert stack.post_shopify(shop.orders[b], topic="orders/paid").status_code == 200
    stack.run_jobs()
    before = erp_state(stack)
    total = Decimal(shop.orders[a]["total_price"])
    assert before["orders"] == [
        (ref, total, "paid" if ref == refs[b] else "pending", "new") for ref in sorted(refs.values())
    ]
    assert before["payments"] == [(refs[b], total)] and before["customers"] == 1

    # The database is lost, and Redis with it. Restore as docs/backup.md says: stop everything (here: no
    # connection left), recreate the database, restore the dump, migrate, backfill from the dump's time.
    stack.rt.engine.dispose()
    stack.lose_queue()
    disconnect_all(name)
    admin(f'DROP DATABASE "{name}"')
    admin(f'CREATE DATABASE "{name}"')
    subprocess.run(
        ["pg_restore", "--no-owner", "-d", libpq(stack.rt.settings.database_url), str(dump)], check=True, timeout=120
    )
    with stack.rt.sessions() as session:  # the connector is back at the dump: C is unknown, B unpaid
        assert sorted(session.scalars(select(OrderLink.external_ref))) == sorted([refs[a], refs[b]])
    connector(stack, tmp_path, "db", "upgrade")
    since = (dumped_at - MARGIN).strftime("%Y-%m-%d %H:%M:%S")
    out = connector(stack, tmp_path, "backfill", "--all", "--since", since).output
    assert f"{STORE}: 2 order(s) read, 2 new event(s)\n" in out  # B and C: A did not change since
    assert f"{WOO_STORE}: 0 order(s) read, 0 new event(s)\n" in out  # --all: every active store
    stack.run_jobs(include_delayed=True)

    # Every order once, as the store has it; the connector knows each one again.
    assert erp_state(stack) == before
    with stack.rt.sessions() as session:
        links = session.scalars(select(OrderLink).order_by(OrderLink.external_ref)).all()
        assert [(link.external_ref, link.erp_ref) for link in links] == [
            (r.external_ref, str(r.id)) for r in sorted(stack.erp_orders(), key=lambda r: r.external_ref)
        ]
        assert session.scalars(select(ErpDocument.key).where(ErpDocument.kind == "payment")).all() == [
            f"{refs[b]}:payment:{shop.transactions_of(b)[0]['id']}"
        ]
        statuses = session.scalars(select(InboxEvent.status)).all()
    assert len(statuses) == 4 and set(statuses) == {"succeeded"}  # A and B from the dump; B and C again

    # A second backfill (an operator's retry) finds nothing new and changes nothing.
    out = connector(stack, tmp_path, "backfill", "--all", "--since", since).output
    assert "order(s) read, 0 new event(s); resumed an earlier run" in out.split(f"{STORE}: ")[-1]
    stack.run_jobs(include_delayed=True)
    assert erp_state(stack) == before and len(stack.events()) == 4
