"""Test stacks: the same product on SQLite + the embedded queue, and on PostgreSQL + Redis + RQ.

Nothing is mocked: the PostgreSQL stack creates its own databases on 127.0.0.1:5432 and uses a
Redis database of its own; each test starts from empty tables and an empty queue.

Tiers: every test is in exactly one, marked when it is collected (`pytest_collection_modifyitems`
below), so `-m` selects by tier; pyproject's markers list them and docs/testing.md's "Tests in tiers" says
how long each takes.
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


def _redis_url() -> str:
    """Redis database 13, or under pytest-xdist one database per worker (gw0: 13, gw1: 12, ...): the stack
    fixture flushes its database, which must not be another worker's. TEST_REDIS_URL overrides both."""
    if "TEST_REDIS_URL" in os.environ:
        return os.environ["TEST_REDIS_URL"]
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    number = int(worker.removeprefix("gw") or 0)
    if number > 8:  # 13 down to 5: 15 is tests/attacks/test_hardening.py's
        raise pytest.UsageError(f"at most 9 pytest-xdist workers ({worker}): each needs a Redis database of its own")
    return f"redis://127.0.0.1:6379/{13 - number}"


REDIS_URL = _redis_url()
FIXTURES = Path(__file__).parent / "fixtures"


# ---- tiers ------------------------------------------------------------------------------------------

# The most demanding first: a test that could be in several is in the first of them.
TIERS = ("tryton", "chaos", "browser", "fuzz", "process", "stack", "sqlite", "fast")
# Tests that use these fixtures (directly or through another fixture) are in their tier unless marked with
# a more demanding one; the `stack` fixture's parameter decides for its tests (STACK_TIERS).
FIXTURE_TIERS = {
    "served": "process",  # tests/attacks/conftest.py: `connector web` in a process of its own
    "pg_databases": "stack",  # PostgreSQL
    "sqlite_stack": "sqlite",
    "canary_stack": "sqlite",  # tests/test_pages.py
}
STACK_TIERS = {"postgres": "stack", "sqlite": "sqlite"}
# Under pytest-xdist (scripts/test.sh) the Tryton tests run on one worker, one after another: they share one
# trytond and its .tryton/ folder. The scheduler sees only test ids, so the tier is told by the id
# (`serial_group`), and collection checks that every Tryton test's id tells it.
SERIAL_GROUPS = {"tryton": ("tests/test_tryton_", "[tryton")}


def serial_group(nodeid: str) -> str | None:
    """The group a test id runs in, on one worker, or None."""
    return next((name for name, marks in SERIAL_GROUPS.items() if any(mark in nodeid for mark in marks)), None)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):  # type: ignore[no-untyped-def]
    """xdist's load scheduling, each serial group sent to one worker whole (the largest groups first); every
    other test is a unit of its own. (xdist_group marks cannot do it: pytest 9.2 ignores the id they rewrite.)"""
    from xdist.scheduler import LoadScopeScheduling

    class TierScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return serial_group(nodeid) or nodeid

    return TierScheduling(config, log)


def tier_of(item: pytest.Item) -> str:
    """The test's tier: the one it is marked with (its module's pytestmark, its own decorator, or the mark of
    a parameter, e.g. the contract suite's Tryton harness), else the one its fixtures put it in (the
    `stack` fixture's parameter: stack or sqlite), else fast."""
    marked = {mark.name for mark in item.iter_markers() if mark.name in TIERS}
    if len(marked) > 1:
        raise pytest.UsageError(f"{item.nodeid} is marked {' and '.join(sorted(marked))}: a test is in one tier")
    if marked:
        return marked.pop()
    found = {FIXTURE_TIERS[name] for name in getattr(item, "fixturenames", ()) if name in FIXTURE_TIERS}
    callspec = getattr(item, "callspec", None)
    if callspec is not None and callspec.params.get("stack") in STACK_TIERS:
        found.add(STACK_TIERS[callspec.params["stack"]])
    return next((tier for tier in TIERS if tier in found), "fast")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test with its tier before `-m` selects (marks added later, inside a fixture, are too late
    for it); every test outside the fast tier is also `slow`."""
    for item in items:
        tier = tier_of(item)
        if tier == "fast" and item.get_closest_marker("slow") is not None:
            raise pytest.UsageError(
                f"{item.nodeid} is marked slow: mark it with its tier instead ({', '.join(TIERS[:-1])}); "
                "every test outside the fast tier is slow"
            )
        if item.get_closest_marker(tier) is None:
            item.add_marker(tier)
        if (tier in SERIAL_GROUPS) != (serial_group(item.nodeid) == tier):
            raise pytest.UsageError(
                f"{item.nodeid}: a test is in the {', '.join(SERIAL_GROUPS)} tier exactly when its id says so "
                f"(SERIAL_GROUPS: {SERIAL_GROUPS}); name the file or parameter accordingly"
            )
        if tier != "fast":
            item.add_marker("slow")


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
