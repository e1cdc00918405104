"""Wake-ups for the workers, debounced: at most one Redis call per store every few milliseconds.

A request thread only marks its store (no I/O on the hot path); this thread sends the wake-ups
(`drains.kick`) for the marked stores, the first at once and then at most every `interval` while
deliveries keep coming. A mark is always followed by a wake-up sent after it, so no committed
event waits for the sweep.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class Waker:
    def __init__(self, wake: Callable[[int], None], interval: float = 0.02):
        self.wake = wake
        self.interval = interval
        self._marked: set[int] = set()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._busy = False

    def mark(self, store_id: int) -> None:
        with self._cond:
            if store_id in self._marked:
                return  # already due in this round: nothing to do on the hot path
            self._marked.add(store_id)
            self._cond.notify_all()
        if self._thread is None or not self._thread.is_alive():
            self._start()

    def flush(self, timeout: float = 5.0) -> None:
        """Wait until every mark so far has had its wake-up (tests and shutdown)."""
        with self._cond:
            self._cond.wait_for(lambda: not self._marked and not self._busy, timeout)

    def _start(self) -> None:
        with self._cond:  # started lazily: after gunicorn forks, in the process that serves
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="waker", daemon=True)
                self._thread.start()

    def _loop(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: bool(self._marked))
                stores, self._marked, self._busy = self._marked, set(), True
            for store_id in stores:
                try:
                    self.wake(store_id)
                except Exception:  # the events are committed; the sweep queues them if Redis is away
                    log.exception("could not wake the workers for store %s; the sweep will", store_id)
            with self._cond:
                self._busy = False
                self._cond.notify_all()
            # Debounce: marks arriving meanwhile are sent together on the next round.
            time.sleep(self.interval)
