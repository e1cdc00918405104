"""Magento 2 (Open Source and Adobe Commerce) REST client: orders, credit memos, MSI stock and shipments.

What it relies on (checked against magento/magento2 and its issue tracker):
- An integration's access token as `Authorization: Bearer`. Since 2.4.4 the store must allow that
  (Stores > Configuration > Services > OAuth > Consumer Settings > "Allow OAuth Access Tokens to be used as
  standalone Bearer tokens"); otherwise the request is treated as a guest's and refused with 401, exactly
  like a token whose integration lacks the resource. So every 401 says both.
- Lists take `searchCriteria`: filter groups are ANDed, the filters inside one group ORed; the answer is
  `{items, search_criteria, total_count}`. A currentPage past the end answers the LAST page again up to
  2.3 (Framework\\Data\\Collection::getCurPage clamps; magento/magento2#3787) and an empty page since
  2.4.0 (#26986: the clamp moved to a storefront plugin that webapi_rest disables). Paging therefore
  stops on total_count (or a short page), never on "the page was not empty".
- Orders are listed by keyset, not by page number: `updated_at >= t` and `(updated_at > t OR entity_id >
  id)` after the last order seen, sorted updated_at then entity_id, always page 1. With page numbers an
  order updated while we page moves to the end and shifts every later order back one place, so one
  order is skipped in this pass and the poll cursor may pass it for good.
- Times are UTC, 'YYYY-MM-DD HH:MM:SS' (the database's own; the filter value is compared as it is).
- Errors: `{"message": "... %1 ... %fieldName", "parameters": [...] or {...}}`.
- A shipment's comments are not loaded by GET /V1/shipments (they come back null: #4318); they are read
  from GET /V1/shipment/{id}/comments. POST /V1/order/{id}/ship always stores its `comment` on the
  shipment; `appendComment` only puts it in the customer's e-mail, which we never want for an ERP ref.

Reads and idempotent writes (stock figures, cancel) are retried on 5xx and connection errors with
jittered backoff; a shipment or an order comment is never re-sent after a lost answer (the caller looks
for it first: `find_shipment`).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import requests

from adapters.http_retry import HttpStats, RetryingHttp
from adapters.http_retry import route as route_of
from adapters.storefront import AccessRevoked, StorefrontError
from mappings.utc import as_utc

PAGE_SIZE = 100
SKUS_PER_QUERY = 50  # a `sku in a,b,...` filter travels in the URL
SOURCE_ITEMS_PER_SAVE = 100
MAGENTO_TIME = "%Y-%m-%d %H:%M:%S"
BEARER_HINT = (
    "check that the integration is active and its access token is the one saved here, that its API "
    "resources include sales, inventory and shipments, and that the store lets integration tokens be used "
    "as bearer tokens (Stores > Configuration > Services > OAuth > Consumer Settings > Allow OAuth Access "
    "Tokens to be used as standalone Bearer tokens: Yes; Magento 2.4.4 and later refuse them by default)"
)

Filter = tuple[str, object, str]  # field, value, condition_type (eq, gt, gteq, lt, lteq, in, neq...)


@dataclass
class MagentoStats(HttpStats):
    """Requests, throttles and waits so far, per route ("GET orders", "POST order/<id>/ship")."""


def magento_time(value: datetime) -> str:
    """A timezone-aware time as Magento stores and filters it: UTC, to the second."""
    if value.tzinfo is None:
        raise ValueError("Magento times are compared in UTC: give a timezone-aware time")
    return as_utc(value).strftime(MAGENTO_TIME)


def search_params(
    groups: Sequence[Sequence[Filter]],
    sort: Sequence[tuple[str, str]] = (),
    page_size: int | None = None,
    current_page: int | None = None,
) -> list[tuple[str, str]]:
    """searchCriteria as PHP-style query parameters: each group ANDed, the filters in a group ORed."""
    params: list[tuple[str, str]] = []
    for g, group in enumerate(groups):
        for f, (name, value, condition) in enumerate(group):
            prefix = f"searchCriteria[filter_groups][{g}][filters][{f}]"
            params += [(f"{prefix}[field]", name), (f"{prefix}[value]", str(value))]
            params.append((f"{prefix}[condition_type]", condition))
    for s, (name, direction) in enumerate(sort):
        params += [(f"searchCriteria[sortOrders][{s}][field]", name)]
        params += [(f"searchCriteria[sortOrders][{s}][direction]", direction)]
    if page_size is not None:
        params.append(("searchCriteria[pageSize]", str(page_size)))
    if current_page is not None:
        params.append(("searchCriteria[currentPage]", str(current_page)))
    if not params:
        params.append(("searchCriteria", ""))  # Magento wants the key even when nothing is filtered
    return params


def filled(message: str, parameters: object) -> str:
    """Magento's message with its %1 / %name placeholders filled in from `parameters`."""
    if isinstance(parameters, list):
        named = {str(i + 1): value for i, value in enumerate(parameters)}
    elif isinstance(parameters, dict):
        named = {str(k): v for k, v in parameters.items()}
    else:
        return message
    return re.sub(r"%(\w+)", lambda m: str(named[m.group(1)]) if m.group(1) in named else m.group(0), message)


class MagentoClient(RetryingHttp):
    def __init__(
        self,
        base_url: str,
        token: str,
        timeout: float = 15,
        *,
        store_code: str | None = None,
        max_retries: int = 3,
        retry_base: float = 0.5,
        max_throttle_waits: int = 3,
        max_retry_after: float = 60,
        page_size: int = PAGE_SIZE,
        sleep: Callable[[float], None] = time.sleep,
        session: requests.Session | None = None,
    ):
        scope = f"/{store_code.strip('/')}" if store_code else ""
        self.base_url = base_url.rstrip("/")
        self.api = f"{self.base_url}/rest{scope}/V1"
        self.timeout = timeout
        self.max_retries, self.retry_base = max_retries, retry_base
        self.max_throttle_waits, self.max_retry_after = max_throttle_waits, max_retry_after
        self.page_size = page_size
        self.stats = MagentoStats()
        self._sleep = sleep
        self._http = session or requests.Session()
        self._http.headers.update(
            {"Authorization": f"Bearer {token}", "Accept": "application/json", "Content-Type": "application/json"}
        )

    # ---- orders ---------------------------------------------------------------------------------

    def orders_updated_since(self, since: datetime, page_size: int | None = None) -> Iterator[dict]:
        """Every order updated at or after `since`, oldest change first (then by entity_id), each once."""
        size = page_size or self.page_size
        start = magento_time(since)
        last: tuple[str, int] | None = None
        while True:
            groups: list[list[Filter]] = [[("updated_at", last[0] if last else start, "gteq")]]
            if last is not None:
                groups.append([("updated_at", last[0], "gt"), ("entity_id", last[1], "gt")])
            sort = [("updated_at", "ASC"), ("entity_id", "ASC")]
            body = self._get("orders", search_params(groups, sort, size, 1), route="GET orders")
            items, total = _page(body, "GET orders")
            for order in items:
                key = (str(order.get("updated_at") or ""), int(order.get("entity_id") or 0))
                if last is not None and key <= last:
                    raise StorefrontError(
                        f"Magento at {self.base_url} listed order {key[1]} (updated {key[0]}) again after "
                        f"order {last[1]} (updated {last[0]}): it did not apply the search filters, so the "
                        "listing stops here rather than loop",
                        retryable=False,
                    )
                last = key
                yield order
            if not items or len(items) >= total:
                return

    def order(self, entity_id: int | str) -> dict | None:
        """The order, or None when the store has no order of that id."""
        response = self._call("GET", f"orders/{int(entity_id)}", route="GET orders/<id>")
        if response.status_code == 404 and _json_message(response) is not None:
            return None  # (a 404 without Magento's JSON is a wrong base URL, and raised below)
        return _body(response, f"GET orders/{entity_id}", self.base_url)

    def creditmemos(self, order_id: int | str) -> list[dict]:
        """The order's credit memos (its refunds), oldest first."""
        return list(self.search("creditmemos", [[("order_id", int(order_id), "eq")]], [("entity_id", "ASC")]))

    def cancel(self, order_id: int | str) -> bool:
        """Cancel the order; False when Magento would not (already cancelled, invoiced in full, shipped)."""
        return bool(self._json("POST", f"orders/{int(order_id)}/cancel", route="POST orders/<id>/cancel"))

    def add_comment(self, order_id: int | str, text: str) -> bool:
        """A comment in the order's history, for the merchant only (no e-mail). Never re-sent after a lost
        answer: a repeat would show twice."""
        history = {
            "comment": text,
            "is_customer_notified": 0,
            "is_visible_on_front": 0,
            "parent_id": int(order_id),
        }
        return bool(
            self._json(
                "POST",
                f"orders/{int(order_id)}/comments",
                data={"statusHistory": history},
                route="POST orders/<id>/comments",
                safe_to_repeat=False,
            )
        )

    # ---- shipments ------------------------------------------------------------------------------

    def shipments(self, order_id: int | str) -> list[dict]:
        """The order's shipments, each with its `comments` read (the list endpoint leaves them out)."""
        found = list(self.search("shipments", [[("order_id", int(order_id), "eq")]], [("entity_id", "ASC")]))
        for shipment in found:
            if not shipment.get("comments"):
                body = self._get(
                    f"shipment/{int(shipment['entity_id'])}/comments",
                    search_params([]),
                    route="GET shipment/<id>/comments",
                )
                shipment["comments"] = _page(body, "GET shipment/<id>/comments")[0]
        return found

    def find_shipment(self, order_id: int | str, ref: str) -> dict | None:
        """The order's shipment whose comment carries `ref` (an ERP shipment's), or None."""
        for shipment in self.shipments(order_id):
            if any(ref in str(c.get("comment") or "") for c in shipment.get("comments") or []):
                return shipment
        return None

    def ship(
        self,
        order_id: int | str,
        items: Sequence[tuple[int | str, int | Decimal]],
        tracks: Sequence[tuple[str, str, str]] = (),
        comment: str = "",
        notify: bool = False,
    ) -> int:
        """Ship (order_item_id, qty) of the order with (number, title, carrier_code) tracks; the shipment id.
        `comment` stays on the shipment for the merchant (readable back through `shipments`); `notify`
        sends Magento's shipment e-mail. Not idempotent: never re-sent after a lost answer."""
        data: dict[str, Any] = {
            "items": [{"order_item_id": int(item), "qty": _number(qty)} for item, qty in items],
            "notify": notify,
            "appendComment": False,
            "tracks": [{"track_number": n, "title": t, "carrier_code": c} for n, t, c in tracks],
        }
        if comment:
            data["comment"] = {"comment": comment, "is_visible_on_front": 0}
        answer = self._json(
            "POST", f"order/{int(order_id)}/ship", data=data, route="POST order/<id>/ship", safe_to_repeat=False
        )
        try:
            return int(answer)
        except (TypeError, ValueError):
            raise StorefrontError(
                f"Magento shipped order {order_id} but answered {str(answer)[:80]!r}, not a shipment id",
                retryable=False,
            ) from None

    # ---- MSI stock ------------------------------------------------------------------------------

    def sources(self) -> list[dict]:
        """The inventory sources (MSI): source_code, name, enabled..."""
        return list(self.search("inventory/sources", []))

    def source_items(self, skus: Iterable[str]) -> list[dict]:
        """{sku, source_code, quantity, status} of these SKUs at every source they are assigned to."""
        wanted = sorted({s for s in skus if s})
        found: list[dict] = []
        for i in range(0, len(wanted), SKUS_PER_QUERY):
            chunk = wanted[i : i + SKUS_PER_QUERY]
            found += self.search("inventory/source-items", [[("sku", ",".join(chunk), "in")]])
        return found

    def set_source_items(
        self, items: Sequence[tuple[str, str, int | Decimal]], chunk: int = SOURCE_ITEMS_PER_SAVE
    ) -> int:
        """Set (sku, source_code, quantity): in stock when the quantity is above zero. Absolute figures, so
        a repeat is harmless. Returns how many were written."""
        for i in range(0, len(items), chunk):
            rows = [
                {"sku": sku, "source_code": source, "quantity": _number(qty), "status": 1 if qty > 0 else 0}
                for sku, source, qty in items[i : i + chunk]
            ]
            self._json(
                "POST", "inventory/source-items", data={"sourceItems": rows}, route="POST inventory/source-items"
            )
        return len(items)

    # ---- plumbing -------------------------------------------------------------------------------

    def search(
        self,
        path: str,
        groups: Sequence[Sequence[Filter]],
        sort: Sequence[tuple[str, str]] = (),
        page_size: int | None = None,
    ) -> Iterator[dict]:
        """Every item of a searchCriteria list, page by page until total_count."""
        size = page_size or self.page_size
        page, seen = 1, 0
        while True:
            body = self._get(path, search_params(groups, sort, size, page), route=f"GET {route_of(path)}")
            items, total = _page(body, f"GET {path}")
            yield from items
            seen += len(items)
            # Past the end, Magento before 2.4 repeats the last page: total_count is what ends the loop (a
            # short page proves nothing: 2.4.7 may cap pageSize below what was asked).
            if not items or seen >= total:
                return
            page += 1

    def _get(self, path: str, params: list[tuple[str, str]], route: str) -> Any:
        return _body(self._call("GET", path, params=params, route=route), f"GET {path}", self.base_url)

    def _json(self, method: str, path: str, route: str, data: Any = None, safe_to_repeat: bool = True) -> Any:
        response = self._call(method, path, data=data, route=route, safe_to_repeat=safe_to_repeat)
        return _body(response, f"{method} {path}", self.base_url)

    def _call(
        self,
        method: str,
        path: str,
        route: str,
        params: list[tuple[str, str]] | None = None,
        data: Any = None,
        safe_to_repeat: bool = True,
    ) -> requests.Response:
        """One request, retried as adapters.http_retry allows; what is left is returned for `_body` to judge."""

        def send() -> requests.Response:
            return self._http.request(method, f"{self.api}/{path}", params=params, json=data, timeout=self.timeout)

        return self._retrying(send, route, safe_to_repeat, f"Magento at {self.base_url} unreachable for {route}")


def _number(value: int | Decimal) -> int | float:
    """A quantity as JSON carries it: whole numbers stay integers."""
    if isinstance(value, Decimal) and value != value.to_integral_value():
        return float(value)
    return int(value)


def _page(body: Any, what: str) -> tuple[list[dict], int]:
    if not isinstance(body, dict) or not isinstance(body.get("items", []), list):
        raise StorefrontError(f"Magento answered {what} without a list of items", retryable=False)
    items = [item for item in body.get("items") or [] if isinstance(item, dict)]
    total = body.get("total_count")
    return items, int(total) if isinstance(total, int) else len(items)


def _json_message(response: requests.Response) -> str | None:
    """Magento's error message with its parameters filled in; None when the answer is not Magento's JSON."""
    try:
        body = response.json()
    except ValueError:
        return None
    if not isinstance(body, dict) or not isinstance(body.get("message"), str):
        return None
    told = filled(body["message"], body.get("parameters"))
    # A validation failure (MSI's "Validation Failed") names each problem in `errors`.
    details = [
        filled(str(e["message"]), e.get("parameters"))
        for e in body.get("errors") or []
        if isinstance(e, dict) and e.get("message")
    ]
    return f"{told}: {'; '.join(details[:5])}" if details else told


def _body(response: requests.Response, what: str, base_url: str) -> Any:
    status = response.status_code
    if status == 429 or status >= 500:
        raise StorefrontError(f"Magento answered {status} to {what}; will retry", retryable=True)
    if status == 401:
        reason = _json_message(response) or "no reason given"
        raise AccessRevoked(f"Magento refused the access token (401: {reason}) for {what}: {BEARER_HINT}")
    if status >= 400:
        told = _json_message(response)
        if told is None:
            raise StorefrontError(
                f"Magento at {base_url} answered {status} to {what} without its JSON error: is the base URL "
                "the store's (the REST API lives under <base URL>/rest/V1)?",
                retryable=False,
            )
        raise StorefrontError(f"Magento answered {status} to {what}: {told}", retryable=False)
    try:
        return response.json()
    except ValueError:
        raise StorefrontError(f"Magento sent a non-JSON answer to {what}", retryable=True) from None
