"""The one place that wires settings to the database, the queue, secrets and the ERP adapter.

The web app and the worker each build a Runtime at start-up and install it; RQ jobs (which only
receive ids) look it up with `current()`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from redis import Redis
from sqlalchemy import Connection, Engine, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from adapters.erp import ErpAdapter, PermanentErpError, build_erp
from adapters.prepared import atomic
from connector.base.crypto import SecretBox, secret_box, unreadable_secrets
from connector.base.db import make_autocommit_sessionmaker, make_engine, make_sessionmaker
from connector.base.logredact import install_log_redaction
from connector.base.models import ErpConnection, Store
from connector.base.observability import setup_sentry
from connector.base.queue import EmbeddedJobQueue, JobQueue, RedisJobQueue
from connector.base.settings import Settings

T = TypeVar("T")
# The open batch of this thread or task, if any: its runtime and what it has read so far.
_batch: ContextVar[tuple[Runtime, dict] | None] = ContextVar("connector_batch", default=None)
_HELD = object()  # in a batch's dict: the ExitStack of what it holds until it ends (its connections)
_AUTOCOMMIT = object()  # ... and the autocommit connection its statements share


@dataclass(frozen=True)
class StoreInfo:
    """A store as the hot paths need it, secrets decrypted (kept in memory only)."""

    id: int
    slug: str
    platform: str
    active: bool
    settings: dict
    secrets: dict
    disconnected_at: datetime | None = None  # the app was uninstalled: no calls until it is connected again

    @property
    def webhook_secret(self) -> str:
        """What deliveries are signed with: the webhook secret, or for a store on app credentials the app's
        client secret (a platform may sign an app's webhooks with it)."""
        return self.secrets.get("webhook_secret") or self.secrets.get("client_secret", "")


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    box: SecretBox
    queue: JobQueue
    # What builds the ERP adapter from the stored connection (kind, settings, secrets), and the stores'
    # API clients (connector.base.clients.build_client when None): tests and benchmarks pass their own.
    erp_factory: Callable[[str, dict, dict], ErpAdapter] = build_erp
    client_factory: Callable[..., Any] | None = None
    _erp: tuple[datetime, ErpAdapter] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    # Sessions where each statement commits on its own (see make_autocommit_sessionmaker).
    autocommit: sessionmaker[Session] = field(init=False)
    _autocommit_engine: Engine = field(init=False)

    def __post_init__(self) -> None:
        self.autocommit = make_autocommit_sessionmaker(self.engine)
        self._autocommit_engine = self.engine.execution_options(isolation_level="AUTOCOMMIT")

    def autocommit_connection(self) -> AbstractContextManager[Connection]:
        """A Core connection where each statement commits on its own, as in `autocommit` sessions: for the
        statements every order runs that need no ORM objects. A session costs ~100 µs more per statement (its
        transaction state, identity map and events), a tenth of an order's CPU over a dozen statements.
        Inside a batch every such statement shares one connection, held until the batch ends: taking one from the
        pool and giving it back for each cost another tenth (issue 18)."""
        scope = _batch.get()
        if scope is None or scope[0] is not self:
            return self._autocommit_engine.connect()
        return _Shared(scope[1], _AUTOCOMMIT, self._autocommit_engine)

    def atomic(self) -> AbstractContextManager[Connection]:
        """A Core connection whose `Prepared` statements commit together at the block's end, sent without a
        BEGIN or a COMMIT and without waiting for each (adapters.prepared.atomic): on PostgreSQL the batch's shared
        autocommit connection in pipeline mode, elsewhere a transaction."""
        return atomic(self.engine, self.autocommit_connection, self.engine.begin)

    @classmethod
    def from_settings(cls, settings: Settings, queue: JobQueue | None = None, *, worker: bool = False) -> Runtime:
        """`worker`: the runtime of a job worker. Unless settings.worker_synchronous_commit, its commits to our
        PostgreSQL database do not wait for the WAL to reach the disk (synchronous_commit off): a crash of the
        database server may then lose its last fraction of a second of them, and only them, which leaves the
        database as a worker killed before those commits would have (every job is idempotent on the inbox
        row, and what the inbox row holds was committed durably by the door before it answered). The wait
        cost two workers 13% of their orders/s (issue 18). The door's and the console's commits wait as before."""
        install_log_redaction()
        asynchronous = worker and not settings.worker_synchronous_commit
        engine = make_engine(
            settings.database_url, server_settings={"synchronous_commit": "off"} if asynchronous else None
        )
        if queue is None:
            if settings.redis_url:
                # Short timeouts: a slow Redis must not hold a webhook's answer for long (the sweep catches up).
                queue = RedisJobQueue(
                    Redis.from_url(settings.redis_url, socket_timeout=2, socket_connect_timeout=1), settings.queue_name
                )
            else:
                queue = EmbeddedJobQueue()
        runtime = cls(settings, engine, make_sessionmaker(engine), secret_box(settings), queue)
        setup_sentry(settings.sentry_dsn, runtime.known_secrets)
        return runtime

    def known_secrets(self) -> list[str]:
        """Every secret we hold, decrypted: what error reports and logs must never show."""
        found = [self.settings.secret_key, self.settings.encryption_key or ""]
        for _, sealed in self._sealed():
            found.extend(str(v) for v in self.box.open(sealed).values())
        return [s for s in found if s]

    def _sealed(self) -> list[tuple[str, str | None]]:
        """Every sealed secrets blob we hold, with what it belongs to."""
        with self.sessions() as session:
            return [(f"store {slug}", token) for slug, token in session.execute(select(Store.slug, Store.secrets))] + [
                (f"ERP connection {name}", token)
                for name, token in session.execute(select(ErpConnection.name, ErpConnection.secrets))
            ]

    def store_info(self, store: Store) -> StoreInfo:
        return StoreInfo(
            store.id,
            store.slug,
            store.platform,
            store.active,
            dict(store.settings),
            self.box.open(store.secrets),
            store.disconnected_at,
        )

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Inside this block, data read with `per_batch` (store info, mapping tables, the ERP adapter)
        is read once, then forgotten when the block ends: a drain opens one per batch of events, so an
        edit on /config reaches the events of the next batch."""
        with ExitStack() as held:
            token = _batch.set((self, {_HELD: held}))
            try:
                yield
            finally:
                _batch.reset(token)

    def per_batch(self, key: Hashable, load: Callable[[], T]) -> T:
        """`load()`, or what it returned earlier in the open batch of this runtime."""
        scope = _batch.get()
        if scope is None or scope[0] is not self:
            return load()
        cache = scope[1]
        if key not in cache:
            cache[key] = load()
        return cache[key]

    def per_batch_forget(self, key: Hashable) -> None:
        """Drop what `per_batch` kept under `key`, so the next call reads it again."""
        scope = _batch.get()
        if scope is not None and scope[0] is self:
            scope[1].pop(key, None)

    def key_problem(self) -> str | None:
        """Whether this process's encryption key opens every stored secret (None when it does)."""

        return unreadable_secrets(self.box, self._sealed())

    def erp(self) -> ErpAdapter:
        """The configured ERP adapter, rebuilt when its configuration changes (looked up once per batch). An
        adapter that can hold its connections for a while (`holding`) holds them until the batch ends."""
        return self.per_batch("erp", self._erp_for_batch)

    def _erp_for_batch(self) -> ErpAdapter:
        adapter = self._erp_adapter()
        scope = _batch.get()
        holding = getattr(adapter, "holding", None)
        if scope is not None and scope[0] is self and holding is not None:
            scope[1][_HELD].enter_context(holding())
        return adapter

    def _erp_adapter(self) -> ErpAdapter:
        with self.autocommit() as session:
            conn = session.scalars(select(ErpConnection).where(ErpConnection.name == "default")).first()
        if conn is None:
            raise PermanentErpError("no ERP connection is configured: add one with `connector config load`")
        with self._lock:
            if self._erp is None or self._erp[0] != conn.updated_at:
                if self._erp is not None:
                    self._erp[1].close()
                adapter = self.erp_factory(conn.kind, dict(conn.settings), self.box.open(conn.secrets))
                self._erp = (conn.updated_at, adapter)
            return self._erp[1]

    def release_before_fork(self) -> None:
        """Close the pooled database connections before this process forks (os.register_at_fork).

        RQ's worker forks its scheduler process, which inherits every open socket. Should the worker then
        be killed, the child still holds its socket, so PostgreSQL never sees the connection end: the
        killed attempt's transaction stays open with its row locks, and the next worker waits on them
        until a timeout. Closed here, the child has nothing to inherit; the parent reconnects on its next
        query. The worker forks between jobs, when no connection is checked out."""
        self.engine.dispose()
        erp_engine = getattr(self._erp[1], "engine", None) if self._erp is not None else None
        if isinstance(erp_engine, Engine):
            erp_engine.dispose()

    def close(self) -> None:
        if self._erp is not None:
            self._erp[1].close()
        self.engine.dispose()


class _Shared:
    """The batch's shared connection of one kind, opened at its first use and closed when the batch ends. One
    that an error broke is replaced at the next use (SQLAlchemy marks it invalidated); one left by anything but a
    database's refusal (an interruption mid-statement) is let go rather than handed on."""

    __slots__ = ("scope", "kind", "engine", "conn")

    def __init__(self, scope: dict, kind: object, engine: Engine) -> None:
        self.scope, self.kind, self.engine = scope, kind, engine
        self.conn: Connection | None = None

    def __enter__(self) -> Connection:
        conn = self.scope.get(self.kind)
        if conn is None or conn.closed or conn.invalidated:
            conn = self.scope[self.kind] = self.scope[_HELD].enter_context(self.engine.connect())
        self.conn = conn
        return conn

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        conn = self.conn
        if conn is None or exc_type is None or issubclass(exc_type, DBAPIError):
            return
        conn.close()
        if self.scope.get(self.kind) is conn:
            del self.scope[self.kind]


_current: Runtime | None = None


def install(runtime: Runtime) -> Runtime:
    global _current
    _current = runtime
    return runtime


def current() -> Runtime:
    global _current
    if _current is None:
        _current = Runtime.from_settings(Settings.from_env())
    return _current
