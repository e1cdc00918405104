"""WooCommerce REST API v3 client: one wrapper around the `woocommerce` library's requests calls.

The library returns raw responses and retries nothing; this wrapper turns them into data or a
StorefrontError that says whether trying again can help.

`get`/`get_refund` keep their original one-shot behaviour (the job queue retries them). The other
methods (docs/platforms.md#woocommerce-rest-api) honour a 429's Retry-After and retry 5xx /
connection errors a few times with jittered backoff when repeating the request is harmless; they
page with `page`/`per_page=100` until X-WP-TotalPages, and write stock with products/batch and
variations/batch in chunks of at most 100 (halved on a 413 woocommerce_rest_request_entity_too_large,
in case a host lowered the limit).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import requests
from woocommerce import API

from adapters.http_retry import HttpStats, RetryingHttp, route
from adapters.storefront import StorefrontError
from mappings.utc import as_utc

BATCH_LIMIT = 100  # create + update + delete in one batch request (woocommerce_rest_batch_items_limit)
PER_PAGE = 100  # WordPress caps per_page at 100
PRODUCT_FIELDS = "id,sku,type,manage_stock,stock_quantity,variations"
VARIATION_FIELDS = "id,sku,manage_stock,stock_quantity"


# The refund was not made: WooCommerce's answer when wc_create_refund fails (an amount above what is left,
# the payment gateway cannot or did not refund), and when the amount is below zero.
REFUSED_REFUND = {"woocommerce_rest_cannot_create_order_refund", "woocommerce_rest_invalid_order_refund"}


class RefundRefused(StorefrontError):
    """WooCommerce did not make the refund and says why; the same request would be refused again."""

    def __init__(self, message: str):
        super().__init__(message, retryable=False)


@dataclass
class WooStats(HttpStats):
    too_large: int = 0  # 413 answers to a batch


@dataclass
class StockResult:
    updated: list[int] = field(default_factory=list)  # product or variation ids written
    errors: list[dict] = field(default_factory=list)  # {id, parent_id, code, message} per refused item
    batches: int = 0


class WooClient(RetryingHttp):
    stats: WooStats

    def __init__(
        self,
        url: str,
        consumer_key: str,
        consumer_secret: str,
        timeout: float = 15,
        *,
        max_retries: int = 3,
        retry_base: float = 0.5,
        max_throttle_waits: int = 5,
        max_retry_after: float = 120,
        sleep: Callable[[float], None] = time.sleep,
    ):
        # Over https the library uses Basic auth; over plain http (a test double) it signs OAuth 1.0a.
        self.api = API(
            url=url, consumer_key=consumer_key, consumer_secret=consumer_secret, version="wc/v3", timeout=timeout
        )
        self.url = url
        self.max_retries, self.retry_base = max_retries, retry_base
        self.max_throttle_waits, self.max_retry_after = max_throttle_waits, max_retry_after
        self.batch_size = BATCH_LIMIT  # lowered for good when the store answers 413
        self.duplicate_skus: set[str] = set()
        self.stats = WooStats()
        self._sleep = sleep

    def get(self, endpoint: str, **params: Any) -> Any:
        try:
            response = self.api.get(endpoint, params=params or None)
        except requests.RequestException as exc:
            raise StorefrontError(
                f"WooCommerce at {self.url} unreachable: {type(exc).__name__}", retryable=True
            ) from exc
        return _body(response, f"GET {endpoint}")

    def get_refund(self, order_id: str, refund_id: str) -> dict:
        return self.get(f"orders/{order_id}/refunds/{refund_id}")

    # ---- reading ------------------------------------------------------------------------------

    def pages(self, endpoint: str, **params: Any) -> Iterator[dict]:
        """Every item of a list endpoint, page by page until X-WP-TotalPages."""
        page = 1
        while True:
            response = self._call(
                "GET", endpoint, params={**params, "page": page, "per_page": PER_PAGE}, name=f"GET {route(endpoint)}"
            )
            items = _body(response, f"GET {endpoint}")
            yield from items
            total_pages = response.headers.get("X-WP-TotalPages")
            if not items or (page >= int(total_pages) if total_pages else len(items) < PER_PAGE):
                return  # (a proxy that strips the X-WP headers leaves us only a short page as the end)
            page += 1

    def products_by_sku(self) -> dict[str, tuple[int, int | None, bool | str, int | None]]:
        """{sku: (product_id, variation_id or None, manage_stock, stock_quantity)} for simple products and
        the variations of variable products (a variable parent is not sold itself). manage_stock may be
        "parent" for a variation whose stock its parent keeps. The first of duplicated SKUs wins."""
        found: dict[str, tuple[int, int | None, bool | str, int | None]] = {}

        def keep(sku: str, entry: tuple[int, int | None, bool | str, int | None]) -> None:
            if not sku:
                return
            if sku in found:
                self.duplicate_skus.add(sku)
            else:
                found[sku] = entry

        for product in self.pages("products", _fields=PRODUCT_FIELDS, orderby="id", order="asc"):
            if product.get("type") == "variable":
                if product.get("variations"):
                    for variation in self.pages(
                        f"products/{product['id']}/variations", _fields=VARIATION_FIELDS, orderby="id", order="asc"
                    ):
                        keep(
                            variation.get("sku") or "",
                            (
                                product["id"],
                                variation["id"],
                                variation["manage_stock"],
                                variation.get("stock_quantity"),
                            ),
                        )
                continue
            keep(
                product.get("sku") or "", (product["id"], None, product["manage_stock"], product.get("stock_quantity"))
            )
        return found

    def order(self, order_id: int | str) -> dict:
        return self._json("GET", f"orders/{order_id}")

    def orders_modified_after(self, ts: datetime, status: str = "any") -> Iterator[dict]:
        """Orders modified after `ts`, by id so that an order edited while we page doesn't jump pages."""
        if ts.tzinfo is None:
            raise ValueError("orders_modified_after needs a timezone-aware time")
        gmt = as_utc(ts).replace(tzinfo=None).isoformat(timespec="seconds")
        yield from self.pages(
            "orders", modified_after=gmt, dates_are_gmt="true", status=status, orderby="id", order="asc"
        )

    def find_order(self, order_id: int | str) -> dict | None:
        """The order, or None when the store has no order of that id (deleted for good)."""
        response = self._call("GET", f"orders/{order_id}", name="GET orders/<id>")
        if response.status_code == 404 and _error_code(response) == "woocommerce_rest_shop_order_invalid_id":
            return None  # (a 404 with another code is a wrong store URL, not a missing order)
        return _body(response, f"GET orders/{order_id}")

    def order_refunds(self, order_id: int | str) -> list[dict]:
        """Every refund of the order, newest first, with its reason and refunded lines."""
        return list(self.pages(f"orders/{order_id}/refunds"))

    def webhooks(self) -> list[dict]:
        return list(self.pages("webhooks"))

    # ---- writing ------------------------------------------------------------------------------

    def set_stock(self, items: Sequence[tuple[int, int | None, int]]) -> StockResult:
        """Set (product_id, variation_id or None, quantity), managing stock: simple products through
        products/batch, variations through their parent's variations/batch, at most `batch_size` each.
        Items the store refuses are reported in `errors`, not raised; the rest are written."""
        result = StockResult()
        simple = [(pid, qty) for pid, vid, qty in items if vid is None]
        by_parent: dict[int, list[tuple[int, int]]] = {}
        for pid, vid, qty in items:
            if vid is not None:
                by_parent.setdefault(pid, []).append((vid, qty))
        self._write_stock("products/batch", simple, None, result)
        for parent, rows in by_parent.items():
            self._write_stock(f"products/{parent}/variations/batch", rows, parent, result)
        return result

    def complete_order(self, order_id: int | str) -> dict:
        """Status completed (WooCommerce emails the customer on the change; repeating it changes nothing)."""
        return self.set_status(order_id, "completed")

    def set_status(self, order_id: int | str, status: str) -> dict:
        """A new order status. Reaching processing (or completed) sets `date_paid` when it is unset."""
        return self._json("PUT", f"orders/{order_id}", data={"status": status})

    def set_paid(self, order_id: int | str, transaction_id: str | None = None) -> dict:
        """`set_paid: true`: WooCommerce completes the payment (date_paid, status processing, stock reduced),
        but on an update only for an order that still needs payment (pending or failed, total above zero);
        any other order is returned unchanged (docs/platforms.md#woocommerce-orders)."""
        data: dict[str, Any] = {"set_paid": True}
        if transaction_id:
            data["transaction_id"] = transaction_id
        return self._json("PUT", f"orders/{order_id}", data=data)

    def cancel_order(self, order_id: int | str, staff_note: str, *, notify: bool = True, reason: str = "OTHER") -> bool:
        """Status `cancelled`, which puts back the stock the order had taken, after a private note saying
        why; False when it is cancelled already. WooCommerce emails the customer on its own settings, so
        `notify` and `reason` (Shopify's) have nothing to set here."""
        if str(self.order(order_id).get("status")) == "cancelled":
            return False
        self.add_note(order_id, staff_note, customer_note=False)
        self.set_status(order_id, "cancelled")
        return True

    def add_note(self, order_id: int | str, text: str, customer_note: bool = True, dedupe: bool = True) -> dict:
        """An order note (a customer note is emailed). Unless dedupe=False an identical note already on the
        order is returned instead, so a retried shipment doesn't email twice; the POST itself is never
        re-sent after a lost answer for the same reason."""
        if dedupe:
            for note in self._json("GET", f"orders/{order_id}/notes", params={"type": "any"}):
                if note.get("note") == text and bool(note.get("customer_note")) == customer_note:
                    return note
        return self._json(
            "POST",
            f"orders/{order_id}/notes",
            data={"note": text, "customer_note": customer_note},
            safe_to_repeat=False,
        )

    def create_refund(self, order_id: int | str, refund: dict) -> dict:
        """POST orders/<id>/refunds, never re-sent after a lost answer (the caller looks for the refund by its
        reason before trying again). WooCommerce answers a refund it could not make (an amount above what is
        left, a payment gateway that cannot or did not refund: it deletes the refund it had begun) with 500
        woocommerce_rest_cannot_create_order_refund: RefundRefused, with the store's reason."""
        response = self._call(
            "POST", f"orders/{order_id}/refunds", data=refund, name="POST orders/<id>/refunds", safe_to_repeat=False
        )
        if response.status_code >= 400 and _error_code(response) in REFUSED_REFUND:
            raise RefundRefused(f"WooCommerce did not refund order {order_id}: {_error_message(response)}")
        return _body(response, f"POST orders/{order_id}/refunds")

    def create_webhook(self, topic: str, delivery_url: str, secret: str, name: str | None = None) -> dict:
        """An active webhook; an existing active one for the same topic and URL is returned instead."""
        for hook in self.webhooks():
            if hook["topic"] == topic and hook["delivery_url"] == delivery_url and hook["status"] == "active":
                return hook
        return self._json(
            "POST",
            "webhooks",
            data={
                "name": name or f"connector {topic}",
                "topic": topic,
                "delivery_url": delivery_url,
                "secret": secret,
                "status": "active",
            },
            safe_to_repeat=False,
        )

    def delete_webhook(self, webhook_id: int | str) -> dict:
        return self._json("DELETE", f"webhooks/{webhook_id}", params={"force": "true"})

    # ---- plumbing -----------------------------------------------------------------------------

    def _write_stock(self, endpoint: str, rows: list[tuple[int, int]], parent: int | None, result: StockResult) -> None:
        i = 0
        while i < len(rows):
            chunk = rows[i : i + self.batch_size]
            update = [{"id": ident, "manage_stock": True, "stock_quantity": int(qty)} for ident, qty in chunk]
            response = self._call("POST", endpoint, data={"update": update}, name=f"POST {route(endpoint)}")
            if response.status_code == 413 and len(chunk) > 1:
                self.stats.too_large += 1
                self.batch_size = max(1, len(chunk) // 2)  # the host's limit is lower than WooCommerce's
                continue
            body = _body(response, f"POST {endpoint}")
            result.batches += 1
            for entry in body.get("update") or []:
                if "error" in entry:
                    error = entry["error"] or {}
                    result.errors.append(
                        {
                            "id": entry.get("id"),
                            "parent_id": parent,
                            "code": error.get("code"),
                            "message": error.get("message"),
                        }
                    )
                else:
                    result.updated.append(entry["id"])
            i += len(chunk)

    def _json(
        self, method: str, endpoint: str, data: Any = None, params: dict | None = None, safe_to_repeat: bool = True
    ) -> Any:
        response = self._call(
            method,
            endpoint,
            data=data,
            params=params,
            name=f"{method} {route(endpoint)}",
            safe_to_repeat=safe_to_repeat,
        )
        return _body(response, f"{method} {endpoint}")

    def _call(
        self,
        method: str,
        endpoint: str,
        data: Any = None,
        params: dict | None = None,
        name: str = "",
        safe_to_repeat: bool = True,
    ) -> requests.Response:
        """One request, retried as adapters.http_retry allows; whatever is left is returned for `_body` to map.
        (Retry-After comes from hosts and WAFs, not WooCommerce itself: docs/platforms.md#woocommerce-rest-api.)"""
        kwargs: dict[str, Any] = {"params": dict(params) if params else None}

        def send() -> requests.Response:
            if method in ("POST", "PUT"):
                return getattr(self.api, method.lower())(endpoint, data, **kwargs)
            return getattr(self.api, method.lower())(endpoint, **kwargs)

        return self._retrying(send, name, safe_to_repeat, f"WooCommerce at {self.url} unreachable for {name}")


def _error_code(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    return str(body.get("code") or "") if isinstance(body, dict) else ""


def _error_message(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    return str(body.get("message") or "") if isinstance(body, dict) else ""


def _body(response: requests.Response, what: str) -> Any:
    if response.status_code == 429 or response.status_code >= 500:
        raise StorefrontError(f"WooCommerce answered {response.status_code} to {what}; will retry", retryable=True)
    if response.status_code in (401, 403):
        raise StorefrontError(
            f"WooCommerce refused our API keys ({response.status_code}) for {what}: check the "
            "store's consumer key and secret on /config",
            retryable=False,
        )
    if response.status_code >= 400:
        message = _error_message(response)
        raise StorefrontError(f"WooCommerce answered {response.status_code} to {what}: {message}", retryable=False)
    try:
        return response.json()
    except ValueError:
        raise StorefrontError(f"WooCommerce sent a non-JSON answer to {what}", retryable=True) from None
