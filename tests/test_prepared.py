"""Statements sent by the driver on PostgreSQL (adapters.prepared) behave as SQLAlchemy's own execution does: the
same rows, defaults, type processing and errors, on PostgreSQL and on SQLite (where SQLAlchemy runs them)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import (
    JSON,
    Column,
    Engine,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    bindparam,
    create_engine,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError, OperationalError

from adapters.clock import utcnow
from adapters.prepared import Prepared, atomic
from connector.base.models import UTCDateTime
from tests.conftest import PG_ADMIN_URL

metadata = MetaData()
things = Table(
    "prepared_things",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("key", String(32), unique=True, nullable=False),
    Column("kind", String(16), nullable=False, default="plain"),
    Column("amount", Numeric(12, 2)),
    Column("detail", JSON),
    Column("created_at", UTCDateTime, nullable=False, default=utcnow),
    Column("changed_at", UTCDateTime, onupdate=utcnow),
)
_INSERT = Prepared(insert(things))
_BY_KEYS = Prepared(
    select(things.c.key, things.c.amount, things.c.detail, things.c.created_at)
    .where(things.c.key.in_(bindparam("keys", expanding=True)), things.c.kind.notin_(("hidden", "gone")))
    .order_by(things.c.key)
    .limit(10)
)
_COUNT = Prepared(select(func.count()).select_from(things))
_RENAME = Prepared(update(things).where(things.c.key == bindparam("old")).values(key=bindparam("new")))


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request, tmp_path) -> Iterator[Engine]:  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        made = create_engine(f"sqlite:///{tmp_path / 'prepared.db'}")
        metadata.create_all(made)
        yield made
        made.dispose()
        return
    name = f"prepared_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    made = create_engine(PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}")
    metadata.create_all(made)
    try:
        yield made
    finally:
        made.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


def test_rows_defaults_and_types_come_back_as_sqlalchemy_gives_them(engine: Engine) -> None:
    before = utcnow()
    with engine.begin() as conn:
        first = _INSERT.inserted_key(conn, {"key": "a", "amount": Decimal("19.99"), "detail": {"note": "x"}})
        _INSERT.many(
            conn,
            [{"key": "b", "kind": "hidden", "amount": None}, {"key": "c", "kind": "plain", "amount": Decimal("0.10")}],
        )
    assert isinstance(first, int)

    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        rows = _BY_KEYS.all(conn, {"keys": ["a", "b", "c", "z"]})
        assert [(r.key, r.amount, r.detail) for r in rows] == [
            ("a", Decimal("19.99"), {"note": "x"}),  # a JSON column read back as what was written
            ("c", Decimal("0.10"), None),  # "b" is of a kind the statement leaves out
        ]
        # The column default computed per row, handed back as an aware UTC time (UTCDateTime's result processing)
        assert all(r.created_at.tzinfo == UTC and before <= r.created_at <= utcnow() for r in rows)
        assert _BY_KEYS.first(conn, {"keys": ["nobody"]}) is None
        assert _COUNT.scalar(conn) == 3
        # The same rows SQLAlchemy's own execution gives
        assert [tuple(r) for r in rows] == [
            tuple(r) for r in conn.execute(_BY_KEYS.statement, {"keys": ["a", "b", "c", "z"]})
        ]
        assert _RENAME.run(conn, {"old": "a", "new": "a2"}) == 1
        assert _RENAME.run(conn, {"old": "nobody", "new": "x"}) == 0
        stamped = conn.execute(select(things.c.changed_at).where(things.c.key == "a2")).scalar_one()
        assert stamped is not None and stamped.tzinfo == UTC  # the onupdate default of the UPDATE


def test_a_driver_error_is_sqlalchemys_and_rolls_the_transaction_back(engine: Engine) -> None:
    with engine.begin() as conn:
        _INSERT.run(conn, {"key": "a"})
    with pytest.raises(IntegrityError), engine.begin() as conn:
        _INSERT.run(conn, {"key": "b"})
        _INSERT.run(conn, {"key": "a"})  # the unique key: the whole transaction goes
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        assert [r.key for r in _BY_KEYS.all(conn, {"keys": ["a", "b"]})] == ["a"]
    # A naive time is refused before it is sent, as SQLAlchemy's bind processing refuses it
    with pytest.raises((ValueError, Exception)), engine.begin() as conn:
        _INSERT.run(conn, {"key": "n", "created_at": datetime(2026, 1, 1)})


def test_outside_a_transaction_and_autocommit_a_write_is_refused_not_lost(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLAlchemy itself runs the statement on SQLite, with its own autobegin")
    with engine.connect() as conn, pytest.raises(RuntimeError, match="transaction or on an AUTOCOMMIT"):
        _INSERT.run(conn, {"key": "a"})


def test_a_connection_the_server_dropped_is_replaced_not_reused(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("a server that drops a connection is PostgreSQL's case")
    autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
    with autocommit.connect() as conn:
        pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        with autocommit.connect() as other:
            other.execute(text(f"SELECT pg_terminate_backend({pid})"))
        with pytest.raises(OperationalError) as caught:
            for _ in range(50):  # the server ends the session asynchronously
                _COUNT.scalar(conn)
        assert caught.value.connection_invalidated
    with autocommit.connect() as conn:  # the pool opened a fresh connection
        assert _COUNT.scalar(conn) == 0
        assert conn.execute(text("SELECT pg_backend_pid()")).scalar_one() != pid


def test_postgresql_is_sent_the_list_as_one_array_and_prepares_the_statement(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("the driver path is PostgreSQL's")
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        sql = _BY_KEYS.sql(conn)
        assert "= ANY(%(keys)s)" in sql and "<> ALL(%(kind_1)s)" in sql, sql
        for size in (1, 2, 3, 4, 5, 6, 7):  # one statement for any length of list: psycopg prepares it
            _BY_KEYS.all(conn, {"keys": [f"k{n}" for n in range(size)]})
        prepared = conn.execute(
            text("SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE '%prepared_things.key = ANY%'")
        ).scalar_one()
        assert prepared == 1


def test_a_time_before_now_stays_the_instant_it_was(engine: Engine) -> None:
    moment = datetime(2026, 3, 29, 0, 30, tzinfo=UTC) - timedelta(microseconds=1)
    with engine.begin() as conn:
        _INSERT.run(conn, {"key": "t", "created_at": moment.astimezone(datetime.now().astimezone().tzinfo)})
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        (row,) = _BY_KEYS.all(conn, {"keys": ["t"]})
    assert row.created_at == moment and row.created_at.tzinfo == UTC


def _atomic(engine: Engine):  # type: ignore[no-untyped-def]
    return atomic(engine, engine.execution_options(isolation_level="AUTOCOMMIT").connect, engine.begin)


def _keys(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(select(things.c.key).order_by(things.c.key)).scalars())


def test_statements_sent_together_commit_together_at_the_blocks_end(engine: Engine) -> None:
    with _atomic(engine) as conn:
        made = _INSERT.send_key(conn, {"key": "a", "amount": Decimal("1.50")})
        _INSERT.many(conn, [{"key": "b"}, {"key": "c"}])
        found = _BY_KEYS.send(conn, {"keys": ["a", "b", "c"]})
        assert [r.key for r in found.all()] == ["a", "b", "c"]  # read inside the block: what was sent before it
        assert isinstance(made.scalar(), int)
        if engine.dialect.name == "postgresql":
            assert _keys(engine) == []  # another connection sees none of it before the block ends
        _RENAME.send(conn, {"old": "c", "new": "c2"})  # a write sent after a read, in the same transaction
    assert _keys(engine) == ["a", "b", "c2"]


def test_a_refused_statement_takes_the_whole_block_back(engine: Engine) -> None:
    with _atomic(engine) as conn:
        _INSERT.send(conn, {"key": "a"})
    with pytest.raises(IntegrityError), _atomic(engine) as conn:
        _INSERT.send(conn, {"key": "b"})
        _INSERT.send(conn, {"key": "a"})  # the unique key: refused where the block ends (nothing read before)
        _INSERT.send(conn, {"key": "c"})
    assert _keys(engine) == ["a"]
    with pytest.raises(IntegrityError), _atomic(engine) as conn:
        _INSERT.send(conn, {"key": "d"})
        _INSERT.send_key(conn, {"key": "a"}).scalar()  # refused where its result is read
    assert _keys(engine) == ["a"]
    with _atomic(engine) as conn:  # the connection the pool hands out next works
        _INSERT.send(conn, {"key": "e"})
    assert _keys(engine) == ["a", "e"]


def test_an_exception_after_a_write_was_sent_commits_nothing(engine: Engine) -> None:
    with pytest.raises(LookupError), _atomic(engine) as conn:
        _INSERT.send(conn, {"key": "a"})
        raise LookupError("a bug half-way")
    assert _keys(engine) == []
    with pytest.raises(LookupError), _atomic(engine) as conn:  # before any write: the connection is kept
        assert _COUNT.send(conn).scalar() == 0
        raise LookupError("refused after a read")
    assert not conn.invalidated
    with _atomic(engine) as conn:
        _INSERT.send(conn, {"key": "b"})
    assert _keys(engine) == ["b"]


def test_atomic_blocks_on_one_connection_do_not_nest(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("elsewhere a block is a transaction of its own connection")
    shared = engine.execution_options(isolation_level="AUTOCOMMIT").connect()
    try:

        @contextlib.contextmanager
        def same() -> Iterator:  # type: ignore[type-arg]
            yield shared

        with atomic(engine, same, engine.begin) as conn:
            _INSERT.send(conn, {"key": "a"})
            with pytest.raises(RuntimeError, match="do not nest"), atomic(engine, same, engine.begin):
                pass
    finally:
        shared.close()
    assert _keys(engine) == ["a"]  # the inner block never started; the outer one committed its own write
