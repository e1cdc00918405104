"""The durable inbox: every delivery we accept is a committed row before we answer 200.

Deliveries are written by a group commit: each web process has one writer thread with its own
connection; request threads hand it their row and wait until the transaction holding it has
committed. Under load one INSERT … ON CONFLICT DO NOTHING and one COMMIT carry many deliveries,
so the receiver's cost per delivery stays low while the rule "ack only after the durable write"
holds for every single one. A duplicate (same store and dedupe key) is one row that changes
nothing; the request learns it was a duplicate.
"""
from __future__ import annotations

import functools
import logging
import queue
import threading
from collections.abc import Callable

from sqlalchemy import Engine
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from connector.clock import utcnow
from connector.models import InboxEvent

log = logging.getLogger(__name__)
_INBOX = InboxEvent.__table__
MAX_BATCH = 128
WAIT_SECONDS = 10.0  # a request gives up (503) if its row is not committed by then


class InboxUnavailable(Exception):
    """The row could not be committed; the delivery must not be acknowledged."""


@functools.cache
def _statement(dialect_name: str):  # type: ignore[no-untyped-def]
    # Built once per dialect: the values come as parameters, so SQLAlchemy's compiled cache hits.
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    return (
        dialect.insert(_INBOX)
        .on_conflict_do_nothing(index_elements=["store_id", "dedupe_key"])
        .returning(_INBOX.c.id, _INBOX.c.store_id, _INBOX.c.dedupe_key)
    )


def row(*, store_id: int, platform: str, topic: str, dedupe_key: str, headers: dict[str, str], body: bytes,
        resource_id: str | None = None, status: str = "pending", error: str | None = None) -> dict:
    now = utcnow()
    return {
        "store_id": store_id,
        "platform": platform,
        "topic": topic,
        "dedupe_key": dedupe_key[:255],
        "headers": headers,
        "body": body,
        "received_at": now,
        "status": status,
        "attempts": 0,
        "attempts_before_retry": 0,
        "last_error": error,
        "resource_id": resource_id,
        "processed_at": now if status != "pending" else None,
    }


def insert_rows(conn: Connection, rows: list[dict]) -> dict[tuple[int, str], int]:
    """Insert in one statement; return the new ids by (store_id, dedupe_key) — duplicates are absent."""
    result = conn.execute(_statement(conn.dialect.name), rows)
    return {(r.store_id, r.dedupe_key): r.id for r in result}


def record(engine: Engine, **fields: object) -> int | None:
    """Store one delivery in its own transaction (the CLI, tests and tools use this)."""
    new_row = row(**fields)  # type: ignore[arg-type]
    with engine.begin() as conn:
        return insert_rows(conn, [new_row]).get((new_row["store_id"], new_row["dedupe_key"]))


class _Pending:
    __slots__ = ("row", "done", "event_id", "error")

    def __init__(self, new_row: dict):
        self.row = new_row
        self.done = threading.Event()
        self.event_id: int | None = None
        self.error: Exception | None = None


class InboxWriter:
    """One per process: commits the rows handed to it in batches, oldest first."""

    def __init__(self, engine: Engine, on_stored: Callable[[set[int]], None]):
        self.engine = engine
        self.on_stored = on_stored  # called after each commit with the stores that got new events
        self._queue: queue.SimpleQueue[_Pending] = queue.SimpleQueue()
        self._conn: Connection | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def record(self, new_row: dict) -> int | None:
        """Block until the row is committed; its id, or None for a duplicate."""
        self._ensure_thread()
        pending = _Pending(new_row)
        self._queue.put(pending)
        if not pending.done.wait(WAIT_SECONDS):
            raise InboxUnavailable("the inbox did not commit in time")
        if pending.error is not None:
            raise InboxUnavailable(str(pending.error)) from pending.error
        return pending.event_id

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            with self._lock:  # started lazily: after gunicorn forks, in the process that serves
                if self._thread is None or not self._thread.is_alive():
                    self._thread = threading.Thread(target=self._loop, name="inbox-writer", daemon=True)
                    self._thread.start()

    def _loop(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < MAX_BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            self._commit(batch)

    def _commit(self, batch: list[_Pending]) -> None:
        try:
            if self._conn is None:
                self._conn = self.engine.connect()
            with self._conn.begin():
                ids = insert_rows(self._conn, [p.row for p in batch])
        except Exception as exc:
            log.exception("inbox: could not commit %d deliveries; they are refused (503) for redelivery", len(batch))
            self._reset()
            for pending in batch:
                pending.error = exc
                pending.done.set()
            return
        stores = set()
        for pending in batch:
            # Within one batch a repeated key is inserted once: the first request gets the id.
            key = (pending.row["store_id"], pending.row["dedupe_key"])
            pending.event_id = ids.pop(key, None)
            if pending.event_id is not None and pending.row["status"] == "pending":
                stores.add(pending.row["store_id"])
        if stores:
            # Before answering: when a store gets its 200, the worker has been told (one Redis
            # round trip per batch and store, not per delivery).
            try:
                self.on_stored(stores)
            except Exception:  # the rows are committed; the sweep queues them if Redis is away
                log.exception("inbox: could not wake the workers; the sweep will")
        for pending in batch:
            pending.done.set()

    def _reset(self) -> None:
        if self._conn is not None:
            try:
                self._conn.invalidate()
                self._conn.close()
            except Exception:
                pass
        self._conn = None
