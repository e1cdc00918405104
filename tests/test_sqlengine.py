"""The connector's engines on PostgreSQL: a connection the server dropped while it sat in the pool is replaced
before anyone uses it, while one just given back is used again without a round trip to check it."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import create_engine, text

from adapters import sqlengine
from tests.conftest import PG_ADMIN_URL


@pytest.fixture
def engine(pg_databases):  # type: ignore[no-untyped-def]
    made = sqlengine.make_engine(pg_databases[0].replace("+psycopg", ""), pool_size=1, max_overflow=0)
    yield made
    made.dispose()


def _backend(engine) -> int:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


def _terminate(pid: int) -> None:
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    admin.dispose()


def test_a_connection_dropped_while_idle_is_replaced_before_use(engine, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(sqlengine, "PING_AFTER_IDLE_SECONDS", 0.05)
    dropped = _backend(engine)
    _terminate(dropped)  # a server restart, or a firewall cutting an idle connection
    time.sleep(0.1)
    assert _backend(engine) != dropped  # pinged at checkout, found dead, replaced: the query works


def test_a_connection_given_back_a_moment_ago_is_used_again_unchecked(engine, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    pings: list[object] = []
    real = engine.dialect.do_ping
    monkeypatch.setattr(engine.dialect, "do_ping", lambda conn: pings.append(conn) or real(conn))
    first = _backend(engine)  # a new connection: pinged once (it had never been given back)
    for _ in range(20):  # a worker's dozen checkouts per order
        assert _backend(engine) == first
    assert len(pings) == 1
