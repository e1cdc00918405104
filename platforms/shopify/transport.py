"""The wire to one shop's Admin API: the session and its token, the rate limits, retries and errors.

ShopifyClient (platforms/shopify/api.py) says what to ask; this module sends it. Rate limits are read from
the shop's own signals, never guessed with fixed sleeps (docs/platforms.md#shopify-rate-limits):
- GraphQL: every answer carries `extensions.cost.throttleStatus {maximumAvailable, currentlyAvailable,
  restoreRate}`. Before a call we predict what is available now (last value + restoreRate x elapsed)
  and, if that is less than the call's expected cost, sleep exactly the difference / restoreRate. A
  THROTTLED answer (HTTP 200 or 429) updates that picture and the same loop waits and retries. `fit`
  tells a caller how many items fit in one call when the bucket is smaller than a full page.
- REST: `X-Shopify-Shop-Api-Call-Limit: used/size` is tracked; we wait only when the bucket is full
  (it leaks size/20 per second: 40 -> 2/s, 80 -> 4/s, 400 -> 20/s, as the published plans do) and a 429
  is answered by sleeping its `Retry-After`.
- 5xx and connection errors are retried a few times with jittered exponential backoff, then raised as
  StorefrontError(retryable=True); other 4xx and GraphQL errors as retryable=False. A call its caller
  marks not safe to repeat is never re-sent blindly: a lost answer is raised as retryable.
- A store on app credentials gets its token from a TokenSource, renewed before it expires and once
  after a 401.

The caller's expected cost of a GraphQL call gives way to the cost Shopify reported for the same call
shape once one is seen, so a real shop's cheaper mutations are not over-waited.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypedDict

import requests

from adapters.backoff import backoff
from adapters.clock import utcnow
from adapters.grants import Grant
from adapters.storefront import AccessRevoked, StorefrontError


class QueryTooExpensive(StorefrontError):
    """A call asks for more points than the shop's bucket can ever hold."""

    def __init__(self, message: str, maximum: float | None):
        super().__init__(message, retryable=False)
        self.maximum = maximum


class TokenSource(Protocol):
    """connector.base.tokens.StoreTokens: the token to use now, and a new one after a 401."""

    def current(self) -> tuple[str, Grant | None]: ...

    def renew(self, refused: str) -> tuple[str, Grant | None]: ...


class TransportOptions(TypedDict, total=False):
    """ShopifyTransport's keyword options, as ShopifyClient takes them to pass on."""

    max_retries: int
    retry_base: float
    max_throttle_waits: int
    rest_leak_rate: float | None
    sleep: Callable[[float], None]
    clock: Callable[[], float]
    tokens: TokenSource | None


@dataclass
class ClientStats:
    requests: int = 0  # HTTP requests sent, retries included
    calls: Counter[str] = field(default_factory=Counter)  # per operation (GraphQL root / REST path)
    throttled: int = 0  # THROTTLED or 429 answers received
    waited: float = 0.0  # seconds slept for rate limits (bucket predictions and Retry-After)
    backoff: float = 0.0  # seconds slept after 5xx / connection errors
    retries: int = 0
    cost: float = 0.0  # GraphQL actualQueryCost, summed


@dataclass
class _Budget:
    maximum: float | None = None
    available: float = 0.0
    rate: float = 0.0
    at: float = 0.0


class ShopifyTransport:
    """GraphQL and REST calls to the Admin API at `base` (…/admin/api/<version>). `sleep` and `clock` are
    how waits are spent and time is read (tests give a fake clock's)."""

    def __init__(
        self,
        base: str,
        access_token: str,
        timeout: float = 15,
        *,
        max_retries: int = 3,
        retry_base: float = 0.25,
        max_throttle_waits: int = 20,
        rest_leak_rate: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        tokens: TokenSource | None = None,
    ):
        """`tokens`: where a store on app credentials gets its expiring token (connector.base.tokens); without it,
        `access_token` is a legacy token used as it is."""
        self.base, self.timeout = base, timeout
        self.max_retries, self.retry_base, self.max_throttle_waits = max_retries, retry_base, max_throttle_waits
        self.rest_leak_rate = rest_leak_rate
        self.sleep, self.clock = sleep, clock
        self.session = requests.Session()
        self.session.headers.update(
            {"X-Shopify-Access-Token": access_token, "Accept": "application/json", "Content-Type": "application/json"}
        )
        self.stats = ClientStats()
        self._budget = _Budget()
        self._rest_limit: tuple[float, float, float] | None = None  # used, size, when
        self._learned: dict[tuple[str, int], int] = {}  # (operation, size) -> requestedQueryCost seen
        self._lock = threading.Lock()
        self.tokens, self._token = tokens, access_token
        self._grant: Grant | None = None

    # ---- GraphQL ------------------------------------------------------------------------------

    def fit(self, limit: int, per_item: int, fixed: int) -> int:
        """How many items fit in one call when the bucket is smaller than a full page or batch."""
        maximum = self._budget.maximum
        if maximum is None:
            return limit
        size = min(limit, int((maximum - fixed) // per_item))
        if size < 1:
            raise QueryTooExpensive(
                f"Shopify's query budget ({maximum:g} points) is too small for even one item", maximum
            )
        return size

    def graphql(
        self, op: str, query: str, variables: dict, expected_cost: int, units: int = 0, safe_to_repeat: bool = True
    ) -> dict:
        """POST one GraphQL operation; returns `data`. `expected_cost` (our estimate) is replaced by the
        cost Shopify reported for the same call shape when we have seen one."""
        url = f"{self.base}/graphql.json"
        body = {"query": query, "variables": variables}
        cost = self._learned.get((op, units), expected_cost)
        maximum = self._budget.maximum
        if maximum is not None and cost > maximum:
            raise QueryTooExpensive(f"{op} costs {cost} points; the shop's bucket holds {maximum:g}", maximum)
        throttles = failures = 0
        renewed = False
        while True:
            self._wait(self._points_wait(cost))
            self.stats.calls[op] += 1
            try:
                response = self._post(url, body)
            except requests.RequestException as exc:
                failures = self._failed(op, f"{type(exc).__name__}", failures, safe_to_repeat)
                continue
            if self._token_refused(response, renewed):
                renewed = True  # Shopify refused the request before doing anything: safe to send again
                continue
            if response.status_code >= 500:
                failures = self._failed(op, f"HTTP {response.status_code}", failures, safe_to_repeat)
                continue
            try:
                payload = response.json()
            except ValueError:
                payload = {}
            extensions_cost = (payload.get("extensions") or {}).get("cost") or {}
            if extensions_cost:
                self._note_cost(op, units, extensions_cost)
            errors = payload.get("errors") or []
            codes = {((e.get("extensions") or {}).get("code")) for e in errors if isinstance(e, dict)}
            if response.status_code == 429 or "THROTTLED" in codes:
                self.stats.throttled += 1
                throttles += 1
                if throttles > self.max_throttle_waits:
                    raise StorefrontError(f"Shopify kept throttling {op}", retryable=True)
                requested = extensions_cost.get("requestedQueryCost") or cost
                maximum = self._budget.maximum
                if maximum is not None and requested > maximum:
                    raise QueryTooExpensive(
                        f"{op} costs {requested} points; the shop's bucket holds {maximum:g}", maximum
                    )
                cost = requested
                if not extensions_cost:  # a bare 429: only the header tells how long
                    self._wait(_retry_after(response, 1.0))
                continue
            if response.status_code >= 400:
                raise _http_error(response, f"GraphQL {op}")
            if "MAX_COST_EXCEEDED" in codes:
                raise QueryTooExpensive(f"{op}: {errors[0].get('message')}", self._budget.maximum)
            if errors:
                text = "; ".join(str(e.get("message") if isinstance(e, dict) else e) for e in errors[:3])
                if codes & {"INTERNAL_SERVER_ERROR", "SERVICE_UNAVAILABLE"}:
                    failures = self._failed(op, text, failures, safe_to_repeat)
                    continue
                raise StorefrontError(f"Shopify GraphQL {op} failed: {text}", retryable=False)
            return payload.get("data") or {}

    def _points_wait(self, cost: float) -> float:
        with self._lock:
            b = self._budget
            if b.maximum is None or b.rate <= 0:
                return 0.0
            now_available = min(b.maximum, b.available + b.rate * (self.clock() - b.at))
            return max(0.0, (cost - now_available) / b.rate)

    def _note_cost(self, op: str, units: int, cost: dict) -> None:
        status = cost.get("throttleStatus") or {}
        with self._lock:
            if "currentlyAvailable" in status:
                self._budget = _Budget(
                    float(status["maximumAvailable"]),
                    float(status["currentlyAvailable"]),
                    float(status["restoreRate"]),
                    self.clock(),
                )
            if cost.get("requestedQueryCost") is not None:
                self._learned[(op, units)] = int(cost["requestedQueryCost"])
            if cost.get("actualQueryCost") is not None:
                self.stats.cost += float(cost["actualQueryCost"])

    def _post(self, url: str, body: dict) -> requests.Response:
        self._fresh_token()
        self.stats.requests += 1
        return self.session.post(url, data=json.dumps(body), timeout=self.timeout)

    def _failed(self, op: str, what: str, failures: int, safe_to_repeat: bool) -> int:
        """Count a transport failure; back off and return the new count, or raise when out of tries."""
        failures += 1
        if not safe_to_repeat:
            raise StorefrontError(f"Shopify {op}: {what}; the outcome is unknown, not re-sent", retryable=True)
        if failures > self.max_retries:
            raise StorefrontError(f"Shopify {op}: {what} after {failures} tries", retryable=True)
        self.stats.retries += 1
        delay = backoff(failures, self.retry_base, cap=10.0, jitter=(0.5, 1.5))
        self.stats.backoff += delay
        self.sleep(delay)
        return failures

    # ---- tokens (stores on app credentials) ----------------------------------------------------

    def _fresh_token(self) -> None:
        """Before a call: a store on app credentials renews a token about to expire."""
        if self.tokens is not None and (
            not self._token or (self._grant is not None and not self._grant.fresh(utcnow()))
        ):
            self._use(*self.tokens.current())

    def _token_refused(self, response: requests.Response, renewed: bool) -> bool:
        """After a 401: True when a new token is in place for one more try (once per call)."""
        if response.status_code != 401 or self.tokens is None or renewed:
            return False
        self._use(*self.tokens.renew(self._token))
        return True

    def _use(self, token: str, grant: Grant | None) -> None:
        self._token, self._grant = token, grant
        self.session.headers["X-Shopify-Access-Token"] = token

    def _wait(self, seconds: float) -> None:
        if seconds > 0:
            self.stats.waited += seconds
            self.sleep(seconds)

    # ---- REST ---------------------------------------------------------------------------------

    def _rest_wait(self) -> float:
        with self._lock:
            if self._rest_limit is None:
                return 0.0
            used, size, at = self._rest_limit
            leak = self.rest_leak_rate or size / 20
            level = max(0.0, used - leak * (self.clock() - at))
            return max(0.0, (level + 1 - size) / leak)

    def rest(
        self, method: str, url: str, params: dict | None = None, json_body: Any = None, op: str = ""
    ) -> requests.Response:
        """Send one REST request and return its answer, after waiting for the call-limit bucket. Only GET
        and DELETE are sent again after a 5xx or a lost connection: the others may have been applied."""
        throttles = failures = 0
        renewed = False
        while True:
            self._wait(self._rest_wait())
            self.stats.calls[op or f"{method} {url}"] += 1
            self.stats.requests += 1
            self._fresh_token()
            try:
                response = self.session.request(
                    method,
                    url,
                    params=params,
                    timeout=self.timeout,
                    data=None if json_body is None else json.dumps(json_body),
                )
            except requests.RequestException as exc:
                failures = self._failed(op, type(exc).__name__, failures, method in ("GET", "DELETE"))
                continue
            if self._token_refused(response, renewed):
                renewed = True
                continue
            limit = response.headers.get("X-Shopify-Shop-Api-Call-Limit")
            if limit and "/" in limit:
                used, size = limit.split("/", 1)
                with self._lock:
                    self._rest_limit = (float(used), float(size), self.clock())
            if response.status_code == 429:
                self.stats.throttled += 1
                throttles += 1
                if throttles > self.max_throttle_waits:
                    raise StorefrontError(f"Shopify kept answering 429 to {op}", retryable=True)
                self._wait(_retry_after(response, 2.0))  # Shopify's usual value when the header is missing
                continue
            if response.status_code >= 500:
                failures = self._failed(op, f"HTTP {response.status_code}", failures, method in ("GET", "DELETE"))
                continue
            if response.status_code >= 400:
                raise _http_error(response, op)
            return response


def _retry_after(response: requests.Response, default: float) -> float:
    try:
        return max(0.0, float(response.headers.get("Retry-After", "")))
    except ValueError:
        return default


def _http_error(response: requests.Response, what: str) -> StorefrontError:
    try:
        errors = response.json().get("errors")
    except ValueError:
        errors = response.text[:200]
    if response.status_code == 401:
        return AccessRevoked(
            f"Shopify refused our access token (401) for {what}: {errors}; the app was "
            "uninstalled or the token revoked: check the store's credentials on /config"
        )
    if response.status_code == 403:
        return StorefrontError(
            f"Shopify refused our access token ({response.status_code}) for {what}: {errors}; "
            "check the store's token and scopes on /config",
            retryable=False,
        )
    return StorefrontError(f"Shopify answered {response.status_code} to {what}: {errors}", retryable=False)
