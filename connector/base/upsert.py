"""Bulk INSERT … ON CONFLICT DO UPDATE for the connector's own tables, on PostgreSQL and SQLite alike.

The inventory sync writes thousands of rows per run (stock mirror, variant cache, pushed levels);
one multi-row statement per chunk instead of a SELECT and an INSERT or UPDATE per row.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, FromClause, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from adapters.prepared import Prepared

CHUNK = 500  # rows per statement: well under SQLite's bound-parameter limit for our widest table


def dialect_insert(bind: Session | Connection, table: FromClause) -> Any:
    """An INSERT that knows ON CONFLICT, for the session's or connection's database (PostgreSQL or SQLite)."""
    dialect = postgresql if _dialect_name(bind) == "postgresql" else sqlite
    return dialect.insert(table)


def _dialect_name(bind: Session | Connection) -> str:
    return bind.dialect.name if isinstance(bind, Connection) else bind.get_bind().dialect.name


_IF_NEW: dict[tuple[str, FromClause, tuple[str, ...], str], Prepared] = {}


def insert_if_new(bind: Session | Connection, table: FromClause, keys: tuple[str, ...], returning: str) -> Prepared:
    """INSERT … ON CONFLICT (`keys`) DO NOTHING RETURNING `returning`, for the session's (connection's) database,
    built once per database kind: run it with the row as parameters (building it per row cost more than sending
    it); its `first` is the new row, or None when the row was there."""
    cache_key = (_dialect_name(bind), table, keys, returning)
    statement = _IF_NEW.get(cache_key)
    if statement is None:
        statement = _IF_NEW[cache_key] = Prepared(
            dialect_insert(bind, table).on_conflict_do_nothing(index_elements=list(keys)).returning(table.c[returning])
        )
    return statement


def upsert(
    session: Session,
    table: FromClause,
    rows: Sequence[dict[str, Any]],
    keys: Iterable[str],
    update: Iterable[str],
    where: Any = None,
) -> None:
    """Insert `rows`; on a key conflict set the `update` columns from the new row (only where `where`,
    an expression over the table and `excluded`, holds, when given as a callable(table, excluded))."""
    if not rows:
        return
    keys, update = list(keys), list(update)
    # One statement executed for many rows: compiled once (SQLAlchemy caches it), sent as batched
    # multi-row INSERTs ("insertmanyvalues") on PostgreSQL and as executemany on SQLite.
    stmt = dialect_insert(session, table)
    condition = where(table, stmt.excluded) if callable(where) else None
    if update:
        stmt = stmt.on_conflict_do_update(
            index_elements=keys, set_={c: stmt.excluded[c] for c in update}, where=condition
        )
    else:
        stmt = stmt.on_conflict_do_nothing(index_elements=keys)
    columns = set().union(*(row.keys() for row in rows))
    for start in range(0, len(rows), CHUNK):
        # executemany needs every row to name the same columns
        session.execute(stmt, [{c: row.get(c) for c in columns} for row in rows[start : start + CHUNK]])


def custom_plans(session: Session) -> None:
    """Plan this transaction's IN-list queries for their actual values. psycopg prepares a statement run
    five times, and PostgreSQL may then switch it to a generic plan: for `sku IN (500 values)` on a table
    filled since its last ANALYZE that plan scans the whole table, 50x slower. No-op on SQLite."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))


def chunked(values: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    """Slices for IN (…) lists that stay under the databases' parameter limits."""
    for start in range(0, len(values), size):
        yield values[start : start + size]
