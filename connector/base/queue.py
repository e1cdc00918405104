"""The job queue: RQ on Redis when REDIS_URL is set, else a small in-process queue for trying out.

Both carry only wake-ups and ids, never payloads: the database says what is pending, so losing
the queue (a flushed Redis, a restarted process) loses no event; the sweep re-enqueues it.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from redis import Redis
from rq import Queue, SimpleWorker
from rq.exceptions import DuplicateJobError
from rq.job import Job
from rq.rate_limit import RateLimit

from adapters.clock import utcnow

log = logging.getLogger(__name__)


class JobQueue(Protocol):
    def enqueue(
        self,
        func: Callable[..., Any],
        *args: Any,
        job_id: str | None = None,
        at: datetime | None = None,
        limit: tuple[str, int] | None = None,
        timeout: int | None = None,
    ) -> None:
        """Queue `func(*args)`, to run at once or, given `at`, not before then. `limit` = (key, n): at most
        n jobs with that key queued or running at once, across every worker (RQ's RateLimit); `timeout`:
        seconds the job may run."""

    def scheduled(self) -> list[tuple[datetime, str, tuple]]:
        """The jobs waiting for their time: (when, function's dotted name, args), soonest first."""

    def claim_flag(self, key: str, ttl_seconds: int) -> bool:
        """Set `key` unless it is set; True when this caller set it (a cheap "already scheduled?")."""

    def clear_flag(self, key: str) -> None: ...

    def ping(self) -> bool: ...


class RedisJobQueue:
    def __init__(self, redis: Redis, name: str):
        self.redis = redis
        self.queue = Queue(name, connection=redis)

    def enqueue(
        self,
        func: Callable[..., Any],
        *args: Any,
        job_id: str | None = None,
        at: datetime | None = None,
        limit: tuple[str, int] | None = None,
        timeout: int | None = None,
    ) -> None:
        options: dict[str, Any] = {"result_ttl": 60, "failure_ttl": 7 * 86400}
        if timeout is not None:
            options["job_timeout"] = timeout
        if limit is not None:
            # RQ refuses `unique` on rate-limited jobs; a second copy is harmless (the event claim decides).
            options["rate_limit"] = RateLimit(*limit)
        elif job_id:
            options.update(job_id=job_id, unique=True)
        try:
            if at is not None and at > utcnow():
                self.queue.enqueue_at(at, func, *args, **options)
            else:
                self.queue.enqueue(func, *args, **options)
        except DuplicateJobError:
            pass  # the same wake-up is already queued

    def scheduled(self) -> list[tuple[datetime, str, tuple]]:
        registry = self.queue.scheduled_job_registry
        jobs = Job.fetch_many(registry.get_job_ids(), connection=self.redis)
        found = [
            (registry.get_scheduled_time(job), str(job.func_name), tuple(job.args)) for job in jobs if job is not None
        ]
        return sorted(found, key=lambda item: item[0])

    def claim_flag(self, key: str, ttl_seconds: int) -> bool:
        return bool(self.redis.set(key, b"1", nx=True, ex=ttl_seconds))

    def clear_flag(self, key: str) -> None:
        self.redis.delete(key)

    def ping(self) -> bool:
        return bool(self.redis.ping())


class BurstWorker(SimpleWorker):
    """RQ's worker without its pubsub channel for commands (stop a job, stop the worker), for a run that
    ends as soon as the queue is empty, so no command could reach it anyway. The channel's thread is
    what made such a run wait up to 60 s after its last job before exiting (RQ 3 polls it every 60 s)."""

    def subscribe(self) -> None:
        pass


class EmbeddedJobQueue:
    """One background thread running jobs in time order, on the connector's clock.

    For the embedded defaults only (one process, nothing to install). `run_until_idle()` lets
    tests and the demo drain it synchronously instead of starting the thread.
    """

    def __init__(self) -> None:
        self._heap: list[tuple[datetime, int, str | None, Callable[..., Any], tuple]] = []
        self._ids: set[str] = set()
        self._flags: dict[str, float] = {}
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopping = False

    def enqueue(
        self,
        func: Callable[..., Any],
        *args: Any,
        job_id: str | None = None,
        at: datetime | None = None,
        limit: tuple[str, int] | None = None,
        timeout: int | None = None,
    ) -> None:
        # One thread runs every job here: the concurrency limit and the timeout have nothing to do.
        with self._cond:
            if job_id is not None and job_id in self._ids:
                return
            if job_id is not None:
                self._ids.add(job_id)
            heapq.heappush(self._heap, (at or utcnow(), next(self._seq), job_id, func, args))
            self._cond.notify()

    def scheduled(self) -> list[tuple[datetime, str, tuple]]:
        with self._cond:
            now = utcnow()
            waiting = sorted((item for item in self._heap if item[0] > now), key=lambda item: item[:2])
        return [(at, f"{func.__module__}.{func.__qualname__}", args) for at, _, _, func, args in waiting]

    def claim_flag(self, key: str, ttl_seconds: int) -> bool:
        with self._cond:
            now = time.monotonic()
            if self._flags.get(key, 0) > now:
                return False
            self._flags[key] = now + ttl_seconds
            return True

    def clear_flag(self, key: str) -> None:
        with self._cond:
            self._flags.pop(key, None)

    def ping(self) -> bool:
        return True

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="embedded-queue", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def run_until_idle(self) -> int:
        """Run every due job; return how many ran."""
        ran = 0
        while True:
            with self._cond:
                if not self._heap or self._heap[0][0] > utcnow():
                    return ran
                item = heapq.heappop(self._heap)
            self._run(item)
            ran += 1

    def pending(self) -> int:
        with self._cond:
            return len(self._heap)

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._stopping and (not self._heap or self._heap[0][0] > utcnow()):
                    timeout = (self._heap[0][0] - utcnow()).total_seconds() if self._heap else None
                    self._cond.wait(timeout)
                if self._stopping:
                    return
                item = heapq.heappop(self._heap)
            self._run(item)

    def _run(self, item: tuple) -> None:
        _, _, job_id, func, args = item
        with self._cond:
            self._ids.discard(job_id)
        try:
            func(*args)
        except Exception:
            log.exception("job %s failed", func.__name__)
