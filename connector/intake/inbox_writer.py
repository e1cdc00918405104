"""The receivers' inbox writers: a delivery's row committed, with other deliveries' rows, before
its request answers (group commit). Inbox for the WSGI receiver's threads, AsyncInbox for the ASGI
receiver's event loop; both straight to libpq on PostgreSQL (connector.intake.inbox_wire), through
connector.intake.inbox.insert_rows elsewhere.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg
from psycopg import pq
from sqlalchemy import Engine
from sqlalchemy.pool import PoolProxiedConnection

from connector.intake.inbox import InboxUnavailable, driver_connection, insert_rows
from connector.intake.inbox_wire import (
    FORMATS,
    batch_values,
    checked,
    is_dead,
    new_ids,
    numbered_sql,
    results,
    statement_name,
)

log = logging.getLogger("connector.intake.inbox")


@dataclass(eq=False)
class _Waiting:
    """A request thread's row, waiting to be committed (or to be told to commit the waiting rows itself)."""

    row: dict
    done: threading.Event = field(default_factory=threading.Event)
    lead: bool = False
    event_id: int | None = None
    error: Exception | None = None


class Inbox:
    """The receiver's writer: every delivery is committed before the request answers.

    On PostgreSQL the request threads of a process commit together (group commit): the thread that
    finds no commit in progress leads, and commits its own row with every row that is waiting in one
    multi-row INSERT; the threads that arrive meanwhile wait, and the next of them leads the next
    batch. A lone delivery goes at once in its own thread; under load a row costs PostgreSQL less
    than half as much in a batch. Each thread still answers only after its own row is durable.
    """

    MAX_BATCH = 32
    ROUNDS = 2  # batches a leader commits for others before handing over, so its own answer waits little
    WAIT_SECONDS = 10.0  # a row not committed by then is refused (503): the store sends it again

    def __init__(self, engine: Engine, on_stored: Callable[[int], None]):
        self.engine = engine
        self.on_stored = on_stored  # told each store that got a new pending event (after commit)
        self._queue: list[_Waiting] = []
        self._lock = threading.Lock()
        self._leading = False  # a thread is committing; while False, the queue is empty
        self._conn: PoolProxiedConnection | None = None  # used by one leader at a time, in autocommit mode
        self._prepared: set[int] = set()  # batch sizes prepared on that connection

    def record(self, new_row: dict) -> int | None:
        """Commit the row; its id, or None for a duplicate. InboxUnavailable when it cannot."""
        try:
            event_id = self._insert(new_row)
        except InboxUnavailable:
            raise
        except Exception as exc:
            log.exception("inbox: could not store a delivery; refusing it (503) so the store sends it again")
            raise InboxUnavailable(str(exc)) from exc
        if event_id is not None and new_row["status"] == "pending":
            self.on_stored(new_row["store_id"])
        return event_id

    def _insert(self, new_row: dict) -> int | None:
        if self.engine.dialect.name != "postgresql":
            with self.engine.begin() as conn:
                return insert_rows(conn, [new_row]).get((new_row["store_id"], new_row["dedupe_key"]))
        me = _Waiting(new_row)
        with self._lock:
            self._queue.append(me)
            me.lead, self._leading = not self._leading, True
        if not me.lead and not me.done.wait(self.WAIT_SECONDS):
            with self._lock:
                if not me.lead and me in self._queue:  # nobody took it: withdraw it (the store sends it again)
                    self._queue.remove(me)
                    raise InboxUnavailable(f"the row was not committed within {self.WAIT_SECONDS:g}s")
            # Handed the lead just now, or in a batch being committed (bounded by the statement timeout).
            if not me.lead and not me.done.wait(self.WAIT_SECONDS):
                raise InboxUnavailable(f"the row was not committed within {2 * self.WAIT_SECONDS:g}s")
        if me.lead:  # first, or handed the lead while waiting: its row is at the head of the queue
            self._lead()
        if me.error is not None:
            raise me.error
        return me.event_id

    def _lead(self) -> None:
        try:
            for _ in range(self.ROUNDS):
                with self._lock:
                    batch, self._queue = self._queue[: self.MAX_BATCH], self._queue[self.MAX_BATCH :]
                if not batch:
                    break
                self._commit_each_once(batch)
                for waiting in batch:
                    if not waiting.lead:
                        waiting.done.set()
        finally:  # whatever happened, the next waiting thread leads, or nobody is leading
            with self._lock:
                if self._queue:
                    self._queue[0].lead = True
                    self._queue[0].done.set()
                else:
                    self._leading = False

    def _commit_each_once(self, batch: list[_Waiting]) -> None:
        try:
            self._commit(batch)
        except Exception as exc:
            self._drop_connection()
            if len(batch) == 1:
                log.exception("inbox: could not store a delivery; refusing it (503) so the store sends it again")
                batch[0].error = InboxUnavailable(str(exc))
                return
            for waiting in batch:  # one bad row must not cost the others theirs: each alone
                self._commit_each_once([waiting])

    def _commit(self, batch: list[_Waiting]) -> None:
        reused = self._conn is not None
        try:
            self._commit_on_connection(batch)
        except Exception:
            if not (reused and self._conn is not None and is_dead(driver_connection(self._conn).pgconn)):
                raise
            # It died since its last use (a PostgreSQL restart, a failover): once more on a new one.
            self._drop_connection()
            self._commit_on_connection(batch)

    def _commit_on_connection(self, batch: list[_Waiting]) -> None:
        # Straight to libpq (psycopg.pq): a prepared statement per batch size, the parameters encoded
        # here. psycopg's cursor layer cost more Python than the rest of the delivery's path.
        if self._conn is None:
            self._conn = self.engine.raw_connection()
            driver_connection(self._conn).autocommit = True
            # A stuck insert must not hold every request thread of the process: fail it (503) instead.
            driver_connection(self._conn).execute(f"SET statement_timeout = {int(self.WAIT_SECONDS * 1000)}")
            self._prepared = set()
        pgconn = driver_connection(self._conn).pgconn
        rows = [waiting.row for waiting in batch]
        name = statement_name(len(rows))
        if len(rows) not in self._prepared:
            checked(pgconn.prepare(name, numbered_sql(len(rows))), pq.ExecStatus.COMMAND_OK)
            self._prepared.add(len(rows))
        values = batch_values(rows)
        # psycopg's exec_prepared sends None as NULL (as exec_params, which is typed so); its signature omits None.
        sent = pgconn.exec_prepared(name, values, FORMATS * len(rows))  # type: ignore[arg-type]  # None is NULL
        result = checked(sent, pq.ExecStatus.TUPLES_OK)
        for waiting, event_id in zip(batch, new_ids(result, rows), strict=False):
            waiting.event_id = event_id

    def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.invalidate()
            except Exception:
                pass


_Pending = tuple[dict, "asyncio.Future[int | None]"]


class AsyncInbox:
    """The ASGI receiver's writer (connector.web.asgi): the same group commit, on one event loop.

    Deliveries that arrive while a batch is being committed wait for the next one, which goes as
    soon as the first is durable: one multi-row INSERT per batch on the process's own connection.
    The loop stays free meanwhile (psycopg's non-blocking calls). Each request still answers only
    after its own row is durable. On SQLite (the embedded defaults) rows go one at a time through
    the thread-based Inbox.
    """

    MAX_BATCH = Inbox.MAX_BATCH
    WAIT_SECONDS = Inbox.WAIT_SECONDS

    def __init__(self, engine: Engine, on_stored: Callable[[int], None]):
        self.engine = engine
        self.on_stored = on_stored
        self._queue: list[_Pending] = []
        self._writing = False  # a task is committing; while False, the queue is empty
        self._task: asyncio.Task | None = None
        self._conn: psycopg.AsyncConnection | None = None
        self._prepared: set[int] = set()
        self._threaded = Inbox(engine, on_stored) if engine.dialect.name != "postgresql" else None

    async def record(self, new_row: dict) -> int | None:
        """Commit the row; its id, or None for a duplicate. InboxUnavailable when it cannot."""
        if self._threaded is not None:
            return await asyncio.to_thread(self._threaded.record, new_row)
        loop = asyncio.get_running_loop()
        item: _Pending = (new_row, loop.create_future())
        self._queue.append(item)
        if not self._writing:
            self._writing = True
            self._task = loop.create_task(self._write())  # held: the loop keeps only weak references
        # A timer of its own rather than asyncio.wait, which costs a callback, a waiter and a set per
        # delivery: this runs for every one.
        timer = loop.call_later(self.WAIT_SECONDS, self._overdue, item)
        try:
            event_id = await item[1]
        finally:
            timer.cancel()
        if event_id is not None and new_row["status"] == "pending":
            self.on_stored(new_row["store_id"])
        return event_id

    def _overdue(self, item: _Pending) -> None:
        """A row's first WAIT_SECONDS are up. Still queued: withdrawn (the store sends it again). In the batch
        being committed: that is bounded by the statement timeout, so it gets as long again."""
        future = item[1]
        if future.done():
            return
        if item in self._queue:
            self._queue.remove(item)
            future.set_exception(InboxUnavailable(f"the row was not committed within {self.WAIT_SECONDS:g}s"))
        else:
            asyncio.get_running_loop().call_later(self.WAIT_SECONDS, self._abandon, future)

    def _abandon(self, future: asyncio.Future[int | None]) -> None:
        if not future.done():  # refused, and done: not retried alone if its batch fails
            future.set_exception(InboxUnavailable(f"the row was not committed within {2 * self.WAIT_SECONDS:g}s"))

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()

    async def _write(self) -> None:
        batch: list[_Pending] = []
        try:
            while self._queue:
                batch, self._queue = self._queue[: self.MAX_BATCH], self._queue[self.MAX_BATCH :]
                await self._commit_each_once(batch)
        finally:  # even when cancelled (shutdown): no request waits on a batch nobody commits
            self._writing = False
            for _, future in batch:
                if not future.done():
                    future.set_exception(InboxUnavailable("the web process is stopping"))

    async def _commit_each_once(self, batch: list[_Pending]) -> None:
        try:
            ids = await self._commit([new_row for new_row, _ in batch])
        except Exception as exc:
            await self._drop_connection()
            if len(batch) == 1:
                log.exception("inbox: could not store a delivery; refusing it (503) so the store sends it again")
                if not batch[0][1].done():
                    batch[0][1].set_exception(InboxUnavailable(str(exc)))
                return
            for item in batch:  # one bad row must not cost the others theirs: each alone
                if not item[1].done():
                    await self._commit_each_once([item])
            return
        for (_, future), event_id in zip(batch, ids, strict=False):
            if not future.done():
                future.set_result(event_id)

    async def _commit(self, rows: list[dict]) -> list[int | None]:
        reused = self._conn is not None
        try:
            return await self._commit_on_connection(rows)
        except Exception:
            if not (reused and self._conn is not None and is_dead(self._conn.pgconn)):
                raise
            # It died since its last use (a PostgreSQL restart, a failover): once more on a new one.
            await self._drop_connection()
            return await self._commit_on_connection(rows)

    async def _commit_on_connection(self, rows: list[dict]) -> list[int | None]:
        if self._conn is None:
            _, params = self.engine.dialect.create_connect_args(self.engine.url)
            params.setdefault("connect_timeout", max(1, int(self.WAIT_SECONDS)))  # an unreachable host
            self._conn = await psycopg.AsyncConnection.connect(**params, autocommit=True)
            # A stuck insert must not hold the process's deliveries: fail them (503) instead.
            await self._conn.execute(f"SET statement_timeout = {int(self.WAIT_SECONDS * 1000)}")
            self._prepared = set()
        conn, pgconn = self._conn, self._conn.pgconn
        name = statement_name(len(rows))
        if len(rows) not in self._prepared:
            pgconn.send_prepare(name, numbered_sql(len(rows)))
            checked((await results(conn))[-1], pq.ExecStatus.COMMAND_OK)
            self._prepared.add(len(rows))
        pgconn.send_query_prepared(name, batch_values(rows), FORMATS * len(rows))
        result = checked((await results(conn))[-1], pq.ExecStatus.TUPLES_OK)
        return new_ids(result, rows)

    async def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                await conn.close()
            except Exception:
                pass
