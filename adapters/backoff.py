"""Jittered exponential backoff: how long to wait before trying again, for every retry in the connector.

The storefront and ERP clients retry inside a call (seconds), the pipeline between an event's attempts
(minutes); both draw their waits here. It lives in adapters/ because the clients may not import the core,
while the core may import adapters.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

UPPER_HALF = (0.5, 1.0)  # the default jitter: at least half the step, at most the step


def backoff(
    attempt: int,
    base: float,
    cap: float = math.inf,
    jitter: tuple[float, float] = UPPER_HALF,
    draw: Callable[[float, float], float] = random.uniform,
) -> float:
    """Seconds to wait after failed try number `attempt` (1 for the first): the step base·2^(attempt−1),
    capped at `cap`, times a factor drawn from `jitter` by `draw`; never more than `cap`."""
    step = min(cap, base * 2.0 ** min(max(attempt - 1, 0), 64))  # 2^64 is past any cap
    return min(cap, step * draw(*jitter))
