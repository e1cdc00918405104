"""A clock that moves only when someone sleeps on it: tests assert the waits a client asked for, not how
long a loaded machine took to get through them.

Give a client `sleep=clock.sleep` (and `clock=clock` where it reads a monotonic clock) and, where a fake
server keeps time too (the fake Shopify's rate-limit buckets), the same clock: then a client waiting for
points finds them restored by exactly the time it slept, and `clock.slept` lists every wait in order.
"""

from __future__ import annotations

import threading


class FakeClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.slept: list[float] = []
        self._lock = threading.Lock()

    def __call__(self) -> float:
        """Now, in seconds: a stand-in for time.monotonic."""
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        """A stand-in for time.sleep: returns at once, with the clock that much later."""
        with self._lock:
            self.slept.append(seconds)
            self.now += max(0.0, seconds)

    @property
    def waited(self) -> float:
        return sum(self.slept)
