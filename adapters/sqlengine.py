"""How we open a SQLAlchemy engine on SQLite or PostgreSQL (shared by our store and SQL ERPs)."""

from __future__ import annotations

import math
import time
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.pool import ConnectionPoolEntry


def make_engine(
    url: str,
    sqlite_timeout: float = 30,
    *,
    connect_timeout: float | None = None,
    statement_timeout: float | None = None,
    server_settings: dict[str, str] | None = None,
    **kwargs: object,
) -> Engine:
    """The engine for `url`. connect_timeout and statement_timeout (seconds) bound how long a server
    that accepts a connection and then says nothing can hold a caller (PostgreSQL and MySQL drivers).
    server_settings: PostgreSQL settings each of its connections starts with (sent with the connection
    request, no round trip of their own); ignored elsewhere."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": sqlite_timeout}, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
            # WAL lets the web process write while a worker reads; FULL so that a committed
            # inbox row survives a power cut, not only a crash.
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    connect_args = _timeouts(url, connect_timeout, statement_timeout)
    if server_settings and url.startswith("postgresql"):
        # Added to what the URL and the timeouts set: connect_args replace a URL's own options, not add to them.
        in_url = make_url(url).query.get("options") or ()
        given = [*([in_url] if isinstance(in_url, str) else in_url), connect_args.get("options")]
        settings = [f"-c {name}={value}" for name, value in server_settings.items()]
        connect_args["options"] = " ".join([str(part) for part in given if part] + settings)
    if connect_args:
        kwargs["connect_args"] = connect_args
        kwargs.setdefault("pool_timeout", connect_timeout or statement_timeout)
    engine = create_engine(url, **kwargs)
    _ping_when_idle(engine)
    return engine


# A connection checked in less than this long ago is taken as alive: a worker draining a batch checks a
# connection out and in a dozen times per order, and a ping on each (SQLAlchemy's pool_pre_ping) was a round
# trip each time. One idle longer (a server restart, a firewall's idle cut) is pinged first, as before.
PING_AFTER_IDLE_SECONDS = 2.0


def _ping_when_idle(engine: Engine) -> None:
    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_conn: DBAPIConnection, record: ConnectionPoolEntry) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_conn: DBAPIConnection, record: ConnectionPoolEntry, _proxy: object) -> None:
        since = record.info.get("idle_since")
        if since is not None and time.monotonic() - since < PING_AFTER_IDLE_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_conn)
        except engine.dialect.loaded_dbapi.Error as exc:
            raise DisconnectionError(f"the connection did not answer a ping: {exc}") from exc  # the pool opens another


def _timeouts(url: str, connect: float | None, statement: float | None) -> dict[str, object]:
    args: dict[str, object] = {}
    if url.startswith("postgresql"):
        if connect is not None:
            args["connect_timeout"] = max(2, math.ceil(connect))  # libpq's own floor is 2 s
        if statement is not None:
            # server-side: a statement (or a lock wait) longer than this is cancelled and reported
            args["options"] = f"-c statement_timeout={int(statement * 1000)}"
    elif url.startswith("mysql"):  # PyMySQL and mysqlclient: whole seconds, read and write on the socket
        if connect is not None:
            args["connect_timeout"] = max(1, math.ceil(connect))
        if statement is not None:
            args["read_timeout"] = args["write_timeout"] = max(1, math.ceil(statement))
    return args
