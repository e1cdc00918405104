"""The retry loop of the storefront REST clients whose stores say when to come back with Retry-After
(WooCommerce's hosts, Magento): one request, a 429 waiting its Retry-After, 5xx answers and connection
errors backed off when repeating the request is harmless. Whatever is left is returned for the client to
map into data or a StorefrontError."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import requests

from adapters.backoff import backoff
from adapters.storefront import StorefrontError


@dataclass
class HttpStats:
    requests: int = 0  # HTTP requests sent, retries included
    calls: Counter[str] = field(default_factory=Counter)  # per endpoint ("POST products/batch", "GET orders")
    throttled: int = 0  # 429 answers
    waited: float = 0.0  # seconds slept on Retry-After
    backoff: float = 0.0  # seconds slept after 5xx / connection errors
    retries: int = 0


class RetryingHttp:
    """Mixed into a client that sets these attributes (its constructor's patience)."""

    stats: HttpStats
    max_retries: int
    retry_base: float
    max_throttle_waits: int
    max_retry_after: float
    _sleep: Callable[[float], None]

    def _retrying(
        self, send: Callable[[], requests.Response], name: str, safe_to_repeat: bool, unreachable: str
    ) -> requests.Response:
        """`send` once, and again as the answer allows; `unreachable` says which store and call failed."""
        throttles = failures = 0
        while True:
            self.stats.calls[name] += 1
            self.stats.requests += 1
            try:
                response = send()
            except requests.RequestException as exc:
                failures += 1
                if not safe_to_repeat or failures > self.max_retries:
                    raise StorefrontError(f"{unreachable}: {type(exc).__name__}", retryable=True) from exc
                self._pause(failures)
                continue
            if response.status_code == 429:
                self.stats.throttled += 1
                throttles += 1
                wait = retry_after(response)
                if throttles > self.max_throttle_waits or wait is None or wait > self.max_retry_after:
                    return response  # the client makes it a retryable StorefrontError for the job queue
                self.stats.waited += wait
                self._sleep(wait)
                continue
            if response.status_code >= 500 and safe_to_repeat and failures < self.max_retries:
                failures += 1
                self._pause(failures)
                continue
            return response

    def _pause(self, failures: int) -> None:
        """Wait before trying a failed request again, and count the wait."""
        self.stats.retries += 1
        delay = backoff(failures, self.retry_base, cap=10.0, jitter=(0.5, 1.5))
        self.stats.backoff += delay
        self._sleep(delay)


def retry_after(response: requests.Response) -> float | None:
    """Retry-After in seconds (None: absent, or an HTTP date: the wait is left to the job queue)."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def route(path: str) -> str:
    """products/123/variations/batch -> products/<id>/variations/batch, for per-endpoint counters."""
    return "/".join("<id>" if part.isdigit() else part for part in path.split("/"))
