"""A BigCommerce store's REST API (V2 orders and shipments, V3 catalog, inventory, refunds and hooks).

Our own thin client over `requests`, not PyPI's `bigcommerce` (0.23): that one predates the V3 inventory
API (absolute adjustments per location) and the refunds API, and its rate-limit handling sleeps without
bound; what we need of it is a dozen calls.

Every request carries `X-Auth-Token`. BigCommerce meters calls per store in a window and says where a
client stands on every answer (`X-Rate-Limit-Requests-Left`, `X-Rate-Limit-Time-Reset-Ms`): when the
window is spent, the next call waits for it to reset instead of meeting a 429; a 429 itself waits the
reset it names. 5xx answers and connection errors are tried again with backoff when repeating is harmless.
A V2 list answers 204 with no body when it is empty.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any

import requests

from adapters.backoff import backoff
from adapters.storefront import AccessRevoked, StorefrontError

API_URL = "https://api.bigcommerce.com"
V2_PAGE = 250  # V2 lists: limit at most 250
V3_PAGE = 250
ADJUSTMENT_BATCH = 2000  # items in one absolute inventory adjustment (the documented maximum)


@dataclass
class BigCommerceStats:
    requests: int = 0
    calls: Counter[str] = field(default_factory=Counter)  # per endpoint ("PUT v3/inventory/adjustments/absolute")
    throttled: int = 0  # 429 answers
    waited: float = 0.0  # seconds slept for the rate limit's window
    retries: int = 0


class BigCommerceClient:
    def __init__(
        self,
        store_hash: str,
        token: str,
        api_url: str = API_URL,
        timeout: float = 15,
        *,
        max_retries: int = 3,
        retry_base: float = 0.5,
        max_wait: float = 30,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.base = f"{api_url.rstrip('/')}/stores/{store_hash}/"
        self.store_hash = store_hash
        self.session = requests.Session()
        self.session.headers.update({"X-Auth-Token": token, "Accept": "application/json"})
        self.timeout, self.max_retries, self.retry_base, self.max_wait = timeout, max_retries, retry_base, max_wait
        self.stats = BigCommerceStats()
        self._sleep = sleep
        self._spent_until: float | None = None  # the window is spent until this monotonic time

    # ---- orders (V2) ----------------------------------------------------------------------------

    def order(self, order_id: int | str) -> dict | None:
        """The order with its products, shipping addresses, coupons and taxes embedded (None: no such order)."""
        order = self._json("GET", f"v2/orders/{order_id}", name="GET v2/orders/<id>", missing_ok=True)
        if order is None:
            return None
        for part in ("products", "shipping_addresses", "coupons", "taxes"):
            order[part] = list(self._v2_pages(f"v2/orders/{order_id}/{part}", f"GET v2/orders/<id>/{part}"))
        return order

    def orders_modified_since(self, since: datetime, page_size: int | None = None) -> Iterator[dict]:
        """Orders modified at or after `since`, oldest change first, each read whole (as `order()`).

        Paged by time, not page number: an order modified while we page moves to the end of the list and
        would push an unread one back onto a page already read. So after each full page the listing starts
        again from its last order's modification second, skipping the orders already given (a page number
        only moves on when a whole page shares one second)."""
        limit, floor, page = page_size or V2_PAGE, since, 1
        given: set[int] = set()
        while True:
            params = {"min_date_modified": format_datetime(floor, usegmt=True), "sort": "date_modified:asc"}
            found = self._json(
                "GET", "v2/orders", params={**params, "page": page, "limit": limit}, name="GET v2/orders"
            )
            found = found or []  # 204: nothing (more)
            for summary in found:
                if summary["id"] in given:
                    continue
                given.add(summary["id"])
                full = self.order(summary["id"])
                if full is not None:
                    yield full
            if len(found) < limit:
                return
            last = parsedate_to_datetime(str(found[-1]["date_modified"]))
            floor, page = (floor, page + 1) if last <= floor else (last, 1)

    def order_status(self, order_id: int | str) -> dict | None:
        return self._json("GET", f"v2/orders/{order_id}", name="GET v2/orders/<id>", missing_ok=True)

    def update_order(self, order_id: int | str, fields: dict[str, Any]) -> dict:
        """Change an order (its status, its staff notes); setting the same values again changes nothing."""
        return self._json("PUT", f"v2/orders/{order_id}", fields, name="PUT v2/orders/<id>", safe=True) or {}

    def installed(self) -> bool:
        """Whether our token still opens the store (False: the app or API account is gone, 401)."""
        try:
            self.locations()
        except AccessRevoked:
            return False
        return True

    def refunds(self, order_id: int | str) -> list[dict]:
        return list(self._v3_pages(f"v3/orders/{order_id}/payment_actions/refunds", "GET v3/orders/<id>/refunds"))

    # ---- shipments (V2) ---------------------------------------------------------------------------

    def shipments(self, order_id: int | str) -> list[dict]:
        return list(self._v2_pages(f"v2/orders/{order_id}/shipments", "GET v2/orders/<id>/shipments"))

    def create_shipment(
        self,
        order_id: int | str,
        order_address_id: int,
        items: Sequence[tuple[int, int]],
        tracking_number: str,
        carrier: str,
        comments: str,
    ) -> dict:
        body = {
            "order_address_id": order_address_id,
            "items": [{"order_product_id": pid, "quantity": qty} for pid, qty in items],
            "tracking_number": tracking_number,
            "tracking_carrier": carrier,
            "comments": comments,
        }
        made = self._json("POST", f"v2/orders/{order_id}/shipments", body, name="POST v2/orders/<id>/shipments")
        return made or {}

    # ---- catalog and inventory (V3) ---------------------------------------------------------------

    def variants(self, skus: Sequence[str] | None = None) -> list[dict]:
        """Catalog variants (every one, or those with these SKUs): {id, product_id, sku, inventory_level...}."""
        if skus is None:
            return list(self._v3_pages("v3/catalog/variants", "GET v3/catalog/variants"))
        found: list[dict] = []
        for i in range(0, len(skus), 50):  # a filter's values travel in the URL
            part = ",".join(skus[i : i + 50])
            found += self._v3_pages("v3/catalog/variants", "GET v3/catalog/variants", {"sku:in": part})
        return found

    def locations(self) -> list[dict]:
        return list(self._v3_pages("v3/inventory/locations", "GET v3/inventory/locations"))

    def set_stock(self, items: Sequence[tuple[int, int, int]], reason: str) -> int:
        """Absolute stock (variant id, location id, quantity) in batches; the number of calls made."""
        calls = 0
        for i in range(0, len(items), ADJUSTMENT_BATCH):
            body = {
                "reason": reason,
                "items": [
                    {"location_id": loc, "variant_id": variant, "quantity": qty}
                    for variant, loc, qty in items[i : i + ADJUSTMENT_BATCH]
                ],
            }
            # Absolute figures: sending them twice leaves the same stock, so a retry is harmless.
            self._json(
                "PUT",
                "v3/inventory/adjustments/absolute",
                body,
                name="PUT v3/inventory/adjustments/absolute",
                safe=True,
            )
            calls += 1
        return calls

    # ---- webhooks (V3 hooks) ----------------------------------------------------------------------

    def hooks(self) -> list[dict]:
        return list(self._v3_pages("v3/hooks", "GET v3/hooks"))

    def create_hook(self, scope: str, destination: str, headers: dict[str, str]) -> dict:
        body = {"scope": scope, "destination": destination, "is_active": True, "headers": headers}
        return (self._json("POST", "v3/hooks", body, name="POST v3/hooks") or {}).get("data") or {}

    def update_hook(self, hook_id: int | str, **fields: Any) -> dict:
        return (self._json("PUT", f"v3/hooks/{hook_id}", fields, name="PUT v3/hooks/<id>", safe=True) or {}).get(
            "data"
        ) or {}

    def delete_hook(self, hook_id: int | str) -> None:
        self._json("DELETE", f"v3/hooks/{hook_id}", name="DELETE v3/hooks/<id>", safe=True, missing_ok=True)

    # ---- plumbing ---------------------------------------------------------------------------------

    def _v2_pages(self, path: str, name: str, params: dict | None = None, limit: int = V2_PAGE) -> Iterator[dict]:
        page = 1
        while True:
            items = self._json("GET", path, params={**(params or {}), "page": page, "limit": limit}, name=name)
            if not items:  # 204: past the last page
                return
            yield from items
            if len(items) < limit:
                return
            page += 1

    def _v3_pages(self, path: str, name: str, params: dict | None = None) -> Iterator[dict]:
        page = 1
        while True:
            body = self._json("GET", path, params={**(params or {}), "page": page, "limit": V3_PAGE}, name=name) or {}
            yield from body.get("data") or []
            pagination = (body.get("meta") or {}).get("pagination") or {}
            if page >= int(pagination.get("total_pages") or 1):
                return
            page += 1

    def _json(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        params: dict | None = None,
        name: str,
        safe: bool | None = None,
        missing_ok: bool = False,
    ) -> Any:
        response = self._call(method, path, body, params, name, method == "GET" if safe is None else safe)
        if response.status_code == 404 and missing_ok:
            return None
        if response.status_code == 401:
            raise AccessRevoked(f"BigCommerce refused the store's API token (401) for {name}: reconnect the store")
        if response.status_code >= 400:
            raise StorefrontError(
                f"BigCommerce answered {response.status_code} to {name}: {_message(response)}",
                retryable=response.status_code == 429 or response.status_code >= 500,
            )
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    def _call(self, method: str, path: str, body: Any, params: dict | None, name: str, safe: bool) -> requests.Response:
        failures = throttles = 0
        while True:
            self._wait_for_window()
            self.stats.calls[name] += 1
            self.stats.requests += 1
            try:
                response = self.session.request(
                    method, self.base + path, json=body, params=params, timeout=self.timeout
                )
            except requests.RequestException as exc:
                failures += 1
                if not safe or failures > self.max_retries:
                    raise StorefrontError(
                        f"BigCommerce unreachable for {name}: {type(exc).__name__}", retryable=True
                    ) from exc
                self._pause(failures)
                continue
            self._note_window(response)
            if response.status_code == 429 and throttles < self.max_retries:
                self.stats.throttled += 1
                throttles += 1
                self._wait(_reset_seconds(response) or 1.0)
                continue
            if response.status_code >= 500 and safe and failures < self.max_retries:
                failures += 1
                self._pause(failures)
                continue
            return response

    def _note_window(self, response: requests.Response) -> None:
        left, reset = response.headers.get("X-Rate-Limit-Requests-Left"), _reset_seconds(response)
        if left is not None and left.strip().isdigit() and int(left) <= 0 and reset is not None:
            self._spent_until = time.monotonic() + reset

    def _wait_for_window(self) -> None:
        if self._spent_until is not None:
            wait, self._spent_until = self._spent_until - time.monotonic(), None
            if wait > 0:
                self._wait(wait)

    def _wait(self, seconds: float) -> None:
        seconds = min(seconds, self.max_wait)
        self.stats.waited += seconds
        self._sleep(seconds)

    def _pause(self, failures: int) -> None:
        self.stats.retries += 1
        self._sleep(backoff(failures, self.retry_base, cap=10.0, jitter=(0.5, 1.5)))


def _reset_seconds(response: requests.Response) -> float | None:
    value = response.headers.get("X-Rate-Limit-Time-Reset-Ms")
    try:
        return max(0.0, int(str(value)) / 1000) if value is not None else None
    except ValueError:
        return None


def _message(response: requests.Response) -> str:
    """BigCommerce's own words: V3 {title, errors}, V2 [{status, message}]."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200] or response.reason
    if isinstance(body, list) and body and isinstance(body[0], dict):
        return str(body[0].get("message") or body[0])[:300]
    if isinstance(body, dict):
        detail = body.get("title") or body.get("message") or ""
        errors = body.get("errors")
        return f"{detail} {errors}".strip()[:300] if errors else str(detail)[:300]
    return str(body)[:300]
