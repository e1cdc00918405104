"""Core statements sent to PostgreSQL by psycopg itself: built with SQLAlchemy, compiled once, run on the driver
connection of a pooled SQLAlchemy connection.

Why: SQLAlchemy's execution path (execution context, events, result metadata) costs ~70 µs of Python per
statement on top of the ~60 µs psycopg itself spends. Over the two dozen statements of a drained order that was
45% of a worker's CPU (issue 18, py-spy). The statements every order runs are built with Core as anywhere else;
on psycopg each is compiled once (per set of columns an INSERT or UPDATE is given) and psycopg runs it, preparing
it on the server after a few runs. Column defaults, bind processors and result processors of the statement's
types are applied as SQLAlchemy applies them. On any other driver (SQLite, MySQL) a statement runs through
`Connection.execute` as usual. Either way the caller gets rows that index and name their columns.

A driver error comes out as SQLAlchemy's (`DBAPIError.instance`, what `Connection.execute` raises), so callers
handle errors as before; a connection the error broke is invalidated, so the pool opens another.

Run them in a transaction (`engine.begin()`, a session's connection) or on an AUTOCOMMIT connection: outside
both, psycopg would open a transaction SQLAlchemy does not know of, which the pool rolls back at check-in.

Statements that must commit together can be sent together: `atomic` (see there) runs a block of them as one
transaction without a BEGIN and a COMMIT of its own, and without waiting for each statement before sending the
next (psycopg's pipeline mode); `send` sends a statement whose rows are read later, `send_key` an INSERT whose new
key is. Reading a result waits for it and for what was sent before it: one round trip for all of them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

import psycopg
from psycopg.rows import namedtuple_row
from sqlalchemy import Connection, Engine, exc
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import Executable
from sqlalchemy.sql.dml import Insert, Update

Params = Mapping[str, Any]
# An expanding IN list as SQLAlchemy leaves it for its own run-time rendering: sent as one array parameter instead.
_EXPANDING = re.compile(r"(NOT )?IN \(__\[POSTCOMPILE_(\w+)\]\)")


class Sent:
    """A statement sent by `Prepared.send`, its rows read when first wanted: in an `atomic` block on PostgreSQL that
    waits for them (and for everything sent before them, in one round trip); elsewhere they are in already."""

    __slots__ = ("_read", "_rows")

    def __init__(self, read: Callable[[], list[Any]]) -> None:
        self._read = read
        self._rows: list[Any] | None = None

    def all(self) -> list[Any]:
        if self._rows is None:
            self._rows = self._read()
        return self._rows

    def first(self) -> Any | None:
        rows = self.all()
        return rows[0] if rows else None

    def scalar(self) -> Any | None:
        row = self.first()
        return None if row is None else row[0]


@dataclass(frozen=True)
class _Compiled:
    sql: str
    defaults: dict[str, Any]  # binds with a value of their own, and column defaults computed in Python
    computed: dict[str, Callable[[], Any]]  # column defaults evaluated per run (a timestamp)
    binds: dict[str, Callable[[Any], Any]]  # bind processors by parameter name
    expanding: frozenset[str]
    # The result processors of its columns, by the types psycopg reported at its first run that returned rows
    # (a statement's column types do not change); empty when no column has one.
    results: list[tuple[Callable[[Any], Any] | None, ...]]


class Prepared:
    """A Core statement run through psycopg on PostgreSQL and through SQLAlchemy elsewhere."""

    def __init__(self, statement: Executable, *, _keyed: bool = False) -> None:
        built: Any = statement  # a Select, Insert or Update: each compiles and has columns
        self.statement = built
        self._dml = isinstance(statement, (Insert, Update))
        # For inserted_key, an INSERT's copy returning the new row's key. Made before anything reads the statement's
        # columns: SQLAlchemy keeps what it worked out for them, and a copy made afterwards would inherit it.
        self._returning: Prepared | None = None
        if isinstance(statement, Insert) and not _keyed:
            self._returning = Prepared(built.returning(*built.table.primary_key.columns), _keyed=True)
        # The types of the columns it returns (a SELECT's; an INSERT's or UPDATE's RETURNING), for result processing.
        self._types = [column.type for column in built.exported_columns]
        # An INSERT whose rows are not asked for: compiled without the RETURNING of the new key SQLAlchemy would
        # otherwise add for PostgreSQL (inserted_key asks for it explicitly).
        self._bare_insert = isinstance(statement, Insert) and not self._types
        self._compiled: dict[tuple[int, tuple[str, ...] | None], _Compiled] = {}

    # ---- what callers use ---------------------------------------------------------------------

    def all(self, conn: Connection, params: Params | None = None) -> list[Any]:
        compiled = self._for(conn, params)
        if compiled is None:
            return list(conn.execute(self.statement, dict(params or {})))
        cursor = self._send(conn, compiled, params)
        return self._rows(conn, compiled, cursor, cursor.fetchall())

    def first(self, conn: Connection, params: Params | None = None) -> Any | None:
        compiled = self._for(conn, params)
        if compiled is None:
            return conn.execute(self.statement, dict(params or {})).first()
        cursor = self._send(conn, compiled, params)
        row = cursor.fetchone()
        return None if row is None else self._rows(conn, compiled, cursor, [row])[0]

    def scalar(self, conn: Connection, params: Params | None = None) -> Any | None:
        row = self.first(conn, params)
        return None if row is None else row[0]

    def run(self, conn: Connection, params: Params | None = None) -> int:
        """Run a statement whose rows are not wanted; how many rows it changed."""
        compiled = self._for(conn, params)
        if compiled is None:
            return int(conn.execute(self.statement, dict(params or {})).rowcount)
        return int(self._send(conn, compiled, params).rowcount)

    def many(self, conn: Connection, rows: Sequence[Params]) -> None:
        """Run the statement once per row (psycopg pipelines them: one round trip); every row with the same keys."""
        if not rows:
            return
        compiled = self._for(conn, rows[0])
        if compiled is None:
            conn.execute(self.statement, [dict(row) for row in rows])
            return
        raw = self._driver(conn)
        values = [self._values(compiled, row) for row in rows]
        if self._dml:
            _sent_writes(conn)
        try:
            with raw.cursor() as cursor:
                cursor.executemany(compiled.sql, values)
        except psycopg.Error as error:
            raise self._translated(conn, raw, compiled, values, error) from error

    def inserted_key(self, conn: Connection, params: Params) -> Any:
        """Run an INSERT of one row and return its new primary key: by RETURNING on psycopg, by the driver's
        last row id elsewhere (MySQL has no RETURNING)."""
        if self._for(conn, params) is None:
            key = conn.execute(self.statement, dict(params)).inserted_primary_key
            if not key:
                raise RuntimeError("the insert returned no primary key")
            return key[0]
        if self._returning is None:
            raise TypeError("inserted_key runs an INSERT")
        return self._returning.scalar(conn, params)

    def send(self, conn: Connection, params: Params | None = None) -> Sent:
        """Send the statement; its rows are read from what this returns, when wanted (see `atomic`). A statement
        without rows (an INSERT or UPDATE without RETURNING) is sent for its effect: its rows are not to be read."""
        compiled = self._for(conn, params)
        if compiled is None:
            result = conn.execute(self.statement, dict(params or {}))
            rows = list(result) if result.returns_rows else []
            return Sent(lambda: rows)
        if self._dml:
            _sent_writes(conn)
        cursor = self._send(conn, compiled, params)

        def read() -> list[Any]:
            try:
                rows = cursor.fetchall()
            except psycopg.Error as error:
                raise self._translated(conn, cursor.connection, compiled, None, error) from error
            return self._rows(conn, compiled, cursor, rows)

        return Sent(read)

    def send_key(self, conn: Connection, params: Params) -> Sent:
        """`send` for an INSERT of one row: its scalar() is the new primary key (as `inserted_key`)."""
        if self._for(conn, params) is None:
            key = self.inserted_key(conn, params)
            return Sent(lambda: [(key,)])
        if self._returning is None:
            raise TypeError("send_key sends an INSERT")
        return self._returning.send(conn, params)

    def sql(self, conn: Connection, params: Params | None = None) -> str:
        """The SQL psycopg is given on this connection (for a test's EXPLAIN); SQLAlchemy's own elsewhere."""
        compiled = self._for(conn, params)
        return compiled.sql if compiled is not None else str(self.statement.compile(dialect=conn.dialect))

    # ---- inside ---------------------------------------------------------------------------------

    def _for(self, conn: Connection, params: Params | None) -> _Compiled | None:
        dialect = conn.dialect
        if dialect.driver != "psycopg":
            return None
        key = (id(dialect), tuple(sorted(params)) if self._dml and params else None)
        compiled = self._compiled.get(key)
        if compiled is None:
            compiled = self._compiled[key] = self._compile(dialect, key[1])
        return compiled

    def _compile(self, dialect: Dialect, columns: tuple[str, ...] | None) -> _Compiled:
        compiled: Any = self.statement.compile(
            dialect=dialect, column_keys=list(columns) if columns else None, for_executemany=self._bare_insert
        )
        if compiled.escaped_bind_names:
            raise ValueError(f"bind names that need escaping are not supported here: {compiled.escaped_bind_names}")
        defaults: dict[str, Any] = {}
        computed: dict[str, Callable[[], Any]] = {}
        named = {name: bind for bind, name in compiled.bind_names.items()}  # by the name rendered in the SQL
        for name, bind in named.items():
            if not bind.required:  # a value of its own (a literal in the statement, a LIMIT): sent with each run
                if bind.callable is not None:
                    computed[name] = bind.callable
                else:
                    defaults[name] = bind.value
        for column in [*compiled.insert_prefetch, *compiled.update_prefetch]:
            default = column.default if column in compiled.insert_prefetch else column.onupdate
            if default is None or not (default.is_scalar or default.is_callable):
                raise ValueError(f"column {column} has a default this module does not compute")
            if column.key not in named:
                raise ValueError(f"column {column} is not a parameter of its own here")
            if default.is_callable:
                arg = default.arg  # SQLAlchemy wraps a default taking no arguments into one taking a context
                computed[column.key] = partial(arg, None)
            else:
                defaults[column.key] = default.arg
        binds = {}
        for name, bind in named.items():
            processor = bind.type._cached_bind_processor(dialect)  # what SQLAlchemy's own execution applies
            if processor is not None:
                binds[name] = processor
        expanding = frozenset(name for name, bind in named.items() if bind.expanding)
        sql = _EXPANDING.sub(lambda m: f"{'<> ALL' if m.group(1) else '= ANY'}(%({m.group(2)})s)", compiled.string)
        if "__[POSTCOMPILE_" in sql:
            raise ValueError(f"a post-compile parameter this module does not render: {sql}")
        return _Compiled(sql, defaults, computed, binds, expanding, [])

    def _values(self, compiled: _Compiled, params: Params | None) -> dict[str, Any]:
        values = {**compiled.defaults, **{name: make() for name, make in compiled.computed.items()}}
        if params:
            values.update(params)
        for name in compiled.expanding:
            values[name] = list(values[name])
        for name, process in compiled.binds.items():
            if name in compiled.expanding:
                values[name] = [process(v) for v in values[name]]
            elif name in values:  # None too: a type may write None as something else (JSON's null)
                values[name] = process(values[name])
        return values

    @staticmethod
    def _driver(conn: Connection) -> psycopg.Connection:
        raw: psycopg.Connection = conn.connection.driver_connection  # type: ignore[assignment]
        if not (raw.autocommit or conn.in_transaction()):
            raise RuntimeError("a prepared statement runs in a transaction or on an AUTOCOMMIT connection")
        return raw

    def _send(self, conn: Connection, compiled: _Compiled, params: Params | None) -> psycopg.Cursor:
        raw = self._driver(conn)
        values = self._values(compiled, params)
        try:
            return raw.cursor(row_factory=namedtuple_row).execute(compiled.sql, values)
        except psycopg.Error as error:
            raise self._translated(conn, raw, compiled, values, error) from error

    def _rows(self, conn: Connection, compiled: _Compiled, cursor: psycopg.Cursor, rows: list[Any]) -> list[Any]:
        """The rows with the result processors of their columns' types applied (as SQLAlchemy would)."""
        if not rows:
            return rows
        if not compiled.results:
            found = tuple(
                type_._cached_result_processor(conn.dialect, described.type_code)
                for type_, described in zip(self._types, cursor.description or (), strict=True)
            )
            compiled.results.append(found if any(p is not None for p in found) else ())
        processors = compiled.results[0]
        if not processors:
            return rows
        make = type(rows[0])._make
        return [make(v if p is None else p(v) for p, v in zip(processors, row, strict=True)) for row in rows]

    @staticmethod
    def _translated(
        conn: Connection, raw: psycopg.Connection, compiled: _Compiled, values: Any, error: psycopg.Error
    ) -> exc.StatementError:
        broken = raw.broken or raw.closed
        if broken:
            conn.invalidate(error)  # as SQLAlchemy does with a connection an error broke: the pool opens another
        return exc.DBAPIError.instance(
            compiled.sql, values, error, psycopg.Error, connection_invalidated=broken, dialect=conn.dialect
        )


# In Connection.info while an `atomic` block runs on it: whether a write was sent yet.
_ATOMIC = "prepared.atomic.writes"


def _sent_writes(conn: Connection) -> None:
    if _ATOMIC in conn.info:
        conn.info[_ATOMIC] = True


@contextmanager
def atomic(
    engine: Engine,
    autocommit: Callable[[], AbstractContextManager[Connection]],
    transaction: Callable[[], AbstractContextManager[Connection]],
) -> Iterator[Connection]:
    """A connection on which the block's statements commit together, or not at all.

    On psycopg, `autocommit()`'s connection in pipeline mode: PostgreSQL runs every statement up to the block's end
    (its Sync) as one transaction and commits it there, so there is no BEGIN and no COMMIT to wait for, and no
    statement is waited for until a result is read (`Sent`), or the block ends. A database error rolls all of it
    back and comes out, as SQLAlchemy's exception, where a result is read or at the block's end. Any other exception
    raised in the block after a write was sent closes the connection instead (the server rolls back what it got):
    ending the block normally would commit those writes. Only `Prepared` statements belong in the block (SQLAlchemy's
    own execution reads a result before it has come). Elsewhere (SQLite, MySQL): `transaction()`'s connection."""
    if engine.dialect.driver != "psycopg":
        with transaction() as conn:
            yield conn
        return
    with autocommit() as conn:
        raw = Prepared._driver(conn)
        if not raw.autocommit:
            raise RuntimeError("atomic needs an AUTOCOMMIT connection on PostgreSQL")
        if _ATOMIC in conn.info:  # the outer block's commit would take the inner one's statements
            raise RuntimeError("atomic blocks on one connection do not nest")
        pipeline = raw.pipeline()
        pipeline.__enter__()
        conn.info[_ATOMIC] = False
        try:
            yield conn
        except BaseException as error:
            if conn.info.pop(_ATOMIC, False) or not isinstance(error, Exception):
                conn.invalidate(error)  # never Sync: that would commit what was sent
            else:
                pipeline.__exit__(type(error), error, error.__traceback__)  # nothing written: end the pipeline
            raise
        conn.info.pop(_ATOMIC, None)
        try:
            pipeline.__exit__(None, None, None)
        except psycopg.Error as error:
            broken = raw.broken or raw.closed
            if broken:
                conn.invalidate(error)
            raise exc.DBAPIError.instance(
                "(statements sent together)",
                None,
                error,
                psycopg.Error,
                connection_invalidated=broken,
                dialect=conn.dialect,
            ) from error
