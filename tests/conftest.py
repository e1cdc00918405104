"""Test stacks: the same product on SQLite + the embedded queue, and on PostgreSQL + Redis + RQ.

Nothing is mocked: the PostgreSQL stack creates its own databases on 127.0.0.1:5432 and uses a
Redis database of its own; each test starts from empty tables and an empty queue.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis import Redis
from sqlalchemy import create_engine, text

from tests.stack import Stack, build_stack

PG_ADMIN_URL = os.environ.get("TEST_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
FIXTURES = Path(__file__).parent / "fixtures"


def load_fixture(*parts: str) -> dict:
    return json.loads((FIXTURES.joinpath(*parts)).read_text())


@pytest.fixture(scope="session")
def pg_databases() -> Iterator[tuple[str, str]]:
    """Two fresh PostgreSQL databases for the session: the connector's and the ERP's."""
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    suffix = uuid.uuid4().hex[:8]
    names = (f"connector_test_{suffix}", f"erp_test_{suffix}")
    with admin.connect() as conn:
        for name in names:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    yield f"{base}/{names[0]}", f"{base}/{names[1]}"
    with admin.connect() as conn:
        for name in names:
            conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
            conn.execute(text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"))
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()


def _sqlite(tmp_path) -> Stack:  # type: ignore[no-untyped-def]
    return build_stack("sqlite", tmp_path, f"sqlite:///{tmp_path / 'connector.db'}", f"sqlite:///{tmp_path / 'erp.db'}")


@pytest.fixture(params=["sqlite", "postgres"])
def stack(request, tmp_path) -> Iterator[Stack]:  # type: ignore[no-untyped-def]
    """The product on both stacks: every test using it runs twice."""
    if request.param == "postgres":
        db_url, erp_url = request.getfixturevalue("pg_databases")
        redis = Redis.from_url(REDIS_URL)
        redis.flushdb()
        s = build_stack("postgres", tmp_path, db_url, erp_url, redis_url=REDIS_URL, pg_admin_url=PG_ADMIN_URL)
    else:
        s = _sqlite(tmp_path)
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def sqlite_stack(tmp_path) -> Iterator[Stack]:  # type: ignore[no-untyped-def]
    """For behaviour that does not depend on the database or queue (pages, the guard)."""
    s = _sqlite(tmp_path)
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def shop() -> Iterator:
    """A fake Shopify store over real HTTP (tests/fakes/shopify.py)."""
    from tests.fakes.shopify import FakeShopify

    fake = FakeShopify()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def woo() -> Iterator:
    """A fake WooCommerce store over real HTTP (tests/fakes/woocommerce.py)."""
    from tests.storefronts import fake_woo

    fake = fake_woo()
    try:
        yield fake
    finally:
        fake.stop()
